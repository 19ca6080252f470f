"""How many labels a user needs: a plan's `train_sizes` rows read as curves (NDCG@10 against the labelled
pairs trained on, mean and std over seeds), the rows that need no labels as flat lines, and the smallest
size at which each curve beats the best post-hoc fix on validation (selection's split, not test)."""

from __future__ import annotations

from dataclasses import dataclass

from isoadapt.experiment.plan import Plan
from isoadapt.experiment.spread import mean_std


@dataclass
class Curve:
    family: str
    label: str
    kind: str
    pairs: list[int]  # x: labelled pairs trained on
    val: list[tuple[float, float]]  # (mean, std) over seeds
    test: list[tuple[float, float]]


def curves(plan: Plan, results: dict) -> list[Curve]:
    """One curve per family of sized rows, points in order of size."""
    found: dict[str, Curve] = {}
    for entry in plan.entries:
        if entry.pairs is None or entry.name not in results:
            continue
        seeds = results[entry.name]
        label = entry.label.rsplit(", ", 1)[0]  # the family's label, without ", N pairs"
        curve = found.setdefault(entry.family, Curve(entry.family, label, entry.kind, [], [], []))
        curve.pairs.append(seeds[0].pairs)
        curve.val.append(mean_std([r.val_ndcg for r in seeds]))
        curve.test.append(mean_std([r.test["ndcg@10"] for r in seeds]))
    return list(found.values())


def flat_lines(rows: list[dict]) -> list[dict]:
    """The rows that learn nothing from labels: the base model and the post-hoc fixes."""
    return [r for r in rows if r["kind"] in ("baseline", "posthoc")]


def first_size_beating(curve: Curve, reference_val: float) -> int | None:
    """The smallest size whose mean validation NDCG@10 is above the reference's (None: none is)."""
    return next((n for n, (mean, _) in zip(curve.pairs, curve.val) if mean > reference_val), None)


def curve_section(plan: Plan, results: dict, rows: list[dict]) -> tuple[dict, list[str]]:
    """The report's learning-curve table and its reading, as JSON and markdown lines."""
    found = curves(plan, results)
    if not found:
        return {}, []
    posthoc = [r for r in rows if r["kind"] == "posthoc" and "val_ndcg@10" in r]
    reference = max(posthoc, key=lambda r: r["val_ndcg@10"]) if posthoc else None
    sizes = sorted({n for c in found for n in c.pairs})
    lines = [
        "## Learning curve: how many labelled pairs",
        "",
        "Each cell: validation NDCG@10 / test NDCG@10, mean over seeds (each seed draws its own pairs). "
        "![learning curve](learning_curve.png)",
        "",
        "| row | " + " | ".join(f"{n} pairs" for n in sizes) + " | beats the best post-hoc row on validation from |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    first = {}
    for c in found:
        cells = {n: f"{v[0]:.4f} / {t[0]:.4f}" for n, v, t in zip(c.pairs, c.val, c.test)}
        first[c.family] = first_size_beating(c, reference["val_ndcg@10"]) if reference else None
        beats = "–" if reference is None else (f"{first[c.family]} pairs" if first[c.family] else "never here")
        lines.append(f"| {c.label} | " + " | ".join(cells.get(n, "–") for n in sizes) + f" | {beats} |")
    for row in flat_lines(rows):
        value = f"{row['val_ndcg@10']:.4f} / {row['ndcg@10']:.4f}"
        lines.append(f"| {row['label']} (no labels) | " + " | ".join(value for _ in sizes) + " | – |")
    if reference:
        lines += [
            "",
            f"Reference for 'beats': {reference['label']}, validation NDCG@10 {reference['val_ndcg@10']:.4f}.",
        ]
    shown = {"reference": reference["name"] if reference else None, "first_size_beating": first}
    shown["curves"] = [c.__dict__ for c in found]
    return shown, lines + [""]
