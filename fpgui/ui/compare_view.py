"""The compare dialog: a query and one of its matches, side by side, wiped, blinked or differenced.

The match is resized to the query's size before any overlay, so wipe, blink and the difference
compare the same pixels. Decoding the match and building the overlays run on a worker thread; the
dialog polls the future with a timer (a future outlives a closed dialog harmlessly, a signal
emitted into a deleted QObject does not).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontDatabase,
    QImage,
    QKeySequence,
    QPen,
    QPixmap,
    QShortcut,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fpgui.core.errors import FpguiError
from fpgui.core.images import load_image
from fpgui.core.library import Library
from fpgui.core.matching import CheckResult, Match

# Display images are capped: zooming past this many pixels on the long side shows nothing new
# on a screen and costs memory (a 100 MP photo would need 400 MB per RGBA copy).
MAX_DISPLAY_SIDE = 4096
BLINK_INTERVAL_MS = 600
POLL_INTERVAL_MS = 30
DIFFERENCE_GAIN = 4.0  # small differences (recompression) must still be visible
SIDE_BY_SIDE_GAP = 16  # px between the two images, in scene units

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fpgui-compare")


class CompareMode(Enum):
    SIDE_BY_SIDE = "Side by side"
    WIPE = "Wipe"
    BLINK = "Blink"
    DIFFERENCE = "Difference"


@dataclass(frozen=True)
class MatchFile:
    """What the worker learnt about the match's file."""

    size_bytes: int | None
    width: int
    height: int
    added_at: datetime | None


@dataclass(frozen=True)
class PreparedImages:
    """Display images (QImage is safe to build off the GUI thread, QPixmap is not)."""

    query: QImage
    match: QImage  # resized to the query's display size
    difference: QImage
    mean_difference: float  # mean absolute pixel difference, 0..1
    match_file: MatchFile


def _to_qimage(image: Image.Image) -> QImage:
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    height, width, _ = rgb.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def _display_size(image: Image.Image) -> Image.Image:
    if max(image.size) <= MAX_DISPLAY_SIDE:
        return image.convert("RGB")
    copy = image.convert("RGB")
    copy.thumbnail((MAX_DISPLAY_SIDE, MAX_DISPLAY_SIDE), Image.Resampling.LANCZOS)
    return copy


def difference_image(query: Image.Image, aligned: Image.Image) -> tuple[Image.Image, float]:
    """Red where the images differ, over a dimmed grey query; and the mean difference in 0..1.

    Both images must be RGB and the same size.
    """
    a = np.asarray(query, dtype=np.float32)
    b = np.asarray(aligned, dtype=np.float32)
    diff = np.abs(a - b).max(axis=2)
    base = np.asarray(query.convert("L"), dtype=np.float32) * 0.35
    red = np.clip(base + diff * DIFFERENCE_GAIN, 0, 255)
    out = np.stack([red, base, base], axis=-1).astype(np.uint8)
    return Image.fromarray(out, "RGB"), float(np.abs(a - b).mean() / 255.0)


def prepare_images(
    query_image: Image.Image, match: Match, library: Library | None
) -> PreparedImages:
    """Worker-thread part: decode the match, align it to the query, build the difference."""
    added_at: datetime | None = None
    if library is not None:
        found = library.images_by_ids([match.image_id])
        if match.image_id in found:
            added_at = found[match.image_id].added_at
    try:
        size_bytes: int | None = os.stat(match.path).st_size
    except OSError:
        size_bytes = None
    match_image = load_image(match.path)
    query = _display_size(query_image)
    aligned = match_image.convert("RGB").resize(query.size, Image.Resampling.LANCZOS)
    difference, mean = difference_image(query, aligned)
    return PreparedImages(
        query=_to_qimage(query),
        match=_to_qimage(aligned),
        difference=_to_qimage(difference),
        mean_difference=mean,
        match_file=MatchFile(size_bytes, match_image.width, match_image.height, added_at),
    )


