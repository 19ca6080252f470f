"""One training run end to end: validate, encode once through the cache, measure the baseline, train,
measure the head, and write the run folder."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from isoadapt.cache import EmbeddingCache
from isoadapt.collapse import collapse_reasons
from isoadapt.config import TrainConfig
from isoadapt.data.formats import EvalSet, load_eval, load_sts, load_train
from isoadapt.encoder import Encoder
from isoadapt.errors import InputError
from isoadapt.evaluate import Evaluation, VectorSource, change_pct, evaluate_split, evaluate_sts, format_comparison, format_sts
from isoadapt.head import build_head, save_head
from isoadapt.checkpoint import STATE
from isoadapt.fileio import read_json
from isoadapt.run_folder import RunFolder, StepLog, git_commit, library_versions
from isoadapt.tracking import open_tracker
from isoadapt.train import TrainTable, last_epoch_means, train

log = logging.getLogger(__name__)
IN_MEMORY_BYTES = 1 << 30  # training vectors up to 1 GiB are gathered into RAM once; larger sets stay memory-mapped


def seed_everything(seed: int) -> torch.Generator:
    """Seeds are set once, here; components receive the generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class CachedVectors:
    """The frozen encoder's vectors through the disk cache: call it with texts, or locate texts once and
    gather rows later (training reads only each batch's rows from the memory-mapped shards)."""

    def __init__(self, encoder: Encoder, cache_dir: Path, storage: str = "float32"):
        self.encoder = encoder
        self.cache = EmbeddingCache(cache_dir, encoder.fingerprint, encoder.identity, storage)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.cache.get(texts, self.encoder.encode)

    def locate(self, texts: list[str]) -> list[tuple[int, int]]:
        return self.cache.ensure(texts, self.encoder.encode)

    def gather(self, locations: list[tuple[int, int]]) -> np.ndarray:
        return self.cache.gather(locations)


def cached_vectors(encoder: Encoder, cache_dir: Path) -> CachedVectors:
    return CachedVectors(encoder, cache_dir)


def cached_embed(head: torch.nn.Module, vectors: CachedVectors, locations: list[tuple[int, int]], device: str = "cpu"):
    """text indices (k,) -> projected embeddings (k, d), from cached base vectors: gathered into RAM once
    when they fit in IN_MEMORY_BYTES, else read batch by batch from the memory-mapped shards."""
    if len(locations) * vectors.encoder.dim * 4 <= IN_MEMORY_BYTES:
        table = torch.from_numpy(vectors.gather(locations)).to(device)  # (texts, d)
        return lambda indices: head(table[indices])
    return lambda indices: head(torch.from_numpy(vectors.gather([locations[i] for i in indices.tolist()])).to(device))


