from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpgui.core.crowding import Crowding
from fpgui.core.embedder import Embedder
from fpgui.core.model_files import load_model_bundle
from fpgui.core.verdict import VerdictPolicy, VerdictRule
from model_training.evaluate import (
    PUBLISHED_MODIFICATIONS,
    HeldOut,
    ModelFingerprinter,
    Verdicts,
    build_eval_data,
    calibrate_policy,
    calibrate_threshold,
    evaluate_all,
    hash_fingerprinters,
    make_queries,
    scores,
    verdicts,
    verdicts_of,
)
from tests.conftest import make_photo


def _v(nearest: list[float], correct: list[bool], positive: list[bool]) -> Verdicts:
    c = np.asarray(correct)
    return Verdicts(np.asarray(nearest, dtype=np.float64), c, c, np.asarray(positive))


def test_verdicts_find_nearest_and_top5() -> None:
    distances = np.array([[0.1, 0.5, 0.9], [0.7, 0.2, 0.3], [0.4, 0.6, 0.8]])
    v = verdicts(distances, np.array([0, 2, -1]))
    assert v.nearest.tolist() == [0.1, 0.2, 0.4]
    assert v.correct.tolist() == [True, False, False]
    assert v.top5.tolist() == [True, True, False]
    assert v.positive.tolist() == [True, True, False]


def test_threshold_keeps_target_precision() -> None:
    # Sorted by distance: right, right, right, wrong, right, wrong.
    v = _v(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        [True, True, True, False, True, False],
        [True, True, True, False, True, False],
    )
    t = calibrate_threshold(v, target_precision=0.99)
    assert 0.3 < t < 0.4
    result = scores(v, t)
    assert result["precision"] == 1.0
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(2 * 0.75 / 1.75)


def test_micro_ap_is_one_when_all_hits_rank_first() -> None:
    v = _v([0.1, 0.2, 0.9], [True, True, False], [True, True, False])
    assert scores(v, 0.5)["micro_ap"] == pytest.approx(1.0)


def test_queries_are_reproducible_from_the_seed() -> None:
    originals = [make_photo(i, (96, 72)) for i in range(4)]
    distractors = [make_photo(50 + i, (96, 72)) for i in range(4)]
    a = make_queries(originals, distractors, 3, positives=6, negatives=4)
    b = make_queries(originals, distractors, 3, positives=6, negatives=4)
    assert [q.truth for q in a.queries] == [q.truth for q in b.queries]
    assert all(
        np.array_equal(np.asarray(x.image), np.asarray(y.image))
        for x, y in zip(a.queries, b.queries, strict=True)
    )
    assert sum(q.truth == -1 for q in a.queries) == 4


def test_hashes_find_exact_copies_and_reject_strangers() -> None:
    images: list[Image.Image] = [make_photo(i, (128, 96)) for i in range(12)]
    held = HeldOut(images, [str(i) for i in range(12)])
    data = build_eval_data(held, held, seed=0, runs=2, queries=12, per_modification=1)
    methods = hash_fingerprinters()
    assert {m.name for m in methods} == {"pHash", "dHash", "PDQ"}
    results = evaluate_all(methods, data)
    for result in results.values():
        assert 0.0 <= result["precision"] <= 1.0
        assert "per_modification" in result and "crop" in result["per_modification"]
    # The same images as library and distractors make no-modification lookups trivial for hashes:
    phash = methods[0]
    d = phash.distances(images[:3], images)
    assert d[np.arange(3), np.arange(3)].tolist() == [0.0, 0.0, 0.0]


def test_published_runs_use_only_the_published_five_modifications() -> None:
    images: list[Image.Image] = [make_photo(i, (128, 96)) for i in range(10)]
    held = HeldOut(images, [str(i) for i in range(10)])
    data = build_eval_data(held, held, seed=0, runs=2, queries=10, per_modification=1)
    assert len(data.published_runs) == 2
    for run in data.published_runs:
        names = [q.modification for q in run.queries if q.truth >= 0]
        assert set(names) == set(PUBLISHED_MODIFICATIONS)
    results = evaluate_all(hash_fingerprinters()[:1], data)
    result = results["pHash"]
    for key in ("precision", "recall", "f1", "top5"):
        assert 0.0 <= result[f"published_{key}"] <= 1.0
    # Scored on their own queries, not copied from the full-mix runs.
    scored = [scores(verdicts_of(hash_fingerprinters()[0], r), 0.5) for r in data.published_runs]
    assert result["published_top1"] == pytest.approx(np.mean([s["top1"] for s in scored]))


def test_a_group_lands_wholly_in_the_library_or_the_negatives() -> None:
    # An image and its tiles share a group; a tile as a negative would be a crop of a library image.
    groups = ["a", "a", "b", "c", "c", "c", "d"]
    images = [make_photo(i, (64, 48)) for i in range(len(groups))]
    library, negatives = HeldOut(images, groups).split_groups()
    assert library.groups == ["a", "a", "c", "c", "c"]
    assert negatives.groups == ["b", "d"]
    assert library.images[2] is images[3]


