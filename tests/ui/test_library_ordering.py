"""Filtering and sorting the Library grid: on a worker, newest request wins, selection kept."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from pytestqt.qtbot import QtBot

from fpgui.core.library import ProtectedImage
from fpgui.ui.library_model import LibraryModel, LibraryRows, order_rows, row_ranges
from fpgui.ui.library_view import LibraryView
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import (
    Connect,
    SyncTaskRunner,
    TaskControl,
    TaskHandle,
    TaskRunner,
    ThreadTaskRunner,
)
from fpgui.ui.thumbnails import ThumbnailCache
from tests.conftest import make_photo

T = TypeVar("T")
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
# (name, minutes after START it was added); ids follow this order.
CATALOGUE = [
    ("harbour_2.jpg", 30),
    ("Dunes.jpg", 10),
    ("harbour_1.jpg", 50),
    ("market.jpg", 0),
    ("HARBOUR_3.png", 20),
    ("orchard.jpg", 40),
]


def protected(folder: str = "/photos") -> list[ProtectedImage]:
    return [
        ProtectedImage(
            id=i + 1,
            path=f"{folder}/{name}",
            sha256=f"{i:064x}",
            size=1000,
            width=64,
            height=48,
            added_at=START + timedelta(minutes=minutes),
            missing=False,
        )
        for i, (name, minutes) in enumerate(CATALOGUE)
    ]


class DeferredTaskRunner(TaskRunner):
    """Holds submitted tasks until the test finishes them, in the order the test chooses.

    A worker pool whose timing the test controls: results are delivered the way the threaded
    runner delivers them, only when :meth:`finish` is called.
    """

    def __init__(self) -> None:
        self.tasks: list[tuple[Callable[[TaskControl], Any], TaskHandle[Any]]] = []

    def submit(
        self, name: str, fn: Callable[[TaskControl], T], connect: Connect | None = None
    ) -> TaskHandle[T]:
        handle: TaskHandle[T] = TaskHandle(name, TaskControl())
        if connect is not None:
            connect(handle)
        self.tasks.append((fn, handle))
        return handle

    def finish(self, number: int, *, late: bool = False) -> TaskHandle[Any]:
        """Run task ``number`` and deliver what it returns or raises.

        ``late``: as a worker that was past its last look at the cancel flag when it was set,
        so the function runs to its result even if the task was cancelled.
        """
        fn, handle = self.tasks[number]
        try:
            result = fn(TaskControl() if late else handle.control)
        except BaseException as exc:  # noqa: BLE001 - delivered like the threaded runner does
            handle._on_error(exc, traceback.format_exc())
        else:
            handle._on_done(result)
        return handle


class PreparedLibrary:
    """What the view reads from a :class:`Library`: whether it can add, and its images."""

    has_embedder = True

    def __init__(self, images: list[ProtectedImage]) -> None:
        self._images = images

    def images(self, check_files: bool = False) -> list[ProtectedImage]:
        return list(self._images)


def names(model: LibraryModel) -> list[str]:
    return [model.index(row).data() for row in range(model.rowCount())]


def selected_names(view: LibraryView) -> list[str]:
    return sorted(Path(image.path).name for image in view.selected_images())


@pytest.fixture
def model(qapp: object, thumbnails: ThumbnailCache) -> LibraryModel:
    model = LibraryModel(thumbnails, SyncTaskRunner())
    model.set_images(protected())
    return model


# -- the orders themselves ------------------------------------------------------------------------


def test_sorts_by_name_ignoring_case_then_by_date_both_ways(model: LibraryModel) -> None:
    assert names(model) == [
        "Dunes.jpg",
        "harbour_1.jpg",
        "harbour_2.jpg",
        "HARBOUR_3.png",
        "market.jpg",
        "orchard.jpg",
    ]
    model.set_sort("added_newest")
    assert names(model) == [
        "harbour_1.jpg",
        "orchard.jpg",
        "harbour_2.jpg",
        "HARBOUR_3.png",
        "Dunes.jpg",
        "market.jpg",
    ]
    model.set_sort("added_oldest")
    assert names(model) == [
        "market.jpg",
        "Dunes.jpg",
        "HARBOUR_3.png",
        "harbour_2.jpg",
        "orchard.jpg",
        "harbour_1.jpg",
    ]


def test_filter_matches_any_case_and_keeps_the_sort(model: LibraryModel) -> None:
    model.set_sort("added_oldest")
    model.set_filter("  Harbour ")
    assert names(model) == ["HARBOUR_3.png", "harbour_2.jpg", "harbour_1.jpg"]
    assert model.total == 6
    model.set_filter("nothing like it")
    assert names(model) == []
    model.set_filter("")
    assert len(names(model)) == 6


def test_same_name_in_two_folders_sorts_by_folder() -> None:
    images = [
        replace(im, id=n + 1, sha256=f"{n:064x}")
        for n, im in enumerate(protected("/b") + protected("/a"))
    ]
    order = order_rows(LibraryRows(images), "name", "dunes")
    assert [images[i].path for i in order.visible] == ["/a/Dunes.jpg", "/b/Dunes.jpg"]
    # ``position`` is where each image is shown, -1 where the filter hides it.
    assert [order.position[i] for i in order.visible] == [0, 1]
    assert order.position.count(-1) == len(images) - 2


def test_missing_files_are_labelled_and_counted(qapp: object, thumbnails: ThumbnailCache) -> None:
    images = protected()
    images[3] = replace(images[3], missing=True)
    model = LibraryModel(thumbnails, SyncTaskRunner())
    model.set_images(images)
    assert model.missing_count() == 1
    assert "\u26a0 market.jpg (missing)" in names(model)
    model.set_filter("market")  # the filter matches the name, not the warning around it
    assert names(model) == ["\u26a0 market.jpg (missing)"]
    assert model.index(0).data(Qt.ItemDataRole.ForegroundRole) is not None


# -- off the GUI thread, newest request wins ------------------------------------------------------


def test_filter_is_applied_asynchronously_on_a_worker(
    qtbot: QtBot, thumbnails: ThumbnailCache, store: SettingsStore
) -> None:
    runner = ThreadTaskRunner(max_threads=2)
    view = LibraryView(runner, thumbnails, store)
    qtbot.addWidget(view)
    view.set_library(PreparedLibrary(protected()))  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: view.model.rowCount() == 6, timeout=10_000)
    assert view.count_label.text() == "6 protected images"

    view.filter_edit.setText("harbour")
    # The keystroke only asked a worker: until the result is delivered, the grid is unchanged.
    assert view.model.is_ordering
    assert view.model.rowCount() == 6
    qtbot.waitUntil(lambda: not view.model.is_ordering, timeout=10_000)
    assert names(view.model) == ["harbour_1.jpg", "harbour_2.jpg", "HARBOUR_3.png"]
    assert view.count_label.text() == "6 protected images (3 shown)"

    view.filter_edit.setText("zebra")
    qtbot.waitUntil(lambda: view.model.rowCount() == 0, timeout=10_000)
    assert view.grid.empty_text == "No image name contains \u201czebra\u201d."

    view.filter_edit.clear()
    qtbot.waitUntil(lambda: view.model.rowCount() == 6, timeout=10_000)
    view.set_library(None)  # closing needs no worker: the grid empties at once
    assert view.model.rowCount() == 0
    assert view.count_label.text() == "No library"
    runner.shutdown()


def test_a_superseded_filter_never_wins(
    qtbot: QtBot, thumbnails: ThumbnailCache, store: SettingsStore
) -> None:
    runner = DeferredTaskRunner()
    view = LibraryView(runner, thumbnails, store)
    qtbot.addWidget(view)
    view.set_library(PreparedLibrary(protected()))  # type: ignore[arg-type]
    runner.finish(0)  # reading the catalogue
    runner.finish(1)  # ordering it
    assert view.model.rowCount() == 6

    view.filter_edit.setText("h")
    view.filter_edit.setText("ha")
    view.filter_edit.setText("harbour_1")
    older, middle, newest = 2, 3, 4
    runner.finish(newest)
    assert names(view.model) == ["harbour_1.jpg"]
    # The older requests were told to stop; results that come anyway change nothing.
    assert runner.tasks[older][1].was_cancelled and runner.tasks[middle][1].was_cancelled
    runner.finish(older, late=True)
    runner.finish(middle, late=True)
    assert names(view.model) == ["harbour_1.jpg"]
    assert view.count_label.text() == "6 protected images (1 shown)"


def test_an_older_result_arriving_first_is_not_shown(
    qtbot: QtBot, thumbnails: ThumbnailCache, store: SettingsStore
) -> None:
    runner = DeferredTaskRunner()
    view = LibraryView(runner, thumbnails, store)
    qtbot.addWidget(view)
    view.set_library(PreparedLibrary(protected()))  # type: ignore[arg-type]
    runner.finish(0)
    runner.finish(1)

    view.filter_edit.setText("market")
    view.sort_combo.setCurrentIndex(view.sort_combo.findData("added_newest"))
    view.filter_edit.setText("")
    runner.finish(2, late=True)  # "market", by name: superseded before it was delivered
    runner.finish(3, late=True)  # "market", newest first: superseded too
    assert names(view.model)[0] == "Dunes.jpg"  # still the first order: all, by name
    assert view.model.is_ordering
    runner.finish(4)
    assert not view.model.is_ordering
    assert names(view.model)[0] == "harbour_1.jpg"  # everything, newest first


def test_a_newer_catalogue_read_is_ordered_by_the_filter_typed_meanwhile(
    qtbot: QtBot, thumbnails: ThumbnailCache, store: SettingsStore
) -> None:
    runner = DeferredTaskRunner()
    view = LibraryView(runner, thumbnails, store)
    qtbot.addWidget(view)
    view.set_library(PreparedLibrary(protected()))  # type: ignore[arg-type]
    runner.finish(0)  # the catalogue arrives; its ordering (task 1) is still running
    view.filter_edit.setText("dunes")
    runner.finish(2)
    runner.finish(1)
    assert names(view.model) == ["Dunes.jpg"]
    assert view.count_label.text() == "6 protected images (1 shown)"


# -- selection ------------------------------------------------------------------------------------


def select(view: LibraryView, *rows: int) -> None:
    selection, flag = view.grid.selectionModel(), QItemSelectionModel.SelectionFlag
    for row in rows:
        selection.select(view.model.index(row), flag.Select)
    selection.setCurrentIndex(view.model.index(rows[-1]), flag.NoUpdate)


def test_selection_survives_sorting_and_filtering(
    qtbot: QtBot, sync_runner: SyncTaskRunner, thumbnails: ThumbnailCache, store: SettingsStore
) -> None:
    view = LibraryView(sync_runner, thumbnails, store)
    qtbot.addWidget(view)
    view.show()
    view.set_library(PreparedLibrary(protected()))  # type: ignore[arg-type]
    select(view, 1, 4)  # harbour_1 and market, by name; market is current
    assert selected_names(view) == ["harbour_1.jpg", "market.jpg"]

    view.sort_combo.setCurrentIndex(view.sort_combo.findData("added_oldest"))
    assert names(view.model)[0] == "market.jpg"
    assert selected_names(view) == ["harbour_1.jpg", "market.jpg"]
    assert view.model.image_at(view.grid.currentIndex().row()).path == "/photos/market.jpg"
    assert view.remove_button.isEnabled() and view.show_button.isEnabled()

    view.filter_edit.setText("harbour")  # hides market
    assert selected_names(view) == ["harbour_1.jpg"]
    view.filter_edit.setText("harbour_")
    assert selected_names(view) == ["harbour_1.jpg"]
    view.filter_edit.setText("zebra")
    assert selected_names(view) == []
    assert not view.show_button.isEnabled()


def test_select_all_survives_sorting_and_filtering(
    qtbot: QtBot, sync_runner: SyncTaskRunner, thumbnails: ThumbnailCache, store: SettingsStore
) -> None:
    view = LibraryView(sync_runner, thumbnails, store)
    qtbot.addWidget(view)
    view.show()
    view.set_library(PreparedLibrary(protected()))  # type: ignore[arg-type]
    view.grid.setFocus()
    qtbot.keyClick(view.grid, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    everything = sorted(name for name, _ in CATALOGUE)
    assert selected_names(view) == everything
    view.sort_combo.setCurrentIndex(view.sort_combo.findData("added_newest"))
    assert selected_names(view) == everything
    view.filter_edit.setText("HARBOUR")
    assert selected_names(view) == ["HARBOUR_3.png", "harbour_1.jpg", "harbour_2.jpg"]


def test_selected_rows_are_kept_as_runs() -> None:
    assert row_ranges([]) == []
    assert row_ranges([4]) == [(4, 4)]
    assert row_ranges([0, 1, 2, 5, 7, 8]) == [(0, 2), (5, 5), (7, 8)]


def test_selection_survives_a_reload(
    qtbot: QtBot, sync_runner: SyncTaskRunner, thumbnails: ThumbnailCache, store: SettingsStore
) -> None:
    images = protected()
    library = PreparedLibrary(images)
    view = LibraryView(sync_runner, thumbnails, store)
    qtbot.addWidget(view)
    view.set_library(library)  # type: ignore[arg-type]
    select(view, 0, 2)  # Dunes, harbour_2
    library._images = images[1:]  # harbour_2 was removed elsewhere
    view.reload()
    assert view.model.rowCount() == 5
    assert selected_names(view) == ["Dunes.jpg"]


# -- thumbnails -----------------------------------------------------------------------------------


def test_a_cell_shows_its_thumbnail_once_made(
    qtbot: QtBot, thumbnails: ThumbnailCache, tmp_path: Path
) -> None:
    path = tmp_path / "photo.jpg"
    make_photo(3, (200, 100)).save(path)
    image = replace(protected()[0], path=str(path))
    model = LibraryModel(thumbnails, SyncTaskRunner())
    model.set_images([image])
    placeholder = model.index(0).data(Qt.ItemDataRole.DecorationRole)
    assert placeholder.size() == thumbnails.icon_size()  # the square placeholder
    with qtbot.waitSignal(model.dataChanged, timeout=10_000) as changed:
        pass
    assert changed.args is not None and changed.args[0].row() == 0
    made = model.index(0).data(Qt.ItemDataRole.DecorationRole)
    assert (made.width(), made.height()) == (64, 32)  # the photo's shape, thumbnail size
