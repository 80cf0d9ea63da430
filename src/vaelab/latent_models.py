"""Latent-variable models where ln p(x) and p(z|x) are known: notebook 03's test beds.

Notation: prior p(z), decoder p(x|z), posterior p(z|x), evidence p(x) = int p(x|z) p(z) dz;
q(z|x) is any distribution over z (``vaelab.distributions``). Three models:

- ``LinearGaussianModel``: z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D). Everything in
  closed form: ln p(x), the Gaussian posterior, E_q[ln p(x|z)] for a Gaussian q.
- ``GaussianMixtureModel``: z in {0..K-1} with probabilities pi, x | z ~ N(mu_z, Sigma_z).
  Every expectation over z is a finite sum.
- ``NonlinearModel1D``: z ~ N(0, 1), decoder f(z) = V tanh(u z + c) + e, with a Gaussian
  (x | z ~ N(f(z), s^2 I)) or Bernoulli (x_j | z ~ Bernoulli(sigmoid(f_j(z)))) likelihood.
  No conjugacy: ln p(x) and expectations under q come from numerical quadrature.

Each model offers the same methods, so ``vaelab.elbo`` and ``vaelab.derivations`` work on
any of them: log_prior, log_likelihood, log_joint, log_marginal, log_posterior,
expected_log_likelihood, expected_log_prior, kl_to_prior, kl_to_posterior, sample_prior.
``log_prior`` and ``log_likelihood`` of the two continuous models also accept float64
torch tensors for z (differentiably), so torch can optimise q by gradient ascent.
All arithmetic is float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp

from vaelab.distributions import (
    LOG_2PI,
    Categorical,
    Gaussian,
    bernoulli_log_density,
    gaussian_log_density,
)
from vaelab.kl import gaussian_kl_full, gaussian_kl_standard_normal
from vaelab.validation import (
    InputTypeError,
    as_array,
    require_generator,
    require_positive,
    require_positive_int,
)

ArrayOrTensor = np.ndarray | torch.Tensor


def _like(param: np.ndarray, z: ArrayOrTensor) -> ArrayOrTensor:
    """A model parameter in z's array library (torch tensors keep autograd working)."""
    if isinstance(z, torch.Tensor):
        return torch.as_tensor(param, dtype=z.dtype, device=z.device)
    return param


def _latent(z: ArrayOrTensor | Sequence[float], dim: int) -> ArrayOrTensor:
    """z as float64 NumPy (or a torch tensor, untouched) with a last axis of size dim."""
    if not isinstance(z, torch.Tensor):
        z = as_array(z, "z")
    elif not z.is_floating_point():  # the parameters would be cast to integers to match
        raise InputTypeError(f"z must be a floating-point tensor, got {z.dtype}; use .double()")
    if z.ndim == 0 or z.shape[-1] != dim:
        raise ValueError(f"z must have shape (..., {dim}) (latent size {dim}), "
                         f"got {tuple(z.shape)}")
    return z


def bernoulli_log_likelihood(x: ArrayOrTensor, logits: ArrayOrTensor) -> ArrayOrTensor:
    """ln p(x|logits) = sum_j [x_j ln sigmoid(l_j) + (1 - x_j) ln(1 - sigmoid(l_j))].

    = sum_j [x_j l_j - softplus(l_j)].
    That is minus the binary cross-entropy with logits, summed over the last axis.
    x: (..., D) in [0, 1] (0/1 for a likelihood); logits: (..., D). Returns (...).
    Written with softplus so large |logits| never take the log of 0.
    """
    if isinstance(logits, torch.Tensor):
        if not logits.is_floating_point():
            raise InputTypeError(f"logits must be a floating-point tensor, got {logits.dtype}")
        xt = torch.as_tensor(x, dtype=logits.dtype, device=logits.device)
        _check_bernoulli(tuple(xt.shape), tuple(logits.shape),
                         bool(((xt >= 0) & (xt <= 1)).all()))
        return bernoulli_log_density(xt, logits).sum(-1)
    xa, la = as_array(x, "x"), as_array(logits, "logits")
    _check_bernoulli(xa.shape, la.shape, bool(np.all((xa >= 0) & (xa <= 1))))
    return bernoulli_log_density(xa, la).sum(-1)


