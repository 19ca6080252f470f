"""One training run end to end: validate, encode once through the cache, measure the baseline, train,
measure the head, and write the run folder."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch

from isoadapt.cache import EmbeddingCache
from isoadapt.config import TrainConfig
from isoadapt.data.formats import EvalSet, load_eval, load_sts, load_train
from isoadapt.encoder import Encoder
from isoadapt.errors import InputError
from isoadapt.evaluate import VectorSource, change_pct, evaluate_split, evaluate_sts, format_comparison, format_sts
from isoadapt.head import build_head, save_head
from isoadapt.run_folder import RunFolder, StepLog, git_commit, library_versions
from isoadapt.train import TrainTable, last_epoch_means, train

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> torch.Generator:
    """Seeds are set once, here; components receive the generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cached_vectors(encoder: Encoder, cache_dir: Path) -> VectorSource:
    cache = EmbeddingCache(cache_dir, encoder.fingerprint, encoder.identity)
    return lambda texts: cache.get(texts, encoder.encode)


def _std_summary(std: np.ndarray) -> dict:
    return {"mean": float(std.mean()), "min": float(std.min()), "max": float(std.max()), "per_dim": [round(float(s), 6) for s in std]}


def run_training(cfg: TrainConfig, encoder: Encoder | None = None) -> dict:
    """Returns metrics.json's content; raises InputError before writing anything on bad input."""
    objective = cfg.validate()
    folder = RunFolder(cfg.output_dir, cfg.overwrite)
    examples = load_train(cfg.train_data)
    splits: dict[str, EvalSet] = {"val": load_eval(cfg.val_data)}
    if cfg.test_data:
        splits["test"] = load_eval(cfg.test_data)
    sts = load_sts(cfg.sts_data) if cfg.sts_data else None
    if cfg.batch_size > len(examples):
        raise InputError(f"--batch_size {cfg.batch_size}: larger than the {len(examples)} training examples in {cfg.train_data}")
    generator = seed_everything(cfg.seed)
    cache_dir = Path(cfg.cache_dir)
    encoder = encoder or Encoder(cfg.base_model, cache_dir, cfg.device, cfg.encode_batch_size)
    base_vectors = cached_vectors(encoder, cache_dir)
    table = TrainTable.from_examples(examples)
    head = build_head({"type": cfg.head, "dim": encoder.dim}).to(cfg.device)

    staging = folder.open()
    try:
        baseline = {name: evaluate_split(split, base_vectors) for name, split in splits.items()}
        step_log = StepLog(staging / "train_log.jsonl")
        if cfg.freeze_base:
            table_vectors = torch.as_tensor(base_vectors(table.texts)).to(cfg.device)  # (texts, d)

            def embed(indices: torch.Tensor) -> torch.Tensor:
                return head(table_vectors[indices])

            parameters = [{"params": list(head.parameters()), "lr": cfg.projection_learning_rate}]
        else:
            model = encoder.model
            model.train()

            def embed(indices: torch.Tensor) -> torch.Tensor:
                features = model.preprocess([table.texts[i] for i in indices.tolist()])
                features = {k: v.to(cfg.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
                return head(model(features)["sentence_embedding"])

            parameters = [
                {"params": list(head.parameters()), "lr": cfg.projection_learning_rate},
                {"params": list(model.parameters()), "lr": cfg.base_learning_rate},
            ]
        started = time.perf_counter()
        history = train(table, embed, parameters, objective, cfg.epochs, cfg.batch_size, generator, on_step=step_log)
        train_seconds = time.perf_counter() - started
        step_log.close()
        head.eval()
        save_head(head.cpu(), staging / "head")
        if cfg.freeze_base:
            trained_vectors = base_vectors
        else:
            encoder.model.eval()
            encoder.model.save(str(staging / "encoder"))
            trained_vectors = encoder.encode  # the fine-tuned encoder's vectors are not the cached base ones
        trained = {name: evaluate_split(split, trained_vectors, head) for name, split in splits.items()}
        sts_scores = {"data": cfg.sts_data, "baseline": evaluate_sts(sts, base_vectors), "trained": evaluate_sts(sts, trained_vectors, head)} if sts else None

        primary = "test" if "test" in splits else "val"
        metrics = {
            "primary_metric": "ndcg@10",
            **{
                name: {"baseline": baseline[name][0], "trained": trained[name][0], "change_pct": change_pct(baseline[name][0], trained[name][0])}
                for name in splits
            },
            "embedding_std": {"split": primary, "baseline": _std_summary(baseline[primary][1]), "trained": _std_summary(trained[primary][1])},
            **({"sts_spearman": sts_scores} if sts_scores else {}),
            "loss_final": {k: history[-1][k] for k in ("total", "contrastive", "isotropy", "variance")},
            "loss_last_epoch_mean": last_epoch_means(history),
            "train": {"examples": len(examples), "unique_texts": len(table.texts), "steps": len(history), "seconds": round(train_seconds, 2)},
        }
        folder.write_json("metrics.json", metrics)
        folder.write_json(
            "config.json",
            {"config": cfg.to_dict(), "encoder": {"folder": str(encoder.folder), **encoder.identity}, "versions": library_versions(), "git": git_commit()},
        )
        folder.commit()
    except BaseException:
        folder.discard()
        raise
    for name in splits:
        print(format_comparison(f"{name}: {Path(cfg.val_data if name == 'val' else cfg.test_data)}", baseline[name][0], trained[name][0]))
    if sts_scores:
        print(format_sts(cfg.sts_data, sts_scores["baseline"], sts_scores["trained"]))
    print(f"run folder: {folder.final}")
    return metrics
