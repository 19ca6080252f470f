"""Which trained row the report recommends, read off validation data only (test only reports).

A user adopts a head for tomorrow's queries, not for our dev split, so the rule weighs robustness:

1. **Guards.** A trained row is eligible when its mean STS-B **dev** Spearman stays within STS_TOLERANCE of
   the base model's, and its mean NDCG@10 on every shift probe (validation-only query sets of another style
   or domain) stays within PROBE_TOLERANCE (relative) of the base model's: do no harm off home ground.
2. **Ties.** The leader is the eligible row with the best mean in-domain validation NDCG@10. Another eligible
   row ties with it when the margin is inside the noise: smaller than either row's seed spread (`spread.py`:
   max - min over seeds), or not significant on the validation queries (paired t-test of per-query NDCG@10, each side
   averaged over its seeds, p >= TIE_P). A margin the validation set cannot resolve decides nothing.
3. **Robustness decides a tie.** Among the tied rows, the one with the smallest worst-case loss on the
   probes (the highest minimum relative change against the base model) wins; in-domain validation breaks
   what is left.
4. **One head per use, when one cannot serve both.** The same rule run blind to the documents-as-queries
   probes (`DOCUMENT_PROBES`: in-domain and another domain's) names the head for in-domain queries only; the
   rule itself names the head for mixed traffic (queries that may be whole documents). When they differ, no
   head both leads in-domain and holds those probes, and each comes with its measured cost (`per_use`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
from scipy.stats import ttest_rel

from isoadapt.data.layout import DOCUMENT_PROBES
from isoadapt.experiment.plan import Plan
from isoadapt.experiment.spread import seed_spread
from isoadapt.metrics.retrieval import percent_change

STS_TOLERANCE = 0.01  # STS-B dev Spearman a recommended head may lose against the base model
PROBE_TOLERANCE = 0.01  # relative NDCG@10 a recommended head may lose on any probe against the base model
TIE_P = 0.05  # a validation margin with a larger paired p-value is a tie


class Verdict(StrEnum):
    """Where a row stands against the leader: what the rule decides on (never the words shown)."""

    LEADER = "leader"
    WITHIN_SPREAD = "within_spread"  # tied: the margin is inside either row's seed spread
    NOT_SIGNIFICANT = "not_significant"  # tied: the validation queries cannot resolve the margin
    BEHIND = "behind"  # behind the leader beyond the noise


@dataclass(frozen=True)
class Standing:
    """A verdict and the numbers behind it; `words` renders it for the report."""

    verdict: Verdict
    margin: float = 0.0  # leader's mean validation NDCG@10 minus this row's
    spread: float = 0.0  # the larger of the two rows' seed spreads
    p: float | None = None  # paired p-value on the validation queries, where it was computed

    @property
    def tied(self) -> bool:
        return self.verdict in (Verdict.WITHIN_SPREAD, Verdict.NOT_SIGNIFICANT)

    def words(self) -> str:
        if self.verdict is Verdict.LEADER:
            return "leader on in-domain validation"
        if self.verdict is Verdict.WITHIN_SPREAD:
            return f"margin {self.margin:.4f} within the seeds' spread {self.spread:.4f}"
        if self.verdict is Verdict.NOT_SIGNIFICANT:
            return f"margin {self.margin:.4f} not significant on validation (paired p = {self.p:.2f})"
        return f"behind the leader by {self.margin:.4f}, beyond the noise"


@dataclass
class Candidate:
    """One trained row as the rule sees it: means over seeds of validation-only numbers."""

    name: str
    val: float
    val_spread: float  # seed spread (spread.py) of validation NDCG@10
    val_per_query: dict[str, float]  # mean over seeds
    probes: dict[str, float | None]
    probe_change: dict[str, float | None]  # % against the base model
    sts_dev: float | None
    # why the guards refused it (empty: eligible): guard -> words; the guard is "sts_dev" or "probe:<name>"
    excluded: dict[str, str] = field(default_factory=dict)
    standing: Standing | None = None  # how it compares with the leader (None: not eligible)

    @property
    def tie(self) -> str:
        """The standing in words, as the report shows it."""
        return self.standing.words() if self.standing else ""

    @property
    def worst_probe(self) -> float:
        changes = [c for c in self.probe_change.values() if c is not None]
        return min(changes) if changes else 0.0


def probe_guard(probe: str) -> str:
    """The key of a probe's guard in `Candidate.excluded` (decisions read keys, never the words)."""
    return f"probe:{probe}"


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def mean_probes(seeds: list) -> dict[str, float | None]:
    """Mean probe NDCG@10 over seeds; None where a seed has no score (a probe it could not be scored on)."""
    names = list(dict.fromkeys(n for r in seeds for n in r.probes))
    return {
        n: None if any(r.probes.get(n) is None for r in seeds) else _mean([r.probes[n] for r in seeds]) for n in names
    }


