"""Anchors in memory and the P x K batches of modified copies that training and validation use.

A batch for step ``s`` is a pure function of ``(config.seed, s)``: resuming at step ``s`` yields
exactly the batches an uninterrupted run would have seen, whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from fpgui.core.model_files import ModelMetadata
from fpgui.core.preprocess import to_model_tensor
from model_training import augment
from model_training.config import TrainConfig
from model_training.corpus import CorpusEntry, read_manifest


@dataclass(frozen=True)
class CorpusSplit:
    """Corpus entries split by ``group``, so an image and its tiles always land together."""

    train: list[CorpusEntry]
    val: list[CorpusEntry]
    test: list[CorpusEntry]


def group_fraction(group: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) for a group; independent of corpus order."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_group(
    entries: Sequence[CorpusEntry], val_fraction: float, test_fraction: float, seed: int = 0
) -> CorpusSplit:
    train: list[CorpusEntry] = []
    val: list[CorpusEntry] = []
    test: list[CorpusEntry] = []
    for entry in entries:
        u = group_fraction(entry.group, seed)
        if u < test_fraction:
            test.append(entry)
        elif u < test_fraction + val_fraction:
            val.append(entry)
        else:
            train.append(entry)
    return CorpusSplit(train, val, test)


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def corpus_entries(corpus_dir: Path) -> list[CorpusEntry]:
    """A corpus's manifest, or, for a plain folder of images (the user's own), one entry each.

    Plain folders get every image as its own group; kind "photo" since users protect photos.
    A manifest's ``file`` may be absolute (the retrain wizard lists library images in place):
    ``corpus_dir / file`` then is that absolute path.
    """
    if (corpus_dir / "manifest.jsonl").exists():
        return read_manifest(corpus_dir)
    entries = []
    for path in sorted(p for p in corpus_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        relative = path.relative_to(corpus_dir).as_posix()
        entries.append(
            CorpusEntry(
                file=relative,
                package="user-folder",
                source_path=relative,
                width=0,
                height=0,
                sha256="",
                licence="the user's own",
                kind="photo",
                group=relative,
                phash="",
            )
        )
    if not entries:
        raise ValueError(f"{corpus_dir} holds no manifest.jsonl and no images")
    return entries


def load_corpus_split(corpus_dir: Path, config: TrainConfig) -> CorpusSplit:
    # The split seed is fixed (not config.seed) so every run holds out the same test images.
    return split_by_group(corpus_entries(corpus_dir), config.val_fraction, config.test_fraction, 0)


def load_anchor(path: Path, long_side: int) -> Image.Image:
    """Decode a corpus JPEG at reduced size; RGB, long side at most ``long_side`` px."""
    with Image.open(path) as image:
        image.draft("RGB", (long_side, long_side))
        rgb = image.convert("RGB")
    rgb.thumbnail((long_side, long_side), Image.Resampling.BILINEAR)
    return rgb


def load_images(paths: Sequence[Path], long_side: int, threads: int = 2) -> list[Image.Image]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda p: load_anchor(p, long_side), paths))


class AnchorBank:
    """Anchor images (RGB, long side <= ``long_side``) with sampling weights."""

    def __init__(self, images: list[Image.Image], weights: npt.NDArray[np.float64]) -> None:
        if len(images) < 2:
            raise ValueError("training needs at least two anchor images")
        self.images = images
        self.probabilities = weights / weights.sum()

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Sequence[int] | npt.NDArray[np.int64]) -> AnchorBank:
        """The anchors at ``indices``, in that order, keeping their relative weights."""
        picked = [int(i) for i in indices]
        return AnchorBank([self.images[i] for i in picked], self.probabilities[picked])

    @classmethod
    def from_entries(
        cls,
        corpus_dir: Path,
        entries: Sequence[CorpusEntry],
        config: TrainConfig,
        procedural: int | None = None,
    ) -> AnchorBank:
        """Corpus anchors plus ``procedural`` dead-leaves images (photo-like, seeded)."""
        images = load_images([corpus_dir / e.file for e in entries], config.anchor_long_side)
        weights = [config.photo_weight if e.kind == "photo" else 1.0 for e in entries]
        count = config.procedural_anchors if procedural is None else procedural
        side = config.anchor_long_side
        for index in range(count):
            rng = random.Random(f"dead-leaves:{config.seed}:{index}")
            width = rng.randint(side * 2 // 3, side)
            images.append(augment.dead_leaves((width, side * 3 // 4), rng))
            weights.append(1.0)
        return cls(images, np.asarray(weights, dtype=np.float64))


def preprocessing_metadata(config: TrainConfig) -> ModelMetadata:
    """The metadata training preprocesses with; the exported model carries the same values."""
    return ModelMetadata(
        name="fpgui-resnet18",
        version="training",
        input_size=config.input_size,
        normalization=config.normalization,
        embedding_dim=config.embedding_dim,
        l2_normalize=config.l2_normalize,
    )


def step_rng(seed: int, step: int, stream: str = "train") -> random.Random:
    return random.Random(f"{stream}:{seed}:{step}")


def make_batch(
    bank: AnchorBank, config: TrainConfig, step: int, stream: str = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """One P x K batch: ``(P*K, 1, S, S)`` float32 images and ``(P*K,)`` int64 labels.

    Copy 0 of each anchor is the original (as a library holds it); copies 1..K-1 are random
    modifications, a ``quarter_turns`` share of them also turned a quarter, half or three
    quarters. A ``composed_fraction`` of the anchors are collages of corpus images.
    """
    rng = step_rng(config.seed, step, stream)
    np_rng = np.random.default_rng(rng.getrandbits(63))
    meta = preprocessing_metadata(config)
    count = min(config.anchors_per_batch, len(bank))
    picks = np_rng.choice(len(bank), size=count, replace=False, p=bank.probabilities)
    tensors: list[torch.Tensor] = []
    labels: list[int] = []
    for label, index in enumerate(picks.tolist()):
        anchor = bank.images[index]
        if rng.random() < config.composed_fraction:
            parts = [anchor] + [
                bank.images[rng.randrange(len(bank))] for _ in range(rng.randint(1, 3))
            ]
            anchor = augment.compose_anchor(parts, rng)
        tensors.append(to_model_tensor(anchor, meta))
        labels.append(label)
        for _ in range(config.copies_per_anchor - 1):
            other = bank.images[rng.randrange(len(bank))]
            copy, _name = augment.random_modification(anchor, rng, other)
            # No draw when the option is off: runs without it keep their batches (and resume).
            if config.quarter_turns and rng.random() < config.quarter_turns:
                copy = augment.quarter_turn(copy, rng)
            tensors.append(to_model_tensor(copy, meta))
            labels.append(label)
    return torch.stack(tensors), torch.tensor(labels, dtype=torch.int64)


class BatchStream(IterableDataset[tuple[int, torch.Tensor, torch.Tensor]]):
    """Yields ``(step, images, labels)`` for steps ``start..end-1``; workers take every n-th step.

    The DataLoader visits workers round-robin, so steps arrive in order.
    """

    def __init__(self, bank: AnchorBank, config: TrainConfig, start: int, end: int) -> None:
        self.bank = bank
        self.config = config
        self.start = start
        self.end = end

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        offset, stride = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in range(self.start + offset, self.end, stride):
            images, labels = make_batch(self.bank, self.config, step)
            yield step, images, labels
