"""A plan's trained rows: one `run_training` per (configuration, seed) into the plan's staging folder, then
the selected head scored as validation scores every row. A full fine-tuning result is stored by its
identity (settings, inputs, encoder, source) and reused by a later plan that asks for the same run."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from isoadapt.encoding.encoder import Encoder
from isoadapt.experiment.plan import PlanEntry
from isoadapt.experiment.plan_inputs import PlanInputs
from isoadapt.experiment.seed_result import SeedResult, seed_result
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.training.config import TrainConfig, reuse_view
from isoadapt.training.run_folder import source_digest
from isoadapt.training.seeding import seed_everything
from isoadapt.training.train_command import run_training

log = logging.getLogger(__name__)
RESULT_SCHEMA = 2  # 2: trained heads are selected on validation


def train_row(run: PlanInputs, entry: PlanEntry, seed: int | None) -> SeedResult:
    result, head = _train_entry(run, entry, seed)
    if head is not None:  # a frozen encoder: the head alone is the model (a fine-tuned encoder is not checked)
        result.sts_dev = run.sts_dev_of(head)
        checked = run.validation(head)
        result.val_per_query, result.probes = checked["val_per_query"], checked["probes"]
    result.pairs = len(run.pairs_of(entry, seed))
    return result


def _train_entry(run: PlanInputs, entry: PlanEntry, seed: int) -> tuple[SeedResult, torch.nn.Module | None]:
    """One training run of the plan (or its stored result); the head when the encoder stayed frozen."""
    data, encoder, cache_dir = run.data, run.encoder, run.cache_dir
    cfg = TrainConfig(
        train_data=str(data.train_full if entry.train == "full" else data.train_smoke),
        val_data=str(data.dev),
        test_data=str(data.test),
        sts_data=str(data.sts) if data.sts else None,
        output_dir=str(run.staging / "runs" / entry.name / f"seed{seed}"),
        base_model=encoder.name,
        query_prompt=encoder.prompts.query,
        document_prompt=encoder.prompts.document,
        cache_dir=str(cache_dir),
        seed=seed,
        device=run.device,
        encode_backend=encoder.backend,
        query_model=run.cross_encoder.name if run.cross_encoder else None,  # a cross-model row
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
    trained = run_training(
        cfg,
        encoder=encoder,
        quiet=True,
        base_evaluations=run.baseline,
        splits_to_report=("test",),
        query_encoder=run.cross_encoder,
    )
    if not cfg.freeze_base:  # 400 MB per run, inside the run folder this plan made; the metrics are what it needs
        shutil.rmtree(Path(cfg.output_dir) / "encoder", ignore_errors=True)
    result = _trained_result(trained, seed)
    if reuse_key:
        atomic_write_json(cache_dir / "results" / f"{reuse_key}.json", asdict(result), indent=None)
    return result, (trained.head if cfg.freeze_base else None)


def _trained_result(run, seed: int) -> SeedResult:
    """The report's view of one finished training run: its selected state's test numbers and history."""
    validation = run.metrics["validation"]
    return seed_result(
        run.trained["test"],
        validation["selected"]["ndcg@10"],
        run.metrics.get("sts_spearman", {}).get("trained"),
        seed=seed,
        history=run.history,
        curve=validation["curve"],
        collapsed=run.metrics["collapsed"],
        collapse_reasons=run.metrics["collapse_reasons"],
    )


def _result_key(cfg: TrainConfig, encoder: Encoder) -> str:
    """Identity of a run's result: its result settings and inputs' contents (TrainConfig's reuse view), the
    encoder, and the package's source (any change to the code that computes a result invalidates it)."""
    blob = {"schema": RESULT_SCHEMA, "source": source_digest(), "run": reuse_view(cfg), "encoder": encoder.fingerprint}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]
