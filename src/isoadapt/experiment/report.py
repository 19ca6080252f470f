"""The plan's report: one row per configuration (mean +- std over seeds, change vs the base model, a
paired t-test over queries, STS, isotropy, collapse), as report.md, report.json and PNG plots."""

from __future__ import annotations

import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

from isoadapt.encoding.backend_choice import cpu_signature, usable_cores
from isoadapt.experiment.learning_curve import curve_section, curves, flat_lines
from isoadapt.experiment.per_use import per_use_section
from isoadapt.experiment.plan import Plan
from isoadapt.experiment.recommend import PROBE_TOLERANCE, STS_TOLERANCE, TIE_P, Candidate, mean_probes, recommend
from isoadapt.experiment.reembed_share import reembed_share_lines
from isoadapt.experiment.spread import mean_std, seed_spread
from isoadapt.fileio import atomic_write_bytes, atomic_write_json
from isoadapt.metrics.retrieval import RETRIEVAL_METRICS, percent_change

ISOTROPY_COLUMNS = ("isoscore", "effective_rank", "embedding_std_mean", "mean_cosine")


def summarise(plan: Plan, results: dict, base_sts: float | None) -> list[dict]:
    """One row per configuration; the significance test pairs per-query NDCG@10 (mean over seeds) with
    the base model's, over the same test queries (scipy's paired t-test: ranx's tests compare single
    runs, and a row here pools several seeds)."""
    base_entry = next((e for e in plan.entries if e.kind == "baseline"), None)
    base = results[base_entry.name][0] if base_entry else None
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
                row[metric], row[f"{metric}_std"] = mean_std(values)
        row["ndcg@10_spread"] = seed_spread(r.test.get("ndcg@10") for r in seeds)
        val = [r.val_ndcg for r in seeds if r.val_ndcg is not None]
        if val:
            row["val_ndcg@10"], row["val_ndcg@10_std"] = mean_std(val)
            row["val_ndcg@10_spread"] = seed_spread(val)
        sts = [r.sts for r in seeds if r.sts is not None]
        row["sts_spearman"] = float(np.mean(sts)) if sts else None
        sts_dev = [r.sts_dev for r in seeds if r.sts_dev is not None]
        row["sts_dev_spearman"] = float(np.mean(sts_dev)) if sts_dev else None
        row["probes"] = mean_probes(seeds)
        row["sts_loss_flag"] = bool(sts and base_sts is not None and base_sts - row["sts_spearman"] > STS_TOLERANCE)
        row["collapsed"] = any(r.collapsed for r in seeds)
        row["collapse_reasons"] = sorted({reason for r in seeds for reason in r.collapse_reasons})
        row["seconds"] = round(sum(r.seconds for r in seeds), 2)
        if base:
            row["vs_baseline_pct"] = percent_change(row["ndcg@10"], base.test["ndcg@10"])
            if entry.kind == "baseline":
                row["p_value"] = None
            else:
                row["p_value"] = paired_p(seeds, [base], qids)
        rows.append(row)
    return rows


def paired_p(results: list, reference: list, qids: list[str]) -> float | None:
    """Paired t-test of per-query test NDCG@10, each side averaged over its seeds (None when identical)."""
    ours = np.mean([[r.per_query[q] for q in qids] for r in results], axis=0)
    theirs = np.mean([[r.per_query[q] for q in qids] for r in reference], axis=0)
    return None if np.allclose(ours, theirs) else float(ttest_rel(ours, theirs).pvalue)


def _mean_val(seeds: list) -> float:
    values = [r.val_ndcg for r in seeds if r.val_ndcg is not None]
    return float(np.mean(values)) if values else float("-inf")


def recommendations(plan: Plan, results: dict, base_sts_dev: float | None = None) -> dict[str, str | None]:
    """The recommended trained row by the robust rule (experiment/recommend.py), and the post-hoc and NUDGE
    rows with the highest mean validation NDCG@10. Only validation data decides: test only reports."""
    picks: dict[str, str | None] = {"recommended": recommend(plan, results, base_sts_dev)[0]}
    for role, kind in (("best_posthoc", "posthoc"), ("best_nudge", "nudge")):
        names = [e.name for e in plan.entries if e.kind == kind and e.name in results]
        picks[role] = max(names, key=lambda n: _mean_val(results[n])) if names else None
    return picks