def test_retrieving_another_image_of_the_right_group_counts_as_right() -> None:
    # Library: 0 and 1 are one picture (group 0), 2 another. Query 0's truth is 0, nearest is 1.
    distances = np.array([[0.3, 0.1, 0.9], [0.8, 0.7, 0.2]])
    v = verdicts(distances, np.array([0, 0]), None, np.array([0, 0, 1]))
    assert v.correct.tolist() == [True, False]
    assert v.top5.tolist() == [True, True]


def test_second_distance_skips_near_duplicates_of_the_nearest() -> None:
    # Library 0 and 1 are 0.05 apart (near-duplicates); 2 is far from both.
    library = np.array([[0.0, 0.05, 1.0], [0.05, 0.0, 1.0], [1.0, 1.0, 0.0]])
    distances = np.array([[0.30, 0.32, 0.90]])
    v = verdicts(distances, np.array([0]), library)
    assert v.second(radius=0.2) == [0.90]
    assert v.second(radius=0.01) == [0.32]
    rule = VerdictRule(threshold=0.2, ratio_threshold=0.5, reference_distance=0.6)
    # d2 = min(0.90, reference 0.6): ratio 0.30 / 0.6.
    assert v.ratios(rule).tolist() == pytest.approx([0.5])


def _ratio_world() -> Verdicts:
    """Positives far in distance but much nearer their original than anything else; negatives
    about as far from their nearest as from the next."""
    rng = np.random.default_rng(0)
    n = 200
    library_size = 12
    library = np.full((library_size, library_size), 1.0)
    np.fill_diagonal(library, 0.0)
    rows, truths = [], []
    for i in range(n):
        row = rng.uniform(0.8, 1.2, library_size)
        if i < n // 2:
            truth = i % library_size
            row[truth] = rng.uniform(0.1, 0.5)  # d1 up to 0.5, but next distinct >= 0.8
            truths.append(truth)
        else:
            # Two look-alikes, neither a copy: as near as a copy, but the next is just behind.
            near = rng.uniform(0.3, 1.0)
            row[i % library_size] = near
            row[(i + 1) % library_size] = near + rng.uniform(0.0, 0.05)
            truths.append(-1)
        rows.append(row)
    return verdicts(np.asarray(rows), np.asarray(truths), library)


def test_ratio_test_recovers_copies_the_distance_alone_misses() -> None:
    v = _ratio_world()
    distance_only = calibrate_policy(v, ratio_test=False)
    both = calibrate_policy(v)
    assert distance_only.strict.ratio_threshold == 0.0
    assert both.strict.ratio_threshold > 0.0
    assert both.strict.threshold == distance_only.strict.threshold
    plain = scores(v, distance_only)
    better = scores(v, both)
    assert plain["precision"] >= 0.99 and better["precision"] >= 0.99
    assert better["recall"] > plain["recall"] + 0.2
    assert better["balanced_f1"] >= better["f1"]


def test_balanced_rule_is_never_stricter_than_the_strict_one() -> None:
    policy = calibrate_policy(_ratio_world())
    assert policy.balanced is not None
    assert policy.balanced.threshold >= policy.strict.threshold
    assert policy.balanced.ratio_threshold >= policy.strict.ratio_threshold


def test_scores_accept_a_plain_threshold_or_a_policy() -> None:
    v = _v([0.1, 0.2, 0.9], [True, True, False], [True, True, False])
    assert scores(v, 0.5) == scores(v, VerdictPolicy(VerdictRule(0.5)))


def test_query_distances_carry_the_crowding_factor_library_distances_do_not(
    random_model_dir: Path,
) -> None:
    network, meta = load_model_bundle(random_model_dir)
    embedder = Embedder.from_network(network, meta)
    library = [make_photo(i) for i in range(4)]
    queries = [make_photo(i).rotate(5) for i in range(3)]
    background = embedder.embed_images([make_photo(i) for i in range(10, 16)])
    crowding = Crowding(background, k=2, reference=0.7, radius=0.0)
    crowded = Embedder.from_network(network, meta, crowding=crowding)
    method = ModelFingerprinter("model", crowded)
    plain = method.distances(queries, library)
    scaled = method.query_distances(queries, library)
    q = embedder.embed_images(queries)
    nearest = embedder.embed_images(library)[plain.argmin(axis=1)]
    factors = crowding.factors(q, nearest)
    assert not np.allclose(factors, 1.0)
    np.testing.assert_allclose(scaled, plain * factors[:, None], rtol=1e-5)
    # The hashes have no crowding correction.
    phash = hash_fingerprinters()[0]
    np.testing.assert_array_equal(
        phash.query_distances(queries, library), phash.distances(queries, library)
    )
