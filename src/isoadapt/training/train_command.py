"""The train command, one run end to end, as named steps: load and check the inputs, build what trains,
train, evaluate, write the run folder, print. Nothing is written before every input has been checked."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from isoadapt.data.formats import EvalSet, StsPairs, TrainExample, check_texts_are_real, load_eval, load_sts, load_train
from isoadapt.data.sampling import sample_pairs
from isoadapt.encoding.backend_choice import AUTO, probe_from_split
from isoadapt.encoding.cache import CachedVectors, cached_embed, memoized
from isoadapt.encoding.encoder import Encoder, open_encoder
from isoadapt.errors import InputError, Interrupted, failure
from isoadapt.evaluation import (
    Evaluation,
    VectorSource,
    change_pct,
    evaluate_split,
    evaluate_sts,
    format_comparison,
    format_sts,
    ndcg_at_10,
    split_vectors,
)
from isoadapt.fileio import read_json
from isoadapt.head import build_head, save_head
from isoadapt.losses import LOGGED_TERMS
from isoadapt.metrics.retrieval import RETRIEVAL_METRICS
from isoadapt.posthoc import initial_head
from isoadapt.training.checkpoint import STATE
from isoadapt.training.collapse import collapse_reasons
from isoadapt.training.config import TrainConfig, resume_view
from isoadapt.training.hard_negatives import mine_hard_negatives
from isoadapt.training.loop import LoopSettings, TrainTable, last_epoch_means, train
from isoadapt.training.run_folder import RunFolder, StepLog, git_commit, library_versions
from isoadapt.training.selection import ValidationSelector, selection_line
from isoadapt.training.tracking import open_tracker
from isoadapt.training.validation_plot import VALIDATION_PLOT, validation_png

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> torch.Generator:
    """Seeds are set once, here; components receive the generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class Inputs:
    examples: list[TrainExample]  # the pairs trained on
    unlabelled: list[str]  # every text of the training file, labels unused (what --init_texts all fits on)
    judged: list[TrainExample]  # every pair of the file: what hard-negative mining must never call negative
    val: EvalSet  # selection's split, always loaded
    splits: dict[str, EvalSet]  # the splits reported in metrics.json
    sts: StsPairs | None


@dataclass
class Trainable:
    """What the loop updates, and how it turns text indices into projected embeddings."""

    head: torch.nn.Module
    embed: object  # text indices (k,) -> (k, d)
    parameters: list[dict]
    modules: dict[str, torch.nn.Module]
    tuned: Encoder | None  # the fine-tuned encoder (full fine-tuning only)
    embed_query: object = None  # queries' own path (a query-only head); None: the same as documents


@dataclass
class RunResult:
    metrics: dict
    head: torch.nn.Module
    history: list[dict]
    baseline: dict[str, Evaluation]
    trained: dict[str, Evaluation]
    folder: Path


def load_inputs(cfg: TrainConfig, splits_to_report: tuple[str, ...]) -> Inputs:
    """Every input file, loaded and checked before anything is written."""
    for path in (cfg.train_data, cfg.val_data, cfg.test_data):
        if path:
            check_texts_are_real(path, cfg.base_model)
    examples = load_train(cfg.train_data)
    val = load_eval(cfg.val_data)
    splits = {"val": val, **({"test": load_eval(cfg.test_data)} if cfg.test_data else {})}
    splits = {name: split for name, split in splits.items() if name in splits_to_report} or splits
    sts = load_sts(cfg.sts_data) if cfg.sts_data else None
    unlabelled = list(dict.fromkeys(t for e in examples for t in (e.query, e.positive, e.negative) if t))
    judged = examples
    examples = examples[: cfg.max_train_examples] if cfg.max_train_examples else examples
    if cfg.train_pairs is not None:  # the run's own sample, from its seed
        examples = sample_pairs(examples, cfg.train_pairs, cfg.seed)
    if cfg.batch_size > len(examples):  # checked here, before the run folder is opened
        raise InputError(
            f"--batch_size {cfg.batch_size}: larger than the {len(examples)} training examples in {cfg.train_data}"
        )
    return Inputs(examples, unlabelled, judged, val, splits, sts)


