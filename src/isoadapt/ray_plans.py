"""A plan's (configuration, seed) jobs as Ray Tune trials over the shared cache.

Each trial rebuilds the plan's runner in its own process (data, cached vectors, baseline: cheap, every
vector is cached by then), runs one job with the same code as a local run, and writes its SeedResult to
the staging folder; the driver reads them back in the plan's order and writes the same report. Trials
use as many torch threads as this process does, so their arithmetic (and so the table) matches a local
run. Tune's own storage goes under the report folder (`tune/`). A failed trial fails the plan with its
error line; no row silently drops from the table. On a multi-node cluster the cache, the data and the
report's staging folder must be on a filesystem every node sees (the same paths).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_json, read_json

log = logging.getLogger(__name__)


class CachedFirst:
    """The driver's encoder as a trial sees it: its name, identity and fingerprint (which is all the cache
    needs), with the model itself loaded only if a text turns out not to be cached. Every text of the plan
    was encoded before the trials started, so trials normally never load it: on a cluster that saves one
    model load per trial."""

    def __init__(self, described: dict, build):
        self.__dict__.update(described)
        self._build, self._model = build, None

    def encode(self, texts: list[str]):
        if self._model is None:
            self._model = self._build()
        return self._model.encode(texts)


def describe_encoder(encoder) -> dict:
    names = ("name", "identity", "fingerprint", "dim", "backend", "folder")
    return {n: getattr(encoder, n) for n in names}


@dataclass(frozen=True)
class TrialSetup:
    """Everything a trial needs to rebuild the runner: paths and names only, so it pickles small."""

    plan_path: str
    data: object  # ExperimentData (paths)
    base_model: str
    backend: str
    cache_dir: str
    staging: str
    device: str
    threads: int
    jobs: tuple[tuple[str, int | None], ...]  # (entry name, seed) by trial index
    encoder: dict  # describe_encoder() of the driver's encoder


def _trial(config: dict, setup: TrialSetup) -> dict:
    import torch

    from isoadapt.encoder import open_encoder
    from isoadapt.experiment import PlanRun
    from isoadapt.plan import load_plan

    torch.set_num_threads(setup.threads)
    index = config["job"]
    name, seed = setup.jobs[index]
    plan = load_plan(setup.plan_path)
    encoder = open_encoder(
        setup.base_model, Path(setup.cache_dir), setup.device, show_progress=False, backend=setup.backend
    )
    runner = PlanRun(plan, setup.data, encoder, Path(setup.cache_dir), Path(setup.staging), setup.device)
    entry = next(e for e in plan.entries if e.name == name)
    result = runner.run_job(entry, seed)
    atomic_write_json(_result_file(setup, index), asdict(result))
    return {"job": index}


def _result_file(setup: TrialSetup, index: int) -> Path:
    return Path(setup.staging) / "tune" / "results" / f"{index}.json"


def _error_line(error: BaseException) -> str:
    """The failing trial's own message: the last line of Ray's wrapped traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    return last.removeprefix("isoadapt.errors.InputError: ").removeprefix("isoadapt.errors.Failed: ")


def run_trials(runner, jobs: list, engine) -> list:
    import torch

    try:
        from ray import tune
    except ImportError:
        raise InputError("--engine ray: Ray is not installed; pip install 'isoadapt[ray]'") from None
    from isoadapt.experiment import SeedResult
    from isoadapt.ray_encode import start_ray

    # absolute paths: a trial runs in its own working folder, maybe on another node
    data = replace(runner.data, **{k: Path(v).resolve() for k, v in asdict(runner.data).items() if v is not None})
    setup = TrialSetup(
        str(runner.plan.path.resolve()),
        data,
        runner.encoder.name,
        runner.encoder.backend,
        str(Path(runner.cache_dir).resolve()),
        str(Path(runner.staging).resolve()),
        runner.device,
        torch.get_num_threads(),
        tuple((entry.name, seed) for entry, seed in jobs),
        describe_encoder(runner.encoder),
    )
    started = start_ray(engine.address, engine.workers or 1)
    try:
        grid = _tuner(tune, setup, engine, len(jobs)).fit()
    finally:
        if started:
            import ray

            ray.shutdown()
    for result in grid:
        if result.error is not None:
            name, seed = setup.jobs[result.config["job"]]
            raise InputError(f"plan {runner.plan.name}: trial {name} seed {seed} failed: {_error_line(result.error)}")
    outcomes = []
    for index in range(len(jobs)):
        path = _result_file(setup, index)
        if not path.is_file():
            raise InputError(f"plan {runner.plan.name}: trial {setup.jobs[index][0]} left no result ({path})")
        outcomes.append(SeedResult(**read_json(path)))
    return outcomes


def _tuner(tune, setup: TrialSetup, engine, count: int):
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    concurrent = engine.workers or cpus
    trainable = tune.with_resources(tune.with_parameters(_trial, setup=setup), {"cpu": max(1, cpus // concurrent)})
    return tune.Tuner(
        trainable,
        param_space={"job": tune.grid_search(list(range(count)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),  # no re-import per trial
        run_config=tune.RunConfig(
            storage_path=str(Path(setup.staging) / "tune"),
            name="trials",
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            verbose=0,
        ),
    )
