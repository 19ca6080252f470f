"""Unlabelled alignment: a map from the query (new) model's space into the base (old) model's space, fitted in
closed form on paired texts, texts both models embed (Drift-Adapter, arXiv 2509.23471). No labels: the map
only has to say, for a text, what the old model would have given. Each returns the query-only LinearHead
that a cross-model run starts from (`--head_init least_squares | procrustes`) or stands on alone (a plan's
`align` row): `dim` = the new model's width, `out_dim` = the old model's."""

from __future__ import annotations

import numpy as np
import torch

from isoadapt.errors import InputError
from isoadapt.head import LinearHead
from isoadapt.training.config import ALIGNMENT_INITS as ALIGNMENTS


def _paired(new: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    new, old = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    if new.ndim != 2 or old.ndim != 2 or len(new) != len(old):
        raise InputError(
            f"paired texts: {new.shape} new-model vectors and {old.shape} old-model vectors do not line up "
            "(one row per text on each side)"
        )
    if len(new) < 2:
        raise InputError(f"paired texts: {len(new)} text; an alignment needs at least 2")
    return new, old


def least_squares_map(new: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) minimising ||new @ W + b - old||_F: ordinary least squares with an intercept, solved by
    numpy.linalg.lstsq. With fewer texts than the new model's width the system is underdetermined and lstsq
    returns its minimum-norm solution (what a map fitted on 100 texts then is). W: (d_new, d_old)."""
    new, old = _paired(new, old)
    design = np.hstack([new, np.ones((len(new), 1))])  # (n, d_new + 1)
    solution, *_ = np.linalg.lstsq(design, old, rcond=None)  # (d_new + 1, d_old)
    return solution[:-1], solution[-1]


def procrustes_map(new: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, b): orthogonal Procrustes with translation. Both sides are centred, and W maximises
    trace(W^T X^T Y) over W with orthonormal columns (d_new >= d_old) or rows (d_new < d_old): the polar
    factor W = U V^T of the thin SVD X^T Y = U S V^T (Schoenemann 1966; for differing widths, the
    semi-orthogonal solution on the Stiefel manifold, which the thin SVD gives as it stands). A rotation (plus
    a projection when the widths differ) keeps the new space's angles: it cannot overfit a few texts as a
    free linear map can. b = mean(old) - mean(new) @ W. W: (d_new, d_old)."""
    new, old = _paired(new, old)
    new_mean, old_mean = new.mean(axis=0), old.mean(axis=0)
    u, _, vt = np.linalg.svd((new - new_mean).T @ (old - old_mean), full_matrices=False)  # (d_new, k), (k, d_old)
    weight = u @ vt  # (d_new, d_old)
    return weight, old_mean - new_mean @ weight


def alignment_head(method: str, new: np.ndarray, old: np.ndarray) -> LinearHead:
    """The fitted map as a query-only head: queries (new model) pass through it; documents keep the old model's."""
    if method not in ALIGNMENTS:
        raise InputError(f"alignment {method!r}: expected one of {list(ALIGNMENTS)}")
    weight, bias = (least_squares_map if method == "least_squares" else procrustes_map)(new, old)
    head = LinearHead(weight.shape[0], weight.shape[1], adapt="query")
    with torch.no_grad():
        head.linear.weight.copy_(torch.from_numpy(weight.T.astype(np.float32)))  # nn.Linear holds (out, in)
        head.linear.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return head.eval()
