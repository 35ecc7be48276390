"""The retrain wizard: images, settings, training, evaluation against the current model, adopt.

Training, export and evaluation run ``python -m model_training ...`` in a :class:`QProcess`, so the
window never waits on them and ``fpgui`` never imports ``model_training`` (an import-linter
contract): the wizard only builds command lines and reads what the commands print and write
(``RUN/history.jsonl``, ``RUN/config.json``, ``RUN/checkpoint.pt``, the evaluation report).

Layout of ``work_dir`` (default ``data_dir()/retrain``)::

    run/                 the training run (resumable while ``checkpoint.pt`` is behind its steps)
    candidate/           the exported new model bundle (and its evaluation.json)
    evaluation.json      new and current model on the same held-out queries
    library-corpus/      manifest.jsonl of the library's images, when training on the library
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from PySide6.QtCore import (
    QObject,
    QPointF,
    QProcess,
    QProcessEnvironment,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

import fpgui
from fpgui.core import model_store
from fpgui.core.atomic import atomic_write_text
from fpgui.core.errors import FpguiError
from fpgui.core.images import is_supported_image
from fpgui.core.library import Library
from fpgui.core.model_files import METADATA_FILE, read_metadata
from fpgui.core.paths import data_dir

T = TypeVar("T")

# Defaults of model_training.config.TrainConfig, repeated because fpgui may not import
# model_training; tests/ui/test_retrain_wizard.py checks they still agree.
LOSS_NAMES: tuple[str, ...] = (
    "triplet",
    "weighted",
    "lossless",
    "batch_hard",
    "semi_hard",
    "infonce",
)
DEFAULT_STEPS = 1800
DEFAULT_LOSS = "infonce"
DEFAULT_MARGIN = 0.2
DEFAULT_THETA = 0.4
DEFAULT_ENTROPY_WEIGHT = 0.0
DEFAULT_INPUT_SIZE = 64
DEFAULT_BATCH_IMAGES = 48 * 3  # anchors_per_batch x copies_per_anchor
DEFAULT_ANCHORS_PER_BATCH = 48
# Issue 4's measurement on the 2-core reference CPU: ResNet-18 training at 128 px, bf16 autocast.
# Used only until this machine has a run of its own to measure.
REFERENCE_IMAGES_PER_S = 110.0
REFERENCE_INPUT_SIZE = 128
# Training splits a corpus by image into train, validation (5%) and test (5%); with fewer images
# the validation or test split can come out empty.
MIN_TRAINING_IMAGES = 40
DEFAULT_EVAL_QUERIES = 200
DEFAULT_EVAL_RUNS = 3
POLL_MS = 40
WATCHDOG_MS = 1000
LOG_LINES = 40

RUN_DIR = "run"
CANDIDATE_DIR = "candidate"
EVALUATION_FILE = "evaluation.json"
LIBRARY_CORPUS_DIR = "library-corpus"

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fpgui-retrain")

# "step 25/3000 loss=0.4123 lr=5.0e-04 98.1 img/s eta 41.2 min  val_loss=0.3 ..."
_STEP_LINE = re.compile(
    r"^step (?P<step>\d+)/(?P<steps>\d+) loss=(?P<loss>\S+) lr=\S+ (?P<rate>\S+) img/s "
    r"eta (?P<eta>\S+) min"
)
_VAL_LOSS = re.compile(r"val_loss=(?P<val>\S+)")


# -- helpers without widgets -------------------------------------------------------------------


@dataclass(frozen=True)
class TrainLine:
    """One progress line of ``python -m model_training train``."""

    step: int
    steps: int
    loss: float
    images_per_s: float
    eta_min: float
    val_loss: float | None


def parse_train_line(line: str) -> TrainLine | None:
    """The progress in one line of the train command's output, or None for other lines."""
    found = _STEP_LINE.match(line.strip())
    if found is None:
        return None
    val = _VAL_LOSS.search(line)
    try:
        return TrainLine(
            step=int(found["step"]),
            steps=int(found["steps"]),
            loss=float(found["loss"]),
            images_per_s=float(found["rate"]),
            eta_min=float(found["eta"]),
            val_loss=float(val["val"]) if val else None,
        )
    except ValueError:
        return None


