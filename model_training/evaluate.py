"""Honest evaluation: ``python -m model_training evaluate``.

Protocol (the published one, extended). A library of held-out originals; positive queries are
modified copies of library images, negative queries are modified copies of other held-out images
that are not in the library. A query is judged a copy when its nearest library distance is under
the threshold; a true positive also needs the nearest image to be its original. The threshold is
calibrated on validation queries (the largest distance that keeps 99% precision) for every method,
the model and the perceptual hashes alike, and all methods see exactly the same queries.
Everything is a pure function of the seed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from fpgui.core.embedder import Embedder
from model_training import augment
from model_training.config import TrainConfig
from model_training.corpus import read_manifest
from model_training.data import corpus_entries, load_images, split_by_group

FloatArray = npt.NDArray[np.float64]
TARGET_PRECISION = 0.99
EVAL_LONG_SIDE = 384
# The modifications a per-modification table reports; "combo" stacks several of them.
TABLE_MODIFICATIONS: tuple[str, ...] = tuple(augment.modification_names())


@dataclass(frozen=True)
class Query:
    image: Image.Image
    truth: int  # index of the original in the library, -1 for a negative query
    modification: str


@dataclass(frozen=True)
class QuerySet:
    """Library images and the queries against them, all made from one seed."""

    library: list[Image.Image]
    queries: list[Query]


def make_queries(
    originals: Sequence[Image.Image],
    distractors: Sequence[Image.Image],
    seed: int,
    positives: int,
    negatives: int,
    modifications: Sequence[str] | None = None,
) -> QuerySet:
    """``positives`` modified copies of ``originals`` and ``negatives`` of ``distractors``.

    With ``modifications`` given, positive queries cycle through those names; otherwise each
    query draws one from the training mix (``augment.random_modification``).
    """
    rng = random.Random(f"eval:{seed}")
    queries: list[Query] = []
    pool = list(originals) + list(distractors)

    def modify(image: Image.Image, index: int) -> tuple[Image.Image, str]:
        other = pool[rng.randrange(len(pool))]
        if modifications:
            name = modifications[index % len(modifications)]
            return augment.MODIFICATIONS[name](image, rng, other=other), name
        return augment.random_modification(image, rng, other)

    order = list(range(len(originals)))
    rng.shuffle(order)
    for i in range(positives):
        truth = order[i % len(order)]
        image, name = modify(originals[truth], i)
        queries.append(Query(image, truth, name))
    for i in range(negatives if distractors else 0):
        image, name = modify(distractors[i % len(distractors)], i)
        queries.append(Query(image, -1, name))
    return QuerySet(list(originals), queries)


class Fingerprinter(Protocol):
    name: str

    def distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        """``(Q, L)`` distances between every query and every library image."""
        ...


class ModelFingerprinter:
    """L2 distances between model embeddings."""

    def __init__(self, name: str, embedder: Embedder) -> None:
        self.name = name
        self.embedder = embedder

    def distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        q = self.embedder.embed_images(queries, batch_size=64).astype(np.float64)
        lib = self.embedder.embed_images(library, batch_size=64).astype(np.float64)
        squared = (q**2).sum(1)[:, None] + (lib**2).sum(1)[None, :] - 2 * q @ lib.T
        result: FloatArray = np.sqrt(np.clip(squared, 0, None))
        return result


class HashFingerprinter:
    """Hamming distances between perceptual hashes (bits as a bool matrix)."""

    def __init__(self, name: str, bits: Callable[[Image.Image], npt.NDArray[np.bool_]]) -> None:
        self.name = name
        self.bits = bits

    def distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        q = np.stack([self.bits(im) for im in queries]).astype(np.float64)
        lib = np.stack([self.bits(im) for im in library]).astype(np.float64)
        # Hamming distance through a dot product of +/-1 codes.
        same = (2 * q - 1) @ (2 * lib - 1).T
        result: FloatArray = (q.shape[1] - same) / 2
        return result


def _phash_bits(image: Image.Image) -> npt.NDArray[np.bool_]:
    import imagehash

    bits: npt.NDArray[np.bool_] = imagehash.phash(image).hash.flatten()
    return bits


def _dhash_bits(image: Image.Image) -> npt.NDArray[np.bool_]:
    import imagehash

    bits: npt.NDArray[np.bool_] = imagehash.dhash(image).hash.flatten()
    return bits


def _pdq_bits(image: Image.Image) -> npt.NDArray[np.bool_]:
    import pdqhash

    hash_vector, _quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    bits: npt.NDArray[np.bool_] = hash_vector.astype(bool)
    return bits


def hash_fingerprinters() -> list[HashFingerprinter]:
    """pHash, dHash and PDQ; those whose package is missing are left out."""
    found: list[HashFingerprinter] = []
    try:
        import imagehash  # noqa: F401

        found += [HashFingerprinter("pHash", _phash_bits), HashFingerprinter("dHash", _dhash_bits)]
    except ImportError:
        pass
    try:
        import pdqhash  # noqa: F401

        found.append(HashFingerprinter("PDQ", _pdq_bits))
    except ImportError:
        pass
    return found


@dataclass(frozen=True)
class Verdicts:
    """Nearest distance and whether the nearest image is the right one, per query."""

    nearest: FloatArray  # (Q,) distance to the nearest library image
    correct: npt.NDArray[np.bool_]  # (Q,) positive query whose nearest is its original
    top5: npt.NDArray[np.bool_]  # (Q,) positive query with its original in the top 5
    positive: npt.NDArray[np.bool_]  # (Q,)


def verdicts(distances: FloatArray, truths: npt.NDArray[np.int64]) -> Verdicts:
    order = np.argsort(distances, axis=1, kind="stable")[:, :5]
    positive = truths >= 0
    correct = positive & (order[:, 0] == truths)
    top5 = positive & (order == truths[:, None]).any(axis=1)
    return Verdicts(distances.min(axis=1), correct, top5, positive)


def calibrate_threshold(v: Verdicts, target_precision: float = TARGET_PRECISION) -> float:
    """The largest distance threshold whose copy verdicts keep ``target_precision``.

    A query is judged a copy when ``nearest < threshold``; it is right when ``correct``.
    """
    order = np.argsort(v.nearest, kind="stable")
    right = v.correct[order].astype(np.float64)
    precision = np.cumsum(right) / np.arange(1, len(right) + 1)
    ok = np.nonzero(precision >= target_precision)[0]
    if len(ok) == 0:
        return float(v.nearest.min()) * 0.5
    last = int(ok.max())
    below = float(v.nearest[order][last])
    above = float(v.nearest[order][last + 1]) if last + 1 < len(order) else below * 1.01 + 1e-6
    return (below + above) / 2


def scores(v: Verdicts, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 of the copy verdict; top-1, top-5 and micro-AP of retrieval."""
    called = v.nearest < threshold
    tp = float((called & v.correct).sum())
    positives = float(v.positive.sum())
    precision = tp / called.sum() if called.any() else 1.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    order = np.argsort(v.nearest, kind="stable")
    hits = v.correct[order].astype(np.float64)
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    ap = float((precision_at * hits).sum() / positives) if positives else 0.0
    return {
        "precision": float(precision),
        "recall": recall,
        "f1": f1,
        "top1": float(v.correct.sum() / positives) if positives else 0.0,
        "top5": float(v.top5.sum() / positives) if positives else 0.0,
        "micro_ap": ap,
    }


