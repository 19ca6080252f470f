"""The one L2 normalisation (metrics/normalize.py), held to torch.nn.functional.normalize and to a hand-computed
case: zero rows stay zero, float64 stays float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isoadapt.metrics.normalize import l2_normalize

ROWS = np.array([[3.0, 4.0], [0.0, 0.0], [1e-20, 0.0], [-2.0, 0.0]], dtype=np.float32)


def test_l2_normalize_by_hand_and_zero_rows_stay_zero():
    expected = np.array([[0.6, 0.8], [0.0, 0.0], [1e-8, 0.0], [-1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(l2_normalize(ROWS), expected, rtol=1e-6, atol=0)
    assert not np.isnan(l2_normalize(np.zeros((2, 3)))).any() and not l2_normalize(np.zeros((2, 3))).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_normalize_equals_torch_normalize(dtype):
    rows = np.random.default_rng(0).normal(size=(50, 7)).astype(dtype) * np.logspace(-15, 3, 50, dtype=dtype)[:, None]
    rows = np.concatenate([rows, ROWS[:, :1].repeat(7, axis=1).astype(dtype)])
    ours = l2_normalize(rows)
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours, torch.nn.functional.normalize(torch.from_numpy(rows), dim=-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(l2_normalize(rows[3]), ours[3], rtol=1e-6)  # one vector: its last axis


def test_integers_and_float16_become_float32():
    assert l2_normalize(np.array([[3, 4]])).dtype == np.float32
    assert l2_normalize(np.zeros((1, 2), dtype=np.float16)).dtype == np.float32
