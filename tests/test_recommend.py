"""The robust recommendation (experiment/recommend.py): guards on STS-B dev and the shift probes, ties
inside the noise, robustness deciding a tie; validation data only."""

from __future__ import annotations

import numpy as np
import pytest

from isoadapt.experiment.per_use import per_use_section
from isoadapt.experiment.plan import Plan, PlanEntry
from isoadapt.experiment.recommend import candidates, per_use, recommend
from isoadapt.experiment.seed_result import SeedResult

QIDS = [f"q{i}" for i in range(200)]


def result(val, probes, spread=0.0, seed=0, noise=0.0, test=0.5):
    """A seed's result whose per-query validation scores average to `val` (+ `spread` for seed 1)."""
    rng = np.random.default_rng(seed + 7)
    shift = val + (spread if seed == 1 else 0.0)
    per_query = np.clip(shift + noise * rng.standard_normal(len(QIDS)), -5, 5)
    per_query += shift - per_query.mean()
    return SeedResult(
        seed=seed,
        test={"ndcg@10": test},
        val_ndcg=float(per_query.mean()),
        per_query={},
        spectrum=[],
        sts=0.8,
        sts_dev=0.80,
        probes=probes,
        val_per_query=dict(zip(QIDS, per_query.tolist())),
    )


def plan_of(*names):
    entries = [PlanEntry("base", "baseline", "base", "full", None)]
    entries += [PlanEntry(n, "train", n, "full", None) for n in names]
    return Plan("p", None, [0, 1], entries)


BASE = {"style": 0.40, "domain": 0.80}


def test_a_tie_inside_the_seed_spread_goes_to_the_head_that_loses_less_on_the_probes():
    """The mpnet story: the leader wins in-domain by less than its seeds' spread and loses 0.9% on the
    other-domain probe; the sibling started from whitening holds it. The sibling is recommended."""
    plan = plan_of("identity", "whitening")
    results = {
        "base": [result(0.40, BASE)],
        "identity": [result(0.504, {"style": 0.43, "domain": 0.793}, 0.004, s, noise=0.01) for s in (0, 1)],
        "whitening": [result(0.502, {"style": 0.46, "domain": 0.799}, 0.0005, s, noise=0.01) for s in (0, 1)],
    }
    chosen, found = recommend(plan, results, base_sts_dev=0.80)
    assert chosen == "whitening"
    assert "spread" in next(c for c in found if c.name == "whitening").tie


def test_a_lead_beyond_the_noise_wins_when_the_probes_stay_within_the_guard():
    plan = plan_of("strong", "robust")
    results = {
        "base": [result(0.40, BASE)],
        "strong": [result(0.55, {"style": 0.42, "domain": 0.797}, 0.001, s, noise=0.01) for s in (0, 1)],
        "robust": [result(0.50, {"style": 0.46, "domain": 0.80}, 0.001, s, noise=0.01) for s in (0, 1)],
    }
    assert recommend(plan, results, base_sts_dev=0.80)[0] == "strong"


def test_a_margin_the_validation_queries_cannot_resolve_is_a_tie():
    """Seeds agree (no spread), but per-query noise makes a 0.004 margin insignificant: a tie."""
    plan = plan_of("leader", "sibling")
    results = {
        "base": [result(0.40, BASE)],
        "leader": [result(0.504, {"style": 0.41, "domain": 0.795}, 0.0, s, noise=0.3) for s in (0, 1)],
        "sibling": [result(0.500, {"style": 0.46, "domain": 0.80}, 0.0, s + 10, noise=0.3) for s in (0, 1)],
    }
    chosen, found = recommend(plan, results, base_sts_dev=0.80)
    assert chosen == "sibling"
    assert "not significant" in next(c for c in found if c.name == "sibling").tie


@pytest.mark.parametrize(
    "probes, sts_dev, reason",
    [
        ({"style": 0.45, "domain": 0.78}, 0.80, "probe domain -2.5%"),
        ({"style": 0.45}, 0.80, "probe domain not scored"),
        ({"style": 0.45, "domain": 0.80}, 0.78, "STS-B dev -0.020"),
    ],
)
def test_the_guards_refuse_a_head_that_harms_off_home_ground(probes, sts_dev, reason):
    plan = plan_of("harmful", "safe")
    harmful = [result(0.60, probes, 0.0, s) for s in (0, 1)]
    for r in harmful:
        r.sts_dev = sts_dev
    results = {
        "base": [result(0.40, BASE)],
        "harmful": harmful,
        "safe": [result(0.45, {"style": 0.41, "domain": 0.80}, 0.0, s) for s in (0, 1)],
    }
    chosen, found = recommend(plan, results, base_sts_dev=0.80)
    assert chosen == "safe"
    assert reason in next(iter(next(c for c in found if c.name == "harmful").excluded.values()))


