"""Distributions with exact log-densities, and the reparameterization.

In float64 NumPy, the variational families q(z|x) of notebook 03 and the building blocks of
its latent models (``vaelab.latent_models``): a Gaussian N(mean, cov) with a full
covariance (a diagonal one is the special case ``Gaussian.diagonal``), and a
categorical distribution over {0, ..., K-1}.

For both (NumPy arrays or torch tensors): the Gaussian and Bernoulli log-densities every
model of the series uses, and the Cholesky factor. In torch, for the VAEs of notebooks
04-06: the reparameterization z = mu + sigma * eps. ``LOG_2PI`` is the one copy of ln(2 pi).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vaelab.references import answers
from vaelab.validation import as_array, require_generator, require_positive_int

LOG_2PI = math.log(2.0 * math.pi)
ArrayOrTensor = np.ndarray | torch.Tensor


def cholesky(cov: np.ndarray | torch.Tensor, name: str = "cov") -> np.ndarray | torch.Tensor:
    """Lower Cholesky factor L (cov = L L^T) of symmetric positive-definite matrices (..., d, d).

    The one Cholesky of the package: NumPy in gives NumPy out (float64), a tensor gives a
    tensor. ``ValueError`` names what is wrong (not square, not symmetric, a variance <= 0,
    not positive definite) instead of LinAlgError's "Matrix is not positive definite".
    """
    is_tensor = isinstance(cov, torch.Tensor)
    c = cov if is_tensor else torch.as_tensor(as_array(cov, name))
    if c.ndim < 2 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {tuple(c.shape)}")
    # torch reads only the lower triangle: a non-symmetric matrix gave a factor of another one.
    if not torch.allclose(c, c.mT, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric (a covariance matrix), it is not; "
                         "symmetrize it with (c + c.T) / 2 if it differs by rounding only")
    variances = torch.diagonal(c, dim1=-2, dim2=-1)
    if bool((variances <= 0).any()):
        raise ValueError(f"{name} has a non-positive variance on its diagonal "
                         f"({variances[variances <= 0].flatten()[0].item():g}); "
                         "variances must be > 0")
    chol, info = torch.linalg.cholesky_ex(c)
    if bool((info != 0).any()):
        raise ValueError(f"{name} is not positive definite; a covariance needs positive "
                         "variances and correlations strictly inside (-1, 1)")
    return chol if is_tensor else chol.numpy()


class Gaussian:
    """N(mean, cov) in d dimensions. mean: (d,), cov: (d, d) symmetric positive definite."""

    def __init__(self, mean: Sequence[float] | np.ndarray,
                 cov: Sequence[Sequence[float]] | np.ndarray) -> None:
        self.mean = as_array(mean, "mean", ndim=1)
        if self.mean.size == 0:
            raise ValueError("mean is empty: a Gaussian needs at least one dimension")
        self.cov = as_array(cov, "cov", ndim=2)
        if self.cov.shape != (self.dim, self.dim):
            raise ValueError(
                f"cov must have shape ({self.dim}, {self.dim}) to match mean, "
                f"got {self.cov.shape}"
            )
        self.chol = cholesky(self.cov)

    @classmethod
    def diagonal(cls, mean: Sequence[float] | np.ndarray | float,
                 std: Sequence[float] | np.ndarray | float) -> Gaussian:
        """N(mean, diag(std^2)); scalars give a one-dimensional Gaussian."""
        m = np.atleast_1d(as_array(mean, "mean"))
        s = np.atleast_1d(as_array(std, "std"))
        if m.ndim != 1 or s.shape != m.shape:
            raise ValueError(f"mean and std must both be (d,), got {m.shape} and {s.shape}")
        if np.any(s <= 0):
            raise ValueError(f"std must be > 0, got {s[s <= 0][0]:g}")
        with np.errstate(over="ignore", under="ignore"):
            var = s**2
        bad = (var == 0) | ~np.isfinite(var)
        if np.any(bad):
            raise ValueError(f"std = {s[bad][0]:g} has a variance float64 cannot hold "
                             "(it rounds to 0 or infinity); use a std between 1e-150 and 1e150")
        return cls(m, np.diag(var))

    @property
    def dim(self) -> int:
        """The dimension d."""
        return int(self.mean.shape[0])

    @property
    def std(self) -> np.ndarray:
        """Marginal standard deviations, shape (d,)."""
        return np.sqrt(np.diag(self.cov))

    def _points(self, z: np.ndarray | Sequence[float]) -> np.ndarray:
        pts = as_array(z, "z")
        if pts.ndim == 0 or pts.shape[-1] != self.dim:
            raise ValueError(f"z must have shape (..., {self.dim}), got {pts.shape}")
        return pts

    @answers("1.1", "3.2")
    def log_prob(self, z: np.ndarray | Sequence[float]) -> np.ndarray:
        """ln N(z; mean, cov). z: (..., d) -> (...)."""
        pts = self._points(z)
        diff = (pts - self.mean).reshape(-1, self.dim).T  # (d, n)
        white = np.linalg.solve(self.chol, diff)  # L^{-1} (z - m): a standard normal draw
        half_logdet = np.log(np.diag(self.chol)).sum()
        out = -0.5 * self.dim * LOG_2PI - half_logdet - 0.5 * (white**2).sum(axis=0)
        return out.reshape(pts.shape[:-1])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws z = mean + L eps, eps ~ N(0, I): shape (n, d)."""
        n = require_positive_int(n, "n")
        eps = require_generator(rng).standard_normal((n, self.dim))
        return self.mean + eps @ self.chol.T

    def entropy(self) -> float:
        """H[q] = -E_q[ln q(z)] = d/2 ln(2 pi e) + 1/2 ln det cov, in nats."""
        return float(0.5 * self.dim * (LOG_2PI + 1.0) + np.log(np.diag(self.chol)).sum())


