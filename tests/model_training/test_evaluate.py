from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from model_training.evaluate import (
    Verdicts,
    build_eval_data,
    calibrate_threshold,
    evaluate_all,
    hash_fingerprinters,
    make_queries,
    scores,
    verdicts,
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
    data = build_eval_data(images, images, seed=0, runs=2, queries=12, per_modification=1)
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
