"""The protected-image library: a folder holding the catalogue, the fingerprint index and a lock.

Layout of a library folder::

    catalogue.sqlite   images, their fingerprints (float32 BLOBs) and the model that made them
    index/             the FingerprintIndex over the current model's fingerprints (a cache)
    write.lock         held by the one process allowed to write

The catalogue is the source of truth. The index is reconciled with it whenever it is needed
(ids missing from the index are added from stored fingerprints, ids no longer in the catalogue are
removed; an unreadable index is rebuilt), so a writer killed at any point leaves a library that
opens consistent, and adding again finishes the job. Writes happen in SQLite transactions, one per
batch of files; the index is saved atomically every few seconds and at the end of each operation.

Writers take an exclusive inter-process lock for the duration of one operation (add, remove,
re-embed, repair); a second writer waits up to ``lock_timeout`` seconds and then gets a
:class:`LibraryBusyError`. Readers (check, list) need no lock.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path

import numpy as np
import torch

from fpgui.core.catalogue import Catalogue, ContentLookup, DuplicateRow, ImageRow
from fpgui.core.embedder import DEFAULT_BATCH_SIZE, Embedder
from fpgui.core.errors import (
    FingerprintIndexError,
    FpguiError,
    LibraryBusyError,
    LibraryError,
)
from fpgui.core.index import FingerprintIndex
from fpgui.core.locking import WriteLock
from fpgui.core.scanning import (
    FileState,
    HashedFile,
    ScanFailure,
    StopCheck,
    hash_and_measure,
    normal_path,
    same_state,
    scan_image_files,
    stat_file,
)

CATALOGUE_FILE = "catalogue.sqlite"
INDEX_DIR = "index"
LOCK_FILE = "write.lock"
DEFAULT_LOCK_TIMEOUT = 10.0
# The index is a cache of the catalogue, so saving it after every batch would only cost time on a
# big library; a crash between saves costs one reconcile at the next open.
INDEX_SAVE_INTERVAL_S = 5.0
SCAN_PROGRESS_EVERY = 500

EmbedderSource = Embedder | Callable[[], Embedder]

__all__ = [
    "AddOutcome",
    "AddProgress",
    "AddSummary",
    "EmbedderSource",
    "Library",
    "LibraryBusyError",
    "LibraryInfo",
    "Neighbourhood",
    "ProtectedImage",
    "RemoveSummary",
    "VerifyReport",
]


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


# -- the batch in flight -----------------------------------------------------------------------


@dataclass
class _Staged:
    """A file of the batch in flight; ``hashed`` is set when it was not skipped by stat."""

    path: str
    state: FileState | None
    failure: str | None = None
    unchanged_image: int | None = None  # image id, when stat says nothing changed
    unchanged_duplicate: bool = False
    hashed: Future[_Prepared | str] | None = None


@dataclass(frozen=True)
class _Prepared:
    """A file hashed and, when its bytes looked new, already decoded into the model's input."""

    hashed: HashedFile
    tensor: torch.Tensor | None = None  # (C, S, S) float32
    decode_error: str | None = None


def _prepare(path: str, known: ContentLookup, embedder: Embedder) -> _Prepared | str:
    """Worker-thread part of adding: hash, read the header, and decode unless the bytes are known.

    Decoding here, ahead of the batch, lets the next batch's JPEG decoding overlap the model's
    forward pass on this one (the model is the limit: see benchmarks/add_folder.py).
    """
    hashed = hash_and_measure(path)
    if isinstance(hashed, str):
        return hashed
    if hashed.sha256 in known:
        return _Prepared(hashed)
    try:
        return _Prepared(hashed, embedder.load_for_model(Path(path)))
    except FpguiError as exc:
        return _Prepared(hashed, None, str(getattr(exc, "reason", exc)))
    except (OSError, ValueError, MemoryError) as exc:
        return _Prepared(hashed, None, f"{type(exc).__name__}: {exc}")


@dataclass
class _ToEmbed:
    path: str
    state: FileState
    hashed: HashedFile
    prepared: _Prepared
    existing_id: int | None  # same content already a row: only its fingerprint is new
    replaced_id: int | None  # the path's previous row, whose content changed
    drop_duplicate_note: bool
    outcome: AddOutcome
    duplicates: list[tuple[str, FileState]] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


