"""Every hyper-parameter of a training run in one dataclass, saved beside each checkpoint."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

LossName = Literal["triplet", "weighted", "lossless", "batch_hard", "semi_hard", "infonce"]
LOSS_NAMES: tuple[str, ...] = (
    "triplet",
    "weighted",
    "lossless",
    "batch_hard",
    "semi_hard",
    "infonce",
)

# What a key meant in checkpoints written before it was added.
LEGACY_VALUES: dict[str, Any] = {
    "normalization": "fixed",
    "init_from": "",
    "precision": "fp32",
    "entropy_weight": 0.0,
    "quarter_turns": 0.0,
}


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Defaults are the bundled model's run on a 2-core CPU (about two hours)."""

    corpus: str = "corpus/train"
    out_dir: str = "runs/default"
    seed: int = 0
    input_size: int = 64
    normalization: str = "per_image"  # "fixed" (mean/std 0.5) or "per_image" (see preprocess)
    init_from: str = ""  # a run folder or model bundle whose weights start this run
    embedding_dim: int = 128
    l2_normalize: bool = True
    loss: str = "infonce"
    margin: float = 0.2  # alpha of the triplet losses
    theta: float = 0.4  # weight of d(a, n) in the weighted variant (theta < 1)
    temperature: float = 0.1  # infonce
    entropy_weight: float = 0.0  # weight of the KoLeo entropy term added to the loss (SSCD)
    anchors_per_batch: int = 48  # P of the P x K batch
    copies_per_anchor: int = 3  # K: modified copies of each anchor in a batch
    steps: int = 1800
    lr: float = 5e-4
    lr_late: float = 1e-4  # the published schedule: Adam 5e-4, then 1e-4
    lr_drop_at: float = 0.7  # fraction of steps after which lr_late applies
    weight_decay: float = 0.0
    anchor_long_side: int = 192  # corpus images are kept in memory at this size
    photo_weight: float = 2.0  # photos are sampled this many times as often as art
    procedural_anchors: int = 1500  # dead-leaves images added as anchors
    composed_fraction: float = 0.1  # share of anchors built as collages of corpus images
    quarter_turns: float = 0.0  # share of modified copies also turned by 90, 180 or 270 degrees
    val_fraction: float = 0.05  # of corpus groups, for validation and threshold calibration
    test_fraction: float = 0.05  # of corpus groups, never trained on, for evaluation
    val_every: int = 200  # steps
    checkpoint_minutes: float = 4.0
    device: str = "auto"
    precision: str = "auto"  # "fp32", "bf16" (autocast) or "auto": bf16 on CPUs with bf16 units
    workers: int = 1  # data-loader processes making the modified copies
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    max_minutes: float = 0.0  # stop (resumably) after this much wall time; 0 = no limit

    @property
    def batch_size(self) -> int:
        return self.anchors_per_batch * self.copies_per_anchor

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        config = cls(**raw)
        config.validate()
        return config

    @classmethod
    def from_saved(cls, raw: dict[str, Any]) -> TrainConfig:
        """A config stored in a checkpoint; ones saved before a key existed get its old value."""
        return cls.from_dict({**LEGACY_VALUES, **raw})

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def validate(self) -> None:
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"loss must be one of {LOSS_NAMES}, not {self.loss!r}")
        if not 0 < self.theta <= 1:
            raise ValueError("theta must be in (0, 1]")
        if self.copies_per_anchor < 2:
            raise ValueError("copies_per_anchor must be at least 2 (an anchor needs a positive)")
        if self.input_size < 32:
            raise ValueError("input_size must be at least 32 px")
        if self.normalization not in ("fixed", "per_image"):
            raise ValueError("normalization must be 'fixed' or 'per_image'")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError("precision must be 'auto', 'fp32' or 'bf16'")
        if not 0 <= self.quarter_turns <= 1:
            raise ValueError("quarter_turns must be in [0, 1]")
        if self.entropy_weight < 0:
            raise ValueError("entropy_weight must not be negative")
        if self.steps < 1:
            raise ValueError("steps must be positive")