@dataclass(frozen=True)
class TrainSettings:
    """What the settings page chose; ``train_args`` are the train command's flags for it."""

    steps: int = DEFAULT_STEPS
    loss: str = DEFAULT_LOSS
    margin: float = DEFAULT_MARGIN
    theta: float = DEFAULT_THETA
    entropy_weight: float = DEFAULT_ENTROPY_WEIGHT
    input_size: int = DEFAULT_INPUT_SIZE
    device: str = "auto"
    eval_queries: int = DEFAULT_EVAL_QUERIES
    eval_runs: int = DEFAULT_EVAL_RUNS
    init_from: str = ""  # a model folder whose weights the run starts from; "" = from scratch

    def train_args(self) -> list[str]:
        start = ["--init-from", self.init_from] if self.init_from else []
        return [
            "--steps", str(self.steps),
            "--loss", self.loss,
            "--margin", f"{self.margin:g}",
            "--theta", f"{self.theta:g}",
            "--entropy-weight", f"{self.entropy_weight:g}",
            "--input-size", str(self.input_size),
            "--device", self.device,
            *start,
        ]  # fmt: skip

    @property
    def per_modification(self) -> int:
        return max(1, self.eval_queries // 20)


@dataclass(frozen=True)
class RunState:
    """What is on disk of a training run: how far it got and whether it can be resumed."""

    steps: int  # the run's target, from config.json; 0 when unknown
    last_step: int  # last validated step, from history.jsonl
    has_checkpoint: bool
    images_per_s: float | None
    input_size: int | None

    @property
    def resumable(self) -> bool:
        return self.has_checkpoint and self.steps > 0 and self.last_step < self.steps

    @property
    def finished(self) -> bool:
        return self.has_checkpoint and self.steps > 0 and self.last_step >= self.steps


def read_run_state(run_dir: Path) -> RunState:
    """Read ``config.json`` and ``history.jsonl`` of a run (small files); never raises."""
    steps = 0
    input_size: int | None = None
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        steps = int(config.get("steps", 0))
        input_size = int(config["input_size"]) if "input_size" in config else None
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    rows = read_history(run_dir)
    last = rows[-1] if rows else {}
    rate = last.get("images_per_s")
    return RunState(
        steps=steps,
        last_step=int(last.get("step", 0)),
        has_checkpoint=(run_dir / "checkpoint.pt").is_file(),
        images_per_s=float(rate) if isinstance(rate, int | float) and rate > 0 else None,
        input_size=input_size,
    )


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``history.jsonl`` (one per validation); unreadable lines are skipped."""
    try:
        text = (run_dir / "history.jsonl").read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def count_training_images(folder: Path) -> int:
    """Images a training corpus offers: manifest rows, else image files below ``folder``."""
    manifest = folder / "manifest.jsonl"
    if manifest.is_file():
        with manifest.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())
    return sum(1 for p in folder.rglob("*") if p.is_file() and is_supported_image(p))


def write_library_manifest(library: Library, folder: Path) -> int:
    """A corpus manifest naming the library's images where they are; returns how many.

    ``file`` holds absolute paths (a corpus joins it to its folder, which keeps an absolute path
    as it is), so nothing is copied. Every image is its own group, of kind "photo".
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for image in library.images(check_files=True):
        if image.missing:
            continue
        rows.append(
            {
                "file": str(Path(image.path).resolve()),
                "package": "user-library",
                "source_path": image.path,
                "width": image.width,
                "height": image.height,
                "sha256": image.sha256,
                "licence": "the user's own",
                "kind": "photo",
                "group": f"library-{image.id}",
                "phash": "",
            }
        )
    atomic_write_text(folder / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def default_corpus_dir() -> Path | None:
    """``./corpus/train`` (a checkout) or ``data_dir()/corpus``, whichever exists first."""
    for candidate in (Path.cwd() / "corpus" / "train", data_dir() / "corpus"):
        if candidate.is_dir():
            return candidate
    return None


def estimate_seconds(settings: TrainSettings, run: RunState | None) -> tuple[float, str]:
    """Seconds the training will take, and where the speed came from.

    Speed scales with the pixels per image; a previous run's measured images/s beats the
    reference figure.
    """
    if run is not None and run.images_per_s and run.input_size:
        rate = run.images_per_s * (run.input_size / settings.input_size) ** 2
        source = f"{run.images_per_s:.0f} img/s measured at {run.input_size} px by the last run"
    else:
        rate = REFERENCE_IMAGES_PER_S * (REFERENCE_INPUT_SIZE / settings.input_size) ** 2
        source = (
            f"rough: {REFERENCE_IMAGES_PER_S:.0f} img/s at {REFERENCE_INPUT_SIZE} px on a 2-core "
            "CPU; the first run measures this machine"
        )
    return settings.steps * DEFAULT_BATCH_IMAGES / rate, source


def format_duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _when_done(owner: QObject, future: Future[T], callback: Callable[[Future[T]], None]) -> QTimer:
    """Call ``callback(future)`` on the GUI thread once ``future`` is done (a timer polls it).

    The timer belongs to ``owner``, so a widget closed meanwhile simply never hears back.
    """
    timer = QTimer(owner)
    timer.setInterval(POLL_MS)

    def poll() -> None:
        if future.done():
            timer.stop()
            timer.deleteLater()
            callback(future)

    timer.timeout.connect(poll)
    timer.start()
    return timer


# -- the process runner -------------------------------------------------------------------------


class ModelTrainingProcess(QObject):
    """``python -m model_training ARGS`` in a QProcess, reporting line by line.

    ``line(text)`` for each line the command prints (stdout, where its progress goes);
    ``finished(exit_code, cancelled)`` exactly once per ``start``. stderr is kept apart
    (``errors``): a failing command's traceback ends there, and :meth:`failure_text` turns it
    into what the wizard shows. ``cancel()`` terminates the process (training saves its
    checkpoint every few minutes, so a cancelled run resumes from the last one).
    """

    line = Signal(str)
    finished = Signal(int, bool)

    def __init__(self, python: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.python = python
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._cancelled = False
        self._buffer = b""
        self._error_buffer = b""
        self._process: QProcess | None = None
        # A safety net, not the normal path: should Qt's death notification for the child
        # ever be missed, the watchdog collects the exit itself, so a page never waits forever.
        self._watchdog = QTimer(self)
        self._watchdog.setInterval(WATCHDOG_MS)
        self._watchdog.timeout.connect(self._check_exited)

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self, args: Sequence[str], working_dir: Path) -> None:
        if self._process is not None:
            raise RuntimeError("a model_training command is already running")
        self.lines = []
        self.errors = []
        self._cancelled = False
        self._buffer = self._error_buffer = b""
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        # From a checkout, model_training sits beside the fpgui package, not on sys.path.
        root = Path(fpgui.__file__).resolve().parents[1]
        if (root / "model_training").is_dir():
            existing = env.value("PYTHONPATH", "")
            env.insert("PYTHONPATH", str(root) + (f"{os.pathsep}{existing}" if existing else ""))
        process.setProcessEnvironment(env)
        try:
            working_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.errors.append(f"Cannot create {working_dir}: {exc.strerror or exc}")
            QTimer.singleShot(0, self, lambda: self.finished.emit(-1, False))
            return
        process.setWorkingDirectory(str(working_dir))
        process.readyReadStandardOutput.connect(self._read)
        process.readyReadStandardError.connect(self._read_errors)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._process = process
        process.start(self.python, ["-m", "model_training", *args])
        self._watchdog.start()

    def cancel(self) -> None:
        if self._process is None:
            return
        self._cancelled = True
        process = self._process
        process.terminate()
        # Tied to this process: it dies with it, and never kills a process started later.
        QTimer.singleShot(5000, process, process.kill)

    def tail(self, count: int = 8) -> str:
        """The last lines the command printed, stdout and stderr (for logs and test failures)."""
        return "\n".join([*self.lines[-count:], *self.errors[-count:]])

    def failure_text(self, exit_code: int) -> str:
        """Why the command failed, for the user: the end of its stderr (the exception's line)."""
        errors = [e for e in self.errors if e.strip()]
        if exit_code < 0 and errors:
            return errors[-1]
        if not errors:
            last = f"\nIts last output:\n{self.tail(3)}" if self.lines else ""
            return f"The command ended with exit code {exit_code} and gave no reason.{last}"
        # A traceback's last line names the error; a few lines above it say where.
        return f"{errors[-1]}\n\nDetails (exit code {exit_code}):\n" + "\n".join(errors[-6:-1])

    def _read(self) -> None:
        if self._process is None:
            return
        self._buffer += bytes(self._process.readAllStandardOutput().data())
        *complete, self._buffer = self._buffer.replace(b"\r", b"\n").split(b"\n")
        for raw in complete:
            text = raw.decode("utf-8", errors="replace").rstrip()
            if text:
                self.lines = [*self.lines[-LOG_LINES:], text]
                self.line.emit(text)

    def _read_errors(self) -> None:
        if self._process is None:
            return
        self._error_buffer += bytes(self._process.readAllStandardError().data())
        *complete, self._error_buffer = self._error_buffer.replace(b"\r", b"\n").split(b"\n")
        for raw in complete:
            text = raw.decode("utf-8", errors="replace").rstrip()
            if text:
                self.errors = [*self.errors[-LOG_LINES:], text]

    def _error(self, error: QProcess.ProcessError) -> None:
        if error is QProcess.ProcessError.FailedToStart and self._process is not None:
            self.errors.append(f"Cannot start {self.python}: {self._process.errorString()}")
            self._done(-1)

    def _check_exited(self) -> None:
        process = self._process
        if process is None:
            self._watchdog.stop()
        elif process.state() is not QProcess.ProcessState.NotRunning:
            # Returns at once; if the child has exited, Qt reaps it and emits finished now.
            process.waitForFinished(0)

    def _finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        self._read_errors()
        if self._buffer:
            self.lines.append(self._buffer.decode("utf-8", errors="replace"))
        if self._error_buffer:
            self.errors.append(self._error_buffer.decode("utf-8", errors="replace"))
        self._buffer = self._error_buffer = b""
        if status is QProcess.ExitStatus.CrashExit and not self._cancelled:
            self.errors.append("The command crashed (killed by a signal; out of memory?).")
            exit_code = exit_code or -1
        self._done(exit_code)

    def _done(self, exit_code: int) -> None:
        self._watchdog.stop()
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        self.finished.emit(exit_code, self._cancelled)


# -- the loss curve ----------------------------------------------------------------------------


class LossCurve(QWidget):
    """Train and validation loss against step, drawn with QPainter."""

    TRAIN_COLOUR = QColor(31, 119, 180)
    VAL_COLOUR = QColor(230, 110, 14)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.total_steps = 1
        self.setMinimumSize(360, 200)
        self.setAccessibleName("Loss curves")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(560, 260)

    def clear(self, total_steps: int) -> None:
        self.train, self.val = [], []
        self.total_steps = max(1, total_steps)
        self.update()

    def add(self, step: int, train: float | None, val: float | None) -> None:
        if train is not None and math.isfinite(train):
            self.train.append((step, train))
        if val is not None and math.isfinite(val):
            self.val.append((step, val))
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        metrics = painter.fontMetrics()
        left, top = metrics.horizontalAdvance("00.000") + 8, metrics.height() + 6
        plot = QRectF(
            left, top, self.width() - left - 10, self.height() - top - 2 * metrics.height()
        )
        painter.setPen(QPen(text, 1))
        painter.drawRect(plot)
        values = [v for _, v in self.train + self.val]
        if not values:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "The loss appears here")
            painter.end()
            return
        low, high = min(values), max(values)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        painter.drawText(QPointF(2, plot.top() + metrics.ascent()), f"{high:.3f}")
        painter.drawText(QPointF(2, plot.bottom()), f"{low:.3f}")
        painter.drawText(
            QPointF(plot.right() - metrics.horizontalAdvance(f"step {self.total_steps}"),
                    plot.bottom() + metrics.height()),
            f"step {self.total_steps}",
        )  # fmt: skip

        def point(step: int, value: float) -> QPointF:
            x = plot.left() + plot.width() * step / self.total_steps
            y = plot.bottom() - plot.height() * (value - low) / (high - low)
            return QPointF(x, y)

        legend_x = plot.left() + 6
        for name, series, colour in (
            ("train", self.train, self.TRAIN_COLOUR),
            ("validation", self.val, self.VAL_COLOUR),
        ):
            painter.setPen(QPen(colour, 2))
            points = [point(s, v) for s, v in series]
            if len(points) > 1:
                painter.drawPolyline(QPolygonF(points))
            for p in points[-1:] if len(points) > 1 else points:
                painter.drawEllipse(p, 2.5, 2.5)
            painter.drawText(QPointF(legend_x, metrics.ascent() + 2), f"- {name}")
            legend_x += metrics.horizontalAdvance(f"- {name}") + 16
        painter.end()


# -- pages -------------------------------------------------------------------------------------


class ImagesPage(QWizardPage):
    """Which images to train on: the default corpus, the library's images, or any folder."""

    SOURCES = ("corpus", "library", "folder")

    def __init__(self, wizard: RetrainWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Choose the training images")
        self.setSubTitle(
            "The model learns what a modified copy looks like from these images. Photos like "
            f"the ones you protect work best; at least {MIN_TRAINING_IMAGES} images are needed."
        )
        self.default_corpus = default_corpus_dir()
        self.counts: dict[str, int | None] = {}
        self.buttons = QButtonGroup(self)
        self.corpus_button = QRadioButton(
            f"The default training corpus ({self.default_corpus})"
            if self.default_corpus
            else "The default training corpus (not found)"
        )
        self.corpus_button.setEnabled(self.default_corpus is not None)
        self.library_button = QRadioButton(f"The images in my library ({wizard.library.folder})")
        self.folder_button = QRadioButton("Another folder of images:")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("A folder of images (searched with its subfolders)")
        self.browse_button = QPushButton("Browse...")
        self.count_label = QLabel()
        self.count_label.setWordWrap(True)
        for index, button in enumerate(
            (self.corpus_button, self.library_button, self.folder_button)
        ):
            self.buttons.addButton(button, index)
        (self.corpus_button if self.default_corpus else self.library_button).setChecked(True)

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.corpus_button)
        layout.addWidget(self.library_button)
        layout.addWidget(self.folder_button)
        layout.addLayout(folder_row)
        layout.addSpacing(12)
        layout.addWidget(self.count_label)
        layout.addStretch(1)

        self.buttons.idToggled.connect(self._source_toggled)
        self.folder_edit.textChanged.connect(self._folder_edited)
        self.browse_button.clicked.connect(self._browse)

    @property
    def source(self) -> str:
        return self.SOURCES[max(0, self.buttons.checkedId())]

    def folder(self) -> Path | None:
        """The corpus folder training reads (for the library: made when training starts)."""
        if self.source == "corpus":
            return self.default_corpus
        if self.source == "library":
            return self.owner.work_dir / LIBRARY_CORPUS_DIR
        text = self.folder_edit.text().strip()
        return Path(text).expanduser().resolve() if text else None

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        self._recount()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        count = self.counts.get(self._count_key())
        return count is not None and count >= MIN_TRAINING_IMAGES

    def _count_key(self) -> str:
        return f"{self.source}:{self.folder()}"

    def _source_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self._recount()

    def _folder_edited(self) -> None:
        if not self.folder_button.isChecked():
            self.folder_button.setChecked(True)
        else:
            self._recount()

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder of training images")
        if chosen:
            self.folder_edit.setText(chosen)

    def _recount(self) -> None:
        key = self._count_key()
        if key in self.counts:
            self._show_count()
            return
        folder = self.folder()
        if self.source == "library":
            self.counts[key] = self.owner.library.count()
            self._show_count()
            return
        if folder is None or not folder.is_dir():
            self.counts.pop(key, None)
            self.count_label.setText("Choose an existing folder." if folder else "")
            self.completeChanged.emit()
            return
        self.count_label.setText(f"Counting the images in {folder}...")
        self.completeChanged.emit()

        def counted(future: Future[int]) -> None:
            try:
                self.counts[key] = future.result()
            except OSError as exc:
                self.counts[key] = 0
                self.count_label.setText(f"Cannot read {folder}: {exc.strerror or exc}")
                return
            self._show_count()

        _when_done(self, _pool.submit(count_training_images, folder), counted)

    def _show_count(self) -> None:
        count = self.counts.get(self._count_key())
        if count is None:
            return
        where = "in your library" if self.source == "library" else f"in {self.folder()}"
        text = f"{count} images {where}."
        if count < MIN_TRAINING_IMAGES:
            text += f" Training needs at least {MIN_TRAINING_IMAGES}."
        self.count_label.setText(text)
        self.completeChanged.emit()

    def image_count(self) -> int:
        return self.counts.get(self._count_key()) or 0


class SettingsPage(QWizardPage):
    """Steps, loss, margin, theta, input size, device, evaluation size; with a time estimate."""

    def __init__(self, wizard: RetrainWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Training settings")
        self.setSubTitle(
            "The defaults are those of the bundled model's training run. Starting from the "
            "current model fine-tunes it rather than learning from scratch."
        )
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setSingleStep(100)
        self.steps.setValue(DEFAULT_STEPS)
        self.loss = QComboBox()
        self.loss.addItems(LOSS_NAMES)
        self.loss.setCurrentText(DEFAULT_LOSS)
        self.margin = QDoubleSpinBox()
        self.margin.setRange(0.0, 2.0)
        self.margin.setSingleStep(0.05)
        self.margin.setDecimals(3)
        self.margin.setValue(DEFAULT_MARGIN)
        self.theta = QDoubleSpinBox()
        self.theta.setRange(0.05, 1.0)
        self.theta.setSingleStep(0.05)
        self.theta.setDecimals(3)
        self.theta.setValue(DEFAULT_THETA)
        self.entropy_weight = QDoubleSpinBox()
        self.entropy_weight.setRange(0.0, 50.0)
        self.entropy_weight.setSingleStep(0.5)
        self.entropy_weight.setDecimals(2)
        self.entropy_weight.setValue(DEFAULT_ENTROPY_WEIGHT)
        self.entropy_weight.setToolTip(
            "Weight of the entropy term that spreads unrelated images apart, so that one "
            "distance threshold tells copies from non-copies. 0 turns it off."
        )
        self.input_size = QSpinBox()
        self.input_size.setRange(32, 512)
        self.input_size.setSingleStep(16)
        self.input_size.setSuffix(" px")
        self.input_size.setValue(DEFAULT_INPUT_SIZE)
        self.device = QComboBox()
        self.device.addItems(_devices())
        self.eval_queries = QSpinBox()
        self.eval_queries.setRange(2, 10_000)
        self.eval_queries.setValue(DEFAULT_EVAL_QUERIES)
        self.eval_runs = QSpinBox()
        self.eval_runs.setRange(1, 20)
        self.eval_runs.setValue(DEFAULT_EVAL_RUNS)
        self.start_from_current = QCheckBox("Start from the current model's weights")
        self.start_from_current.setToolTip(
            "Fine-tune the model in use instead of learning from scratch: it already knows "
            "what modified copies look like, so far fewer steps are needed."
        )
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)

        form = QFormLayout(self)
        form.addRow(self.start_from_current)
        form.addRow("Training steps:", self.steps)
        form.addRow("Loss:", self.loss)
        form.addRow("Margin (alpha):", self.margin)
        form.addRow("Weight of the negative distance (theta, weighted loss):", self.theta)
        form.addRow("Entropy weight (spread unrelated images):", self.entropy_weight)
        form.addRow("Input size:", self.input_size)
        form.addRow("Device:", self.device)
        form.addRow("Evaluation queries per run:", self.eval_queries)
        form.addRow("Evaluation runs:", self.eval_runs)
        form.addRow(self.estimate)
        for spin in (self.steps, self.input_size):
            spin.valueChanged.connect(self._update_estimate)
        self.loss.currentTextChanged.connect(self._update_enabled)
        self._run_state: RunState | None = None
        self._sized_from_model = False

    def settings(self) -> TrainSettings:
        return TrainSettings(
            steps=self.steps.value(),
            loss=self.loss.currentText(),
            margin=self.margin.value(),
            theta=self.theta.value(),
            entropy_weight=self.entropy_weight.value(),
            input_size=self.input_size.value(),
            device=self.device.currentText(),
            eval_queries=self.eval_queries.value(),
            eval_runs=self.eval_runs.value(),
            init_from=str(self.owner.current_model_dir)
            if self.start_from_current.isChecked() and self.owner.current_model_dir is not None
            else "",
        )

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        current = self.owner.current_model_dir
        self.start_from_current.setEnabled(current is not None)
        self.start_from_current.setChecked(current is not None)
        if current is not None and not self._sized_from_model:
            # Fine-tuning keeps the resolution and entropy weight the current model learnt with
            # (a small JSON read); only on the first visit, so what the user chose survives Back
            # and Next.
            self._sized_from_model = True
            with contextlib.suppress(FpguiError):
                meta = read_metadata(current)
                self.input_size.setValue(meta.input_size)
                recipe = meta.training.get("config", {})
                weight = recipe.get("entropy_weight") if isinstance(recipe, dict) else None
                if isinstance(weight, int | float):
                    self.entropy_weight.setValue(float(weight))
        if current is None:
            self.start_from_current.setChecked(False)
            self.start_from_current.setText("Start from the current model's weights (no model)")
        self._run_state = read_run_state(self.owner.run_dir)
        self._update_enabled()
        self._update_estimate()

    def _update_enabled(self) -> None:
        loss = self.loss.currentText()
        self.margin.setEnabled(loss in ("triplet", "weighted", "batch_hard", "semi_hard"))
        self.theta.setEnabled(loss == "weighted")

    def _update_estimate(self) -> None:
        settings = self.settings()
        seconds, source = estimate_seconds(settings, self._run_state)
        images = self.owner.images_page.image_count()
        passes = (
            f", about {settings.steps * DEFAULT_ANCHORS_PER_BATCH / images:.0f} passes over "
            f"the {images} images"
            if images
            else ""
        )
        self.estimate.setText(
            f"Estimated training time: about {format_duration(seconds)} ({source}){passes}. "
            "Evaluation adds a few minutes."
        )


def _devices() -> list[str]:
    import torch

    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


class TrainingPage(QWizardPage):
    """Runs the training with live loss curves, ETA, Cancel and Resume."""

    def __init__(self, wizard: RetrainWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Training")
        self.setSubTitle(
            "You can keep using fpgui meanwhile. Cancel stops the run; it can be resumed from "
            "its last checkpoint (saved every few minutes)."
        )
        self.process = ModelTrainingProcess(wizard.python, self)
        self.process.line.connect(self._line)
        self.process.finished.connect(self._finished)
        self.curve = LossCurve()
        self.progress = QProgressBar()
        self.progress.setFormat("step %v of %m")
        self.status = QLabel("Not started.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.eta = QLabel()
        self.start_button = QPushButton("Start training")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel training")
        self.finished_ok = False
        self._preparing = False

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.curve, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.eta)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.cancel_button.clicked.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.process.running or self._preparing

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        self.finished_ok = False
        self._show_run_on_disk()

    def cleanupPage(self) -> None:  # noqa: N802 (Qt override: Back was pressed)
        self.cancel()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self.finished_ok and not self.running

    def _show_run_on_disk(self) -> None:
        state = read_run_state(self.owner.run_dir)
        self.curve.clear(state.steps or self.owner.settings_page.settings().steps)
        if state.resumable:
            self._load_history()
            self.status.setText(
                f"An interrupted run is waiting at step {state.last_step} of {state.steps} "
                f"(last validation). Resume continues it with its own settings; Start begins "
                "a new run."
            )
        self._update_buttons()

    def _load_history(self) -> None:
        for row in read_history(self.owner.run_dir):
            self.curve.add(int(row["step"]), row.get("train_loss"), row.get("val_loss"))

    def _update_buttons(self) -> None:
        running = self.running
        state = read_run_state(self.owner.run_dir)
        self.start_button.setEnabled(not running)
        self.resume_button.setVisible(state.resumable)
        self.resume_button.setEnabled(not running and state.resumable)
        self.cancel_button.setEnabled(running)
        self.completeChanged.emit()

    def start(self, resume: bool) -> None:
        if self.running:
            return
        self.finished_ok = False
        settings = self.owner.settings_page.settings()
        state = read_run_state(self.owner.run_dir)
        self.curve.clear(state.steps if resume and state.steps else settings.steps)
        self.progress.setRange(0, state.steps if resume and state.steps else settings.steps)
        self.progress.setValue(state.last_step if resume else 0)
        if resume:
            self._load_history()
        self.eta.setText("")
        if self.owner.images_page.source == "library" and not resume:
            self._preparing = True
            self.status.setText("Listing the library's images...")
            self._update_buttons()
            future = _pool.submit(
                write_library_manifest, self.owner.library, self.owner.corpus_dir()
            )
            _when_done(self, future, lambda f: self._prepared(f, resume))
            return
        self._launch(resume)

    def _prepared(self, future: Future[int], resume: bool) -> None:
        self._preparing = False
        try:
            future.result()
        except (OSError, FpguiError) as exc:
            self.status.setText(f"Cannot list the library's images: {exc}")
            self._update_buttons()
            return
        self._launch(resume)

    def _launch(self, resume: bool) -> None:
        self.status.setText("Starting (loading the images)...")
        self.process.start(self.owner.train_command(resume), self.owner.work_dir)
        self._update_buttons()

    def cancel(self) -> None:
        if self.process.running:
            self.status.setText("Cancelling...")
            self.process.cancel()

    def _line(self, text: str) -> None:
        progress = parse_train_line(text)
        if progress is None:
            return
        self.progress.setRange(0, progress.steps)
        self.progress.setValue(progress.step)
        self.curve.total_steps = progress.steps
        self.curve.add(progress.step, progress.loss, progress.val_loss)
        self.eta.setText(
            f"{progress.images_per_s:.1f} images/s - about "
            f"{format_duration(progress.eta_min * 60)} left"
        )
        self.status.setText(f"Training: step {progress.step} of {progress.steps}.")

    def _finished(self, exit_code: int, cancelled: bool) -> None:
        state = read_run_state(self.owner.run_dir)
        if cancelled:
            self.status.setText(
                "Cancelled. "
                + (
                    f"Resume continues from the last checkpoint (step {state.last_step} or later)."
                    if state.resumable
                    else "No checkpoint was saved yet; Start begins again."
                )
            )
        elif exit_code != 0:
            self.status.setText(f"Training failed: {self.process.failure_text(exit_code)}")
        elif state.finished:
            self.finished_ok = True
            self.progress.setValue(self.progress.maximum())
            self.eta.setText("")
            self.status.setText(f"Training finished: {state.steps} steps. Next: evaluation.")
        else:
            self.status.setText(
                f"Training stopped at step {state.last_step} of {state.steps}; Resume continues it."
            )
        self._update_buttons()


METRICS = (
    ("Recall", "recall"),
    ("Precision", "precision"),
    ("F1", "f1"),
    ("Top-1", "top1"),
    ("Top-5", "top5"),
    ("Threshold", "threshold"),
)
EVAL_SETS = (("corpus-test", "held-out corpus images"), ("holdout-photos", "held-out photos"))


class EvaluationPage(QWizardPage):
    """Exports the new model, then evaluates it and the current one on the same queries."""

    def __init__(self, wizard: RetrainWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Evaluation")
        self.setSubTitle(
            "The new and the current model answer the same held-out queries: modified copies "
            "of images neither was trained on, and images that are not in the library."
        )
        self.process = ModelTrainingProcess(wizard.python, self)
        self.process.finished.connect(self._finished)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QLabel()
        self.log.setWordWrap(True)
        self.process.line.connect(self._line)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.table = QTableWidget(len(METRICS), 0)
        self.table.setVerticalHeaderLabels([name for name, _ in METRICS])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.cancel_button = QPushButton("Cancel evaluation")
        self.retry_button = QPushButton("Evaluate again")
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.retry_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.busy)
        layout.addWidget(self.log)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.cancel_button.clicked.connect(self.cancel)
        self.retry_button.clicked.connect(self.start)
        self.stage = "idle"  # idle, export, evaluate, done, failed
        self.results: dict[str, dict[str, dict[str, Any]]] = {}  # set -> model -> metrics
        self.new_model_id: str | None = None

    @property
    def running(self) -> bool:
        return self.process.running

    def _line(self, text: str) -> None:
        self.log.setText(text[-200:])

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        self.start()

    def cleanupPage(self) -> None:  # noqa: N802 (Qt override)
        self.cancel()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self.stage == "done"

    def start(self) -> None:
        if self.running:
            return
        self.results = {}
        self.new_model_id = None
        self.table.setColumnCount(0)
        self.stage = "export"
        self.status.setText("Exporting the new model and calibrating its threshold...")
        self.process.start(self.owner.export_command(), self.owner.work_dir)
        self._update()

    def cancel(self) -> None:
        if self.running:
            self.status.setText("Cancelling...")
            self.process.cancel()

    def _update(self) -> None:
        self.busy.setVisible(self.running)
        self.cancel_button.setEnabled(self.running)
        self.retry_button.setEnabled(not self.running)
        self.completeChanged.emit()

    def _finished(self, exit_code: int, cancelled: bool) -> None:
        if cancelled:
            self.stage = "failed"
            self.status.setText("Evaluation cancelled. Evaluate again to restart it.")
        elif exit_code != 0:
            failed = self.stage
            self.stage = "failed"
            self.status.setText(f"The {failed} step failed: {self.process.failure_text(exit_code)}")
        elif self.stage == "export":
            try:
                self.new_model_id = read_metadata(self.owner.candidate_dir).model_id
            except FpguiError as exc:
                self.stage = "failed"
                self.status.setText(f"The exported model is unusable: {exc}")
                self._update()
                return
            self.stage = "evaluate"
            current = self.owner.current_model_dir
            self.status.setText(
                "Evaluating the new model"
                + (f" and the current one ({current.name})..." if current else "...")
            )
            self.process.start(self.owner.evaluate_command(), self.owner.work_dir)
        elif self.stage == "evaluate":
            self._show_report()
        self._update()

    def _show_report(self) -> None:
        try:
            report = json.loads(self.owner.evaluation_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.stage = "failed"
            self.status.setText(f"The evaluation report cannot be read: {exc}")
            return
        names = {"new": CANDIDATE_DIR}
        current = self.owner.current_model_dir
        if current is not None:
            names["current"] = current.name
        columns: list[tuple[str, dict[str, Any]]] = []
        for key, label in EVAL_SETS:
            results = report.get(key, {}).get("results", {})
            if not results:
                continue
            self.results[key] = {}
            for role, folder_name in names.items():
                if folder_name in results:
                    self.results[key][role] = results[folder_name]
                    title = "New model" if role == "new" else "Current model"
                    columns.append((f"{title}\n({label})", results[folder_name]))
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([title for title, _ in columns])
        for column, (_, metrics) in enumerate(columns):
            for row, (_, key) in enumerate(METRICS):
                value = metrics.get(key)
                text = f"{value:.3f}" if isinstance(value, int | float) else "-"
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.stage = "done"
        self.status.setText(self.owner.comparison_text())
        self.log.setText("")


class FinishPage(QWizardPage):
    """Adopt the new model (it becomes active, the old one is kept for rollback) or discard it."""

    def __init__(self, wizard: RetrainWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Adopt or discard the new model")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.adopt_button = QPushButton("Adopt the new model")
        self.discard_button = QPushButton("Discard it")
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.decided: str | None = None  # "adopted" or "discarded"
        row = QHBoxLayout()
        row.addWidget(self.adopt_button)
        row.addWidget(self.discard_button)
        row.addStretch(1)
        layout = QGridLayout(self)
        layout.addWidget(self.summary, 0, 0)
        layout.addLayout(row, 1, 0)
        layout.addWidget(self.outcome, 2, 0)
        layout.setRowStretch(3, 1)
        self.adopt_button.clicked.connect(self.adopt)
        self.discard_button.clicked.connect(self.discard)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        self.decided = None
        self.summary.setText(
            self.owner.comparison_text()
            + "\n\nAdopting makes the new model the one fpgui checks with; your library is then "
            "fingerprinted again with it. The current model is kept, so you can roll back."
        )
        self.outcome.setText("")
        self._update()

    def isComplete(self) -> bool:  # noqa: N802 (Qt override)
        return self.decided is not None

    def _update(self, busy: bool = False) -> None:
        undecided = self.decided is None and not busy
        self.adopt_button.setEnabled(undecided)
        self.discard_button.setEnabled(undecided)
        self.completeChanged.emit()

    def adopt(self) -> None:
        self.outcome.setText("Adopting the new model...")
        self._update(busy=True)
        future = _pool.submit(model_store.adopt, self.owner.candidate_dir)
        _when_done(self, future, self._adopted)

    def _adopted(self, future: Future[Path]) -> None:
        try:
            folder = future.result()
        except (OSError, FpguiError) as exc:
            self.outcome.setText(f"The new model could not be adopted: {exc}")
            self._update()
            return
        self.decided = "adopted"
        model_id = folder.name
        self.outcome.setText(f"Adopted {model_id}. It is now the active model.")
        self._update()
        self.owner.model_adopted.emit(model_id)

    def discard(self) -> None:
        shutil.rmtree(self.owner.candidate_dir, ignore_errors=True)
        self.decided = "discarded"
        self.outcome.setText("The new model was discarded; the current model stays active.")
        self._update()


# -- the wizard --------------------------------------------------------------------------------


class RetrainWizard(QWizard):
    """Train a new fingerprint model, compare it with the current one, adopt it or not.

    ``model_adopted(model_id)`` is emitted after the new model became the active one in
    :mod:`fpgui.core.model_store` (its folder: ``model_store.active_model_dir()``); the window
    then loads it and re-fingerprints the library. ``python`` runs ``-m model_training``;
    ``train_args`` are extra train flags (tests use them for a tiny run); ``holdout`` is the
    held-out photo corpus evaluated besides the corpus's test split (``None``: none; default
    ``./corpus/holdout`` when it exists); ``current_model``
    overrides the model the new one is compared with (default: the active model).
    """

    model_adopted = Signal(str)

    def __init__(
        self,
        library: Library,
        parent: QWidget | None = None,
        *,
        python: str = sys.executable,
        work_dir: Path | None = None,
        train_args: Sequence[str] = (),
        holdout: Path | None | Literal["default"] = "default",
        current_model: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.python = python
        self.work_dir = Path(work_dir) if work_dir is not None else data_dir() / "retrain"
        self.train_args = list(train_args)
        self.holdout: Path | None = _default_holdout() if isinstance(holdout, str) else holdout
        chosen = current_model if current_model is not None else model_store.active_model_dir()
        self.current_model_dir: Path | None = chosen if (chosen / METADATA_FILE).is_file() else None
        self.setWindowTitle("Retrain the fingerprint model")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.images_page = ImagesPage(self)
        self.settings_page = SettingsPage(self)
        self.training_page = TrainingPage(self)
        self.evaluation_page = EvaluationPage(self)
        self.finish_page = FinishPage(self)
        for page in (
            self.images_page,
            self.settings_page,
            self.training_page,
            self.evaluation_page,
            self.finish_page,
        ):
            self.addPage(page)
        self.resize(760, 620)

    @property
    def run_dir(self) -> Path:
        return self.work_dir / RUN_DIR

    @property
    def candidate_dir(self) -> Path:
        return self.work_dir / CANDIDATE_DIR

    @property
    def evaluation_path(self) -> Path:
        return self.work_dir / EVALUATION_FILE

    def corpus_dir(self) -> Path:
        folder = self.images_page.folder()
        if folder is None:
            raise FpguiError("No training images were chosen")
        return folder

    # -- command lines ------------------------------------------------------------------------

    def train_command(self, resume: bool) -> list[str]:
        """Arguments after ``python -m model_training`` for (resuming) the training run."""
        if resume:
            # The run's saved config.json supplies everything else; only what may change
            # between a run and its resumption is passed.
            device = self.settings_page.settings().device
            return ["train", "--resume", "--out-dir", str(self.run_dir), "--device", device,
                    *self.train_args]  # fmt: skip
        return [
            "train",
            "--corpus", str(self.corpus_dir()),
            "--out-dir", str(self.run_dir),
            *self.settings_page.settings().train_args(),
            *self.train_args,
        ]  # fmt: skip

    def _eval_size_args(self) -> list[str]:
        settings = self.settings_page.settings()
        return [
            "--holdout", str(self.holdout) if self.holdout else "",
            "--runs", str(settings.eval_runs),
            "--queries", str(settings.eval_queries),
            "--per-mod", str(settings.per_modification),
        ]  # fmt: skip

    def export_command(self) -> list[str]:
        return ["export", "--run", str(self.run_dir), "--out", str(self.candidate_dir),
                *self._eval_size_args()]  # fmt: skip

    def evaluate_command(self) -> list[str]:
        models = ["--model", str(self.candidate_dir)]
        if self.current_model_dir is not None:
            models += ["--model", str(self.current_model_dir)]
        device = self.settings_page.settings().device
        return ["evaluate", *models, "--corpus", str(self.corpus_dir()), "--no-hashes",
                "--device", device, "--out", str(self.evaluation_path),
                *self._eval_size_args()]  # fmt: skip

    def comparison_text(self) -> str:
        """One sentence comparing the models' F1 and top-5 on held-out corpus images."""
        results = self.evaluation_page.results.get("corpus-test", {})
        new, current = results.get("new"), results.get("current")
        if new is None:
            return "The new model has not been evaluated."
        text = f"New model {self.evaluation_page.new_model_id}: F1 {new['f1']:.3f}, "
        text += f"top-5 {new['top5']:.1%}"
        if current is None:
            return text + " (there is no current model to compare with)."
        verdict = "better than" if new["f1"] > current["f1"] else "not better than"
        return (
            text + f"; current model: F1 {current['f1']:.3f}, top-5 {current['top5']:.1%}. "
            f"By F1 the new model is {verdict} the current one."
        )

    # -- closing ------------------------------------------------------------------------------

    def done(self, result: int) -> None:
        """Closing stops any running command; an interrupted training run stays resumable."""
        self.training_page.cancel()
        self.evaluation_page.cancel()
        super().done(result)


def _default_holdout() -> Path | None:
    folder = Path.cwd() / "corpus" / "holdout"
    return folder if (folder / "manifest.jsonl").is_file() else None