class Categorical:
    """A distribution over {0, ..., K-1}. probs: (K,), non-negative, summing to 1."""

    def __init__(self, probs: Sequence[float] | np.ndarray) -> None:
        p = as_array(probs, "probs", ndim=1)
        if p.size == 0:
            raise ValueError("probs is empty: pass at least one category")
        if np.any(p < 0):
            raise ValueError(f"probs must be >= 0, got {p[p < 0][0]:g}")
        if abs(p.sum() - 1.0) > 1e-9:
            raise ValueError(f"probs must sum to 1, they sum to {p.sum():.12g}")
        self.probs = p / p.sum()

    @property
    def size(self) -> int:
        """The number of categories K."""
        return int(self.probs.shape[0])

    def _labels(self, z: np.ndarray | Sequence[int] | int) -> np.ndarray:
        labels = np.asarray(z)
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"z must hold integer categories, got dtype {labels.dtype}")
        if np.any((labels < 0) | (labels >= self.size)):
            raise ValueError(f"z must be in 0..{self.size - 1}")
        return labels

    def log_prob(self, z: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """ln q(z) for integer categories z (any shape); -inf where q(z) = 0."""
        with np.errstate(divide="ignore"):
            return np.log(self.probs)[self._labels(z)]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws, shape (n,), integers in 0..K-1."""
        n = require_positive_int(n, "n")
        return require_generator(rng).choice(self.size, size=n, p=self.probs)

    def expect(self, values: np.ndarray) -> float:
        """E_q[f(z)] = sum_k q_k f(k) for values f(0..K-1) of shape (K,); 0 * (-inf) counts 0."""
        f = as_array(values, "values", finite=False)
        if f.shape != (self.size,):
            raise ValueError(f"values must have shape ({self.size},), got {f.shape}")
        if np.any(np.isnan(f)):  # -inf is allowed: 0 * ln 0 counts 0
            raise ValueError("values contain NaN; E_q[f] would be NaN")
        keep = self.probs > 0
        return float((self.probs[keep] * f[keep]).sum())

    def entropy(self) -> float:
        """H[q] = -sum_k q_k ln q_k, in nats."""
        return -self.expect(self.log_prob(np.arange(self.size)))


@answers("3.2", "4.1")
def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2), eps ~ N(0, I): shapes (..., d).

    The noise is outside the network, so gradients flow to mu and logvar.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must match")
    if eps is None:
        eps = torch.randn_like(mu)
    elif eps.shape != mu.shape:
        raise ValueError(f"eps {tuple(eps.shape)} must have the shape of mu {tuple(mu.shape)}")
    return mu + torch.exp(0.5 * logvar) * eps


@answers("1.1", "3.2")
def gaussian_log_density(x: ArrayOrTensor, mean: ArrayOrTensor | float,
                         logvar: ArrayOrTensor | float) -> ArrayOrTensor:
    """ln N(x; mean, sigma^2) with sigma^2 = exp(logvar), elementwise: the one Gaussian density.

        ln N(x; m, s^2) = -1/2 (ln(2 pi) + ln s^2 + (x - m)^2 / s^2)

    NumPy arrays or torch tensors, any shapes that broadcast; sum over the last axis for a
    diagonal Gaussian in several dimensions (a standard normal is mean = 0, logvar = 0).
    """
    exp = torch.exp if isinstance(logvar, torch.Tensor) else np.exp
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * exp(-logvar))


def bernoulli_log_density(x: ArrayOrTensor, logits: ArrayOrTensor) -> ArrayOrTensor:
    """ln Bernoulli(x; p) with p = sigmoid(logits), elementwise, for x in {0, 1} (or in [0, 1]).

        ln p^x (1 - p)^(1 - x) = x * logits - ln(1 + e^logits)

    NumPy or torch; in torch it is minus PyTorch's binary cross-entropy with logits (the same
    formula in a form that never overflows).
    """
    if isinstance(logits, torch.Tensor):
        x, logits = torch.broadcast_tensors(torch.as_tensor(x, dtype=logits.dtype), logits)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return x * logits - np.logaddexp(0.0, logits)
