"""Each loss on hand-checked tiny inputs, plus the invariants the definitions promise; InfoNCE against
sentence-transformers' MultipleNegativesRankingLoss."""

import math

import pytest
import torch

from isoadapt.errors import InputError
from isoadapt.losses.contrastive import infonce_loss, margin_contrastive_loss
from isoadapt.losses.isotropy import covariance_isotropy_loss
from isoadapt.losses.objective import Batch, WeightedObjective
from isoadapt.losses.variance import variance_hinge_loss


def unit(*coords):
    v = torch.tensor(coords, dtype=torch.float32)
    return v / v.norm()


def test_contrastive_hand_checked_two_queries():
    # q0 = e1, p0 = e1 (cos 1); q1 = e2, p1 = (e1+e2)/sqrt2.
    q = torch.stack([unit(1, 0), unit(0, 1)])
    p = torch.stack([unit(1, 0), unit(1, 1)])
    relevant = torch.eye(2, dtype=torch.bool)
    loss = margin_contrastive_loss(q, p, relevant, margin=0.5)
    # q0: candidate p1, cos = 1/sqrt2: max(0, 0.5 - 1 + 0.7071) = 0.2071
    # q1: candidate p0, cos = 0; positive cos = 0.7071: max(0, 0.5 - 0.7071 + 0) = 0
    expected = (0.5 - 1 + 1 / math.sqrt(2) + 0.0) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_contrastive_explicit_negative_joins_the_candidates():
    q = torch.stack([unit(1, 0), unit(0, 1)])
    p = torch.stack([unit(1, 0), unit(0, 1)])
    n = torch.stack([unit(1, 1), unit(0, 1)])
    has = torch.tensor([True, False])
    loss = margin_contrastive_loss(q, p, torch.eye(2, dtype=torch.bool), margin=0.5, negatives=n, has_negative=has)
    # q0: in-batch p1 cos 0 -> 0; negative cos 0.7071 -> 0.5 - 1 + 0.7071 = 0.2071; mean over 2 candidates
    # q1: in-batch p0 cos 0 -> 0; no negative
    assert loss.item() == pytest.approx(((0.5 - 1 + 1 / math.sqrt(2)) / 2 + 0) / 2, abs=1e-6)


def test_contrastive_masks_in_batch_candidates_relevant_to_the_query():
    q = torch.stack([unit(1, 0), unit(1, 0)])  # the same bookmark twice, with two tags
    p = torch.stack([unit(1, 0.1), unit(1, -0.5)])
    all_relevant = torch.ones(2, 2, dtype=torch.bool)
    assert margin_contrastive_loss(q, p, all_relevant, margin=1.0).item() == 0.0
    unmasked = margin_contrastive_loss(q, p, torch.eye(2, dtype=torch.bool), margin=1.0).item()
    assert unmasked > 0


def test_contrastive_is_zero_when_every_margin_is_met():
    q = torch.eye(4)
    p = torch.eye(4)
    assert margin_contrastive_loss(q, p, torch.eye(4, dtype=torch.bool), margin=0.9).item() == 0.0


def test_isotropy_loss_hand_checked_values():
    # Rows +-e_i: centered covariance is a multiple of I, so the loss is 0.
    flat = torch.cat([torch.eye(3), -torch.eye(3)])
    assert covariance_isotropy_loss(flat).item() == pytest.approx(0.0, abs=1e-6)
    # All rows on one line: PR = 1 of r = min(n-1, d) = 3 possible directions -> 1 - 1/3.
    line = torch.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [3.0, 6.0, 0.0], [-1.0, -2.0, 0.0]])
    assert covariance_isotropy_loss(line).item() == pytest.approx(1 - 1 / 3, abs=1e-6)
    # Two equal directions out of d = 3 with n = 5 rows: PR = 2, r = 3 -> 1/3.
    two = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0], [0, 0, 0]])
    assert covariance_isotropy_loss(two).item() == pytest.approx(1 - 2 / 3, abs=1e-6)


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0, 1e3])
def test_isotropy_loss_is_scale_invariant(scale):
    z = torch.randn(32, 24, generator=torch.Generator().manual_seed(1)) @ torch.randn(
        24, 24, generator=torch.Generator().manual_seed(2)
    )
    assert covariance_isotropy_loss(z * scale).item() == pytest.approx(covariance_isotropy_loss(z).item(), rel=1e-4)


