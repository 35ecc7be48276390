"""The copy verdict from a query's distances to its nearest library images.

Two signals decide it, both calibrated on validation queries and stored in the model's metadata:

* the **distance** ``d1`` to the nearest library image: a copy when ``d1 < threshold``;
* the **ratio** ``d1 / d2``, where ``d2`` is the distance to the nearest library image that is *not*
  a near-duplicate of the nearest one (their own distance is at least ``threshold``), capped at
  ``reference_distance`` (the typical nearest distance of an unrelated image). A modified copy is
  much nearer its original than anything else, even when heavy edits push ``d1`` up; an unrelated
  image is about as far from its nearest as from the next. The cap keeps a tiny library (where
  ``d2`` may be huge or missing) from turning any distance into a small ratio.

A query is a **copy** when either signal says so at the strict setting (calibrated for 99%
precision), a **possible copy** when either says so at the balanced setting (the best F1 on
validation), and otherwise **no match**. Models without ratio calibration (``ratio_threshold`` 0)
use the distance alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    COPY = "copy"
    POSSIBLE = "possible"
    NO_MATCH = "none"


@dataclass(frozen=True)
class VerdictRule:
    """Thresholds of one operating point; ``ratio_threshold`` 0 turns the ratio test off."""

    threshold: float
    ratio_threshold: float = 0.0
    reference_distance: float = 0.0

    def scaled(self, factor: float) -> VerdictRule:
        """The rule for distances multiplied by ``factor`` (crowding, see core/crowding.py),
        expressed on the true distances: the distance limits divided by ``factor``; the ratio,
        which the factor leaves unchanged, keeps its threshold."""
        return VerdictRule(
            self.threshold / factor, self.ratio_threshold, self.reference_distance / factor
        )

    def ratio(self, nearest: float, second: float | None) -> float:
        """``d1 / min(d2, reference_distance)``; ``second`` None means no distinct second image."""
        cap = self.reference_distance if self.reference_distance > 0 else math.inf
        denominator = min(second if second is not None else math.inf, cap)
        if math.isinf(denominator):
            return math.inf
        return nearest / max(denominator, 1e-9)

    def says_copy(self, nearest: float, second: float | None) -> bool:
        if nearest < self.threshold:
            return True
        return self.ratio_threshold > 0 and self.ratio(nearest, second) < self.ratio_threshold


@dataclass(frozen=True)
class VerdictPolicy:
    """The strict rule (``copy``) and the looser balanced one (``possible``)."""

    strict: VerdictRule
    balanced: VerdictRule | None = None

    def scaled(self, factor: float) -> VerdictPolicy:
        """Both rules for one query whose crowding factor is ``factor``."""
        if factor <= 0 or not math.isfinite(factor):
            raise ValueError(f"a crowding factor must be positive and finite, not {factor}")
        balanced = None if self.balanced is None else self.balanced.scaled(factor)
        return VerdictPolicy(self.strict.scaled(factor), balanced)

    def decide(self, nearest: float | None, second: float | None) -> Verdict:
        if nearest is None:
            return Verdict.NO_MATCH
        if self.strict.says_copy(nearest, second):
            return Verdict.COPY
        if self.balanced is not None and self.balanced.says_copy(nearest, second):
            return Verdict.POSSIBLE
        return Verdict.NO_MATCH


def second_distinct(
    distances: Sequence[float], distances_to_nearest: Sequence[float], radius: float
) -> float | None:
    """``d2``: the query's distance to the nearest neighbour that is not a near-duplicate of the
    nearest one.

    ``distances`` are the query's distances to its neighbours in ascending order (the first is the
    nearest); ``distances_to_nearest`` are each neighbour's distances to that nearest neighbour.
    Neighbours closer than ``radius`` to the nearest are its near-duplicates and are skipped. None
    when every listed neighbour is a near-duplicate (the caller may have asked for too few).
    """
    for distance, apart in zip(distances[1:], distances_to_nearest[1:], strict=True):
        if apart >= radius:
            return float(distance)
    return None
