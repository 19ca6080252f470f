"""The train command, one run end to end, as named steps: load and check the inputs (train_inputs), build
what trains (trainable), train and score (train_and_score), write the run folder and print (run_metrics).
Nothing is written before every input has been checked."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from isoadapt.encoding.backend_choice import AUTO, probe_from_split
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.encoder import Encoder, open_encoder
from isoadapt.errors import InputError, Interrupted, failure
from isoadapt.evaluation import Evaluation, evaluate_split
from isoadapt.training.config import TrainConfig, resume_view
from isoadapt.training.cross_model import cross_trainable, open_cross_model, paired_examples, paired_texts
from isoadapt.training.hard_negatives import mine_hard_negatives
from isoadapt.training.loop import TrainTable
from isoadapt.training.run_folder import RunFolder
from isoadapt.training.run_metrics import build_metrics, print_summary, write_run_files
from isoadapt.training.seeding import seed_everything
from isoadapt.training.tracking import open_tracker
from isoadapt.training.train_and_score import train_and_score
from isoadapt.training.train_inputs import Inputs, load_inputs, prompted_inputs
from isoadapt.training.trainable import build_trainable


@dataclass
class RunResult:
    metrics: dict
    head: torch.nn.Module
    history: list[dict]
    baseline: dict[str, Evaluation]
    trained: dict[str, Evaluation]
    folder: Path


def run_training(
    cfg: TrainConfig,
    encoder: Encoder | None = None,
    quiet: bool = False,
    base_evaluations: dict[str, Evaluation] | None = None,
    splits_to_report: tuple[str, ...] = ("val", "test"),
    summary: bool | None = None,
    query_encoder: Encoder | None = None,
) -> RunResult:
    """Raises InputError before writing anything on bad input. `summary` prints the result lines (default:
    unless quiet; `isoadapt.fit` shows progress bars without them). `base_evaluations` skips re-measuring
    the baseline when a caller (the plan runner) already has it; `splits_to_report` lets it skip the
    splits it does not report (the plan reports test only). A cross-model run (cfg.query_model) opens its
    query model (or uses `query_encoder`); its baseline stays the base model on both sides."""
    cfg.validate()
    folder = RunFolder(cfg.output_dir, cfg.overwrite, cfg.resume)
    inputs = load_inputs(cfg, splits_to_report)
    generator = seed_everything(cfg.seed)
    encoder = encoder or _open_encoder(cfg, inputs, quiet)
    cfg = replace(cfg, encode_backend=encoder.backend)  # `auto` resolved: the run records the backend it ran
    inputs = prompted_inputs(inputs, encoder.prompts)
    base_vectors = CachedVectors(encoder, Path(cfg.cache_dir))
    cross = open_cross_model(cfg, encoder, base_vectors, query_encoder, quiet)
    paired = paired_texts(inputs.judged, cfg.paired_texts, cfg.seed) if cross else []
    if cross and cfg.train_on == "paired_texts":
        inputs.examples = paired_examples(paired)
    mining = None
    if cfg.negatives == "hard":  # mined in the OLD index with the OLD model's queries (docs/upgrade.md says why)
        inputs.examples, mining = mine_hard_negatives(
            inputs.examples, base_vectors, cfg.hard_negative_margin, judged=inputs.judged
        )
    table = TrainTable.from_examples(inputs.examples)
    folder.open(resume_view(cfg))
    try:
        baseline = _baselines(inputs, base_vectors, base_evaluations)
        if cross:
            trainable = cross_trainable(cfg, cross, base_vectors, table, paired)
        else:
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
        write_run_files(folder, cfg, encoder, metrics, tracker, cross and cross.encoder)
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


def _open_encoder(cfg: TrainConfig, inputs: Inputs, quiet: bool) -> Encoder:
    """The run's encoder; `--encode_backend auto` chooses on a probe built from the validation split."""
    return open_encoder(
        cfg.base_model,
        Path(cfg.cache_dir),
        cfg.device,
        cfg.encode_batch_size,
        show_progress=not quiet,
        backend=cfg.encode_backend,
        probe=probe_from_split(inputs.val, cfg.val_data) if cfg.encode_backend == AUTO else None,
        query_prompt=cfg.query_prompt,
        document_prompt=cfg.document_prompt,
    )


def _baselines(inputs: Inputs, base_vectors: CachedVectors, given: dict[str, Evaluation] | None) -> dict:
    """The base model on every reported split: the caller's measurement when it has one (the plan runner)."""
    if given:
        return {name: given[name] for name in inputs.splits}
    return {name: evaluate_split(split, base_vectors) for name, split in inputs.splits.items()}
