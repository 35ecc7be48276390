"""Adding files to a library, one batch at a time: stage, decide, fingerprint, commit.

A batch is staged first: each file is stat'ed, and those the catalogue cannot vouch for are hashed
and decoded on worker threads while the previous batch is being embedded. Committing decides what
each file is (new, unchanged, changed, a duplicate, a moved image), embeds the new content and
writes the batch in one catalogue transaction. The caller applies the returned index changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import torch

from fpgui.core.catalogue import Catalogue, ContentLookup, ImageRow
from fpgui.core.embedder import Embedder
from fpgui.core.errors import FpguiError
from fpgui.core.library_results import AddOutcome
from fpgui.core.scanning import FileState, HashedFile, hash_and_measure, same_state, stat_file


@dataclass(frozen=True)
class CommittedBatch:
    """What one committed batch did, for the caller to report and to apply to the index."""

    outcomes: list[tuple[str, AddOutcome, str | None]]  # (path, outcome, detail), input order
    added: dict[int, np.ndarray]  # image id -> its new fingerprint, (D,) float32
    removed: list[int]  # image ids whose fingerprints are gone


# -- the batch in flight -----------------------------------------------------------------------


@dataclass
class StagedFile:
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


def stage(
    catalogue: Catalogue,
    mutex: threading.RLock,
    paths: list[str],
    pool: ThreadPoolExecutor,
    known: ContentLookup,
    embedder: Embedder,
) -> list[StagedFile]:
    """Stat each file; start preparing (hash, decode) those the catalogue cannot vouch for."""
    staged: list[StagedFile] = []
    for path in paths:
        state = stat_file(path)
        if isinstance(state, str):
            staged.append(StagedFile(path, None, failure=state))
            continue
        item = StagedFile(path, state)
        with mutex:
            row = catalogue.image_by_path(path)
            duplicate = None if row else catalogue.duplicate_by_path(path)
        if row is not None and same_state(row, state):
            if row.model_sha256 == embedder.model_sha256:
                item.unchanged_image = row.id
        elif duplicate is not None and same_state(duplicate, state):
            item.unchanged_duplicate = True
        if item.unchanged_image is None and not item.unchanged_duplicate:
            item.hashed = pool.submit(_prepare, path, known, embedder)
        staged.append(item)
    return staged


def commit_batch(
    catalogue: Catalogue, mutex: threading.RLock, staged: list[StagedFile], embedder: Embedder
) -> CommittedBatch:
    """Decide, embed and commit one batch; its outcomes come back in input order."""
    model_sha = embedder.model_sha256
    outcomes: dict[str, tuple[AddOutcome, str | None]] = {}
    writes: list[Callable[[], None]] = []  # run in order inside the transaction
    to_embed: list[_ToEmbed] = []
    pending_by_sha: dict[str, _ToEmbed] = {}
    moved_rows: dict[int, str] = {}  # image id -> its new path, within this batch
    replaced_rows: set[int] = set()
    removed_from_index: list[int] = []

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
        with mutex:
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
            with mutex:
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
            _drop_old(catalogue, writes, path, replaced_id, had_note, removed_from_index)
            continue
        if holders:
            holder = holders[0]
            holder_path = moved_rows.get(holder.id, holder.path)
            if holder.id in moved_rows or _still_holds(holder):
                _drop_old(catalogue, writes, path, replaced_id, had_note, removed_from_index)
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
                _drop_old(catalogue, writes, path, replaced_id, had_note, removed_from_index)
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

    embedded = _embed_prepared(to_embed, embedder, outcomes)

    added_vectors: dict[int, np.ndarray] = {}
    with mutex, catalogue.transaction():
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
                _drop_old(
                    catalogue, None, entry.path, entry.replaced_id, entry.drop_duplicate_note,
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
    results = [(item.path, *outcomes[item.path]) for item in staged]
    return CommittedBatch(results, added_vectors, removed_from_index)


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
    catalogue: Catalogue,
    writes: list[Callable[[], None]] | None,
    path: str,
    replaced_id: int | None,
    had_note: bool,
    removed_from_index: list[int],
) -> None:
    """Forget what ``path`` used to hold: its old row and/or its duplicate note."""

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


def _still_holds(row: ImageRow) -> bool:
    """Whether ``row``'s file is still there, unchanged (so a copy elsewhere is a duplicate)."""
    state = stat_file(row.path)
    return not isinstance(state, str) and same_state(row, state)
