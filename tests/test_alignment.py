"""The closed-form alignments (training/alignment.py) against independent references: numpy's lstsq on a
hand-built system, SciPy's orthogonal_procrustes for equal widths, and the defining property (orthonormal
columns, best over random semi-orthogonal maps) for differing widths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes

from isoadapt.errors import InputError
from isoadapt.training.alignment import alignment_head, least_squares_map, procrustes_map


def pair(n: int, d_new: int, d_old: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    new = rng.normal(size=(n, d_new))
    old = new @ rng.normal(size=(d_new, d_old)) + 0.3 + 0.05 * rng.normal(size=(n, d_old))
    return new, old


def test_least_squares_recovers_an_exact_affine_map():
    rng = np.random.default_rng(1)
    new = rng.normal(size=(50, 6))
    weight, bias = rng.normal(size=(6, 4)), rng.normal(size=4)
    found_weight, found_bias = least_squares_map(new, new @ weight + bias)
    np.testing.assert_allclose(found_weight, weight, atol=1e-8)
    np.testing.assert_allclose(found_bias, bias, atol=1e-8)


def test_least_squares_is_numpys_lstsq_with_an_intercept_column():
    new, old = pair(40, 8, 5)
    reference, *_ = np.linalg.lstsq(np.c_[new, np.ones(40)], old, rcond=None)
    weight, bias = least_squares_map(new, old)
    np.testing.assert_allclose(np.r_[weight, bias[None]], reference, atol=1e-10)


def test_procrustes_equals_scipy_on_centred_data_for_equal_widths():
    new, old = pair(60, 7, 7)
    reference, _ = orthogonal_procrustes(new - new.mean(0), old - old.mean(0))
    weight, bias = procrustes_map(new, old)
    np.testing.assert_allclose(weight, reference, atol=1e-10)
    np.testing.assert_allclose(bias, old.mean(0) - new.mean(0) @ reference, atol=1e-10)


@pytest.mark.parametrize(("d_new", "d_old"), [(9, 4), (4, 9)])
def test_procrustes_across_widths_is_semi_orthogonal_and_beats_random_ones(d_new, d_old):
    new, old = pair(80, d_new, d_old)
    weight, _ = procrustes_map(new, old)
    gram = weight.T @ weight if d_new >= d_old else weight @ weight.T
    np.testing.assert_allclose(gram, np.eye(min(d_new, d_old)), atol=1e-10)
    x, y = new - new.mean(0), old - old.mean(0)
    best = np.linalg.norm(x @ weight - y)
    rng = np.random.default_rng(2)
    for _ in range(200):
        q, _ = np.linalg.qr(rng.normal(size=(max(d_new, d_old), min(d_new, d_old))))
        other = q if d_new >= d_old else q.T
        assert np.linalg.norm(x @ other - y) >= best - 1e-9


def test_the_head_applies_the_fitted_map_to_queries():
    new, old = pair(30, 6, 3)
    head = alignment_head("least_squares", new, old)
    weight, bias = least_squares_map(new, old)
    assert (head.dim, head.out_dim, head.adapt) == (6, 3, "query")
    with torch.no_grad():
        out = head(torch.from_numpy(new.astype(np.float32))).numpy()
    np.testing.assert_allclose(out, new @ weight + bias, atol=1e-4)


def test_paired_vectors_that_do_not_line_up_are_refused():
    with pytest.raises(InputError, match=r"\(5, 4\) new-model vectors and \(6, 3\) old-model vectors do not line up"):
        procrustes_map(np.ones((5, 4)), np.ones((6, 3)))
