"""Run a plan: encode once, measure the base model, train every configuration with every seed, fit the
post-hoc transforms, and hand the per-seed results to the report."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm.auto import tqdm

from isoadapt import __version__
from isoadapt.cache import CachedVectors
from isoadapt.config import MAX_SEED, TrainConfig, check_device
from isoadapt.data.formats import EvalSet, load_eval, load_sts, load_train
from isoadapt.encoder import Encoder
from isoadapt.errors import InputError, Interrupted, failure
from isoadapt.evaluate import Evaluation, evaluate_split, evaluate_sts
from isoadapt.fileio import atomic_write_json, read_json, sha256_file
from isoadapt.head import save_head
from isoadapt.owned_folders import check_folder_path, install, mark_owned, new_staging, remove_owned
from isoadapt.plan import Plan, PlanEntry, load_plan
from isoadapt.posthoc import fit_posthoc
from isoadapt.report import write_report
from isoadapt.training_run import run_training, seed_everything

log = logging.getLogger(__name__)
RESULT_SCHEMA = 1


@dataclass
class SeedResult:
    """What the report needs from one (configuration, seed)."""

    seed: int | None
    test: dict
    val: dict | None
    per_query: dict[str, float]
    spectrum: list[float]
    sts: float | None
    history: list[dict] = field(default_factory=list)
    collapsed: bool = False
    collapse_reasons: list[str] = field(default_factory=list)
    reused: bool = False
    seconds: float = 0.0


@dataclass
class ExperimentData:
    train_smoke: Path
    train_full: Path
    dev: Path
    test: Path
    sts: Path | None

    @classmethod
    def locate(cls, data_root: Path, name: str, sts: Path | None) -> ExperimentData:
        base = data_root / name
        smoke = data_root / f"{name}_smoke" / "train.json"
        paths = cls(
            smoke if smoke.is_file() else base / "train.json",
            base / "train.json",
            base / "dev.json",
            base / "test.json",
            sts,
        )
        for path in (paths.train_full, paths.dev, paths.test):
            if not path.is_file():
                raise InputError(f"{path}: file not found (run `isoadapt prepare {name}` first)")
        return paths


def _seed_result(evaluations: dict[str, Evaluation], sts: float | None, **extra) -> SeedResult:
    test = evaluations["test"]
    return SeedResult(
        test=test.metrics,
        val=evaluations["val"].metrics if "val" in evaluations else None,
        per_query=test.per_query,
        spectrum=[float(x) for x in test.spectrum],
        sts=sts,
        **extra,
    )


def run_experiment(
    plan_path: Path,
    data_name: str,
    seeds: list[int] | None,
    base_model: str,
    cache_dir: Path,
    data_root: Path = Path("data/processed"),
    runs_root: Path = Path("runs"),
    sts_data: Path | None = None,
    device: str = "cpu",
    encoder: Encoder | None = None,
    encode_backend: str = "torch",
) -> Path:
    plan = load_plan(plan_path)
    if sts_data is None and (data_root / "stsb" / "sts_test.json").is_file():
        sts_data = data_root / "stsb" / "sts_test.json"
    data = ExperimentData.locate(data_root, data_name, sts_data)
    splits: dict[str, EvalSet] = {"val": load_eval(data.dev), "test": load_eval(data.test)}
    sts = load_sts(data.sts) if data.sts else None
    smoke_train, full_train = (
        load_train(data.train_smoke),
        (load_train(data.train_full) if any(e.train == "full" for e in plan.entries) else None),
    )

    check_device(device)
    check_folder_path(runs_root, "--runs_root")
    encoder = encoder or Encoder(base_model, cache_dir, device, backend=encode_backend)
    _check_posthoc_widths(plan, encoder.dim)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    final = runs_root / f"{plan.name}-{data_name}-{stamp}"
    staging = new_staging(final)
    started = time.perf_counter()
    try:
        vectors = CachedVectors(encoder, cache_dir)
        # Encode everything the plan will read, once, up front: later steps only hit the cache.
        needed = [t for s in splits.values() for t in (*s.queries.values(), *s.corpus.values())]
        for examples in (smoke_train, full_train or []):
            needed += [t for e in examples for t in (e.query, e.positive, e.negative) if t]
        if sts:
            needed += sts.sentence1 + sts.sentence2
        vectors(list(dict.fromkeys(needed)))

        baseline = {"test": evaluate_split(splits["test"], vectors)}
        base_sts = evaluate_sts(sts, vectors) if sts else None
        results: dict[str, list[SeedResult]] = {}
        train_texts = list(dict.fromkeys(t for e in smoke_train for t in (e.query, e.positive, e.negative) if t))
        jobs = [(entry, seed) for entry in plan.entries for seed in _entry_seeds(entry, plan, seeds)]
        for entry, seed in tqdm(jobs, desc=f"plan {plan.name}", unit="run"):
            t0 = time.perf_counter()
            if entry.kind == "baseline":
                result = _seed_result(baseline, base_sts, seed=None)
            elif entry.kind == "posthoc":
                head = fit_posthoc(entry.transform, vectors(train_texts), **entry.options)
                save_head(head, staging / "runs" / entry.name / "head")
                atomic_write_json(
                    staging / "runs" / entry.name / "config.json",
                    {
                        "config": {
                            "base_model": base_model,
                            "encode_backend": encoder.backend,
                            "kind": "posthoc",
                            "transform": entry.transform,
                            **entry.options,
                        }
                    },
                )
                atomic_write_json(staging / "runs" / entry.name / "status.json", {"completed": True})
                evaluations = {"test": evaluate_split(splits["test"], vectors, head)}
                result = _seed_result(evaluations, evaluate_sts(sts, vectors, head) if sts else None, seed=None)
            else:
                result = _train_entry(entry, seed, data, encoder, cache_dir, staging, baseline, device)
            result.seconds = round(time.perf_counter() - t0, 2)
            results.setdefault(entry.name, []).append(result)
        meta = {
            "plan": str(plan.path),
            "plan_name": plan.name,
            "data": data_name,
            "base_model": base_model,
            "seeds": seeds or plan.seeds,
            "encoder": encoder.identity,
            "encode_backend": encoder.backend,
            "isoadapt": __version__,
            "started_utc": stamp,
            "seconds": round(time.perf_counter() - started, 1),
            "paths": {k: (str(v) if v else None) for k, v in asdict(data).items()},
        }
        write_report(staging, plan, results, meta, base_sts)
        mark_owned(staging, "report")
        install(staging, final)
    except KeyboardInterrupt:
        raise Interrupted(f"plan {plan.name} interrupted: {_close_failed(staging)}") from None
    except Exception as err:
        raise failure(err, _close_failed(staging)) from err
    return final


def _close_failed(staging: Path) -> str:
    """Keep a stopped plan's finished runs (they cost time); remove a staging folder that holds none."""
    if any((staging / "runs").glob("*/*/metrics.json")) or any((staging / "runs").glob("*/config.json")):
        return f"the finished runs are kept in {staging}"
    remove_owned(staging)
    return "nothing was kept"


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
    if entry.kind != "train":
        return [None]  # deterministic: one evaluation
    return entry.seeds or seeds or plan.seeds


