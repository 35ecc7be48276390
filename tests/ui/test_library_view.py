"""The Library view: adding (drop, cancel, failures), filtering, removing, missing files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QStyle, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from fpgui.core.library import Library
from fpgui.ui.library_view import AddSummaryDialog, LibraryView
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
    library: Library,
) -> LibraryView:
    widget = LibraryView(sync_runner, thumbnails, store)
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    widget.set_library(library)
    return widget


def names(view: LibraryView) -> list[str]:
    return [view.model.index(r).data() for r in range(view.model.rowCount())]


def test_empty_library_invites_adding(view: LibraryView) -> None:
    assert view.count_label.text() == "0 protected images"
    assert "No protected images yet" in view.grid.empty_text
    assert view.add_folder_button.isEnabled()


def test_dropping_a_folder_adds_it(
    view: LibraryView, photo_folder: Path, thumbnails: ThumbnailCache, qtbot: QtBot
) -> None:
    drop(view.grid.viewport(), file_mime(photo_folder))
    assert view.count_label.text() == "8 protected images"
    assert names(view) == [f"photo_{i}.jpg" for i in range(8)]
    assert view.summary_label.text() == "8 added."
    # Thumbnails are made off the GUI thread and land in the disk cache.
    first = view.model.image_at(0)
    view.model.index(0).data(Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: thumbnails.cached(first.sha256) is not None, timeout=10000)
    assert thumbnails.disk_path(first.sha256).is_file()


def test_cancel_keeps_what_was_embedded(
    view: LibraryView, library: Library, tmp_path: Path, qtbot: QtBot
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(70):
        make_photo(100 + i, size=(96, 72)).save(folder / f"img_{i:03d}.jpg")
    # The synchronous runner reports progress from inside the job: cancel at the first report,
    # as a user clicking Cancel while the first batch is being committed.
    view.progress.valueChanged.connect(
        lambda value: value > 0 and qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    )
    view.add_paths([str(folder)])
    assert view.last_summary is not None and view.last_summary.cancelled
    kept = library.count()
    assert 0 < kept < 70
    assert view.summary_label.text().startswith("Cancelled: the images fingerprinted so far")
    assert view.model.total == kept
    # Adding again finishes the job and skips what is already there.
    view.progress.valueChanged.disconnect()
    view.add_paths([str(folder)])
    assert library.count() == 70
    assert f"{kept} unchanged" in view.summary_label.text()


def test_failed_files_are_listed_with_reasons(
    view: LibraryView, photo_folder: Path, qtbot: QtBot
) -> None:
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    view.add_paths([str(photo_folder)])
    assert "1 failed" in view.summary_label.text()
    assert "could not be added" in view.banner.text()
    assert view.details_button.isVisible()
    assert view.last_summary is not None
    dialog = AddSummaryDialog(view.last_summary, view)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 1
    assert dialog.table.item(0, 0).text().endswith("broken.jpg")
    assert dialog.table.item(0, 2).text()  # a reason


def test_filter_and_sort(view: LibraryView, photo_folder: Path) -> None:
    view.add_paths([str(photo_folder)])
    view.filter_edit.setText("photo_3")
    assert names(view) == ["photo_3.jpg"]
    assert view.count_label.text() == "8 protected images (1 shown)"
    view.filter_edit.clear()
    view.sort_combo.setCurrentIndex(view.sort_combo.findData("added_newest"))
    assert len(names(view)) == 8


def test_remove_selected_after_confirmation(
    view: LibraryView, photo_folder: Path, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    view.add_paths([str(photo_folder)])
    asked: list[str] = []

    def answer(*args: object, **kwargs: object) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    view.grid.setCurrentIndex(view.model.index(0))
    assert view.remove_button.isEnabled()
    view.remove_button.click()
    assert asked and "photo_0.jpg" in asked[0] and "not touched" in asked[0]
    assert library.count() == 7
    assert view.count_label.text() == "7 protected images"


def test_missing_files_are_marked_and_show_in_folder(
    view: LibraryView, photo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view.add_paths([str(photo_folder)])
    (photo_folder / "photo_2.jpg").unlink()
    view.reload()
    assert "1 missing files" in view.count_label.text()
    row = names(view).index("\u26a0 photo_2.jpg (missing)")
    assert view.model.index(row).data(Qt.ItemDataRole.ForegroundRole) is not None
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    view.grid.setCurrentIndex(view.model.index(0))
    view.show_button.click()
    assert [u.toLocalFile() for u in opened] == [str(photo_folder)]


def test_unreadable_folder_and_no_model_give_messages(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    tmp_path: Path,
) -> None:
    bare = Library.open(tmp_path / "bare")  # opened without a model
    widget = LibraryView(sync_runner, thumbnails, store)
    qtbot.addWidget(widget)
    widget.set_library(bare, "No fingerprint model found in /nowhere")
    assert not widget.add_folder_button.isEnabled()
    widget.add_paths([str(tmp_path)])
    assert "No fingerprint model found" in widget.banner.text()
    bare.close()


def test_missing_folder_is_reported(view: LibraryView, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    shutil.rmtree(gone)
    view.add_paths([str(gone)])
    assert "1 failed" in view.summary_label.text()


def test_tall_thumbnails_keep_their_names_visible(
    qtbot: QtBot,
    view: LibraryView,
    library: Library,
    thumbnails: ThumbnailCache,
    tmp_path: Path,
) -> None:
    """A wide first image must not size every cell too short for portrait ones' names."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    make_photo(1, (400, 100)).save(folder / "a_wide.jpg")
    make_photo(2, (100, 400)).save(folder / "b_tall.jpg")
    library.add_all([folder])
    view.set_library(library)
    images = library.images()
    # The delegate sizes a cell from the real thumbnail once it is there, so wait for them.
    qtbot.waitUntil(
        lambda: all(thumbnails.get(i.sha256, i.path) is not None for i in images), timeout=10_000
    )
    grid = view.grid
    model = grid.model()
    text_height = grid.fontMetrics().height()
    option = QStyleOptionViewItem()
    grid.initViewItemOption(option)
    for row in range(model.rowCount()):
        index = model.index(row, 0)
        # With uniform item sizes the view lays every cell out at the delegate's hint.
        hint = grid.itemDelegateForIndex(index).sizeHint(option, index)
        assert hint.height() >= grid.iconSize().height() + text_height


