"""Two-dimensional real-valued toy data sets for notebook 05's Gaussian-decoder VAE.

- The ring of Doersch (2016, Figure 1): z ~ N(0, I_2) pushed through f(z) = z/10 + z/||z||
  (``vaelab.latent_models.ring_map``, drawn in notebook 03): a ring of radius 1 + ||z||/10.
- A mixture of Gaussian clusters with different spreads (data that is Gaussian only given
  its cluster, and whose noise level depends on where you are).

Both return float64 NumPy arrays of shape (n, 2). ``Standardization`` centres and scales
data column by column (fitted on training data, applied to held-out data).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vaelab.latent_models import ring_map
from vaelab.validation import as_array, require_generator, require_positive_int

# Cluster centres on a circle of radius 3 and their (isotropic) standard deviations:
# spreads that differ by a factor of 8, so one noise level cannot fit them all.
CLUSTER_CENTERS = np.array([[3.0, 0.0], [0.0, 3.0], [-3.0, 0.0], [0.0, -3.0]])
CLUSTER_SCALES = np.array([0.1, 0.2, 0.4, 0.8])


def as_points(x: np.ndarray, name: str = "x", dim: int | None = None) -> np.ndarray:
    """``x`` as a finite float64 array of shape (n, D) with n >= 1, or raise ``ValueError``."""
    arr = as_array(x, name, finite=False)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (n, D) with n, D >= 1, got {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values; remove or fix them")
    return arr


def sample_ring(n: int, rng: np.random.Generator) -> np.ndarray:
    """n points of the ring: x = f(z), z ~ N(0, I_2). Returns float64 (n, 2)."""
    n = require_positive_int(n, "n")
    return ring_map(require_generator(rng).standard_normal((n, 2)))


def sample_clusters(
    n: int,
    rng: np.random.Generator,
    centers: np.ndarray = CLUSTER_CENTERS,
    scales: np.ndarray = CLUSTER_SCALES,
) -> np.ndarray:
    """n points from an equal-weight mixture of isotropic Gaussians. Returns float64 (n, D).

    centers: (K, D) cluster means; scales: (K,) positive standard deviations.
    """
    n = require_positive_int(n, "n")
    rng = require_generator(rng)
    centers = as_points(centers, "centers")
    scales = as_array(scales, "scales", finite=False)
    if scales.shape != (centers.shape[0],):
        raise ValueError(
            f"scales must have one value per cluster, shape ({centers.shape[0]},), "
            f"got {scales.shape}"
        )
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError("scales must be positive, finite standard deviations")
    which = rng.integers(0, centers.shape[0], size=n)
    noise = rng.standard_normal((n, centers.shape[1]))
    return centers[which] + scales[which, None] * noise


class Standardization(NamedTuple):
    """Column means and standard deviations (D,), fitted on training data."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, D) raw -> (n, D) standardised (zero mean, unit variance on the fitting data)."""
        return (as_points(x, "x", dim=self.mean.shape[0]) - self.mean) / self.std

    def invert(self, x_std: np.ndarray) -> np.ndarray:
        """(n, D) standardised -> (n, D) in the original units."""
        return as_points(x_std, "x_std", dim=self.mean.shape[0]) * self.std + self.mean


def fit_standardization(x: np.ndarray) -> Standardization:
    """Column mean and standard deviation of training data x (n, D), n >= 2."""
    x = as_points(x, "x")
    if x.shape[0] < 2:
        raise ValueError("standardisation needs at least two points to measure a spread")
    with np.errstate(over="ignore"):
        std = x.std(axis=0)
    if not np.all(np.isfinite(std)):
        raise ValueError("the spread of a column of x overflows float64; rescale x (divide by "
                         "its largest value) first")
    if np.any(std == 0):
        raise ValueError("a column of x is constant: it cannot be scaled to unit variance")
    return Standardization(x.mean(axis=0), std)
