"""The experiment report (experiment/report.py): the recommendation reads validation and the STS-B dev
guard only."""

from __future__ import annotations


def test_recommendation_uses_validation_and_the_sts_dev_guard_only():
    """The recommended row is the best mean validation NDCG@10 among rows that keep STS-B dev within the
    tolerance; test NDCG@10 and test STS never enter (scrambling them changes nothing)."""
    from isoadapt.experiment.plan import Plan, PlanEntry
    from isoadapt.experiment.report import recommendations
    from isoadapt.experiment.seed_result import SeedResult

    def result(val, sts_dev, test=0.5, sts=0.8):
        return SeedResult(
            seed=0, test={"ndcg@10": test}, val_ndcg=val, per_query={}, spectrum=[], sts=sts, sts_dev=sts_dev
        )

    plan = Plan(
        "p",
        None,
        [0],
        [
            PlanEntry(n, k, n, "full", None)
            for n, k in (("base", "baseline"), ("a", "train"), ("b", "train"), ("c", "train"), ("w", "posthoc"))
        ],
    )
    results = {
        "base": [result(0.40, 0.80)],
        "a": [result(0.55, 0.75), result(0.56, 0.76)],  # best on validation, but loses STS-B dev
        "b": [result(0.50, 0.795), result(0.52, 0.80)],
        "c": [result(0.49, 0.80, test=0.99)],  # best on test: must not matter
        "w": [result(0.45, 0.80)],
    }
    assert recommendations(plan, results, base_sts_dev=0.80) == {
        "recommended": "b",
        "best_posthoc": "w",
        "best_nudge": None,
    }
    for seeds in results.values():
        for r in seeds:
            r.test, r.sts = {"ndcg@10": 1.0 - r.val_ndcg}, 0.0
    assert recommendations(plan, results, base_sts_dev=0.80)["recommended"] == "b"
    assert recommendations(plan, results, base_sts_dev=None)["recommended"] == "a"  # no STS-B dev: no guard
