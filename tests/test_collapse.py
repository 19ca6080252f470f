"""Collapse detection (training/collapse.py) on real embedding sets scored by evaluate_split: a head that
squeezes every vector onto one direction is flagged (std and effective rank both under half the base's),
a rotation of the same space is not; and the near-zero-loss rule by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isoadapt.data.formats import EvalSet
from isoadapt.evaluation import evaluate_split
from isoadapt.training.collapse import NEAR_ZERO_LOSS, collapse_reasons

DIM = 16


def isotropic_split(rng: np.random.Generator) -> tuple[EvalSet, dict[str, np.ndarray]]:
    """60 documents spread over every direction; each query lies near its one relevant document."""
    docs = {f"doc {i}": rng.standard_normal(DIM) for i in range(60)}
    queries = {f"query {i}": docs[f"doc {i}"] + 0.3 * rng.standard_normal(DIM) for i in range(30)}
    split = EvalSet(
        {f"q{i}": f"query {i}" for i in range(30)},
        {f"d{i}": f"doc {i}" for i in range(60)},
        {f"q{i}": {f"d{i}": 1} for i in range(30)},
    )
    return split, {**docs, **queries}


def linear(weight: np.ndarray, bias: np.ndarray | None = None) -> torch.nn.Module:
    head = torch.nn.Linear(DIM, DIM, bias=bias is not None)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        if bias is not None:
            head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return head


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    split, vectors = isotropic_split(rng)

    def source(texts: list[str]) -> np.ndarray:
        return np.stack([vectors[t] for t in texts]).astype(np.float32)

    def evaluate(head=None) -> dict:
        return evaluate_split(split, source, head).metrics

    return rng, evaluate


def test_a_space_squeezed_onto_one_direction_is_flagged(scored):
    rng, evaluate = scored
    # every output = one point u plus a small input-dependent part along one direction: what the research
    # saw (std 0.014, every text alike)
    u, v = rng.standard_normal(DIM), rng.standard_normal(DIM)
    squeeze = 0.02 * np.outer(v, np.eye(DIM)[0]) + 0.001 * rng.standard_normal((DIM, DIM))
    base, collapsed = evaluate(), evaluate(linear(squeeze, bias=u))
    assert collapsed["effective_rank"] < 3 < 0.5 * base["effective_rank"]  # the premise, checked
    assert collapsed["embedding_std_mean"] < 0.1 * base["embedding_std_mean"]
    reasons = collapse_reasons(base, collapsed, final_loss=0.7)
    assert len(reasons) == 2
    assert reasons[0].startswith("embedding std ") and reasons[1].startswith("effective rank ")


def test_a_rotated_space_is_not_flagged(scored):
    rng, evaluate = scored
    rotation, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    base, rotated = evaluate(), evaluate(linear(rotation))
    assert rotated["ndcg@10"] == pytest.approx(base["ndcg@10"])  # cosine ranks survive a rotation
    assert rotated["effective_rank"] == pytest.approx(base["effective_rank"], rel=1e-4)
    assert collapse_reasons(base, rotated, final_loss=0.7) == []


@pytest.mark.parametrize(
    "loss, ndcg, flagged",
    [
        (1e-4, 0.40, True),  # loss near zero while NDCG@10 fell 20%: the loss stopped teaching
        (1e-4, 0.49, False),  # a 2% fall is within the allowed 5%
        (0.05, 0.40, False),  # a real loss: a fall is a bad run, not a collapse
        (None, 0.40, False),  # no loss recorded: the rule does not apply
    ],
)
def test_a_near_zero_loss_with_falling_ndcg_is_flagged(loss, ndcg, flagged):
    base = {"embedding_std_mean": 0.2, "effective_rank": 10.0, "ndcg@10": 0.50}
    trained = {**base, "ndcg@10": ndcg}
    reasons = collapse_reasons(base, trained, loss)
    assert bool(reasons) is flagged
    if flagged:
        assert reasons == [f"loss {loss:.2e} near zero while ndcg@10 fell {ndcg:.4f} < 0.5000"]
    assert NEAR_ZERO_LOSS == 1e-3
