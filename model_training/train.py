"""Training the fingerprint network: ``python -m model_training train``.

The run directory holds ``config.json``, ``checkpoint.pt`` (model, optimiser, step, config; written
atomically every few minutes) and ``history.jsonl`` (one line per validation). ``--resume``
continues from the checkpoint exactly: batches are a pure function of (seed, step).
The GUI's retrain wizard calls :func:`train` with a progress callback and a stop flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from fpgui.core.architecture import FingerprintNet
from fpgui.core.atomic import atomic_path
from fpgui.core.embedder import choose_device, cpu_has_fast_bf16
from fpgui.core.model_files import METADATA_FILE, load_model_bundle
from model_training import losses
from model_training.config import LOSS_NAMES, TrainConfig
from model_training.data import AnchorBank, BatchStream, load_corpus_split, make_batch

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.jsonl"
CONFIG_FILE = "config.json"
VAL_ANCHORS = 256
VAL_SEED = 0  # validation batches are the same whatever the run's seed
# Fields that may differ between a run and its resumption without changing what is learnt.
RESUMABLE_CHANGES = frozenset(
    {"device", "precision", "workers", "threads", "max_minutes", "checkpoint_minutes", "out_dir"}
)


@dataclass(frozen=True)
class TrainProgress:
    """Reported after every step; ``val`` is set on validation steps."""

    step: int  # steps done
    steps: int
    loss: float
    lr: float
    images_per_second: float
    eta_seconds: float
    val: dict[str, float] | None = None


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps_done: int
    finished: bool  # False when stopped early (resumable)
    history: list[dict[str, float]]


def seed_everything(seed: int) -> None:
    """The one seed call of a run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_network(config: TrainConfig) -> FingerprintNet:
    return FingerprintNet(config.embedding_dim, in_channels=1, l2_normalize=config.l2_normalize)


def initial_weights(source: Path) -> dict[str, torch.Tensor]:
    """The weights in a run folder's checkpoint or in a model bundle (``model.json`` beside it)."""
    if (source / CHECKPOINT_FILE).is_file():
        state: dict[str, torch.Tensor] = load_checkpoint(source / CHECKPOINT_FILE)["model"]
        return state
    if (source / METADATA_FILE).is_file():
        network, _meta = load_model_bundle(source)
        return network.state_dict()
    raise ValueError(f"init_from: {source} holds neither a training checkpoint nor a model")


