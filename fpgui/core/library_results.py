"""What the library's methods hand back: per-file outcomes, progress, summaries and reports.

Plain data, shared by the command line and the window, and how a catalogue row becomes the
:class:`ProtectedImage` they show.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np

from fpgui.core.catalogue import ImageRow


class AddOutcome(StrEnum):
    """What happened to one file while adding or re-embedding."""

    ADDED = "added"
    UPDATED = "updated"  # the path was known, its content changed: fingerprinted again
    UNCHANGED = "skipped_unchanged"
    DUPLICATE = "duplicate"  # same bytes as an image already protected: path noted only
    MOVED = "moved"  # same bytes as an image whose file is gone: its path is updated
    REEMBEDDED = "reembedded"  # fingerprinted again with the current model
    FAILED = "failed"


@dataclass
class AddSummary:
    """Running totals of one add or re-embed; ``AddProgress.summary`` is updated in place."""

    total: int = 0
    added: int = 0
    updated: int = 0
    skipped_unchanged: int = 0
    reembedded: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, path of original)
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    cancelled: bool = False

    @property
    def done(self) -> int:
        return (
            self.added
            + self.updated
            + self.skipped_unchanged
            + self.reembedded
            + len(self.duplicates)
            + len(self.moved)
            + len(self.failed)
        )

    def counts_text(self, *, always: tuple[str, ...] = ("added",)) -> str:
        """Totals as "8 added, 2 unchanged, 1 failed": those in ``always`` even at zero, the
        rest only when non-zero. The command line and the window both word summaries so."""
        counts = (
            ("added", self.added),
            ("unchanged", self.skipped_unchanged),
            ("duplicates", len(self.duplicates)),
            ("updated", self.updated),
            ("moved", len(self.moved)),
            ("re-fingerprinted", self.reembedded),
            ("failed", len(self.failed)),
        )
        return ", ".join(f"{n} {label}" for label, n in counts if n or label in always)

    def record(self, outcome: AddOutcome, path: str, detail: str | None) -> None:
        if outcome is AddOutcome.ADDED:
            self.added += 1
        elif outcome is AddOutcome.UPDATED:
            self.updated += 1
        elif outcome is AddOutcome.UNCHANGED:
            self.skipped_unchanged += 1
        elif outcome is AddOutcome.REEMBEDDED:
            self.reembedded += 1
        elif outcome is AddOutcome.DUPLICATE:
            self.duplicates.append((path, detail or ""))
        elif outcome is AddOutcome.MOVED:
            self.moved.append((detail or "", path))
        else:
            self.failed.append((path, detail or "unknown error"))


@dataclass(frozen=True)
class AddProgress:
    """One step of :meth:`Library.add` or :meth:`Library.reembed`.

    ``phase`` is "scanning" (``total`` still growing, no ``outcome``) or "adding". ``detail`` is
    the failure reason, the original of a duplicate, or the old path of a moved file.
    """

    phase: str
    done: int
    total: int
    path: str | None
    outcome: AddOutcome | None
    detail: str | None
    summary: AddSummary


@dataclass(frozen=True)
class ProtectedImage:
    """An image in the library. ``missing``: its file is no longer at ``path``."""

    id: int
    path: str
    sha256: str
    size: int
    width: int
    height: int
    added_at: datetime
    missing: bool
    duplicate_paths: tuple[str, ...] = ()
    fingerprinted: bool = True  # False: no fingerprint from the current model yet


@dataclass(frozen=True)
class Neighbourhood:
    """A query's nearest library images together with their stored fingerprints."""

    images: list[tuple[ProtectedImage, float]]  # L2 distance to the query, ascending
    fingerprints: np.ndarray  # (len(images), D) float32, in the order of ``images``
    searched: int  # fingerprints in the index: the most any query can get back


@dataclass(frozen=True)
class RemoveSummary:
    removed: list[str]  # paths no longer protected (images and duplicate paths)
    not_found: list[str]  # arguments that matched nothing in the library


@dataclass
class VerifyReport:
    """Whether catalogue, index, model and disk agree; with ``repair``, what was done about it."""

    images: int = 0
    index_entries: int = 0
    catalogue_problems: list[str] = field(default_factory=list)
    rows_without_vectors: list[int] = field(default_factory=list)  # image ids
    vectors_without_rows: list[int] = field(default_factory=list)  # ids, catalogue or index
    index_problem: str | None = None
    missing_files: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    other_model: int = 0  # images fingerprinted by another model: they need re-embedding
    library_model_id: str | None = None
    model_id: str | None = None
    repairs: list[str] = field(default_factory=list)
    unrepaired: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (after repair, when repairs were made)."""
        return not (
            self.catalogue_problems
            or self.rows_without_vectors
            or self.vectors_without_rows
            or self.index_problem
            or self.missing_files
            or self.changed_files
            or self.other_model
        )

    def problems(self) -> list[str]:
        """One sentence per kind of problem, for people."""
        lines = [f"catalogue: {p}" for p in self.catalogue_problems]
        if self.other_model:
            lines.append(
                f"{self.other_model} images were fingerprinted with another model "
                f"({self.library_model_id or 'unknown'}) and need re-embedding for {self.model_id}"
            )
        if self.rows_without_vectors:
            lines.append(f"{len(self.rows_without_vectors)} images have no fingerprint")
        if self.vectors_without_rows:
            lines.append(f"{len(self.vectors_without_rows)} fingerprints belong to no image")
        if self.index_problem:
            lines.append(f"index: {self.index_problem}")
        if self.missing_files:
            lines.append(f"{len(self.missing_files)} image files are missing from disk")
        if self.changed_files:
            lines.append(f"{len(self.changed_files)} image files changed since they were added")
        return lines


@dataclass(frozen=True)
class LibraryInfo:
    folder: Path
    images: int
    duplicate_paths: int
    fingerprinted: int  # images with a fingerprint from the current model
    needs_reembed: int  # images without one
    library_model_id: str | None  # the model the library was last brought up to date with
    model_id: str | None
    model_sha256: str | None
    device: str | None
    precision: str | None
    index_bytes: int
    catalogue_bytes: int


def protected_image(
    row: ImageRow, duplicates: Iterable[str], model_sha: str | None, check_files: bool
) -> ProtectedImage:
    """``row`` as the library shows it; ``model_sha`` None: do not judge ``fingerprinted``."""
    missing = (not os.path.exists(row.path)) if check_files else row.status == "missing"
    return ProtectedImage(
        id=row.id,
        path=row.path,
        sha256=row.sha256,
        size=row.size,
        width=row.width,
        height=row.height,
        added_at=_parse_time(row.added_at),
        missing=missing,
        duplicate_paths=tuple(duplicates),
        fingerprinted=model_sha is None or row.model_sha256 == model_sha,
    )


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