def build_trainable(
    cfg: TrainConfig,
    encoder: Encoder,
    base_vectors: CachedVectors,
    table: TrainTable,
    quiet: bool,
    unlabelled: list[str] | None = None,
) -> Trainable:
    """A frozen encoder trains the head on cached vectors; full fine-tuning trains a fresh encoder copy too.
    A fitted start sees the pairs' texts, or with --init_texts all the `unlabelled` texts of the whole file."""
    locations = base_vectors.locate(table.texts)  # encodes what the cache lacks, once
    if cfg.head == "linear":
        fit_on = None
        if cfg.head_init != "identity":
            fit_on = base_vectors(unlabelled) if cfg.init_texts == "all" else base_vectors.gather(locations)
        if fit_on is not None and len(fit_on) < encoder.dim:
            log.warning(
                "--head_init %s: fitted on %d texts, fewer than the %d dimensions: the start is a poor estimate "
                "(it can score far below the base model); use more texts or --head_init identity",
                cfg.head_init,
                len(fit_on),
                encoder.dim,
            )
        head = initial_head(cfg.head_init, encoder.dim, fit_on, cfg.out_dim, cfg.adapt).to(cfg.device)
    else:
        head = build_head({"type": cfg.head, "dim": encoder.dim}).to(cfg.device)
    head_group = {"params": list(head.parameters()), "lr": cfg.projection_learning_rate}
    if cfg.freeze_base:
        embed = cached_embed(head, base_vectors, locations, cfg.device)
        embed_query = None
        if cfg.adapt == "query":  # documents keep their base vectors: only queries pass through the head
            embed, embed_query = cached_embed(None, base_vectors, locations, cfg.device), embed
        return Trainable(head, embed, [head_group], {"head": head}, None, embed_query)
    # A fresh copy: fine-tuning must never touch the encoder whose vectors fill the cache.
    tuned = Encoder(cfg.base_model, Path(cfg.cache_dir), cfg.device, cfg.encode_batch_size, show_progress=not quiet)
    tuned.model.train()

    def embed(indices: torch.Tensor) -> torch.Tensor:
        features = tuned.model.preprocess([table.texts[i] for i in indices.tolist()])
        features = {k: v.to(cfg.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        return head(tuned.model(features)["sentence_embedding"])

    groups = [head_group, {"params": list(tuned.model.parameters()), "lr": cfg.base_learning_rate}]
    return Trainable(head, embed, groups, {"head": head, "encoder": tuned.model}, tuned)


def train_head(
    cfg: TrainConfig, vectors: CachedVectors, table: TrainTable, progress: bool = False, wrap=None
) -> tuple[torch.nn.Module, list[dict]]:
    """One frozen-encoder head trained with `cfg`'s head, objective, learning rate, epochs, batch size and
    seed, and nothing else: no run folder, no selection, no evaluation. What the benches time and compare,
    so their recipe is the product's. `wrap` (embed -> embed) lets a bench alter the head's outputs."""
    generator = seed_everything(cfg.seed)  # before the head is built, as run_training does
    if cfg.init_texts != "pairs" or cfg.negatives != "file" or cfg.train_pairs is not None:
        raise InputError(
            "train_head trains on the table it is given: --init_texts, --negatives, --train_pairs need a run"
        )
    trainable = build_trainable(cfg, vectors.encoder, vectors, table, quiet=True)
    embed = wrap(trainable.embed) if wrap else trainable.embed
    settings = LoopSettings(cfg.epochs, cfg.batch_size, progress=progress)
    history = train(
        table, embed, trainable.parameters, cfg.objective(), settings, generator, embed_query=trainable.embed_query
    )
    return trainable.head.eval(), history


def run_loop(
    cfg: TrainConfig,
    folder: RunFolder,
    trainable: Trainable,
    table: TrainTable,
    tracker,
    generator,
    quiet: bool,
    selector: ValidationSelector,
) -> tuple[list[dict], float]:
    """The training loop with its step log and checkpoints; returns the history and the seconds it took."""
    resumed = _resumed_history(folder.checkpoint_dir / STATE) if cfg.resume else None
    if cfg.resume:
        log.info("resuming from step %d", len(resumed)) if resumed is not None else log.info(
            "no checkpoint in %s: starting from scratch", folder.staging
        )
    step_log = StepLog(folder.staging / "train_log.jsonl", resumed)

    def on_step(record: dict) -> None:
        step_log(record)
        tracker.log_step(record)

    settings = LoopSettings(
        cfg.epochs, cfg.batch_size, cfg.save_steps, cfg.eval_steps, folder.checkpoint_dir, cfg.resume, not quiet
    )
    started = time.perf_counter()
    try:
        history = train(
            table,
            trainable.embed,
            trainable.parameters,
            cfg.objective(),
            settings,
            generator,
            trainable.modules,
            selector,
            on_step,
            trainable.embed_query,
        )
    finally:
        step_log.close()
    return history, time.perf_counter() - started


class ValidationScorer:
    """Validation NDCG@10 of the trainable parts as they are now. Base vectors are read once; a fine-tuned
    encoder has moved after step 0, so its validation texts are encoded again each time (slow, but honest),
    and the last such encoding is kept for the final evaluation when that state is the one selected."""

    def __init__(self, trainable: Trainable, base_vectors: CachedVectors, split: EvalSet):
        self.trainable, self.split = trainable, split
        self.query_ids, self.query_vectors, self.doc_ids, self.doc_vectors = split_vectors(split, base_vectors)
        self.memo_step: int | None = None
        self.memo: dict[str, np.ndarray] = {}

    def __call__(self, step: int) -> float:
        queries, documents = self.query_vectors, self.doc_vectors
        tuned = self.trainable.tuned
        if tuned is not None and step > 0:
            tuned.model.eval()
            _, queries, _, documents = split_vectors(self.split, self._remember(step, tuned.encode))
            tuned.model.train()
        with torch.no_grad():
            value = ndcg_at_10(self.split, self.query_ids, queries, self.doc_ids, documents, self.trainable.head.eval())
        self.trainable.head.train()
        return value

    def _remember(self, step: int, encode):
        self.memo_step, self.memo = step, {}

        def encode_and_keep(texts: list[str]) -> np.ndarray:
            vectors = encode(texts)
            self.memo.update(zip(texts, vectors))
            return vectors

        return encode_and_keep


def _resumed_history(state: Path) -> list[dict] | None:
    if not state.is_file():
        return None
    saved = read_json(state)
    if not isinstance(saved, dict) or not isinstance(saved.get("history"), list):
        raise InputError(f"{state}: damaged checkpoint (no step history); rerun without --resume to start over")
    return saved["history"]


def tuned_vectors(
    trainable: Trainable, base_vectors: CachedVectors, scorer: ValidationScorer, selector: ValidationSelector
):
    """The vectors the selected state sees: the cached base ones for a frozen encoder, and also for a
    fine-tuned one restored to step 0 (its weights are then the base weights); else the fine-tuned encoder's,
    reusing the validation texts' vectors when the selected state is the last one scored."""
    tuned = trainable.tuned
    if tuned is None or selector.best["step"] == 0:
        return base_vectors
    return memoized(tuned.encode, dict(scorer.memo) if scorer.memo_step == selector.best["step"] else {})


def evaluate_trained(
    cfg: TrainConfig,
    folder: RunFolder,
    trainable: Trainable,
    trained_vectors: VectorSource,
    inputs: Inputs,
    base_vectors: CachedVectors,
) -> tuple[dict, dict | None]:
    """Save the head (and a fine-tuned encoder), then score it on every split and on STS."""
    head = trainable.head.eval()
    save_head(head.cpu(), folder.staging / "head")
    if trainable.tuned is not None:
        trainable.tuned.model.eval()
        trainable.tuned.model.save(str(folder.staging / "encoder"))
    trained = {name: evaluate_split(split, trained_vectors, head) for name, split in inputs.splits.items()}
    sts = None
    if inputs.sts:
        sts = {
            "data": cfg.sts_data,
            "baseline": evaluate_sts(inputs.sts, base_vectors),
            "trained": evaluate_sts(inputs.sts, trained_vectors, head),
        }
    return trained, sts


def _std_summary(std: np.ndarray) -> dict:
    return {
        "mean": float(std.mean()),
        "min": float(std.min()),
        "max": float(std.max()),
        "per_dim": [round(float(s), 6) for s in std],
    }


def build_metrics(
    baseline: dict,
    trained: dict,
    sts: dict | None,
    history: list[dict],
    inputs: Inputs,
    table: TrainTable,
    seconds: float,
) -> dict:
    """metrics.json: baseline vs trained per split, std, STS, collapse, loss terms and training size."""
    primary = "test" if "test" in inputs.splits else "val"
    collapse = collapse_reasons(baseline[primary].metrics, trained[primary].metrics, history[-1]["total"])
    return {
        "primary_metric": "ndcg@10",
        **{
            name: {
                "baseline": baseline[name].metrics,
                "trained": trained[name].metrics,
                "change_pct": change_pct(baseline[name].metrics, trained[name].metrics),
            }
            for name in inputs.splits
        },
        "embedding_std": {
            "split": primary,
            "baseline": _std_summary(baseline[primary].std),
            "trained": _std_summary(trained[primary].std),
        },
        **({"sts_spearman": sts} if sts else {}),
        "collapsed": bool(collapse),
        "collapse_reasons": collapse,
        "loss_final": {k: history[-1][k] for k in LOGGED_TERMS},
        "loss_last_epoch_mean": last_epoch_means(history),
        "train": {
            "examples": len(inputs.examples),
            "unique_texts": len(table.texts),
            "steps": len(history),
            "seconds": round(seconds, 2),
        },
    }


def print_summary(
    cfg: TrainConfig, metrics: dict, baseline: dict, trained: dict, sts: dict | None, final: Path
) -> None:
    for name in trained:
        print(
            format_comparison(
                f"{name}: {cfg.val_data if name == 'val' else cfg.test_data}",
                baseline[name].metrics,
                trained[name].metrics,
            )
        )
    if sts:
        print(format_sts(cfg.sts_data, sts["baseline"], sts["trained"]))
    print(selection_line(metrics["validation"]))
    print(f"run folder: {final}")


def train_and_score(cfg, folder, trainable, table, tracker, generator, quiet, inputs, base_vectors, baseline):
    """Train with selection on validation, then score the selected state; every number also goes to the
    tracker, which the caller closes (also on a stop, before the folder is kept or removed)."""
    tracker.log_params(cfg.to_dict())
    for name, evaluation in baseline.items():
        tracker.log_metrics({f"{name}/baseline/{k}": evaluation.metrics[k] for k in RETRIEVAL_METRICS}, 0)
    scorer = ValidationScorer(trainable, base_vectors, inputs.val)
    selector = ValidationSelector(trainable.modules, scorer, cfg.early_stopping_patience)
    history, seconds = run_loop(cfg, folder, trainable, table, tracker, generator, quiet, selector)
    validation = selector.summary()
    for point in validation["curve"]:  # the validation curve at the steps it was scored, as in metrics.json
        tracker.log_metrics({"val/ndcg@10": point["ndcg@10"]}, point["step"])
    tracker.log_metrics({"val/selected_ndcg@10": validation["selected"]["ndcg@10"]}, validation["selected"]["step"])
    trained, sts = evaluate_trained(
        cfg, folder, trainable, tuned_vectors(trainable, base_vectors, scorer, selector), inputs, base_vectors
    )
    for name, evaluation in trained.items():
        tracker.log_metrics({f"{name}/trained/{k}": evaluation.metrics[k] for k in RETRIEVAL_METRICS}, len(history))
    return history, seconds, selector, trained, sts


def run_training(
    cfg: TrainConfig,
    encoder: Encoder | None = None,
    quiet: bool = False,
    base_evaluations: dict[str, Evaluation] | None = None,
    splits_to_report: tuple[str, ...] = ("val", "test"),
    summary: bool | None = None,
) -> RunResult:
    """Raises InputError before writing anything on bad input. `summary` prints the result lines (default:
    unless quiet; `isoadapt.fit` shows progress bars without them). `base_evaluations` skips re-measuring
    the baseline when a caller (the plan runner) already has it; `splits_to_report` lets it skip the
    splits it does not report (the plan reports test only)."""
    cfg.validate()
    folder = RunFolder(cfg.output_dir, cfg.overwrite, cfg.resume)
    inputs = load_inputs(cfg, splits_to_report)
    generator = seed_everything(cfg.seed)
    encoder = encoder or open_encoder(
        cfg.base_model,
        Path(cfg.cache_dir),
        cfg.device,
        cfg.encode_batch_size,
        show_progress=not quiet,
        backend=cfg.encode_backend,
        probe=probe_from_split(inputs.val, cfg.val_data) if cfg.encode_backend == AUTO else None,
    )
    cfg = replace(cfg, encode_backend=encoder.backend)  # `auto` resolved: the run records the backend it ran
    base_vectors = CachedVectors(encoder, Path(cfg.cache_dir))
    mining = None
    if cfg.negatives == "hard":
        inputs.examples, mining = mine_hard_negatives(
            inputs.examples, base_vectors, cfg.hard_negative_margin, judged=inputs.judged
        )
    table = TrainTable.from_examples(inputs.examples)
    folder.open(resume_view(cfg))
    try:
        baseline = (
            {name: base_evaluations[name] for name in inputs.splits}
            if base_evaluations
            else {name: evaluate_split(split, base_vectors) for name, split in inputs.splits.items()}
        )
        trainable = build_trainable(cfg, encoder, base_vectors, table, quiet, inputs.unlabelled)
        with open_tracker(cfg.tracker, folder.staging, Path(cfg.output_dir), cfg.tracking_uri) as tracker:
            history, seconds, selector, trained, sts = train_and_score(
                cfg, folder, trainable, table, tracker, generator, quiet, inputs, base_vectors, baseline
            )
        metrics = {
            **build_metrics(baseline, trained, sts, history, inputs, table, seconds),
            "validation": selector.summary(),
            **({"hard_negatives": asdict(mining)} if mining else {}),
        }
        folder.write_json("metrics.json", metrics)
        folder.write_bytes(VALIDATION_PLOT, validation_png(metrics["validation"]))
        folder.write_json(
            "config.json",
            {
                "config": cfg.to_dict(),
                "encoder": {"folder": str(encoder.folder), **encoder.identity},
                **({"encode_backend_choice": encoder.backend_choice} if encoder.backend_choice else {}),
                "versions": library_versions(),
                "git": git_commit(),
                **tracker.reference(),  # where MLflow holds this run, for `log_run_to_mlflow`
            },
        )
        final = folder.commit()
    except KeyboardInterrupt:
        raise Interrupted(f"training of {cfg.output_dir} interrupted: {folder.close_failed(keep=True)}") from None
    except InputError:
        if folder.lock is not None:  # still ours: nothing worth keeping after bad input
            folder.close_failed(keep=False)
        raise
    except Exception as err:
        raise failure(err, folder.close_failed(keep=True)) from err
    if (not quiet) if summary is None else summary:
        print_summary(cfg, metrics, baseline, trained, sts, final)
    return RunResult(metrics, trainable.head, history, baseline, trained, final)
