"""``python -m model_training reproduce``: corpus, training and export in one resumable command.

Each stage is skipped when its output is already there, so re-running after an interruption
continues where it stopped (training resumes from its last checkpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from model_training.config import TrainConfig
from model_training.corpus import HOLDOUT_PACKAGES, build_corpus, read_manifest
from model_training.export import export_run
from model_training.train import _print_progress, train


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
    config = TrainConfig(corpus=str(corpus), out_dir=args.run, device=args.device)
    result = train(config, progress=_print_progress, resume=True)
    if not result.finished:
        print("training stopped early; run the same command again to resume")
        return 1
    meta = export_run(Path(args.run), Path(args.out), holdout)
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
