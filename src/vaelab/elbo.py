"""The evidence lower bound (ELBO): exact terms, Monte Carlo estimators, the IW bound, SGA on q.

ELBO(q) = E_q[ln p(x|z)] - KL(q(z|x) || p(z)) = ln p(x) - KL(q(z|x) || p(z|x)) <= ln p(x).

Works with any model of ``vaelab.latent_models`` and its q (``vaelab.distributions``).
Monte Carlo results are ``Estimate``s: a mean and its standard error (std / sqrt(n)),
so a check can say "within 4 standard errors". Everything is float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.special import logsumexp

from vaelab import schedules
from vaelab.distributions import Gaussian, gaussian_log_density, reparameterize
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.references import answers
from vaelab.validation import (
    InputTypeError,
    as_array,
    require_finite,
    require_generator,
    require_int,
    require_positive,
    require_positive_int,
)


class Estimate(NamedTuple):
    """A Monte Carlo estimate: mean, its standard error, and the number of samples n."""

    mean: float
    std_error: float
    n: int

    def within(self, value: float, n_se: float = 4.0, atol: float = 1e-10) -> bool:
        """True if ``value`` lies within n_se standard errors (plus atol) of the mean."""
        return abs(self.mean - value) <= n_se * self.std_error + atol


def format_estimate(est: Estimate) -> str:
    """'-3.142 ± 0.012': the mean at the precision its standard error holds (2 significant digits).

    A standard error below 1e-12 (every sample the same number) prints as 'value (exact)'.
    """
    if not isinstance(est, Estimate):
        raise InputTypeError(f"est must be an Estimate (as mc_estimate returns), got {est!r}")
    if not (np.isfinite(est.mean) and np.isfinite(est.std_error) and est.std_error >= 0):
        raise ValueError(f"est must have a finite mean and a finite standard error >= 0, got "
                         f"{est}")
    if est.std_error < 1e-12:
        return f"{est.mean:.6f} (exact)"
    decimals = max(0, 1 - int(np.floor(np.log10(est.std_error))))
    return f"{est.mean:.{decimals}f} ± {est.std_error:.{decimals}f}"


def _samples(values: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    """``values`` as a flat float64 array, refusing what is not real numbers."""
    return as_array(values, name, finite=False).ravel()


def mc_estimate(values: np.ndarray | Sequence[float]) -> Estimate:
    """Mean of i.i.d. samples and its standard error std(ddof=1) / sqrt(n). values: (n,), n >= 2."""
    v = _samples(values, "values")
    if v.size < 2:
        raise ValueError(f"need at least 2 samples for a standard error, got {v.size}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain a non-finite number (a log-density of -inf?)")
    return Estimate(float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)), int(v.size))


def log_mean_exp(log_w: np.ndarray | torch.Tensor, axis: int = -1) -> np.ndarray | torch.Tensor:
    """ln mean(exp(log_w)) along ``axis``, without overflow: the one log-mean-exp.

    A weight of 0 (log-weight -inf) is allowed; NaN, +inf and an empty axis are refused.
    A torch tensor gives a tensor (``torch.logsumexp``), anything else a float64 array.
    """
    if isinstance(log_w, torch.Tensor):
        if log_w.ndim == 0 or log_w.shape[axis] == 0:
            raise ValueError(f"log_w needs at least one value along axis {axis}, got shape "
                             f"{tuple(log_w.shape)}")
        return torch.logsumexp(log_w, dim=axis) - math.log(log_w.shape[axis])
    a = as_array(log_w, "log_w", finite=False)
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis {axis} is out of range for log_w of shape {a.shape}")
    if a.shape[axis] == 0:
        raise ValueError(f"log_w needs at least one value along axis {axis}, got shape {a.shape}")
    if np.any(np.isnan(a) | (a == np.inf)):
        raise ValueError("log_w contains NaN or +inf; a log-weight must be a number or -inf")
    return logsumexp(a, axis=axis) - np.log(a.shape[axis])


def log_mean_exp_estimate(log_w: np.ndarray | Sequence[float]) -> Estimate:
    """ln of the Monte Carlo mean of w = exp(log_w), with the delta-method standard error.

    SE(ln w_bar) ~ SE(w_bar) / w_bar. log_w: (n,). (ln of a mean is biased low by about
    SE^2 / 2, far below the standard error itself once SE is small.)
    """
    a = _samples(log_w, "log_w")
    if a.size < 2:
        raise ValueError(f"need at least 2 samples, got {a.size}")
    if np.any(np.isnan(a) | (a == np.inf)) or np.all(a == -np.inf):
        raise ValueError("log_w must hold numbers or -inf (not NaN or +inf), with at least one "
                         "finite value; every weight zero has no standard error")
    w = np.exp(a - a.max())  # rescaled weights: the ratio SE / mean does not change
    return Estimate(float(log_mean_exp(a)), float(w.std(ddof=1) / np.sqrt(a.size) / w.mean()),
                    int(a.size))


class ElboTerms(NamedTuple):
    """Every term of ln p(x) = ELBO + KL(q || p(z|x)), computed exactly for one x and q."""

    log_marginal: float  # ln p(x)
    expected_log_likelihood: float  # E_q[ln p(x|z)]
    expected_log_prior: float  # E_q[ln p(z)]
    entropy: float  # H[q] = -E_q[ln q(z|x)]
    kl_prior: float  # KL(q(z|x) || p(z))
    kl_posterior: float  # KL(q(z|x) || p(z|x))

    @property
    def elbo(self) -> float:
        """E_q[ln p(x|z)] - KL(q || p(z))."""
        return self.expected_log_likelihood - self.kl_prior

    @property
    def gap(self) -> float:
        """ln p(x) - ELBO (equals kl_posterior)."""
        return self.log_marginal - self.elbo


_MODEL_METHODS = ("log_marginal", "log_likelihood", "log_prior", "log_joint", "log_posterior",
                  "expected_log_likelihood", "expected_log_prior", "kl_to_prior",
                  "kl_to_posterior", "sample_prior")


def _check_model(model: Any) -> None:
    """``TypeError`` naming what is missing when ``model`` is not a latent model."""
    missing = [m for m in _MODEL_METHODS if not callable(getattr(model, m, None))]
    if missing:
        raise InputTypeError(f"model must be a latent model of vaelab.latent_models (such as "
                             f"LinearGaussianModel), got {type(model).__name__}, which lacks "
                             f"{', '.join(missing)}")


def elbo_terms(model: Any, x: Any, q: Any) -> ElboTerms:
    """The exact terms (closed form, finite sum or quadrature, whichever the model has)."""
    _check_model(model)
    return ElboTerms(
        log_marginal=model.log_marginal(x),
        expected_log_likelihood=model.expected_log_likelihood(x, q),
        expected_log_prior=model.expected_log_prior(q),
        entropy=q.entropy(),
        kl_prior=model.kl_to_prior(q),
        kl_posterior=model.kl_to_posterior(x, q),
    )


class SampleTerms(NamedTuple):
    """Per-sample log-densities at z_s ~ q(z|x), s = 1..n: each array has shape (n,)."""

    z: np.ndarray
    log_q: np.ndarray  # ln q(z_s|x)
    log_likelihood: np.ndarray  # ln p(x|z_s)
    log_prior: np.ndarray  # ln p(z_s)
    log_posterior: np.ndarray  # ln p(z_s|x)

    @property
    def log_weights(self) -> np.ndarray:
        """ln p(x, z_s) - ln q(z_s|x): the importance log-weights, whose mean is the ELBO."""
        return self.log_likelihood + self.log_prior - self.log_q


def sample_terms(model: Any, x: Any, q: Any, n: int, rng: np.random.Generator) -> SampleTerms:
    """Draw n samples z ~ q and evaluate every log-density of the derivations at them."""
    _check_model(model)
    n = require_positive_int(n, "n")
    z = q.sample(n, require_generator(rng))
    return SampleTerms(
        z=z,
        log_q=np.asarray(q.log_prob(z), dtype=np.float64),
        log_likelihood=np.asarray(model.log_likelihood(x, z), dtype=np.float64),
        log_prior=np.asarray(model.log_prior(z), dtype=np.float64),
        log_posterior=np.asarray(model.log_posterior(x, z), dtype=np.float64),
    )


def iw_log_weights(model: Any, x: Any, q: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """n importance log-weights ln p(x, z_s) - ln q(z_s|x), z_s ~ q: shape (n,)."""
    _check_model(model)
    n = require_positive_int(n, "n")
    z = q.sample(n, require_generator(rng))
    return np.asarray(model.log_joint(x, z), dtype=np.float64) - q.log_prob(z)


def iw_bounds_from_weights(log_weights: np.ndarray, ks: Sequence[int]) -> list[Estimate]:
    """L_k for every k in ks, all from one pool of log-weights of shape (n_blocks, K).

    Each row is cut into K / k blocks of k consecutive weights (so every k must divide K)
    and L_k is the mean of ln mean(block) over all blocks. When each k divides the next,
    every k-block is a union of smaller blocks, so Jensen's inequality (ln of a mean >=
    mean of the lns) makes the estimates increase with k exactly as the bounds do.
    """
    pool = as_array(log_weights, "log_weights", finite=False)
    if pool.ndim != 2 or pool.size == 0:
        raise ValueError(f"log_weights must be (n_blocks, K) with n_blocks, K >= 1, got shape "
                         f"{pool.shape}")
    if isinstance(ks, str) or not isinstance(ks, Sequence | np.ndarray):
        raise InputTypeError(f"ks must be a sequence of integers such as [1, 10, 100], got {ks!r}")
    width = pool.shape[1]
    out = []
    for k in ks:
        k = require_positive_int(k, "k")
        if width % k:
            raise ValueError(f"every k must divide the pool width {width}, got k = {k}")
        if pool.size // k < 2:
            raise ValueError(f"k = {k} leaves {pool.size // k} block of the {pool.shape} pool; "
                             "a standard error needs at least 2: draw more log-weights")
        blocks = log_mean_exp(pool.reshape(-1, k), axis=1)
        out.append(mc_estimate(blocks))
    return out


# ----------------------------------------------------------------------------- torch: SGA


@answers("3.2")
def reparameterized_elbo(
    log_likelihood: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    logvar: torch.Tensor,
    eps: torch.Tensor,
    analytic_kl: bool = True,
) -> torch.Tensor:
    """Single-sample ELBO estimates at z = mu + exp(logvar / 2) * eps (the reparameterization).

    log_likelihood: z (..., d) -> ln p(x|z) (...), for the x at hand. mu, logvar: (d,);
    eps: (d,) for one sample or (n, d) for n of them (each row one estimate).
    analytic_kl=True: ln p(x|z) - KL(q || N(0, I)) (the VAE's form, lower variance);
    False: ln p(x|z) + ln p(z) - ln q(z|x) (the plain Monte Carlo estimator).
    Both have the ELBO as their mean, and gradients flow to mu and logvar.
    """
    for name, t in (("mu", mu), ("logvar", logvar), ("eps", eps)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise InputTypeError(f"{name} must be a floating-point torch tensor, got {got}")
    if mu.ndim != 1 or mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must both be (d,), got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    if eps.shape[-1:] != mu.shape or eps.ndim > 2 or eps.numel() == 0:
        raise ValueError(f"eps must be (d,) or (n, d) with d = {mu.shape[0]} and n >= 1, "
                         f"got {tuple(eps.shape)}")
    z = reparameterize(mu.expand_as(eps), logvar.expand_as(eps), eps)
    ll = log_likelihood(z)
    # One value per z: a log_likelihood that sums over the samples (or keeps a trailing
    # axis) would broadcast into a wrong estimate without a word.
    if not isinstance(ll, torch.Tensor) or ll.shape != z.shape[:-1]:
        got = tuple(ll.shape) if isinstance(ll, torch.Tensor) else type(ll).__name__
        raise ValueError(f"log_likelihood must map z of shape {tuple(z.shape)} to a tensor of "
                         f"shape {tuple(z.shape[:-1])} (one value per z), got {got}")
    if analytic_kl:
        return ll - gaussian_kl_standard_normal(mu, logvar)
    log_prior = gaussian_log_density(z, 0.0, 0.0).sum(-1)
    # ln q(z|x) at z = mu + sigma eps: ln N(eps; 0, 1) - ln sigma per dimension (exact, no z - mu)
    log_q = (gaussian_log_density(eps, 0.0, 0.0) - 0.5 * logvar).sum(-1)
    return ll + log_prior - log_q


class GaussianFit(NamedTuple):
    """Result of ``fit_gaussian_q``: q = N(mean, diag(exp(log_std))^2) and the ELBO estimates."""

    mean: np.ndarray  # (d,)
    log_std: np.ndarray  # (d,)
    elbo_trace: np.ndarray  # (steps,): the minibatch ELBO estimate at each step


def fit_gaussian_q(
    log_likelihood: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    *,
    steps: int = 2000,
    lr: float = 0.05,
    n_samples: int = 16,
    seed: int = 0,
    init_mean: Sequence[float] | None = None,
    init_log_std: Sequence[float] | None = None,
) -> GaussianFit:
    """Stochastic gradient ascent on the ELBO of a diagonal Gaussian q, with Adam.

    Each step draws eps ~ N(0, I) (n_samples, dim), sets z = mu + sigma * eps and follows
    the gradient of the mean reparameterized estimate (analytic KL). The learning rate
    decays linearly to 0 so the noisy iterates settle. log_likelihood: z (n, d) -> (n,),
    float64 torch. A private torch.Generator seeded with ``seed`` makes runs repeatable.
    """
    dim = require_positive_int(dim, "dim")
    steps = require_positive_int(steps, "steps")
    n_samples = require_positive_int(n_samples, "n_samples")
    lr = require_positive(lr, "lr")
    seed = require_int(seed, "seed", 0)
    mean0 = np.zeros(dim) if init_mean is None else as_array(init_mean, "init_mean")
    log_std0 = (np.zeros(dim) if init_log_std is None
                else as_array(init_log_std, "init_log_std"))
    if mean0.shape != (dim,) or log_std0.shape != (dim,):
        raise ValueError(f"init_mean and init_log_std must have shape ({dim},)")
    mu = torch.tensor(mean0, dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor(log_std0, dtype=torch.float64, requires_grad=True)
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam([mu, log_std], lr=lr)
    lr_at = schedules.linear(lr, 0.0, steps)
    trace = np.empty(steps)
    for t in range(steps):
        eps = torch.randn(n_samples, dim, generator=gen, dtype=torch.float64)
        schedules.set_lr(opt, lr_at(t))
        elbo = reparameterized_elbo(log_likelihood, mu, 2.0 * log_std, eps).mean()
        opt.zero_grad()
        (-elbo).backward()  # ascent on the ELBO = descent on its negative
        opt.step()
        trace[t] = elbo.item()
        if not np.isfinite(trace[t]):
            raise ValueError(f"the ELBO estimate became {trace[t]} at step {t + 1} of {steps}: "
                             "log_likelihood returned NaN or infinity, or q moved too far; "
                             f"check log_likelihood or lower lr (lr={lr:g})")
    return GaussianFit(mu.detach().numpy().copy(), log_std.detach().numpy().copy(), trace)


class Decomposition(NamedTuple):
    """ln p(x) = ELBO + KL(q || p(z|x)) along a path of q's: arrays of shape (n,)."""

    elbo: np.ndarray
    kl_posterior: np.ndarray
    log_marginal: float


def decomposition_along_means(model: Any, x: Any, means: np.ndarray | Sequence[float],
                              log_std: float) -> Decomposition:
    """The exact ELBO and KL(q || p(z|x)) for 1-D q = N(m, e^(2 log_std)) at each m in means."""
    ms = np.atleast_1d(as_array(means, "means"))
    if ms.ndim != 1 or ms.size == 0:
        raise ValueError(f"means must be a non-empty 1-D array of numbers, got shape {ms.shape}")
    if getattr(model, "latent_dim", None) != 1:
        raise ValueError(f"decomposition_along_means moves a 1-D q: the model needs a 1-D "
                         f"latent, got {model!r}")
    log_std = require_finite(log_std, "log_std")
    with np.errstate(over="ignore", under="ignore"):
        std = float(np.exp(log_std))
    if not (0.0 < std**2 < np.inf):
        raise ValueError(f"log_std = {log_std:g} gives a std whose variance float64 cannot hold; "
                         "use a log_std between -300 and 300")
    _check_model(model)
    elbo, kl = np.empty(ms.size), np.empty(ms.size)
    for i, m in enumerate(ms):
        q = Gaussian.diagonal([m], [std])
        kl[i] = model.kl_to_posterior(x, q)
        elbo[i] = model.expected_log_likelihood(x, q) - model.kl_to_prior(q)
    return Decomposition(elbo, kl, float(model.log_marginal(x)))
