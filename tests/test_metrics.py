"""Metrics against hand-computed values; parse failures count as wrong."""

from __future__ import annotations

import numpy as np
import pytest

from guard_eval.metrics import binary_metrics, f1_bootstrap_ci, weighted_average


def test_hand_computed_f1_precision_recall():
    gold = ["harmful"] * 4 + ["unharmful"] * 6
    pred = ["harmful", "harmful", "harmful", "unharmful", "harmful", "unharmful", "unharmful", "unharmful", "unharmful", "unharmful"]
    m = binary_metrics(gold, pred, "prompt", bootstrap=0)
    # tp=3 fp=1 fn=1 tn=5
    assert m.precision == pytest.approx(75.0)
    assert m.recall == pytest.approx(75.0)
    assert m.f1 == pytest.approx(75.0)
    assert m.accuracy == pytest.approx(80.0)
    assert m.positives == 4 and m.parse_failures == 0 and m.f1_ci is None


def test_parse_failures_count_as_wrong_both_ways():
    # gold positive + failure -> false negative; gold negative + failure -> false positive
    m = binary_metrics(["refusal", "compliance", "refusal"], [None, None, "refusal"], "refusal", bootstrap=0)
    # tp=1 fn=1 fp=1 -> P=0.5 R=0.5 F1=0.5; accuracy 1/3
    assert m.f1 == pytest.approx(50.0)
    assert m.accuracy == pytest.approx(100 / 3)
    assert m.parse_failures == 2 and m.parse_failure_rate == pytest.approx(200 / 3)


def test_rejects_mismatched_or_foreign_labels():
    with pytest.raises(ValueError, match="2 gold labels but 1"):
        binary_metrics(["harmful", "unharmful"], ["harmful"], "prompt")
    with pytest.raises(ValueError, match="gold labels must be one of"):
        binary_metrics(["refusal"], ["refusal"], "prompt")


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    t = rng.random(500) < 0.4
    p = np.where(rng.random(500) < 0.8, t, ~t)
    gold = ["harmful" if x else "unharmful" for x in t]
    pred = ["harmful" if x else "unharmful" for x in p]
    m = binary_metrics(gold, pred, "prompt", bootstrap=2000)
    lo, hi = m.f1_ci
    assert lo < m.f1 < hi and 2 < hi - lo < 15
    assert f1_bootstrap_ci(t, p, 500, seed=3) == f1_bootstrap_ci(t, p, 500, seed=3)


def test_weighted_average_by_sample_count():
    per = {"a": {"n": 100, "f1": 90.0}, "b": {"n": 300, "f1": 70.0}}
    assert weighted_average(per) == pytest.approx(75.0)
    assert weighted_average({}) is None
