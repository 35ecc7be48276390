"""The check view's drop target, and reading what was dropped or pasted.

What a drop or a paste can carry, in the order it is used: local files or folders (``text/uri-list``
with ``file:`` URLs), image data (``image/*`` or ``application/x-qt-image``, what a web browser
sends along with the page URL), or a web address only, which we cannot fetch and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent, QImage
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


@dataclass
class DroppedContent:
    """What a drop or paste carried; ``problem`` is set when nothing in it can be checked."""

    paths: list[str] = field(default_factory=list)
    image: QImage | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return bool(self.paths) or self.image is not None


def read_mime(mime: QMimeData | None) -> DroppedContent:
    """Local paths first, then image data, else a reason why nothing can be checked."""
    if mime is None:
        return DroppedContent(problem="Nothing to check: the clipboard is empty.")
    web: list[str] = []
    paths: list[str] = []
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                paths.append(url.toLocalFile())
            elif url.isValid():
                web.append(url.toString())
    if paths:
        return DroppedContent(paths=paths)
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return DroppedContent(image=image)
    for fmt in mime.formats():
        if fmt.startswith("image/"):
            image = QImage.fromData(mime.data(fmt))
            if not image.isNull():
                return DroppedContent(image=image)
    if web:
        return DroppedContent(
            problem=(
                f"Only a web address was dropped ({web[0]}). fpgui does not download images: "
                "save the image first, or drag the picture itself."
            )
        )
    if mime.hasText() and mime.text().strip():
        return DroppedContent(problem="Text cannot be checked: drop or paste an image or a file.")
    return DroppedContent(problem="Nothing that can be checked was dropped or pasted.")


def accepts(mime: QMimeData | None) -> bool:
    if mime is None:
        return False
    return mime.hasUrls() or mime.hasImage() or any(f.startswith("image/") for f in mime.formats())


class DropZone(QFrame):
    """A large, obvious target; emits ``dropped`` with what it received."""

    dropped = Signal(object)  # DroppedContent
    open_requested = Signal()
    paste_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setMinimumHeight(120)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        self._title = QLabel("Drop an image here to check it")
        font = self._title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self._title.setFont(font)
        self._title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint = QLabel(
            "Several files or a folder are checked as a batch. You can also paste an image "
            "(Ctrl+V) or drag a picture from a web browser."
        )
        self._hint.setWordWrap(True)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton("Open image\u2026")
        self.open_button.clicked.connect(self.open_requested)
        self.paste_button = QPushButton("Paste")
        self.paste_button.clicked.connect(self.paste_requested)
        buttons = QWidget()
        row = QHBoxLayout(buttons)
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        row.addWidget(self.open_button)
        row.addWidget(self.paste_button)
        row.addStretch(1)
        layout.addStretch(1)
        layout.addWidget(self._title)
        layout.addWidget(self._hint)
        layout.addWidget(buttons)
        layout.addStretch(1)
        self._set_hover(False)

    def set_message(self, title: str, hint: str | None = None) -> None:
        self._title.setText(title)
        if hint is not None:
            self._hint.setText(hint)

    def title(self) -> str:
        return self._title.text()

    def set_compact(self, compact: bool) -> None:
        self._hint.setVisible(not compact)
        self.setMinimumHeight(90 if compact else 160)

    def _set_hover(self, hover: bool) -> None:
        style = "solid" if hover else "dashed"
        colour = "palette(highlight)" if hover else "palette(mid)"
        self.setStyleSheet(f"#dropZone {{ border: 2px {style} {colour}; border-radius: 12px; }}")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if accepts(event.mimeData()):
            event.acceptProposedAction()
            self._set_hover(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        if accepts(event.mimeData()):
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        self._set_hover(False)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self._set_hover(False)
        content = read_mime(event.mimeData())
        event.acceptProposedAction()
        self.dropped.emit(content)
