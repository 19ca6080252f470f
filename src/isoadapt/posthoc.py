"""Post-hoc isotropy fixes that need no training, fitted on the training texts' base vectors and returned
as an AffineHead, so evaluation (and export) treats them exactly like a trained head."""

from __future__ import annotations

import numpy as np
import torch

from isoadapt.errors import InputError
from isoadapt.head import AffineHead, LinearHead


def _affine(method: str, weight: np.ndarray, bias: np.ndarray) -> AffineHead:
    """weight: (out_dim, dim), bias: (out_dim,)"""
    head = AffineHead(weight.shape[1], weight.shape[0], method)
    with torch.no_grad():
        head.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        head.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return head.eval()


def fit_centering(vectors: np.ndarray) -> AffineHead:
    """x - mu."""
    mu = vectors.astype(np.float64).mean(axis=0)
    return _affine("centering", np.eye(len(mu)), -mu)


def fit_whitening(vectors: np.ndarray, keep: int | None = None, eps: float = 1e-9) -> AffineHead:
    """BERT-whitening (Su et al. 2021): y = (x - mu) U_k diag(1/sqrt(s_k)), from the SVD of the covariance;
    keeping k < d dimensions also reduces the dimension."""
    x = vectors.astype(np.float64)
    mu = x.mean(axis=0)
    cov = np.cov(x - mu, rowvar=False)
    u, s, _ = np.linalg.svd(cov)
    keep = keep or len(mu)
    if not 1 <= keep <= len(mu):
        raise InputError(f"whitening keep={keep}: must be between 1 and {len(mu)}")
    w = u[:, :keep] / np.sqrt(s[:keep] + eps)  # (d, k)
    return _affine(f"whitening-{keep}", w.T, -(mu @ w))


def fit_all_but_the_top(vectors: np.ndarray, remove: int | None = None) -> AffineHead:
    """All-but-the-top (Mu & Viswanath 2018): subtract the mean, then the projections on the top D
    principal directions; D defaults to d/100 as the paper suggests."""
    x = vectors.astype(np.float64)
    mu = x.mean(axis=0)
    remove = remove if remove is not None else max(1, round(len(mu) / 100))
    if not 0 <= remove < len(mu):
        raise InputError(f"all-but-the-top remove={remove}: must be between 0 and {len(mu) - 1}")
    _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
    top = vt[:remove]  # (D, d)
    projection = np.eye(len(mu)) - top.T @ top  # symmetric
    return _affine(f"abtt-{remove}", projection, -(mu @ projection))


POSTHOC = {"centering": fit_centering, "whitening": fit_whitening, "abtt": fit_all_but_the_top}


def fit_posthoc(method: str, vectors: np.ndarray, **options) -> AffineHead:
    if method not in POSTHOC:
        raise InputError(f"post-hoc transform {method!r}: expected one of {sorted(POSTHOC)}")
    return POSTHOC[method](vectors, **options)


def initial_head(init: str, dim: int, train_vectors: np.ndarray | None, out_dim: int | None, adapt: str) -> LinearHead:
    """A trainable linear head starting at the identity, or at whitening / all-but-the-top fitted on the
    training texts' base vectors (never on validation or test): training then starts from what already works."""
    if out_dim is not None and not 1 <= out_dim <= dim:
        raise InputError(f"--out_dim {out_dim}: must be between 1 and the encoder's {dim} dimensions")
    head = LinearHead(dim, out_dim if init == "whitening" else None, adapt)
    if init == "identity":
        return head
    options = {"keep": out_dim} if init == "whitening" and out_dim else {}
    return head.init_from(fit_posthoc("abtt" if init == "abtt" else "whitening", train_vectors, **options))
