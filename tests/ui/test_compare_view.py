"""The compare dialog, driven with real clicks on real widgets (offscreen)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QRadioButton
from pytestqt.qtbot import QtBot

from fpgui.core.images import load_image
from fpgui.core.library import Library
from fpgui.core.matching import CheckResult, check
from fpgui.core.verdict import Verdict
from fpgui.ui.compare_view import CompareDialog, CompareMode


@pytest.fixture
def library(filled_library: Library) -> Library:
    return filled_library


@pytest.fixture
def edited_query(photo_folder: Path, tmp_path: Path) -> tuple[Path, Image.Image]:
    """photo_1 at half size with a white caption: a typical modified copy."""
    image = load_image(photo_folder / "photo_1.jpg").resize((160, 120))
    ImageDraw.Draw(image).rectangle((10, 10, 80, 30), fill="white")
    path = tmp_path / "query.png"
    image.save(path)
    return path, image


def open_dialog(
    qtbot: QtBot, result: CheckResult, image: Image.Image, library: Library | None, rank: int = 1
) -> CompareDialog:
    match = result.matches[rank - 1]
    dialog = CompareDialog(result, match, image, library=library)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.is_loaded, timeout=10_000)
    return dialog


def test_modes_wipe_blink_difference_and_zoom(
    qtbot: QtBot, library: Library, edited_query: tuple[Path, Image.Image], photo_folder: Path
) -> None:
    path, image = edited_query
    result = check(library, path, top_k=8)
    # A random model need not rank the original first: compare with it wherever it ranks.
    rank = next(m.rank for m in result.matches if m.path.endswith("photo_1.jpg"))
    dialog = open_dialog(qtbot, result, image, library, rank)
    assert dialog.error is None and dialog.prepared is not None
    # The 320x240 original is aligned to the 160x120 query; the caption shows as a difference.
    assert dialog.prepared.match.size().toTuple() == (160, 120)
    assert "resized to the query's size" in dialog.status.text()
    assert 0.0 < dialog.prepared.mean_difference < 0.5
    assert dialog.mode is CompareMode.SIDE_BY_SIDE
    assert not dialog.wipe_slider.isEnabled()

    qtbot.mouseClick(dialog.findChild(QRadioButton, "mode_wipe"), Qt.MouseButton.LeftButton)
    assert dialog.mode is CompareMode.WIPE and dialog.wipe_slider.isEnabled()
    assert dialog.clip_width() == pytest.approx(80, abs=1)
    dialog.wipe_slider.setValue(250)
    assert dialog.clip_width() == pytest.approx(40, abs=1)
    qtbot.keyClick(dialog.wipe_slider, Qt.Key.Key_End)
    assert dialog.clip_width() == pytest.approx(160, abs=1)

    dialog.set_mode(CompareMode.BLINK)
    first = dialog.match_visible()
    qtbot.waitUntil(lambda: dialog.match_visible() != first, timeout=3000)
    qtbot.waitUntil(lambda: dialog.match_visible() == first, timeout=3000)

    dialog.set_mode(CompareMode.DIFFERENCE)
    assert not dialog.wipe_slider.isEnabled()
    before = dialog.view.zoom_factor()
    qtbot.mouseClick(dialog.zoom_in_button, Qt.MouseButton.LeftButton)
    assert dialog.view.zoom_factor() == pytest.approx(before * 1.25)
    qtbot.mouseClick(dialog.actual_button, Qt.MouseButton.LeftButton)
    assert dialog.view.zoom_factor() == 1.0

    table = dialog.details
    column = {table.verticalHeaderItem(r).text(): r for r in range(table.rowCount())}
    assert table.item(column["SHA-256"], 0).text() == result.sha256
    match = dialog.match
    assert table.item(column["SHA-256"], 1).text() == match.sha256
    assert table.item(column["Dimensions"], 0).text() == "160 x 120 px"
    assert table.item(column["Dimensions"], 1).text() == "320 x 240 px"
    added = library.images_by_ids([match.image_id])[match.image_id].added_at
    assert (
        table.item(column["Added to the library"], 1)
        .text()
        .startswith(added.astimezone().strftime("%Y-%m-%d %H:%M"))
    )
    size = (photo_folder / "photo_1.jpg").stat().st_size
    assert f"{size:,} bytes" in table.item(column["File size"], 1).text()


def test_missing_library_file_is_explained_not_raised(
    qtbot: QtBot, library: Library, edited_query: tuple[Path, Image.Image]
) -> None:
    path, image = edited_query
    result = check(library, path)
    Path(result.matches[1].path).unlink()
    dialog = open_dialog(qtbot, result, image, None, rank=2)
    assert dialog.prepared is None
    assert dialog.error is not None and "cannot be shown" in dialog.status.text()
    assert not dialog.zoom_in_button.isEnabled()
    table = dialog.details
    assert table.item(2, 1).text() == result.matches[1].sha256
    dialog.close()


def test_header_names_the_verdict_on_the_nearest_match_only(
    qtbot: QtBot, library: Library, edited_query: tuple[Path, Image.Image]
) -> None:
    path, image = edited_query
    result = replace(check(library, path), verdict=Verdict.POSSIBLE, threshold=0.001)
    first, second = result.matches[:2]
    nearest = open_dialog(qtbot, result, image, library, rank=1)
    assert nearest.header.text().endswith(
        f"<b>Distance</b> {first.distance:.3f} (above the copy threshold 0.001)"
        " &nbsp; <b>Verdict:</b> Possible copy"
    )
    nearest.close()
    other = open_dialog(qtbot, result, image, library, rank=2)
    assert other.header.text().endswith(
        f"<b>Distance</b> {second.distance:.3f} (above the copy threshold 0.001)"
    )
    other.close()
