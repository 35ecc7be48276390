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

This module is the :class:`Library` that callers use; it composes ``library_adding`` (one batch of
an add), ``library_reembed`` (one batch of a re-embed), ``library_index`` (the index as a cache of
the catalogue), ``library_verify`` (the checks and the repair actions) and ``library_results``
(what the methods hand back, re-exported here).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fpgui.core.catalogue import Catalogue, ContentLookup, DuplicateRow, ImageRow
from fpgui.core.embedder import DEFAULT_BATCH_SIZE, Embedder
from fpgui.core.errors import LibraryBusyError, LibraryError
from fpgui.core.index import FingerprintIndex
from fpgui.core.library_adding import commit_batch, stage
from fpgui.core.library_index import IndexCache
from fpgui.core.library_reembed import reembed_batch
from fpgui.core.library_results import (
    AddOutcome,
    AddProgress,
    AddSummary,
    LibraryInfo,
    Neighbourhood,
    ProtectedImage,
    RemoveSummary,
    VerifyReport,
    protected_image,
)
from fpgui.core.library_verify import (
    follow_repair,
    inspect_library,
    mark_missing_files,
    remove_orphan_fingerprints,
)
from fpgui.core.locking import WriteLock
from fpgui.core.scanning import ScanFailure, StopCheck, normal_path, scan_image_files

CATALOGUE_FILE = "catalogue.sqlite"
INDEX_DIR = "index"
LOCK_FILE = "write.lock"
DEFAULT_LOCK_TIMEOUT = 10.0
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
        self._lock = WriteLock(folder / LOCK_FILE, "writing", lock_timeout)
        self._write_depth = 0
        self._index = IndexCache(
            self.index_folder,
            catalogue,
            self._mutex,
            embedder=lambda: self.embedder,
            lock_path=folder / LOCK_FILE,
            writing=lambda: self._write_depth > 0,
        )

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
            library._index.current()  # reconcile now: a crashed writer is repaired on open
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
            self._index.forget()

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

    def _finish_writing(self) -> None:
        with self._mutex:
            self._index.save_if_dirty()
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
        self._index.mark_in_step()

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
            self._index.current()
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
            catalogue, mutex = self._catalogue, self._mutex
            pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fpgui-prepare")
            known = ContentLookup(catalogue.path)
            try:
                chunks = [files[i : i + batch] for i in range(0, len(files), batch)]
                staged = stage(catalogue, mutex, chunks[0], pool, known, embedder) if chunks else []
                for number in range(len(chunks)):
                    if stop():
                        summary.cancelled = True
                        break
                    current = staged
                    # Hash the next batch while this one is decoded and embedded.
                    if number + 1 < len(chunks):
                        staged = stage(catalogue, mutex, chunks[number + 1], pool, known, embedder)
                    committed = commit_batch(catalogue, mutex, current, embedder)
                    self._index.changed(committed.added, committed.removed)
                    for path, outcome, detail in committed.outcomes:
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
            self._index.current()
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
                committed = reembed_batch(self._catalogue, self._mutex, list(rows.values()), model)
                if committed.added:
                    self._index.changed(committed.added, committed.removed)
                for path, outcome, detail in committed.outcomes:
                    summary.record(outcome, path, detail)
                    yield AddProgress(
                        "adding", summary.done, summary.total, path, outcome, detail, summary
                    )
            self._finish_writing()

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
            self._index.changed({}, dropped_ids)
            if self.has_embedder:
                self._index.current()
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
            protected_image(row, by_image.get(row.id, ()), model_sha, check_files) for row in rows
        ]

    def images_by_ids(
        self, ids: Sequence[int], *, check_files: bool = False
    ) -> dict[int, ProtectedImage]:
        with self._mutex:
            rows = self._catalogue.images_by_ids(ids)
        return {i: protected_image(r, (), None, check_files) for i, r in rows.items()}

    def count(self) -> int:
        with self._mutex:
            return self._catalogue.count_images()

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[ProtectedImage, float]]:
        """The ``k`` images whose fingerprints are closest to ``vector`` (D,), L2 ascending."""
        index = self._index.current()
        with self._mutex:
            ids, distances = index.query(vector, k=k)
            found = self._catalogue.images_by_ids(ids[0].tolist())
        return [
            (protected_image(found[int(i)], (), None, False), float(d))
            for i, d in zip(ids[0], distances[0], strict=True)
            if int(i) in found
        ]

    def neighbourhood(self, vector: np.ndarray, k: int) -> Neighbourhood:
        """Like :meth:`nearest`, with each found image's stored fingerprint and the index size."""
        index = self._index.current()
        with self._mutex:
            ids, distances = index.query(vector, k=k)
            found = self._catalogue.images_by_ids(ids[0].tolist())
            kept = [j for j, i in enumerate(ids[0]) if int(i) in found]
            fingerprints = index.vectors(ids[0][kept])
            searched = len(index)
        images = [
            (protected_image(found[int(ids[0][j])], (), None, False), float(distances[0][j]))
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
                remove_orphan_fingerprints(self._catalogue, self._mutex)
                report.repairs.append(
                    f"removed {len(report.vectors_without_rows)} fingerprints of no image"
                )
            if report.changed_files:
                follow_repair(self.add(report.changed_files), report, progress)
                report.repairs.append(f"added {len(report.changed_files)} changed files again")
            if report.rows_without_vectors or report.other_model:
                done = follow_repair(self.reembed(), report, progress)
                report.repairs.append(f"re-embedded {done} images with the current model")
            with self._mutex:
                missing = mark_missing_files(self._catalogue, report.missing_files)
                if missing:
                    report.repairs.append(
                        f"marked {missing} missing files (their fingerprints are kept; "
                        "`fpgui remove` them to stop protecting them)"
                    )
                rebuilt_from = self._index.rebuild()
                report.repairs.append(f"rebuilt the index from {rebuilt_from} stored fingerprints")
                self._record_model_if_current()
        after = self._inspect()
        after.repairs, after.unrepaired = report.repairs, report.unrepaired
        return after

    def _inspect(self) -> VerifyReport:
        return inspect_library(self._catalogue, self._mutex, self.embedder, self.index_folder)
