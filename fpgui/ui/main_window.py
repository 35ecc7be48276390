"""The main window: Check and Library views, menus, status bar, and opening the library.

Opening the library loads torch and the model, which takes seconds, so it runs as a task after
the window is on screen; until it is done the Check view says the model is loading. Without a
usable model the window still opens, lists the library and says what is missing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from fpgui import __version__
from fpgui.core.paths import config_dir
from fpgui.core.settings import SettingsError
from fpgui.ui.check_view import CheckView
from fpgui.ui.library_view import LibraryView
from fpgui.ui.resources import HELP_TEXT, app_icon
from fpgui.ui.settings_dialog import SettingsDialog, SettingsStore
from fpgui.ui.tasks import TaskControl, TaskRunner, run_task, user_message
from fpgui.ui.thumbnails import ThumbnailCache
from fpgui.ui.widgets.banner import MessageBanner

if TYPE_CHECKING:
    from fpgui.core.embedder import Embedder
    from fpgui.core.library import Library

CHECK_TAB, LIBRARY_TAB = 0, 1


@dataclass
class Session:
    """What :func:`load_session` opened: the library, and the model problem if there is one."""

    library: Library
    model_dir: Path
    problem: str | None = None


def choose_model_dir() -> Path:
    """The adopted model when the model store has one, else the bundled model."""
    from fpgui.core.model_store import active_model_dir

    return active_model_dir()


def load_session(library_dir: Path, model_dir: Path | None, device: str | None) -> Session:
    """Worker: load the model (if there is one) and open the library with it.

    A missing or broken model is not an error here: the library opens without one and
    ``problem`` says what is wrong. A library that cannot be opened raises.
    """
    from fpgui.core.embedder import Embedder
    from fpgui.core.errors import FpguiError
    from fpgui.core.library import Library

    folder = model_dir or choose_model_dir()
    embedder: Embedder | None = None
    problem: str | None = None
    if not (folder / "model.json").is_file():
        problem = (
            f"No fingerprint model found in {folder}. Images cannot be checked or added until "
            "one is installed there or trained (Model \u25b8 Retrain model\u2026)."
        )
    else:
        try:
            embedder = Embedder(folder, device)
        except FpguiError as exc:
            problem = f"The fingerprint model in {folder} cannot be used: {exc}"
    library = Library.open(library_dir, embedder)
    return Session(library, folder, problem)


class MainWindow(QMainWindow):
    session_ready = Signal(object)  # Session
    session_failed = Signal(str)

    def __init__(
        self,
        runner: TaskRunner,
        thumbnails: ThumbnailCache,
        settings: SettingsStore,
        library_dir: Path,
        *,
        model_dir: Path | None = None,
        device: str | None = None,
        window_state: QSettings | None = None,
    ) -> None:
        super().__init__()
        self.runner = runner
        self.thumbnails = thumbnails
        self.settings = settings
        self.library_dir = library_dir
        self.model_dir = model_dir
        self.device = device
        self.session: Session | None = None
        self.loading = False
        self.window_state = window_state or QSettings(
            str(config_dir() / "window.ini"), QSettings.Format.IniFormat
        )
        self.setWindowTitle("fpgui")
        self.setWindowIcon(app_icon())

        self.banner = MessageBanner()
        self.check_view = CheckView(runner, thumbnails, settings)
        self.library_view = LibraryView(runner, thumbnails, settings)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.check_view, "Check")
        self.tabs.addTab(self.library_view, "Library")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.size_label = QLabel("Library: loading\u2026")
        self.model_label = QLabel("Model: loading\u2026")
        self.device_label = QLabel("Device: \u2013")
        for label in (self.size_label, self.model_label, self.device_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        self.check_view.status_message.connect(lambda text: self.statusBar().showMessage(text))
        self.library_view.count_changed.connect(self._show_count)
        self.library_view.library_changed.connect(self._library_changed)

        self._build_menus()
        self._restore_state()

    # -- menus --------------------------------------------------------------------------------

    def _action(
        self, text: str, slot: Any, shortcut: QKeySequence | QKeySequence.StandardKey | str | None
    ) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_action = self._action("&Check image\u2026", self._open_images, "Ctrl+O")
        self.paste_action = self._action("&Paste image to check", self._paste, "Ctrl+V")
        self.check_folder_action = self._action(
            "Check &folder\u2026", self._check_folder, "Ctrl+Shift+O"
        )
        self.add_folder_action = self._action(
            "&Add folder to library\u2026", self._add_folder, "Ctrl+Shift+A"
        )
        self.add_images_action = self._action(
            "Add &images to library\u2026", self._add_images, None
        )
        self.settings_action = self._action(
            "&Settings\u2026", self.open_settings, QKeySequence.StandardKey.Preferences
        )
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        for action in (self.open_action, self.paste_action, self.check_folder_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.add_folder_action)
        file_menu.addAction(self.add_images_action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        model_menu = menu.addMenu("&Model")
        self.retrain_action = self._action("&Retrain model\u2026", self.open_retrain_wizard, None)
        self.reembed_action = self._action(
            "Re-&fingerprint library", self.library_view.reembed, None
        )
        model_menu.addAction(self.retrain_action)
        model_menu.addAction(self.reembed_action)

        help_menu = menu.addMenu("&Help")
        self.help_action = self._action("fpgui &Help", self.show_help, "F1")
        self.about_action = self._action("&About fpgui", self.show_about, None)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        help_menu.addAction(self.help_action)
        help_menu.addAction(self.about_action)

    def _open_images(self) -> None:
        self.tabs.setCurrentIndex(CHECK_TAB)
        self.check_view.open_files()

    def _paste(self) -> None:
        self.tabs.setCurrentIndex(CHECK_TAB)
        self.check_view.paste()

    def _check_folder(self) -> None:
        self.tabs.setCurrentIndex(CHECK_TAB)
        self.check_view.open_folder()

    def _add_folder(self) -> None:
        self.tabs.setCurrentIndex(LIBRARY_TAB)
        self.library_view.choose_folder()

    def _add_images(self) -> None:
        self.tabs.setCurrentIndex(LIBRARY_TAB)
        self.library_view.choose_files()

    # -- the session --------------------------------------------------------------------------

    def start(self) -> None:
        """Open the library and load the model in the background."""
        self.loading = True
        self.check_view.set_loading()
        self.library_view.set_library(None, "The library is loading\u2026")
        self.size_label.setText("Library: loading\u2026")
        self.model_label.setText("Model: loading\u2026")
        library_dir, model_dir, device = self.library_dir, self.model_dir, self.device

        def work(control: TaskControl) -> Session:
            return load_session(library_dir, model_dir, device)

        run_task(
            self.runner,
            "open library",
            work,
            on_result=self._session_ready,
            on_error=self._session_failed,
        )

    def _session_ready(self, session: Session) -> None:
        self.loading = False
        self.session = session
        library = session.library
        self.check_view.set_library(library, session.problem)
        self.library_view.set_library(library, session.problem)
        if session.problem:
            self.banner.show_error(session.problem)
        else:
            self.banner.dismiss()
        self._update_model_labels()
        if library.count() == 0:
            self.tabs.setCurrentIndex(LIBRARY_TAB)
        self.session_ready.emit(session)

    def _session_failed(self, error: BaseException, _traceback: str) -> None:
        self.loading = False
        message = user_message(error, f"opening the library in {self.library_dir}")
        self.check_view.set_library(None, message)
        self.library_view.set_library(None, message)
        self.banner.show_error(message)
        self.size_label.setText("Library: not open")
        self.model_label.setText("Model: \u2013")
        self.session_failed.emit(message)

    def _update_model_labels(self) -> None:
        library = self.session.library if self.session else None
        if library is None or not library.has_embedder:
            self.model_label.setText("Model: none")
            self.device_label.setText("Device: \u2013")
            return
        embedder: Embedder = library.embedder
        meta = embedder.metadata
        self.model_label.setText(f"Model: {meta.name} {meta.version}")
        self.model_label.setToolTip(f"{meta.model_id}\n{embedder.model_dir}")
        kind = embedder.device.type
        name = {"cpu": "CPU", "cuda": "GPU (CUDA)", "mps": "GPU (Apple)"}.get(kind, kind)
        self.device_label.setText(f"Device: {name}, {embedder.precision}")

    def _show_count(self, count: int) -> None:
        self.size_label.setText(f"Library: {count:,} image{'s' if count != 1 else ''}")
        self.size_label.setToolTip(str(self.library_dir))

    def _library_changed(self) -> None:
        pass  # the library view reloads itself and reports the new count

    def close_session(self) -> None:
        """Stop background work and close the library (before quitting or reopening)."""
        self.runner.shutdown(10_000)
        if self.session is not None:
            self.session.library.close()
            self.session = None

    # -- dialogs ------------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        threshold = None
        library = self.session.library if self.session else None
        if library is not None and library.has_embedder:
            threshold = library.embedder.metadata.threshold
        dialog = SettingsDialog(self.settings.settings, threshold, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog))
        dialog.open()
        return dialog

    def apply_settings(self, dialog: SettingsDialog) -> None:
        old = self.settings.settings
        try:
            new = dialog.chosen()
        except ValueError as exc:
            self.banner.show_error(f"Those settings cannot be used: {exc}")
            return
        try:
            self.settings.replace(new)
        except SettingsError as exc:
            self.banner.show_error(f"{exc}. The new settings apply until fpgui is closed.")
        reopen = False
        if new.library_path != old.library_path:
            self.library_dir = (
                Path(new.library_path).expanduser() if new.library_path else (_default_library())
            )
            reopen = True
        if new.device != old.device:
            self.device = new.device_or_none
            reopen = True
        if reopen:
            if self.library_view.is_busy or self.check_view.is_busy:
                self.banner.show_message(
                    "The new library or device is used from the next start: a job is running.",
                    "warning",
                )
                return
            self.close_session()
            self.start()

    def open_retrain_wizard(self) -> None:
        library = self.session.library if self.session else None
        if library is None:
            self.banner.show_error("Open a library first: the wizard can train on its images.")
            return
        from fpgui.ui.retrain_wizard import RetrainWizard

        wizard = RetrainWizard(library, self)
        wizard.model_adopted.connect(self.adopt_model)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        wizard.show()

    def adopt_model(self, model_id: str) -> None:
        """Use the model the wizard just adopted (now the store's active one) and re-fingerprint.

        ``model_id`` is informational: the model store is the one place that says which is active.
        """
        folder = str(choose_model_dir())
        library = self.session.library if self.session else None
        if library is None:
            return
        device = self.device

        def work(control: TaskControl) -> Embedder:
            from fpgui.core.embedder import Embedder

            return Embedder(Path(folder), device)

        def loaded(embedder: Embedder) -> None:
            library.use_embedder(embedder)
            if self.session is not None:
                self.session.model_dir = Path(folder)
                self.session.problem = None
            self.model_dir = Path(folder)
            self.banner.dismiss()
            self.check_view.set_library(library)
            self.library_view.set_library(library)
            self._update_model_labels()
            self.tabs.setCurrentIndex(LIBRARY_TAB)
            self.library_view.reembed()

        self.model_label.setText("Model: loading\u2026")
        run_task(
            self.runner,
            "load new model",
            work,
            on_result=loaded,
            on_error=lambda exc, _tb: self.banner.show_error(
                user_message(exc, "loading the new model")
            ),
        )

    def show_help(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "fpgui Help", HELP_TEXT, parent=self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About fpgui",
            f"<b>fpgui {__version__}</b><p>Tells whether an image is a modified copy of one in "
            "your protected library, using a learned image fingerprint (ResNet-18) and a "
            "nearest-neighbour index.</p>",
        )

    # -- window state -------------------------------------------------------------------------

    def _restore_state(self) -> None:
        geometry = self.window_state.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 760)
        tab = self.window_state.value("tab", CHECK_TAB)
        with contextlib.suppress(ValueError):
            self.tabs.setCurrentIndex(int(str(tab)))

    def save_state(self) -> None:
        self.window_state.setValue("geometry", self.saveGeometry())
        self.window_state.setValue("tab", self.tabs.currentIndex())
        self.window_state.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_state()
        self.close_session()
        self.thumbnails.shutdown()
        event.accept()


def _default_library() -> Path:
    from fpgui.core.paths import default_library_dir

    return default_library_dir()
