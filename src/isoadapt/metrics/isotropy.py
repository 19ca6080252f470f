"""Isotropy diagnostics of an embedding set: pure functions on (n, d) arrays, float64 inside.

Each docstring gives the formula and its reference, and says whether it is scale-invariant.
"""

from __future__ import annotations

import numpy as np

from isoadapt.metrics.normalize import l2_normalize


def _unit(vectors: np.ndarray) -> np.ndarray:  # float64 inside, as every formula here
    return l2_normalize(np.asarray(vectors, dtype=np.float64))


def _covariance_eigenvalues(vectors: np.ndarray) -> np.ndarray:
    """Eigenvalues of the sample covariance (unbiased), descending, clipped at 0."""
    x = np.asarray(vectors, dtype=np.float64)
    cov = np.cov(x, rowvar=False)
    return np.clip(np.linalg.eigvalsh(np.atleast_2d(cov))[::-1], 0.0, None)


def per_dimension_std(vectors: np.ndarray) -> np.ndarray:  # (n, d) -> (d,)
    """Std of each coordinate of the L2-normalised vectors: the research's "embedding std".
    Scale-invariant (the vectors are normalised first)."""
    return _unit(vectors).std(axis=0)


def mean_cosine(vectors: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct rows (Ethayarajh 2019's anisotropy baseline),
    exactly and in O(n d): sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - n for unit vectors u. Near 0 for an
    isotropic cloud, near 1 when all vectors point one way. Scale-invariant."""
    unit = _unit(vectors)
    n = len(unit)
    total = unit.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def _isoscore_from_spectrum(spectrum: np.ndarray) -> float:
    """IsoScore's steps 3-6 (Rudman et al. 2022, as in their isoscore 2.0.1 package) on the covariance's
    singular values: normalise to norm sqrt(n), isotropy defect delta = ||s - 1|| / sqrt(2(n - sqrt n)),
    then ((n - delta^2 (n - sqrt n))^2 - n) / (n (n - 1)). 1 = isotropic, 0 = one direction."""
    n = float(len(spectrum))
    normalised = spectrum * np.sqrt(n) / np.linalg.norm(spectrum)
    defect = np.linalg.norm(normalised - 1.0) / np.sqrt(2.0 * (n - np.sqrt(n)))
    return float(((n - defect**2 * (n - np.sqrt(n))) ** 2 - n) / (n * (n - 1.0)))


def isoscore(vectors: np.ndarray) -> float:
    """IsoScore (Rudman, Gillman, Rayne & Eickhoff, ACL 2022) of the point cloud, from the singular values
    of its covariance matrix. In [0, 1]; scale-invariant; rotation-invariant."""
    return _isoscore_from_spectrum(_covariance_eigenvalues(vectors))


def _isoscore_star_from_eigenvalues(eig: np.ndarray, zeta: float = 0.2) -> float:
    """IsoScore* with C0 = mean eigenvalue x I: the shrunk spectrum is (1 - zeta) lambda + zeta mean(lambda)."""
    return _isoscore_from_spectrum((1.0 - zeta) * eig + zeta * eig.mean())


def _effective_rank_from_eigenvalues(eig: np.ndarray) -> float:
    p = eig / eig.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def isoscore_star(vectors: np.ndarray, zeta: float = 0.2, c0: np.ndarray | None = None) -> float:
    """IsoScore* (Rudman & Eickhoff, ICLR 2024): IsoScore of the shrunk covariance (1 - zeta) C + zeta C0,
    which stabilises small samples (n < d). C0 defaults to the identity times C's mean eigenvalue, so the
    score stays scale-invariant; pass C0 = I to match the package's own example."""
    if c0 is None:
        return _isoscore_star_from_eigenvalues(_covariance_eigenvalues(vectors), zeta)
    cov = np.cov(np.asarray(vectors, dtype=np.float64), rowvar=False)
    shrunk = (1.0 - zeta) * cov + zeta * c0
    return _isoscore_from_spectrum(np.clip(np.linalg.eigvalsh(shrunk)[::-1], 0.0, None))


def effective_rank(vectors: np.ndarray) -> float:
    """exp(H(p)) with p the covariance eigenvalues normalised to sum 1 (Roy & Vetterli 2007, on the
    covariance spectrum). d for an isotropic cloud, 1 for a rank-1 set. Scale-invariant."""
    return _effective_rank_from_eigenvalues(_covariance_eigenvalues(vectors))


def partition_isotropy(vectors: np.ndarray) -> float:
    """I(W) = min_c Z(c) / max_c Z(c), Z(c) = sum_i exp(c . w_i), c over the eigenvectors of W^T W
    (Mu & Viswanath 2018, after Arora et al. 2016). 1 = isotropic. Not scale-invariant (exp), so we
    apply it to the L2-normalised vectors, as the diagnostic of directions it is meant to be."""
    unit = _unit(vectors)
    _, eigvecs = np.linalg.eigh(unit.T @ unit)
    logits = unit @ eigvecs  # (n, d): c . w_i for every candidate c
    z = np.exp(logits - logits.max()).sum(axis=0)
    return float(z.min() / z.max())


def uniformity(vectors: np.ndarray, t: float = 2.0, max_points: int = 2000, seed: int = 0) -> float:
    """log E_{x != y} exp(-t ||x - y||^2) over L2-normalised vectors (Wang & Isola 2020). Lower = more
    uniform on the sphere. Scale-invariant. At most `max_points` rows are sampled (all pairs of them)."""
    unit = _unit(vectors)
    if len(unit) > max_points:
        unit = unit[np.random.default_rng(seed).choice(len(unit), max_points, replace=False)]
    sq = np.clip(2.0 - 2.0 * unit @ unit.T, 0.0, None)  # ||x - y||^2 for unit vectors
    off = ~np.eye(len(unit), dtype=bool)
    values = -t * sq[off]
    return float(np.log(np.mean(np.exp(values - values.max()))) + values.max())


def alignment(anchors: np.ndarray, positives: np.ndarray, alpha: float = 2.0) -> float:
    """E ||f(x) - f(y)||^alpha over positive pairs of L2-normalised vectors (Wang & Isola 2020). Lower =
    positives closer. Scale-invariant."""
    return float((np.linalg.norm(_unit(anchors) - _unit(positives), axis=1) ** alpha).mean())


def covariance_spectrum(vectors: np.ndarray) -> np.ndarray:
    """Covariance eigenvalues of the L2-normalised vectors, descending, normalised to sum 1 (for plots)."""
    eig = _covariance_eigenvalues(_unit(vectors))
    return eig / eig.sum()


def isotropy_report(
    vectors: np.ndarray, anchors: np.ndarray | None = None, positives: np.ndarray | None = None
) -> dict[str, float]:
    """Every diagnostic, as one flat dict."""
    eig = _covariance_eigenvalues(vectors)  # once: IsoScore, IsoScore* and effective rank share it
    report = {
        "mean_cosine": mean_cosine(vectors),
        "isoscore": _isoscore_from_spectrum(eig),
        "isoscore_star": _isoscore_star_from_eigenvalues(eig),
        "effective_rank": _effective_rank_from_eigenvalues(eig),
        "partition_isotropy": partition_isotropy(vectors),
        "uniformity": uniformity(vectors),
    }
    if anchors is not None and positives is not None and len(anchors):
        report["alignment"] = alignment(anchors, positives)
    return report
