"""One (configuration, seed) of a plan as the report reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

from isoadapt.evaluation import Evaluation


@dataclass
class SeedResult:
    """What the report needs from one (configuration, seed). `val_ndcg` is what selection saw (the selected
    state's validation NDCG@10); test numbers are of that selected state only."""

    seed: int | None
    test: dict
    val_ndcg: float | None
    per_query: dict[str, float]
    spectrum: list[float]
    sts: float | None
    sts_dev: float | None = None  # STS-B dev Spearman: the guard that selection may use (test STS only reports)
    probes: dict[str, float | None] = field(default_factory=dict)  # shift probe -> NDCG@10 (validation only)
    val_per_query: dict[str, float] = field(default_factory=dict)  # validation NDCG@10 per query: paired ties
    pairs: int | None = None  # labelled pairs it learned from (trained and NUDGE rows)
    history: list[dict] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    collapsed: bool = False
    collapse_reasons: list[str] = field(default_factory=list)
    reused: bool = False
    seconds: float = 0.0


def seed_result(test: Evaluation, val_ndcg: float | None = None, sts: float | None = None, **extra) -> SeedResult:
    """A SeedResult from the test evaluation of one state, plus what the row adds."""
    return SeedResult(
        test=test.metrics,
        val_ndcg=val_ndcg,
        per_query=test.per_query,
        spectrum=[float(x) for x in test.spectrum],
        sts=sts,
        **extra,
    )