def test_test_numbers_never_enter():
    plan = plan_of("a", "b")
    results = {
        "base": [result(0.40, BASE)],
        "a": [result(0.52, {"style": 0.45, "domain": 0.80}, 0.0, s, noise=0.01, test=0.1) for s in (0, 1)],
        "b": [result(0.50, {"style": 0.45, "domain": 0.80}, 0.0, s, noise=0.01, test=0.9) for s in (0, 1)],
    }
    assert recommend(plan, results, base_sts_dev=0.80)[0] == "a"
    assert [c.name for c in candidates(plan, results, 0.80)] == ["a", "b"]


DOCS_BASE = {"style": 0.40, "documents": 0.75}


def test_a_head_losing_over_one_percent_on_documents_as_queries_is_refused_and_named_for_in_domain_use():
    """The MiniLM story: the query-only head leads in-domain beyond the noise but loses 2% when whole
    documents are the queries. The rule refuses it; rule 4 names it for in-domain queries only, with that
    loss as its cost, and the rule's pick for mixed traffic, with the validation NDCG@10 it gives up."""
    plan = plan_of("query-only", "identity")
    results = {
        "base": [result(0.40, DOCS_BASE)],
        "query-only": [result(0.54, {"style": 0.46, "documents": 0.735}, 0.001, s, noise=0.01) for s in (0, 1)],
        "identity": [result(0.52, {"style": 0.45, "documents": 0.748}, 0.001, s, noise=0.01) for s in (0, 1)],
    }
    chosen, found = recommend(plan, results, base_sts_dev=0.80)
    assert chosen == "identity"
    assert next(c for c in found if c.name == "query-only").excluded == {"probe:documents": "probe documents -2.0%"}
    uses = per_use(found)
    assert (uses.in_domain, uses.mixed, uses.one_head) == ("query-only", "identity", False)
    assert uses.in_domain_documents_change == pytest.approx(-2.0)
    assert uses.mixed_val_cost == pytest.approx(0.02)  # both rows' seed 1 sits 0.001 higher: the means differ by 0.02


def test_another_domains_documents_probe_guards_too_and_rule_4_reports_the_worst_documents_probe():
    """The held-out failure: a head gains on in-domain documents as queries (probe_documents) and loses 3% on
    another domain's (probe_news). Both probes guard; blind to both, rule 4 names it for in-domain use, with
    its worst documents probe as its cost."""
    plan = plan_of("query-only", "identity")
    base = {"style": 0.40, "documents": 0.30, "news": 0.70}
    results = {
        "base": [result(0.40, base)],
        "query-only": [
            result(0.54, {"style": 0.46, "documents": 0.33, "news": 0.679}, 0.001, s, noise=0.01) for s in (0, 1)
        ],
        "identity": [
            result(0.52, {"style": 0.45, "documents": 0.32, "news": 0.699}, 0.001, s, noise=0.01) for s in (0, 1)
        ],
    }
    chosen, found = recommend(plan, results, base_sts_dev=0.80)
    assert chosen == "identity"
    assert next(c for c in found if c.name == "query-only").excluded == {"probe:news": "probe news -3.0%"}
    uses = per_use(found)
    assert (uses.in_domain, uses.mixed) == ("query-only", "identity")
    assert uses.in_domain_documents_change == pytest.approx(-3.0)
    assert (uses.probes, uses.worst_probe) == (("documents", "news"), "news")


def test_one_head_serves_both_uses_when_the_leader_holds_documents_as_queries():
    plan = plan_of("query-only", "identity")
    results = {
        "base": [result(0.40, DOCS_BASE)],
        "query-only": [result(0.54, {"style": 0.46, "documents": 0.746}, 0.001, s, noise=0.01) for s in (0, 1)],
        "identity": [result(0.52, {"style": 0.45, "documents": 0.748}, 0.001, s, noise=0.01) for s in (0, 1)],
    }
    chosen, found = recommend(plan, results, base_sts_dev=0.80)
    uses = per_use(found)
    assert chosen == uses.in_domain == uses.mixed == "query-only" and uses.one_head


