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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from fpgui.core.embedder import Embedder
from fpgui.core.verdict import VerdictPolicy, VerdictRule, second_distinct
from model_training import augment
from model_training.config import TrainConfig
from model_training.corpus import read_manifest
from model_training.data import corpus_entries, load_images, split_by_group

FloatArray = npt.NDArray[np.float64]
TARGET_PRECISION = 0.99
EVAL_LONG_SIDE = 384
# The modifications a per-modification table reports; "combo" stacks several of them.
TABLE_MODIFICATIONS: tuple[str, ...] = tuple(augment.modification_names())
# The published approach's five modifications: its F1 of 0.94 was measured on copies made by these
# alone. ``published_*`` scores repeat each run with positives and negatives cycling through them.
PUBLISHED_MODIFICATIONS: tuple[str, ...] = (
    "add_text",
    "brightness",
    "screenshot",
    "mix_content",
    "rotate",
)


@dataclass(frozen=True)
class Query:
    image: Image.Image
    truth: int  # index of the original in the library, -1 for a negative query
    modification: str


@dataclass(frozen=True)
class QuerySet:
    """Library images and the queries against them, all made from one seed.

    ``library_groups`` names each library image's source picture (an image and its tiles share
    one); retrieving any image of the right group counts as right. Empty: every image its own.
    """

    library: list[Image.Image]
    queries: list[Query]
    library_groups: list[str] = field(default_factory=list)

    def group_ids(self) -> npt.NDArray[np.int64]:
        names = self.library_groups or [str(i) for i in range(len(self.library))]
        codes: dict[str, int] = {}
        return np.asarray([codes.setdefault(n, len(codes)) for n in names], dtype=np.int64)


