"""The user's settings in the window: a store that saves them, and the dialog that edits them."""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from fpgui.core.paths import default_library_dir
from fpgui.core.settings import Settings, SettingsError, load_settings, save_settings

DEVICE_CHOICES = (
    ("auto", "Automatic (GPU when available)"),
    ("cpu", "CPU"),
    ("cuda", "NVIDIA GPU (CUDA)"),
    ("mps", "Apple GPU (MPS)"),
)


class SettingsStore(QObject):
    """The current :class:`Settings`; :meth:`update` saves them and tells who listens."""

    changed = Signal(object)  # Settings

    def __init__(self, settings: Settings | None = None, path: Path | None = None) -> None:
        super().__init__()
        self.path = path
        self.settings = settings if settings is not None else load_settings(path)

    def update(self, **changes: object) -> None:
        """Apply and save; raises SettingsError (the change stays in memory) when saving fails."""
        self.replace(self.settings.replace(**changes))

    def replace(self, settings: Settings) -> None:
        self.settings = settings
        self.changed.emit(settings)
        save_settings(settings, self.path)

    def remember_folder(self, key: str, folder: str) -> None:
        """Remember a last-used folder; failing to save that is not worth a message."""
        with contextlib.suppress(SettingsError):
            self.update(**{key: folder})


class SettingsDialog(QDialog):
    """Edits a copy of the settings; :meth:`chosen` is the result after Accept."""

    def __init__(
        self, settings: Settings, model_threshold: float | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        self._original = settings
        self._model_threshold = model_threshold
        form = QFormLayout()

        self.library_edit = QLineEdit(settings.library_path or "")
        self.library_edit.setPlaceholderText(str(default_library_dir()))
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse_library)
        library_row = QHBoxLayout()
        library_row.addWidget(self.library_edit, 1)
        library_row.addWidget(browse)
        form.addRow("Library location:", library_row)

        self.device_combo = QComboBox()
        for value, label in DEVICE_CHOICES:
            self.device_combo.addItem(label, value)
        index = self.device_combo.findData(settings.device)
        if index < 0:  # e.g. "cuda:1": keep what the user wrote
            self.device_combo.addItem(settings.device, settings.device)
            index = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(index)
        form.addRow("Device:", self.device_combo)

        self.override_check = QCheckBox("Override the model's threshold")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.01, 2.0)
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setSingleStep(0.01)
        self.reset_button = QPushButton()
        self.reset_button.clicked.connect(self.reset_threshold)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.override_check)
        threshold_row.addWidget(self.threshold_spin)
        threshold_row.addWidget(self.reset_button)
        threshold_row.addStretch(1)
        form.addRow("Verdict threshold:", threshold_row)
        self.threshold_note = QLabel(
            "A query closer than this L2 distance to a library image is reported as a copy. "
            "Models with a crowding correction scale it for each query: up for a picture with "
            "no look-alikes, down for one among many (dark frames, skies, textures)."
        )
        self.threshold_note.setWordWrap(True)
        form.addRow("", self.threshold_note)
        self.override_check.toggled.connect(self.threshold_spin.setEnabled)
        if settings.threshold_override is not None:
            self.override_check.setChecked(True)
            self.threshold_spin.setValue(settings.threshold_override)
        else:
            self.override_check.setChecked(False)
            self.threshold_spin.setValue(model_threshold or 0.5)
            self.threshold_spin.setEnabled(False)
        if model_threshold is None:
            self.reset_button.setText("Reset to the model's value")
        else:
            self.reset_button.setText(f"Reset to the model's value ({model_threshold:.3f})")

        self.cache_spin = QSpinBox()
        self.cache_spin.setRange(0, 100_000)
        self.cache_spin.setSuffix(" MB")
        self.cache_spin.setValue(settings.thumbnail_cache_mb)
        form.addRow("Thumbnail cache:", self.cache_spin)

        self.restart_note = QLabel("Changing the library or the device reopens the library.")
        self.restart_note.setEnabled(False)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.restart_note)
        layout.addWidget(buttons)

    def reset_threshold(self) -> None:
        self.override_check.setChecked(False)
        if self._model_threshold is not None:
            self.threshold_spin.setValue(self._model_threshold)

    def _browse_library(self) -> None:
        start = self.library_edit.text() or str(default_library_dir().parent)
        folder = QFileDialog.getExistingDirectory(self, "Library location", start)
        if folder:
            self.library_edit.setText(folder)

    def chosen(self) -> Settings:
        """The settings as edited (validated by :class:`Settings`)."""
        library = self.library_edit.text().strip() or None
        threshold = self.threshold_spin.value() if self.override_check.isChecked() else None
        return self._original.replace(
            library_path=library,
            device=str(self.device_combo.currentData()),
            threshold_override=threshold,
            thumbnail_cache_mb=self.cache_spin.value(),
        )
