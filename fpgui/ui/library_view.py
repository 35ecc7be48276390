"""The Library view: the protected images as a thumbnail grid, and adding or removing them.

Built for 50,000 images: the list comes from one background read of the catalogue, which also
prepares every row (labels, filter text, sort orders; file existence is checked there, not
here); filtering and sorting run on a worker and are swapped in whole (see
:mod:`fpgui.ui.library_model`), keeping the selection; the grid has one cell size and asks for
thumbnails only for what it paints, and thumbnails are made on worker threads.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QDesktopServices,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QRegion,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fpgui.ui.library_model import SORT_KEYS, SORT_LABELS, LibraryModel, LibraryRows, row_ranges
from fpgui.ui.resources import image_file_filter
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import TaskControl, TaskHandle, TaskRunner, run_task, user_message
from fpgui.ui.thumbnails import ThumbnailCache
from fpgui.ui.widgets.banner import MessageBanner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from fpgui.core.library import AddProgress, AddSummary, Library, ProtectedImage


class ThumbnailDelegate(QStyledItemDelegate):
    """Every cell lays out a full icon-sized square: thumbnails of any aspect ratio sit centred
    in it and all names share one line, instead of following each picture's height."""

    def __init__(self, icon_size: QSize, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.icon_size = icon_size

    def initStyleOption(  # noqa: N802 (Qt override)
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        option.decorationSize = self.icon_size
        option.decorationAlignment = Qt.AlignmentFlag.AlignCenter


class ThumbnailGrid(QListView):
    """Icon-mode list that also takes folders and images dropped from a file manager."""

    paths_dropped = Signal(list)
    background_changed = Signal(QColor)  # the palette (light or dark theme) changed

    def __init__(self, icon_size: QSize, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)  # layout without asking 50,000 items their size
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setIconSize(icon_size)
        self.setGridSize(QSize(icon_size.width() + 28, icon_size.height() + 40))
        self.setItemDelegate(ThumbnailDelegate(icon_size, self))
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.viewport().setAcceptDrops(True)
        self.setDragEnabled(False)
        self.setDropIndicatorShown(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.empty_text = ""

    def paintEvent(self, event: QPaintEvent) -> None:
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.empty_text:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(
                self.viewport().rect().adjusted(20, 20, -20, -20), flags, self.empty_text
            )
            painter.end()
            return
        super().paintEvent(event)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:
        # Qt's icon mode finds the rectangle of every selected item, a call into the model for
        # each: after select-all that is 50,000 calls on every selection change. Repainting
        # the visible cells costs a few milliseconds whatever is selected.
        return QRegion() if selection.isEmpty() else QRegion(self.viewport().rect())

    def background(self) -> QColor:
        return self.viewport().palette().color(self.viewport().backgroundRole())

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.background_changed.emit(self.background())

    def set_empty_text(self, text: str) -> None:
        self.empty_text = text
        self.viewport().update()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.paths_dropped.emit(paths)


class AddSummaryDialog(QDialog):
    """What happened to each file that was not simply added: failures with reasons, etc."""

    def __init__(self, summary: AddSummary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Files not added")
        self.resize(760, 420)
        rows: list[tuple[str, str, str]] = []
        rows += [(path, "Failed", reason) for path, reason in summary.failed]
        rows += [(path, "Duplicate", f"same as {orig}") for path, orig in summary.duplicates]
        rows += [(new, "Moved", f"was at {old}") for old, new in summary.moved]
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["File", "What happened", "Reason"])
        for r, (path, what, reason) in enumerate(rows):
            for c, text in enumerate((path, what, reason)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.resizeColumnsToContents()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(summary_text(summary)))
        layout.addWidget(self.table)
        layout.addWidget(buttons)


def summary_text(summary: AddSummary) -> str:
    text = summary.counts_text() + "."
    if summary.cancelled:
        text = "Cancelled: the images fingerprinted so far are kept. " + text
    return text


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class LibraryView(QWidget):
    """Shows an opened :class:`Library` (``set_library``) and runs its add/remove jobs."""

    count_changed = Signal(int)
    busy_changed = Signal(bool)
    library_changed = Signal()  # images were added or removed

    def __init__(
        self,
        runner: TaskRunner,
        thumbnails: ThumbnailCache,
        settings: SettingsStore,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner = runner
        self.thumbnails = thumbnails
        self.settings = settings
        self.library: Library | None = None
        self.can_add_reason: str | None = "The library is loading\u2026"
        self.last_summary: AddSummary | None = None
        self._job: TaskHandle[Any] | None = None
        self._eta_start: tuple[float, int] | None = None

        self.banner = MessageBanner()
        self.count_label = QLabel("Loading the library\u2026")
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMaximumWidth(260)
        self.sort_combo = QComboBox()
        for key, label in zip(SORT_KEYS, SORT_LABELS, strict=True):
            self.sort_combo.addItem(label, key)
        self.add_folder_button = QPushButton("Add folder\u2026")
        self.add_files_button = QPushButton("Add images\u2026")
        self.remove_button = QPushButton("Remove")
        self.show_button = QPushButton("Show in folder")
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.count_label)
        toolbar.addStretch(1)
        toolbar.addWidget(self.filter_edit)
        toolbar.addWidget(QLabel("Sort:"))
        toolbar.addWidget(self.sort_combo)
        toolbar.addSpacing(12)
        for button in (
            self.add_folder_button,
            self.add_files_button,
            self.remove_button,
            self.show_button,
        ):
            toolbar.addWidget(button)

        self.progress = QProgressBar()
        self.progress_label = QLabel()
        self.eta_label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        progress_row = QHBoxLayout()
        progress_row.setContentsMargins(0, 0, 0, 0)
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.eta_label)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        self.progress_box.hide()

        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.details_button = QPushButton("Details\u2026")
        summary_row = QHBoxLayout()
        summary_row.setContentsMargins(0, 0, 0, 0)
        summary_row.addWidget(self.summary_label, 1)
        summary_row.addWidget(self.details_button)
        self.summary_box = QWidget()
        self.summary_box.setLayout(summary_row)
        self.summary_box.hide()

        self.model = LibraryModel(thumbnails, runner)
        self.grid = ThumbnailGrid(thumbnails.icon_size())
        self.grid.setModel(self.model)
        self.grid.background_changed.connect(self.model.set_background)
        self.model.set_background(self.grid.background())
        # Connected after setModel, so they run after the view and selection model reset.
        self._kept_selection: tuple[LibraryRows, list[int], list[int]] = (self.model.rows, [], [])
        self.model.modelAboutToBeReset.connect(self._remember_selection)
        self.model.modelReset.connect(self._restore_selection)
        self.model.order_applied.connect(self._update_count)
        self.model.order_failed.connect(
            lambda exc: self.banner.show_error(user_message(exc, "filtering the library"))
        )

        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addLayout(toolbar)
        layout.addWidget(self.progress_box)
        layout.addWidget(self.summary_box)
        layout.addWidget(self.grid, 1)

        self.filter_edit.textChanged.connect(self._filter_changed)
        self.sort_combo.currentIndexChanged.connect(
            lambda _i: self.model.set_sort(str(self.sort_combo.currentData()))
        )
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.add_files_button.clicked.connect(self.choose_files)
        self.remove_button.clicked.connect(self.remove_selected)
        self.show_button.clicked.connect(self.show_selected_in_folder)
        self.cancel_button.clicked.connect(self.cancel)
        self.details_button.clicked.connect(self.show_summary_details)
        self.grid.paths_dropped.connect(self.add_paths)
        self.grid.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.grid.doubleClicked.connect(lambda _i: self.show_selected_in_folder())
        for text, slot, shortcut in (
            ("Show in folder", self.show_selected_in_folder, None),
            ("Remove from library\u2026", self.remove_selected, QKeySequence.StandardKey.Delete),
        ):
            action = QAction(text, self.grid)
            action.triggered.connect(slot)
            if shortcut is not None:
                action.setShortcut(shortcut)
                action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.grid.addAction(action)
        self._update_buttons()

    # -- state --------------------------------------------------------------------------------

    def set_library(self, library: Library | None, problem: str | None = None) -> None:
        """Show ``library``; ``problem`` says why images cannot be added (no model)."""
        self.library = library
        if library is None:
            self.can_add_reason = problem or "No library is open."
            self.model.set_images([])
            self._update_count()
        else:
            self.can_add_reason = None if library.has_embedder else problem
            self.reload()
        self._update_buttons()

    def reload(self) -> None:
        """Read the catalogue (and which files went missing) in the background."""
        library = self.library
        if library is None:
            return

        def work(control: TaskControl) -> LibraryRows:
            return LibraryRows(library.images(check_files=True))

        run_task(
            self.runner,
            "list library",
            work,
            # A library closed or swapped meanwhile keeps what it shows now.
            on_result=lambda rows: self._show_rows(rows) if self.library is library else None,
            on_error=lambda exc, _tb: self.banner.show_error(
                user_message(exc, "reading the library")
            ),
        )

    def _show_rows(self, rows: LibraryRows) -> None:
        self.model.set_rows(rows)
        self.count_changed.emit(len(rows))

    def _update_count(self) -> None:
        if self.library is None:
            self.count_label.setText("No library")
            self.grid.set_empty_text("")
            return
        total, shown = self.model.total, self.model.rowCount()
        text = f"{total:,} protected images" if total != 1 else "1 protected image"
        if shown != total:
            text += f" ({shown:,} shown)"
        missing = self.model.missing_count()
        if missing:
            text += f" \u2022 {missing:,} missing files"
        self.count_label.setText(text)
        if total == 0:
            self.grid.set_empty_text(
                "No protected images yet.\n\nAdd a folder of your photos (Ctrl+Shift+A), "
                "or drop folders and images here."
            )
        elif shown == 0:
            self.grid.set_empty_text(
                "No image name contains \u201c" + self.model.filter_text.strip() + "\u201d."
            )
        else:
            self.grid.set_empty_text("")

    def _filter_changed(self, text: str) -> None:
        self.model.set_filter(text)  # shown, and counted, when the worker's order arrives

    def _selected_ranges(self) -> list[tuple[int, int]]:
        """The selected rows as ``(top, bottom)`` ranges: never one index per selected image."""
        selection = self.grid.selectionModel().selection()
        return [(r.top(), r.bottom()) for r in (selection.at(k) for k in range(selection.size()))]

    def _remember_selection(self) -> None:
        """Before the model swaps its rows: which images are selected, which one is current."""
        current = self.grid.selectionModel().currentIndex()
        current_rows = [(current.row(), current.row())] if current.isValid() else []
        self._kept_selection = (
            self.model.rows,
            self.model.indices_in_rows(self._selected_ranges()),
            self.model.indices_in_rows(current_rows),
        )

    def _restore_selection(self) -> None:
        """After the swap: select the same images where they are now, in as few ranges as can be."""
        rows, selected, current = self._kept_selection
        self._kept_selection = (self.model.rows, [], [])
        selection_model = self.grid.selectionModel()
        for row in self.model.rows_now(rows, current):
            flag = QItemSelectionModel.SelectionFlag.NoUpdate
            selection_model.setCurrentIndex(self.model.index(row), flag)
        selection = QItemSelection()
        for top, bottom in row_ranges(self.model.rows_now(rows, selected)):
            selection.select(self.model.index(top), self.model.index(bottom))
        if not selection.isEmpty():
            selection_model.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self._update_buttons()

    @property
    def is_busy(self) -> bool:
        return self._job is not None and self._job.is_running

    def _update_buttons(self) -> None:
        can_write = self.library is not None and not self.is_busy
        can_add = can_write and self.can_add_reason is None
        selected = self.grid.selectionModel().hasSelection()
        self.add_folder_button.setEnabled(can_add)
        self.add_files_button.setEnabled(can_add)
        self.remove_button.setEnabled(can_write and selected)
        self.show_button.setEnabled(selected)
        tip = self.can_add_reason or ""
        self.add_folder_button.setToolTip(tip)
        self.add_files_button.setToolTip(tip)

    def selected_images(self) -> list[ProtectedImage]:
        ranges = self._selected_ranges()
        rows = sorted({row for top, bottom in ranges for row in range(top, bottom + 1)})
        return [self.model.image_at(r) for r in rows]

    # -- adding -------------------------------------------------------------------------------

    def choose_folder(self) -> None:
        start = self.settings.settings.last_add_folder or ""
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library", start)
        if folder:
            self.settings.remember_folder("last_add_folder", folder)
            self.add_paths([folder])

    def choose_files(self) -> None:
        start = self.settings.settings.last_add_folder or ""
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add images to the library", start, image_file_filter()
        )
        if files:
            self.settings.remember_folder("last_add_folder", os.path.dirname(files[0]))
            self.add_paths(files)

    def add_paths(self, paths: list[str]) -> None:
        """Fingerprint ``paths`` (files and folders) into the library, with progress and Cancel."""
        if not paths:
            self.banner.show_error("Only files and folders on this computer can be added.")
            return
        if self.library is None or self.can_add_reason is not None:
            self.banner.show_error(self.can_add_reason or "No library is open.")
            return
        if self.is_busy:
            self.banner.show_message(
                "The library is busy with another job; wait for it or cancel it first.", "warning"
            )
            return
        library = self.library
        self.summary_box.hide()
        self._show_progress("Looking for images\u2026")

        self._run_fingerprint_job(
            "add images",
            "adding images",
            lambda stop: library.add(paths, should_stop=stop),
        )
        self._update_buttons()

    def _keep_job(self, handle: TaskHandle[Any]) -> None:
        self._job = handle

    def _add_progress(self, done: int, total: int, text: str) -> None:
        if total <= 0:
            self.progress.setRange(0, 0)
            self.progress_label.setText(text)
            return
        now = time.monotonic()
        if self._eta_start is None:
            self._eta_start = (now, done)
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress_label.setText(f"Adding {done:,} of {total:,}")
        start_time, start_done = self._eta_start
        elapsed, finished = now - start_time, done - start_done
        if elapsed > 1.0 and finished > 0:
            left = (total - done) * elapsed / finished
            self.eta_label.setText(f"about {format_eta(left)} left")
        else:
            self.eta_label.setText("estimating time left\u2026")

    def _add_finished(self, summary: AddSummary) -> None:
        self.last_summary = summary
        self.summary_label.setText(summary_text(summary))
        self.details_button.setVisible(bool(summary.failed or summary.duplicates or summary.moved))
        self.summary_box.show()
        if summary.failed:
            self.banner.show_message(
                f"{len(summary.failed)} files could not be added; see Details for the reasons.",
                "warning",
            )
        self.library_changed.emit()

    def show_summary_details(self) -> None:
        if self.last_summary is not None:
            AddSummaryDialog(self.last_summary, self).exec()

    def cancel(self) -> None:
        if self._job is not None and self._job.is_running:
            self._job.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling after the current batch\u2026")

    def _job_ended(self) -> None:
        self.progress_box.hide()
        self._job = None
        self._update_buttons()
        self.busy_changed.emit(False)
        self.reload()

    # -- re-embedding (after a model change) -----------------------------------------------------

    def _run_fingerprint_job(
        self,
        name: str,
        doing: str,
        steps: Callable[[Callable[[], bool]], Iterator[AddProgress]],
    ) -> None:
        """Run an add or re-embed generator in a task, reporting its progress and summary."""

        def work(control: TaskControl) -> AddSummary:
            from fpgui.core.library import AddSummary

            summary = AddSummary()
            for step in steps(control.is_cancelled):
                summary = step.summary
                if step.phase == "scanning":
                    control.progress(0, 0, f"Found {step.total:,} images\u2026")
                else:
                    control.progress(step.done, step.total, os.path.basename(step.path or ""))
            if control.cancelled:
                summary.cancelled = True
            return summary

        self.busy_changed.emit(True)
        run_task(
            self.runner,
            name,
            work,
            on_progress=self._add_progress,
            on_result=self._add_finished,
            on_error=lambda exc, _tb: self.banner.show_error(user_message(exc, doing)),
            on_ended=self._job_ended,
            on_started=self._keep_job,
        )

    def _show_progress(self, label: str) -> None:
        """An indeterminate progress bar with ``label`` and a live Cancel, until totals arrive."""
        self.banner.dismiss()
        self.progress.setRange(0, 0)
        self.progress_label.setText(label)
        self.eta_label.clear()
        self.cancel_button.setEnabled(True)
        self.progress_box.show()
        self._eta_start = None

    def reembed(self) -> None:
        """Fingerprint every image again with the library's current model."""
        if self.library is None or self.is_busy:
            return
        library = self.library
        self._show_progress("Re-fingerprinting the library with the new model\u2026")

        self._run_fingerprint_job(
            "re-embed library",
            "re-fingerprinting the library",
            lambda stop: library.reembed(should_stop=stop),
        )
        self._update_buttons()

    # -- removing and showing ---------------------------------------------------------------------

    def remove_selected(self) -> None:
        images = self.selected_images()
        if not images or self.library is None:
            return
        if self.is_busy:
            self.banner.show_message("Wait for the current job to finish first.", "warning")
            return
        names = ", ".join(os.path.basename(im.path) for im in images[:3])
        if len(images) > 3:
            names += f" and {len(images) - 3} more"
        answer = QMessageBox.question(
            self,
            "Remove from library",
            f"Stop protecting {len(images)} image{'s' if len(images) != 1 else ''} ({names})?\n\n"
            "The files on disk are not touched.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        library = self.library
        paths = [im.path for im in images]

        def work(control: TaskControl) -> int:
            return len(library.remove(paths).removed)

        self.busy_changed.emit(True)
        run_task(
            self.runner,
            "remove images",
            work,
            on_result=lambda n: self.banner.show_message(
                f"Removed {n} image{'s' if n != 1 else ''} from the library.", "info"
            ),
            on_error=lambda exc, _tb: self.banner.show_error(user_message(exc, "removing images")),
            on_ended=self._removed,
            on_started=self._keep_job,
        )
        self._update_buttons()

    def _removed(self) -> None:
        self._job = None
        self.busy_changed.emit(False)
        self.library_changed.emit()
        self._update_buttons()
        self.reload()

    def show_selected_in_folder(self) -> None:
        images = self.selected_images()
        if not images:
            return
        folder = os.path.dirname(images[0].path)
        if not os.path.isdir(folder):
            self.banner.show_error(f"The folder {folder} no longer exists.")
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(folder)):
            self.banner.show_error(f"Could not open a file manager on {folder}.")
