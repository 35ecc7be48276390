"""Thumbnails for the library grid and the match cards: made off the GUI thread, cached twice.

On disk, under ``paths.cache_dir()/thumbnails``, keyed by the image's SHA-256 (so a moved file
keeps its thumbnail and a changed one gets a new one); in memory, the most recently used
``memory_items`` as QPixmaps. Requests are served newest first and old ones are dropped, so
scrolling quickly through 50,000 images only makes the thumbnails that end up on screen. Workers
hand finished thumbnails over in batches, already in the pixel format a pixmap keeps, and
``ready`` is announced for all that arrived in one interval: each announcement costs the grid a
repaint, so a screenful of new thumbnails costs a few repaints, not one per thumbnail.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

from fpgui.core.paths import cache_dir
from fpgui.ui.tasks import TaskControl, ThreadTaskRunner, run_task

THUMBNAIL_SIZE = 160
MAX_PENDING = 256  # requests older than this many are forgotten (scrolled past)
DELIVERY_INTERVAL_S = 0.03  # a worker hands over what it made at most this often
READY_INTERVAL_MS = 40  # ``ready`` is announced at most this often (each costs views a repaint)


def default_thumbnail_dir() -> Path:
    return cache_dir() / "thumbnails"


def make_thumbnail(source: str, target: Path, size: int) -> QImage:
    """Decode ``source`` at reduced size, write a JPEG thumbnail to ``target``, return it.

    Runs on a worker thread; raises OSError/ValueError (or Pillow's errors) when it cannot.
    """
    from PIL import Image, ImageOps  # imported here: the GUI thread starts without Pillow

    with Image.open(source) as opened:
        opened.draft("RGB", (size * 2, size * 2))
        image = ImageOps.exif_transpose(opened) or opened
        image.thumbnail((size, size))
        if image.mode in ("RGBA", "LA", "P", "PA"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        image = image.convert("RGB")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
    try:
        image.save(partial, "JPEG", quality=85)
        os.replace(partial, target)
    except OSError:
        # A full or read-only cache only costs speed: the thumbnail is still shown.
        with contextlib.suppress(OSError):
            partial.unlink()
    return pil_to_qimage(image)


def pil_to_qimage(image: object) -> QImage:
    """A deep-copied RGB888 QImage of a Pillow image (safe to hand to another thread)."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    qimage = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888)
    return qimage.copy()


def placeholder_pixmap(size: int, text: str = "", background: QColor | None = None) -> QPixmap:
    """A neutral tile shown while a thumbnail is made, or with ``text`` when it cannot be.

    On ``background`` (the colour behind it where it is shown) the tile is opaque: a grid
    scrolled through new cells shows dozens of placeholders a frame, and blending transparent
    ones costs the GUI thread about a millisecond a frame more.
    """
    pixmap = QPixmap(size, size)
    pixmap.fill(background if background is not None else Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    palette = QApplication.palette()
    base = palette.color(QPalette.ColorRole.Mid)
    base.setAlpha(60)
    painter.setBrush(base)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(4, 4, size - 8, size - 8, 8, 8)
    if text:
        painter.setPen(QColor(palette.color(QPalette.ColorRole.PlaceholderText)))
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        painter.drawText(pixmap.rect(), flags, text)
    painter.end()
    return pixmap


class ThumbnailCache(QObject):
    """Ask with :meth:`get`; when a thumbnail was not ready, ``ready(key)`` follows later."""

    ready = Signal(str)

    def __init__(
        self,
        folder: Path | None = None,
        *,
        size: int = THUMBNAIL_SIZE,
        memory_items: int = 2000,
        workers: int = 2,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.folder = folder or default_thumbnail_dir()
        self.size = size
        self.memory_items = memory_items
        self._memory: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, str]] = deque()
        self._queued: set[str] = set()
        self._workers = workers
        self._running = 0
        self._runner = ThreadTaskRunner(max_threads=workers)
        self._announce: list[str] = []  # made, not yet announced by ``ready``
        self._announce_timer = QTimer(self)
        self._announce_timer.setSingleShot(True)
        self._announce_timer.setInterval(READY_INTERVAL_MS)
        self._announce_timer.timeout.connect(self._announce_ready)

    def disk_path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}-{self.size}.jpg"

    def cached(self, key: str) -> QPixmap | None:
        pixmap = self._memory.get(key)
        if pixmap is not None:
            self._memory.move_to_end(key)
        return pixmap

    def failed(self, key: str) -> bool:
        return key in self._failed

    def get(self, key: str, source: str) -> QPixmap | None:
        """The thumbnail of ``source`` (content ``key``: its SHA-256), or None while it is made."""
        pixmap = self.cached(key)
        if pixmap is not None or key in self._failed:
            return pixmap
        with self._lock:
            if key not in self._queued:
                self._queued.add(key)
                self._pending.append((key, source))
                while len(self._pending) > MAX_PENDING:
                    old_key, _ = self._pending.popleft()
                    self._queued.discard(old_key)
        self._start_workers()
        return None

    def shutdown(self) -> None:
        self._announce_timer.stop()
        with self._lock:
            self._pending.clear()
            self._queued.clear()
        self._runner.shutdown(3000)

    def _start_workers(self) -> None:
        while self._running < self._workers and self._pending:
            self._running += 1
            run_task(
                self._runner,
                "thumbnail",
                self._work,
                on_partial=self._deliver,
                on_ended=self._worker_ended,
            )

    def _worker_ended(self) -> None:
        self._running -= 1
        self._start_workers()

    def _work(self, control: TaskControl) -> None:
        """Worker loop: newest request first, until none are left; hands over in batches."""
        batch: list[tuple[str, QImage | None]] = []
        handed_over = time.monotonic()
        while not control.cancelled:
            with self._lock:
                if not self._pending:
                    break
                key, source = self._pending.pop()
            batch.append((key, self._load(key, source)))
            now = time.monotonic()
            if now - handed_over >= DELIVERY_INTERVAL_S:
                control.partial(batch)
                batch, handed_over = [], now
        if batch:
            control.partial(batch)

    def _load(self, key: str, source: str) -> QImage | None:
        target = self.disk_path(key)
        image: QImage | None = None
        if target.is_file():
            image = QImage(str(target))
        if image is None or image.isNull():
            try:
                image = make_thumbnail(source, target, self.size)
            except Exception:  # noqa: BLE001 - any undecodable file just gets the placeholder
                return None
        # Converted here, the GUI thread's QPixmap.fromImage only shares the pixels.
        return image.convertToFormat(QImage.Format.Format_RGB32)

    def _deliver(self, batch: object) -> None:
        assert isinstance(batch, list)
        keys: list[str] = [key for key, _ in batch]
        with self._lock:
            self._queued.difference_update(keys)
        for key, image in batch:
            if image is None or image.isNull():
                self._failed.add(key)
            else:
                self._memory[key] = QPixmap.fromImage(image)
                self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)
        # Views repaint for each announcement: what all workers make in one interval is
        # announced together, so the grid repaints once for it, not once per worker batch.
        self._announce += keys
        if not self._announce_timer.isActive():
            self._announce_timer.start()

    def _announce_ready(self) -> None:
        keys, self._announce = self._announce, []
        for key in keys:
            self.ready.emit(key)

    def icon_size(self) -> QSize:
        return QSize(self.size, self.size)


def prune_disk_cache(folder: Path, limit_bytes: int) -> int:
    """Delete the least recently written thumbnails until the folder is under ``limit_bytes``.

    Runs on a worker thread; returns how many files were deleted.
    """
    entries: list[tuple[float, int, Path]] = []
    total = 0
    if not folder.is_dir():
        return 0
    for sub in folder.iterdir():
        if not sub.is_dir():
            continue
        for file in sub.iterdir():
            try:
                info = file.stat()
            except OSError:
                continue
            entries.append((info.st_mtime, info.st_size, file))
            total += info.st_size
    deleted = 0
    for _, size, file in sorted(entries):
        if total <= limit_bytes:
            break
        with contextlib.suppress(OSError):
            file.unlink()
            total -= size
            deleted += 1
    return deleted
