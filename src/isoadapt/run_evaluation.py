"""`isoadapt evaluate`: score a finished run's head on any processed split, next to its base model."""

from __future__ import annotations

from pathlib import Path

from isoadapt.config import TrainConfig
from isoadapt.data.formats import load_eval, load_sts
from isoadapt.encoder import Encoder
from isoadapt.errors import InputError
from isoadapt.evaluate import change_pct, evaluate_split, evaluate_sts, format_comparison, format_sts
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.head import load_head
from isoadapt.training_run import cached_vectors


def evaluate_run(run_dir: Path, data: Path, cache_dir: Path, output: Path | None = None, sts_data: Path | None = None) -> dict:
    if not (run_dir / "status.json").is_file():
        raise InputError(f"--run_dir {run_dir}: not a completed run folder (no status.json)")
    split = load_eval(data)
    sts = load_sts(sts_data) if sts_data else None
    cfg = TrainConfig.from_dict(read_json(run_dir / "config.json")["config"])
    base = Encoder(cfg.base_model, cache_dir, backend=cfg.encode_backend)
    head = load_head(run_dir / "head", expected_dim=base.dim)
    baseline = evaluate_split(split, cached_vectors(base, cache_dir)).metrics
    fine_tuned = run_dir / "encoder"
    trained_encoder = Encoder(str(fine_tuned), cache_dir) if fine_tuned.is_dir() else base
    trained_vectors = cached_vectors(trained_encoder, cache_dir)
    trained = evaluate_split(split, trained_vectors, head).metrics
    result = {"data": str(data), "run_dir": str(run_dir), "baseline": baseline, "trained": trained, "change_pct": change_pct(baseline, trained)}
    print(format_comparison(str(data), baseline, trained))
    if sts:
        base_vectors = cached_vectors(base, cache_dir)
        result["sts_spearman"] = {"data": str(sts_data), "baseline": evaluate_sts(sts, base_vectors), "trained": evaluate_sts(sts, trained_vectors, head)}
        print(format_sts(str(sts_data), result["sts_spearman"]["baseline"], result["sts_spearman"]["trained"]))
    if output:
        atomic_write_json(output, result)
    return result
