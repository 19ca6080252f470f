"""The Ray engine of a plan: its (configuration, seed) jobs as Ray Tune trials over the shared cache.

Each trial rebuilds the plan's runner from its picklable `PlanRecipe` in its own process (data, cached
vectors, baseline: cheap, every vector is cached by then) with a `CachedFirst` encoder, so the model is
loaded only if a text is missing; it runs one job with the same code as a local run, and writes its
SeedResult to the staging folder; the driver reads them back in the plan's order and writes the same
report. Trials use as many torch threads as this process does, so their arithmetic (and so the table)
matches a local run. Tune's own storage goes under the report folder (`tune/`). A failed trial fails the
plan with its error line; no row silently drops from the table. On a multi-node cluster the cache, the
data and the report's staging folder must be on a filesystem every node sees (the same paths).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from isoadapt.encoding.encoder import CachedFirst, open_encoder
from isoadapt.encoding.ray_encode import start_ray
from isoadapt.errors import InputError
from isoadapt.experiment.plan_data import PlanRecipe
from isoadapt.experiment.runner import Jobs, PlanRun
from isoadapt.experiment.seed_result import SeedResult
from isoadapt.fileio import atomic_write_json, read_json

log = logging.getLogger(__name__)
TUNE_LOGGERS = ("ray.tune", "ray.train", "ray.air")


@contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Only critical records from these loggers while the block runs; their levels come back after."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@dataclass(frozen=True)
class TrialSetup:
    """Everything a trial needs: the recipe, the driver's torch threads, and the jobs by trial index."""

    recipe: PlanRecipe
    threads: int
    jobs: tuple[tuple[str, int | None], ...]  # (entry name, seed) by trial index


def trial_runner(recipe: PlanRecipe) -> PlanRun:
    """The plan's runner as a trial builds it: the model stays unloaded unless a text is not cached."""
    described = recipe.encoder_described

    def load_model():
        log.info("a text is not cached: loading %s in this trial", described["name"])
        prompts = described["prompts"]
        return open_encoder(
            described["name"],
            recipe.cache_dir,
            recipe.device,
            show_progress=False,
            backend=described["backend"],
            query_prompt=prompts.query,
            document_prompt=prompts.document,
        )

    return PlanRun(recipe, CachedFirst(described, load_model))


def _trial(config: dict, setup: TrialSetup) -> dict:
    import torch

    torch.set_num_threads(setup.threads)
    index = config["job"]
    name, seed = setup.jobs[index]
    runner = trial_runner(setup.recipe)
    entry = next(e for e in runner.plan.entries if e.name == name)
    atomic_write_json(_result_file(setup, index), asdict(runner.run_job(entry, seed)))
    return {"job": index}


def _result_file(setup: TrialSetup, index: int) -> Path:
    return setup.recipe.staging / "tune" / "results" / f"{index}.json"


def _error_line(error: BaseException) -> str:
    """The failing trial's own message: the last line of Ray's wrapped traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    return last.removeprefix("isoadapt.errors.InputError: ").removeprefix("isoadapt.errors.Failed: ")


@dataclass(frozen=True)
class RayJobs:
    """The Ray engine, passed to `run_experiment` as its `run_jobs`: a running cluster at `address` (None
    starts a local one), `workers` trials at once (None: one per CPU)."""

    address: str | None = None
    workers: int | None = None

    def __call__(self, runner: PlanRun, jobs: Jobs) -> list[SeedResult]:
        import torch

        try:
            from ray import tune
        except ImportError:
            raise InputError("--engine ray: Ray is not installed; pip install 'isoadapt[ray]'") from None
        setup = TrialSetup(
            runner.recipe.absolute(), torch.get_num_threads(), tuple((entry.name, seed) for entry, seed in jobs)
        )
        started = start_ray(self.address, self.workers or 1)
        try:
            with quiet_loggers(*TUNE_LOGGERS):  # a failed trial is our one error line, not Tune's traceback and table
                grid = self._tuner(tune, setup, len(jobs)).fit()
        finally:
            if started:
                import ray

                ray.shutdown()
        return _collect(runner.plan.name, setup, grid)

    def _tuner(self, tune, setup: TrialSetup, count: int):
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        concurrent = self.workers or cpus
        trainable = tune.with_resources(tune.with_parameters(_trial, setup=setup), {"cpu": max(1, cpus // concurrent)})
        return tune.Tuner(
            trainable,
            param_space={"job": tune.grid_search(list(range(count)))},
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),  # no re-import per trial
            run_config=tune.RunConfig(
                storage_path=str(setup.recipe.staging / "tune"),
                name="trials",
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                verbose=0,
            ),
        )


def _collect(plan_name: str, setup: TrialSetup, grid) -> list[SeedResult]:
    """Each trial's SeedResult in the plan's order; a failed or silent trial fails the plan with one line."""
    for result in grid:
        if result.error is not None:
            name, seed = setup.jobs[result.config["job"]]
            raise InputError(f"plan {plan_name}: trial {name} seed {seed} failed: {_error_line(result.error)}")
    outcomes = []
    for index in range(len(setup.jobs)):
        path = _result_file(setup, index)
        if not path.is_file():
            raise InputError(f"plan {plan_name}: trial {setup.jobs[index][0]} left no result ({path})")
        outcomes.append(SeedResult(**read_json(path)))
    return outcomes
