"""The main window's actions, clicked through from a real window on a real (random-model) library:
compare a match, export the evidence report, open the retrain wizard, adopt another model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from fpgui.core import model_store
from fpgui.core.architecture import FingerprintNet
from fpgui.core.model_files import ModelMetadata, read_metadata, save_model_bundle
from fpgui.ui.compare_view import CompareDialog
from fpgui.ui.main_window import CHECK_TAB, MainWindow
from fpgui.ui.retrain_wizard import RetrainWizard
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import SyncTaskRunner
from fpgui.ui.thumbnails import ThumbnailCache
from tests.conftest import TEST_INPUT_SIZE
from tests.ui.conftest import drop, file_mime


@pytest.fixture
def window(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    random_model_dir: Path,
    photo_folder: Path,
    tmp_path: Path,
) -> MainWindow:
    """A started window whose library holds the eight photos, with the query photo_4 checked."""
    state = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    main = MainWindow(
        sync_runner,
        thumbnails,
        store,
        tmp_path / "lib",
        model_dir=random_model_dir,
        device="cpu",
        window_state=state,
    )
    qtbot.addWidget(main)
    main.show()
    main.start()
    main.library_view.add_paths([str(photo_folder)])
    assert main.size_label.text() == "Library: 8 images"
    main.tabs.setCurrentIndex(CHECK_TAB)
    drop(main.check_view.drop_zone, file_mime(photo_folder / "photo_4.jpg"))
    assert main.check_view.verdict.text().startswith("Copy of photo_4.jpg")
    return main


def test_compare_button_opens_the_compare_dialog_with_both_hashes(
    qtbot: QtBot, window: MainWindow
) -> None:
    card = window.check_view.cards[0]
    qtbot.mouseClick(card.compare_button, Qt.MouseButton.LeftButton)
    dialogs = window.findChildren(CompareDialog)
    assert len(dialogs) == 1
    dialog = dialogs[0]
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.is_loaded, timeout=10_000)
    assert dialog.error is None
    hashes = [dialog.details.item(2, column).text() for column in (0, 1)]
    result = window.check_view.last_check
    assert result is not None
    assert hashes == [result.result.sha256, card.match.sha256]
    assert all(len(h) == 64 for h in hashes)
    assert "photo_4.jpg" in dialog.header.text()
    dialog.close()


@pytest.mark.parametrize("suffix", ["json", "html"])
def test_export_evidence_report(
    qtbot: QtBot,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    target = tmp_path / f"evidence.{suffix}"
    chosen = "JSON report (*.json)" if suffix == "json" else "HTML report (*.html)"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *_a, **_k: (str(target), chosen))
    )
    view = window.check_view
    assert view.report_button.isEnabled()
    qtbot.mouseClick(view.report_button, Qt.MouseButton.LeftButton)
    assert target.is_file()
    assert view.banner.text() == f"Evidence report saved to {target}"
    check = view.last_check
    assert check is not None
    threshold = check.result.threshold
    text = target.read_text(encoding="utf-8")
    if suffix == "json":
        report = json.loads(text)
        assert report["threshold"] == threshold
        assert report["matches"][0]["name"] == "photo_4.jpg"
        assert report["verdict"].startswith("Copy of photo_4.jpg")
        assert report["model_id"] == check.result.model_id
    else:
        assert text.lstrip().lower().startswith("<!doctype html")
        assert "photo_4.jpg" in text
        assert f"{threshold:.4f}" in text
        assert check.result.sha256 in text


def test_retrain_menu_opens_the_wizard(qtbot: QtBot, window: MainWindow) -> None:
    assert window.retrain_action.text().replace("&", "") == "Retrain model\u2026"
    window.retrain_action.trigger()
    wizards = window.findChildren(RetrainWizard)
    assert len(wizards) == 1
    wizard = wizards[0]
    assert wizard.isVisible() and wizard.currentPage() is wizard.images_page
    assert not wizard.training_page.running
    wizard.reject()
    assert not wizard.isVisible()


def test_adopting_another_model_switches_it_and_refingerprints(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    torch.manual_seed(1)
    network = FingerprintNet(embedding_dim=128, in_channels=1, l2_normalize=True).eval()
    meta = ModelMetadata(name="test-other", version="2", input_size=TEST_INPUT_SIZE, threshold=0.05)
    other = tmp_path / "other-model"
    other.mkdir()
    save_model_bundle(network, meta, other)
    model_id = read_metadata(other).model_id
    assert window.model_label.text() == "Model: test-random 0"
    assert window.session is not None
    library = window.session.library

    model_store.adopt(other)
    window.adopt_model(model_id)
    assert window.model_label.text() == "Model: test-other 2"
    assert library.embedder.metadata.model_id == model_id
    qtbot.waitUntil(lambda: library.needs_reembed() == 0, timeout=30_000)
    qtbot.waitUntil(lambda: not window.library_view.is_busy, timeout=30_000)
    assert window.size_label.text() == "Library: 8 images"
    assert "8 re-fingerprinted" in window.library_view.summary_label.text()
