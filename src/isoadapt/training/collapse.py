"""Collapse detection: the failure the research saw (embedding std 0.014, loss near zero, metrics down)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

STD_RATIO = 0.5  # trained per-dimension std below half the base model's
RANK_RATIO = 0.5  # effective rank below half the base model's
NEAR_ZERO_LOSS = 1e-3
METRIC_DROP = 0.05  # relative NDCG@10 drop that, with a near-zero loss, means the loss stopped teaching


def collapse_reasons(baseline: dict, trained: dict, final_loss: float | None) -> list[str]:
    """Why the trained space looks collapsed compared with the base model's; empty when it does not."""
    reasons = []
    if trained["embedding_std_mean"] < STD_RATIO * baseline["embedding_std_mean"]:
        reasons.append(
            f"embedding std {trained['embedding_std_mean']:.4f} < {STD_RATIO} x base "
            f"{baseline['embedding_std_mean']:.4f}"
        )
    if trained["effective_rank"] < RANK_RATIO * baseline["effective_rank"]:
        reasons.append(
            f"effective rank {trained['effective_rank']:.1f} < {RANK_RATIO} x base {baseline['effective_rank']:.1f}"
        )
    if (
        final_loss is not None
        and abs(final_loss) < NEAR_ZERO_LOSS
        and trained["ndcg@10"] < (1 - METRIC_DROP) * baseline["ndcg@10"]
    ):
        reasons.append(
            f"loss {final_loss:.2e} near zero while ndcg@10 fell {trained['ndcg@10']:.4f} < {baseline['ndcg@10']:.4f}"
        )
    for reason in reasons:
        log.warning("collapse: %s", reason)
    return reasons
