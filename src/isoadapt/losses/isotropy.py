"""Scale-invariant isotropy loss on the batch covariance of the projected embeddings."""

from __future__ import annotations

import torch


def covariance_isotropy_loss(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:  # (n, d) -> ()
    """How far the batch covariance C is from a multiple of the identity, on a 0..1 scale.

    With C normalised by its mean eigenvalue, ||C/mean_eig - I||_F^2 / d = d / PR - 1, where
    PR = tr(C)^2 / ||C||_F^2 is the participation ratio (the effective number of equal directions).
    A batch of n rows spans at most r = min(n - 1, d) directions, so the loss is 1 - PR / r: zero when
    the batch's spectrum is flat, near 1 when it collapses to one direction, and unchanged when every
    embedding is multiplied by the same constant. Computed through the n x n Gram matrix, which has the
    same non-zero spectrum as C and costs O(n^2 d) instead of O(n d^2).
    """
    n, d = embeddings.shape
    if n < 2:
        raise ValueError("the isotropy loss needs at least 2 embeddings")
    centered = embeddings - embeddings.mean(dim=0, keepdim=True)  # (n, d)
    gram = centered @ centered.T  # (n, n)
    trace = gram.diagonal().sum()
    participation = trace**2 / (gram.pow(2).sum() + eps)
    return 1.0 - participation / min(n - 1, d)
