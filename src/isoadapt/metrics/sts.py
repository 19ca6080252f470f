"""STS evaluation: Spearman correlation between cosine similarity and the gold score (SentEval/MTEB style)."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def sts_spearman(vectors1: np.ndarray, vectors2: np.ndarray, gold: np.ndarray) -> float:  # (n, d), (n, d), (n,)
    a = vectors1 / np.maximum(np.linalg.norm(vectors1, axis=1, keepdims=True), 1e-12)
    b = vectors2 / np.maximum(np.linalg.norm(vectors2, axis=1, keepdims=True), 1e-12)
    return float(spearmanr((a * b).sum(axis=1), gold).statistic)
