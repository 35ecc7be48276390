from __future__ import annotations

from pathlib import Path

import numpy as np

from fpgui.core.embedder import Embedder
from fpgui.core.model_files import read_metadata
from model_training.export import export_run
from model_training.train import train
from tests.conftest import make_photo
from tests.model_training.test_train import tiny_config


def test_tiny_train_evaluate_export_round_trip(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_corpus, tmp_path / "run", steps=3, val_every=3)
    train(config)
    out = tmp_path / "model"
    meta = export_run(tmp_path / "run", out, holdout=None, runs=1, queries=6, per_mod=1)
    assert (out / "weights.pt").stat().st_size < 25 * 2**20
    saved = read_metadata(out)
    assert saved.input_size == 32 and saved.embedding_dim == 128
    assert saved.threshold == meta.threshold and saved.threshold > 0
    assert saved.training["steps_done"] == 3
    assert set(saved.metrics["model"]["corpus-test"]) >= {"precision", "recall", "f1", "top5"}
    assert (out / "evaluation.json").exists()
    # The crowding correction: background fingerprints of training-split images, bundled.
    assert saved.crowding_file == "background.npy" and saved.crowding_k == 3
    assert saved.crowding_reference > 0 and saved.crowding_radius == saved.crowding_radius >= 0

    embedder = Embedder(out, device="cpu")
    assert embedder.crowding is not None
    assert embedder.crowding.background.shape[1] == 128
    assert 3 <= len(embedder.crowding.background) <= 40
    image = make_photo(5)
    e = embedder.embed_images([image, image])
    assert e.shape == (2, 128) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-3)


def test_the_bundled_recipe_fine_tunes_stage_one_with_per_image_normalisation() -> None:
    from model_training.reproduce import training_stages

    first, second, third, fourth = training_stages(Path("corpus/train"), Path("runs/x"))
    assert (first.normalization, first.init_from) == ("fixed", "")
    assert second.normalization == third.normalization == "per_image"
    assert second.init_from == first.out_dir == str(Path("runs/x/stage1"))
    assert third.init_from == second.out_dir == str(Path("runs/x/stage2"))
    assert third.out_dir == str(Path("runs/x/stage3"))
    assert (first.input_size, second.input_size, third.input_size) == (64, 64, 96)
    assert second.lr_late == first.lr_late == third.lr_late == 1e-4
    # Stage 4: longer at 96 px with the entropy term, on batches stage 3 never saw.
    assert fourth.init_from == third.out_dir and fourth.input_size == 96
    assert (third.entropy_weight, fourth.entropy_weight) == (0.0, 2.0)
    assert fourth.seed != third.seed and fourth.steps > third.steps
