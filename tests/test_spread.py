"""The one definition of the seeds' spread (experiment/spread.py): max - min over seeds, checked by hand,
and the report's rows carry it."""

from __future__ import annotations

import pytest

from isoadapt.experiment.spread import seed_spread


@pytest.mark.parametrize(
    "values, spread",
    [
        ([0.5123, 0.5098, 0.5141], 0.0043),  # 0.5141 - 0.5098
        ([0.5, 0.5], 0.0),
        ([0.42], 0.0),  # one seed: no spread to measure
        ([], 0.0),
        ([0.30, None, 0.33], 0.03),  # a seed without the value is left out
    ],
)
def test_the_spread_is_the_range_over_seeds(values, spread):
    assert seed_spread(values) == pytest.approx(spread, abs=1e-12)


def test_the_spread_is_not_the_standard_deviation():
    """Three seeds 0.50, 0.51, 0.53: range 0.03, sample std 0.0153, population std 0.0125."""
    assert seed_spread([0.50, 0.51, 0.53]) == pytest.approx(0.03)


def test_report_rows_carry_the_spread_of_test_and_validation_ndcg():
    from isoadapt.experiment.plan import Plan, PlanEntry
    from isoadapt.experiment.report import summarise
    from isoadapt.experiment.seed_result import SeedResult

    def result(seed, test, val):
        return SeedResult(seed, {"ndcg@10": test}, val, {"q": test}, [], None)

    plan = Plan("p", None, [0, 1, 2], [PlanEntry("a", "train", "a", "full", None)])
    rows = summarise(plan, {"a": [result(0, 0.51, 0.60), result(1, 0.54, 0.61), result(2, 0.52, 0.65)]}, None)
    assert rows[0]["ndcg@10_spread"] == pytest.approx(0.03)
    assert rows[0]["val_ndcg@10_spread"] == pytest.approx(0.05)


def test_the_tables_mean_and_std_by_hand():
    from isoadapt.experiment.spread import mean_std

    mean, std = mean_std([0.50, 0.51, 0.53])
    assert mean == pytest.approx(0.5133333) and std == pytest.approx(0.0152753, rel=1e-5)  # sample std, ddof 1
    assert mean_std([0.4]) == (0.4, 0.0)
