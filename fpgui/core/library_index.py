"""A library's FingerprintIndex, kept as a cache of the fingerprints in its catalogue.

The catalogue is the source of truth. Whenever the index is needed it is reconciled with the
catalogue's latest generation: ids missing from the index are added from stored fingerprints, ids
no longer in the catalogue are removed, and an unreadable index (missing, corrupt, another model's)
is rebuilt. Committed batches are applied in memory and saved atomically every
``INDEX_SAVE_INTERVAL_S`` seconds and at the end of each write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from fpgui.core.catalogue import Catalogue
from fpgui.core.embedder import Embedder
from fpgui.core.errors import FingerprintIndexError, LibraryBusyError, LibraryError
from fpgui.core.index import FingerprintIndex
from fpgui.core.locking import WriteLock

# The index is a cache of the catalogue, so saving it after every batch would only cost time on a
# big library; a crash between saves costs one reconcile at the next open.
INDEX_SAVE_INTERVAL_S = 5.0


class IndexCache:
    """The index of the current model's fingerprints, saved in ``folder``.

    ``mutex`` is the library's lock around catalogue and index access (re-entrant); ``embedder``
    gives the model in use, called only when the index has to be reconciled; ``writing`` says
    whether the library holds its write lock (at ``lock_path``) right now.
    """

    def __init__(
        self,
        folder: Path,
        catalogue: Catalogue,
        mutex: threading.RLock,
        embedder: Callable[[], Embedder],
        lock_path: Path,
        writing: Callable[[], bool],
    ) -> None:
        self.folder = folder
        self._catalogue = catalogue
        self._mutex = mutex
        self._embedder = embedder
        self._lock_path = lock_path
        self._writing = writing
        self._index: FingerprintIndex | None = None
        self._generation = -1
        self._dirty = False
        self._last_save = 0.0

    def current(self) -> FingerprintIndex:
        """The index for the current model, in step with the catalogue's latest generation."""
        with self._mutex:
            generation = self._catalogue.generation()
            if self._index is None or generation != self._generation:
                self._index = self._reconciled(self._index)
                self._generation = generation
            return self._index

    def forget(self) -> None:
        """Drop the index in memory (the model changed); it is reconciled when next needed."""
        with self._mutex:
            self._index = None
            self._dirty = False

    def changed(self, added: dict[int, np.ndarray], removed: Iterable[int]) -> None:
        """Apply a committed batch to the in-memory index; save when due."""
        with self._mutex:
            index = self._index
            if index is None:
                return
            index.remove(removed)
            if added:
                ids = np.fromiter(added.keys(), dtype=np.int64, count=len(added))
                index.add(ids, np.stack(list(added.values())))
            self._generation = self._catalogue.generation()
            self._dirty = True
            if time.monotonic() - self._last_save >= INDEX_SAVE_INTERVAL_S:
                self._save(index)

    def mark_in_step(self) -> None:
        """Take the catalogue's latest write as reflected: it changed no fingerprint."""
        with self._mutex:
            self._generation = self._catalogue.generation()

    def save_if_dirty(self) -> None:
        with self._mutex:
            if self._index is not None and self._dirty:
                self._save(self._index)

    def rebuild(self) -> int:
        """Build the index afresh from the catalogue's fingerprints and save it; returns its size.

        For repair: the caller holds the write lock.
        """
        embedder = self._embedder()
        sha, dim = embedder.model_sha256, embedder.embedding_dim
        with self._mutex:
            ids, vectors = self._catalogue.embeddings(sha, dim)
            self._index = FingerprintIndex.build(ids, vectors, dim, sha)
            self._save(self._index)
            self._generation = self._catalogue.generation()
        return len(ids)

    def _reconciled(self, index: FingerprintIndex | None) -> FingerprintIndex:
        embedder = self._embedder()
        sha, dim = embedder.model_sha256, embedder.embedding_dim
        if index is None:
            try:
                index = FingerprintIndex.load(self.folder, dim=dim, model_sha256=sha)
            except FingerprintIndexError:
                index = None  # missing, corrupt or another model's: rebuilt below
        wanted = self._catalogue.embedded_ids(sha)
        if index is None:
            ids, vectors = self._catalogue.embeddings(sha, dim)
            index = FingerprintIndex.build(ids, vectors, dim, sha)
            self._dirty = True
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
                self._dirty = True
        if self._dirty:
            self._save_if_free(index)
        return index

    def _save_if_free(self, index: FingerprintIndex) -> None:
        """Persist a repaired index when no other process is writing; otherwise leave it to them."""
        if self._writing():
            self._save(index)
            return
        probe = WriteLock(self._lock_path, "saving the index", timeout=0.0)
        try:
            probe.acquire()
        except LibraryBusyError:
            return
        try:
            self._save(index)
        except LibraryError:
            pass  # a reader cannot fix a full disk; the next writer saves it
        finally:
            probe.release()

    def _save(self, index: FingerprintIndex) -> None:
        try:
            index.save(self.folder)
        except FingerprintIndexError as exc:
            raise LibraryError(
                f"{exc}. The catalogue is intact; the index is rebuilt from it next time"
            ) from exc
        self._dirty = False
        self._last_save = time.monotonic()