def _fmt(row: dict, metric: str, digits: int = 4) -> str:
    if metric not in row:
        return "–"
    value, spread = row[metric], row.get(f"{metric}_std", 0.0)
    return f"{value:.{digits}f} ± {spread:.{digits}f}" if len(row["seeds"]) > 1 else f"{value:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    columns = (
        "configuration",
        "seeds",
        "val NDCG@10",
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
    lines = [head, "|" + "|".join(["---"] * len(columns)) + "|"]
    for row in rows:
        p = row.get("p_value")
        lines.append(
            "| "
            + " | ".join(
                [
                    row["label"] + (" (reused)" if row["reused"] else ""),
                    str(len(row["seeds"])) if row["kind"] == "train" else "–",
                    _fmt(row, "val_ndcg@10"),
                    _fmt(row, "ndcg@10"),
                    _fmt(row, "mrr@10"),
                    _fmt(row, "recall@100"),
                    "–" if row["kind"] == "baseline" else f"{row['vs_baseline_pct']:+.2f}%",
                    "–" if p is None else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"),
                    "–"
                    if row["sts_spearman"] is None
                    else f"{row['sts_spearman']:.4f}" + (" ⚠" if row["sts_loss_flag"] else ""),
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


def _pct(new: float, old: float) -> str:
    change = percent_change(new, old)
    return "n/a" if change is None else f"{change:+.1f}%"


def what_it_shows(row: dict, by_name: dict, picks: dict, p_values: dict, shift: dict | None) -> list[str]:
    """Sentences read off the numbers above, so the report's reading cannot drift from them."""
    base = next(r for r in by_name.values() if r["kind"] == "baseline")
    lines = ["What it shows:", ""]
    pays = row["ndcg@10"] > base["ndcg@10"] and p_values["base"] is not None and p_values["base"] < 0.05
    lines.append(
        f"- In-domain (test split), training {'pays' if pays else 'does not pay'}: the recommended head scores "
        f"{row['ndcg@10']:.4f}, {_pct(row['ndcg@10'], base['ndcg@10'])} against the base model "
        f"(p = {'n/a' if p_values['base'] is None else format(p_values['base'], '.1e')})."
    )
    for role in ("best_posthoc", "best_nudge"):
        if picks.get(role):
            other, p = by_name[picks[role]], p_values[role]
            verdict = "beats" if row["ndcg@10"] > other["ndcg@10"] else "does not beat"
            shown = "n/a" if p is None else f"{p:.1e}"
            change = _pct(row["ndcg@10"], other["ndcg@10"])
            lines.append(f"- It {verdict} {other['label']} ({other['ndcg@10']:.4f}, {change}, p = {shown}).")
    if picks.get("best_nudge"):
        lines.append(
            "- NUDGE changes the stored document vectors of this one corpus, not a model: it cannot embed a new "
            "document, and its gains belong to the documents that appeared as answers in training."
        )
    if shift:
        name, values = picks["recommended"], shift["ndcg@10"]
        holds = values[name] >= values["base model"]
        lines.append(
            f"- On the second kind of input the gain {'holds' if holds else 'does not hold'}: {values[name]:.4f} "
            f"against the base model's {values['base model']:.4f} ({_pct(values[name], values['base model'])})"
            + ("." if holds else "; the head's gains belong to the in-domain queries it was trained for.")
        )
    return lines + [""]


def selection_section(
    plan: Plan, results: dict, rows: list[dict], shift: dict | None, base_sts_dev: float | None
) -> tuple[dict, list[str]]:
    """The recommendation, what chose it, and its test result against the base model and the best
    competitors (each competitor also chosen by validation), as JSON and as report lines."""
    picks = recommendations(plan, results, base_sts_dev)
    by_name = {r["name"]: r for r in rows}
    chosen = picks["recommended"]
    if chosen is None:
        return {"picks": picks}, none_eligible_lines(plan, results, by_name, base_sts_dev)
    base_name = next(e.name for e in plan.entries if e.kind == "baseline")
    qids = sorted(results[base_name][0].per_query)
    against = {role: picks[role] for role in ("best_posthoc", "best_nudge") if picks[role]}
    against["base"] = base_name
    p_values = {role: paired_p(results[chosen], results[name], qids) for role, name in against.items()}
    row = by_name[chosen]
    found = recommend(plan, results, base_sts_dev)[1]
    lines = [
        "## Recommended configuration (chosen on validation and shift probes)",
        "",
        f"**{row['label']}** (`{chosen}`), by the rule below; test numbers were not looked at to choose anything.",
        "",
        *rule_lines(),
        "",
        *candidate_table(found, by_name, chosen),
        "",
        *(uses := per_use_section(found, by_name))[1],
        "| row | role | val NDCG@10 | test NDCG@10 | p vs recommended (paired t, test) |",
        "|---|---|---|---|---|",
        f"| {row['label']} | recommended | {_fmt(row, 'val_ndcg@10')} | {_fmt(row, 'ndcg@10')} | – |",
    ]
    for role, name in against.items():
        other, p = by_name[name], p_values[role]
        shown = "–" if p is None else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")
        lines.append(
            f"| {other['label']} | {role.replace('_', ' ')} | {_fmt(other, 'val_ndcg@10')} | "
            f"{_fmt(other, 'ndcg@10')} | {shown} |"
        )
    flagged = [r["label"] for r in rows if r["sts_loss_flag"]]
    lines += [
        "",
        f"STS column (STS-B test, reported only): rows losing more than {STS_TOLERANCE} Spearman against the base "
        "model are marked ⚠" + (f": {', '.join(flagged)}." if flagged else "; none did."),
        "",
    ]
    lines += what_it_shows(row, by_name, picks, p_values, shift)
    if shift:
        lines += [
            f"Second kind of input: `{shift['data']}` ({shift['queries']} STS-B sentences as queries), test NDCG@10:",
            "",
        ]
        lines += [f"- {name}: {value:.4f}" for name, value in shift["ndcg@10"].items()] + [""]
    shown = [{**{k: v for k, v in asdict(c).items() if k != "val_per_query"}, "tie": c.tie} for c in found]
    selection = {"picks": picks, "p_values": p_values, "shift": shift, "candidates": shown}
    return {**selection, **({"per_use": uses[0]} if uses[0] else {})}, lines


def rule_lines() -> list[str]:
    """The rule as the report states it (its constants from experiment/recommend.py)."""
    return [
        "The rule, validation data only: (1) a trained row is eligible when its mean STS-B dev Spearman stays "
        f"within {STS_TOLERANCE} of the base model's and its mean NDCG@10 on every shift probe stays within "
        f"{100 * PROBE_TOLERANCE:.0f}% of the base model's; (2) the leader is the eligible row with the best mean "
        "in-domain validation NDCG@10, and another eligible row ties with it when the margin is within either row's "
        "seed spread (max - min over seeds) or not significant on the validation queries "
        f"(paired t-test, p >= {TIE_P}); (3) among the "
        "tied rows, the smallest worst-case loss on the probes wins.",
    ]


def none_eligible_lines(plan: Plan, results: dict, by_name: dict, base_sts_dev: float | None) -> list[str]:
    """When no trained row passes the rule's guards, the report says so and shows what each row failed."""
    found = recommend(plan, results, base_sts_dev)[1]
    if not found:
        return []
    return [
        "## Recommended configuration (chosen on validation and shift probes)",
        "",
        "**None**: no trained row passes the rule's guards, so the rule recommends none (the table says what each "
        "row failed); test numbers were not looked at.",
        "",
        *rule_lines(),
        "",
        *candidate_table(found, by_name, ""),
        "",
    ]


def candidate_table(found: list[Candidate], by_name: dict, chosen: str) -> list[str]:
    """Every trained row with its in-domain and probe scores (validation only) and what the rule made of it."""
    probes = list(dict.fromkeys(n for c in found for n in c.probes))
    base = next((r for r in by_name.values() if r["kind"] == "baseline"), None)
    head = ["row", "val NDCG@10 (spread)", *[f"probe {n}" for n in probes], "worst probe", "STS-B dev", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    if base:
        base_probes = [base["probes"].get(n) for n in probes]
        cells = ["base model (reference)", f"{base['val_ndcg@10']:.4f}"]
        cells += ["–" if v is None else f"{v:.4f}" for v in base_probes]
        sts = base.get("sts_dev_spearman")
        lines.append("| " + " | ".join([*cells, "–", "–" if sts is None else f"{sts:.4f}", "–"]) + " |")
    for c in found:
        cells = [by_name[c.name]["label"], f"{c.val:.4f} ({c.val_spread:.4f})"]
        for n in probes:
            value, change = c.probes.get(n), c.probe_change.get(n)
            cells.append("–" if value is None else f"{value:.4f} ({'n/a' if change is None else f'{change:+.1f}%'})")
        verdict = "not eligible: " + "; ".join(c.excluded.values()) if c.excluded else c.tie
        verdict = f"**recommended** ({verdict})" if c.name == chosen else verdict
        sts = "–" if c.sts_dev is None else f"{c.sts_dev:.4f}"
        lines.append("| " + " | ".join([*cells, f"{c.worst_probe:+.1f}%", sts, verdict]) + " |")
    return lines


def write_report(
    folder: Path,
    plan: Plan,
    results: dict,
    meta: dict,
    base_sts: float | None,
    shift: dict | None = None,
    base_sts_dev: float | None = None,
) -> None:
    from isoadapt.experiment.plots import (
        plot_learning_curve,
        plot_losses,
        plot_spectrum,
        plot_tradeoff,
        plot_validation,
    )

    rows = summarise(plan, results, base_sts)
    selection, selection_lines = selection_section(plan, results, rows, shift, base_sts_dev)
    curve, curve_lines = curve_section(plan, results, rows)
    meta = {**meta, "selection": selection, **({"learning_curve": curve} if curve else {})}
    meta = {
        **meta,
        "machine": {"platform": platform.platform(), "processor": cpu_signature()["model"], "cores": usable_cores()},
    }
    atomic_write_json(
        folder / "report.json",
        {"meta": meta, "rows": rows, "results": {k: [asdict(r) for r in v] for k, v in results.items()}},
        indent=None,  # per-step histories and per-query scores: indenting them tripled the file
    )
    plots = {
        "ndcg_vs_isoscore.png": plot_tradeoff(rows),
        "spectrum.png": plot_spectrum(plan, results, rows),
        "losses.png": plot_losses(plan, results),
        "validation.png": plot_validation(plan, results),
    }
    if curve:
        plots["learning_curve.png"] = plot_learning_curve(curves(plan, results), flat_lines(rows))
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
        f"Reproduce: `{reproduce_command(meta)}`",
        "",
        "`val NDCG@10` is what selection saw (a trained head's selected state, a post-hoc fit, NUDGE's choice of",
        "step); every other metric is on the test split, mean ± std over seeds (the seed spread, used for ties and",
        "reproduction checks, is max - min over seeds). `vs base` is the relative change",
        "of test NDCG@10.",
        "`p` is a paired t-test of per-query NDCG@10 (averaged over seeds) against the base model. STS ρ is",
        "the Spearman correlation of cosine with the STS-B gold scores. Isotropy columns describe the test",
        "queries + corpus. `collapse` flags a std or effective rank under half the base model's, or a",
        "near-zero loss with falling metrics.",
        "",
        markdown_table(rows),
        "",
        *reembed_share_lines(plan, rows),
        *selection_lines,
        *curve_lines,
        "![NDCG@10 vs IsoScore](ndcg_vs_isoscore.png)",
        "![Eigenvalue spectrum](spectrum.png)",
        "![Loss terms per step](losses.png)",
        "![Validation NDCG@10 during training](validation.png)",
        "",
    ]
    collapsed = [r for r in rows if r["collapsed"]]
    if collapsed:
        text += ["Collapse details:", *[f"- {r['label']}: {'; '.join(r['collapse_reasons'])}" for r in collapsed], ""]
    atomic_write_bytes(folder / "report.md", "\n".join(text).encode("utf-8"))


def reproduce_command(meta: dict) -> str:
    """The command line that reruns this plan on these data (the data root and runs root left at their
    defaults; the engine and the backend change no number beyond the seeds' spread)."""
    command = f"isoadapt experiment --plan {meta['plan']} --data {meta['data']} --base_model {meta['base_model']}"
    command += f" --query_model {meta['query_model']}" if meta.get("query_model") else ""
    return command + f" --seeds {','.join(map(str, meta['seeds']))}"
