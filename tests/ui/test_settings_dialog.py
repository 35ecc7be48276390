"""Settings: the dialog edits them, the store saves them, a reset restores the model's threshold."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from fpgui.core.settings import Settings, load_settings
from fpgui.ui.settings_dialog import SettingsDialog, SettingsStore


def test_round_trip_through_dialog_and_disk(qtbot: QtBot, store: SettingsStore, tmp_path: Path):
    dialog = SettingsDialog(store.settings, model_threshold=0.35)
    qtbot.addWidget(dialog)
    assert not dialog.override_check.isChecked()
    assert dialog.threshold_spin.value() == 0.35
    dialog.library_edit.setText(str(tmp_path / "other-library"))
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.override_check.setChecked(True)
    dialog.threshold_spin.setValue(0.2)
    dialog.cache_spin.setValue(64)
    store.replace(dialog.chosen())
    saved = load_settings()
    assert saved == Settings(
        device="cpu",
        threshold_override=0.2,
        thumbnail_cache_mb=64,
        library_path=str(tmp_path / "other-library"),
    )
    reopened = SettingsDialog(saved, model_threshold=0.35)
    qtbot.addWidget(reopened)
    assert reopened.override_check.isChecked()
    assert reopened.threshold_spin.value() == 0.2
    assert reopened.device_combo.currentData() == "cpu"
    reopened.reset_button.click()
    assert "0.350" in reopened.reset_button.text()
    assert reopened.chosen().threshold_override is None
    assert reopened.threshold_spin.value() == 0.35


def test_unknown_device_is_kept(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings(device="cuda:1"), model_threshold=None)
    qtbot.addWidget(dialog)
    assert dialog.chosen().device == "cuda:1"


def test_failed_save_keeps_settings_in_memory(qtbot: QtBot, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = SettingsStore(Settings(), path=blocker / "settings.json")
    seen: list[Settings] = []
    store.changed.connect(seen.append)
    try:
        store.update(thumbnail_cache_mb=10)
    except Exception as exc:  # noqa: BLE001
        assert "cannot save settings" in str(exc)
    assert store.settings.thumbnail_cache_mb == 10
    assert seen and seen[0].thumbnail_cache_mb == 10
