from __future__ import annotations

import random

import numpy as np
import pytest

from fpgui.core.crowding import Crowding
from fpgui.core.verdict import VerdictPolicy, VerdictRule
from tests.conftest import unit_vectors


def unit(rows: int, seed: int) -> np.ndarray:
    return unit_vectors(rows, seed, dim=16)


def test_factor_is_reference_over_the_kth_background_distance() -> None:
    background, queries = unit(50, 0), unit(7, 1)
    crowding = Crowding(background, k=3, reference=0.9, radius=0.0)
    factors = crowding.factors(queries, queries)
    for query, factor in zip(queries, factors, strict=True):
        kth = sorted(float(np.linalg.norm(query - b)) for b in background)[2]
        assert factor == pytest.approx(0.9 / kth, rel=1e-6)


def test_background_twins_of_the_nearest_library_image_are_ignored() -> None:
    background = unit(30, 2)
    protected = background[4] + 0.01  # a library image that is (nearly) background image 4
    query = protected + 0.02
    plain = Crowding(background, k=1, reference=1.0, radius=0.0)
    guarded = Crowding(background, k=1, reference=1.0, radius=0.3)
    # Unguarded, the query's own original in the background makes it look very crowded.
    assert plain.factor(query, protected) > 5
    others = np.delete(background, 4, axis=0)
    nearest_other = min(float(np.linalg.norm(query - b)) for b in others)
    assert guarded.factor(query, protected) == pytest.approx(1.0 / nearest_other, rel=1e-5)


def test_every_background_image_a_twin_leaves_the_distances_alone() -> None:
    background = np.repeat(unit(1, 3), 4, axis=0)
    crowding = Crowding(background, k=2, reference=0.8, radius=0.5)
    assert crowding.factor(background[0], background[0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0, "reference": 1.0, "radius": 0.0},
        {"k": 1, "reference": 0.0, "radius": 0.0},
        {"k": 1, "reference": 1.0, "radius": -1.0},
        {"k": 60, "reference": 1.0, "radius": 0.0},
    ],
)
def test_bad_constants_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Crowding(unit(50, 0), **kwargs)  # type: ignore[arg-type]


def test_scaling_the_thresholds_decides_as_scaling_the_distances() -> None:
    """The app divides the thresholds by the factor; evaluation multiplies the distances."""
    policy = VerdictPolicy(VerdictRule(0.5, 0.6, 1.0), VerdictRule(0.7, 0.8, 1.0))
    rng = random.Random(0)
    for _ in range(2000):
        d1 = rng.uniform(0.0, 1.5)
        d2 = rng.choice([None, d1 + rng.uniform(0.0, 1.0)])
        factor = rng.uniform(0.5, 2.0)
        scaled_d2 = None if d2 is None else d2 * factor
        assert policy.scaled(factor).decide(d1, d2) == policy.decide(d1 * factor, scaled_d2)


def test_a_factor_must_be_positive() -> None:
    with pytest.raises(ValueError):
        VerdictPolicy(VerdictRule(0.5)).scaled(0.0)
