"""The report's four pictures (NDCG vs IsoScore, the covariance spectrum, the loss terms, the validation
curves), rendered to PNG bytes with matplotlib's Agg backend."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from isoadapt.experiment.plan import Plan  # noqa: E402
from isoadapt.losses import LOGGED_TERMS  # noqa: E402
from isoadapt.training.selection import first_best  # noqa: E402
from isoadapt.training.validation_plot import draw_curve  # noqa: E402

# Colour, marker and legend label of each plan kind (plan.KINDS).
KIND_STYLE = {
    "baseline": ("black", "s", "base model"),
    "train": ("tab:blue", "o", "trained head"),
    "posthoc": ("tab:orange", "D", "post-hoc transform"),
    "nudge": ("tab:green", "^", "NUDGE (document vectors)"),
    "align": ("tab:purple", "P", "cross-model alignment (no training)"),
}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plot_tradeoff(rows: list[dict]) -> bytes:
    """NDCG@10 against IsoScore, one point per configuration."""
    fig, ax = plt.subplots(figsize=(9, 6))
    for row in rows:
        color, marker, _ = KIND_STYLE[row["kind"]]
        ax.errorbar(
            row["isoscore"], row["ndcg@10"], yerr=row.get("ndcg@10_std", 0.0), fmt=marker, color=color, capsize=3
        )
        ax.annotate(
            row["name"], (row["isoscore"], row["ndcg@10"]), textcoords="offset points", xytext=(5, 4), fontsize=8
        )
    for color, marker, label in KIND_STYLE.values():
        ax.plot([], [], marker, color=color, label=label)
    ax.set_xlabel("IsoScore of test queries + corpus (1 = isotropic)")
    ax.set_ylabel("test NDCG@10 (mean ± std over seeds)")
    ax.set_title("Retrieval vs isotropy: NDCG@10 against IsoScore, one point per configuration")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_spectrum(plan: Plan, results: dict, rows: list[dict]) -> bytes:
    """Normalised covariance eigenvalues: base model vs the best trained head (frozen encoder) vs whitening."""
    frozen = {e.name for e in plan.entries if e.kind == "train" and e.settings.get("freeze_base", True)}
    trained = [r for r in rows if r["name"] in frozen]
    best = max(trained, key=lambda r: r["ndcg@10"]) if trained else None
    picks = [("baseline", "base model")]
    if best:
        picks.append((best["name"], f"best head: {best['name']}"))
    picks += [
        (e.name, e.name)
        for e in plan.entries
        if e.kind == "posthoc" and e.transform == "whitening" and e.name in results
    ][:1]
    fig, ax = plt.subplots(figsize=(9, 6))
    for name, label in picks:
        if name in results:
            spectrum = np.asarray(results[name][0].spectrum)
            ax.plot(np.arange(1, len(spectrum) + 1), spectrum, label=label)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-7)  # below this are numerical zeros (directions the model never uses)
    ax.set_xlabel("principal direction (sorted)")
    ax.set_ylabel("share of variance (covariance eigenvalue / trace)")
    ax.set_title("Eigenvalue spectrum of the test embeddings: base vs best head vs whitening")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def _panels(count: int):
    """A figure with one small panel per trained configuration, three to a row."""
    cols = 3
    rows = max(1, -(-count // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    return fig, list(axes.flat)[:count]


def _finish(fig, ax_list, title: str) -> bytes:
    for ax in ax_list:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def plot_losses(plan: Plan, results: dict) -> bytes:
    """Weighted loss terms per step for each trained configuration (its first seed)."""
    trained = [e for e in plan.entries if e.kind == "train" and e.name in results and results[e.name][0].history]
    fig, panels = _panels(len(trained))
    for ax, entry in zip(panels, trained):
        history = results[entry.name][0].history
        steps = [h["step"] for h in history]
        for term in LOGGED_TERMS:
            values = [h[term] for h in history]
            if any(values):
                ax.plot(steps, values, label=term, linewidth=1)
        ax.set_title(entry.name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    return _finish(fig, panels, "Loss terms per step (weighted), first seed of each trained configuration")


def plot_validation(plan: Plan, results: dict) -> bytes:
    """Validation NDCG@10 against epochs for every seed of each trained configuration, the selected point
    of each seed marked: where selection stopped, and how far from the start it went."""
    trained = [e for e in plan.entries if e.kind == "train" and e.name in results and results[e.name][0].curve]
    fig, panels = _panels(len(trained))
    for ax, entry in zip(panels, trained):
        for result in results[entry.name]:
            draw_curve(ax, result.curve, first_best(result.curve), x="epoch", linewidth=1, label=f"seed {result.seed}")
        ax.set_title(entry.name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("val NDCG@10", fontsize=8)
    return _finish(fig, panels, "Validation NDCG@10 during training (dot: the selected state)")


def plot_learning_curve(curves: list, flat: list[dict]) -> bytes:
    """NDCG@10 against labelled pairs (log x), validation and test side by side, ± std over seeds; the rows
    that need no labels as flat lines."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
    for ax, split, key in ((axes[0], "validation", "val"), (axes[1], "test", "test")):
        for curve in curves:
            means, stds = np.array(getattr(curve, key)).T
            ax.errorbar(curve.pairs, means, yerr=stds, marker="o", capsize=3, label=curve.label)
        for row in flat:
            value = row["val_ndcg@10"] if key == "val" else row["ndcg@10"]
            ax.axhline(value, linestyle="--", color=KIND_STYLE[row["kind"]][0], alpha=0.7, label=row["label"])
        ax.set_xscale("log")
        ax.set_xlabel("labelled training pairs (log scale)")
        ax.set_title(f"{split} NDCG@10")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("NDCG@10 (mean ± std over seeds)")
    axes[1].legend(loc="lower right", fontsize=7)
    return _png(fig)
