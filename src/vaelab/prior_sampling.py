"""Why a VAE needs q(z|x): ln p(x) estimated with z drawn from the prior, against z from q.

ln p(x) = ln E_{z ~ p(z)}[p(x|z)] can be estimated by averaging p(x|z) over prior draws (the
importance weights are then w = p(x|z)), or by importance sampling from the encoder's q(z|x)
(w = p(x|z) p(z) / q(z|x)). Both are consistent; they differ in how many draws land where
p(x|z) is large. The numbers behind notebook 04's section "Why not sample z from the prior?":

- ``sample_log_weights``: ln w (N, k) for the prior and for q, from ``vaelab.evaluation``;
- ``log_likelihood_estimates``: the estimate from the first k weights, with its standard error;
- ``estimate_curve``: those estimates' means for several k, one row per image;
- ``effective_sample_size``: (sum w)^2 / sum w^2, how many draws the estimate really rests on;
- ``group_spread``: the spread of independent estimates from disjoint groups of k draws;
- ``prior_mass_of_typical_set``: the prior probability of the region holding most of q's mass.

Importance sampling needs about exp(KL(target || proposal)) draws (Chatterjee and Diaconis
2018): here the target is the posterior p(z|x), which q approximates, so KL(q || p(z)),
the ELBO's KL term, says how many prior draws one image needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import chi2
from torch import nn

from vaelab.distributions import gaussian_log_density, reparameterize
from vaelab.elbo import Estimate, log_mean_exp, log_mean_exp_estimate
from vaelab.evaluation import log_importance_weights
from vaelab.validation import require_finite, require_int, require_positive_int


def sample_log_weights(model: nn.Module, x: torch.Tensor, k: int,
                       sampler: str, seed: int = 0) -> torch.Tensor:
    """ln w (N, k) for images x (N, D): sampler "prior" draws z ~ N(0, I), "q" z ~ q(z|x).

    With the prior as proposal ln p(z) - ln q(z) cancels, so ln w = ln p(x|z). Memory is
    bounded by ``vaelab.evaluation``'s ``max_rows`` whatever k is (plus the (N, k) result).
    """
    if sampler not in ("prior", "q"):
        raise ValueError(f"sampler must be 'prior' or 'q', got {sampler!r}")
    proposal = None
    if sampler == "prior":
        zeros = torch.zeros(x.shape[0], model.latent_dim)
        proposal = (zeros, zeros)
    return log_importance_weights(model, x, k, seed=seed, proposal=proposal)


def _check_log_w(log_w: torch.Tensor) -> torch.Tensor:
    if not isinstance(log_w, torch.Tensor) or log_w.ndim != 2 or log_w.shape[1] < 2:
        raise ValueError("log_w must be a tensor (N, k) of log-weights with k >= 2")
    return log_w.double()


def log_likelihood_estimates(log_w: torch.Tensor, k: int) -> list[Estimate]:
    """Per image, ln of the mean of its first k weights, with the delta-method standard error.

    log_w: (N, K), k <= K. The standard error std(w) / (sqrt(k) mean(w)) is computed from the
    same k weights, so when one weight dominates (effective sample size near 1) it is itself
    unreliable: it cannot see the large weights no draw has hit yet.
    """
    log_w = _check_log_w(log_w)
    k = require_positive_int(k, "k")
    if not 2 <= k <= log_w.shape[1]:
        raise ValueError(f"k must be between 2 and {log_w.shape[1]}, got {k}")
    return [log_mean_exp_estimate(row[:k].numpy()) for row in log_w]


def estimate_curve(log_w: torch.Tensor, ks: Sequence[int]) -> np.ndarray:
    """Each image's estimate ln mean(w) from its first k weights, for each k: (N, len(ks))."""
    return np.stack([estimate_table(log_likelihood_estimates(log_w, k))[0] for k in ks], axis=1)


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """Kish's effective sample size (sum w)^2 / sum w^2 of each row of log_w (N, k): (N,).

    k when all weights are equal, 1 when one weight carries the whole sum.
    """
    log_w = _check_log_w(log_w)
    return torch.exp(2 * torch.logsumexp(log_w, dim=1) - torch.logsumexp(2 * log_w, dim=1))


def group_spread(log_w: torch.Tensor, k: int) -> torch.Tensor:
    """Standard deviation (N,) of the estimates ln mean(w) from disjoint groups of k weights.

    log_w: (N, K) with K >= 2k; the groups are consecutive blocks of k. Unlike the delta-method
    error, this is the spread of repeated, independent estimates, as a rerun would see it.
    """
    log_w = _check_log_w(log_w)
    k = require_positive_int(k, "k")
    groups = log_w.shape[1] // k
    if groups < 2:
        raise ValueError(f"need at least 2 groups of k = {k} weights, got {log_w.shape[1]}")
    blocks = log_w[:, : groups * k].reshape(log_w.shape[0], groups, k)
    estimates = log_mean_exp(blocks, axis=2)  # (N, groups)
    return estimates.std(dim=1)


def prior_mass_of_typical_set(mu: torch.Tensor, logvar: torch.Tensor, coverage: float = 0.99,
                              samples: int = 10_000, seed: int = 0) -> list[Estimate]:
    """ln P_{z ~ N(0, I)}(A) per row of q = N(mu, diag(exp(logvar))), mu and logvar (N, d).

    A is q's ellipsoid holding ``coverage`` of its mass, {z: sum_j (z_j - mu_j)^2 / sigma_j^2
    <= chi2_d quantile}. Far too small to hit with prior draws, so it is estimated by importance
    sampling from q itself: P(A) = E_q[1_A(z) p(z) / q(z)] (ln of a mean, delta-method error).
    """
    if mu.ndim != 2 or mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must both be (N, d), got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    if not 0.0 < require_finite(coverage, "coverage") < 1.0:
        raise ValueError(f"coverage must lie in (0, 1), got {coverage}")
    samples = require_positive_int(samples, "samples")
    mu, logvar = mu.detach().double().cpu(), logvar.detach().double().cpu()
    gen = torch.Generator().manual_seed(require_int(seed, "seed", 0))
    eps = torch.randn((samples, *mu.shape), generator=gen, dtype=torch.float64)  # (S, N, d)
    z = reparameterize(mu.expand_as(eps), logvar.expand_as(eps), eps)
    inside = eps.pow(2).sum(dim=2) <= chi2.ppf(coverage, mu.shape[1])  # (S, N)
    zero = torch.zeros((), dtype=torch.float64)
    log_ratio = (gaussian_log_density(z, zero, zero).sum(-1)
                 - gaussian_log_density(z, mu, logvar).sum(-1))  # ln p(z) - ln q(z), (S, N)
    log_ratio = torch.where(inside, log_ratio, torch.tensor(-math.inf, dtype=torch.float64))
    return [log_mean_exp_estimate(col.numpy()) for col in log_ratio.T]


def estimate_table(estimates: Sequence[Estimate]) -> tuple[np.ndarray, np.ndarray]:
    """(means, standard errors), each (N,), of a list of per-image Estimates."""
    return (np.array([e.mean for e in estimates]), np.array([e.std_error for e in estimates]))