def _truths(queries: Sequence[Query]) -> npt.NDArray[np.int64]:
    return np.asarray([q.truth for q in queries], dtype=np.int64)


def evaluate_method(
    method: Fingerprinter,
    calibration: QuerySet,
    runs: Sequence[QuerySet],
    table: QuerySet | None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Calibrate ``method`` (unless ``threshold`` is given), then score it on every run."""
    if threshold is None:
        cal = verdicts(
            method.distances([q.image for q in calibration.queries], calibration.library),
            _truths(calibration.queries),
        )
        threshold = calibrate_threshold(cal)
    per_run = []
    for run in runs:
        v = verdicts(
            method.distances([q.image for q in run.queries], run.library), _truths(run.queries)
        )
        per_run.append(scores(v, threshold))
    summary: dict[str, Any] = {"threshold": threshold}
    for key in per_run[0]:
        values = [r[key] for r in per_run]
        summary[key] = statistics.fmean(values)
        summary[f"{key}_std"] = statistics.pstdev(values)
    if table is not None:
        v = verdicts(
            method.distances([q.image for q in table.queries], table.library),
            _truths(table.queries),
        )
        called = v.nearest < threshold
        per_mod: dict[str, dict[str, float]] = {}
        for name in sorted({q.modification for q in table.queries}):
            mask = np.asarray([q.modification == name for q in table.queries])
            per_mod[name] = {
                "recall": float((called & v.correct)[mask].mean()),
                "top1": float(v.correct[mask].mean()),
            }
        summary["per_modification"] = per_mod
    return summary


@dataclass(frozen=True)
class EvalData:
    calibration: QuerySet
    runs: list[QuerySet]
    table: QuerySet


def build_eval_data(
    val_images: Sequence[Image.Image],
    test_images: Sequence[Image.Image],
    seed: int,
    runs: int,
    queries: int,
    per_modification: int,
) -> EvalData:
    """Half of each image set is the library, the other half supplies negative queries."""
    val_lib, val_neg = val_images[::2], val_images[1::2]
    lib, neg = test_images[::2], test_images[1::2]
    calibration = make_queries(val_lib, val_neg, seed + 10_000, queries, queries)
    run_sets = [make_queries(lib, neg, seed + r, queries, queries) for r in range(runs)]
    count = per_modification * len(TABLE_MODIFICATIONS)
    table = make_queries(lib, [], seed + 20_000, count, 0, TABLE_MODIFICATIONS)
    return EvalData(calibration, run_sets, table)


def evaluate_all(
    methods: Sequence[Fingerprinter],
    data: EvalData,
    thresholds: dict[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for method in methods:
        if progress is not None:
            progress(method.name)
        fixed = (thresholds or {}).get(method.name)
        results[method.name] = evaluate_method(
            method, data.calibration, data.runs, data.table, fixed
        )
    return results


def held_out_images(corpus: Path, config: TrainConfig, split: str) -> list[Image.Image]:
    entries = corpus_entries(corpus)
    parts = split_by_group(entries, config.val_fraction, config.test_fraction, 0)
    chosen = parts.val if split == "val" else parts.test
    return load_images([corpus / e.file for e in chosen], EVAL_LONG_SIDE)


def format_table(results: dict[str, dict[str, Any]], title: str) -> str:
    keys = ("precision", "recall", "f1", "top1", "top5", "micro_ap", "threshold")
    lines = [title, "method      " + "".join(f"{k:>11}" for k in keys)]
    for name, r in results.items():
        lines.append(f"{name:<12}" + "".join(f"{r[k]:>11.4f}" for k in keys))
    mods = sorted(next(iter(results.values())).get("per_modification", {}))
    if mods:
        lines.append("")
        lines.append("recall per modification at the calibrated threshold")
        lines.append("modification" + "".join(f"{n:>10}" for n in results))
        for mod in mods:
            row = "".join(
                f"{r['per_modification'][mod]['recall']:>10.3f}" for r in results.values()
            )
            lines.append(f"{mod:<12}{row}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config = TrainConfig(val_fraction=args.val_fraction, test_fraction=args.test_fraction)
    corpus = Path(args.corpus)
    val_images = held_out_images(corpus, config, "val")
    test_sets: dict[str, list[Image.Image]] = {
        "corpus-test": held_out_images(corpus, config, "test")
    }
    if args.holdout and Path(args.holdout).exists():
        holdout = Path(args.holdout)
        test_sets["holdout-photos"] = load_images(
            [holdout / e.file for e in read_manifest(holdout)], EVAL_LONG_SIDE
        )
    methods: list[Fingerprinter] = [
        ModelFingerprinter(Path(m).name or "model", Embedder(Path(m), device=args.device))
        for m in args.model
    ]
    if not args.no_hashes:
        methods += hash_fingerprinters()
    report: dict[str, Any] = {"seed": args.seed, "runs": args.runs, "queries": args.queries}
    for name, images in test_sets.items():
        data = build_eval_data(val_images, images, args.seed, args.runs, args.queries, args.per_mod)
        results = evaluate_all(
            methods, data, progress=lambda n: print(f"  evaluating {n}", flush=True)
        )
        report[name] = {"library": len(images[::2]), "results": results}
        print(
            format_table(
                results,
                f"\n== {name}: library {len(images[::2])} images, "
                f"{args.queries} positive + {args.queries} negative queries, "
                f"{args.runs} runs ==",
            ),
            flush=True,
        )
    report["seconds"] = time.monotonic() - started
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"report written to {args.out}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate models against perceptual hashes")
    parser.add_argument("--model", action="append", default=None, help="model folder (repeatable)")
    parser.add_argument("--corpus", default="corpus/train")
    parser.add_argument("--holdout", default="corpus/holdout", help="held-out photo corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--queries", type=int, default=1000, help="positive (and negative) queries per run"
    )
    parser.add_argument(
        "--per-mod", type=int, default=100, help="queries per modification in the table"
    )
    parser.add_argument("--val-fraction", type=float, default=TrainConfig.val_fraction)
    parser.add_argument("--test-fraction", type=float, default=TrainConfig.test_fraction)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-hashes", action="store_true")
    parser.add_argument("--out", help="write the full report as JSON here")
    parser.set_defaults(func=_run_with_default_model)


def _run_with_default_model(args: argparse.Namespace) -> int:
    if not args.model:
        from fpgui.core.paths import bundled_model_dir

        args.model = [str(bundled_model_dir())]
    return run(args)
