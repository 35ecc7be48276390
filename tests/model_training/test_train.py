from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model_training import losses
from model_training.config import TrainConfig
from model_training.corpus import read_manifest
from model_training.data import AnchorBank, make_batch, split_by_group
from model_training.train import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    ValidationSet,
    compute_loss,
    explicit_triplets,
    learning_rate,
    load_checkpoint,
    recall_at_precision,
    train,
)


def tiny_config(corpus: Path, out: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        corpus=str(corpus),
        out_dir=str(out),
        input_size=32,
        anchors_per_batch=4,
        copies_per_anchor=2,
        steps=4,
        val_every=2,
        anchor_long_side=64,
        procedural_anchors=4,
        val_fraction=0.2,
        test_fraction=0.2,
        workers=0,
        device="cpu",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_split_keeps_groups_together_and_is_stable(tiny_corpus: Path) -> None:
    entries = read_manifest(tiny_corpus)
    first = split_by_group(entries, 0.2, 0.2)
    second = split_by_group(list(reversed(entries)), 0.2, 0.2)
    assert {e.file for e in first.test} == {e.file for e in second.test}
    groups = [{e.group for e in part} for part in (first.train, first.val, first.test)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2])
    assert len(first.train) + len(first.val) + len(first.test) == len(entries)


def test_batch_is_a_pure_function_of_seed_and_step(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_corpus, tmp_path)
    bank = AnchorBank.from_entries(tiny_corpus, read_manifest(tiny_corpus), config)
    images, labels = make_batch(bank, config, step=7)
    again, labels_again = make_batch(bank, config, step=7)
    other, _ = make_batch(bank, config, step=8)
    assert images.shape == (8, 1, 32, 32)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(images, again) and torch.equal(labels, labels_again)
    assert not torch.equal(images, other)


def test_quarter_turns_turn_only_the_modified_copies(tiny_corpus: Path, tmp_path: Path) -> None:
    plain = tiny_config(tiny_corpus, tmp_path, copies_per_anchor=3, composed_fraction=0.0)
    turned = dataclasses.replace(plain, quarter_turns=1.0)
    bank = AnchorBank.from_entries(tiny_corpus, read_manifest(tiny_corpus), plain)
    before, _ = make_batch(bank, plain, step=3)
    after, _ = make_batch(bank, turned, step=3)
    originals = slice(0, None, 3)
    assert torch.equal(before[originals], after[originals])
    assert not torch.equal(before, after)
    with pytest.raises(ValueError, match="quarter_turns"):
        dataclasses.replace(plain, quarter_turns=1.5).validate()


def test_validation_uses_every_anchor_once(tmp_path: Path) -> None:
    # 150 distinct anchors: enough for several validation batches of 64.
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for _ in range(150)
    ]
    bank = AnchorBank(images, np.ones(len(images)))
    validation = ValidationSet(bank, tiny_config(tmp_path, tmp_path))
    first = torch.ones_like(validation.labels, dtype=torch.bool)
    first[1:] = validation.labels[1:] != validation.labels[:-1]
    originals = validation.images[first]
    assert len(originals) == 128
    assert len({o.numpy().tobytes() for o in originals}) == 128
    # Another run seed validates on the same batches, so histories of the two compare.
    other_seed = ValidationSet(bank, tiny_config(tmp_path, tmp_path, seed=7))
    assert torch.equal(other_seed.images, validation.images)


def test_explicit_triplets_pair_original_with_copies_and_other_negatives() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    a, p, n = explicit_triplets(labels, torch.Generator().manual_seed(0))
    assert a.tolist() == [0, 0, 3, 3]
    assert p.tolist() == [1, 2, 4, 5]
    assert all(labels[x] != labels[y] for x, y in zip(a.tolist(), n.tolist(), strict=True))