def uses_bf16(config: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast for the forward pass: asked for, or "auto" on a CPU with bf16 units."""
    if device.type != "cpu" or config.precision == "fp32":
        return False
    return config.precision == "bf16" or cpu_has_fast_bf16()


def learning_rate(config: TrainConfig, step: int) -> float:
    """Adam at ``lr`` then ``lr_late`` (the published schedule), with a short warm-up."""
    warmup = max(1, min(100, config.steps // 20))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    return config.lr if step < config.lr_drop_at * config.steps else config.lr_late


def explicit_triplets(
    labels: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index triplets from a P x K batch: every (original, copy) pair with a random negative.

    ``labels``: (P*K,) with the original first in each label's run. Returns three (T,) int64.
    """
    anchors: list[int] = []
    positives: list[int] = []
    negatives: list[int] = []
    label_list = labels.tolist()
    first_of: dict[int, int] = {}
    for index, label in enumerate(label_list):
        first_of.setdefault(label, index)
    for index, label in enumerate(label_list):
        if index == first_of[label]:
            continue
        choices = torch.nonzero(labels != label).flatten()
        if len(choices) == 0:
            continue
        pick = int(torch.randint(len(choices), (1,), generator=generator).item())
        anchors.append(first_of[label])
        positives.append(index)
        negatives.append(int(choices[pick].item()))
    return (
        torch.tensor(anchors, dtype=torch.int64),
        torch.tensor(positives, dtype=torch.int64),
        torch.tensor(negatives, dtype=torch.int64),
    )


def compute_loss(
    config: TrainConfig, embeddings: torch.Tensor, labels: torch.Tensor, step: int
) -> torch.Tensor:
    """The configured loss on ``(N, D)`` embeddings of a P x K batch with ``(N,)`` labels, plus
    ``entropy_weight`` times the KoLeo entropy term."""
    loss = metric_loss(config, embeddings, labels, step)
    if config.entropy_weight > 0:
        loss = loss + config.entropy_weight * losses.entropy_regularizer(embeddings, labels)
    return loss


def metric_loss(
    config: TrainConfig, embeddings: torch.Tensor, labels: torch.Tensor, step: int
) -> torch.Tensor:
    """The configured metric-learning loss alone (no regulariser)."""
    if config.loss == "batch_hard":
        return losses.batch_hard_triplet_loss(embeddings, labels, config.margin)
    if config.loss == "semi_hard":
        return losses.batch_semi_hard_triplet_loss(embeddings, labels, config.margin)
    if config.loss == "infonce":
        return losses.contrastive_infonce_loss(embeddings, labels, config.temperature)
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    a, p, n = explicit_triplets(labels, generator)
    anchor, positive, negative = embeddings[a], embeddings[p], embeddings[n]
    if config.loss == "triplet":
        return losses.triplet_loss(anchor, positive, negative, config.margin)
    if config.loss == "weighted":
        return losses.weighted_triplet_loss(anchor, positive, negative, config.margin, config.theta)
    return losses.lossless_triplet_loss(anchor, positive, negative)


class ValidationSet:
    """Fixed validation batches (originals plus two copies each) made once from ``val`` anchors.

    Every anchor appears once: the batches are made from disjoint slices of one seeded draw, so
    no copy has a second, identically drawn "other" original that would pose as a near negative.
    The draw and the copies use ``VAL_SEED``, not the run's seed, so runs with different seeds
    are validated on the same batches and their histories compare.
    """

    def __init__(self, bank: AnchorBank, config: TrainConfig) -> None:
        per_batch = min(64, len(bank))
        val_config = dataclasses.replace(
            config,
            seed=VAL_SEED,
            anchors_per_batch=per_batch,
            copies_per_anchor=3,
            composed_fraction=0.0,
        )
        batches = max(1, min(VAL_ANCHORS, len(bank)) // per_batch)
        draw = np.random.default_rng(VAL_SEED).choice(
            len(bank), size=batches * per_batch, replace=False, p=bank.probabilities
        )
        made = [
            make_batch(bank.subset(draw[i * per_batch : (i + 1) * per_batch]), val_config, i, "val")
            for i in range(batches)
        ]
        self.images = torch.cat([m[0] for m in made])
        self.labels = torch.cat([m[1] + i * 10_000 for i, m in enumerate(made)])
        self.config = config

    @torch.inference_mode()
    def evaluate(self, network: FingerprintNet, device: torch.device) -> dict[str, float]:
        """Validation loss (the metric loss alone, so runs with and without the entropy term
        compare), top-1 retrieval of copies among originals, and distance statistics."""
        network.eval()
        embeddings = torch.cat(
            [network(chunk.to(device)).float().cpu() for chunk in torch.split(self.images, 128)]
        )
        loss = metric_loss(self.config, embeddings, self.labels, step=0).item()
        first = torch.ones_like(self.labels, dtype=torch.bool)
        first[1:] = self.labels[1:] != self.labels[:-1]
        originals, copies = embeddings[first], embeddings[~first]
        original_labels, copy_labels = self.labels[first], self.labels[~first]
        distances = torch.cdist(copies, originals)
        nearest = distances.argmin(dim=1)
        top1 = (original_labels[nearest] == copy_labels).float().mean().item()
        same = original_labels[None, :] == copy_labels[:, None]
        positive = distances[same]
        negative_nearest = distances.masked_fill(same, math.inf).min(dim=1).values
        own = distances.masked_fill(~same, math.inf).min(dim=1).values
        right = original_labels[nearest] == copy_labels
        network.train()
        return {
            "val_loss": loss,
            "val_top1": top1,
            "val_pos_mean": positive.mean().item(),
            "val_pos_p95": positive.quantile(0.95).item(),
            "val_neg_nearest_p05": negative_nearest.quantile(0.05).item(),
            "val_recall_at_p99": recall_at_precision(own, right, negative_nearest),
        }


def recall_at_precision(
    positive: torch.Tensor, right: torch.Tensor, negative: torch.Tensor, target: float = 0.99
) -> float:
    """Recall of a single distance threshold that keeps ``target`` precision.

    ``positive`` (C,): each copy's distance to its original, a hit only where ``right`` (its
    original is the nearest); ``negative`` (C,): each copy's nearest *other* original, i.e. the
    distance it would have as a query whose original is not in the library. This is the strict
    verdict's recall on validation data, the figure the copy verdict is calibrated by.
    """
    scores = torch.cat([positive, negative])
    hits = torch.cat([right, torch.zeros_like(right)]).to(torch.float64)
    order = torch.argsort(scores, stable=True)
    hits = hits[order]
    called = torch.arange(1, len(hits) + 1, dtype=torch.float64)
    precision = hits.cumsum(0) / called
    passing = torch.nonzero(precision >= target).flatten()
    if len(passing) == 0 or len(positive) == 0:
        return 0.0
    return float(hits[: int(passing.max()) + 1].sum().item() / len(positive))


def save_checkpoint(
    run_dir: Path,
    network: FingerprintNet,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: TrainConfig,
) -> None:
    payload = {
        "model": network.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": config.to_dict(),
    }
    with atomic_path(run_dir / CHECKPOINT_FILE) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint


def _check_resumable(saved: TrainConfig, config: TrainConfig) -> None:
    changed = [
        f.name
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(config, f.name)
    ]
    if changed:
        raise ValueError(
            f"cannot resume: the checkpoint was trained with other {', '.join(changed)}; "
            "use a new --out directory or the saved config"
        )


def _read_history(run_dir: Path, up_to_step: int) -> list[dict[str, float]]:
    path = run_dir / HISTORY_FILE
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["step"] <= up_to_step]


def _write_history(run_dir: Path, history: list[dict[str, float]]) -> None:
    with atomic_path(run_dir / HISTORY_FILE) as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in history))


