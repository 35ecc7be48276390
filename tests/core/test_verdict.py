"""The verdict rules: each signal, the reference cap, both levels, and d2 past near-duplicates."""

from __future__ import annotations

import math

import pytest

from fpgui.core.model_files import ModelMetadata
from fpgui.core.verdict import Verdict, VerdictPolicy, VerdictRule, second_distinct


def test_distance_alone_when_the_ratio_is_not_calibrated() -> None:
    rule = VerdictRule(threshold=0.2)
    assert rule.says_copy(0.19, 0.9)
    assert not rule.says_copy(0.2, 0.9)  # strictly below the threshold
    assert not rule.says_copy(0.3, 10.0)  # a tiny ratio (0.03) does not count: ratio test off


def test_ratio_makes_a_far_nearest_a_copy() -> None:
    rule = VerdictRule(threshold=0.2, ratio_threshold=0.5, reference_distance=1.0)
    assert rule.ratio(0.3, 0.75) == pytest.approx(0.4)
    assert rule.says_copy(0.3, 0.75)  # d1 above the threshold, ratio 0.4 < 0.5
    assert not rule.says_copy(0.3, 0.6)  # ratio 0.5 is not below 0.5
    assert not rule.says_copy(0.3, 0.5)  # ratio 0.6


def test_reference_distance_caps_d2() -> None:
    rule = VerdictRule(threshold=0.2, ratio_threshold=0.5, reference_distance=0.4)
    # d2 = 1.5 in a tiny library would give 0.2; capped at 0.4 it gives 0.75: no copy.
    assert rule.ratio(0.3, 1.5) == pytest.approx(0.75)
    assert not rule.says_copy(0.3, 1.5)
    # Without a distinct second image the cap is the denominator.
    assert rule.ratio(0.3, None) == pytest.approx(0.75)
    assert rule.ratio(0.1, None) == pytest.approx(0.25)
    assert rule.says_copy(0.19, None)


def test_ratio_without_cap_or_second_is_infinite() -> None:
    rule = VerdictRule(threshold=0.2, ratio_threshold=0.5)
    assert math.isinf(rule.ratio(0.3, None))
    assert not rule.says_copy(0.3, None)
    assert rule.ratio(0.3, 0.6) == pytest.approx(0.5)  # no cap: d2 itself


def test_policy_levels() -> None:
    strict = VerdictRule(threshold=0.2, ratio_threshold=0.4, reference_distance=1.0)
    balanced = VerdictRule(threshold=0.3, ratio_threshold=0.6, reference_distance=1.0)
    policy = VerdictPolicy(strict, balanced)
    assert policy.decide(None, None) is Verdict.NO_MATCH  # empty library
    assert policy.decide(0.1, 0.2) is Verdict.COPY  # distance (ratio 0.5 alone would not be)
    assert policy.decide(0.35, 1.0) is Verdict.COPY  # ratio 0.35 < 0.4
    assert policy.decide(0.25, 0.5) is Verdict.POSSIBLE  # distance 0.25 < 0.3, ratio 0.5
    assert policy.decide(0.5, 1.0) is Verdict.POSSIBLE  # ratio 0.5 < 0.6, distance above both
    assert policy.decide(0.5, 0.7) is Verdict.NO_MATCH  # ratio 0.71
    assert VerdictPolicy(strict).decide(0.25, 0.5) is Verdict.NO_MATCH  # no balanced rule
    assert [v.value for v in Verdict] == ["copy", "possible", "none"]


def test_uncalibrated_metadata_gives_the_plain_threshold() -> None:
    meta = ModelMetadata(name="m", version="1", threshold=0.21)
    assert meta.verdict_policy() == VerdictPolicy(VerdictRule(0.21, 0.0, 0.0), None)
    assert meta.verdict_policy(0.3).strict == VerdictRule(0.3, 0.0, 0.0)


def test_calibrated_metadata_builds_both_rules() -> None:
    meta = ModelMetadata(
        name="m", version="1", threshold=0.21, ratio_threshold=0.42, reference_distance=0.8,
        possible_threshold=0.28, possible_ratio_threshold=0.55,
    )  # fmt: skip
    assert meta.verdict_policy() == VerdictPolicy(
        VerdictRule(0.21, 0.42, 0.8), VerdictRule(0.28, 0.55, 0.8)
    )
    # An override above the possible threshold lifts the balanced one with it.
    assert meta.verdict_policy(0.3).balanced == VerdictRule(0.3, 0.55, 0.8)


def test_second_distinct_skips_near_duplicates_of_the_nearest() -> None:
    # Neighbours 2 and 3 are the nearest one at other sizes (0.01 and 0.05 from it).
    distances = [0.10, 0.11, 0.12, 0.40, 0.45]
    apart = [0.0, 0.01, 0.05, 0.35, 0.50]
    assert second_distinct(distances, apart, radius=0.2) == pytest.approx(0.40)
    assert second_distinct(distances, apart, radius=0.04) == pytest.approx(0.12)
    assert second_distinct(distances, apart, radius=0.01) == pytest.approx(0.11)  # >= radius


def test_second_distinct_is_none_when_all_are_near_duplicates() -> None:
    assert second_distinct([0.1, 0.12], [0.0, 0.01], radius=0.2) is None
    assert second_distinct([0.1], [0.0], radius=0.2) is None
    assert second_distinct([], [], radius=0.2) is None
