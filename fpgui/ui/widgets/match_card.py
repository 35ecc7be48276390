"""One of the top-5 matches: thumbnail, rank, file name, distance, verdict level and a Compare
button. The nearest match carries the check's verdict; any other is judged by its distance alone,
since the ratio test speaks only of the nearest."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from fpgui.core.verdict import Verdict
from fpgui.ui.thumbnails import ThumbnailCache, placeholder_pixmap

if TYPE_CHECKING:
    from fpgui.core.matching import CheckResult, Match

CARD_PADDING = 8
COPY_COLOUR = "#b3261e"
POSSIBLE_COLOUR = "#c77c00"  # amber, legible on light and dark palettes alike


def match_level(match: Match, result: CheckResult) -> Verdict:
    """The verdict level one match earns (see the module docstring)."""
    if match.rank == 1:
        return result.verdict
    if match.distance < result.threshold:
        return Verdict.COPY
    if result.possible_threshold is not None and match.distance < result.possible_threshold:
        return Verdict.POSSIBLE
    return Verdict.NO_MATCH


class MatchCard(QFrame):
    compare_requested = Signal(object)  # Match

    def __init__(
        self,
        match: Match,
        result: CheckResult,
        thumbnails: ThumbnailCache,
        parent: QWidget | None = None,
    ) -> None:
        # Here, not at the top: matching pulls in torch, already loaded once a result exists.
        from fpgui.core.matching import VERDICT_LABELS

        super().__init__(parent)
        self.match = match
        self._thumbnails = thumbnails
        self.setObjectName("matchCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(thumbnails.size + 2 * CARD_PADDING)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Maximum)
        self.level = match_level(match, result)
        border = {
            Verdict.COPY: f"3px solid {COPY_COLOUR}",
            Verdict.POSSIBLE: f"3px dashed {POSSIBLE_COLOUR}",
            Verdict.NO_MATCH: "1px solid palette(mid)",
        }[self.level]
        self.setStyleSheet(f"#matchCard {{ border: {border}; border-radius: 8px; }}")
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
        self.level_label = QLabel(VERDICT_LABELS[self.level])
        colour = {Verdict.COPY: COPY_COLOUR, Verdict.POSSIBLE: POSSIBLE_COLOUR}.get(self.level)
        if colour is not None:
            for label in (self.distance_label, self.level_label):
                label.setStyleSheet(f"color: {colour}; font-weight: bold;")
        self.compare_button = QPushButton("Compare\u2026")
        self.compare_button.clicked.connect(lambda: self.compare_requested.emit(self.match))
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.rank_label)
        layout.addWidget(self.name_label)
        layout.addWidget(self.distance_label)
        layout.addWidget(self.level_label)
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
        return f"#{self.match.rank} {name} {self.distance_label.text()} {self.level_label.text()}"
