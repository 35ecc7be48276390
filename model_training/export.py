"""Export a trained run as the app's model bundle: ``python -m model_training export``.

The checkpoint's network is evaluated (the verdict's distance and ratio thresholds calibrated on
validation queries: strict at 99% precision, balanced at the best F1; figures against pHash, dHash
and PDQ on the same queries) and written with fp16
weights and metadata that the app reads without importing this package.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from fpgui import __version__
from fpgui.core.architecture import FingerprintNet
from fpgui.core.crowding import Crowding
from fpgui.core.embedder import Embedder
from fpgui.core.model_files import ModelMetadata, save_model_bundle
from model_training.background import crowding_for
from model_training.config import TrainConfig
from model_training.data import corpus_entries, preprocessing_metadata
from model_training.evaluate import (
    Fingerprinter,
    HeldOut,
    ModelFingerprinter,
    build_eval_data,
    evaluate_all,
    format_table,
    hash_fingerprinters,
    held_out,
    holdout_photos,
)
from model_training.train import CHECKPOINT_FILE, build_network, load_checkpoint


def network_from_run(run_dir: Path) -> tuple[FingerprintNet, TrainConfig, int]:
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_FILE)
    config = TrainConfig.from_saved(checkpoint["config"])
    network = build_network(config)
    network.load_state_dict(checkpoint["model"])
    return network.eval(), config, int(checkpoint["step"])


def code_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"fpgui {__version__} ({commit})"


def manifest_sha256(corpus: Path) -> str:
    path = corpus / "manifest.jsonl"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def evaluate_network(
    network: FingerprintNet,
    meta: ModelMetadata,
    corpus: Path,
    holdout: Path | None,
    config: TrainConfig,
    seed: int,
    runs: int,
    queries: int,
    per_mod: int,
    with_hashes: bool = True,
) -> tuple[dict[str, Any], Crowding | None]:
    """Fit the crowding correction, then evaluate the model with it (and the hashes) on
    corpus-test and held-out photos; returns the report dict and the correction."""
    val_images = held_out(corpus, config, "val")
    sets: dict[str, HeldOut] = {"corpus-test": held_out(corpus, config, "test")}
    if holdout is not None and (holdout / "manifest.jsonl").exists():
        sets["holdout-photos"] = holdout_photos(holdout)
    prepared = {
        name: build_eval_data(val_images, images, seed, runs, queries, per_mod)
        for name, images in sets.items()
    }
    # Every set shares the calibration queries (made from the validation split by the seed).
    calibration = next(iter(prepared.values())).calibration
    crowding = crowding_for(network, meta, corpus, config, calibration)
    embedder = Embedder.from_network(network, meta, device="cpu", crowding=crowding)
    methods: list[Fingerprinter] = [ModelFingerprinter("model", embedder)]
    if with_hashes:
        methods += hash_fingerprinters()
    report: dict[str, Any] = {"seed": seed, "runs": runs, "queries": queries}
    if crowding is not None:
        report["crowding"] = {
            "k": crowding.k,
            "reference": crowding.reference,
            "radius": crowding.radius,
            "background_images": len(crowding.background),
        }
    for name, data in prepared.items():
        results = evaluate_all(methods, data)
        library_size = len(data.runs[0].library)
        report[name] = {"library": library_size, "results": results}
        print(format_table(results, f"\n== {name}: library {library_size} =="), flush=True)
    return report, crowding


def export_run(
    run_dir: Path,
    out_dir: Path,
    holdout: Path | None,
    seed: int = 0,
    runs: int = 3,
    queries: int = 1000,
    per_mod: int = 50,
    name: str = "fpgui-resnet18",
    version: str | None = None,
) -> ModelMetadata:
    network, config, step = network_from_run(run_dir)
    corpus = Path(config.corpus)
    base = preprocessing_metadata(config)
    report, crowding = evaluate_network(
        network, base, corpus, holdout, config, seed, runs, queries, per_mod
    )
    model_result = report["corpus-test"]["results"]["model"]
    summary = {
        split: {
            k: v for k, v in report[split]["results"]["model"].items() if k != "per_modification"
        }
        for split in ("corpus-test", "holdout-photos")
        if split in report
    }
    meta = ModelMetadata(
        name=name,
        version=version or dt.date.today().isoformat(),
        input_size=config.input_size,
        normalization=config.normalization,
        embedding_dim=config.embedding_dim,
        l2_normalize=config.l2_normalize,
        threshold=round(float(model_result["threshold"]), 6),
        ratio_threshold=round(float(model_result["ratio_threshold"]), 6),
        reference_distance=round(float(model_result["reference_distance"]), 6),
        possible_threshold=round(float(model_result["possible_threshold"]), 6),
        possible_ratio_threshold=round(float(model_result["possible_ratio_threshold"]), 6),
        crowding_k=crowding.k if crowding else 0,
        crowding_reference=round(crowding.reference, 6) if crowding else 0.0,
        crowding_radius=round(crowding.radius, 6) if crowding else 0.0,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        code_version=code_version(),
        training={
            "config": config.to_dict(),
            "steps_done": step,
            "corpus_manifest_sha256": manifest_sha256(corpus),
            "corpus_images": len(corpus_entries(corpus)) if corpus.exists() else 0,
        },
        metrics={"model": summary, "threshold_target_precision": 0.99, "eval_seed": seed},
    )
    background = crowding.background if crowding else None
    final = save_model_bundle(network, meta, out_dir, background)
    (out_dir / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return final


def run(args: argparse.Namespace) -> int:
    holdout = Path(args.holdout) if args.holdout else None
    meta = export_run(
        Path(args.run), Path(args.out), holdout, args.seed, args.runs, args.queries, args.per_mod
    )
    print(f"exported {meta.model_id} to {args.out} (threshold {meta.threshold:.4f})")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("export", help="evaluate a run and write the app's model bundle")
    parser.add_argument("--run", default="runs/default", help="training run directory")
    parser.add_argument("--out", default="resources/model")
    parser.add_argument("--holdout", default="corpus/holdout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--per-mod", type=int, default=50)
    parser.set_defaults(func=run)