def memoized(encode: VectorSource) -> VectorSource:
    """In-memory memo for vectors that must not enter the disk cache (a fine-tuned encoder's)."""
    memo: dict[str, np.ndarray] = {}

    def vectors(texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if missing:
            memo.update(zip(missing, encode(missing)))
        return np.stack([memo[t] for t in texts])

    return vectors


def _std_summary(std: np.ndarray) -> dict:
    return {"mean": float(std.mean()), "min": float(std.min()), "max": float(std.max()), "per_dim": [round(float(s), 6) for s in std]}


@dataclass
class RunResult:
    metrics: dict
    head: torch.nn.Module
    history: list[dict]
    baseline: dict[str, Evaluation]
    trained: dict[str, Evaluation]
    folder: Path


def run_training(
    cfg: TrainConfig, encoder: Encoder | None = None, quiet: bool = False, base_evaluations: dict[str, Evaluation] | None = None,
    splits_to_report: tuple[str, ...] = ("val", "test"),
) -> RunResult:
    """Raises InputError before writing anything on bad input. `base_evaluations` skips re-measuring
    the baseline when a caller (the plan runner) already has it; `splits_to_report` lets it skip the
    splits it does not report (the plan reports test only)."""
    objective = cfg.validate()
    folder = RunFolder(cfg.output_dir, cfg.overwrite, cfg.resume)
    examples = load_train(cfg.train_data)
    splits: dict[str, EvalSet] = {"val": load_eval(cfg.val_data)}
    if cfg.test_data:
        splits["test"] = load_eval(cfg.test_data)
    splits = {name: split for name, split in splits.items() if name in splits_to_report} or splits
    sts = load_sts(cfg.sts_data) if cfg.sts_data else None
    if cfg.batch_size > len(examples):
        raise InputError(f"--batch_size {cfg.batch_size}: larger than the {len(examples)} training examples in {cfg.train_data}")
    if cfg.max_train_examples is not None:
        examples = examples[: cfg.max_train_examples]
    generator = seed_everything(cfg.seed)
    cache_dir = Path(cfg.cache_dir)
    encoder = encoder or Encoder(cfg.base_model, cache_dir, cfg.device, cfg.encode_batch_size, show_progress=not quiet, backend=cfg.encode_backend)
    base_vectors = cached_vectors(encoder, cache_dir)
    table = TrainTable.from_examples(examples)
    head = build_head({"type": cfg.head, "dim": encoder.dim}).to(cfg.device)

    staging = folder.open()
    try:
        baseline = {name: base_evaluations[name] for name in splits} if base_evaluations else {name: evaluate_split(split, base_vectors) for name, split in splits.items()}
        resumed = read_json(folder.checkpoint_dir / STATE)["history"] if cfg.resume and (folder.checkpoint_dir / STATE).is_file() else None
        if cfg.resume:
            log.info("resuming from step %d", len(resumed)) if resumed is not None else log.info("no checkpoint in %s: starting from scratch", folder.staging)
        step_log = StepLog(staging / "train_log.jsonl", resumed)
        tracker = open_tracker(cfg.tracker, staging, Path(cfg.output_dir), cfg.tracking_uri)
        tracker.log_params(cfg.to_dict())
        for name, evaluation in baseline.items():
            tracker.log_metrics({f"{name}/baseline/{k}": evaluation.metrics[k] for k in ("ndcg@10", "mrr@10", "recall@100")}, 0)

        def on_step(record: dict) -> None:
            step_log(record)
            tracker.log_step(record)

        if cfg.freeze_base:
            embed = cached_embed(head, base_vectors, base_vectors.locate(table.texts), cfg.device)  # encodes what the cache lacks, once
            parameters = [{"params": list(head.parameters()), "lr": cfg.projection_learning_rate}]
            modules = {"head": head}
        else:
            # A fresh copy: fine-tuning must never touch the encoder whose vectors fill the cache.
            tuned = Encoder(cfg.base_model, cache_dir, cfg.device, cfg.encode_batch_size, show_progress=not quiet)
            tuned.model.train()

            def embed(indices: torch.Tensor) -> torch.Tensor:
                features = tuned.model.preprocess([table.texts[i] for i in indices.tolist()])
                features = {k: v.to(cfg.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
                return head(tuned.model(features)["sentence_embedding"])

            parameters = [
                {"params": list(head.parameters()), "lr": cfg.projection_learning_rate},
                {"params": list(tuned.model.parameters()), "lr": cfg.base_learning_rate},
            ]
            modules = {"head": head, "encoder": tuned.model}
        started = time.perf_counter()
        history = train(
            table, embed, parameters, objective, cfg.epochs, cfg.batch_size, generator, on_step=on_step, progress=not quiet,
            checkpoint_dir=folder.checkpoint_dir, modules=modules, save_steps=cfg.save_steps, resume=cfg.resume,
        )
        train_seconds = time.perf_counter() - started
        step_log.close()
        head.eval()
        save_head(head.cpu(), staging / "head")
        if cfg.freeze_base:
            trained_vectors = base_vectors
        else:
            tuned.model.eval()
            tuned.model.save(str(staging / "encoder"))
            trained_vectors = memoized(tuned.encode)  # the fine-tuned encoder's vectors are not the cached base ones
        trained = {name: evaluate_split(split, trained_vectors, head) for name, split in splits.items()}
        for name, evaluation in trained.items():
            tracker.log_metrics({f"{name}/trained/{k}": evaluation.metrics[k] for k in ("ndcg@10", "mrr@10", "recall@100")}, len(history))
        tracker.close()
        sts_scores = {"data": cfg.sts_data, "baseline": evaluate_sts(sts, base_vectors), "trained": evaluate_sts(sts, trained_vectors, head)} if sts else None

        primary = "test" if "test" in splits else "val"
        collapse = collapse_reasons(baseline[primary].metrics, trained[primary].metrics, history[-1]["total"])
        metrics = {
            "primary_metric": "ndcg@10",
            **{
                name: {"baseline": baseline[name].metrics, "trained": trained[name].metrics, "change_pct": change_pct(baseline[name].metrics, trained[name].metrics)}
                for name in splits
            },
            "embedding_std": {"split": primary, "baseline": _std_summary(baseline[primary].std), "trained": _std_summary(trained[primary].std)},
            **({"sts_spearman": sts_scores} if sts_scores else {}),
            "collapsed": bool(collapse),
            "collapse_reasons": collapse,
            "loss_final": {k: history[-1][k] for k in ("total", "contrastive", "isotropy", "variance")},
            "loss_last_epoch_mean": last_epoch_means(history),
            "train": {"examples": len(examples), "unique_texts": len(table.texts), "steps": len(history), "seconds": round(train_seconds, 2)},
        }
        folder.write_json("metrics.json", metrics)
        folder.write_json(
            "config.json",
            {"config": cfg.to_dict(), "encoder": {"folder": str(encoder.folder), **encoder.identity}, "versions": library_versions(), "git": git_commit()},
        )
        final = folder.commit()
    except InputError:
        folder.discard()
        raise
    except BaseException:
        log.error("run stopped; its checkpoint stays in %s: rerun with --resume to continue", folder.staging)
        raise
    if not quiet:
        for name in splits:
            print(format_comparison(f"{name}: {cfg.val_data if name == 'val' else cfg.test_data}", baseline[name].metrics, trained[name].metrics))
        if sts_scores:
            print(format_sts(cfg.sts_data, sts_scores["baseline"], sts_scores["trained"]))
        print(f"run folder: {final}")
    return RunResult(metrics, head, history, baseline, trained, final)
