"""The rows of a plan that train nothing by gradient: the base model, a post-hoc transform (fitted on the
training texts, written as a run folder with its head), and NUDGE (document vectors moved)."""

from __future__ import annotations

from isoadapt.errors import InputError
from isoadapt.evaluation import evaluate_split, evaluate_sts
from isoadapt.experiment.nudge import SIMILARITY, nudge_documents, split_answers, training_answers
from isoadapt.experiment.plan import PlanEntry
from isoadapt.experiment.plan_inputs import PlanInputs
from isoadapt.experiment.seed_result import SeedResult, seed_result
from isoadapt.posthoc import fit_posthoc
from isoadapt.training.run_folder import write_run


def baseline_row(run: PlanInputs, entry: PlanEntry, seed: int | None) -> SeedResult:
    return seed_result(run.baseline["test"], sts=run.base_sts, seed=None, sts_dev=run.base_sts_dev, **run.validation())


def posthoc_row(run: PlanInputs, entry: PlanEntry, seed: int | None) -> SeedResult:
    texts = list(dict.fromkeys(t for e in run.train[entry.train] for t in (e.query, e.positive, e.negative) if t))
    head = fit_posthoc(entry.transform, run.vectors(texts), **entry.options)  # training texts only
    folder = run.staging / "runs" / entry.name
    config = {"base_model": run.encoder.name, "encode_backend": run.encoder.backend, "kind": "posthoc"}
    config = {**config, "transform": entry.transform, **entry.options}
    encoder = {**run.encoder.identity, "prompts": run.encoder.prompts.as_dict()}
    write_run(folder, {"config": config, "encoder": encoder}, head)
    test = evaluate_split(run.splits["test"], run.vectors, head)
    sts = evaluate_sts(run.sts, run.vectors, head) if run.sts else None
    return seed_result(test, sts=sts, seed=None, sts_dev=run.sts_dev_of(head), **run.validation(head))


def nudge_row(run: PlanInputs, entry: PlanEntry, seed: int | None) -> SeedResult:
    """NUDGE moves the stored document vectors of the evaluation corpus (dev and test share it here)."""
    corpus = run.splits["test"].corpus
    doc_ids = list(corpus)
    if doc_ids != list(run.splits["val"].corpus):
        raise InputError(f"{run.plan.path}: config {entry.name!r}: NUDGE needs dev and test to share one corpus")
    pairs = run.pairs_of(entry, seed)
    queries, answers = training_answers(pairs, doc_ids, corpus)
    val_ids, val_answers = split_answers(run.splits["val"], doc_ids)
    val_queries = run.vectors([run.splits["val"].queries[q] for q in val_ids])
    tuned = nudge_documents(
        entry.transform,
        run.vectors([corpus[d] for d in doc_ids]),
        run.vectors(queries),
        answers,
        val_queries,
        val_answers,
    )
    similarity = SIMILARITY[entry.transform]
    test = evaluate_split(run.splits["test"], run.vectors, documents=tuned, similarity=similarity)
    return seed_result(test, sts=None, seed=seed, pairs=len(pairs), **run.validation(None, tuned, similarity))
