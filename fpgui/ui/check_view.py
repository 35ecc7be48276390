"""The Check view: drop, paste or open an image and see whether it copies a protected one.

One image gives the query, a verdict banner (copy, possible copy or no match) and the top-5 matches
as cards; several files or a folder give a sortable batch table with CSV/JSON export. All decoding
and embedding runs in tasks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from fpgui.ui.resources import image_file_filter
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import TaskControl, TaskHandle, TaskRunner, run_task, user_message
from fpgui.ui.thumbnails import ThumbnailCache, pil_to_qimage
from fpgui.ui.widgets.banner import MessageBanner
from fpgui.ui.widgets.batch_table import (
    SORT_ROLE,
    BatchRow,
    BatchTableModel,
    rows_to_csv,
    rows_to_json,
)
from fpgui.ui.widgets.drop_zone import DroppedContent, DropZone, read_mime
from fpgui.ui.widgets.match_card import MatchCard
from fpgui.ui.widgets.verdict import VerdictBanner

if TYPE_CHECKING:
    from PIL import Image

    from fpgui.core.library import Library
    from fpgui.core.matching import CheckResult, Match

PREVIEW_SIZE = 240


@dataclass(frozen=True)
class SingleCheck:
    """A finished check of one image, with what the view and the compare dialog need."""

    result: CheckResult
    query_image: Image.Image  # full size RGB, for compare and reports
    preview: QImage  # at most PREVIEW_SIZE, made on the worker


def _check_one(
    library: Library, source: str | QImage, name: str, threshold: float | None
) -> SingleCheck:
    """Worker: decode the query, embed and search. Raises ImageLoadError for a bad file."""
    from PIL import Image

    from fpgui.core.images import load_image_bytes
    from fpgui.core.matching import check, read_query_bytes

    if isinstance(source, QImage):
        image = _qimage_to_pil(source)
        result = check(library, image, threshold=threshold, name=name)
    else:
        data = read_query_bytes(Path(source))
        result = check(library, data, threshold=threshold, name=source)
        image = load_image_bytes(data, name=source)
    preview = image.copy()
    preview.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.BILINEAR)
    return SingleCheck(result, image, pil_to_qimage(preview))


def _qimage_to_pil(qimage: QImage) -> Image.Image:
    """RGB Pillow image of dropped or pasted image data; transparency is laid over white."""
    from PIL import Image

    rgba = qimage.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = rgba.width(), rgba.height()
    data = bytes(rgba.constBits())
    image = Image.frombuffer("RGBA", (width, height), data, "raw", "RGBA", rgba.bytesPerLine(), 1)
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, image).convert("RGB")


class CheckView(QWidget):
    """Needs an opened :class:`Library` (``set_library``) before it can check anything."""

    status_message = Signal(str)
    busy_changed = Signal(bool)

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
        self.unavailable: str | None = "Loading the fingerprint model\u2026"
        self.last_check: SingleCheck | None = None
        self._task: TaskHandle[Any] | None = None
        self.cards: list[MatchCard] = []

        self.banner = MessageBanner()
        self.drop_zone = DropZone()
        self.drop_zone.dropped.connect(self.check_content)
        self.drop_zone.open_requested.connect(self.open_files)
        self.drop_zone.paste_requested.connect(self.paste)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_empty_page())
        self.pages.addWidget(self._build_single_page())
        self.pages.addWidget(self._build_batch_page())

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        self.progress_box.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.progress_box)
        layout.addWidget(self.pages, 1)
        self._update_availability()

    # -- pages --------------------------------------------------------------------------------

    def _build_empty_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.empty_label = QLabel(
            "The verdict and the five closest protected images will appear here."
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setEnabled(False)
        layout.addWidget(self.empty_label)
        return page

    def _build_single_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        self.verdict = VerdictBanner()
        top = QHBoxLayout()
        query_box = QVBoxLayout()
        self.query_image = QLabel()
        self.query_image.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.query_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_image.setFrameShape(QFrame.Shape.StyledPanel)
        self.query_name = QLabel()
        self.query_name.setWordWrap(True)
        self.query_name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.query_name.setMaximumWidth(PREVIEW_SIZE)
        query_box.addWidget(QLabel("<b>Query</b>"))
        query_box.addWidget(self.query_image)
        query_box.addWidget(self.query_name)
        query_box.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.verdict)
        matches_title = QHBoxLayout()
        matches_title.addWidget(QLabel("<b>Closest protected images</b>"))
        matches_title.addStretch(1)
        self.report_button = QPushButton("Export evidence report\u2026")
        self.report_button.clicked.connect(self.export_report)
        matches_title.addWidget(self.report_button)
        right.addLayout(matches_title)
        self.cards_box = QWidget()
        self.cards_layout = QHBoxLayout(self.cards_box)
        self.cards_layout.setContentsMargins(0, 0, 0, 0)
        self.cards_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.cards_box)
        scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        right.addWidget(scroll, 1)
        top.addLayout(query_box)
        top.addLayout(right, 1)
        layout.addLayout(top)
        return page

    def _build_batch_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        self.batch_model = BatchTableModel()
        self.batch_proxy = QSortFilterProxyModel()
        self.batch_proxy.setSourceModel(self.batch_model)
        self.batch_proxy.setSortRole(SORT_ROLE)
        self.batch_table = QTableView()
        self.batch_table.setModel(self.batch_proxy)
        self.batch_table.setSortingEnabled(True)
        self.batch_table.setAlternatingRowColors(True)
        self.batch_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.batch_table.verticalHeader().hide()
        header = self.batch_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.batch_table.doubleClicked.connect(self._batch_row_activated)
        self.batch_summary = QLabel()
        self.export_csv_button = QPushButton("Export CSV\u2026")
        self.export_csv_button.clicked.connect(lambda: self.export_batch("csv"))
        self.export_json_button = QPushButton("Export JSON\u2026")
        self.export_json_button.clicked.connect(lambda: self.export_batch("json"))
        row = QHBoxLayout()
        row.addWidget(self.batch_summary, 1)
        row.addWidget(self.export_csv_button)
        row.addWidget(self.export_json_button)
        layout.addLayout(row)
        layout.addWidget(self.batch_table, 1)
        return page

    # -- state --------------------------------------------------------------------------------

    def set_loading(self, text: str = "Loading the fingerprint model\u2026") -> None:
        self.library = None
        self.unavailable = text
        self._update_availability()

    def set_library(self, library: Library | None, problem: str | None = None) -> None:
        """The library to check against; without one (or without its model) say why."""
        self.library = library
        if library is None or not library.has_embedder:
            self.unavailable = problem or "No library is open."
        else:
            self.unavailable = None
        self._update_availability()

    def _update_availability(self) -> None:
        ready = self.unavailable is None
        busy = self.is_busy
        self.drop_zone.open_button.setEnabled(ready and not busy)
        self.drop_zone.paste_button.setEnabled(ready and not busy)
        if ready:
            self.drop_zone.set_message("Drop an image here to check it")
            self.drop_zone.setEnabled(True)
        else:
            self.drop_zone.set_message(self.unavailable or "")
        self.report_button.setEnabled(self.last_check is not None)

    @property
    def is_busy(self) -> bool:
        return self._task is not None and self._task.is_running

    @property
    def threshold(self) -> float | None:
        return self.settings.settings.threshold_override

    def _refuse(self) -> bool:
        """Say why nothing can be checked now; True when that is the case."""
        if self.unavailable is not None:
            self.banner.show_error(self.unavailable)
            return True
        if self.is_busy:
            self.banner.show_message("A check is already running; wait or cancel it.", "warning")
            return True
        return False

    # -- entry points -------------------------------------------------------------------------

    def check_content(self, content: DroppedContent) -> None:
        if not content.usable:
            self.banner.show_error(content.problem or "Nothing to check.")
            return
        if content.image is not None:
            self.check_image(content.image, "dropped image")
        else:
            self.check_paths(content.paths)

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        content = read_mime(mime)
        if content.image is not None:
            self.check_image(content.image, "pasted image")
        elif content.usable:
            self.check_paths(content.paths)
        else:
            self.banner.show_error(
                "The clipboard holds no image. Copy an image (or image files) and paste again."
            )

    def open_files(self) -> None:
        if self._refuse():
            return
        start = self.settings.settings.last_check_folder or ""
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images to check", start, image_file_filter()
        )
        if files:
            self.settings.remember_folder("last_check_folder", os.path.dirname(files[0]))
            self.check_paths(files)

    def open_folder(self) -> None:
        if self._refuse():
            return
        start = self.settings.settings.last_check_folder or ""
        folder = QFileDialog.getExistingDirectory(self, "Check every image in a folder", start)
        if folder:
            self.settings.remember_folder("last_check_folder", folder)
            self.check_paths([folder])

    def check_paths(self, paths: list[str]) -> None:
        """One file: a single check; several files or a folder: a batch."""
        if not paths or self._refuse():
            return
        if len(paths) == 1 and not os.path.isdir(paths[0]):
            self._start_single(paths[0], os.path.basename(paths[0]))
        else:
            self._start_batch(paths)

    def check_image(self, image: QImage, name: str) -> None:
        if self._refuse():
            return
        self._start_single(image, name)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.progress_label.setText("Cancelling\u2026")

    # -- single -------------------------------------------------------------------------------

    def _start_single(self, source: str | QImage, name: str) -> None:
        library = self.library
        assert library is not None
        threshold = self.threshold
        self.banner.dismiss()
        self._show_progress(f"Checking {name}\u2026", busy_indicator=True)
        label = name if isinstance(source, QImage) else source

        def work(control: TaskControl) -> SingleCheck:
            return _check_one(library, source, label, threshold)

        self.busy_changed.emit(True)
        run_task(
            self.runner,
            "check image",
            work,
            on_result=self._show_single,
            on_error=lambda exc, _tb: self._single_failed(exc, name),
            on_ended=self._task_ended,
            on_started=self._keep_task,
        )
        self._update_availability()

    def _keep_task(self, handle: TaskHandle[Any]) -> None:
        self._task = handle

    def _show_single(self, outcome: SingleCheck) -> None:
        self.last_check = outcome
        result = outcome.result
        self.verdict.set_result(result)
        self.query_image.setPixmap(QPixmap.fromImage(outcome.preview))
        self.query_name.setText(
            f"{result.query}\n{outcome.query_image.width} \u00d7 {outcome.query_image.height} px"
        )
        self.query_name.setToolTip(f"SHA-256 {result.sha256}")
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards = []
        for match in result.matches:
            card = MatchCard(match, result, self.thumbnails)
            card.compare_requested.connect(self.compare)
            self.cards_layout.insertWidget(
                self.cards_layout.count() - 1, card, 0, Qt.AlignmentFlag.AlignTop
            )
            self.cards.append(card)
        if not result.matches:
            self.verdict.set_result(result)
        self.pages.setCurrentIndex(1)
        self.drop_zone.set_compact(True)
        self.status_message.emit(self.verdict.summary())
        self._update_availability()

    def compare(self, match: Match) -> None:
        if self.last_check is None:
            return
        from fpgui.ui.compare_view import CompareDialog

        dialog = CompareDialog(
            self.last_check.result,
            match,
            self.last_check.query_image,
            self,
            library=self.library,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def export_report(self) -> None:
        if self.last_check is None or self.library is None:
            self.banner.show_error("Check an image first; the report describes that check.")
            return
        from fpgui.core import reports

        start = self.settings.settings.last_check_folder or str(Path.home())
        stem = Path(self.last_check.result.query).stem or "check"
        path, chosen = QFileDialog.getSaveFileName(
            self,
            "Export evidence report",
            os.path.join(start, f"{stem}-evidence.html"),
            "HTML report (*.html);;JSON report (*.json)",
        )
        if not path:
            return
        as_json = path.lower().endswith(".json") or "json" in chosen.lower()
        writer = reports.write_json_report if as_json else reports.write_html_report
        outcome, library = self.last_check, self.library

        def work(control: TaskControl) -> str:
            writer(outcome.result, library, outcome.query_image, Path(path))
            return path

        run_task(
            self.runner,
            "export report",
            work,
            on_result=lambda p: self.banner.show_message(f"Evidence report saved to {p}", "info"),
            on_error=lambda exc, _tb: self._failed(exc, "saving the report"),
        )

    # -- batch --------------------------------------------------------------------------------

    def _start_batch(self, paths: list[str]) -> None:
        library = self.library
        assert library is not None
        threshold = self.threshold
        self.banner.dismiss()
        self.batch_model.clear()
        self.batch_table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.pages.setCurrentIndex(2)
        self.drop_zone.set_compact(True)
        self.status_message.emit("")
        self._show_progress("Finding images\u2026")

        def work(control: TaskControl) -> bool:
            """Returns whether it was cancelled; rows arrive one by one as partial results."""
            from fpgui.core.scanning import ScanFailure, scan_image_files

            queries: list[str] = []
            for found in scan_image_files(paths, control.is_cancelled):
                if isinstance(found, ScanFailure):
                    control.partial(BatchRow(found.path, error=found.reason))
                else:
                    queries.append(found)
            for number, query in enumerate(queries):
                if control.cancelled:
                    break
                control.progress(number, len(queries), os.path.basename(query))
                try:
                    single = _check_one(library, query, query, threshold)
                except Exception as exc:  # noqa: BLE001 - one bad query must not stop the batch
                    reason = getattr(exc, "reason", None) or user_message(exc)
                    control.partial(BatchRow(query, error=reason))
                else:
                    control.partial(BatchRow(query, single.result))
            control.progress(len(queries), len(queries), "", force=True)
            return control.cancelled

        self.busy_changed.emit(True)
        run_task(
            self.runner,
            "batch check",
            work,
            on_partial=self.batch_model.append,
            on_progress=self._batch_progress,
            on_result=self._batch_done,
            on_error=lambda exc, _tb: self._failed(exc, "the batch check"),
            on_ended=self._task_ended,
            on_started=self._keep_task,
        )
        self._update_availability()

    def _batch_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress_label.setText(f"Checking {done + 1 if done < total else done} of {total}")
        self._update_batch_summary()

    def _batch_done(self, cancelled: bool) -> None:
        self._update_batch_summary()
        if cancelled:
            self.banner.show_message(
                f"Batch check cancelled after {len(self.batch_model.rows)} images; "
                "the results so far are shown.",
                "warning",
            )

    def _update_batch_summary(self) -> None:
        rows = self.batch_model.rows
        copies = sum(1 for r in rows if r.verdict == "Copy")
        possible = sum(1 for r in rows if r.verdict == "Possible copy")
        no_match = sum(1 for r in rows if r.verdict == "No match")
        errors = len(rows) - copies - possible - no_match
        copies_text = "1 copy" if copies == 1 else f"{copies} copies"
        possible_text = "1 possible copy" if possible == 1 else f"{possible} possible copies"
        text = f"{len(rows)} checked: {copies_text}, {possible_text}, {no_match} no match"
        if errors:
            text += f", {errors} could not be checked"
        self.batch_summary.setText(text)

    def _batch_row_activated(self, index: Any) -> None:
        row = self.batch_model.rows[self.batch_proxy.mapToSource(index).row()]
        if row.error:
            self.banner.show_error(f"{row.query}: {row.error}")

    def export_batch(self, fmt: str) -> None:
        rows = list(self.batch_model.rows)
        if not rows:
            self.banner.show_error("There are no batch results to export yet.")
            return
        start = self.settings.settings.last_check_folder or str(Path.home())
        path, _ = QFileDialog.getSaveFileName(
            self,
            f"Export batch results as {fmt.upper()}",
            os.path.join(start, f"fpgui-check.{fmt}"),
            "CSV (*.csv)" if fmt == "csv" else "JSON (*.json)",
        )
        if not path:
            return
        text = rows_to_csv(rows) if fmt == "csv" else rows_to_json(rows)
        try:
            from fpgui.core.atomic import atomic_write_text

            atomic_write_text(Path(path), text)
        except OSError as exc:
            self.banner.show_error(user_message(exc, "exporting the results"))
            return
        self.banner.show_message(f"Saved {len(rows)} results to {path}", "info")

    # -- shared -------------------------------------------------------------------------------

    def _show_progress(self, text: str, busy_indicator: bool = False) -> None:
        self.progress_label.setText(text)
        if busy_indicator:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.cancel_button.setVisible(not busy_indicator)
        self.progress_box.show()

    def _single_failed(self, error: BaseException, name: str) -> None:
        reason = getattr(error, "reason", None)
        if reason:
            message = f"{name} cannot be checked: {reason}."
        else:
            message = user_message(error, f"checking {name}")
        self.banner.show_error(message)
        self.last_check = None
        self.empty_label.setText(f"No result: {name} could not be checked.")
        self.pages.setCurrentIndex(0)
        self._update_availability()

    def _failed(self, error: BaseException, doing: str) -> None:
        self.banner.show_error(user_message(error, doing))

    def _task_ended(self) -> None:
        self.progress_box.hide()
        self._update_availability()
        self.busy_changed.emit(False)
