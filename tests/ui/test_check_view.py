"""The Check view, driven like a user: real drops, paste, clicks; verdict text read back."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import QApplication, QFileDialog
from pytestqt.qtbot import QtBot

from fpgui.core.embedder import Embedder
from fpgui.core.library import Library
from fpgui.core.model_files import METADATA_FILE, read_metadata
from fpgui.core.verdict import Verdict
from fpgui.ui.check_view import CheckView
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import SyncTaskRunner
from fpgui.ui.thumbnails import ThumbnailCache
from fpgui.ui.widgets.batch_table import VERDICT_COLOURS
from fpgui.ui.widgets.verdict import COPY_STYLE, NO_MATCH_STYLE, POSSIBLE_STYLE
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


def test_dropping_an_exact_copy_says_copy_of(
    view: CheckView, photo_folder: Path, qtbot: QtBot
) -> None:
    with qtbot.waitSignal(view.status_message) as status:
        drop(view.drop_zone, file_mime(photo_folder / "photo_3.jpg"))
    assert view.verdict.text() == "Copy of photo_3.jpg"
    assert view.verdict.detail() == (
        f"distance 0.00 (threshold 0.05)\nClosest protected image: {photo_folder / 'photo_3.jpg'}"
    )
    assert status.args == ["Copy of photo_3.jpg: distance 0.00 (threshold 0.05)"]
    assert view.verdict.is_copy is True and view.verdict.verdict is Verdict.COPY
    assert view.verdict.styleSheet() == COPY_STYLE
    assert len(view.cards) == 5
    assert view.cards[0].match.path.endswith("photo_3.jpg")
    assert [c.match.rank for c in view.cards] == [1, 2, 3, 4, 5]
    assert view.cards[0].text() == "#1 photo_3.jpg distance 0.000 Copy"
    assert [c.level_label.text() for c in view.cards[1:]] == ["No match"] * 4
    assert view.report_button.isEnabled()


def test_unrelated_image_with_threshold_override_is_no_match(
    view: CheckView, store: SettingsStore, tmp_path: Path
) -> None:
    store.update(threshold_override=0.0001)
    query = tmp_path / "unrelated.png"
    make_photo(999).save(query)
    drop(view.drop_zone, file_mime(query))
    assert view.last_check is not None
    nearest = view.last_check.result.matches[0]
    assert view.verdict.text() == "No match"
    assert view.verdict.detail() == (
        f"distance {nearest.distance:.2f} (threshold 0.00)\nClosest protected image: {nearest.path}"
    )
    assert view.verdict.is_copy is False and view.verdict.verdict is Verdict.NO_MATCH
    assert view.verdict.styleSheet() == NO_MATCH_STYLE


@pytest.fixture
def possible_library(
    tmp_path: Path, random_model_dir: Path, photo_folder: Path
) -> Iterator[Library]:
    """The eight photos under the random model calibrated to call anything nearer than 1.9 a
    possible copy (and below 0.05, or a ratio below 0.01, a copy)."""
    model = tmp_path / "calibrated"
    shutil.copytree(random_model_dir, model)
    meta = dataclasses.replace(
        read_metadata(model), ratio_threshold=0.01, reference_distance=1.0, possible_threshold=1.9
    )
    (model / METADATA_FILE).write_text(meta.to_json(), encoding="utf-8")
    library = Library.open(tmp_path / "possible", Embedder(model, "cpu", allow_bf16=False))
    library.add_all([photo_folder])
    yield library
    library.close()


def test_possible_copy_has_its_own_banner_and_cards(
    view: CheckView, possible_library: Library, tmp_path: Path
) -> None:
    view.set_library(possible_library)
    query = tmp_path / "unrelated.png"
    make_photo(999).save(query)
    drop(view.drop_zone, file_mime(query))
    assert view.last_check is not None
    result = view.last_check.result
    d1, d2 = result.matches[0].distance, result.matches[1].distance
    name = Path(result.matches[0].path).name
    assert view.verdict.text() == f"Possible copy of {name} - compare to confirm"
    assert view.verdict.detail() == (
        f"distance {d1:.2f} (threshold 0.05, possible below 1.90); {d1 / d2:.2f} x the next "
        f"distinct image (ratio threshold 0.01)\nClosest protected image: {result.matches[0].path}"
    )
    assert view.verdict.verdict is Verdict.POSSIBLE and view.verdict.is_copy is False
    # The status bar gets the verdict and distance only; the banner above has the rest.
    assert view.verdict.summary() == (
        f"Possible copy of {name}: distance {d1:.2f} (threshold 0.05, possible below 1.90)"
    )
    assert view.verdict.styleSheet() == POSSIBLE_STYLE
    assert "#8a5a00" in POSSIBLE_STYLE  # amber, under white text whatever the palette
    # The nearest card carries the verdict; the others are judged by distance: all below 1.9.
    assert [c.level_label.text() for c in view.cards] == ["Possible copy"] * 5
    assert "dashed" in view.cards[0].styleSheet()


def test_batch_table_shows_possible_copies(
    view: CheckView, possible_library: Library, photo_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    view.set_library(possible_library)
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "copy_2.jpg").write_bytes((photo_folder / "photo_2.jpg").read_bytes())
    make_photo(999).save(queries / "unrelated.png")
    drop(view.drop_zone, file_mime(queries))
    assert [view.batch_model.index(r, 1).data() for r in range(2)] == ["Copy", "Possible copy"]
    assert view.batch_summary.text() == "2 checked: 1 copy, 1 possible copy, 0 no match"
    possible = view.batch_model.index(1, 1)
    light = view.batch_model.data(possible, Qt.ItemDataRole.ForegroundRole)
    assert light == VERDICT_COLOURS["Possible copy"][0]
    dark_palette = QPalette(QApplication.palette())
    dark_palette.setColor(QPalette.ColorRole.Base, QColor("#202124"))
    saved = QApplication.palette()
    QApplication.setPalette(dark_palette)
    try:
        dark = view.batch_model.data(possible, Qt.ItemDataRole.ForegroundRole)
    finally:
        QApplication.setPalette(saved)
    assert dark == VERDICT_COLOURS["Possible copy"][1]

    target = tmp_path / "out.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    view.export_csv_button.click()
    with target.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert [(Path(r["query"]).name, r["verdict"]) for r in exported] == [
        ("copy_2.jpg", "Copy"), ("unrelated.png", "Possible copy"),
    ]  # fmt: skip
    assert exported[0]["ratio_threshold"] == "0.010000"
    assert float(exported[0]["ratio"]) == pytest.approx(0.0, abs=1e-4)  # the exact copy: d1 = 0
    target_json = tmp_path / "out.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target_json), ""))
    view.export_json_button.click()
    items = json.loads(target_json.read_text())
    assert [(item["verdict"], item["is_copy"]) for item in items] == [
        ("copy", True), ("possible", False),
    ]  # fmt: skip


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
    assert view.batch_summary.text() == (
        "3 checked: 2 copies, 0 possible copies, 0 no match, 1 could not be checked"
    )
    # Sorting by distance puts errors (no distance) last.
    view.batch_table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    last = view.batch_proxy.index(2, 1).data()
    assert last == "Error"

    target = tmp_path / "out.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    view.export_csv_button.click()
    with target.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert {Path(r["query"]).name: r["verdict"] for r in exported} == verdicts
    assert {r["ratio"] for r in exported} == {""}  # the random model has no ratio calibration
    target_json = tmp_path / "out.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target_json), ""))
    view.export_json_button.click()
    items = json.loads(target_json.read_text())
    assert sum(1 for item in items if item.get("is_copy")) == 2
    assert [item.get("verdict") for item in items].count("copy") == 2
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