def train(
    config: TrainConfig,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train (or resume) the run in ``config.out_dir``; returns when done, stopped or timed out."""
    config.validate()
    run_dir = Path(config.out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = choose_device(None if config.device == "auto" else config.device)

    network = build_network(config).to(device)
    optimizer = torch.optim.Adam(
        network.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    start_step = 0
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if resume and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path)
        _check_resumable(TrainConfig.from_saved(checkpoint["config"]), config)
        network.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start_step = int(checkpoint["step"])
    else:
        if checkpoint_path.exists():
            checkpoint_path.unlink()
        if config.init_from:
            network.load_state_dict(initial_weights(Path(config.init_from)))
    (run_dir / CONFIG_FILE).write_text(config.to_json())
    history = _read_history(run_dir, start_step)
    if start_step >= config.steps:
        return TrainResult(run_dir, start_step, True, history)

    split = load_corpus_split(Path(config.corpus), config)
    bank = AnchorBank.from_entries(Path(config.corpus), split.train, config)
    val_bank = AnchorBank.from_entries(Path(config.corpus), split.val, config, procedural=0)
    validation = ValidationSet(val_bank, config)

    stream = BatchStream(bank, config, start_step, config.steps)
    loader: DataLoader[Any] = DataLoader(
        stream,
        batch_size=None,
        num_workers=config.workers,
        prefetch_factor=2 if config.workers else None,
        persistent_workers=False,
    )
    network.train()
    channels_last = device.type == "cpu"
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    bf16 = uses_bf16(config, device)
    started = time.monotonic()
    last_checkpoint = started
    step = start_step
    window_losses: list[float] = []
    finished = False
    for step_index, images, labels in loader:
        lr = learning_rate(config, step_index)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = images.to(device)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            embeddings = network(batch)
        loss = compute_loss(config, embeddings, labels.to(device), step_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        step = step_index + 1
        window_losses.append(float(loss.item()))

        elapsed = time.monotonic() - started
        done_here = step - start_step
        rate = done_here * config.batch_size / max(elapsed, 1e-9)
        eta = (config.steps - step) * elapsed / max(done_here, 1)
        val: dict[str, float] | None = None
        if step % config.val_every == 0 or step == config.steps:
            val = validation.evaluate(network, device)
            row = {
                "step": step,
                "train_loss": float(np.mean(window_losses)),
                "lr": lr,
                "elapsed_s": elapsed,
                "images_per_s": rate,
                **val,
            }
            history.append(row)
            _write_history(run_dir, history)
            window_losses = []
        if progress is not None:
            progress(TrainProgress(step, config.steps, float(loss.item()), lr, rate, eta, val))
        now = time.monotonic()
        out_of_time = config.max_minutes > 0 and now - started > config.max_minutes * 60
        stop = (should_stop is not None and should_stop()) or out_of_time
        if stop or step == config.steps or now - last_checkpoint > config.checkpoint_minutes * 60:
            save_checkpoint(run_dir, network, optimizer, step, config)
            last_checkpoint = now
        if step == config.steps:
            finished = True
        if stop:
            break
    return TrainResult(run_dir, step, finished, history)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then ``--config FILE``, then any field given on the command line."""
    base = TrainConfig.from_file(Path(args.config)).to_dict() if args.config else {}
    if args.resume and not args.config and args.out_dir:
        saved = Path(args.out_dir) / CONFIG_FILE
        if saved.exists():
            base = TrainConfig.from_saved(json.loads(saved.read_text(encoding="utf-8"))).to_dict()
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            base[field.name] = value
    return TrainConfig.from_dict(base)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--field-name`` option per TrainConfig field."""
    for field in dataclasses.fields(TrainConfig):
        default = field.default
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(
                flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None
            )
        elif field.name == "loss":
            parser.add_argument(flag, choices=LOSS_NAMES, default=None)
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"default {default}")


def _print_progress(report: TrainProgress) -> None:
    if report.val is not None or report.step % 25 == 0:
        extra = (
            ""
            if report.val is None
            else "  " + "  ".join(f"{k}={v:.4f}" for k, v in report.val.items())
        )
        print(
            f"step {report.step}/{report.steps} loss={report.loss:.4f} lr={report.lr:.1e} "
            f"{report.images_per_second:.1f} img/s eta {report.eta_seconds / 60:.1f} min{extra}",
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result = train(config, progress=_print_progress, resume=args.resume)
    state = "finished" if result.finished else "stopped (resume with --resume)"
    print(f"{state} at step {result.steps_done}; run directory {result.run_dir}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train the fingerprint network")
    parser.add_argument("--config", help="JSON file of TrainConfig fields")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    add_config_arguments(parser)
    parser.set_defaults(func=run)