@pytest.mark.parametrize(
    "loss", ["triplet", "weighted", "lossless", "batch_hard", "semi_hard", "infonce"]
)
def test_every_configured_loss_is_finite_and_has_gradients(loss: str, tmp_path: Path) -> None:
    config = dataclasses.replace(TrainConfig(), loss=loss)
    embeddings = torch.nn.functional.normalize(torch.randn(12, 8), dim=1).requires_grad_()
    labels = torch.arange(4).repeat_interleave(3)
    value = compute_loss(config, embeddings, labels, step=0)
    value.backward()  # type: ignore[no-untyped-call]
    assert torch.isfinite(value)
    assert embeddings.grad is not None and torch.isfinite(embeddings.grad).all()


def test_entropy_weight_adds_the_koleo_term_to_the_loss() -> None:
    embeddings = torch.nn.functional.normalize(torch.randn(12, 8), dim=1)
    labels = torch.arange(4).repeat_interleave(3)
    plain = dataclasses.replace(TrainConfig(), loss="infonce")
    weighted = dataclasses.replace(plain, entropy_weight=2.5)
    expected = compute_loss(plain, embeddings, labels, 0) + 2.5 * losses.entropy_regularizer(
        embeddings, labels
    )
    assert compute_loss(weighted, embeddings, labels, 0).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="entropy_weight"):
        dataclasses.replace(plain, entropy_weight=-1.0).validate()


def test_recall_at_precision_is_the_strict_verdicts_recall() -> None:
    positive = torch.tensor([0.1, 0.2, 0.3, 0.9])
    right = torch.tensor([True, True, False, True])  # copy 3's nearest is another image
    negative = torch.tensor([0.8, 0.85, 0.95, 0.5])
    # By distance: 0.1 hit, 0.2 hit, 0.3 miss -> a threshold above 0.2 loses precision.
    assert recall_at_precision(positive, right, negative, target=0.99) == pytest.approx(0.5)
    assert recall_at_precision(positive, right, negative, target=0.6) == pytest.approx(0.5)
    # Calling up to 0.9 gives 3 hits in 7 calls (precision 0.43).
    assert recall_at_precision(positive, right, negative, target=0.4) == pytest.approx(0.75)
    none = torch.zeros(0)
    assert recall_at_precision(none, none.bool(), none) == 0.0


def test_weighted_loss_matches_published_formula() -> None:
    a, p, n = torch.eye(3)[:1], torch.eye(3)[1:2], torch.eye(3)[2:3]
    # d(a,p) = d(a,n) = sqrt(2): sqrt(2) - 0.4 * sqrt(2) + 0.2
    expected = 2**0.5 * 0.6 + 0.2
    assert losses.weighted_triplet_loss(a, p, n, 0.2, 0.4).item() == pytest.approx(expected)


def test_learning_rate_follows_published_schedule() -> None:
    config = TrainConfig(steps=1000, lr=5e-4, lr_late=1e-4, lr_drop_at=0.7)
    assert learning_rate(config, 500) == pytest.approx(5e-4)
    assert learning_rate(config, 800) == pytest.approx(1e-4)
    assert learning_rate(config, 0) < 5e-4  # warm-up


def test_train_writes_checkpoint_history_and_resumes_exactly(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    straight = tiny_config(tiny_corpus, tmp_path / "straight")
    result = train(straight)
    assert result.finished and result.steps_done == 4
    history = [
        json.loads(x) for x in (tmp_path / "straight" / HISTORY_FILE).read_text().split("\n") if x
    ]
    assert [row["step"] for row in history] == [2, 4]
    assert 0.0 <= history[-1]["val_top1"] <= 1.0

    interrupted = tiny_config(tiny_corpus, tmp_path / "resumed")
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    partial = train(interrupted, should_stop=stop_after_two)
    assert not partial.finished and partial.steps_done == 2
    assert load_checkpoint(tmp_path / "resumed" / CHECKPOINT_FILE)["step"] == 2
    resumed = train(interrupted, resume=True)
    assert resumed.finished and resumed.steps_done == 4

    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT_FILE)["model"]
    b = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_FILE)["model"]
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key


def test_resume_refuses_a_changed_config(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_corpus, tmp_path / "run", steps=2)
    train(config)
    with pytest.raises(ValueError, match="margin"):
        train(dataclasses.replace(config, margin=0.5), resume=True)


