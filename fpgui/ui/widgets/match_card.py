"""One of the top-5 matches: thumbnail, rank, file name, distance, and a Compare button."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from fpgui.ui.thumbnails import ThumbnailCache, placeholder_pixmap

if TYPE_CHECKING:
    from fpgui.core.matching import Match

CARD_PADDING = 8


class MatchCard(QFrame):
    compare_requested = Signal(object)  # Match

    def __init__(
        self,
        match: Match,
        threshold: float,
        thumbnails: ThumbnailCache,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.match = match
        self._thumbnails = thumbnails
        self.setObjectName("matchCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(thumbnails.size + 2 * CARD_PADDING)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Maximum)
        is_close = match.distance < threshold
        border = "#b3261e" if is_close else "palette(mid)"
        self.setStyleSheet(
            f"#matchCard {{ border: {3 if is_close else 1}px solid {border}; border-radius: 8px; }}"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(CARD_PADDING, CARD_PADDING, CARD_PADDING, CARD_PADDING)
        layout.setSpacing(4)
        self.image = QLabel()
        self.image.setFixedSize(thumbnails.size, thumbnails.size)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        name = os.path.basename(match.path)
        self.rank_label = QLabel(f"<b>#{match.rank}</b>")
        self.name_label = QLabel()
        self.name_label.setToolTip(match.path)
        metrics = self.name_label.fontMetrics()
        self.name_label.setText(
            metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, thumbnails.size)
        )
        self.distance_label = QLabel(f"distance {match.distance:.3f}")
        if is_close:
            self.distance_label.setStyleSheet("color: #b3261e; font-weight: bold;")
        self.compare_button = QPushButton("Compare\u2026")
        self.compare_button.clicked.connect(lambda: self.compare_requested.emit(self.match))
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.rank_label)
        layout.addWidget(self.name_label)
        layout.addWidget(self.distance_label)
        layout.addWidget(self.compare_button)
        thumbnails.ready.connect(self._thumbnail_ready)
        self._show_thumbnail()

    def _show_thumbnail(self) -> None:
        pixmap: QPixmap | None = self._thumbnails.get(self.match.sha256, self.match.path)
        if pixmap is None:
            text = "no preview" if self._thumbnails.failed(self.match.sha256) else ""
            pixmap = placeholder_pixmap(self._thumbnails.size, text)
        self.image.setPixmap(pixmap)

    def _thumbnail_ready(self, key: str) -> None:
        if key == self.match.sha256:
            self._show_thumbnail()

    def text(self) -> str:
        name = os.path.basename(self.match.path)
        return f"#{self.match.rank} {name} {self.distance_label.text()}"
