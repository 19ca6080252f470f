"""validation.png, written into every run folder: validation NDCG@10 against the step it was scored at,
the step that selection kept marked. Drawn on a bare matplotlib Figure, never through pyplot, so neither
importing this module nor calling it changes the process's matplotlib backend (a notebook keeps its own).
`draw_curve` is also what the plan report's validation panels draw with."""

from __future__ import annotations

import io

VALIDATION_PLOT = "validation.png"


def draw_curve(ax, curve: list[dict], selected: dict, x: str = "step", **style):
    """One validation curve on `ax` (x: "step" or "epoch") and its selected point as a dot of the same
    colour; returns the curve's line."""
    line = ax.plot([p[x] for p in curve], [p["ndcg@10"] for p in curve], **style)[0]
    ax.plot([selected[x]], [selected["ndcg@10"]], "o", color=line.get_color())
    return line


def validation_png(validation: dict) -> bytes:
    """The picture of metrics.json's `validation`: its curve, its start and its selected step."""
    from matplotlib.figure import Figure

    selected = validation["selected"]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.axhline(validation["start"], color="grey", linestyle="--", linewidth=1, label="start (step 0)")
    draw_curve(ax, validation["curve"], selected, marker=".", linewidth=1, label="validation NDCG@10")
    ax.annotate(
        f"selected: step {selected['step']} (epoch {selected['epoch']})",
        (selected["step"], selected["ndcg@10"]),
        textcoords="offset points",
        xytext=(6, 6),
        fontsize=8,
    )
    ax.set_xlabel("step")
    ax.set_ylabel("val NDCG@10")
    ax.set_title("Validation NDCG@10 during training (dot: the selected state)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()
