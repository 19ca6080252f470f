"""The plan's report: one row per configuration (mean +- std over seeds, change vs the base model, a
paired t-test over queries, STS, isotropy, collapse), as report.md, report.json and PNG plots."""

from __future__ import annotations

import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

from isoadapt.fileio import atomic_write_bytes, atomic_write_json
from isoadapt.metrics.retrieval import RETRIEVAL_METRICS
from isoadapt.plan import Plan

ISOTROPY_COLUMNS = ("isoscore", "effective_rank", "embedding_std_mean", "mean_cosine")


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarise(plan: Plan, results: dict, base_sts: float | None) -> list[dict]:
    """One row per configuration; the significance test pairs per-query NDCG@10 (mean over seeds) with
    the base model's, over the same test queries (scipy's paired t-test: ranx's tests compare single
    runs, and a row here pools several seeds)."""
    base = results["baseline"][0] if "baseline" in results else None
    qids = sorted(base.per_query) if base else []
    rows = []
    for entry in plan.entries:
        seeds = results[entry.name]
        row = {
            "name": entry.name,
            "label": entry.label,
            "kind": entry.kind,
            "seeds": [r.seed for r in seeds],
            "reused": any(r.reused for r in seeds),
        }
        for metric in (
            *RETRIEVAL_METRICS,
            *ISOTROPY_COLUMNS,
            "isoscore_star",
            "uniformity",
            "alignment",
            "partition_isotropy",
        ):
            values = [r.test[metric] for r in seeds if metric in r.test]
            if values:
                row[metric], row[f"{metric}_std"] = _mean_std(values)
        sts = [r.sts for r in seeds if r.sts is not None]
        row["sts_spearman"] = float(np.mean(sts)) if sts else None
        row["collapsed"] = any(r.collapsed for r in seeds)
        row["collapse_reasons"] = sorted({reason for r in seeds for reason in r.collapse_reasons})
        row["seconds"] = round(sum(r.seconds for r in seeds), 2)
        if base:
            row["vs_baseline_pct"] = 100.0 * (row["ndcg@10"] - base.test["ndcg@10"]) / base.test["ndcg@10"]
            if entry.kind == "baseline":
                row["p_value"] = None
            else:
                pooled = np.mean([[r.per_query[q] for q in qids] for r in seeds], axis=0)
                reference = np.array([base.per_query[q] for q in qids])
                row["p_value"] = None if np.allclose(pooled, reference) else float(ttest_rel(pooled, reference).pvalue)
        rows.append(row)
    return rows


def _fmt(row: dict, metric: str, digits: int = 4) -> str:
    if metric not in row:
        return "–"
    value, spread = row[metric], row.get(f"{metric}_std", 0.0)
    return f"{value:.{digits}f} ± {spread:.{digits}f}" if len(row["seeds"]) > 1 else f"{value:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    columns = (
        "configuration",
        "seeds",
        "NDCG@10",
        "MRR@10",
        "Recall@100",
        "vs base",
        "p (paired t)",
        "STS ρ",
        "IsoScore",
        "eff. rank",
        "std",
        "mean cos",
        "collapse",
    )
    head = "| " + " | ".join(columns) + " |"
    lines = [head, "|" + "|".join(["---"] * 13) + "|"]
    for row in rows:
        p = row.get("p_value")
        lines.append(
            "| "
            + " | ".join(
                [
                    row["label"] + (" (reused)" if row["reused"] else ""),
                    str(len(row["seeds"])) if row["kind"] == "train" else "–",
                    _fmt(row, "ndcg@10"),
                    _fmt(row, "mrr@10"),
                    _fmt(row, "recall@100"),
                    "–" if row["kind"] == "baseline" else f"{row['vs_baseline_pct']:+.2f}%",
                    "–" if p is None else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"),
                    "–" if row["sts_spearman"] is None else f"{row['sts_spearman']:.4f}",
                    _fmt(row, "isoscore", 3),
                    _fmt(row, "effective_rank", 1),
                    _fmt(row, "embedding_std_mean", 4),
                    _fmt(row, "mean_cosine", 3),
                    "**yes**" if row["collapsed"] else "no",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def write_report(folder: Path, plan: Plan, results: dict, meta: dict, base_sts: float | None) -> None:
    from isoadapt.plots import plot_losses, plot_spectrum, plot_tradeoff

    rows = summarise(plan, results, base_sts)
    meta = {**meta, "machine": {"platform": platform.platform(), "processor": _cpu_model(), "cores": _cores()}}
    atomic_write_json(
        folder / "report.json",
        {"meta": meta, "rows": rows, "results": {k: [asdict(r) for r in v] for k, v in results.items()}},
    )
    plots = {
        "ndcg_vs_isoscore.png": plot_tradeoff(rows),
        "spectrum.png": plot_spectrum(plan, results, rows),
        "losses.png": plot_losses(plan, results),
    }
    for name, png in plots.items():
        atomic_write_bytes(folder / name, png)
    seeds = ", ".join(map(str, meta["seeds"]))
    text = [
        f"# Plan `{meta['plan_name']}` on `{meta['data']}`",
        "",
        f"Base model `{meta['base_model']}`; seeds {seeds}; test split `{meta['paths']['test']}`"
        + (f"; STS `{meta['paths']['sts']}`" if meta["paths"].get("sts") else "")
        + ".",
        f"Ran {meta['started_utc']} UTC in {meta['seconds']} s on {meta['machine']['processor']} "
        f"({meta['machine']['cores']} cores), isoadapt {meta['isoadapt']}.",
        "",
        "Metrics are on the test split, mean ± std over seeds. `vs base` is the relative change of NDCG@10.",
        "`p` is a paired t-test of per-query NDCG@10 (averaged over seeds) against the base model. STS ρ is",
        "the Spearman correlation of cosine with the STS-B gold scores. Isotropy columns describe the test",
        "queries + corpus. `collapse` flags a std or effective rank under half the base model's, or a",
        "near-zero loss with falling metrics.",
        "",
        markdown_table(rows),
        "",
        "![NDCG@10 vs IsoScore](ndcg_vs_isoscore.png)",
        "![Eigenvalue spectrum](spectrum.png)",
        "![Loss terms per step](losses.png)",
        "",
    ]
    collapsed = [r for r in rows if r["collapsed"]]
    if collapsed:
        text += ["Collapse details:", *[f"- {r['label']}: {'; '.join(r['collapse_reasons'])}" for r in collapsed], ""]
    atomic_write_bytes(folder / "report.md", "\n".join(text).encode("utf-8"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
