"""L2 normalisation, the one rule: every vector isoadapt scores, stores or returns is scaled to unit length
here (runs score by cosine), with torch.nn.functional.normalize's floor, so numpy and torch code agree (to
float rounding) and an all-zero row stays zero (no NaN, no made-up direction)."""

from __future__ import annotations

import numpy as np

NORM_EPS = 1e-12  # torch.nn.functional.normalize's default eps: x / max(||x||, eps)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:  # (..., d) -> (..., d), rows of norm 1 (or 0)
    """Each row (the last axis) divided by max(its L2 norm, 1e-12), as torch.nn.functional.normalize(x, dim=-1)
    does, and as the export's Normalize module does. float64 stays float64 (the isotropy metrics); anything
    else becomes float32, the type of every stored vector (float16 would lose the floor: 1e-12 underflows)."""
    array = np.asarray(vectors)
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=-1, keepdims=True), NORM_EPS).astype(array.dtype)
