import math

import pytest

from mtl_core.metrics import delta_m, mean_rank


def test_delta_m_by_hand():
    hib = {"miou": True, "abs_err": False}
    base = {"miou": 0.40, "abs_err": 0.50}
    res = {"miou": 0.44, "abs_err": 0.45}
    # miou +10% better -> -10; abs_err 10% lower -> -10; mean -10
    assert delta_m(res, base, hib) == pytest.approx(-10.0)
    assert delta_m(base, base, hib) == 0.0


def test_task_weighted_delta_m_averages_within_tasks_first():
    hib = {"a1": True, "a2": True, "b": False}
    base = {"a1": 1.0, "a2": 1.0, "b": 1.0}
    res = {"a1": 1.1, "a2": 1.1, "b": 1.3}
    metric_weighted = delta_m(res, base, hib)
    task_weighted = delta_m(res, base, hib, tasks={"A": ["a1", "a2"], "B": ["b"]})
    assert metric_weighted == pytest.approx((-10 - 10 + 30) / 3)
    assert task_weighted == pytest.approx((-10 + 30) / 2)


def test_delta_m_bad_input():
    with pytest.raises(ValueError, match="baseline has no value"):
        delta_m({"x": 1.0}, {}, {"x": True})
    with pytest.raises(ValueError, match="finite"):
        delta_m({"x": math.nan}, {"x": 1.0}, {"x": True})
    with pytest.raises(ValueError, match="is 0"):
        delta_m({"x": 1.0}, {"x": 0.0}, {"x": True})


def test_mean_rank_with_ties():
    table = {"a": {"m": 1.0, "e": 0.1}, "b": {"m": 2.0, "e": 0.1}, "c": {"m": 0.5, "e": 0.3}}
    ranks = mean_rank(table, {"m": True, "e": False})
    assert ranks == {"a": (2 + 1.5) / 2, "b": (1 + 1.5) / 2, "c": (3 + 3) / 2}