def test_isotropy_loss_matches_the_covariance_definition():
    z = torch.randn(40, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    cov = torch.cov(z.T)
    normalized = cov / (torch.trace(cov) / 10)
    distance = ((normalized - torch.eye(10, dtype=torch.float64)) ** 2).sum() / 10  # = d/PR - 1
    participation = 10 / (distance + 1)
    assert covariance_isotropy_loss(z).item() == pytest.approx(1 - participation.item() / 10, rel=1e-9)


def test_variance_hinge_hand_checked():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0]])  # std (unbiased) = [sqrt 2, 0]
    loss = variance_hinge_loss(z, target=1.0, eps=0.0)
    assert loss.item() == pytest.approx((0.0 + 1.0) / 2)
    assert variance_hinge_loss(z * 10, target=1.0, eps=0.0).item() == pytest.approx(0.5)


def test_objective_returns_weighted_named_parts():
    gen = torch.Generator().manual_seed(0)
    q, p = torch.randn(8, 6, generator=gen), torch.randn(8, 6, generator=gen)
    batch = Batch(q, p, torch.eye(8, dtype=torch.bool))
    parts = WeightedObjective(0.5, 2.0, 0.25, margin=0.3)(batch)
    assert set(parts) == {"contrastive", "isotropy", "variance"}
    both = torch.cat([q, p])
    assert parts["contrastive"].item() == pytest.approx(0.5 * margin_contrastive_loss(q, p, batch.relevant, 0.3).item())
    assert parts["isotropy"].item() == pytest.approx(2.0 * covariance_isotropy_loss(both).item())
    assert parts["variance"].item() == pytest.approx(0.25 * variance_hinge_loss(both).item())


@pytest.mark.parametrize(
    "weights", [(-0.1, 1.0, 0.0), (0.1, float("nan"), 0.0), (0.1, 1.0, float("inf")), (0.0, 0.0, 0.0)]
)
def test_objective_rejects_bad_weights(weights):
    with pytest.raises(InputError):
        WeightedObjective(*weights, margin=0.1)


def test_infonce_equals_sentence_transformers_mnrl_on_the_same_embeddings():
    """Without in-batch duplicates our InfoNCE is MNRL: same value, same gradient."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    g = torch.Generator().manual_seed(0)
    q, p, n = (torch.randn(8, 16, generator=g) for _ in range(3))
    q.requires_grad_(True)
    eye = torch.eye(8, dtype=torch.bool)
    ours = infonce_loss(q, p, eye, 0.05, n, torch.ones(8, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool))
    (ours_grad,) = torch.autograd.grad(ours, q)
    q2 = q.detach().clone().requires_grad_(True)
    mnrl = MultipleNegativesRankingLoss(model=None, scale=1 / 0.05)
    theirs = mnrl.compute_loss_from_embeddings([q2, p, n], torch.arange(8))
    (theirs_grad,) = torch.autograd.grad(theirs, q2)
    assert torch.allclose(ours, theirs, atol=1e-6) and torch.allclose(ours_grad, theirs_grad, atol=1e-6)


def test_infonce_masks_other_relevant_candidates():
    """A second tag of the same bookmark is not a negative: masking it lowers the loss, never raises it."""
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.1], [1.0, 0.0]])  # query 0 is as close to positive 1 as to its own
    plain = infonce_loss(q, p, torch.eye(2, dtype=torch.bool), 0.05)
    masked = infonce_loss(q, p, torch.tensor([[True, True], [False, True]]), 0.05)
    assert masked < plain
    # query 0 keeps only its own positive (loss 0); query 1 still weighs both positives
    row1 = torch.nn.functional.normalize(p, dim=-1) @ q[1] / 0.05
    assert masked.item() == pytest.approx((torch.logsumexp(row1, 0) - row1[1]).item() / 2, abs=1e-5)


def test_cosine_alignment_loss_is_one_minus_the_mean_cosine_computed_by_hand():
    import numpy as np

    from isoadapt.losses.contrastive import cosine_alignment_loss

    rng = np.random.default_rng(3)
    q, p = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    by_hand = 1 - np.mean([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(q, p)])
    found = cosine_alignment_loss(torch.from_numpy(q), torch.from_numpy(p))
    assert abs(float(found) - by_hand) < 1e-12
    assert float(cosine_alignment_loss(torch.from_numpy(q), torch.from_numpy(3 * q))) < 1e-12  # scale is free