def name_offsets(view: LibraryView) -> list[int]:
    """Where each cell's name starts, from the top of its cell, as the style lays it out."""
    grid = view.grid
    offsets = []
    for row in range(grid.model().rowCount()):
        index = grid.model().index(row, 0)
        option = QStyleOptionViewItem()
        grid.initViewItemOption(option)
        option.rect = grid.visualRect(index)
        grid.itemDelegateForIndex(index).initStyleOption(option, index)  # type: ignore[attr-defined]
        text = grid.style().subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, grid)
        offsets.append(text.top() - option.rect.top())
    return offsets


def test_names_line_up_whatever_the_thumbnails_shape(
    qtbot: QtBot, view: LibraryView, library: Library, thumbnails: ThumbnailCache, tmp_path: Path
) -> None:
    folder = tmp_path / "shapes"
    folder.mkdir()
    for i, size in enumerate([(400, 100), (100, 400), (300, 300), (400, 300)]):
        make_photo(i, size).save(folder / f"shape_{i}.jpg")
    library.add_all([folder])
    view.set_library(library)
    images = library.images()
    qtbot.waitUntil(
        lambda: all(thumbnails.get(i.sha256, i.path) is not None for i in images), timeout=10_000
    )
    offsets = name_offsets(view)
    assert len(offsets) == 4 and len(set(offsets)) == 1
    assert offsets[0] >= view.grid.iconSize().height()
