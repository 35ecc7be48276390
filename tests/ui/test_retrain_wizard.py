"""The retrain wizard, walked page by page with real clicks and a tiny real training run."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard
from pytestqt.qtbot import QtBot

from fpgui.core import model_store
from fpgui.core.library import Library
from fpgui.core.model_files import METADATA_FILE
from fpgui.ui import retrain_wizard as rw
from fpgui.ui.retrain_wizard import RetrainWizard
from model_training.config import LOSS_NAMES, TrainConfig
from tests.model_training.conftest import write_tiny_corpus

# The smallest run model_training accepts, on the CPU, without worker processes.
TINY_TRAIN_ARGS = [
    "--anchors-per-batch", "4", "--copies-per-anchor", "2", "--procedural-anchors", "4",
    "--val-every", "2", "--workers", "0", "--threads", "1",
]  # fmt: skip
PROCESS_TIMEOUT_MS = 240_000  # a loaded 2-core machine needs ~40 s per torch process


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    lib = Library.open(tmp_path / "library")
    yield lib
    lib.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "corpus", 40)


def make_wizard(
    qtbot: QtBot, library: Library, tmp_path: Path, python: str = sys.executable
) -> RetrainWizard:
    # No held-out photo set: the corpus's own test split is enough, and keeps evaluation tiny.
    wizard = RetrainWizard(
        library, python=python, work_dir=tmp_path / "work", train_args=TINY_TRAIN_ARGS,
        holdout=None,
    )  # fmt: skip
    qtbot.addWidget(wizard)
    wizard.show()
    return wizard


def click(qtbot: QtBot, widget: object) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def next_page(qtbot: QtBot, wizard: RetrainWizard) -> None:
    button = wizard.button(QWizard.WizardButton.NextButton)
    assert button.isEnabled()
    click(qtbot, button)


def choose_folder_and_tiny_settings(qtbot: QtBot, wizard: RetrainWizard, corpus: Path) -> None:
    page = wizard.images_page
    click(qtbot, page.folder_button)
    page.folder_edit.setText(str(corpus))
    qtbot.waitUntil(page.isComplete, timeout=10_000)
    assert "40 images" in page.count_label.text()
    next_page(qtbot, wizard)
    assert wizard.currentPage() is wizard.settings_page
    settings = wizard.settings_page
    settings.steps.setValue(2)
    settings.input_size.setValue(32)
    settings.device.setCurrentText("cpu")
    settings.eval_queries.setValue(6)
    settings.eval_runs.setValue(1)
    assert "Estimated training time" in settings.estimate.text()
    next_page(qtbot, wizard)
    assert wizard.currentPage() is wizard.training_page


def test_defaults_agree_with_model_training() -> None:
    config = TrainConfig()
    assert rw.LOSS_NAMES == LOSS_NAMES
    assert (config.steps, config.loss) == (rw.DEFAULT_STEPS, rw.DEFAULT_LOSS)
    assert (config.margin, config.theta) == (rw.DEFAULT_MARGIN, rw.DEFAULT_THETA)
    assert config.entropy_weight == rw.DEFAULT_ENTROPY_WEIGHT
    assert config.input_size == rw.DEFAULT_INPUT_SIZE
    assert config.batch_size == rw.DEFAULT_BATCH_IMAGES
    assert config.anchors_per_batch == rw.DEFAULT_ANCHORS_PER_BATCH


def test_train_progress_lines_are_parsed() -> None:
    line = "step 250/3000 loss=0.4123 lr=5.0e-04 98.1 img/s eta 41.2 min  val_loss=0.3000  x=1"
    parsed = rw.parse_train_line(line)
    assert parsed == rw.TrainLine(250, 3000, 0.4123, 98.1, 41.2, 0.3)
    assert (
        rw.parse_train_line("step 25/3000 loss=nan lr=1e-4 1.0 img/s eta 0.5 min").val_loss is None
    )
    assert rw.parse_train_line("finished at step 2; run directory x") is None


def test_every_page_with_a_tiny_run_then_adopt(
    qtbot: QtBot, library: Library, corpus: Path, tmp_path: Path, random_model_dir: Path
) -> None:
    started = time.monotonic()
    current = model_store.adopt(random_model_dir)
    wizard = make_wizard(qtbot, library, tmp_path)
    assert wizard.current_model_dir == current
    adopted: list[str] = []
    wizard.model_adopted.connect(adopted.append)
    choose_folder_and_tiny_settings(qtbot, wizard, corpus)
    # A model is in use, so the run fine-tunes it by default.
    assert wizard.settings_page.start_from_current.isChecked()
    command = wizard.train_command(resume=False)
    assert command[command.index("--init-from") + 1] == str(current)

    training = wizard.training_page
    assert not training.resume_button.isVisible() and not training.isComplete()
    click(qtbot, training.start_button)
    assert training.running and training.cancel_button.isEnabled()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    qtbot.waitUntil(lambda: not training.running, timeout=PROCESS_TIMEOUT_MS)
    assert "Training finished" in training.status.text(), training.process.tail()
    assert training.progress.value() == 2
    assert [step for step, _ in training.curve.val] == [2]
    assert training.curve.train  # the train curve was drawn from the progress lines
    trained = time.monotonic()
    next_page(qtbot, wizard)

    evaluation = wizard.evaluation_page
    assert evaluation.running and evaluation.stage == "export"
    click(qtbot, evaluation.cancel_button)  # cancel, then start again: the retry path
    qtbot.waitUntil(lambda: not evaluation.running, timeout=30_000)
    assert evaluation.stage == "failed" and "cancelled" in evaluation.status.text()
    assert not evaluation.isComplete()
    click(qtbot, evaluation.retry_button)
    qtbot.waitUntil(lambda: evaluation.stage in ("done", "failed"), timeout=2 * PROCESS_TIMEOUT_MS)
    assert evaluation.stage == "done", evaluation.status.text()
    evaluated = time.monotonic()
    corpus_test = evaluation.results["corpus-test"]
    assert set(corpus_test) == {"new", "current"}
    for metrics in corpus_test.values():
        assert {"recall", "precision", "f1", "top1", "top5"} <= set(metrics)
    table = evaluation.table
    assert table.columnCount() == 2
    assert [table.verticalHeaderItem(r).text() for r in range(5)] == [
        "Recall", "Precision", "F1", "Top-1", "Top-5",
    ]  # fmt: skip
    assert table.item(2, 0).text() == f"{corpus_test['new']['f1']:.3f}"
    next_page(qtbot, wizard)

    finish = wizard.finish_page
    assert "By F1 the new model is" in finish.summary.text()
    assert not wizard.button(QWizard.WizardButton.FinishButton).isEnabled()
    with qtbot.waitSignal(wizard.model_adopted, timeout=10_000):
        click(qtbot, finish.adopt_button)
    new_id = evaluation.new_model_id
    assert adopted == [new_id]
    assert model_store.active_model_dir() == model_store.store_dir() / new_id
    assert model_store.active_model_dir() != current
    click(qtbot, wizard.button(QWizard.WizardButton.FinishButton))
    assert not wizard.isVisible()
    assert model_store.rollback() == current  # the previous model was kept
    print(
        f"\nwizard: training {trained - started:.1f} s, export and evaluation "
        f"{evaluated - trained:.1f} s, total {time.monotonic() - started:.1f} s"
    )


def test_a_failing_step_ends_in_its_error_message(
    qtbot: QtBot, library: Library, corpus: Path, tmp_path: Path
) -> None:
    # A stand-in for python that fails the way a model_training command does: progress on
    # stdout, a traceback on stderr, exit code 1.
    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'loading the corpus'\n"
        "echo 'Traceback (most recent call last):' >&2\n"
        "echo '  File \"model_training/train.py\", line 9, in main' >&2\n"
        "echo 'FileNotFoundError: no manifest.jsonl in /nowhere' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    wizard = make_wizard(qtbot, library, tmp_path, python=str(fake))
    choose_folder_and_tiny_settings(qtbot, wizard, corpus)
    training = wizard.training_page
    click(qtbot, training.start_button)
    qtbot.waitUntil(lambda: not training.running, timeout=30_000)
    text = training.status.text()
    assert text.startswith("Training failed: FileNotFoundError: no manifest.jsonl in /nowhere")
    assert "exit code 1" in text and "train.py" in text
    assert training.start_button.isEnabled() and not training.isComplete()

    missing = make_wizard(qtbot, library, tmp_path, python=str(tmp_path / "no-such-python"))
    choose_folder_and_tiny_settings(qtbot, missing, corpus)
    click(qtbot, missing.training_page.start_button)
    qtbot.waitUntil(lambda: not missing.training_page.running, timeout=30_000)
    assert missing.training_page.status.text().startswith("Training failed: Cannot start")


def test_cancel_training_leaves_the_wizard_usable(
    qtbot: QtBot, library: Library, corpus: Path, tmp_path: Path
) -> None:
    wizard = make_wizard(qtbot, library, tmp_path)
    choose_folder_and_tiny_settings(qtbot, wizard, corpus)
    training = wizard.training_page
    click(qtbot, training.start_button)
    assert training.running
    click(qtbot, training.cancel_button)
    qtbot.waitUntil(lambda: not training.running, timeout=30_000)
    assert "Cancelled" in training.status.text()
    assert not training.isComplete() and training.start_button.isEnabled()
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()


def test_an_interrupted_run_offers_resume_with_its_own_settings(
    qtbot: QtBot, library: Library, corpus: Path, tmp_path: Path
) -> None:
    run = tmp_path / "work" / "run"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"steps": 10, "input_size": 32}))
    (run / "history.jsonl").write_text(
        json.dumps({"step": 4, "train_loss": 1.0, "val_loss": 1.2, "images_per_s": 50.0}) + "\n"
    )
    (run / "checkpoint.pt").write_bytes(b"stand-in")
    wizard = make_wizard(qtbot, library, tmp_path)
    choose_folder_and_tiny_settings(qtbot, wizard, corpus)
    training = wizard.training_page
    assert training.resume_button.isVisible() and training.resume_button.isEnabled()
    assert "step 4 of 10" in training.status.text()
    assert training.curve.val == [(4, 1.2)]
    command = wizard.train_command(resume=True)
    assert command[:4] == ["train", "--resume", "--out-dir", str(run)]
    assert "--steps" not in command and "--corpus" not in command
    fresh = wizard.train_command(resume=False)
    assert fresh[fresh.index("--steps") + 1] == "2" and fresh[fresh.index("--corpus") + 1] == str(
        corpus
    )
    # The settings page measured speed from that run: 50 img/s at 32 px.
    assert "50 img/s measured at 32 px" in wizard.settings_page.estimate.text()


def test_discard_removes_the_candidate_and_keeps_the_model(
    qtbot: QtBot, library: Library, tmp_path: Path, random_model_dir: Path
) -> None:
    wizard = make_wizard(qtbot, library, tmp_path)
    shutil.copytree(random_model_dir, wizard.candidate_dir)
    before = model_store.active_model_dir()
    adopted: list[str] = []
    wizard.model_adopted.connect(adopted.append)
    wizard.finish_page.initializePage()
    wizard.finish_page.discard_button.click()
    assert wizard.finish_page.isComplete()
    assert not wizard.candidate_dir.exists()
    assert model_store.active_model_dir() == before and adopted == []
    assert not wizard.finish_page.adopt_button.isEnabled()


def test_too_few_images_cannot_go_on(qtbot: QtBot, library: Library, tmp_path: Path) -> None:
    small = write_tiny_corpus(tmp_path / "small", 5)
    wizard = make_wizard(qtbot, library, tmp_path)
    page = wizard.images_page
    click(qtbot, page.folder_button)
    page.folder_edit.setText(str(small))
    qtbot.waitUntil(lambda: "5 images" in page.count_label.text(), timeout=10_000)
    assert "at least 40" in page.count_label.text()
    assert not page.isComplete()
    page.folder_edit.setText(str(tmp_path / "nowhere"))
    assert not page.isComplete() and "existing folder" in page.count_label.text()


def test_train_args_start_from_a_model_only_when_asked() -> None:
    assert "--init-from" not in rw.TrainSettings().train_args()
    args = rw.TrainSettings(init_from="/models/current").train_args()
    assert args[args.index("--init-from") + 1] == "/models/current"


def test_fine_tuning_starts_at_the_current_models_input_size_and_entropy_weight(
    qtbot: QtBot, library: Library, corpus: Path, tmp_path: Path, random_model_dir: Path
) -> None:
    model = tmp_path / "model-96"
    shutil.copytree(random_model_dir, model)
    meta = json.loads((model / METADATA_FILE).read_text())
    recipe = {"config": {"entropy_weight": 2.0}}
    (model / METADATA_FILE).write_text(json.dumps({**meta, "input_size": 96, "training": recipe}))
    model_store.adopt(model)
    wizard = make_wizard(qtbot, library, tmp_path)
    page = wizard.images_page
    click(qtbot, page.folder_button)
    page.folder_edit.setText(str(corpus))
    qtbot.waitUntil(page.isComplete, timeout=10_000)
    next_page(qtbot, wizard)
    settings = wizard.settings_page
    assert settings.start_from_current.isChecked()
    assert settings.input_size.value() == 96
    assert settings.entropy_weight.value() == 2.0
    args = settings.settings().train_args()
    assert args[args.index("--entropy-weight") + 1] == "2"
    settings.input_size.setValue(48)
    click(qtbot, wizard.button(QWizard.WizardButton.BackButton))
    next_page(qtbot, wizard)
    assert settings.input_size.value() == 48  # the user's choice survives Back and Next
