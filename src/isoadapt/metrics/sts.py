"""STS evaluation: Spearman correlation between cosine similarity and the gold score (SentEval/MTEB style)."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from isoadapt.metrics.normalize import l2_normalize


def sts_spearman(vectors1: np.ndarray, vectors2: np.ndarray, gold: np.ndarray) -> float:  # (n, d), (n, d), (n,)
    a, b = l2_normalize(vectors1), l2_normalize(vectors2)
    return float(spearmanr((a * b).sum(axis=1), gold).statistic)
