"""A cross-model plan (`query_model`, docs/upgrade.md): each row reads its sides from the models it names
(`models`: "old" both sides, "new" both sides, the full re-embed, or "cross": new queries against the old
index), the closed-form alignment rows (`kind = "align"`, no training); the report's section on the share of
the full re-embed each row keeps is in reembed_share."""

from __future__ import annotations

import copy

from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.sides import SideVectors
from isoadapt.errors import InputError
from isoadapt.evaluation import evaluate_split, evaluate_sts
from isoadapt.experiment.plan import Plan, PlanEntry
from isoadapt.experiment.seed_result import SeedResult, seed_result
from isoadapt.training.alignment import alignment_head
from isoadapt.training.cross_model import check_distinct, paired_texts
from isoadapt.training.run_folder import write_run
from isoadapt.training.run_metrics import encoder_record


def check_cross_plan(plan: Plan, query_model: str | None, engine_is_local: bool) -> None:
    """A plan with rows on the query model needs one (the plan's or --query_model), and runs here."""
    needs = [e.name for e in plan.entries if e.models != "old"]
    if needs and not query_model:
        raise InputError(
            f"{plan.path}: rows {needs} read a query model: give --query_model NEW or a query_model in the plan"
        )
    if query_model and not engine_is_local:
        raise InputError(f"--query_model {query_model}: a cross-model plan runs with --engine local only")


def open_query_vectors(run, query_encoder) -> None:
    """The query model's vectors of every text of the plan, encoded once, up front; refused when its weights
    are the base model's (an ordinary adapter)."""
    check_distinct(run.encoder, query_encoder)
    run.query_encoder = query_encoder
    run.query_vectors = CachedVectors(query_encoder, run.cache_dir)
    run.query_vectors(run._every_text())


def on_models(run, models: str):
    """The runner as a row on `models` sees it: a shallow copy whose `vectors` (and, for "new", whose encoder
    and base measurements) are those of the sides it reads. "old" is the runner itself."""
    if models == "old":
        return run
    view = copy.copy(run)
    if models == "cross":
        view.vectors = SideVectors(query=run.query_vectors, document=run.vectors)
        view.cross_encoder = run.query_encoder
        return view
    view.encoder, view.vectors = run.query_encoder, run.query_vectors
    view.baseline = {"test": evaluate_split(run.splits["test"], view.vectors)}
    view.base_sts = evaluate_sts(run.sts, view.vectors) if run.sts else None
    view.base_sts_dev = view.sts_dev_of(None)
    return view


def align_row(run, entry: PlanEntry, seed: int | None) -> SeedResult:
    """A closed-form map (training/alignment.py) fitted on paired texts (the training queries and positives,
    or `paired_texts` of them drawn per seed), written as a run folder and scored like every row."""
    count = entry.settings.get("paired_texts")
    texts = paired_texts(run.train[entry.train], count, seed or 0)
    old = run.vectors.document
    head = alignment_head(entry.transform, run.query_vectors(texts), old(texts))
    folder = run.staging / "runs" / entry.name / (f"seed{seed}" if count else "")
    config = {
        "base_model": run.encoder.name,
        "query_model": run.query_encoder.name,
        "encode_backend": run.encoder.backend,
        "kind": "align",
        "transform": entry.transform,
        "adapt": "query",
        "paired_texts": len(texts),
    }
    record = {"encoder": encoder_record(run.encoder), "query_encoder": encoder_record(run.query_encoder)}
    write_run(folder, {"config": config, **record}, head)
    test = evaluate_split(run.splits["test"], run.vectors, head)
    sts = evaluate_sts(run.sts, run.vectors, head) if run.sts else None
    result = seed_result(test, sts=sts, seed=seed, sts_dev=run.sts_dev_of(head), **run.validation(head))
    result.pairs = len(texts)
    return result
