"""What a finished run writes and prints: metrics.json (baseline vs trained per split, std, STS, collapse,
loss terms, training size), the validation plot, config.json, and the summary lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from isoadapt.encoding.encoder import Encoder
from isoadapt.evaluation import change_pct, format_comparison, format_sts
from isoadapt.losses import LOGGED_TERMS
from isoadapt.training.collapse import collapse_reasons
from isoadapt.training.config import TrainConfig
from isoadapt.training.loop import TrainTable, last_epoch_means
from isoadapt.training.run_folder import RunFolder, git_commit, library_versions
from isoadapt.training.selection import selection_line
from isoadapt.training.train_inputs import Inputs
from isoadapt.training.validation_plot import VALIDATION_PLOT, validation_png


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


def encoder_record(encoder: Encoder) -> dict:
    """An encoder's identity as config.json records it (`encoder`, and a cross-model run's `query_encoder`):
    its folder, name, weights sha256 and fingerprint parts, and the prompts it applied."""
    return {"folder": str(encoder.folder), **encoder.identity, "prompts": encoder.prompts.as_dict()}


def write_run_files(
    folder: RunFolder, cfg: TrainConfig, encoder: Encoder, metrics: dict, tracker, query_encoder: Encoder | None = None
) -> None:
    """metrics.json, the validation plot and config.json (settings, encoder, versions, git, tracker's run);
    a cross-model run also records its query model's identity as `query_encoder`."""
    folder.write_json("metrics.json", metrics)
    folder.write_bytes(VALIDATION_PLOT, validation_png(metrics["validation"]))
    folder.write_json(
        "config.json",
        {
            "config": cfg.to_dict(),
            "encoder": encoder_record(encoder),
            **({"query_encoder": encoder_record(query_encoder)} if query_encoder is not None else {}),
            **({"encode_backend_choice": encoder.backend_choice} if encoder.backend_choice else {}),
            "versions": library_versions(),
            "git": git_commit(),
            **tracker.reference(),  # where MLflow holds this run, for `log_run_to_mlflow`
        },
    )


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