class Library:
    """A protected-image library on disk. Open with :meth:`open`; usable from scripts and threads.

    Methods that write take the library's inter-process lock for their duration. One instance may
    be shared by threads (e.g. a check while an add runs): catalogue and index access is
    serialised inside, the slow parts (hashing, decoding, embedding) run outside that lock.
    """

    def __init__(
        self,
        folder: Path,
        catalogue: Catalogue,
        embedder: EmbedderSource | None,
        lock_timeout: float,
    ) -> None:
        self.folder = folder
        self.lock_timeout = lock_timeout
        self._catalogue = catalogue
        self._embedder_source = embedder
        self._embedder: Embedder | None = embedder if isinstance(embedder, Embedder) else None
        self._mutex = threading.RLock()
        self._index: FingerprintIndex | None = None
        self._index_generation = -1
        self._index_dirty = False
        self._last_index_save = 0.0
        self._lock = WriteLock(folder / LOCK_FILE, "writing", lock_timeout)
        self._write_depth = 0

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        embedder: EmbedderSource | None = None,
        *,
        create: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> Library:
        """Open (or, with ``create``, make) the library in ``folder``.

        ``embedder`` is an :class:`Embedder`, or a zero-argument factory called the first time a
        model is needed (so listing a library never loads one). With an Embedder the index is
        reconciled with the catalogue here; with a factory, on first use.
        """
        path = Path(normal_path(folder))
        catalogue_path = path / CATALOGUE_FILE
        if not catalogue_path.is_file():
            if not create:
                raise LibraryError(
                    f"no library at {path} (add images with `fpgui add PATH` to create one)"
                )
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LibraryError(f"cannot create a library at {path}: {exc}") from exc
        library = cls(path, Catalogue(catalogue_path), embedder, lock_timeout)
        if isinstance(embedder, Embedder):
            library._current_index()  # reconcile now: a crashed writer is repaired on open
        return library

    def close(self) -> None:
        with self._mutex:
            self._lock.release()
            self._catalogue.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def index_folder(self) -> Path:
        return self.folder / INDEX_DIR

    @property
    def has_embedder(self) -> bool:
        return self._embedder_source is not None

    @property
    def embedder(self) -> Embedder:
        """The model in use; a factory given to :meth:`open` is called here, once."""
        if self._embedder is None:
            if self._embedder_source is None:
                raise LibraryError("this library was opened without a model")
            assert not isinstance(self._embedder_source, Embedder)
            self._embedder = self._embedder_source()
        return self._embedder

    def use_embedder(self, embedder: Embedder) -> None:
        """Switch to another model; the index is reconciled for it when next needed."""
        with self._mutex:
            self._embedder_source = embedder
            self._embedder = embedder
            self._index = None
            self._index_dirty = False

    # -- writing guard ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, operation: str) -> Iterator[None]:
        """Hold the inter-process write lock (re-entrant within this instance)."""
        if self._write_depth == 0:
            self._lock.operation = operation
            self._lock.timeout = self.lock_timeout
            self._lock.acquire()
        self._write_depth += 1
        try:
            yield
        finally:
            self._write_depth -= 1
            if self._write_depth == 0:
                self._lock.release()

    # -- the index ----------------------------------------------------------------------------

    def _current_index(self) -> FingerprintIndex:
        """The index for the current model, in step with the catalogue's latest generation."""
        with self._mutex:
            generation = self._catalogue.generation()
            if self._index is None or generation != self._index_generation:
                self._index = self._reconciled_index(self._index)
                self._index_generation = generation
            return self._index

    def _reconciled_index(self, index: FingerprintIndex | None) -> FingerprintIndex:
        embedder = self.embedder
        sha, dim = embedder.model_sha256, embedder.embedding_dim
        if index is None:
            try:
                index = FingerprintIndex.load(self.index_folder, dim=dim, model_sha256=sha)
            except FingerprintIndexError:
                index = None  # missing, corrupt or another model's: rebuilt below
        wanted = self._catalogue.embedded_ids(sha)
        if index is None:
            ids, vectors = self._catalogue.embeddings(sha, dim)
            index = FingerprintIndex.build(ids, vectors, dim, sha)
            self._index_dirty = True
        else:
            live = index.live_ids()
            extra = np.setdiff1d(live, wanted, assume_unique=True)
            missing = np.setdiff1d(wanted, live, assume_unique=True)
            if len(extra):
                index.remove(int(i) for i in extra)
            if len(missing):
                ids, vectors = self._catalogue.embeddings(sha, dim, missing.tolist())
                index.add(ids, vectors)
            if len(extra) or len(missing):
                self._index_dirty = True
        if self._index_dirty:
            self._save_index_if_free(index)
        return index

    def _save_index_if_free(self, index: FingerprintIndex) -> None:
        """Persist a repaired index when no other process is writing; otherwise leave it to them."""
        if self._write_depth > 0:
            self._save_index(index)
            return
        probe = WriteLock(self.folder / LOCK_FILE, "saving the index", timeout=0.0)
        try:
            probe.acquire()
        except LibraryBusyError:
            return
        try:
            self._save_index(index)
        except LibraryError:
            pass  # a reader cannot fix a full disk; the next writer saves it
        finally:
            probe.release()

    def _save_index(self, index: FingerprintIndex) -> None:
        try:
            index.save(self.index_folder)
        except FingerprintIndexError as exc:
            raise LibraryError(
                f"{exc}. The catalogue is intact; the index is rebuilt from it next time"
            ) from exc
        self._index_dirty = False
        self._last_index_save = time.monotonic()

    def _index_changed(self, added: dict[int, np.ndarray], removed: Iterable[int]) -> None:
        """Apply a committed batch to the in-memory index; save when due."""
        with self._mutex:
            index = self._index
            if index is None:
                return
            index.remove(removed)
            if added:
                ids = np.fromiter(added.keys(), dtype=np.int64, count=len(added))
                index.add(ids, np.stack(list(added.values())))
            self._index_generation = self._catalogue.generation()
            self._index_dirty = True
            if time.monotonic() - self._last_index_save >= INDEX_SAVE_INTERVAL_S:
                self._save_index(index)

    def _finish_writing(self) -> None:
        with self._mutex:
            if self._index is not None and self._index_dirty:
                self._save_index(self._index)
            self._record_model_if_current()

    def _record_model_if_current(self) -> None:
        """Remember which model the whole library is fingerprinted with, once that is true."""
        if self._embedder is None:
            return
        meta = self._embedder.metadata
        if self._catalogue.get_meta("model_sha256") == meta.weights_sha256:
            return
        if self._catalogue.ids_without_embedding(meta.weights_sha256):
            return
        with self._catalogue.transaction():
            self._catalogue.set_meta("model_sha256", meta.weights_sha256)
            self._catalogue.set_meta("model_id", meta.model_id)
        self._index_generation = self._catalogue.generation()

    # -- adding -------------------------------------------------------------------------------

    def add(
        self,
        paths: Sequence[str | os.PathLike[str]],
        should_stop: StopCheck | None = None,
        *,
        batch_size: int | None = None,
    ) -> Iterator[AddProgress]:
        """Add files and folders; yields an :class:`AddProgress` per file (some while scanning).

        Unchanged files (same path, size and mtime) are skipped without reading them. Files whose
        bytes are already protected are noted as duplicates, or, when the original file is gone,
        as the image having moved. Each batch is committed before its files are reported, so
        stopping (``should_stop()`` true, or closing the generator) keeps everything reported.
        The write lock is taken on the first iteration (LibraryBusyError if it cannot be).
        """
        stop = should_stop or (lambda: False)
        summary = AddSummary()
        with self._writing("adding images"):
            embedder = self.embedder
            self._current_index()
            batch = batch_size or DEFAULT_BATCH_SIZE
            files: list[str] = []
            for found in scan_image_files(paths, stop):
                if isinstance(found, ScanFailure):
                    summary.total += 1
                    summary.record(AddOutcome.FAILED, found.path, found.reason)
                    yield AddProgress(
                        "adding", summary.done, summary.total, found.path,
                        AddOutcome.FAILED, found.reason, summary,
                    )  # fmt: skip
                    continue
                files.append(found)
                if len(files) % SCAN_PROGRESS_EVERY == 0:
                    yield AddProgress(
                        "scanning", summary.done, summary.total + len(files), found,
                        None, None, summary,
                    )  # fmt: skip
            summary.total += len(files)
            if stop():
                summary.cancelled = True
                return
            pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fpgui-prepare")
            known = ContentLookup(self._catalogue.path)
            try:
                chunks = [files[i : i + batch] for i in range(0, len(files), batch)]
                staged = self._stage(chunks[0], pool, known, embedder) if chunks else []
                for number in range(len(chunks)):
                    if stop():
                        summary.cancelled = True
                        break
                    current = staged
                    # Hash the next batch while this one is decoded and embedded.
                    if number + 1 < len(chunks):
                        staged = self._stage(chunks[number + 1], pool, known, embedder)
                    for path, outcome, detail in self._commit_batch(current, embedder):
                        summary.record(outcome, path, detail)
                        yield AddProgress(
                            "adding", summary.done, summary.total, path, outcome, detail, summary
                        )
            except GeneratorExit:
                # The consumer stopped listening: what was committed stays; save the index.
                summary.cancelled = True
                self._finish_writing()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                known.close()
            self._finish_writing()

    def add_all(
        self, paths: Sequence[str | os.PathLike[str]], should_stop: StopCheck | None = None
    ) -> AddSummary:
        """:meth:`add` run to the end; returns its summary."""
        summary = AddSummary()
        for progress in self.add(paths, should_stop):
            summary = progress.summary
        return summary

    def _stage(
        self, paths: list[str], pool: ThreadPoolExecutor, known: ContentLookup, embedder: Embedder
    ) -> list[_Staged]:
        """Stat each file; start preparing (hash, decode) those the catalogue cannot vouch for."""
        staged: list[_Staged] = []
        for path in paths:
            state = stat_file(path)
            if isinstance(state, str):
                staged.append(_Staged(path, None, failure=state))
                continue
            item = _Staged(path, state)
            with self._mutex:
                row = self._catalogue.image_by_path(path)
                duplicate = None if row else self._catalogue.duplicate_by_path(path)
            if row is not None and same_state(row, state):
                if row.model_sha256 == embedder.model_sha256:
                    item.unchanged_image = row.id
            elif duplicate is not None and same_state(duplicate, state):
                item.unchanged_duplicate = True
            if item.unchanged_image is None and not item.unchanged_duplicate:
                item.hashed = pool.submit(_prepare, path, known, embedder)
            staged.append(item)
        return staged

    def _commit_batch(
        self, staged: list[_Staged], embedder: Embedder
    ) -> list[tuple[str, AddOutcome, str | None]]:
        """Decide, embed and commit one batch; returns (path, outcome, detail) in input order."""
        model_sha = embedder.model_sha256
        outcomes: dict[str, tuple[AddOutcome, str | None]] = {}
        writes: list[Callable[[], None]] = []  # run in order inside the transaction
        to_embed: list[_ToEmbed] = []
        pending_by_sha: dict[str, _ToEmbed] = {}
        moved_rows: dict[int, str] = {}  # image id -> its new path, within this batch
        replaced_rows: set[int] = set()
        removed_from_index: list[int] = []
        catalogue = self._catalogue

        for item in staged:
            path = item.path
            if item.failure is not None:
                outcomes[path] = (AddOutcome.FAILED, item.failure)
                continue
            if item.unchanged_image is not None:
                image_id = item.unchanged_image
                writes.append(partial(catalogue.set_status, image_id, "ok"))
                outcomes[path] = (AddOutcome.UNCHANGED, None)
                continue
            if item.unchanged_duplicate:
                outcomes[path] = (AddOutcome.UNCHANGED, None)
                continue
            assert item.hashed is not None and item.state is not None
            prepared = item.hashed.result()
            if isinstance(prepared, str):
                outcomes[path] = (AddOutcome.FAILED, prepared)
                continue
            hashed = prepared.hashed
            state = item.state
            with self._mutex:
                row = catalogue.image_by_path(path)
                if row is not None and row.id in moved_rows:
                    row = None
                duplicate = catalogue.duplicate_by_path(path)
                holders = [
                    h
                    for h in catalogue.images_by_sha256(hashed.sha256)
                    if h.id not in replaced_rows and (row is None or h.id != row.id)
                ]
            if row is not None and row.sha256 == hashed.sha256:
                # Same bytes, new mtime (touched, copied back): keep, refresh the stat.
                if row.model_sha256 == model_sha:
                    writes.append(
                        partial(
                            catalogue.update_file_state,
                            row.id,
                            path=path,
                            size=state.size,
                            mtime_ns=state.mtime_ns,
                        )  # fmt: skip
                    )
                    outcomes[path] = (AddOutcome.UNCHANGED, None)
                else:
                    to_embed.append(
                        _ToEmbed(
                            path,
                            state,
                            hashed,
                            prepared,
                            row.id,
                            None,
                            False,
                            AddOutcome.REEMBEDDED,
                        )  # fmt: skip
                    )
                continue
            if duplicate is not None:
                with self._mutex:
                    original = catalogue.images_by_ids([duplicate.image_id]).get(duplicate.image_id)
                if original is not None and original.sha256 == hashed.sha256:
                    writes.append(
                        partial(
                            catalogue.put_duplicate,
                            path=path,
                            image_id=duplicate.image_id,
                            size=state.size,
                            mtime_ns=state.mtime_ns,
                            added_at=duplicate.added_at,
                        )  # fmt: skip
                    )
                    outcomes[path] = (AddOutcome.UNCHANGED, None)
                    continue
            # The bytes at this path are new to it.
            replaced_id = row.id if row is not None else None
            if replaced_id is not None:
                replaced_rows.add(replaced_id)
            had_note = duplicate is not None
            pending = pending_by_sha.get(hashed.sha256)
            if pending is not None:
                pending.duplicates.append((path, state))
                outcomes[path] = (AddOutcome.DUPLICATE, pending.path)
                self._drop_old(writes, path, replaced_id, had_note, removed_from_index)
                continue
            if holders:
                holder = holders[0]
                holder_path = moved_rows.get(holder.id, holder.path)
                if holder.id in moved_rows or _still_holds(holder):
                    self._drop_old(writes, path, replaced_id, had_note, removed_from_index)
                    writes.append(
                        partial(
                            catalogue.put_duplicate,
                            path=path,
                            image_id=holder.id,
                            size=state.size,
                            mtime_ns=state.mtime_ns,
                            added_at=_now(),
                        )  # fmt: skip
                    )
                    outcomes[path] = (AddOutcome.DUPLICATE, holder_path)
                else:
                    moved_rows[holder.id] = path
                    self._drop_old(writes, path, replaced_id, had_note, removed_from_index)
                    writes.append(
                        partial(
                            catalogue.update_file_state,
                            holder.id,
                            path=path,
                            size=state.size,
                            mtime_ns=state.mtime_ns,
                        )  # fmt: skip
                    )
                    outcomes[path] = (AddOutcome.MOVED, holder.path)
                continue
            entry = _ToEmbed(
                path, state, hashed, prepared, None, replaced_id, had_note,
                AddOutcome.UPDATED if replaced_id is not None else AddOutcome.ADDED,
            )  # fmt: skip
            to_embed.append(entry)
            pending_by_sha[hashed.sha256] = entry

        embedded = self._embed_prepared(to_embed, embedder, outcomes)

        added_vectors: dict[int, np.ndarray] = {}
        with self._mutex, catalogue.transaction():
            for write in writes:
                write()
            for entry in to_embed:
                vector = embedded.get(entry.path)
                if vector is None:
                    reason = outcomes[entry.path][1]
                    for dup_path, _ in entry.duplicates:
                        outcomes[dup_path] = (
                            AddOutcome.FAILED,
                            f"same content as {entry.path}, which failed: {reason}",
                        )
                    continue
                if entry.existing_id is not None:
                    image_id = entry.existing_id
                    catalogue.update_file_state(
                        image_id, path=entry.path, size=entry.state.size,
                        mtime_ns=entry.state.mtime_ns,
                    )  # fmt: skip
                else:
                    self._drop_old(
                        None, entry.path, entry.replaced_id, entry.drop_duplicate_note,
                        removed_from_index,
                    )  # fmt: skip
                    image_id = catalogue.insert_image(
                        path=entry.path,
                        size=entry.state.size,
                        mtime_ns=entry.state.mtime_ns,
                        sha256=entry.hashed.sha256,
                        width=entry.hashed.width,
                        height=entry.hashed.height,
                        added_at=_now(),
                    )
                catalogue.put_embedding(image_id, model_sha, vector)
                added_vectors[image_id] = vector
                outcomes[entry.path] = (entry.outcome, None)
                for dup_path, dup_state in entry.duplicates:
                    catalogue.put_duplicate(
                        path=dup_path, image_id=image_id, size=dup_state.size,
                        mtime_ns=dup_state.mtime_ns, added_at=_now(),
                    )  # fmt: skip
        self._index_changed(added_vectors, removed_from_index)
        return [(item.path, *outcomes[item.path]) for item in staged]

    @staticmethod
    def _embed_prepared(
        entries: list[_ToEmbed],
        embedder: Embedder,
        outcomes: dict[str, tuple[AddOutcome, str | None]],
    ) -> dict[str, np.ndarray]:
        """Fingerprints (D,) by path; files that cannot be decoded get a FAILED outcome."""
        tensors: dict[str, torch.Tensor] = {}
        for entry in entries:
            prepared = entry.prepared
            if prepared.decode_error is not None:
                outcomes[entry.path] = (AddOutcome.FAILED, prepared.decode_error)
            elif prepared.tensor is not None:
                tensors[entry.path] = prepared.tensor
            else:  # skipped by the worker as known content, but needed after all
                try:
                    tensors[entry.path] = embedder.load_for_model(Path(entry.path))
                except FpguiError as exc:
                    reason = str(getattr(exc, "reason", exc))
                    outcomes[entry.path] = (AddOutcome.FAILED, reason)
        if not tensors:
            return {}
        vectors = embedder.embed_tensors(torch.stack(list(tensors.values())))
        return dict(zip(tensors, vectors, strict=True))

    def _drop_old(
        self,
        writes: list[Callable[[], None]] | None,
        path: str,
        replaced_id: int | None,
        had_note: bool,
        removed_from_index: list[int],
    ) -> None:
        """Forget what ``path`` used to hold: its old row and/or its duplicate note."""
        catalogue = self._catalogue

        def drop() -> None:
            if replaced_id is not None:
                catalogue.delete_image(replaced_id)
            if had_note:
                catalogue.delete_duplicate(path)

        if replaced_id is not None:
            removed_from_index.append(replaced_id)
        if writes is None:
            drop()
        else:
            writes.append(drop)

    # -- re-embedding -------------------------------------------------------------------------

    def needs_reembed(self) -> int:
        """How many images have no fingerprint from the current model."""
        sha = self.embedder.model_sha256
        with self._mutex:
            return self._catalogue.count_images() - self._catalogue.count_embedded(sha)

    def reembed(
        self,
        embedder: Embedder | None = None,
        should_stop: StopCheck | None = None,
        *,
        batch_size: int | None = None,
    ) -> Iterator[AddProgress]:
        """Fingerprint again every image the current (or given) model has not fingerprinted.

        Files that are gone or changed since they were added are reported as failed and keep their
        old fingerprint. Cancelling keeps the batches already done.
        """
        stop = should_stop or (lambda: False)
        if embedder is not None:
            self.use_embedder(embedder)
        summary = AddSummary()
        with self._writing("re-embedding images"):
            model = self.embedder
            self._current_index()
            with self._mutex:
                ids = self._catalogue.ids_without_embedding(model.model_sha256)
            summary.total = len(ids)
            batch = batch_size or DEFAULT_BATCH_SIZE
            for start in range(0, len(ids), batch):
                if stop():
                    summary.cancelled = True
                    break
                with self._mutex:
                    rows = self._catalogue.images_by_ids(ids[start : start + batch])
                for path, outcome, detail in self._reembed_batch(list(rows.values()), model):
                    summary.record(outcome, path, detail)
                    yield AddProgress(
                        "adding", summary.done, summary.total, path, outcome, detail, summary
                    )
            self._finish_writing()

    def _reembed_batch(
        self, rows: list[ImageRow], embedder: Embedder
    ) -> list[tuple[str, AddOutcome, str | None]]:
        outcomes: dict[str, tuple[AddOutcome, str | None]] = {}
        readable: list[ImageRow] = []
        for row in rows:
            state = stat_file(row.path)
            if isinstance(state, str):
                outcomes[row.path] = (AddOutcome.FAILED, f"cannot re-embed: {state}")
            elif not same_state(row, state):
                outcomes[row.path] = (
                    AddOutcome.FAILED,
                    "cannot re-embed: the file changed since it was added (add it again)",
                )
            else:
                readable.append(row)
        vectors: dict[int, np.ndarray] = {}
        by_path = {row.path: row for row in readable}
        for result in embedder.embed_paths(
            [Path(r.path) for r in readable], batch_size=max(1, len(readable))
        ):
            row = by_path[str(result.path)]
            if result.embedding is None:
                outcomes[row.path] = (AddOutcome.FAILED, f"cannot re-embed: {result.error}")
            else:
                vectors[row.id] = result.embedding
                outcomes[row.path] = (AddOutcome.REEMBEDDED, None)
        if vectors:
            with self._mutex, self._catalogue.transaction():
                for image_id, vector in vectors.items():
                    self._catalogue.put_embedding(image_id, embedder.model_sha256, vector)
            self._index_changed(vectors, ())
        return [(row.path, *outcomes[row.path]) for row in rows]

    # -- removing -----------------------------------------------------------------------------

    def remove(self, paths: Sequence[str | os.PathLike[str]]) -> RemoveSummary:
        """Stop protecting files (a folder means everything under it). Files on disk are untouched.

        When an image is removed but a duplicate of it stays, the duplicate becomes the image.
        """
        removed: list[str] = []
        not_found: list[str] = []
        dropped_ids: list[int] = []
        with self._writing("removing images"), self._mutex:
            targets = [normal_path(p) for p in paths]
            rows: dict[int, ImageRow] = {}
            notes: dict[str, DuplicateRow] = {}
            for target in targets:
                found_rows = self._catalogue.images_under(target)
                found_notes = self._catalogue.duplicates_under(target)
                if not found_rows and not found_notes:
                    not_found.append(target)
                rows.update((r.id, r) for r in found_rows)
                notes.update((n.path, n) for n in found_notes)
            with self._catalogue.transaction():
                for note in notes.values():
                    self._catalogue.delete_duplicate(note.path)
                    removed.append(note.path)
                for row in rows.values():
                    survivors = self._catalogue.duplicates_of(row.id)
                    removed.append(row.path)
                    if survivors:
                        heir = survivors[0]
                        self._catalogue.delete_duplicate(heir.path)
                        self._catalogue.update_file_state(
                            row.id, path=heir.path, size=heir.size, mtime_ns=heir.mtime_ns
                        )
                    else:
                        self._catalogue.delete_image(row.id)
                        dropped_ids.append(row.id)
            if self._index is not None:
                self._index_changed({}, dropped_ids)
            if self.has_embedder:
                self._current_index()
                self._finish_writing()
        return RemoveSummary(sorted(removed), not_found)

    # -- reading ------------------------------------------------------------------------------

    def images(self, *, check_files: bool = True) -> list[ProtectedImage]:
        """Every protected image, by path. ``check_files``: look whether each file still exists."""
        with self._mutex:
            rows = self._catalogue.all_images()
            notes = self._catalogue.all_duplicates()
            model_sha = self._embedder.model_sha256 if self._embedder is not None else None
        by_image: dict[int, list[str]] = {}
        for note in notes:
            by_image.setdefault(note.image_id, []).append(note.path)
        return [
            self._protected(row, by_image.get(row.id, ()), model_sha, check_files) for row in rows
        ]

    def images_by_ids(
        self, ids: Sequence[int], *, check_files: bool = False
    ) -> dict[int, ProtectedImage]:
        with self._mutex:
            rows = self._catalogue.images_by_ids(ids)
        return {i: self._protected(r, (), None, check_files) for i, r in rows.items()}

    @staticmethod
    def _protected(
        row: ImageRow, duplicates: Iterable[str], model_sha: str | None, check_files: bool
    ) -> ProtectedImage:
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

    def count(self) -> int:
        with self._mutex:
            return self._catalogue.count_images()

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[ProtectedImage, float]]:
        """The ``k`` images whose fingerprints are closest to ``vector`` (D,), L2 ascending."""
        index = self._current_index()
        with self._mutex:
            ids, distances = index.query(vector, k=k)
            found = self._catalogue.images_by_ids(ids[0].tolist())
        return [
            (self._protected(found[int(i)], (), None, False), float(d))
            for i, d in zip(ids[0], distances[0], strict=True)
            if int(i) in found
        ]

    def neighbourhood(self, vector: np.ndarray, k: int) -> Neighbourhood:
        """Like :meth:`nearest`, with each found image's stored fingerprint and the index size."""
        index = self._current_index()
        with self._mutex:
            ids, distances = index.query(vector, k=k)
            found = self._catalogue.images_by_ids(ids[0].tolist())
            kept = [j for j, i in enumerate(ids[0]) if int(i) in found]
            fingerprints = index.vectors(ids[0][kept])
            searched = len(index)
        images = [
            (self._protected(found[int(ids[0][j])], (), None, False), float(distances[0][j]))
            for j in kept
        ]
        return Neighbourhood(images, fingerprints, searched)

    def info(self) -> LibraryInfo:
        with self._mutex:
            images = self._catalogue.count_images()
            duplicates = self._catalogue.count_duplicates()
            embedder = self.embedder if self.has_embedder else None
            fingerprinted = self._catalogue.count_embedded(embedder.model_sha256) if embedder else 0
            library_model = self._catalogue.get_meta("model_id")
        index_bytes = sum(
            f.stat().st_size for f in FingerprintIndex.saved_files(self.index_folder) if f.exists()
        )
        catalogue_bytes = sum(
            f.stat().st_size for f in self.folder.glob(CATALOGUE_FILE + "*") if f.is_file()
        )
        return LibraryInfo(
            folder=self.folder,
            images=images,
            duplicate_paths=duplicates,
            fingerprinted=fingerprinted,
            needs_reembed=images - fingerprinted if embedder else 0,
            library_model_id=library_model,
            model_id=embedder.metadata.model_id if embedder else None,
            model_sha256=embedder.model_sha256 if embedder else None,
            device=str(embedder.device) if embedder else None,
            precision=embedder.precision if embedder else None,
            index_bytes=index_bytes,
            catalogue_bytes=catalogue_bytes,
        )

    # -- verifying ----------------------------------------------------------------------------

    def verify(
        self, repair: bool = False, progress: Callable[[AddProgress], None] | None = None
    ) -> VerifyReport:
        """Check that catalogue, saved index, model and disk agree; with ``repair``, fix it.

        Repair removes fingerprints that belong to no image, re-embeds images the current model has
        not fingerprinted (their files must still exist), re-adds files changed on disk, marks
        missing files (their fingerprints stay: a protected image stays protected without its
        file) and rebuilds the saved index.
        """
        report = self._inspect()
        if not repair:
            return report
        with self._writing("repairing the library"):
            if report.vectors_without_rows:
                with self._mutex, self._catalogue.transaction():
                    for image_id in self._catalogue.orphan_embedding_ids():
                        self._catalogue.delete_embedding(image_id)
                report.repairs.append(
                    f"removed {len(report.vectors_without_rows)} fingerprints of no image"
                )
            if report.changed_files:
                for step in self.add(report.changed_files):
                    if progress:
                        progress(step)
                    if step.outcome is AddOutcome.FAILED and step.path:
                        report.unrepaired.append((step.path, step.detail or ""))
                report.repairs.append(f"added {len(report.changed_files)} changed files again")
            if report.rows_without_vectors or report.other_model:
                done = 0
                for step in self.reembed():
                    if progress:
                        progress(step)
                    if step.outcome is AddOutcome.REEMBEDDED:
                        done += 1
                    elif step.outcome is AddOutcome.FAILED and step.path:
                        report.unrepaired.append((step.path, step.detail or ""))
                report.repairs.append(f"re-embedded {done} images with the current model")
            with self._mutex:
                missing = set(report.missing_files)
                with self._catalogue.transaction():
                    for row in self._catalogue.all_images():
                        status = "missing" if row.path in missing else "ok"
                        if row.status != status:
                            self._catalogue.set_status(row.id, status)
                if missing:
                    report.repairs.append(
                        f"marked {len(missing)} missing files (their fingerprints are kept; "
                        "`fpgui remove` them to stop protecting them)"
                    )
                ids, vectors = self._catalogue.embeddings(
                    self.embedder.model_sha256, self.embedder.embedding_dim
                )
                self._index = FingerprintIndex.build(
                    ids, vectors, self.embedder.embedding_dim, self.embedder.model_sha256
                )
                self._save_index(self._index)
                self._index_generation = self._catalogue.generation()
                report.repairs.append(f"rebuilt the index from {len(ids)} stored fingerprints")
                self._record_model_if_current()
        after = self._inspect()
        after.repairs, after.unrepaired = report.repairs, report.unrepaired
        return after

    def _inspect(self) -> VerifyReport:
        embedder = self.embedder
        sha, dim = embedder.model_sha256, embedder.embedding_dim
        report = VerifyReport(model_id=embedder.metadata.model_id)
        with self._mutex:
            report.catalogue_problems = self._catalogue.integrity_problems()
            rows = self._catalogue.all_images()
            report.images = len(rows)
            report.library_model_id = self._catalogue.get_meta("model_id")
            report.vectors_without_rows = self._catalogue.orphan_embedding_ids()
            wanted = self._catalogue.embedded_ids(sha)
        report.rows_without_vectors = [r.id for r in rows if r.model_sha256 is None]
        report.other_model = sum(1 for r in rows if r.model_sha256 not in (None, sha))
        for row in rows:
            state = stat_file(row.path)
            if isinstance(state, str):
                report.missing_files.append(row.path)
            elif not same_state(row, state):
                report.changed_files.append(row.path)
        try:
            saved = FingerprintIndex.load(self.index_folder, dim=dim, model_sha256=sha)
        except FingerprintIndexError as exc:
            if len(wanted):
                report.index_problem = str(exc)
            return report
        live = saved.live_ids()
        report.index_entries = len(live)
        extra = np.setdiff1d(live, wanted, assume_unique=True)
        missing = np.setdiff1d(wanted, live, assume_unique=True)
        report.vectors_without_rows += [int(i) for i in extra]
        if len(missing):
            report.index_problem = f"{len(missing)} fingerprints are missing from the saved index"
        return report


def _still_holds(row: ImageRow) -> bool:
    """Whether ``row``'s file is still there, unchanged (so a copy elsewhere is a duplicate)."""
    state = stat_file(row.path)
    return not isinstance(state, str) and same_state(row, state)
