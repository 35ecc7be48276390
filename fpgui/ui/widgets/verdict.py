"""The verdict banner: the answer to "is this a copy of mine?", impossible to misread.

Three states, each with its own colour, icon and words: a copy is red with a warning icon and says
which image it copies; a possible copy is amber with a question icon and asks the user to compare;
no match is green with a tick. The colours are strong and fixed, under white text, so they read
the same on light and dark palettes. The numbers that decided the verdict (distance and, when the
model is calibrated for it, the ratio to the next distinct image) are always in the detail line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QVBoxLayout, QWidget

from fpgui.core.verdict import Verdict

if TYPE_CHECKING:
    from fpgui.core.matching import CheckResult

COPY_STYLE = "#verdictBanner { background-color: #b3261e; border-radius: 8px; }"
POSSIBLE_STYLE = (
    "#verdictBanner { background-color: #8a5a00; border: 3px dashed #ffc53d; border-radius: 8px; }"
)
NO_MATCH_STYLE = "#verdictBanner { background-color: #1e7b34; border-radius: 8px; }"
EMPTY_STYLE = "#verdictBanner { background-color: #5f6368; border-radius: 8px; }"


def verdict_text(result: CheckResult) -> str:
    """The headline: "Copy of beach.jpg", "Possible copy of beach.jpg - compare to confirm",
    "No match", or why nothing could match."""
    if result.nearest is None:
        return f"No match - the library is empty (threshold {result.threshold:.2f})"
    return result.headline()


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
        self._detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self._headline, self._detail):
            label.setStyleSheet("color: white;")
        texts.addWidget(self._headline)
        texts.addWidget(self._detail)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addLayout(texts, 1)
        self.is_copy: bool | None = None
        self.verdict: Verdict | None = None
        self._evidence = ""

    def set_result(self, result: CheckResult) -> None:
        self.is_copy = result.is_copy
        self.verdict = result.verdict
        self._headline.setText(verdict_text(result))
        self._evidence = result.evidence_text()
        nearest = result.nearest
        if nearest is None:
            icon = QStyle.StandardPixmap.SP_MessageBoxInformation
            style = EMPTY_STYLE
            detail = "Add images to the library first."
        else:
            icon, style = {
                Verdict.COPY: (QStyle.StandardPixmap.SP_MessageBoxWarning, COPY_STYLE),
                Verdict.POSSIBLE: (QStyle.StandardPixmap.SP_MessageBoxQuestion, POSSIBLE_STYLE),
                Verdict.NO_MATCH: (QStyle.StandardPixmap.SP_DialogApplyButton, NO_MATCH_STYLE),
            }[result.verdict]
            detail = f"{self._evidence}\nClosest protected image: {nearest.path}"
        if result.not_compared:
            detail += (
                f"\n{result.not_compared} library images have no fingerprint from this model "
                "and were not compared (Library \u25b8 re-embed)."
            )
        self._detail.setText(detail)
        self._icon.setPixmap(self.style().standardIcon(icon).pixmap(40, 40))
        self.setStyleSheet(style)

    def text(self) -> str:
        return self._headline.text()

    def detail(self) -> str:
        return self._detail.text()

    def summary(self) -> str:
        """The verdict and its distance on one line, short enough for the status bar.

        The banner above carries the rest (the ratio, the advice to compare); the status bar
        has to share its width with the library, model and device labels.
        """
        if not self._evidence:
            return self.text()
        headline = self.text().split(" - ", 1)[0]
        return f"{headline}: {self._evidence.split(';', 1)[0]}"
