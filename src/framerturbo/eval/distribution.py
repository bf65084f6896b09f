"""Feature statistics and the Fréchet distance — the math under FID and FVD.

FID and FVD both fit a Gaussian to network features of the real and of the generated set and
report the Fréchet (2-Wasserstein) distance between the two Gaussians:

    d² = |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½)

(Heusel et al. 2017; FVD: Unterthiner et al. 2018, with I3D features instead of Inception's).
The covariance is the unbiased sample covariance (N − 1), as pytorch-fid and the StyleGAN
metrics compute it.
"""

from __future__ import annotations

import warnings

import numpy as np


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of (N, D) features, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"feature statistics need (N >= 2, D) features, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """d² between N(μ₁, Σ₁) and N(μ₂, Σ₂). A singular product (fewer samples than feature
    dimensions) gets ``eps`` on the diagonals, as pytorch-fid does; the tiny imaginary part
    ``sqrtm`` can return from rounding is dropped."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"statistics of different sizes: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(s1 @ s2)
        except linalg.LinAlgWarning:  # singular product
            covmean = np.full_like(s1, np.nan)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return max(value, 0.0)  # rounding can leave −1e−12 for identical sets


def frechet_distance_of(real, fake) -> float:
    """d² between Gaussians fitted to two (N, D) feature sets."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))