def make_queries(
    originals: Sequence[Image.Image],
    distractors: Sequence[Image.Image],
    seed: int,
    positives: int,
    negatives: int,
    modifications: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> QuerySet:
    """``positives`` modified copies of ``originals`` and ``negatives`` of ``distractors``.

    With ``modifications`` given, positive queries cycle through those names; otherwise each
    query draws one from the training mix (``augment.random_modification``). ``groups`` are the
    originals' source pictures (see :class:`QuerySet`).
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
    return QuerySet(list(originals), queries, list(groups or []))


class Fingerprinter(Protocol):
    name: str

    def distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        """``(Q, L)`` distances between every query and every library image."""
        ...

    def query_distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        """What the verdict compares with its thresholds: :meth:`distances`, each query's row
        scaled by its crowding factor where the method has one (see ``fpgui.core.crowding``)."""
        ...


class ModelFingerprinter:
    """L2 distances between model embeddings."""

    def __init__(self, name: str, embedder: Embedder) -> None:
        self.name = name
        self.embedder = embedder

    def distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        return self._distances(queries, library, crowded=False)

    def query_distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        return self._distances(queries, library, crowded=True)

    def _distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image], crowded: bool
    ) -> FloatArray:
        q = self.embedder.embed_images(queries, batch_size=64).astype(np.float64)
        lib = self.embedder.embed_images(library, batch_size=64).astype(np.float64)
        squared = (q**2).sum(1)[:, None] + (lib**2).sum(1)[None, :] - 2 * q @ lib.T
        result: FloatArray = np.sqrt(np.clip(squared, 0, None))
        crowding = self.embedder.crowding
        if crowded and crowding is not None and len(lib):
            # The app scales the thresholds by 1 / factor instead: the same verdicts.
            result = result * crowding.factors(q, lib[result.argmin(axis=1)])[:, None]
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

    def query_distances(
        self, queries: Sequence[Image.Image], library: Sequence[Image.Image]
    ) -> FloatArray:
        return self.distances(queries, library)


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


NEIGHBOURS = 10  # neighbours the app fetches to find the second distinct image (as matching does)


@dataclass(frozen=True)
class Verdicts:
    """Per query: nearest distance, whether the nearest is right, and what the ratio test needs."""

    nearest: FloatArray  # (Q,) distance to the nearest library image
    correct: npt.NDArray[np.bool_]  # (Q,) positive query whose nearest is of its original's group
    top5: npt.NDArray[np.bool_]  # (Q,) positive query with its original's group in the top 5
    positive: npt.NDArray[np.bool_]  # (Q,)
    # (Q, K) ascending distances to the K nearest, and each of those to the nearest one.
    neighbours: FloatArray | None = None
    apart: FloatArray | None = None
    library_size: int = 0

    def second(self, radius: float) -> list[float | None]:
        """``d2`` per query exactly as the app computes it (see ``fpgui.core.verdict``)."""
        if self.neighbours is None or self.apart is None:
            return [None] * len(self.nearest)
        result: list[float | None] = []
        for row, apart in zip(self.neighbours, self.apart, strict=True):
            found = second_distinct(row.tolist(), apart.tolist(), radius)
            if found is None and self.library_size > len(row):
                found = float(row[-1])  # more images than fetched: a lower bound, as the app
            result.append(found)
        return result

    def ratios(self, rule: VerdictRule) -> FloatArray:
        return np.asarray(
            [
                rule.ratio(float(d1), d2)
                for d1, d2 in zip(self.nearest, self.second(rule.threshold), strict=True)
            ]
        )


def verdicts(
    distances: FloatArray,
    truths: npt.NDArray[np.int64],
    library_distances: FloatArray | None = None,
    groups: npt.NDArray[np.int64] | None = None,
) -> Verdicts:
    """``distances`` (Q, L) query-library; ``library_distances`` (L, L) for the ratio test."""
    group = groups if groups is not None else np.arange(distances.shape[1])
    order = np.argsort(distances, axis=1, kind="stable")
    positive = truths >= 0
    truth_group = group[np.where(positive, truths, 0)]
    correct = positive & (group[order[:, 0]] == truth_group)
    top5 = positive & (group[order[:, :5]] == truth_group[:, None]).any(axis=1)
    neighbours = apart = None
    if library_distances is not None:
        near = order[:, :NEIGHBOURS]
        neighbours = np.take_along_axis(distances, near, axis=1)
        apart = library_distances[near[:, :1], near]
    return Verdicts(
        distances.min(axis=1), correct, top5, positive, neighbours, apart, distances.shape[1]
    )


def _largest_passing(
    values: FloatArray, correct: npt.NDArray[np.bool_], base: npt.NDArray[np.bool_], target: float
) -> float:
    """The largest cut-off c for which ``base | (values < c)`` keeps ``target`` precision."""
    finite = np.isfinite(values)
    order = np.argsort(np.where(finite, values, np.inf), kind="stable")
    called_before = base[order]
    right = correct[order]
    # Calling the first i+1 by value (plus everything base calls): precision of the union.
    extra_called = np.cumsum(~called_before)
    extra_right = np.cumsum(~called_before & right)
    total = base.sum() + extra_called
    precision = ((base & correct).sum() + extra_right) / np.maximum(total, 1)
    ok = np.nonzero((precision >= target) & finite[order])[0]
    if len(ok) == 0:
        return 0.0
    last = int(ok.max())
    below = float(values[order][last])
    above = float(values[order][last + 1]) if last + 1 < len(order) else below * 1.01 + 1e-6
    if not np.isfinite(above):
        above = below * 1.01 + 1e-6
    return (below + above) / 2


def calibrate_threshold(v: Verdicts, target_precision: float = TARGET_PRECISION) -> float:
    """The largest distance threshold whose copy verdicts keep ``target_precision``.

    A query is judged a copy when ``nearest < threshold``; it is right when ``correct``.
    """
    nothing = np.zeros(len(v.nearest), dtype=bool)
    found = _largest_passing(v.nearest, v.correct, nothing, target_precision)
    return found if found > 0 else float(v.nearest.min()) * 0.5


def _f1(called: npt.NDArray[np.bool_], v: Verdicts) -> tuple[float, float, float]:
    tp = float((called & v.correct).sum())
    positives = float(v.positive.sum())
    precision = tp / called.sum() if called.any() else 1.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), recall, f1


def calibrate_policy(
    v: Verdicts, target_precision: float = TARGET_PRECISION, ratio_test: bool = True
) -> VerdictPolicy:
    """Strict rule at ``target_precision``; balanced rule at the best F1; both on ``v``.

    ``reference_distance`` is the median nearest distance of the negative queries: how far an
    unrelated image typically is from its nearest library image.
    """
    threshold = calibrate_threshold(v, target_precision)
    if not ratio_test or v.neighbours is None or not (~v.positive).any():
        return VerdictPolicy(VerdictRule(threshold))
    reference = float(np.median(v.nearest[~v.positive]))
    ratios = v.ratios(VerdictRule(threshold, 0.0, reference))
    by_distance = v.nearest < threshold
    ratio_cut = _largest_passing(ratios, v.correct, by_distance, target_precision)
    strict = VerdictRule(threshold, ratio_cut, reference)
    # Balanced: the (distance, ratio) pair at least as loose as strict with the best F1.
    best = (_f1(by_distance | (ratios < ratio_cut), v)[2], threshold, ratio_cut)
    distance_grid = np.unique(np.quantile(v.nearest[v.nearest >= threshold], np.linspace(0, 1, 41)))
    finite = ratios[np.isfinite(ratios) & (ratios >= ratio_cut)]
    ratio_grid: FloatArray = (
        np.unique(np.quantile(finite, np.linspace(0, 1, 41))) if len(finite) else np.zeros(0)
    )
    for t in distance_grid:
        for r in ratio_grid:
            f1 = _f1((v.nearest < t) | (ratios < r), v)[2]
            if f1 > best[0]:
                best = (f1, float(t), float(r))
    balanced = VerdictRule(best[1], best[2], reference)
    return VerdictPolicy(strict, balanced)


def called_by(v: Verdicts, rule: VerdictRule) -> npt.NDArray[np.bool_]:
    called: npt.NDArray[np.bool_] = v.nearest < rule.threshold
    if rule.ratio_threshold > 0:
        called = called | (v.ratios(rule) < rule.ratio_threshold)
    return called


def scores(v: Verdicts, policy: VerdictPolicy | float) -> dict[str, float]:
    """Precision, recall, F1 of the copy verdict (strict; ``balanced_*``: copy or possible copy);
    top-1, top-5 and micro-AP of retrieval."""
    if not isinstance(policy, VerdictPolicy):
        policy = VerdictPolicy(VerdictRule(float(policy)))
    precision, recall, f1 = _f1(called_by(v, policy.strict), v)
    loose = policy.balanced or policy.strict
    b_precision, b_recall, b_f1 = _f1(called_by(v, loose), v)
    positives = float(v.positive.sum())
    order = np.argsort(v.nearest, kind="stable")
    hits = v.correct[order].astype(np.float64)
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    ap = float((precision_at * hits).sum() / positives) if positives else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "balanced_precision": b_precision,
        "balanced_recall": b_recall,
        "balanced_f1": b_f1,
        "top1": float(v.correct.sum() / positives) if positives else 0.0,
        "top5": float(v.top5.sum() / positives) if positives else 0.0,
        "micro_ap": ap,
    }


def _truths(queries: Sequence[Query]) -> npt.NDArray[np.int64]:
    return np.asarray([q.truth for q in queries], dtype=np.int64)


def verdicts_of(method: Fingerprinter, data: QuerySet) -> Verdicts:
    library_distances = method.distances(data.library, data.library)
    return verdicts(
        method.query_distances([q.image for q in data.queries], data.library),
        _truths(data.queries),
        library_distances,
        data.group_ids(),
    )


def policy_dict(policy: VerdictPolicy) -> dict[str, float]:
    balanced = policy.balanced or policy.strict
    return {
        "threshold": policy.strict.threshold,
        "ratio_threshold": policy.strict.ratio_threshold,
        "reference_distance": policy.strict.reference_distance,
        "possible_threshold": balanced.threshold,
        "possible_ratio_threshold": balanced.ratio_threshold,
    }


def policy_from_dict(raw: dict[str, float]) -> VerdictPolicy:
    reference = raw.get("reference_distance", 0.0)
    strict = VerdictRule(raw["threshold"], raw.get("ratio_threshold", 0.0), reference)
    balanced = VerdictRule(
        raw.get("possible_threshold", strict.threshold),
        raw.get("possible_ratio_threshold", strict.ratio_threshold),
        reference,
    )
    return VerdictPolicy(strict, balanced)


def evaluate_method(
    method: Fingerprinter,
    calibration: QuerySet,
    runs: Sequence[QuerySet],
    table: QuerySet | None,
    policy: VerdictPolicy | None = None,
    published_runs: Sequence[QuerySet] = (),
) -> dict[str, Any]:
    """Calibrate ``method`` (unless ``policy`` is given), then score it on every run.

    ``published_runs`` (the published five modifications only) are scored with the same policy
    and reported under ``published_`` keys.
    """
    if policy is None:
        policy = calibrate_policy(verdicts_of(method, calibration))
    summary: dict[str, Any] = dict(policy_dict(policy))
    for prefix, sets in (("", runs), ("published_", published_runs)):
        per_run = [scores(verdicts_of(method, run), policy) for run in sets]
        for key in per_run[0] if per_run else ():
            values = [r[key] for r in per_run]
            summary[f"{prefix}{key}"] = statistics.fmean(values)
            summary[f"{prefix}{key}_std"] = statistics.pstdev(values)
    if table is not None:
        v = verdicts_of(method, table)
        strict = called_by(v, policy.strict)
        loose = called_by(v, policy.balanced or policy.strict)
        per_mod: dict[str, dict[str, float]] = {}
        for name in sorted({q.modification for q in table.queries}):
            mask = np.asarray([q.modification == name for q in table.queries])
            per_mod[name] = {
                "recall": float((strict & v.correct)[mask].mean()),
                "balanced_recall": float((loose & v.correct)[mask].mean()),
                "top1": float(v.correct[mask].mean()),
                "top5": float(v.top5[mask].mean()),
            }
        summary["per_modification"] = per_mod
    return summary


@dataclass(frozen=True)
class EvalData:
    calibration: QuerySet
    runs: list[QuerySet]
    table: QuerySet
    published_runs: list[QuerySet] = field(default_factory=list)


@dataclass(frozen=True)
class HeldOut:
    """Held-out images and their source pictures (an image and its tiles share a group)."""

    images: list[Image.Image]
    groups: list[str]

    def split_groups(self) -> tuple[HeldOut, HeldOut]:
        """Every other group to the library, the rest to negatives: a negative query is never a
        tile (that is, a crop) of a library image."""
        order: dict[str, int] = {}
        for group in self.groups:
            order.setdefault(group, len(order))
        sides: tuple[HeldOut, HeldOut] = (HeldOut([], []), HeldOut([], []))
        for image, group in zip(self.images, self.groups, strict=True):
            side = sides[order[group] % 2]
            side.images.append(image)
            side.groups.append(group)
        return sides


def build_eval_data(
    val: HeldOut, test: HeldOut, seed: int, runs: int, queries: int, per_modification: int
) -> EvalData:
    """Half of each set's groups are the library, the other half supply negative queries."""
    val_lib, val_neg = val.split_groups()
    lib, neg = test.split_groups()
    calibration = make_queries(
        val_lib.images, val_neg.images, seed + 10_000, queries, queries, groups=val_lib.groups
    )

    def run_sets(offset: int, modifications: Sequence[str] | None) -> list[QuerySet]:
        return [
            make_queries(
                lib.images,
                neg.images,
                seed + offset + r,
                queries,
                queries,
                modifications,
                groups=lib.groups,
            )
            for r in range(runs)
        ]

    count = per_modification * len(TABLE_MODIFICATIONS)
    table = make_queries(
        lib.images, [], seed + 20_000, count, 0, TABLE_MODIFICATIONS, groups=lib.groups
    )
    return EvalData(
        calibration, run_sets(0, None), table, run_sets(30_000, PUBLISHED_MODIFICATIONS)
    )


def evaluate_all(
    methods: Sequence[Fingerprinter],
    data: EvalData,
    policies: dict[str, VerdictPolicy] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for method in methods:
        if progress is not None:
            progress(method.name)
        fixed = (policies or {}).get(method.name)
        results[method.name] = evaluate_method(
            method, data.calibration, data.runs, data.table, fixed, data.published_runs
        )
    return results


def held_out(corpus: Path, config: TrainConfig, split: str) -> HeldOut:
    """The corpus's validation or test split (by group, never trained on)."""
    entries = corpus_entries(corpus)
    parts = split_by_group(entries, config.val_fraction, config.test_fraction, 0)
    chosen = parts.val if split == "val" else parts.test
    images = load_images([corpus / e.file for e in chosen], EVAL_LONG_SIDE)
    return HeldOut(images, [e.group for e in chosen])


def holdout_photos(folder: Path) -> HeldOut:
    """The held-out photo set (other packages than the corpus)."""
    entries = read_manifest(folder)
    images = load_images([folder / e.file for e in entries], EVAL_LONG_SIDE)
    return HeldOut(images, [e.group for e in entries])


def format_table(results: dict[str, dict[str, Any]], title: str) -> str:
    keys = ("precision", "recall", "f1", "balanced_f1", "top1", "top5", "micro_ap")
    lines = [
        title,
        "strict: copy verdicts at 99% validation precision; balanced: copy or possible copy, "
        "at the best validation F1",
        "method      " + "".join(f"{k:>12}" for k in keys) + "   threshold  ratio",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:<12}"
            + "".join(f"{r[k]:>12.4f}" for k in keys)
            + f"{r['threshold']:>12.4f}{r['ratio_threshold']:>7.3f}"
        )
    if all("published_f1" in r for r in results.values()):
        lines.append("")
        lines.append(
            "published protocol (copies made only by "
            + ", ".join(PUBLISHED_MODIFICATIONS)
            + "; published P 0.93, R 0.95, F1 0.94, top-5 0.995)"
        )
        for name, r in results.items():
            lines.append(f"{name:<12}" + "".join(f"{r['published_' + k]:>12.4f}" for k in keys))
    mods = sorted(next(iter(results.values())).get("per_modification", {}))
    if mods:
        lines.append("")
        lines.append("per modification: top-1 / strict recall")
        lines.append("modification" + "".join(f"{n:>12}" for n in results))
        for mod in mods:
            row = "".join(
                f"{r['per_modification'][mod]['top1']:>6.2f}/{r['per_modification'][mod]['recall']:.2f}"
                for r in results.values()
            )
            lines.append(f"{mod:<12}{row}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config = TrainConfig(val_fraction=args.val_fraction, test_fraction=args.test_fraction)
    corpus = Path(args.corpus)
    val_images = held_out(corpus, config, "val")
    test_sets: dict[str, HeldOut] = {"corpus-test": held_out(corpus, config, "test")}
    if args.holdout and (Path(args.holdout) / "manifest.jsonl").exists():
        test_sets["holdout-photos"] = holdout_photos(Path(args.holdout))
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
        library_size = len(data.runs[0].library)
        report[name] = {"library": library_size, "results": results}
        print(
            format_table(
                results,
                f"\n== {name}: library {library_size} images, "
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
