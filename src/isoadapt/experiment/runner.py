"""Run a plan: encode once, measure the base model, train every configuration with every seed, fit the
post-hoc transforms, and hand the per-seed results to the report. The rows themselves are in `rows`
(base model, post-hoc, NUDGE) and `trained_rows`; the loaded inputs and validation scoring in `plan_inputs`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from isoadapt.data import layout
from isoadapt.data.formats import check_texts_are_real, load_eval, load_train
from isoadapt.encoding.backend_choice import AUTO, probe_from_split
from isoadapt.encoding.encoder import Encoder, describe_encoder, open_encoder
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import NOTHING_KEPT, InputError, Interrupted, failure
from isoadapt.evaluation import evaluate_split
from isoadapt.experiment.cross_rows import align_row, check_cross_plan, on_models, open_query_vectors
from isoadapt.experiment.plan import Plan, PlanEntry, load_plan
from isoadapt.experiment.plan_data import ExperimentData, PlanRecipe
from isoadapt.experiment.plan_inputs import PlanInputs
from isoadapt.experiment.report import recommendations, write_report
from isoadapt.experiment.rows import baseline_row, nudge_row, posthoc_row
from isoadapt.experiment.seed_result import SeedResult
from isoadapt.experiment.trained_rows import train_row
from isoadapt.head import load_head
from isoadapt.owned_folders import check_folder_path, install, mark_owned, new_staging, remove_owned
from isoadapt.progress import progress
from isoadapt.training.config import check_device, check_seeds
from isoadapt.training.run_folder import library_versions

Jobs = list[tuple[PlanEntry, int | None]]
RunJobs = Callable[["PlanRun", Jobs], list[SeedResult]]
ROWS = {"baseline": baseline_row, "posthoc": posthoc_row, "nudge": nudge_row, "train": train_row, "align": align_row}


def run_locally(runner: PlanRun, jobs: Jobs) -> list[SeedResult]:
    """The default engine: every (configuration, seed) here, one after the other."""
    return [runner.run_job(entry, seed) for entry, seed in progress(jobs, desc=f"plan {runner.plan.name}", unit="run")]


def run_experiment(
    plan_path: Path,
    data_name: str,
    seeds: list[int] | None,
    base_model: str,
    cache_dir: Path,
    data_root: Path = layout.DATA_ROOT,
    runs_root: Path = Path("runs"),
    sts_data: Path | None = None,
    device: str = "cpu",
    encoder: Encoder | None = None,
    encode_backend: str = "torch",
    run_jobs: RunJobs = run_locally,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
    query_model: str | None = None,
) -> Path:
    """Check everything, run every (configuration, seed) into a staging folder through `run_jobs` (the
    engine: `run_locally`, or `ray_trials.RayJobs`), write the report, and move the folder into place; a
    stopped plan keeps its finished runs and says where. `query_model` (else the plan's) is the new model
    of a cross-model plan (experiment/cross_rows.py)."""
    plan = load_plan(plan_path)
    query_model = query_model or plan.query_model
    check_cross_plan(plan, query_model, run_jobs is run_locally)
    encodes = not is_precomputed(base_model)
    sts_test = layout.stsb(data_root).sts("test")
    if sts_data is None and encodes and sts_test.is_file():
        sts_data = sts_test
    data = ExperimentData.locate(data_root, data_name, sts_data, encodes)
    check_texts_are_real(data.dev, base_model)
    check_device(device)
    check_folder_path(runs_root, "--runs_root")
    probe = probe_from_split(load_eval(data.dev), str(data.dev)) if encode_backend == AUTO else None
    prompts = {"query_prompt": query_prompt, "document_prompt": document_prompt}
    encoder = encoder or open_encoder(base_model, cache_dir, device, backend=encode_backend, probe=probe, **prompts)
    query_encoder = open_encoder(query_model, cache_dir, device, backend=encoder.backend) if query_model else None
    _check_posthoc_widths(plan, encoder.dim)
    _check_train_sizes(plan, data)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    final = runs_root / f"{plan.name}-{data_name}-{stamp}"
    staging = new_staging(final)
    try:
        runner = PlanRun(PlanRecipe(plan, data, cache_dir, staging, device, describe_encoder(encoder)), encoder)
        if query_encoder is not None:
            open_query_vectors(runner, query_encoder)
        results = runner.run_all(seeds, run_jobs)
        meta = runner.meta(data_name, base_model, seeds, stamp)
        write_report(staging, plan, results, meta, runner.base_sts, runner.shift_check, runner.base_sts_dev)
        mark_owned(staging, "report")
        install(staging, final)
    except KeyboardInterrupt:
        raise Interrupted(f"plan {plan.name} interrupted: {_close_failed(staging)}") from None
    except Exception as err:
        raise failure(err, _close_failed(staging)) from err
    return final


class PlanRun(PlanInputs):
    """One plan on one dataset: its inputs (loaded and encoded once, see PlanInputs), its jobs, one row
    function per kind of configuration, and the shift check over the finished results."""

    def __init__(self, recipe: PlanRecipe, encoder: Encoder):
        super().__init__(recipe, encoder)
        self.shift_check: dict | None = None

    def jobs(self, seeds: list[int] | None) -> Jobs:
        return [(entry, seed) for entry in self.plan.entries for seed in _entry_seeds(entry, self.plan, seeds)]

    def run_job(self, entry: PlanEntry, seed: int | None) -> SeedResult:
        t0 = time.perf_counter()
        result = ROWS[entry.kind](on_models(self, entry.models), entry, seed)
        result.seconds = round(time.perf_counter() - t0, 2)
        return result

    def run_all(self, seeds: list[int] | None, run_jobs: RunJobs = run_locally) -> dict[str, list[SeedResult]]:
        """Every (configuration, seed), run by the engine passed in; results grouped by configuration."""
        jobs = self.jobs(seeds)
        outcomes = run_jobs(self, jobs)
        results: dict[str, list[SeedResult]] = {}
        for (entry, _), result in zip(jobs, outcomes):
            results.setdefault(entry.name, []).append(result)
        self.shift_check = self.check_shift(results)
        return results

    def check_shift(self, results: dict[str, list[SeedResult]]) -> dict | None:
        """The recommended configuration (and the best post-hoc row) on a second kind of input, next to the
        base model: does what wins in-domain hold when the query style shifts?"""
        if self.shift is None:
            return None
        picks = recommendations(self.plan, results, self.base_sts_dev)
        rows = {"base model": self._shift_ndcg([None])}
        models = {e.name: e.models for e in self.plan.entries}
        for role in ("recommended", "best_posthoc"):
            name = picks.get(role)
            if name:
                heads = sorted((self.staging / "runs" / name).glob("seed*/head")) or [
                    self.staging / "runs" / name / "head"
                ]
                rows[name] = self._shift_ndcg([load_head(h) for h in heads], on_models(self, models[name]).vectors)
        return {"data": str(self.data.shift), "queries": len(self.shift.queries), "ndcg@10": rows}

    def _shift_ndcg(self, heads: list, vectors=None) -> float:
        vectors = vectors if vectors is not None else self.vectors
        return float(sum(evaluate_split(self.shift, vectors, h).metrics["ndcg@10"] for h in heads) / len(heads))

    def meta(self, data_name: str, base_model: str, seeds: list[int] | None, stamp: str) -> dict:
        return {
            "plan": str(self.plan.path),
            "plan_name": self.plan.name,
            "data": data_name,
            "base_model": base_model,
            **(
                {"query_model": self.query_encoder.name, "query_encoder": self.query_encoder.identity}
                if self.query_encoder
                else {}
            ),
            "seeds": seeds or self.plan.seeds,
            "encoder": self.encoder.identity,
            **({"prompts": self.encoder.prompts.as_dict()} if self.encoder.prompts else {}),
            "encode_backend": self.encoder.backend,
            **({"encode_backend_choice": self.encoder.backend_choice} if self.encoder.backend_choice else {}),
            "isoadapt": library_versions()["isoadapt"],
            "started_utc": stamp,
            "seconds": round(time.perf_counter() - self.started, 1),
            "paths": {k: (str(v) if v else None) for k, v in asdict(self.data).items()},
        }


def _close_failed(staging: Path) -> str:
    """Keep a stopped plan's finished runs (they cost time); remove a staging folder that holds none."""
    if any((staging / "runs").glob("*/*/metrics.json")) or any((staging / "runs").glob("*/config.json")):
        return f"the finished runs are kept in {staging}"
    remove_owned(staging)
    return NOTHING_KEPT


def _check_train_sizes(plan: Plan, data: ExperimentData) -> None:
    """A learning curve's size above the training file would train on every pair under a label that says
    more (and two such sizes give one result twice): refused before anything is encoded or written."""
    sizes: dict[Path, int] = {}
    for entry in plan.entries:
        file = data.train_full if entry.train == "full" else data.train_smoke
        if entry.pairs is None:
            continue
        have = sizes.setdefault(file, len(load_train(file)))
        if entry.pairs > have:
            raise InputError(
                f"{plan.path}: config {entry.family!r}: train size {entry.pairs} is more than the {have} "
                f"training pairs in {file}; list sizes up to {have}"
            )


def _check_posthoc_widths(plan: Plan, dim: int) -> None:
    """Post-hoc options that the encoder's width makes impossible, refused before any training."""
    for entry in plan.entries:
        keep, remove = entry.options.get("keep"), entry.options.get("remove")
        if keep is not None and keep > dim:
            raise InputError(
                f"{plan.path}: config {entry.name!r}: keep = {keep} exceeds the encoder's {dim} dimensions"
            )
        if remove is not None and remove >= dim:
            raise InputError(
                f"{plan.path}: config {entry.name!r}: remove = {remove} must be below the encoder's {dim} dimensions"
            )


def _entry_seeds(entry: PlanEntry, plan: Plan, seeds: list[int] | None) -> list[int | None]:
    if entry.kind != "train" and entry.pairs is None and not entry.settings.get("paired_texts"):
        return [None]  # deterministic: one evaluation (a learning curve's NUDGE point draws its pairs per seed)
    return entry.seeds or seeds or plan.seeds


def parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds {text}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds:
        raise InputError(f"--seeds {text}: no seed given")
    return check_seeds(seeds, f"--seeds {text}")