def _check_bernoulli(x_shape: tuple, logits_shape: tuple, x_in_range: bool) -> None:
    if len(x_shape) == 0 or x_shape[-1:] != logits_shape[-1:]:
        raise ValueError(f"x {x_shape} and logits {logits_shape} must share their last "
                         "dimension (the D data dimensions)")
    if not x_in_range:  # NaN fails this too
        raise ValueError("x must hold values in [0, 1] (0/1 for a likelihood); scale images "
                         "to [0, 1] first")


def ring_map(z: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """f(z) = z / 10 + z / ||z|| (Doersch, 2016, Figure 1): N(0, I) samples to a ring.

    (n, 2) -> (n, 2).
    """
    pts = as_array(z, "z", ndim=2)
    if pts.shape[1] != 2:
        raise ValueError(f"z must be points in the plane, shape (n, 2), got {pts.shape}")
    norms = np.linalg.norm(pts, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("z contains the origin, where z / ||z|| is undefined")
    return pts / 10.0 + pts / norms


class _StandardNormalPrior:
    """Shared by the continuous models: p(z) = N(0, I_d)."""

    latent_dim: int
    exact_method = "closed form"

    def log_prior(self, z: ArrayOrTensor | Sequence[float]) -> ArrayOrTensor:
        """ln N(z; 0, I). z: (..., d) -> (...)."""
        return gaussian_log_density(_latent(z, self.latent_dim), 0.0, 0.0).sum(-1)

    def log_joint(self, x: Any, z: ArrayOrTensor | Sequence[float]) -> ArrayOrTensor:
        """ln p(x, z) = ln p(x|z) + ln p(z). z: (..., d) -> (...)."""
        return self.log_likelihood(x, z) + self.log_prior(z)  # type: ignore[attr-defined]

    def _gaussian_q(self, q: Gaussian) -> Gaussian:
        if not isinstance(q, Gaussian) or q.dim != self.latent_dim:
            raise ValueError(f"q must be a vaelab.distributions.Gaussian of dimension "
                             f"{self.latent_dim}, got {q!r}")
        return q

    def expected_log_prior(self, q: Gaussian) -> float:
        """E_q[ln p(z)] = -d/2 ln(2 pi) - 1/2 (||m||^2 + tr S) for q = N(m, S)."""
        q = self._gaussian_q(q)
        return float(-0.5 * (self.latent_dim * LOG_2PI + q.mean @ q.mean + np.trace(q.cov)))

    def kl_to_prior(self, q: Gaussian) -> float:
        """KL(q || N(0, I)) in closed form (``vaelab.kl``)."""
        q = self._gaussian_q(q)
        if np.count_nonzero(q.cov - np.diag(np.diag(q.cov))) == 0:
            return float(gaussian_kl_standard_normal(q.mean, np.log(np.diag(q.cov))))
        d = self.latent_dim
        return float(gaussian_kl_full(q.mean, q.cov, np.zeros(d), np.eye(d)))

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws z ~ N(0, I): shape (n, d)."""
        n = require_positive_int(n, "n")
        return require_generator(rng).standard_normal((n, self.latent_dim))


class LinearGaussianModel(_StandardNormalPrior):
    """z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D). W: (D, d), b: (D,), noise_std s > 0."""

    def __init__(self, W: np.ndarray | Sequence[Sequence[float]],
                 b: np.ndarray | Sequence[float], noise_std: float) -> None:
        self.W = as_array(W, "W", ndim=2)
        self.b = as_array(b, "b", ndim=1)
        if self.b.shape[0] != self.W.shape[0]:
            raise ValueError(f"b must have shape ({self.W.shape[0]},) to match W {self.W.shape}, "
                             f"got {self.b.shape}")
        if self.W.size == 0:
            raise ValueError(f"W must be (D, d) with D, d >= 1, got shape {self.W.shape}")
        self.noise_std = require_positive(noise_std, "noise_std")
        self.data_dim, self.latent_dim = self.W.shape

    def __repr__(self) -> str:
        return (f"LinearGaussianModel(d={self.latent_dim}, D={self.data_dim}, "
                f"noise_std={self.noise_std:g})")

    def _x(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        arr = np.atleast_1d(as_array(x, "x"))
        if arr.shape != (self.data_dim,):
            raise ValueError(f"x must have shape ({self.data_dim},), got {arr.shape}")
        return arr

    def decoder_mean(self, z: ArrayOrTensor | Sequence[float]) -> ArrayOrTensor:
        """W z + b. z: (..., d) -> (..., D)."""
        z = _latent(z, self.latent_dim)
        return z @ _like(self.W, z).T + _like(self.b, z)

    def log_likelihood(self, x: np.ndarray | Sequence[float],
                       z: ArrayOrTensor | Sequence[float]) -> ArrayOrTensor:
        """ln N(x; W z + b, s^2 I), summed over the D data dimensions. z: (..., d) -> (...)."""
        x, z = self._x(x), _latent(z, self.latent_dim)
        logvar = 2.0 * math.log(self.noise_std)
        return gaussian_log_density(_like(x, z), self.decoder_mean(z), logvar).sum(-1)

    def marginal(self) -> Gaussian:
        """p(x) = N(b, W W^T + s^2 I)."""
        return Gaussian(self.b, self.W @ self.W.T + self.noise_std**2 * np.eye(self.data_dim))

    def log_marginal(self, x: np.ndarray | Sequence[float]) -> float:
        """ln p(x), exact."""
        return float(self.marginal().log_prob(self._x(x)))

    def posterior(self, x: np.ndarray | Sequence[float]) -> Gaussian:
        """p(z|x) = N(S W^T (x - b) / s^2, S) with S = (I + W^T W / s^2)^-1."""
        x = self._x(x)
        s2 = self.noise_std**2
        precision = np.eye(self.latent_dim) + self.W.T @ self.W / s2
        cov = np.linalg.inv(precision)
        cov = 0.5 * (cov + cov.T)  # exact symmetry, so the Cholesky check never trips on rounding
        return Gaussian(cov @ self.W.T @ (x - self.b) / s2, cov)

    def log_posterior(self, x: np.ndarray | Sequence[float],
                      z: np.ndarray | Sequence[float]) -> np.ndarray:
        """ln p(z|x). z: (..., d) -> (...)."""
        return self.posterior(x).log_prob(z)

    def expected_log_likelihood(self, x: np.ndarray | Sequence[float], q: Gaussian) -> float:
        """E_q[ln p(x|z)] for q = N(m, S): the Gaussian log-density at the mean, minus the spread.

        = -D/2 ln(2 pi s^2) - (||x - W m - b||^2 + tr(W S W^T)) / (2 s^2).
        """
        x, q = self._x(x), self._gaussian_q(q)
        s2 = self.noise_std**2
        r = x - self.W @ q.mean - self.b
        spread = np.trace(self.W @ q.cov @ self.W.T)
        return float(-0.5 * self.data_dim * (LOG_2PI + np.log(s2)) - 0.5 * (r @ r + spread) / s2)

    def kl_to_posterior(self, x: np.ndarray | Sequence[float], q: Gaussian) -> float:
        """KL(q || p(z|x)) in closed form (both are Gaussians)."""
        q, post = self._gaussian_q(q), self.posterior(x)
        return float(gaussian_kl_full(q.mean, q.cov, post.mean, post.cov))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws x ~ p(x) (z from the prior, then decoder noise): shape (n, D)."""
        z = self.sample_prior(n, rng)
        return self.decoder_mean(z) + self.noise_std * rng.standard_normal((n, self.data_dim))


class NonlinearModel1D(_StandardNormalPrior):
    """z ~ N(0, 1); f(z) = V tanh(u z + c) + e; Gaussian or Bernoulli likelihood.

    u, c: (H,) hidden weights and biases; V: (D, H); e: (D,). likelihood "gaussian"
    (x | z ~ N(f(z), noise_std^2 I), x real) or "bernoulli" (f(z) are logits, x in {0, 1}^D).
    """

    latent_dim = 1
    exact_method = "quadrature"
    #: Quadrature: trapezoid grids. 12 standard deviations each side lose < 1e-30 of a Gaussian.
    _COARSE = np.linspace(-15.0, 15.0, 3001)
    _FINE_POINTS = 20001
    _Q_POINTS = 8001
    _Q_HALF_WIDTH = 12.0

    def __init__(self, u: Sequence[float] | np.ndarray, c: Sequence[float] | np.ndarray,
                 V: Sequence[Sequence[float]] | np.ndarray, e: Sequence[float] | np.ndarray,
                 likelihood: str = "gaussian", noise_std: float = 1.0) -> None:
        self.u = as_array(u, "u", ndim=1)
        self.c = as_array(c, "c", ndim=1)
        self.V = as_array(V, "V", ndim=2)
        self.e = as_array(e, "e", ndim=1)
        hidden = self.u.shape[0]
        if hidden == 0 or self.V.shape[0] == 0:
            raise ValueError(f"u must have H >= 1 hidden units and V shape (D, H) with D >= 1, "
                             f"got u {self.u.shape} and V {self.V.shape}")
        if self.c.shape != (hidden,) or self.V.shape[1] != hidden:
            raise ValueError(f"u, c must be (H,) and V (D, H) with the same H; got u "
                             f"{self.u.shape}, c {self.c.shape}, V {self.V.shape}")
        if self.e.shape != (self.V.shape[0],):
            raise ValueError(f"e must have shape ({self.V.shape[0]},) to match V, "
                             f"got {self.e.shape}")
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        self.likelihood = likelihood
        self.noise_std = require_positive(noise_std, "noise_std")
        self.data_dim = int(self.V.shape[0])

    def __repr__(self) -> str:
        return f"NonlinearModel1D(likelihood={self.likelihood!r}, D={self.data_dim})"

    def _x(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        arr = np.atleast_1d(as_array(x, "x"))
        if arr.shape != (self.data_dim,):
            raise ValueError(f"x must have shape ({self.data_dim},), got {arr.shape}")
        if self.likelihood == "bernoulli" and not np.all((arr == 0) | (arr == 1)):
            raise ValueError("x must hold 0s and 1s under a Bernoulli likelihood")
        return arr

    def decoder(self, z: ArrayOrTensor | Sequence[float]) -> ArrayOrTensor:
        """f(z) = V tanh(u z + c) + e: Gaussian mean or Bernoulli logits. (..., 1) -> (..., D)."""
        z = _latent(z, 1)
        tanh = torch.tanh if isinstance(z, torch.Tensor) else np.tanh
        hidden = tanh(z * _like(self.u, z) + _like(self.c, z))
        return hidden @ _like(self.V, z).T + _like(self.e, z)

    def log_likelihood(self, x: np.ndarray | Sequence[float],
                       z: ArrayOrTensor | Sequence[float]) -> ArrayOrTensor:
        """ln p(x|z), summed over the D data dimensions. z: (..., 1) -> (...)."""
        x = self._x(x)
        f = self.decoder(z)
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(_like(x, f), f)
        logvar = 2.0 * math.log(self.noise_std)
        return gaussian_log_density(_like(x, f), f, logvar).sum(-1)

    def _log_joint_grid(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fine z grid covering the posterior's mass, and ln p(x, z) on it."""
        coarse = self.log_joint(x, self._COARSE[:, None])
        if not np.isfinite(coarse.max()):
            raise ValueError("x is so far from anything the model produces that ln p(x|z) is "
                             "-inf in float64 at every z; ln p(x) cannot be computed for it")
        # Keep where the integrand is within e^-60 of its peak, widened by two coarse steps
        # (>=: for a huge ln p(x, z), max - 60 rounds to max and > kept nothing).
        keep = np.flatnonzero(coarse >= coarse.max() - 60.0)
        step = self._COARSE[1] - self._COARSE[0]
        lo = self._COARSE[keep[0]] - 2 * step
        hi = self._COARSE[keep[-1]] + 2 * step
        grid = np.linspace(lo, hi, self._FINE_POINTS)
        return grid, self.log_joint(x, grid[:, None])

    def log_marginal(self, x: np.ndarray | Sequence[float]) -> float:
        """ln p(x) = ln int p(x|z) p(z) dz: trapezoid rule on a fine grid (~1e-12 accurate)."""
        grid, lj = self._log_joint_grid(self._x(x))
        return float(logsumexp(lj) + np.log(grid[1] - grid[0]))

    def posterior_density(self, x: np.ndarray | Sequence[float],
                          z: np.ndarray | Sequence[float]) -> np.ndarray:
        """p(z|x) at points z of shape (n,) (a 1-D grid, for plots): shape (n,)."""
        pts = np.atleast_1d(as_array(z, "z"))
        return np.exp(self.log_posterior(x, pts[:, None]))

    def log_posterior(self, x: np.ndarray | Sequence[float],
                      z: np.ndarray | Sequence[float]) -> np.ndarray:
        """ln p(z|x) = ln p(x, z) - ln p(x). z: (..., 1) -> (...)."""
        return self.log_joint(x, z) - self.log_marginal(x)

    def _q_grid(self, q: Gaussian) -> tuple[np.ndarray, np.ndarray]:
        """Grid points (n, 1) over q's mass and trapezoid weights q(z_i) dz (n,)."""
        q = self._gaussian_q(q)
        m, s = float(q.mean[0]), float(q.std[0])
        grid = np.linspace(m - self._Q_HALF_WIDTH * s, m + self._Q_HALF_WIDTH * s, self._Q_POINTS)
        weights = np.exp(q.log_prob(grid[:, None])) * (grid[1] - grid[0])
        return grid[:, None], weights

    def expected_log_likelihood(self, x: np.ndarray | Sequence[float], q: Gaussian) -> float:
        """E_q[ln p(x|z)] by quadrature (no closed form through the tanh)."""
        grid, w = self._q_grid(q)
        return float(w @ self.log_likelihood(x, grid))

    def kl_to_posterior(self, x: np.ndarray | Sequence[float], q: Gaussian) -> float:
        """KL(q || p(z|x)) = E_q[ln q(z) - ln p(x, z)] + ln p(x), by quadrature."""
        x = self._x(x)
        grid, w = self._q_grid(q)
        return float(w @ (q.log_prob(grid) - self.log_joint(x, grid)) + self.log_marginal(x))


class GaussianMixtureModel:
    """z in {0..K-1} with p(z = k) = weights[k]; x | z = k ~ N(means[k], covs[k]).

    weights: (K,) > 0 summing to 1; means: (K, D); covs: (K, D, D) positive definite.
    q(z|x) is a ``vaelab.distributions.Categorical``; every expectation is a finite sum.
    """

    exact_method = "finite sum"

    def __init__(self, weights: Sequence[float] | np.ndarray, means: np.ndarray,
                 covs: np.ndarray) -> None:
        self.prior = Categorical(weights)
        if np.any(self.prior.probs <= 0):
            raise ValueError("weights must all be > 0 (a cluster of weight 0 is not in the model)")
        m = as_array(means, "means", ndim=2)
        c = as_array(covs, "covs", ndim=3)
        k, d = m.shape
        if k != self.prior.size or c.shape != (k, d, d):
            raise ValueError(f"means must be (K, D) and covs (K, D, D) with K = {self.prior.size};"
                             f" got {m.shape} and {c.shape}")
        self.components = [Gaussian(m[j], c[j]) for j in range(k)]
        self.num_clusters, self.data_dim = k, d

    def __repr__(self) -> str:
        return f"GaussianMixtureModel(K={self.num_clusters}, D={self.data_dim})"

    def _x(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        arr = np.atleast_1d(as_array(x, "x"))
        if arr.shape != (self.data_dim,):
            raise ValueError(f"x must have shape ({self.data_dim},), got {arr.shape}")
        return arr

    def _q(self, q: Categorical) -> Categorical:
        if not isinstance(q, Categorical) or q.size != self.num_clusters:
            raise ValueError(f"q must be a vaelab.distributions.Categorical over "
                             f"{self.num_clusters} clusters, got {q!r}")
        return q

    def log_likelihood_table(self, x: np.ndarray | Sequence[float]) -> np.ndarray:
        """ln p(x | z = k) for every k: shape (K,)."""
        x = self._x(x)
        return np.array([float(comp.log_prob(x)) for comp in self.components])

    def log_prior(self, z: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """ln p(z) = ln weights[z] (any integer shape)."""
        return self.prior.log_prob(z)

    def log_likelihood(self, x: np.ndarray | Sequence[float],
                       z: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """ln p(x|z) = ln N(x; means[z], covs[z]) (z: any integer shape)."""
        return self.log_likelihood_table(x)[self.prior._labels(z)]

    def log_joint(self, x: np.ndarray | Sequence[float],
                  z: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """ln p(x, z) = ln p(x|z) + ln p(z)."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def log_marginal(self, x: np.ndarray | Sequence[float]) -> float:
        """ln p(x) = ln sum_k weights[k] N(x; means[k], covs[k]), exact."""
        return float(logsumexp(self.log_likelihood_table(x) + np.log(self.prior.probs)))

    def posterior(self, x: np.ndarray | Sequence[float]) -> Categorical:
        """p(z|x): the clusters' responsibilities for x."""
        lj = self.log_likelihood_table(x) + np.log(self.prior.probs)
        return Categorical(np.exp(lj - logsumexp(lj)))

    def log_posterior(self, x: np.ndarray | Sequence[float],
                      z: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """ln p(z|x) = ln p(x, z) - ln p(x)."""
        return self.log_joint(x, z) - self.log_marginal(x)

    def expected_log_likelihood(self, x: np.ndarray | Sequence[float], q: Categorical) -> float:
        """E_q[ln p(x|z)] = sum_k q_k ln p(x | k)."""
        return self._q(q).expect(self.log_likelihood_table(x))

    def expected_log_prior(self, q: Categorical) -> float:
        """E_q[ln p(z)] = sum_k q_k ln weights[k]."""
        return self._q(q).expect(np.log(self.prior.probs))

    def kl_to_prior(self, q: Categorical) -> float:
        """KL(q || p(z)) = sum_k q_k ln(q_k / weights[k])."""
        q = self._q(q)
        return q.expect(q.log_prob(np.arange(q.size)) - np.log(self.prior.probs))

    def kl_to_posterior(self, x: np.ndarray | Sequence[float], q: Categorical) -> float:
        """KL(q || p(z|x)) = sum_k q_k ln(q_k / p(k|x))."""
        q, post = self._q(q), self.posterior(x)
        labels = np.arange(q.size)
        return q.expect(q.log_prob(labels) - post.log_prob(labels))

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n cluster labels z ~ p(z): shape (n,)."""
        return self.prior.sample(n, rng)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n pairs (z, x): labels (n,) and points (n, D)."""
        z = self.sample_prior(n, rng)
        x = np.stack([self.components[k].sample(1, rng)[0] for k in z])
        return z, x