def _train_entry(
    entry: PlanEntry,
    seed: int,
    data: ExperimentData,
    encoder: Encoder,
    cache_dir: Path,
    staging: Path,
    baseline: dict[str, Evaluation],
    device: str,
) -> SeedResult:
    cfg = TrainConfig(
        train_data=str(data.train_full if entry.train == "full" else data.train_smoke),
        val_data=str(data.dev),
        test_data=str(data.test),
        sts_data=str(data.sts) if data.sts else None,
        output_dir=str(staging / "runs" / entry.name / f"seed{seed}"),
        base_model=encoder.name,
        cache_dir=str(cache_dir),
        seed=seed,
        device=device,
        encode_backend=encoder.backend,
        **{"tracker": "none", **entry.settings},
    )
    reuse_key = _result_key(cfg, encoder) if not cfg.freeze_base else None
    if reuse_key:
        stored = cache_dir / "results" / f"{reuse_key}.json"
        if stored.is_file():
            log.info(
                "%s seed %s: reusing the stored result of this exact full fine-tuning run (%s)",
                entry.name,
                seed,
                stored,
            )
            return SeedResult(**{**read_json(stored), "reused": True})
    seed_everything(seed)
    run = run_training(cfg, encoder=encoder, quiet=True, base_evaluations=baseline, splits_to_report=("test",))
    if not cfg.freeze_base:
        shutil.rmtree(
            Path(cfg.output_dir) / "encoder", ignore_errors=True
        )  # 400 MB per run; the metrics are what the plan needs
    sts = run.metrics.get("sts_spearman", {}).get("trained")
    result = _seed_result(
        run.trained,
        sts,
        seed=seed,
        history=run.history,
        collapsed=run.metrics["collapsed"],
        collapse_reasons=run.metrics["collapse_reasons"],
    )
    if reuse_key:
        atomic_write_json(cache_dir / "results" / f"{reuse_key}.json", asdict(result), indent=None)
    return result


def _result_key(cfg: TrainConfig, encoder: Encoder) -> str:
    """Identity of a run's result: settings, data contents, encoder and code version (not paths)."""
    ignored = {
        "output_dir",
        "overwrite",
        "cache_dir",
        "train_data",
        "val_data",
        "test_data",
        "sts_data",
        "device",
        "encode_batch_size",
        "save_steps",
        "resume",
        "tracker",
        "tracking_uri",
    }
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ignored}  # what changes the result, and only that
    inputs = {
        name: sha256_file(p)
        for name, p in (
            ("train", cfg.train_data),
            ("val", cfg.val_data),
            ("test", cfg.test_data),
            ("sts", cfg.sts_data),
        )
        if p
    }
    blob = json.dumps(
        {
            "schema": RESULT_SCHEMA,
            "version": __version__,
            "settings": settings,
            "inputs": inputs,
            "encoder": encoder.fingerprint,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds {text}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds:
        raise InputError(f"--seeds {text}: no seed given")
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise InputError(f"--seeds {text}: seed {seed} must be between 0 and {MAX_SEED}")
    return seeds
