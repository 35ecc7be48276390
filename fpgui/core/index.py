"""The fingerprint index: approximate nearest neighbours (hnswlib, L2) over image embeddings.

On disk a saved index is two files in one folder: ``index.json`` (dimension, space, model sha256,
search parameters, counts, deleted ids, and the name and sha256 of the graph file) and the graph
itself, ``index-<sha256 prefix>.bin``. Each save writes a new graph file atomically, then the
metadata atomically, then deletes older graph files; whatever fails, ``index.json`` names a graph
that is complete and matches its hash, so the previous save stays loadable. A graph file that does
not match its hash (bit rot, torn copy) is refused before hnswlib reads it.

Thread-safety: callers serialise writes (``add``, ``remove``, ``save``, setting ``ef``) against
everything else; any number of ``query`` calls may run at the same time.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from fpgui.core.atomic import atomic_path, atomic_write_text
from fpgui.core.errors import FingerprintIndexError

FORMAT_VERSION = 1
METADATA_NAME = "index.json"
_GRAPH_GLOB = "index-*.bin"
_SPACE = "l2"
_HASH_CHUNK = 1 << 20

# Search defaults, measured by benchmarks/index_real.py (see the README's benchmark section).
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF = 128


class FingerprintIndex:
    """Ids (int64 >= 0, e.g. catalogue row ids) mapped to ``(dim,)`` float32 vectors; L2 queries."""

    def __init__(
        self,
        dim: int,
        model_sha256: str,
        *,
        ef: int = DEFAULT_EF,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        capacity: int = 1024,
    ) -> None:
        if dim < 1 or ef < 1 or m < 2 or ef_construction < 1:
            raise ValueError(f"invalid index parameters: {dim=} {ef=} {m=} {ef_construction=}")
        self._dim = dim
        self._model_sha256 = model_sha256
        self._ef = ef
        self._m = m
        self._ef_construction = ef_construction
        self._index = hnswlib.Index(space=_SPACE, dim=dim)
        self._index.init_index(max_elements=max(1, capacity), M=m, ef_construction=ef_construction)
        self._index.set_ef(ef)
        self._live: set[int] = set()
        self._deleted: set[int] = set()  # still in the graph, marked deleted
        self._ef_lock = threading.Lock()

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, dim: int, model_sha256: str, **kwargs: Any
    ) -> FingerprintIndex:
        """A new index over ``ids`` (N,) and ``vectors`` (N, dim), e.g. the catalogue's stored
        embeddings; no image is read. ``kwargs`` are the constructor's (ef, m, ...)."""
        kwargs["capacity"] = max(int(kwargs.get("capacity", 1024)), len(ids))
        index = cls(dim, model_sha256, **kwargs)
        index.add(ids, vectors)
        return index

    @classmethod
    def load(
        cls, folder: Path, *, dim: int | None = None, model_sha256: str | None = None
    ) -> FingerprintIndex:
        """The index saved in ``folder``; raises :class:`FingerprintIndexError` when files are
        missing or corrupt, or when ``dim``/``model_sha256`` (if given) differ from the saved.

        Its ``ef`` is the saved one or :data:`DEFAULT_EF`, whichever is larger."""
        folder = Path(folder)
        meta = _read_metadata(folder)
        if dim is not None and meta["dim"] != dim:
            raise FingerprintIndexError(
                f"index in {folder} has dimension {meta['dim']}, the model produces {dim}"
            )
        if model_sha256 is not None and meta["model_sha256"] != model_sha256:
            raise FingerprintIndexError(
                f"index in {folder} was built with model {meta['model_sha256'][:12]}, "
                f"the current model is {model_sha256[:12]}; rebuild the index"
            )
        graph = folder / meta["index_file"]
        _check_graph_file(graph, meta["index_sha256"])
        # An index saved under an older, lower default ef would otherwise keep its poorer recall.
        index = cls(
            meta["dim"], meta["model_sha256"], ef=max(meta["ef"], DEFAULT_EF), m=meta["m"],
            ef_construction=meta["ef_construction"], capacity=1,
        )  # fmt: skip
        # A fresh, un-initialised hnswlib index: load_index on an initialised one warns.
        index._index = hnswlib.Index(space=_SPACE, dim=meta["dim"])
        try:
            index._index.load_index(str(graph), max_elements=meta["capacity"])
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise FingerprintIndexError(f"{graph}: hnswlib cannot read it ({exc})") from None
        index._index.set_ef(index._ef)
        index._deleted = {int(i) for i in meta["deleted_ids"]}
        stored = {int(i) for i in index._index.get_ids_list()}
        index._live = stored - index._deleted
        if len(index._live) != meta["count"] or not index._deleted <= stored:
            raise FingerprintIndexError(f"{graph}: ids in the graph disagree with {METADATA_NAME}")
        return index

    # --- properties ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_sha256(self) -> str:
        return self._model_sha256

    @property
    def capacity(self) -> int:
        """Slots allocated, live and deleted together; grows on demand."""
        return int(self._index.get_max_elements())

    @property
    def ef(self) -> int:
        """Search breadth: higher is slower and more exact. A query uses at least its ``k``."""
        return self._ef

    @ef.setter
    def ef(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"ef must be positive, not {value}")
        self._ef = value
        self._index.set_ef(value)

    @property
    def size_bytes(self) -> int:
        """Bytes of the graph and vectors as saved; about what the index holds in memory."""
        return int(self._index.index_file_size())

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, int | np.integer) and int(item) in self._live

    def live_ids(self) -> np.ndarray:
        """``(N,)`` int64, ascending: the ids a query can return."""
        return np.array(sorted(self._live), dtype=np.int64)

    # --- changes ------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Insert ``vectors`` (N, dim) float under ``ids`` (N,) int >= 0, replacing any vector an
        id had before, live or removed. Capacity grows geometrically as needed."""
        id_array = _as_ids(ids)
        matrix = self._as_vectors(vectors)
        if len(id_array) != len(matrix):
            raise ValueError(f"{len(id_array)} ids but {len(matrix)} vectors")
        if len(id_array) == 0:
            return
        id_list = [int(i) for i in id_array]
        new = sum(1 for i in id_list if i not in self._live and i not in self._deleted)
        self._grow_to(int(self._index.get_current_count()) + new)
        # hnswlib updates an existing label in place and un-marks it when it was deleted.
        self._index.add_items(matrix, id_array.astype(np.uint64))
        self._live.update(id_list)
        self._deleted.difference_update(id_list)

    def remove(self, ids: Iterable[int]) -> None:
        """Mark ``ids`` deleted so queries never return them; unknown ids are ignored."""
        for raw in ids:
            item = int(raw)
            if item in self._live:
                self._index.mark_deleted(item)
                self._live.discard(item)
                self._deleted.add(item)

    def _grow_to(self, needed: int) -> None:
        capacity = self.capacity
        if needed > capacity:
            self._index.resize_index(max(needed, 2 * capacity))

    # --- queries ------------------------------------------------------------------------------

    def query(self, vectors: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Nearest live ids for ``vectors`` (dim,) or (N, dim).

        Returns ``ids`` (N, k') int64 and ``distances`` (N, k') float32, true (not squared) L2,
        ascending per row; ``k' = min(k, len(self))``, so an empty index gives (N, 0) arrays.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, not {k}")
        matrix = self._as_vectors(np.atleast_2d(vectors))
        k_live = min(k, len(self._live))
        if k_live == 0 or len(matrix) == 0:
            shape = (len(matrix), k_live)
            return np.zeros(shape, np.int64), np.zeros(shape, np.float32)
        labels, squared = self._knn(matrix, k_live)
        distances = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
        return labels.astype(np.int64), distances

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of live ``ids`` (N,), as ``(N, dim)`` float32 in the same order."""
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        unknown = [int(i) for i in id_array if int(i) not in self._live]
        if unknown:
            raise KeyError(f"ids not in the index: {unknown[:5]}")
        if len(id_array) == 0:
            return np.zeros((0, self._dim), np.float32)
        stored = self._index.get_items(id_array.astype(np.uint64))
        return np.asarray(stored, dtype=np.float32).reshape(len(id_array), self._dim)

    def _knn(self, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """hnswlib's answer (labels, squared L2); exact search when the graph cannot give k."""
        try:
            if k <= self._ef:
                return self._raw_knn(matrix, k)
            with self._ef_lock:  # raise ef for this query only; a concurrent query may share it
                self._index.set_ef(k)
                try:
                    return self._raw_knn(matrix, k)
                finally:
                    self._index.set_ef(self._ef)
        except RuntimeError:
            # Heavy deletion can leave fewer than k reachable live nodes for some queries.
            return self._exact_knn(matrix, k)

    def _raw_knn(self, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        labels, squared = self._index.knn_query(matrix, k=k)
        return np.asarray(labels), np.asarray(squared)

    def _exact_knn(self, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids = self.live_ids()
        stored = np.asarray(self._index.get_items(ids.astype(np.uint64)), dtype=np.float32)
        squared = (
            np.sum(matrix**2, axis=1)[:, None]
            - 2.0 * matrix @ stored.T
            + np.sum(stored**2, axis=1)[None, :]
        )
        order = np.argsort(squared, axis=1, kind="stable")[:, :k]
        return ids[order], np.take_along_axis(squared, order, axis=1)

    def _as_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """``(N, dim)`` C-contiguous float32, or an error naming what is wrong."""
        array = np.asarray(vectors)
        if array.ndim != 2:
            raise ValueError(f"vectors must be (N, {self._dim}), got shape {array.shape}")
        if array.shape[1] != self._dim:
            raise FingerprintIndexError(
                f"vectors have dimension {array.shape[1]}, the index holds {self._dim}"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"vectors must be floating point, got {array.dtype}")
        matrix = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinite values")
        return matrix

    # --- persistence --------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index into ``folder`` atomically (see the module docstring)."""
        folder = Path(folder)
        try:
            graph_sha, graph_name = self._write_graph(folder)
            metadata = self._metadata(graph_name, graph_sha)
            atomic_write_text(folder / METADATA_NAME, json.dumps(metadata, indent=1))
        except OSError as exc:
            raise FingerprintIndexError(f"could not save the index in {folder}: {exc}") from exc
        for stale in folder.glob(_GRAPH_GLOB):
            if stale.name != graph_name:
                with contextlib.suppress(OSError):
                    stale.unlink()

    @staticmethod
    def saved_files(folder: Path) -> list[Path]:
        """The files a saved index in ``folder`` consists of (metadata first); [] if none."""
        meta_path = Path(folder) / METADATA_NAME
        try:
            name = json.loads(meta_path.read_text("utf-8"))["index_file"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [meta_path, Path(folder) / str(name)]

    def _write_graph(self, folder: Path) -> tuple[str, str]:
        """Save the hnswlib graph atomically under a fresh name; returns (sha256, file name)."""
        name = f"index-{secrets.token_hex(8)}.bin"
        with atomic_path(folder / name) as pending:
            self._index.save_index(str(pending))
            if pending.stat().st_size != self.size_bytes:  # hnswlib does not report failed writes
                raise OSError(errno.EIO, f"graph file is incomplete (disk full?): {pending}")
            sha = _sha256_file(pending)
        return sha, name

    def _metadata(self, graph_name: str, graph_sha: str) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "space": _SPACE,
            "dim": self._dim,
            "model_sha256": self._model_sha256,
            "ef": self._ef,
            "m": self._m,
            "ef_construction": self._ef_construction,
            "count": len(self._live),
            "max_id": max(self._live | self._deleted, default=-1),
            "capacity": self.capacity,
            "deleted_ids": sorted(self._deleted),
            "index_file": graph_name,
            "index_sha256": graph_sha,
        }


def _as_ids(ids: np.ndarray) -> np.ndarray:
    """``(N,)`` int64 ids, each >= 0 and unique."""
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"ids must be (N,), got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {array.dtype}")
    id_array = array.astype(np.int64)
    if id_array.size and id_array.min() < 0:
        raise ValueError("ids must be >= 0")
    if len(np.unique(id_array)) != len(id_array):
        raise ValueError("ids repeat within one call")
    return id_array


_REQUIRED_KEYS = {
    "format_version": int, "space": str, "dim": int, "model_sha256": str, "ef": int, "m": int,
    "ef_construction": int, "count": int, "capacity": int, "deleted_ids": list,
    "index_file": str, "index_sha256": str,
}  # fmt: skip


def _read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / METADATA_NAME
    try:
        meta = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        message = f"no saved index in {folder}: {METADATA_NAME} is missing"
        raise FingerprintIndexError(message) from None
    except (OSError, ValueError) as exc:
        raise FingerprintIndexError(f"{path} is unreadable or corrupt: {exc}") from None
    if not isinstance(meta, dict):
        raise FingerprintIndexError(f"{path} is corrupt: not a JSON object")
    for key, kind in _REQUIRED_KEYS.items():
        if not isinstance(meta.get(key), kind):
            message = f"{path} is corrupt: {key!r} missing or not {kind.__name__}"
            raise FingerprintIndexError(message)
    if meta["format_version"] != FORMAT_VERSION:
        raise FingerprintIndexError(
            f"{path} has format version {meta['format_version']}, this fpgui reads {FORMAT_VERSION}"
        )
    if meta["space"] != _SPACE or "/" in meta["index_file"] or "\\" in meta["index_file"]:
        raise FingerprintIndexError(f"{path} is corrupt: unexpected space or file name")
    return meta


def _check_graph_file(graph: Path, expected_sha256: str) -> None:
    try:
        actual = _sha256_file(graph)
    except FileNotFoundError:
        raise FingerprintIndexError(f"index file {graph} is missing") from None
    except OSError as exc:
        raise FingerprintIndexError(f"index file {graph} is unreadable: {exc}") from None
    if actual != expected_sha256:
        raise FingerprintIndexError(
            f"index file {graph} does not match its metadata (corrupt or torn save); rebuild it"
        )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
