"""`isoadapt evaluate`: score a finished run's head on any processed split, next to its base model."""

from __future__ import annotations

from pathlib import Path

from isoadapt.data.formats import check_texts_are_real, load_eval, load_sts
from isoadapt.encoding.cache import CachedVectors
from isoadapt.errors import InputError
from isoadapt.evaluation import change_pct, evaluate_split, evaluate_sts, format_comparison, format_sts
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.owned_folders import check_output_file, check_replaceable
from isoadapt.training.run_folder import open_run

EVALUATION_KIND = "isoadapt-evaluation"  # marks an --output file as ours, so a later run may replace it


def _check_replaceable(output: Path) -> None:
    """--output may replace an earlier evaluation, never another file (a dataset, a config)."""
    if not output.exists():
        return
    try:
        kind = read_json(output).get("kind")
    except (InputError, AttributeError):
        kind = None
    check_replaceable(f"--output {output}", kind, EVALUATION_KIND, "an evaluation")


def evaluate_run(
    run_dir: Path, data: Path, cache_dir: Path, output: Path | None = None, sts_data: Path | None = None
) -> dict:
    run = open_run(run_dir)
    if output:
        check_output_file(output, "--output")
        _check_replaceable(output)
    check_texts_are_real(data, run.config["base_model"])
    split = load_eval(data)
    sts = load_sts(sts_data) if sts_data else None
    head = run.head
    base_vectors = CachedVectors(run.base_encoder(cache_dir, show_progress=True), cache_dir)
    baseline = evaluate_split(split, base_vectors).metrics
    trained_vectors = (
        CachedVectors(run.trained_encoder(cache_dir, show_progress=True), cache_dir) if run.fine_tuned else base_vectors
    )
    trained = evaluate_split(split, trained_vectors, head).metrics
    result = {
        "kind": EVALUATION_KIND,
        "data": str(data),
        "run_dir": str(run_dir),
        "baseline": baseline,
        "trained": trained,
        "change_pct": change_pct(baseline, trained),
    }
    print(format_comparison(str(data), baseline, trained))
    if sts:
        result["sts_spearman"] = {
            "data": str(sts_data),
            "baseline": evaluate_sts(sts, base_vectors),
            "trained": evaluate_sts(sts, trained_vectors, head),
        }
        print(format_sts(str(sts_data), result["sts_spearman"]["baseline"], result["sts_spearman"]["trained"]))
    if output:
        atomic_write_json(output, result)
    return result
