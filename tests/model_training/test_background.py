from __future__ import annotations

import numpy as np
import pytest

from model_training.background import fit_crowding
from tests.conftest import unit_vectors


def unit(rows: int, seed: int) -> np.ndarray:
    return unit_vectors(rows, seed, dim=8)


def test_reference_is_the_median_kth_background_distance_of_the_calibration_queries() -> None:
    background, queries = unit(40, 0), unit(9, 1)
    crowding = fit_crowding(background, queries, plain_threshold=0.6, k=3)
    assert crowding is not None
    stored = background.astype(np.float16).astype(np.float64)  # what the bundle will hold
    kth = [sorted(np.linalg.norm(stored - q, axis=1))[2] for q in queries.astype(np.float64)]
    assert crowding.reference == pytest.approx(float(np.median(kth)), rel=1e-5)
    assert crowding.radius == pytest.approx(0.3) and crowding.k == 3
    assert np.array_equal(crowding.background, stored.astype(np.float32))
    # A typical query keeps its distances: the median factor is 1. (Nearest library image at the
    # origin: 1 from every background image, beyond the radius, so none is skipped.)
    origin = np.zeros_like(queries)
    assert float(np.median(crowding.factors(queries, origin))) == pytest.approx(1.0, rel=1e-4)


def test_too_small_a_background_gives_no_correction() -> None:
    assert fit_crowding(unit(2, 0), unit(5, 1), plain_threshold=0.5, k=3) is None
    assert fit_crowding(unit(20, 0), unit(0, 1), plain_threshold=0.5, k=3) is None
