"""The contrastive term, two ways over in-batch candidates: the research's margin hinge on cosine, and InfoNCE
(cross-entropy over scaled cosines, as sentence-transformers' MultipleNegativesRankingLoss); in both, other
candidates that are relevant to a query are masked rather than treated as negatives."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def margin_contrastive_loss(
    queries: torch.Tensor,  # (b, d)
    positives: torch.Tensor,  # (b, d)
    relevant: torch.Tensor,  # (b, b) bool: positive j is relevant to query i (diagonal True)
    margin: float,
    negatives: torch.Tensor | None = None,  # (b, d) explicit negatives, rows valid where has_negative
    has_negative: torch.Tensor | None = None,  # (b,) bool
) -> torch.Tensor:
    """Mean over queries of the mean hinge max(0, margin - cos(q, p+) + cos(q, c)).

    Candidates c of query i: its explicit negative (when given) and the other positives in the batch,
    except those relevant to query i (one bookmark has several tags). Queries with no candidate are
    left out of the mean; the loss is 0 when no query has one.
    """
    q = F.normalize(queries, dim=-1)
    p = F.normalize(positives, dim=-1)
    sims = q @ p.T  # (b, b)
    positive_sim = sims.diagonal()  # (b,)
    hinge = F.relu(margin - positive_sim[:, None] + sims)  # (b, b)
    valid = ~relevant  # (b, b)
    total = (hinge * valid).sum(dim=1)  # (b,)
    count = valid.sum(dim=1).to(sims.dtype)  # (b,)
    if negatives is not None and has_negative is not None:
        negative_sim = (q * F.normalize(negatives, dim=-1)).sum(dim=-1)  # (b,)
        total = total + F.relu(margin - positive_sim + negative_sim) * has_negative
        count = count + has_negative.to(sims.dtype)
    scored = count > 0
    if not scored.any():
        return sims.sum() * 0.0
    return (total[scored] / count[scored]).mean()


def infonce_loss(
    queries: torch.Tensor,  # (b, d)
    positives: torch.Tensor,  # (b, d)
    relevant: torch.Tensor,  # (b, b) bool: positive j is relevant to query i (diagonal True)
    temperature: float,
    negatives: torch.Tensor | None = None,  # (b, d) explicit negatives, rows valid where has_negative
    has_negative: torch.Tensor | None = None,  # (b,) bool
    relevant_negatives: torch.Tensor | None = None,  # (b, b) bool: negative j is relevant to query i
) -> torch.Tensor:
    """InfoNCE as sentence-transformers' MultipleNegativesRankingLoss computes it: cosine scores scaled by
    1 / temperature, cross-entropy of each query over every positive of the batch plus every explicit
    negative, the query's own positive being the label.

    One difference, on purpose: a candidate that is also relevant to the query (another tag of the same
    bookmark) is masked out instead of counted as a negative, as the margin loss does. Without such
    duplicates the value equals MNRL's (a test checks it on the same embeddings).
    """
    q = F.normalize(queries, dim=-1)  # (b, d)
    candidates = F.normalize(positives, dim=-1)  # (b, d)
    blocked = relevant & ~torch.eye(len(q), dtype=torch.bool, device=q.device)  # (b, b)
    if negatives is not None and has_negative is not None and bool(has_negative.any()):
        candidates = torch.cat([candidates, F.normalize(negatives[has_negative], dim=-1)])  # (b + n, d)
        negative_blocked = relevant_negatives[:, has_negative] if relevant_negatives is not None else None
        if negative_blocked is None:
            negative_blocked = torch.zeros((len(q), int(has_negative.sum())), dtype=torch.bool, device=q.device)
        blocked = torch.cat([blocked, negative_blocked], dim=1)  # (b, b + n)
    scores = (q @ candidates.T / temperature).masked_fill(blocked, float("-inf"))  # (b, b + n)
    return F.cross_entropy(scores, torch.arange(len(q), device=q.device))


def cosine_alignment_loss(queries: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(q_i, p_i) over the batch: each query pulled onto its own positive, no negatives. The
    objective of a map trained on paired texts (--train_on paired_texts): a text's new-model vector, mapped,
    should point where its old-model vector points; NDCG only reads directions, so the scale is left free."""
    cosines = torch.nn.functional.cosine_similarity(queries, positives, dim=-1)  # (b,)
    return (1 - cosines).mean()