class ZoomableView(QGraphicsView):
    """A QGraphicsView that zooms with the wheel (around the cursor) and pans by dragging."""

    ZOOM_STEP = 1.25

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QBrush(QColor(48, 48, 48)))
        self.setMinimumSize(480, 320)
        self._fitted = True

    def zoom_factor(self) -> float:
        return float(self.transform().m11())

    def zoom_by(self, factor: float) -> None:
        new = self.zoom_factor() * factor
        if 0.02 <= new <= 64:
            self.scale(factor, factor)
            self._fitted = False

    def zoom_actual(self) -> None:
        self.resetTransform()
        self._fitted = False

    def fit(self) -> None:
        rect = self.scene().itemsBoundingRect()
        if not rect.isEmpty():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self._fitted = True

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt override)
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(self.ZOOM_STEP**steps)
        event.accept()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self._fitted:
            self.fit()


class CompareDialog(QDialog):
    """Query and one match: side by side, wipe (slider), blink, or difference; zoom and pan.

    ``library`` (optional) supplies the date the match was added to the library.
    """

    def __init__(
        self,
        result: CheckResult,
        match: Match,
        query_image: Image.Image,
        parent: QWidget | None = None,
        *,
        library: Library | None = None,
    ) -> None:
        super().__init__(parent)
        self.check_result = result
        self.match = match
        self.prepared: PreparedImages | None = None
        self.query_size: tuple[int, int] = query_image.size
        self.error: str | None = None
        self.setWindowTitle(f"Compare - {Path(result.query).name} and {Path(match.path).name}")
        self.resize(1100, 760)

        self._scene = QGraphicsScene(self)
        self.view = ZoomableView(self._scene, self)
        self._query_item = QGraphicsPixmapItem()
        self._match_item = QGraphicsPixmapItem()  # in side-by-side mode, right of the query
        self._wipe_clip = QGraphicsRectItem()  # clips the overlaid match for the wipe
        self._wipe_clip.setFlag(QGraphicsRectItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        self._wipe_clip.setPen(QPen(Qt.PenStyle.NoPen))
        self._overlay_item = QGraphicsPixmapItem(self._wipe_clip)
        self._wipe_line = QGraphicsRectItem()
        self._wipe_line.setPen(QPen(Qt.PenStyle.NoPen))
        self._wipe_line.setBrush(QBrush(QColor(255, 200, 0)))
        self._difference_item = QGraphicsPixmapItem()
        self._message_item = QGraphicsSimpleTextItem("Loading the library image...")
        self._message_item.setBrush(QBrush(QColor(230, 230, 230)))
        for item in (
            self._query_item,
            self._match_item,
            self._wipe_clip,
            self._wipe_line,
            self._difference_item,
        ):
            self._scene.addItem(item)
            item.setVisible(False)
        self._scene.addItem(self._message_item)

        side = "below" if match.distance < result.threshold else "above"
        # The verdict belongs to the nearest match: it may rest on the ratio test, not on this
        # distance alone, so it is named rather than implied by "below the threshold".
        verdict = (
            f" &nbsp; <b>Verdict:</b> {result.verdict_label}"
            if result.nearest is not None and match.rank == result.nearest.rank
            else ""
        )
        self.header = QLabel(
            f"<b>Query:</b> {_html(Path(result.query).name)} &nbsp; <b>Match #{match.rank}:</b> "
            f"{_html(Path(match.path).name)} &nbsp; <b>Distance</b> {match.distance:.3f} "
            f"({side} the copy threshold {result.threshold:.3f}){verdict}"
        )
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)

        self.mode_buttons = QButtonGroup(self)
        modes = QHBoxLayout()
        for index, mode in enumerate(CompareMode):
            button = QRadioButton(mode.value)
            button.setObjectName(f"mode_{mode.name.lower()}")
            self.mode_buttons.addButton(button, index)
            modes.addWidget(button)
            if mode is CompareMode.SIDE_BY_SIDE:
                button.setChecked(True)
        self.mode_buttons.idToggled.connect(self._mode_toggled)
        self.wipe_slider = QSlider(Qt.Orientation.Horizontal)
        self.wipe_slider.setRange(0, 1000)
        self.wipe_slider.setValue(500)
        self.wipe_slider.setToolTip("Left of the line: the library image; right: the query")
        self.wipe_slider.setAccessibleName("Wipe position")
        self.wipe_slider.valueChanged.connect(self._update_wipe)
        modes.addWidget(QLabel("Wipe:"))
        modes.addWidget(self.wipe_slider, 1)
        self.zoom_in_button = QPushButton("Zoom in")
        self.zoom_out_button = QPushButton("Zoom out")
        self.fit_button = QPushButton("Fit")
        self.actual_button = QPushButton("100%")
        self.zoom_in_button.clicked.connect(lambda: self.view.zoom_by(ZoomableView.ZOOM_STEP))
        self.zoom_out_button.clicked.connect(lambda: self.view.zoom_by(1 / ZoomableView.ZOOM_STEP))
        self.fit_button.clicked.connect(self.view.fit)
        self.actual_button.clicked.connect(self.view.zoom_actual)
        for zoom_button in (
            self.zoom_in_button,
            self.zoom_out_button,
            self.fit_button,
            self.actual_button,
        ):
            modes.addWidget(zoom_button)
        self._shortcut(QKeySequence.StandardKey.ZoomIn, self.zoom_in_button.click)
        self._shortcut(QKeySequence.StandardKey.ZoomOut, self.zoom_out_button.click)
        self._shortcut(QKeySequence("Ctrl+0"), self.fit_button.click)
        self._shortcut(QKeySequence("B"), lambda: self.set_mode(CompareMode.BLINK))

        self.status = QLabel("Loading the library image...")
        self.status.setWordWrap(True)
        self.details = self._details_table()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(modes)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.details)
        layout.addWidget(buttons)

        self._blink_timer = QTimer(self)
        self._blink_timer.setInterval(BLINK_INTERVAL_MS)
        self._blink_timer.timeout.connect(self._blink)
        self._showing_match = False

        self._future: Future[PreparedImages] = _pool.submit(
            prepare_images, query_image, match, library
        )
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_INTERVAL_MS)
        self._poll.timeout.connect(self._check_loaded)
        self._poll.start()
        self._update_controls()

    # -- public state, for the window and for tests -------------------------------------------

    @property
    def is_loaded(self) -> bool:
        """True once the match is shown or its failure explained."""
        return self.prepared is not None or self.error is not None

    @property
    def mode(self) -> CompareMode:
        return list(CompareMode)[max(0, self.mode_buttons.checkedId())]

    def set_mode(self, mode: CompareMode) -> None:
        button = self.mode_buttons.button(list(CompareMode).index(mode))
        button.setChecked(True)

    def match_visible(self) -> bool:
        """Whether the (aligned) library image is what blink currently shows."""
        return self._overlay_item.isVisible() and self._wipe_clip.isVisible()

    def wipe_fraction(self) -> float:
        return self.wipe_slider.value() / self.wipe_slider.maximum()

    def clip_width(self) -> float:
        return float(self._wipe_clip.rect().width())

    # -- loading ------------------------------------------------------------------------------

    def _check_loaded(self) -> None:
        if not self._future.done():
            return
        self._poll.stop()
        try:
            self.prepared = self._future.result()
        except FpguiError as exc:
            self.error = f"The library image cannot be shown: {exc}"
        except (OSError, ValueError, MemoryError) as exc:
            self.error = f"The library image cannot be shown: {type(exc).__name__}: {exc}"
        if self.prepared is None:
            self._message_item.setText(self.error or "")
            self.status.setText(self.error or "")
            self._fill_details(self.details, None)
            self._update_controls()
            return
        prepared = self.prepared
        query = QPixmap.fromImage(prepared.query)
        aligned = QPixmap.fromImage(prepared.match)
        self._query_item.setPixmap(query)
        self._match_item.setPixmap(aligned)
        self._overlay_item.setPixmap(aligned)
        self._difference_item.setPixmap(QPixmap.fromImage(prepared.difference))
        self._message_item.setVisible(False)
        resized = (prepared.match_file.width, prepared.match_file.height) != self.query_size
        note = (
            f" The library image ({prepared.match_file.width} x {prepared.match_file.height}) "
            "is shown resized to the query's size."
            if resized
            else ""
        )
        self.status.setText(
            f"Mean pixel difference after alignment: {prepared.mean_difference:.1%}.{note} "
            "Scroll to zoom, drag to pan."
        )
        self._fill_details(self.details, prepared.match_file)
        self._layout_scene()
        self.view.fit()

    # -- modes --------------------------------------------------------------------------------

    def _mode_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self._layout_scene()
            self.view.fit()

    def _layout_scene(self) -> None:
        self._update_controls()
        if self.prepared is None:
            return
        mode = self.mode
        width = float(self.prepared.query.width())
        height = float(self.prepared.query.height())
        self._query_item.setVisible(mode is not CompareMode.DIFFERENCE)
        self._match_item.setVisible(mode is CompareMode.SIDE_BY_SIDE)
        self._match_item.setPos(width + SIDE_BY_SIDE_GAP, 0)
        self._wipe_clip.setVisible(mode in (CompareMode.WIPE, CompareMode.BLINK))
        self._overlay_item.setVisible(True)
        self._wipe_line.setVisible(mode is CompareMode.WIPE)
        self._difference_item.setVisible(mode is CompareMode.DIFFERENCE)
        self._blink_timer.stop()
        if mode is CompareMode.WIPE:
            self._update_wipe()
        elif mode is CompareMode.BLINK:
            self._wipe_clip.setRect(QRectF(0, 0, width, height))
            self._showing_match = True
            self._blink_timer.start()
        self._scene.setSceneRect(self._scene.itemsBoundingRect())

    def _update_wipe(self) -> None:
        if self.prepared is None or self.mode is not CompareMode.WIPE:
            return
        width = float(self.prepared.query.width())
        height = float(self.prepared.query.height())
        x = width * self.wipe_fraction()
        self._wipe_clip.setRect(QRectF(0, 0, x, height))
        line = max(2.0, width / 400)
        self._wipe_line.setRect(QRectF(x - line / 2, 0, line, height))

    def _blink(self) -> None:
        self._showing_match = not self._showing_match
        self._wipe_clip.setVisible(self._showing_match)

    def _update_controls(self) -> None:
        loaded = self.prepared is not None
        for button in self.mode_buttons.buttons():
            button.setEnabled(loaded)
        self.wipe_slider.setEnabled(loaded and self.mode is CompareMode.WIPE)
        for zoom_button in (
            self.zoom_in_button,
            self.zoom_out_button,
            self.fit_button,
            self.actual_button,
        ):
            zoom_button.setEnabled(loaded)

    def _shortcut(
        self, key: QKeySequence | QKeySequence.StandardKey, slot: Callable[[], object]
    ) -> None:
        shortcut = QShortcut(key, self)
        shortcut.activated.connect(slot)

    # -- details ------------------------------------------------------------------------------

    def _details_table(self) -> QTableWidget:
        rows = ["Name", "Path", "SHA-256", "File size", "Dimensions", "Added to the library"]
        table = QTableWidget(len(rows), 2, self)
        table.setHorizontalHeaderLabels(["Query", f"Library image (match #{self.match.rank})"])
        table.setVerticalHeaderLabels(rows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.setWordWrap(False)
        table.setMaximumHeight(
            table.verticalHeader().length() + table.horizontalHeader().height() + 6
        )
        self._fill_details(table, None)
        return table

    def _fill_details(self, table: QTableWidget, match_file: MatchFile | None) -> None:
        query_path = Path(self.check_result.query)
        try:
            query_bytes: int | None = query_path.stat().st_size if query_path.is_file() else None
        except OSError:
            query_bytes = None
        query_column = [
            query_path.name,
            self.check_result.query,
            self.check_result.sha256,
            _size_text(query_bytes),
            _dims(self.query_size),
            "- (not in the library)",
        ]
        match_column = [
            Path(self.match.path).name,
            self.match.path,
            self.match.sha256,
            _size_text(match_file.size_bytes if match_file else None),
            _dims((match_file.width, match_file.height)) if match_file else "-",
            match_file.added_at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            if match_file and match_file.added_at
            else "-",
        ]
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for row, (left, right) in enumerate(zip(query_column, match_column, strict=True)):
            for column, text in enumerate((left, right)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if row == 2:
                    item.setFont(QFont(mono))
                table.setItem(row, column, item)

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        self._blink_timer.stop()
        self._poll.stop()
        self._future.cancel()
        super().done(result)


def _html(text: str) -> str:
    return html.escape(text)


def _dims(size: tuple[int, int]) -> str:
    return f"{size[0]} x {size[1]} px"


def _size_text(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB ({size:,} bytes)"
    return f"{size / (1024 * 1024):.1f} MiB ({size:,} bytes)"