def test_the_report_names_each_use_with_its_cost_and_says_no_head_serves_both():
    plan = plan_of("query-only", "identity")
    results = {
        "base": [result(0.40, DOCS_BASE)],
        "query-only": [result(0.54, {"style": 0.46, "documents": 0.735}, 0.001, s, noise=0.01) for s in (0, 1)],
        "identity": [result(0.52, {"style": 0.45, "documents": 0.748}, 0.001, s, noise=0.01) for s in (0, 1)],
    }
    found = recommend(plan, results, base_sts_dev=0.80)[1]
    by_name = {"query-only": {"label": "QO", "ndcg@10": 0.55}, "identity": {"label": "ID", "ndcg@10": 0.53}}
    record, lines = per_use_section(found, by_name)
    text = "\n".join(lines)
    assert "no head both leads in-domain and holds the documents-as-queries probe" in text
    assert (
        "In-domain queries only: QO (`query-only`), test NDCG@10 0.5500; its cost: documents as queries -2.0%" in text
    )
    assert "Mixed traffic (queries that may be whole documents): ID (`identity`), test NDCG@10 0.5300" in text
    assert "in-domain validation NDCG@10 -0.0200, test -0.0200" in text
    assert record["one_head"] is False and record["in_domain"] == "query-only"


def test_without_a_documents_probe_the_report_adds_no_per_use_section():
    plan = plan_of("a")
    results = {"base": [result(0.40, BASE)], "a": [result(0.5, BASE, 0.0, s) for s in (0, 1)]}
    assert per_use_section(recommend(plan, results, base_sts_dev=0.80)[1], {}) == (None, [])


def test_ties_are_decided_by_the_verdict_not_by_its_words(monkeypatch):
    """Every standing rendered as 'behind ...' (the word the old rule tested for) changes no decision: the
    rule reads the verdict; the words only describe it."""
    from isoadapt.experiment.recommend import Standing, Verdict

    plan = plan_of("identity", "whitening")
    results = {
        "base": [result(0.40, BASE)],
        "identity": [result(0.504, {"style": 0.43, "domain": 0.793}, 0.004, s, noise=0.01) for s in (0, 1)],
        "whitening": [result(0.502, {"style": 0.46, "domain": 0.799}, 0.0005, s, noise=0.01) for s in (0, 1)],
    }
    chosen, found = recommend(plan, results, base_sts_dev=0.80)
    verdicts = {c.name: c.standing.verdict for c in found}
    assert chosen == "whitening" and verdicts == {"identity": Verdict.LEADER, "whitening": Verdict.WITHIN_SPREAD}
    monkeypatch.setattr(Standing, "words", lambda self: "behind the leader, whatever happened")
    assert recommend(plan, results, base_sts_dev=0.80)[0] == "whitening"


def test_each_verdict_renders_its_numbers():
    from isoadapt.experiment.recommend import Standing, Verdict

    assert Standing(Verdict.LEADER).words() == "leader on in-domain validation"
    assert Standing(Verdict.WITHIN_SPREAD, 0.002, 0.004).words() == "margin 0.0020 within the seeds' spread 0.0040"
    assert (
        Standing(Verdict.NOT_SIGNIFICANT, 0.004, 0.0, 0.31).words()
        == "margin 0.0040 not significant on validation (paired p = 0.31)"
    )
    assert Standing(Verdict.BEHIND, 0.05, 0.0, 1e-6).words() == "behind the leader by 0.0500, beyond the noise"
    assert [Standing(v).tied for v in Verdict] == [False, True, True, False]


def test_the_seed_spread_that_ties_is_max_minus_min_over_seeds():
    """Seeds 0.500/0.504 (spread 0.004, by hand) against a rival at 0.4995 with one seed (spread 0): the
    leader's mean 0.502 is 0.0025 ahead, inside 0.004: a tie; at 0.497 (0.005 behind) it is not."""
    plan = plan_of("leader", "rival")
    for rival, verdict in ((0.4995, "within_spread"), (0.497, "behind")):
        results = {
            "base": [result(0.40, BASE)],
            "leader": [result(0.500, BASE, 0.004, s, noise=0.001) for s in (0, 1)],
            "rival": [result(rival, BASE, 0.0, 5, noise=0.001)],
        }
        found = {c.name: c for c in recommend(plan, results, base_sts_dev=0.80)[1]}
        assert found["leader"].val_spread == pytest.approx(0.004)
        assert found["rival"].standing.verdict == verdict


def test_when_no_row_passes_the_guards_the_report_says_none_and_shows_what_each_failed():
    from isoadapt.experiment.report import none_eligible_lines

    plan = plan_of("harmful")
    results = {
        "base": [result(0.40, BASE)],
        "harmful": [result(0.5, {"style": 0.30, "domain": 0.80}, 0.0, s) for s in (0, 1)],
    }
    assert recommend(plan, results, base_sts_dev=0.80)[0] is None
    by_name = {"base": {"label": "base", "kind": "baseline", "val_ndcg@10": 0.40, "probes": BASE}}
    by_name["harmful"] = {"label": "harmful head", "kind": "train"}
    text = "\n".join(none_eligible_lines(plan, results, by_name, 0.80))
    assert "**None**: no trained row passes the rule's guards" in text
    assert "| harmful head | 0.5000 (0.0000) |" in text and "not eligible: probe style -25.0%" in text
