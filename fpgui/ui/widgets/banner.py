"""An in-window message strip: errors and notices the user can read and dismiss."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStyle,
    QToolButton,
    QWidget,
)

_STYLES = {
    # Strong, fixed colours with white text read the same on light and dark palettes.
    "error": "background-color: #b3261e; color: white; border-radius: 6px;",
    "warning": "background-color: #8a5a00; color: white; border-radius: 6px;",
    "info": "background-color: #1f5f99; color: white; border-radius: 6px;",
}
_ICONS = {
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
}


class MessageBanner(QFrame):
    """Hidden until :meth:`show_message`; ``kind`` is "error", "warning" or "info"."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = ""
        self.setObjectName("messageBanner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self._icon = QLabel()
        self._label = QLabel()
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        close = QToolButton()
        close.setText("\u2715")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.setStyleSheet("color: white; border: none;")
        close.clicked.connect(self.dismiss)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        self.kind = kind
        self.setStyleSheet(f"#messageBanner {{{_STYLES[kind]}}} QLabel {{ color: white; }}")
        icon = self.style().standardIcon(_ICONS[kind])
        self._icon.setPixmap(icon.pixmap(20, 20))
        self._label.setText(text)
        self.show()

    def show_error(self, text: str) -> None:
        self.show_message(text, "error")

    def text(self) -> str:
        return self._label.text() if not self.isHidden() else ""

    def dismiss(self) -> None:
        self._label.clear()
        self.kind = ""
        self.hide()
        self.dismissed.emit()
