"""Isotropy diagnostics against cases with known answers and against the IsoScore authors' package."""

import numpy as np
import pytest
import torch

from isoadapt.metrics import isotropy as iso

RNG = np.random.default_rng(0)
GAUSSIAN = RNG.normal(size=(4000, 32))
ANISOTROPIC = RNG.normal(size=(4000, 32)) * np.geomspace(0.05, 3, 32)
RANK_ONE = np.outer(RNG.normal(size=500), RNG.normal(size=32)) + 1e-9 * RNG.normal(size=(500, 32))
SHIFTED = RNG.normal(size=(2000, 32)) * 0.1 + 3.0  # every vector points roughly the same way


@pytest.mark.parametrize(
    "cloud", [GAUSSIAN, ANISOTROPIC, RANK_ONE, RNG.normal(size=(60, 32)) @ RNG.normal(size=(32, 32))]
)
def test_isoscore_matches_the_reference_package(cloud):
    from IsoScore import IsoScore as reference

    assert iso.isoscore(cloud) == pytest.approx(float(reference.IsoScore(cloud)), abs=1e-6)


@pytest.mark.parametrize("zeta", [0.1, 0.5])
def test_isoscore_star_matches_the_reference_package(zeta):
    from IsoScore import IsoScore as reference

    small = RNG.normal(size=(20, 32)) * np.linspace(0.5, 2, 32)  # n < d: where shrinkage matters
    c0 = np.eye(32)
    expected = float(reference.IsoScore_star(small, torch.eye(32, dtype=torch.float64), zeta))
    assert iso.isoscore_star(small, zeta=zeta, c0=c0) == pytest.approx(expected, abs=1e-6)


def test_known_answers():
    assert iso.isoscore(GAUSSIAN) > 0.95 and iso.isoscore(RANK_ONE) < 0.01
    assert iso.effective_rank(GAUSSIAN) > 31 and iso.effective_rank(RANK_ONE) == pytest.approx(1.0, abs=1e-3)
    assert abs(iso.mean_cosine(GAUSSIAN)) < 0.02 and iso.mean_cosine(SHIFTED) > 0.9
    # unit vectors all along one direction u: Z(u) = n e, Z(c _|_ u) = n, so I(W) = 1/e
    assert iso.partition_isotropy(GAUSSIAN) > 0.9 and iso.partition_isotropy(SHIFTED) == pytest.approx(
        np.exp(-1), abs=0.01
    )
    assert iso.uniformity(GAUSSIAN) < iso.uniformity(SHIFTED)
    assert iso.uniformity(np.tile([[1.0, 0.0]], (10, 1))) == pytest.approx(0.0)  # all points equal: log E exp(0)
    assert iso.alignment(GAUSSIAN[:100], GAUSSIAN[:100]) == pytest.approx(0.0)
    assert iso.alignment(np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]])) == pytest.approx(4.0)
    assert iso.per_dimension_std(np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize(
    "metric", ["isoscore", "isoscore_star", "effective_rank", "mean_cosine", "uniformity", "partition_isotropy"]
)
@pytest.mark.parametrize("scale", [1e-3, 37.0])
def test_scale_invariance_where_claimed(metric, scale):
    fn = getattr(iso, metric)
    assert fn(ANISOTROPIC * scale) == pytest.approx(fn(ANISOTROPIC), rel=1e-6, abs=1e-9)


def test_alignment_and_std_are_scale_invariant():
    assert iso.alignment(GAUSSIAN[:50] * 9, GAUSSIAN[50:100]) == pytest.approx(
        iso.alignment(GAUSSIAN[:50], GAUSSIAN[50:100])
    )
    assert np.allclose(iso.per_dimension_std(ANISOTROPIC * 5), iso.per_dimension_std(ANISOTROPIC))


def test_spectrum_is_a_distribution():
    spectrum = iso.covariance_spectrum(ANISOTROPIC)
    assert spectrum.sum() == pytest.approx(1.0) and np.all(np.diff(spectrum) <= 1e-12)


def test_istar_loss_matches_the_package_value_and_gradient():
    from IsoScore.IsoScore import istar

    from isoadapt.losses.isotropy import istar_isotropy_loss

    z = (
        torch.randn(24, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        * torch.linspace(0.1, 2, 64, dtype=torch.float64)
    ).requires_grad_()
    ours = istar_isotropy_loss(z)
    (grad,) = torch.autograd.grad(ours, z)
    z2 = z.detach().clone().requires_grad_()
    c0 = torch.eye(64, dtype=torch.float64) * torch.cov(z2.T).diagonal().mean().detach()
    reference = 1 - istar().IsoScore_star(z2, c0, 0.2, is_eval=False, gpu_id="cpu")
    (reference_grad,) = torch.autograd.grad(reference, z2)
    assert ours.item() == pytest.approx(reference.item(), abs=1e-6)
    assert torch.allclose(grad, reference_grad, atol=1e-8)
    assert istar_isotropy_loss(z.detach() * 8).item() == pytest.approx(ours.item(), abs=1e-9)


def test_mean_cosine_equals_the_all_pairs_average():
    x = RNG.normal(size=(40, 8)) + 0.5
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit.T
    brute = (sims.sum() - np.trace(sims)) / (40 * 39)
    assert iso.mean_cosine(x) == pytest.approx(brute, abs=1e-12)


def test_report_shares_one_spectrum_but_matches_the_public_functions():
    report = iso.isotropy_report(ANISOTROPIC)
    assert report["isoscore"] == pytest.approx(iso.isoscore(ANISOTROPIC))
    assert report["isoscore_star"] == pytest.approx(iso.isoscore_star(ANISOTROPIC))
    assert report["effective_rank"] == pytest.approx(iso.effective_rank(ANISOTROPIC))
