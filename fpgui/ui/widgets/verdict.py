"""The verdict banner: the answer to "is this a copy of mine?", impossible to misread.

A copy is red with a warning icon and says which image it copies; no match is green with a tick.
The numbers behind the verdict (distance, threshold) are always in the sentence.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from fpgui.core.matching import CheckResult

COPY_STYLE = "#verdictBanner { background-color: #b3261e; border-radius: 8px; }"
NO_MATCH_STYLE = "#verdictBanner { background-color: #1e7b34; border-radius: 8px; }"
EMPTY_STYLE = "#verdictBanner { background-color: #5f6368; border-radius: 8px; }"


def verdict_text(result: CheckResult) -> str:
    """The one sentence of the verdict, e.g. "Copy of beach.jpg (distance 0.12, threshold 0.35)"."""
    nearest = result.nearest
    if nearest is None:
        return f"No match - the library is empty (threshold {result.threshold:.2f})"
    if result.is_copy:
        name = os.path.basename(nearest.path)
        return f"Copy of {name} (distance {nearest.distance:.2f}, threshold {result.threshold:.2f})"
    return f"No match - nearest {nearest.distance:.2f}, threshold {result.threshold:.2f}"


class VerdictBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("verdictBanner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(12)
        self._icon = QLabel()
        texts = QVBoxLayout()
        texts.setSpacing(2)
        self._headline = QLabel()
        font = self._headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self._headline.setFont(font)
        self._headline.setWordWrap(True)
        self._headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._detail = QLabel()
        self._detail.setWordWrap(True)
        for label in (self._headline, self._detail):
            label.setStyleSheet("color: white;")
        texts.addWidget(self._headline)
        texts.addWidget(self._detail)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addLayout(texts, 1)
        self.is_copy: bool | None = None

    def set_result(self, result: CheckResult) -> None:
        self.is_copy = result.is_copy
        self._headline.setText(verdict_text(result))
        if result.is_copy and result.nearest is not None:
            icon = QStyle.StandardPixmap.SP_MessageBoxWarning
            style = COPY_STYLE
            detail = f"Closest protected image: {result.nearest.path}"
        elif result.nearest is None:
            icon = QStyle.StandardPixmap.SP_MessageBoxInformation
            style = EMPTY_STYLE
            detail = "Add images to the library first."
        else:
            icon = QStyle.StandardPixmap.SP_DialogApplyButton
            style = NO_MATCH_STYLE
            detail = "No protected image is closer than the threshold."
        if result.not_compared:
            detail += (
                f"  {result.not_compared} library images have no fingerprint from this model "
                "and were not compared (Library \u25b8 re-embed)."
            )
        self._detail.setText(detail)
        self._icon.setPixmap(self.style().standardIcon(icon).pixmap(40, 40))
        self.setStyleSheet(style)

    def text(self) -> str:
        return self._headline.text()

    def detail(self) -> str:
        return self._detail.text()