def test_a_plain_folder_of_images_is_a_corpus(tmp_path: Path) -> None:
    from model_training.data import corpus_entries
    from tests.conftest import make_photo

    (tmp_path / "sub").mkdir()
    for i in range(3):
        make_photo(i, (80, 60)).save(tmp_path / "sub" / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    entries = corpus_entries(tmp_path)
    assert [e.file for e in entries] == ["sub/0.png", "sub/1.png", "sub/2.png"]
    assert len({e.group for e in entries}) == 3


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    from model_training.data import corpus_entries

    with pytest.raises(ValueError, match="no manifest.jsonl and no images"):
        corpus_entries(tmp_path)


def test_a_run_can_start_from_another_runs_weights(tiny_corpus: Path, tmp_path: Path) -> None:
    first = tiny_config(tiny_corpus, tmp_path / "first", steps=2, normalization="fixed")
    train(first)
    start = load_checkpoint(tmp_path / "first" / CHECKPOINT_FILE)["model"]
    # lr 0 keeps the weights where they started: they must be the first run's, not fresh ones.
    second = tiny_config(
        tiny_corpus, tmp_path / "second", steps=1, init_from=first.out_dir, lr=0.0, lr_late=0.0
    )
    train(second)
    after = load_checkpoint(tmp_path / "second" / CHECKPOINT_FILE)["model"]
    assert torch.equal(start["trunk.conv1.weight"], after["trunk.conv1.weight"])
    assert torch.equal(start["head.weight"], after["head.weight"])


def test_a_run_can_start_from_a_model_bundle(
    tiny_corpus: Path, tmp_path: Path, random_model_dir: Path
) -> None:
    from fpgui.core.model_files import load_model_bundle

    bundle = random_model_dir
    network, _meta = load_model_bundle(bundle)
    config = tiny_config(
        tiny_corpus, tmp_path / "run", steps=1, init_from=str(bundle), lr=0.0, lr_late=0.0
    )
    train(config)
    after = load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)["model"]
    # Batch-norm running statistics move in any training step; the learned weights must not.
    learned = [k for k in network.state_dict() if "running" not in k and "num_batches" not in k]
    assert learned
    for key in learned:
        assert torch.equal(network.state_dict()[key], after[key]), key


def test_init_from_a_folder_without_weights_is_refused(tiny_corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    config = tiny_config(tiny_corpus, tmp_path / "run", init_from=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="neither a training checkpoint nor a model"):
        train(config)


def test_checkpoints_saved_before_normalization_existed_mean_fixed() -> None:
    saved = TrainConfig().to_dict()
    del saved["normalization"], saved["init_from"]
    assert TrainConfig.from_saved(saved).normalization == "fixed"
    assert TrainConfig().normalization == "per_image"
    with pytest.raises(ValueError, match="normalization"):
        TrainConfig(normalization="zscore").validate()


def test_bf16_autocast_follows_the_precision_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import model_training.train as train_module

    cpu = torch.device("cpu")
    monkeypatch.setattr(train_module, "cpu_has_fast_bf16", lambda: True)
    assert train_module.uses_bf16(TrainConfig(), cpu)
    assert not train_module.uses_bf16(TrainConfig(precision="fp32"), cpu)
    assert not train_module.uses_bf16(TrainConfig(), torch.device("meta"))
    monkeypatch.setattr(train_module, "cpu_has_fast_bf16", lambda: False)
    assert not train_module.uses_bf16(TrainConfig(), cpu)
    assert train_module.uses_bf16(TrainConfig(precision="bf16"), cpu)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8").validate()
    saved = TrainConfig().to_dict()
    del saved["precision"]
    assert TrainConfig.from_saved(saved).precision == "fp32"


def test_a_bf16_run_trains_and_resumes_in_fp32(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_corpus, tmp_path / "run", precision="bf16", steps=2)
    first = train(config)
    assert first.finished
    assert all(torch.isfinite(torch.tensor(row["val_loss"])) for row in first.history)
    longer = dataclasses.replace(config, precision="fp32")
    assert train(longer).steps_done == 2  # precision may change on resume; nothing retrains