def _candidate(name: str, seeds: list, base, base_sts_dev: float | None) -> Candidate:
    vals = [r.val_ndcg for r in seeds if r.val_ndcg is not None]
    qids = sorted(seeds[0].val_per_query)
    per_query = {q: float(np.mean([r.val_per_query.get(q, 0.0) for r in seeds])) for q in qids}
    probes = mean_probes(seeds)
    base_probes = mean_probes([base]) if base else {}
    change = {
        n: percent_change(v, base_probes[n]) if v is not None and base_probes.get(n) else None
        for n, v in probes.items()
    }
    sts_dev = _mean([r.sts_dev for r in seeds]) if all(r.sts_dev is not None for r in seeds) else None
    found = Candidate(
        name,
        float(np.mean(vals)) if vals else float("-inf"),
        seed_spread(vals),
        per_query,
        probes,
        change,
        sts_dev,
    )
    if base_sts_dev is not None and (sts_dev is None or base_sts_dev - sts_dev > STS_TOLERANCE):
        found.excluded["sts_dev"] = (
            "STS-B dev not checked" if sts_dev is None else f"STS-B dev {sts_dev - base_sts_dev:+.3f} Spearman"
        )
    for probe in base_probes:
        value = change.get(probe)
        if value is None:
            found.excluded[probe_guard(probe)] = f"probe {probe} not scored"
        elif value < -100 * PROBE_TOLERANCE:
            found.excluded[probe_guard(probe)] = f"probe {probe} {value:+.1f}%"
    return found


def paired_val_p(a: Candidate, b: Candidate) -> float | None:
    """Paired t-test of per-query validation NDCG@10 (1.0 when identical; None when not recorded)."""
    qids = sorted(set(a.val_per_query) & set(b.val_per_query))
    if not qids:
        return None
    x, y = [a.val_per_query[q] for q in qids], [b.val_per_query[q] for q in qids]
    return 1.0 if np.allclose(x, y) else float(ttest_rel(x, y).pvalue)


def _standing(leader: Candidate, other: Candidate) -> Standing:
    """Whether `other` ties with the leader (within the seeds' spread, or not significant), or is behind."""
    margin = leader.val - other.val
    spread = max(leader.val_spread, other.val_spread)
    if margin <= spread:
        return Standing(Verdict.WITHIN_SPREAD, margin, spread)
    p = paired_val_p(leader, other)
    if p is not None and p >= TIE_P:
        return Standing(Verdict.NOT_SIGNIFICANT, margin, spread, p)
    return Standing(Verdict.BEHIND, margin, spread, p)


def candidates(plan: Plan, results: dict, base_sts_dev: float | None) -> list[Candidate]:
    base_entry = next((e for e in plan.entries if e.kind == "baseline"), None)
    base = results[base_entry.name][0] if base_entry and base_entry.name in results else None
    names = [e.name for e in plan.entries if e.kind == "train" and e.name in results]
    return [_candidate(n, results[n], base, base_sts_dev) for n in names]


def choose(found: list[Candidate]) -> Candidate | None:
    """Apply the rule (module docstring) to the candidates; sets each eligible one's `standing`."""
    eligible = [c for c in found if not c.excluded]
    if not eligible:
        return None
    leader = max(eligible, key=lambda c: c.val)
    leader.standing = Standing(Verdict.LEADER)
    for other in eligible:
        if other is not leader:
            other.standing = _standing(leader, other)
    tied = [c for c in eligible if c is leader or c.standing.tied]
    return max(tied, key=lambda c: (round(c.worst_probe, 6), c.val))


def recommend(plan: Plan, results: dict, base_sts_dev: float | None) -> tuple[str | None, list[Candidate]]:
    found = candidates(plan, results, base_sts_dev)
    chosen = choose(found)
    return (chosen.name if chosen else None), found


@dataclass
class PerUse:
    """Rule 4: the head for in-domain queries only and the head for mixed traffic, each with its cost."""

    in_domain: str | None  # the rule blind to the documents-as-queries probes
    mixed: str | None  # the rule itself (every probe held)
    in_domain_documents_change: float | None  # % NDCG@10 the in-domain head moves on its worst documents probe
    mixed_val_cost: float | None  # in-domain validation NDCG@10 the mixed-traffic head gives up (absolute)
    probes: tuple[str, ...] = ()  # the documents-as-queries probes the rows were scored on
    worst_probe: str | None = None  # the in-domain head's worst of them

    @property
    def one_head(self) -> bool:
        return self.in_domain is not None and self.in_domain == self.mixed


def _blind_to_documents(c: Candidate) -> Candidate:
    """The candidate as the rule would see it without the documents-as-queries probes."""
    changes = {n: v for n, v in c.probe_change.items() if n not in DOCUMENT_PROBES}
    blind = {probe_guard(p) for p in DOCUMENT_PROBES}
    excluded = {guard: words for guard, words in c.excluded.items() if guard not in blind}
    return replace(c, probe_change=changes, excluded=excluded)


def _worst_documents_probe(c: Candidate) -> str | None:
    """The documents-as-queries probe the candidate loses most on (of those it was scored on)."""
    scored = [p for p in DOCUMENT_PROBES if c.probe_change.get(p) is not None]
    return min(scored, key=lambda p: c.probe_change[p]) if scored else None


def per_use(found: list[Candidate]) -> PerUse | None:
    """Rule 4 (module docstring); None when no row was scored on a documents-as-queries probe."""
    probes = tuple(p for p in DOCUMENT_PROBES if any(p in c.probe_change for c in found))
    if not probes:
        return None
    mixed = choose([replace(c) for c in found])
    in_domain = choose([_blind_to_documents(c) for c in found])
    by_name = {c.name: c for c in found}
    home = by_name[in_domain.name] if in_domain else None
    worst = _worst_documents_probe(home) if home else None
    return PerUse(
        in_domain=home.name if home else None,
        mixed=mixed.name if mixed else None,
        in_domain_documents_change=home.probe_change[worst] if worst else None,
        mixed_val_cost=home.val - mixed.val if home and mixed else None,
        probes=probes,
        worst_probe=worst,
    )
