"""`isoadapt evaluate`: score a finished run's head on any processed split, next to its base model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from isoadapt.data.formats import EvalSet, StsPairs, check_texts_are_real, load_eval, load_sts
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.sides import SideVectors
from isoadapt.errors import InputError
from isoadapt.evaluation import (
    VectorSource,
    change_pct,
    evaluate_split,
    evaluate_sts,
    format_comparison,
    format_sts,
)
from isoadapt.fileio import read_json
from isoadapt.owned_folders import check_output_file, check_replaceable
from isoadapt.training.run_folder import OpenedRun

EVALUATION_KIND = "isoadapt-evaluation"  # marks an --output file as ours, so a later run may replace it


def check_evaluation_output(output: Path) -> None:
    """--output may replace an earlier evaluation, never another file (a dataset, a config)."""
    check_output_file(output, "--output")
    if not output.exists():
        return
    try:
        kind = read_json(output).get("kind")
    except (InputError, AttributeError):
        kind = None
    check_replaceable(f"--output {output}", kind, EVALUATION_KIND, "an evaluation")


def score_head(
    split: EvalSet, base_vectors: VectorSource, trained_vectors: VectorSource, head, sts: StsPairs | None = None
) -> dict:
    """Baseline and head on one split (and STS pairs): the metrics part of an evaluation."""
    baseline = evaluate_split(split, base_vectors).metrics
    trained = evaluate_split(split, trained_vectors, head).metrics
    result = {"baseline": baseline, "trained": trained, "change_pct": change_pct(baseline, trained)}
    if sts:
        result["sts_spearman"] = {
            "baseline": evaluate_sts(sts, base_vectors),
            "trained": evaluate_sts(sts, trained_vectors, head),
        }
    return result


def evaluate_run(
    run: OpenedRun, data: Path, cache_dir: Path, sts_data: Path | None = None, open_base: Callable | None = None
) -> dict:
    """What `isoadapt evaluate` writes to --output: the run's head against its base model on `data`, every
    input checked before the model loads. `open_base` gives `run.base_encoder`, perhaps already loaded."""
    check_texts_are_real(data, run.config["base_model"])
    split = load_eval(data)
    sts = load_sts(sts_data) if sts_data else None
    base_encoder = open_base() if open_base else run.base_encoder(cache_dir, show_progress=True)
    split, sts = base_encoder.prompts.split(split), sts and base_encoder.prompts.sts(sts)  # each side as encoded
    base_vectors = CachedVectors(base_encoder, cache_dir)
    trained_vectors = (
        CachedVectors(run.trained_encoder(cache_dir, show_progress=True), cache_dir) if run.fine_tuned else base_vectors
    )
    if run.query_model is not None:  # a cross-model run: its queries read the query model, documents the base
        query_vectors = CachedVectors(run.side_encoder("query", cache_dir, show_progress=True), cache_dir)
        trained_vectors = SideVectors(query=query_vectors, document=base_vectors)
    scores = score_head(split, base_vectors, trained_vectors, run.head, sts)
    if sts:
        scores["sts_spearman"] = {"data": str(sts_data), **scores["sts_spearman"]}
    return {"kind": EVALUATION_KIND, "data": str(data), "run_dir": str(run.folder), **scores}


def print_evaluation(result: dict) -> None:
    print(format_comparison(result["data"], result["baseline"], result["trained"]))
    sts = result.get("sts_spearman")
    if sts:
        print(format_sts(sts["data"], sts["baseline"], sts["trained"]))
