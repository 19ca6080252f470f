"""Training proper: the loop with its step log, checkpoints and selection on validation, then the selected
state saved and scored on every reported split and on STS; every number also goes to the tracker."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from isoadapt.encoding.cache import CachedVectors
from isoadapt.errors import InputError
from isoadapt.evaluation import VectorSource, evaluate_split, evaluate_sts
from isoadapt.fileio import read_json
from isoadapt.head import save_head
from isoadapt.metrics.retrieval import RETRIEVAL_METRICS
from isoadapt.training.checkpoint import STATE
from isoadapt.training.config import TrainConfig
from isoadapt.training.loop import LoopSettings, TrainTable, train
from isoadapt.training.run_folder import RunFolder, StepLog
from isoadapt.training.selection import ValidationSelector
from isoadapt.training.train_inputs import Inputs
from isoadapt.training.trainable import Trainable
from isoadapt.training.validation_scorer import ValidationScorer, tuned_vectors

log = logging.getLogger(__name__)


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


def _resumed_history(state: Path) -> list[dict] | None:
    if not state.is_file():
        return None
    saved = read_json(state)
    if not isinstance(saved, dict) or not isinstance(saved.get("history"), list):
        raise InputError(f"{state}: damaged checkpoint (no step history); rerun without --resume to start over")
    return saved["history"]


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


def train_and_score(cfg, folder, trainable, table, tracker, generator, quiet, inputs, base_vectors, baseline):
    """Train with selection on validation, then score the selected state; every number also goes to the
    tracker, which the caller closes (also on a stop, before the folder is kept or removed)."""
    tracker.log_params(cfg.to_dict())
    for name, evaluation in baseline.items():
        tracker.log_metrics({f"{name}/baseline/{k}": evaluation.metrics[k] for k in RETRIEVAL_METRICS}, 0)
    head_vectors = trainable.vectors if trainable.vectors is not None else base_vectors  # a cross-model run: per side
    scorer = ValidationScorer(trainable, head_vectors, inputs.val)
    selector = ValidationSelector(trainable.modules, scorer, cfg.early_stopping_patience)
    history, seconds = run_loop(cfg, folder, trainable, table, tracker, generator, quiet, selector)
    validation = selector.summary()
    for point in validation["curve"]:  # the validation curve at the steps it was scored, as in metrics.json
        tracker.log_metrics({"val/ndcg@10": point["ndcg@10"]}, point["step"])
    tracker.log_metrics({"val/selected_ndcg@10": validation["selected"]["ndcg@10"]}, validation["selected"]["step"])
    trained, sts = evaluate_trained(
        cfg, folder, trainable, tuned_vectors(trainable, head_vectors, scorer, selector), inputs, base_vectors
    )
    for name, evaluation in trained.items():
        tracker.log_metrics({f"{name}/trained/{k}": evaluation.metrics[k] for k in RETRIEVAL_METRICS}, len(history))
    return history, seconds, selector, trained, sts
