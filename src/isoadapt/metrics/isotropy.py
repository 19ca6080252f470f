"""Isotropy diagnostics of an embedding set (pure functions on (n, d) arrays)."""

from __future__ import annotations

import numpy as np


def per_dimension_std(vectors: np.ndarray) -> np.ndarray:  # (n, d) -> (d,)
    """Std of each coordinate of the L2-normalised vectors: the research's "embedding std"."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return unit.std(axis=0)
