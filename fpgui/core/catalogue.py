"""The library's catalogue: one SQLite file, the source of truth for what is protected.

Tables:
- ``images``: one row per distinct content (sha256) with the path it was added from.
- ``embeddings``: the (D,) float32 fingerprint of each image as a BLOB, with the sha256 of the
  model that made it. The fingerprint index is always rebuilt from here, never from the images.
- ``duplicates``: further paths whose content is already an image (recorded, not embedded twice).
- ``meta``: schema version, the model last used, and a generation counter bumped by every write so
  that another :class:`Catalogue` on the same file knows to refresh its index.

WAL journaling: readers never block the writer, and a killed writer loses at most the transaction
in flight. Callers serialise writes across processes with :mod:`fpgui.core.locking`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgui.core.errors import LibraryError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    added_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ok'
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images(sha256);
CREATE TABLE IF NOT EXISTS embeddings (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    model_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model_sha256);
CREATE TABLE IF NOT EXISTS duplicates (
    path TEXT PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS duplicates_image ON duplicates(image_id);
"""


@dataclass(frozen=True)
class ImageRow:
    """One row of ``images``; ``model_sha256`` is that of its stored embedding, or None."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    width: int
    height: int
    added_at: str
    status: str
    model_sha256: str | None


@dataclass(frozen=True)
class DuplicateRow:
    path: str
    image_id: int
    size: int
    mtime_ns: int
    added_at: str


_IMAGE_COLUMNS = (
    "i.id, i.path, i.size, i.mtime_ns, i.sha256, i.width, i.height, i.added_at, i.status, "
    "e.model_sha256"
)
_IMAGE_SELECT = f"SELECT {_IMAGE_COLUMNS} FROM images i LEFT JOIN embeddings e ON e.image_id = i.id"


def _image_row(raw: tuple[object, ...]) -> ImageRow:
    return ImageRow(*raw)  # type: ignore[arg-type]


class Catalogue:
    """A connection to ``catalogue.sqlite``; threads sharing one must serialise their calls."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._read_schema_version()
            if version > SCHEMA_VERSION:
                raise LibraryError(
                    f"{self.path} was written by a newer fpgui (catalogue schema {version}); "
                    "update fpgui to open it"
                )
            if version < SCHEMA_VERSION:
                self._db.executescript(_SCHEMA)  # only version 0 (a new file) exists so far
                with self.transaction():
                    self.set_meta("schema_version", str(SCHEMA_VERSION))
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"{self.path} is not a usable catalogue: {exc}") from exc

    def _read_schema_version(self) -> int:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()

    # -- transactions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any error and bumps the generation."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise LibraryError(f"cannot write {self.path}: {exc}") from exc
        try:
            yield
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES('generation', '1') "
                "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
            self._db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise LibraryError(f"cannot write {self.path}: {exc}") from exc
            raise

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Within a transaction."""
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def generation(self) -> int:
        value = self.get_meta("generation")
        return int(value) if value else 0

    # -- reads --------------------------------------------------------------------------------

    def image_by_path(self, path: str) -> ImageRow | None:
        raw = self._db.execute(f"{_IMAGE_SELECT} WHERE i.path=?", (path,)).fetchone()
        return _image_row(raw) if raw else None

    def images_by_sha256(self, sha256: str) -> list[ImageRow]:
        rows = self._db.execute(f"{_IMAGE_SELECT} WHERE i.sha256=? ORDER BY i.id", (sha256,))
        return [_image_row(raw) for raw in rows]

    def images_by_ids(self, ids: Sequence[int]) -> dict[int, ImageRow]:
        found: dict[int, ImageRow] = {}
        for start in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for raw in self._db.execute(f"{_IMAGE_SELECT} WHERE i.id IN ({marks})", chunk):
                row = _image_row(raw)
                found[row.id] = row
        return found

    def all_images(self) -> list[ImageRow]:
        return [_image_row(raw) for raw in self._db.execute(f"{_IMAGE_SELECT} ORDER BY i.path")]

    def images_under(self, folder: str) -> list[ImageRow]:
        """Images whose path is ``folder`` itself or lies below it."""
        prefix = folder.rstrip("/\\")
        rows = self._db.execute(
            f"{_IMAGE_SELECT} WHERE i.path = ? OR substr(i.path, 1, ?) IN (?, ?)",
            (prefix, len(prefix) + 1, prefix + "/", prefix + "\\"),
        )
        return [_image_row(raw) for raw in rows]

    def duplicate_by_path(self, path: str) -> DuplicateRow | None:
        raw = self._db.execute(
            "SELECT path, image_id, size, mtime_ns, added_at FROM duplicates WHERE path=?", (path,)
        ).fetchone()
        return DuplicateRow(*raw) if raw else None

    def duplicates_of(self, image_id: int) -> list[DuplicateRow]:
        rows = self._db.execute(
            "SELECT path, image_id, size, mtime_ns, added_at FROM duplicates "
            "WHERE image_id=? ORDER BY added_at, path",
            (image_id,),
        )
        return [DuplicateRow(*raw) for raw in rows]

    def all_duplicates(self) -> list[DuplicateRow]:
        rows = self._db.execute(
            "SELECT path, image_id, size, mtime_ns, added_at FROM duplicates ORDER BY path"
        )
        return [DuplicateRow(*raw) for raw in rows]

    def duplicates_under(self, folder: str) -> list[DuplicateRow]:
        prefix = folder.rstrip("/\\")
        rows = self._db.execute(
            "SELECT path, image_id, size, mtime_ns, added_at FROM duplicates "
            "WHERE path = ? OR substr(path, 1, ?) IN (?, ?)",
            (prefix, len(prefix) + 1, prefix + "/", prefix + "\\"),
        )
        return [DuplicateRow(*raw) for raw in rows]

    def count_images(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def count_duplicates(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM duplicates").fetchone()[0])

    def count_embedded(self, model_sha256: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM embeddings WHERE model_sha256=?", (model_sha256,)
        ).fetchone()
        return int(row[0])

    def embedded_ids(self, model_sha256: str) -> np.ndarray:
        """``(N,)`` int64 ids of images with an embedding from this model, ascending."""
        rows = self._db.execute(
            "SELECT image_id FROM embeddings WHERE model_sha256=? ORDER BY image_id",
            (model_sha256,),
        ).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def embeddings(
        self, model_sha256: str, dim: int, ids: Iterable[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids (N,) int64, vectors (N, dim) float32`` stored for this model (only ``ids``)."""
        if ids is None:
            cursor = self._db.execute(
                "SELECT image_id, vector FROM embeddings WHERE model_sha256=? ORDER BY image_id",
                (model_sha256,),
            )
            raw = cursor.fetchall()
        else:
            wanted = [int(i) for i in ids]
            raw = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                raw.extend(
                    self._db.execute(
                        f"SELECT image_id, vector FROM embeddings "
                        f"WHERE model_sha256=? AND image_id IN ({marks}) ORDER BY image_id",
                        [model_sha256, *chunk],
                    ).fetchall()
                )
        out_ids = np.asarray([r[0] for r in raw], dtype=np.int64)
        vectors = np.zeros((len(raw), dim), dtype=np.float32)
        for row, (_, blob) in enumerate(raw):
            vector = np.frombuffer(blob, dtype=np.float32)
            if vector.shape != (dim,):
                raise LibraryError(
                    f"{self.path}: stored embedding of image {raw[row][0]} has "
                    f"{vector.size} values, the model makes {dim}"
                )
            vectors[row] = vector
        return out_ids, vectors

    def ids_without_embedding(self, model_sha256: str) -> list[int]:
        rows = self._db.execute(
            "SELECT i.id FROM images i LEFT JOIN embeddings e ON e.image_id = i.id "
            "WHERE e.model_sha256 IS NULL OR e.model_sha256 != ? ORDER BY i.id",
            (model_sha256,),
        )
        return [int(r[0]) for r in rows]

    def orphan_embedding_ids(self) -> list[int]:
        rows = self._db.execute(
            "SELECT e.image_id FROM embeddings e LEFT JOIN images i ON i.id = e.image_id "
            "WHERE i.id IS NULL"
        )
        return [int(r[0]) for r in rows]

    def integrity_problems(self) -> list[str]:
        rows = self._db.execute("PRAGMA quick_check").fetchall()
        return [str(r[0]) for r in rows if r[0] != "ok"]

    # -- writes (inside :meth:`transaction`) --------------------------------------------------

    def insert_image(
        self,
        *,
        path: str,
        size: int,
        mtime_ns: int,
        sha256: str,
        width: int,
        height: int,
        added_at: str,
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO images(path, size, mtime_ns, sha256, width, height, added_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)",
            (path, size, mtime_ns, sha256, width, height, added_at),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def put_embedding(self, image_id: int, model_sha256: str, vector: np.ndarray) -> None:
        blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        self._db.execute(
            "INSERT INTO embeddings(image_id, model_sha256, vector) VALUES(?, ?, ?) "
            "ON CONFLICT(image_id) DO UPDATE SET model_sha256 = excluded.model_sha256, "
            "vector = excluded.vector",
            (image_id, model_sha256, blob),
        )

    def update_file_state(
        self, image_id: int, *, path: str, size: int, mtime_ns: int, status: str = "ok"
    ) -> None:
        self._db.execute(
            "UPDATE images SET path=?, size=?, mtime_ns=?, status=? WHERE id=?",
            (path, size, mtime_ns, status, image_id),
        )

    def set_status(self, image_id: int, status: str) -> None:
        self._db.execute("UPDATE images SET status=? WHERE id=?", (status, image_id))

    def delete_image(self, image_id: int) -> None:
        """Its embedding and duplicate notes go with it (foreign keys cascade)."""
        self._db.execute("DELETE FROM images WHERE id=?", (image_id,))

    def delete_embedding(self, image_id: int) -> None:
        self._db.execute("DELETE FROM embeddings WHERE image_id=?", (image_id,))

    def put_duplicate(
        self, *, path: str, image_id: int, size: int, mtime_ns: int, added_at: str
    ) -> None:
        self._db.execute(
            "INSERT INTO duplicates(path, image_id, size, mtime_ns, added_at) "
            "VALUES(?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET image_id=excluded.image_id, "
            "size=excluded.size, mtime_ns=excluded.mtime_ns",
            (path, image_id, size, mtime_ns, added_at),
        )

    def delete_duplicate(self, path: str) -> None:
        self._db.execute("DELETE FROM duplicates WHERE path=?", (path,))


class ContentLookup:
    """ "Is this sha256 already an image?" from any thread, each on its own read-only connection.

    Used by the add pipeline's worker threads to decide whether a file is worth decoding before
    the batch it belongs to reaches the (single-threaded) catalogue.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def __contains__(self, sha256: object) -> bool:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30.0, check_same_thread=False
            )
            self._local.db = db
            with self._guard:
                self._opened.append(db)
        row = db.execute("SELECT 1 FROM images WHERE sha256=? LIMIT 1", (sha256,)).fetchone()
        return row is not None

    def close(self) -> None:
        with self._guard:
            for db in self._opened:
                db.close()
            self._opened.clear()
