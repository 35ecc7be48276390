"""The Check view, driven like a user: real drops, paste, clicks; verdict text read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from fpgui.core.library import Library
from fpgui.ui.check_view import CheckView
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import SyncTaskRunner
from fpgui.ui.thumbnails import ThumbnailCache
from tests.conftest import make_photo
from tests.ui.conftest import drop, file_mime


@pytest.fixture
def view(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    filled_library: Library,
) -> CheckView:
    widget = CheckView(sync_runner, thumbnails, store)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    widget.set_library(filled_library)
    return widget


def test_dropping_an_exact_copy_says_copy_of(view: CheckView, photo_folder: Path) -> None:
    drop(view.drop_zone, file_mime(photo_folder / "photo_3.jpg"))
    assert view.verdict.text().startswith("Copy of photo_3.jpg (distance 0.00, threshold")
    assert view.verdict.is_copy is True
    assert len(view.cards) == 5
    assert view.cards[0].match.path.endswith("photo_3.jpg")
    assert [c.match.rank for c in view.cards] == [1, 2, 3, 4, 5]
    assert "distance 0.000" in view.cards[0].text()
    assert view.report_button.isEnabled()


def test_unrelated_image_with_threshold_override_is_no_match(
    view: CheckView, store: SettingsStore, tmp_path: Path
) -> None:
    store.update(threshold_override=0.0001)
    query = tmp_path / "unrelated.png"
    make_photo(999).save(query)
    drop(view.drop_zone, file_mime(query))
    text = view.verdict.text()
    assert text.startswith("No match - nearest "), text
    assert text.endswith("threshold 0.00")
    assert view.verdict.is_copy is False


def test_image_data_dragged_from_a_browser(view: CheckView, photo_folder: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/photo_2.jpg")])  # not local: the data is used
    mime.setImageData(QImage(str(photo_folder / "photo_2.jpg")))
    drop(view.drop_zone, mime)
    assert view.last_check is not None
    assert view.last_check.result.query == "dropped image"
    assert view.cards[0].match.path.endswith("photo_2.jpg")


def test_web_address_without_image_data_is_explained(view: CheckView) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/photo.jpg")])
    drop(view.drop_zone, mime)
    assert "does not download" in view.banner.text()


def test_paste_from_clipboard(view: CheckView, photo_folder: Path, qtbot: QtBot) -> None:
    QGuiApplication.clipboard().setImage(QImage(str(photo_folder / "photo_5.jpg")))
    qtbot.mouseClick(view.drop_zone.paste_button, Qt.MouseButton.LeftButton)
    assert view.last_check is not None
    assert view.last_check.result.query == "pasted image"
    assert view.cards[0].match.path.endswith("photo_5.jpg")


def test_bad_file_gives_a_readable_message(view: CheckView, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    drop(view.drop_zone, file_mime(bad))
    message = view.banner.text()
    assert "notes.jpg" in message
    assert "Traceback" not in message
    assert view.banner.kind == "error"


def test_batch_table_rows_sort_and_export(
    view: CheckView, photo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = tmp_path / "queries"
    queries.mkdir()
    for i in (1, 4):
        (queries / f"copy_{i}.jpg").write_bytes((photo_folder / f"photo_{i}.jpg").read_bytes())
    (queries / "broken.png").write_bytes(b"\x89PNG truncated")
    drop(view.drop_zone, file_mime(queries))
    rows = view.batch_model.rows
    assert len(rows) == 3
    verdicts = {Path(r.query).name: r.verdict for r in rows}
    assert verdicts == {"copy_1.jpg": "Copy", "copy_4.jpg": "Copy", "broken.png": "Error"}
    assert "2 copies" in view.batch_summary.text()
    # Sorting by distance puts errors (no distance) last.
    view.batch_table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    last = view.batch_proxy.index(2, 1).data()
    assert last == "Error"

    target = tmp_path / "out.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    view.export_csv_button.click()
    with target.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert {Path(r["query"]).name for r in exported} == set(verdicts)
    target_json = tmp_path / "out.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target_json), ""))
    view.export_json_button.click()
    items = json.loads(target_json.read_text())
    assert sum(1 for item in items if item.get("is_copy")) == 2
    assert any("error" in item for item in items)


def test_without_a_model_the_view_says_so(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    photo_folder: Path,
) -> None:
    widget = CheckView(sync_runner, thumbnails, store)
    qtbot.addWidget(widget)
    assert "Loading" in widget.drop_zone.title()
    widget.set_library(None, "No fingerprint model found in /nowhere")
    assert "No fingerprint model found" in widget.drop_zone.title()
    drop(widget.drop_zone, file_mime(photo_folder / "photo_1.jpg"))
    assert "No fingerprint model found in /nowhere" in widget.banner.text()
    assert sync_runner.submitted == []
