"""``python -m model_training reproduce``: corpus, training and export in one resumable command.

Each stage is skipped when its output is already there, so re-running after an interruption
continues where it stopped (training resumes from its last checkpoint).

Training has four stages. Stage 1 learns from scratch at 64 px with fixed normalisation; stage 2
starts from stage 1's weights and switches to per-image normalisation, which makes brightness and
contrast edits much easier to see through; stage 3 goes on from stage 2 at 96 px, where captions,
borders and crops keep more of the detail that tells near-alike pictures apart; stage 4 goes on
at 96 px for 4,000 steps on new batches with the KoLeo entropy term (SSCD), which spreads
unrelated images apart so that one distance threshold separates copies from the rest. On the
2-core development CPUs (bf16 autocast) that is about 20 + 18 + 42 + 67 minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from model_training.config import TrainConfig
from model_training.corpus import HOLDOUT_PACKAGES, build_corpus, read_manifest
from model_training.export import export_run
from model_training.train import _print_progress, train


def training_stages(corpus: Path, run_dir: Path, device: str = "auto") -> list[TrainConfig]:
    """The bundled model's recipe; the last stage's weights are what gets exported."""
    first = TrainConfig(
        corpus=str(corpus), out_dir=str(run_dir / "stage1"), device=device, normalization="fixed"
    )
    second = dataclasses.replace(
        first,
        out_dir=str(run_dir / "stage2"),
        normalization="per_image",
        init_from=first.out_dir,
        lr=3e-4,
        lr_drop_at=0.5,
    )
    third = dataclasses.replace(
        second,
        out_dir=str(run_dir / "stage3"),
        init_from=second.out_dir,
        input_size=96,
        lr=2e-4,
        steps=2400,
    )
    fourth = dataclasses.replace(
        third,
        out_dir=str(run_dir / "stage4"),
        init_from=third.out_dir,
        entropy_weight=2.0,
        seed=4,  # batches are a function of (seed, step): new ones, not stage 3's again
        steps=4000,
    )
    return [first, second, third, fourth]


def run(args: argparse.Namespace) -> int:
    corpus = Path(args.corpus)
    holdout = Path(args.holdout)
    cache = Path(args.cache)
    if not (corpus / "manifest.jsonl").exists():
        print(f"building the training corpus in {corpus}", flush=True)
        build_corpus(corpus, cache=cache, seed=0)
    if not (holdout / "manifest.jsonl").exists():
        print(f"building the held-out photo set in {holdout}", flush=True)
        build_corpus(
            holdout,
            HOLDOUT_PACKAGES,
            cache=cache,
            seed=0,
            photos_only=True,
            avoid=read_manifest(corpus),
        )
    stages = training_stages(corpus, Path(args.run), args.device)
    for number, config in enumerate(stages, start=1):
        print(f"training stage {number} of {len(stages)} in {config.out_dir}", flush=True)
        result = train(config, progress=_print_progress, resume=True)
        if not result.finished:
            print("training stopped early; run the same command again to resume")
            return 1
    meta = export_run(Path(stages[-1].out_dir), Path(args.out), holdout)
    print(f"exported {meta.model_id} to {args.out}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("reproduce", help="corpus -> train -> evaluate -> export")
    parser.add_argument("--corpus", default="corpus/train")
    parser.add_argument("--holdout", default="corpus/holdout")
    parser.add_argument("--cache", default=".cache/debs")
    parser.add_argument("--run", default="runs/default")
    parser.add_argument("--out", default="resources/model")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)
