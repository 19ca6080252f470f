"""Run a plan: encode once, measure the base model, train every configuration with every seed, fit the
post-hoc transforms, and hand the per-seed results to the report."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from isoadapt.data.formats import EvalSet, check_texts_are_real, load_eval, load_sts, load_train
from isoadapt.data.sampling import sample_pairs
from isoadapt.encoding.backend_choice import AUTO, probe_from_split
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.encoder import Encoder, describe_encoder, open_encoder
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import NOTHING_KEPT, InputError, Interrupted, failure
from isoadapt.evaluation import Evaluation, evaluate_split, evaluate_sts, per_query_ndcg_at_10, split_vectors
from isoadapt.experiment.nudge import SIMILARITY, nudge_documents, split_answers, training_answers
from isoadapt.experiment.plan import Plan, PlanEntry, load_plan
from isoadapt.experiment.report import recommendations, write_report
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.head import load_head, save_head
from isoadapt.owned_folders import check_folder_path, install, mark_owned, new_staging, remove_owned
from isoadapt.posthoc import fit_posthoc
from isoadapt.progress import progress
from isoadapt.training.config import TrainConfig, check_device, check_seeds, reuse_view
from isoadapt.training.run_folder import library_versions, source_digest
from isoadapt.training.train_command import run_training, seed_everything

log = logging.getLogger(__name__)
RESULT_SCHEMA = 2  # 2: trained heads are selected on validation


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


@dataclass
class ExperimentData:
    train_smoke: Path
    train_full: Path
    dev: Path
    test: Path
    sts: Path | None
    sts_dev: Path | None  # STS-B dev pairs: the STS guard of selection (validation, like dev.json)
    shift: Path | None  # a second kind of input for the generalisation check (STS-B sentences as queries)
    probes: dict[str, Path] = field(default_factory=dict)  # validation-only shift probes: name -> split file

    @staticmethod
    def find_probes(data_root: Path, name: str, encodes: bool) -> dict[str, Path]:
        """The dataset's own probes (`probe_*.json`, written by `prepare`), and STS-B **dev** sentences as
        queries from another domain (texts to encode: not for precomputed vectors)."""
        probes = {path.stem.removeprefix("probe_"): path for path in sorted((data_root / name).glob("probe_*.json"))}
        stsb_dev = data_root / "stsb" / "dev.json"
        if encodes and name != "stsb" and stsb_dev.is_file():
            probes["stsb_dev"] = stsb_dev
        return probes

    def paths(self) -> dict[str, Path]:
        """The single files by field name: every field but the probes, those found."""
        return {k: Path(v) for k, v in asdict(self).items() if v is not None and k != "probes"}

    def files(self) -> list[Path]:
        """Every file the plan reads, probes included: what its runs encode."""
        return [*self.paths().values(), *self.probes.values()]

    @classmethod
    def locate(cls, data_root: Path, name: str, sts: Path | None, encodes: bool = True) -> ExperimentData:
        """The plan's files; `encodes` False (precomputed vectors) leaves out the STS-B sets found by
        default: their sentences have no stored vectors."""
        base = data_root / name
        smoke = data_root / f"{name}_smoke" / "train.json"
        shift = data_root / "stsb" / "test.json"
        sts_dev = data_root / "stsb" / "sts_dev.json"
        paths = cls(
            smoke if smoke.is_file() else base / "train.json",
            base / "train.json",
            base / "dev.json",
            base / "test.json",
            sts,
            sts_dev if sts and sts_dev.is_file() else None,
            shift if encodes and shift.is_file() and name != "stsb" else None,
            cls.find_probes(data_root, name, encodes),
        )
        for path in (paths.train_full, paths.dev, paths.test):
            if not path.is_file():
                raise InputError(f"{path}: file not found (run `isoadapt prepare {name}` first)")
        return paths


@dataclass(frozen=True)
class PlanRecipe:
    """What builds a PlanRun, in this process or in a Ray trial's: the plan, the data's paths, where
    vectors and runs live, and the driver's encoder as the cache sees it (`encoder_described`). Plain data,
    so it pickles small; a trial rebuilds the same runner from it without loading the model."""

    plan: Plan
    data: ExperimentData
    cache_dir: Path
    staging: Path
    device: str
    encoder_described: dict  # describe_encoder() of the driver's encoder

    def absolute(self) -> PlanRecipe:
        """The same recipe with absolute paths: a trial runs in its own working folder, maybe on another node."""
        paths = {k: v.resolve() for k, v in self.data.paths().items()}
        data = replace(self.data, **paths, probes={k: v.resolve() for k, v in self.data.probes.items()})
        plan = replace(self.plan, path=self.plan.path.resolve())
        return replace(self, plan=plan, data=data, cache_dir=self.cache_dir.resolve(), staging=self.staging.resolve())


Jobs = list[tuple[PlanEntry, int | None]]
RunJobs = Callable[["PlanRun", Jobs], list["SeedResult"]]


def run_locally(runner: PlanRun, jobs: Jobs) -> list[SeedResult]:
    """The default engine: every (configuration, seed) here, one after the other."""
    return [runner.run_job(entry, seed) for entry, seed in progress(jobs, desc=f"plan {runner.plan.name}", unit="run")]


def _seed_result(test: Evaluation, val_ndcg: float | None = None, sts: float | None = None, **extra) -> SeedResult:
    return SeedResult(
        test=test.metrics,
        val_ndcg=val_ndcg,
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
    run_jobs: RunJobs = run_locally,
) -> Path:
    """Check everything, run every (configuration, seed) into a staging folder through `run_jobs` (the
    engine: `run_locally`, or `ray_trials.RayJobs`), write the report, and move the folder into place; a
    stopped plan keeps its finished runs and says where."""
    plan = load_plan(plan_path)
    encodes = not is_precomputed(base_model)
    if sts_data is None and encodes and (data_root / "stsb" / "sts_test.json").is_file():
        sts_data = data_root / "stsb" / "sts_test.json"
    data = ExperimentData.locate(data_root, data_name, sts_data, encodes)
    check_texts_are_real(data.dev, base_model)
    check_device(device)
    check_folder_path(runs_root, "--runs_root")
    probe = probe_from_split(load_eval(data.dev), str(data.dev)) if encode_backend == AUTO else None
    encoder = encoder or open_encoder(base_model, cache_dir, device, backend=encode_backend, probe=probe)
    _check_posthoc_widths(plan, encoder.dim)
    _check_train_sizes(plan, data)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    final = runs_root / f"{plan.name}-{data_name}-{stamp}"
    staging = new_staging(final)
    try:
        runner = PlanRun(PlanRecipe(plan, data, cache_dir, staging, device, describe_encoder(encoder)), encoder)
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


class PlanRun:
    """One plan on one dataset: the data loaded once, every text encoded once, then one method per kind
    of row. Validation is scored for every row (it is what selects); test only reports."""

    def __init__(self, recipe: PlanRecipe, encoder: Encoder):
        self.recipe, self.encoder = recipe, encoder
        plan, data = recipe.plan, recipe.data
        self.started = time.perf_counter()
        self.splits: dict[str, EvalSet] = {"val": load_eval(data.dev), "test": load_eval(data.test)}
        self.shift = load_eval(data.shift) if data.shift else None
        self.probes = {name: load_eval(path) for name, path in data.probes.items()}
        self.sts = load_sts(data.sts) if data.sts else None
        self.sts_dev = load_sts(data.sts_dev) if data.sts_dev else None
        needs_full = any(e.train == "full" for e in plan.entries)
        self.train = {
            "smoke": load_train(data.train_smoke),
            "full": load_train(data.train_full) if needs_full else None,
        }
        self.vectors = CachedVectors(encoder, self.cache_dir)
        self.vectors(self._every_text())  # encode once, up front: later steps only hit the cache
        self.baseline = {"test": evaluate_split(self.splits["test"], self.vectors)}
        self.base_sts = evaluate_sts(self.sts, self.vectors) if self.sts else None
        self.base_sts_dev = self.sts_dev_of(None)
        self.shift_check: dict | None = None

    plan = property(lambda self: self.recipe.plan)
    data = property(lambda self: self.recipe.data)
    cache_dir = property(lambda self: self.recipe.cache_dir)
    staging = property(lambda self: self.recipe.staging)
    device = property(lambda self: self.recipe.device)

    def _every_text(self) -> list[str]:
        splits = [*self.splits.values(), *([self.shift] if self.shift else []), *self.probes.values()]
        needed = [t for s in splits for t in (*s.queries.values(), *s.corpus.values())]
        for examples in self.train.values():
            needed += [t for e in examples or [] for t in (e.query, e.positive, e.negative) if t]
        for pairs in (self.sts, self.sts_dev):
            needed += pairs.sentence1 + pairs.sentence2 if pairs else []
        return list(dict.fromkeys(needed))

    def jobs(self, seeds: list[int] | None) -> Jobs:
        return [(entry, seed) for entry in self.plan.entries for seed in _entry_seeds(entry, self.plan, seeds)]

    def pairs_of(self, entry: PlanEntry, seed: int | None) -> list:
        """The labelled pairs a row learns from: the whole file, or a learning curve's sample for this seed."""
        examples = self.train[entry.train]
        return examples if entry.pairs is None else sample_pairs(examples, entry.pairs, seed)

    def run_job(self, entry: PlanEntry, seed: int | None) -> SeedResult:
        run = {
            "baseline": self.run_baseline,
            "posthoc": self.run_posthoc,
            "nudge": self.run_nudge,
            "train": self.run_train,
        }
        t0 = time.perf_counter()
        result = run[entry.kind](entry, seed)
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

    def sts_dev_of(self, head) -> float | None:
        return evaluate_sts(self.sts_dev, self.vectors, head) if self.sts_dev else None

    def val_ndcg(self, head=None, documents=None, similarity: str = "cosine", split: EvalSet | None = None) -> float:
        """Validation NDCG@10 alone, as selection scores it (no diagnostics: only test reports them)."""
        per_query = self.val_per_query(head, documents, similarity, split)
        return float(np.mean(list(per_query.values())))

    def val_per_query(self, head=None, documents=None, similarity: str = "cosine", split: EvalSet | None = None):
        split = split or self.splits["val"]
        query_ids, queries, doc_ids, docs = split_vectors(split, self.vectors)
        docs = documents if documents is not None else docs
        return per_query_ndcg_at_10(split, query_ids, queries, doc_ids, docs, head, similarity)

    def validation(self, head=None, documents=None, similarity: str = "cosine") -> dict:
        """What selection may read of one state: validation NDCG@10 (mean and per query) and the probes."""
        per_query = self.val_per_query(head, documents, similarity)
        return {
            "val_ndcg": float(np.mean(list(per_query.values()))),
            "val_per_query": per_query,
            "probes": self.probe_ndcg(head, documents, similarity),
        }

    def probe_ndcg(self, head=None, documents=None, similarity: str = "cosine") -> dict[str, float | None]:
        """NDCG@10 on each shift probe, as validation scores it. Stored document vectors (NUDGE) exist for the
        validation corpus only: a probe over another corpus gets None for them."""
        scores: dict[str, float | None] = {}
        for name, split in self.probes.items():
            if documents is not None and list(split.corpus) != list(self.splits["val"].corpus):
                scores[name] = None
            else:
                scores[name] = self.val_ndcg(head, documents, similarity, split)
        return scores

    def run_baseline(self, entry: PlanEntry, seed: int | None) -> SeedResult:
        return _seed_result(
            self.baseline["test"], sts=self.base_sts, seed=None, sts_dev=self.base_sts_dev, **self.validation()
        )

    def run_posthoc(self, entry: PlanEntry, seed: int | None) -> SeedResult:
        texts = list(dict.fromkeys(t for e in self.train[entry.train] for t in (e.query, e.positive, e.negative) if t))
        head = fit_posthoc(entry.transform, self.vectors(texts), **entry.options)  # training texts only
        folder = self.staging / "runs" / entry.name
        save_head(head, folder / "head")
        config = {"base_model": self.encoder.name, "encode_backend": self.encoder.backend, "kind": "posthoc"}
        config = {**config, "transform": entry.transform, **entry.options}
        atomic_write_json(folder / "config.json", {"config": config, "encoder": self.encoder.identity})
        atomic_write_json(folder / "status.json", {"completed": True})
        test = evaluate_split(self.splits["test"], self.vectors, head)
        sts = evaluate_sts(self.sts, self.vectors, head) if self.sts else None
        return _seed_result(test, sts=sts, seed=None, sts_dev=self.sts_dev_of(head), **self.validation(head))

    def run_nudge(self, entry: PlanEntry, seed: int | None) -> SeedResult:
        """NUDGE moves the stored document vectors of the evaluation corpus (dev and test share it here)."""
        corpus = self.splits["test"].corpus
        doc_ids = list(corpus)
        if doc_ids != list(self.splits["val"].corpus):
            raise InputError(f"{self.plan.path}: config {entry.name!r}: NUDGE needs dev and test to share one corpus")
        pairs = self.pairs_of(entry, seed)
        queries, answers = training_answers(pairs, doc_ids, corpus)
        val_ids, val_answers = split_answers(self.splits["val"], doc_ids)
        val_queries = self.vectors([self.splits["val"].queries[q] for q in val_ids])
        tuned = nudge_documents(
            entry.transform,
            self.vectors([corpus[d] for d in doc_ids]),
            self.vectors(queries),
            answers,
            val_queries,
            val_answers,
        )
        similarity = SIMILARITY[entry.transform]
        test = evaluate_split(self.splits["test"], self.vectors, documents=tuned, similarity=similarity)
        return _seed_result(test, sts=None, seed=seed, pairs=len(pairs), **self.validation(None, tuned, similarity))

    def run_train(self, entry: PlanEntry, seed: int | None) -> SeedResult:
        result, head = _train_entry(
            entry, seed, self.data, self.encoder, self.cache_dir, self.staging, self.baseline, self.device
        )
        if head is not None:  # a frozen encoder: the head alone is the model (a fine-tuned encoder is not checked)
            result.sts_dev = self.sts_dev_of(head)
            checked = self.validation(head)
            result.val_per_query, result.probes = checked["val_per_query"], checked["probes"]
        result.pairs = len(self.pairs_of(entry, seed))
        return result

    def check_shift(self, results: dict[str, list[SeedResult]]) -> dict | None:
        """The recommended configuration (and the best post-hoc row) on a second kind of input, next to the
        base model: does what wins in-domain hold when the query style shifts?"""
        if self.shift is None:
            return None
        picks = recommendations(self.plan, results, self.base_sts_dev)
        rows = {"base model": self._shift_ndcg([None])}
        for role in ("recommended", "best_posthoc"):
            name = picks.get(role)
            if name:
                heads = sorted((self.staging / "runs" / name).glob("seed*/head")) or [
                    self.staging / "runs" / name / "head"
                ]
                rows[name] = self._shift_ndcg([load_head(h) for h in heads])
        return {"data": str(self.data.shift), "queries": len(self.shift.queries), "ndcg@10": rows}

    def _shift_ndcg(self, heads: list) -> float:
        return float(sum(evaluate_split(self.shift, self.vectors, h).metrics["ndcg@10"] for h in heads) / len(heads))

    def meta(self, data_name: str, base_model: str, seeds: list[int] | None, stamp: str) -> dict:
        return {
            "plan": str(self.plan.path),
            "plan_name": self.plan.name,
            "data": data_name,
            "base_model": base_model,
            "seeds": seeds or self.plan.seeds,
            "encoder": self.encoder.identity,
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
    if entry.kind != "train" and entry.pairs is None:
        return [None]  # deterministic: one evaluation (a learning curve's NUDGE point draws its pairs per seed)
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
) -> tuple[SeedResult, torch.nn.Module | None]:
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
            return SeedResult(**{**read_json(stored), "reused": True}), None
    seed_everything(seed)
    run = run_training(cfg, encoder=encoder, quiet=True, base_evaluations=baseline, splits_to_report=("test",))
    if not cfg.freeze_base:  # 400 MB per run, inside the run folder this plan made; the metrics are what it needs
        shutil.rmtree(Path(cfg.output_dir) / "encoder", ignore_errors=True)
    sts = run.metrics.get("sts_spearman", {}).get("trained")
    validation = run.metrics["validation"]
    result = _seed_result(
        run.trained["test"],
        validation["selected"]["ndcg@10"],
        sts,
        seed=seed,
        history=run.history,
        curve=validation["curve"],
        collapsed=run.metrics["collapsed"],
        collapse_reasons=run.metrics["collapse_reasons"],
    )
    if reuse_key:
        atomic_write_json(cache_dir / "results" / f"{reuse_key}.json", asdict(result), indent=None)
    return result, (run.head if cfg.freeze_base else None)


def _result_key(cfg: TrainConfig, encoder: Encoder) -> str:
    """Identity of a run's result: its result settings and inputs' contents (TrainConfig's reuse view), the
    encoder, and the package's source (any change to the code that computes a result invalidates it)."""
    blob = {"schema": RESULT_SCHEMA, "source": source_digest(), "run": reuse_view(cfg), "encoder": encoder.fingerprint}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]


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
