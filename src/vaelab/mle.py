"""Closed-form log-likelihoods and maximum-likelihood estimates: Gaussian and Poisson.

Notebook 01 fits x_i ~ N(mu, sigma^2) (IID) to three newborn weights, notebook 02
fits x_i ~ Poisson(lambda) (IID) to three car counts. Everything is in nats
(natural logarithms). Parameters may be arrays (grids for likelihood surfaces):
results then carry the parameters' broadcast shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import optimize, special, stats

from vaelab.distributions import gaussian_log_density
from vaelab.references import answers
from vaelab.validation import (
    as_array,
    as_counts,
    as_finite_array,
    require_finite,
    require_generator,
    require_positive,
    require_positive_int,
)

ArrayLike = Sequence[float] | np.ndarray | float


class GaussianParams(NamedTuple):
    """A Gaussian's parameters theta = {mu, sigma} (sigma is a standard deviation)."""

    mu: float
    sigma: float


class NatRegion(NamedTuple):
    """Extent of the parameter region whose log-likelihood is within ``nats`` of the maximum."""

    mu_low: float
    mu_high: float
    sigma_low: float
    sigma_high: float
    nats: float


# ----------------------------------------------------------------------------- validation


def _params(value: ArrayLike, name: str, positive: bool) -> np.ndarray:
    """A parameter (scalar or grid) as a float array, checked finite (and > 0)."""
    arr = as_array(value, name)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass at least one value")
    if positive and np.any(arr <= 0):
        raise ValueError(
            f"{name} must be > 0, got {arr[arr <= 0].flat[0]:g}; "
            f"a {name} of zero or below is not a valid parameter"
        )
    return arr


def _broadcast(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` naming both parameters if their shapes do not broadcast."""
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{name_a} and {name_b} must broadcast to one grid, got shapes "
                         f"{a.shape} and {b.shape}; use np.meshgrid for a surface") from None


def _scalar_or_array(arr: np.ndarray) -> float | np.ndarray:
    return float(arr) if arr.ndim == 0 else arr


# ----------------------------------------------------------------------------- Gaussian


@answers("1.1")
def gaussian_log_pdf(x: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> np.ndarray:
    """ln N(x_i | mu, sigma) for each observation.

    x: shape (n,). mu, sigma: scalars or arrays broadcastable to a shape P.
    Returns shape (*P, n): one log-density per parameter setting and observation.
    """
    data = as_finite_array(x, "x")
    m = _params(mu, "mu", positive=False)
    s = _params(sigma, "sigma", positive=True)
    _broadcast(m, s, "mu", "sigma")
    return gaussian_log_density(data, m[..., None], 2.0 * np.log(s[..., None]))


@answers("1.1")
def gaussian_log_likelihood(
    x: ArrayLike, mu: ArrayLike, sigma: ArrayLike
) -> float | np.ndarray:
    """ln p(x | mu, sigma) = sum_i ln N(x_i | mu, sigma) for IID data.

    x: shape (n,). mu, sigma: scalars (returns a float) or arrays broadcastable to
    a shape P (returns shape P, e.g. a surface over a parameter grid).
    """
    return _scalar_or_array(gaussian_log_pdf(x, mu, sigma).sum(axis=-1))


@answers("1.2", until_answered=True)
def gaussian_mle(x: ArrayLike) -> GaussianParams:
    """The maximum-likelihood (mu, sigma): the mean and the *biased* std (divide by n).

    x: shape (n,). Dividing by n - 1 instead gives the unbiased variance's square
    root, which is not the maximum of the likelihood.
    """
    data = as_finite_array(x, "x")
    mu = float(data.mean())
    sigma = float(np.sqrt(np.mean((data - mu) ** 2)))
    if sigma == 0.0:
        raise ValueError(
            "x has no spread (all values equal): the Gaussian likelihood has no maximum "
            "(it grows without bound as sigma -> 0); pass at least two distinct values"
        )
    return GaussianParams(mu, sigma)


def gaussian_log_likelihood_grad(
    x: ArrayLike, mu: float, sigma: float
) -> tuple[float, float]:
    """Gradient of the log-likelihood with respect to (mu, ln sigma).

    d/dmu = sum_i (x_i - mu) / sigma^2;  d/d(ln sigma) = sum_i (x_i - mu)^2 / sigma^2 - n.
    """
    data = as_finite_array(x, "x")
    m = require_finite(mu, "mu")
    s = require_positive(sigma, "sigma")
    r = data - m
    return float(r.sum() / s**2), float(np.sum(r * r) / s**2 - data.size)


@answers("1.2", until_answered=True)
def gaussian_gradient_ascent(
    x: ArrayLike,
    start: tuple[float, float] = (3100.0, 1500.0),
    learning_rate: float = 0.1,
    max_steps: int = 1000,
    tol: float = 1e-10,
) -> np.ndarray:
    """Climb the log-likelihood from ``start`` = (mu, sigma); return the path.

    Works on (mu, ln sigma): ln sigma keeps sigma > 0 and turns the steep wall near
    sigma = 0 into a gentle slope. Each gradient component is scaled by the inverse
    Fisher information (sigma^2 / n for mu, 1 / (2n) for ln sigma), so one learning
    rate suits both, whatever the units of x (grams here).
    Stops when a step moves less than ``tol`` (relative to sigma) or after ``max_steps``.

    Returns shape (k + 1, 2): (mu, sigma) at the start and after each of k steps;
    the last row is the estimate.
    """
    data = as_finite_array(x, "x")
    gaussian_mle(data)  # no maximum to climb to when x has no spread: say so now
    if isinstance(start, str) or not (isinstance(start, Sequence | np.ndarray)
                                      and len(start) == 2):
        raise ValueError(f"start must be a pair (mu, sigma), got {start!r}")
    mu = require_finite(start[0], "start mu")
    log_sigma = float(np.log(require_positive(start[1], "start sigma")))
    lr = require_positive(learning_rate, "learning_rate")
    steps = require_positive_int(max_steps, "max_steps")
    tol = require_finite(tol, "tol")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    n = data.size
    path = [(mu, float(np.exp(log_sigma)))]
    for step in range(steps):
        sigma = np.exp(log_sigma)
        g_mu, g_log_sigma = gaussian_log_likelihood_grad(data, mu, sigma)
        d_mu = lr * g_mu * sigma**2 / n
        d_log_sigma = lr * g_log_sigma / (2 * n)
        mu += d_mu
        log_sigma += d_log_sigma
        # Steps of the preconditioned ascent overshoot for learning rates above about 1.
        if not (np.isfinite(mu) and abs(log_sigma) < 300.0):  # sigma**2 stays a float
            raise ValueError(f"gradient ascent diverged at step {step + 1} (mu = {mu:.3g}, "
                             f"ln sigma = {log_sigma:.3g}) with learning_rate = {lr:g}; use a "
                             "smaller learning_rate (0.1 to 1 converges)")
        path.append((mu, float(np.exp(log_sigma))))
        if abs(d_mu) / sigma < tol and abs(d_log_sigma) < tol:
            break
    return np.array(path)


@answers("1.2", until_answered=True)
def gaussian_within_nats(x: ArrayLike, nats: float = 1.0) -> NatRegion:
    """Extent in mu and in sigma of {theta : ln p(x|theta) >= max - nats}.

    Measured on the profile likelihoods (the best sigma for each mu, the best mu for
    each sigma), so it is exact, not limited to a plotting window.
    """
    data = as_finite_array(x, "x")
    drop = require_positive(nats, "nats")
    mle = gaussian_mle(data)
    n = data.size
    # Profile over sigma: l(mu) = const - n/2 ln(s^2 + (mu - m)^2): closed form.
    with np.errstate(over="ignore"):  # an infinite width is reported below
        half_width = mle.sigma * np.sqrt(np.expm1(2.0 * drop / n))

    # Profile over mu (mu = mean): drop(r) = n ln r + n/2 (1/r^2 - 1), r = sigma / s.
    def excess(r: float) -> float:
        return n * np.log(r) + 0.5 * n * (1.0 / r**2 - 1.0) - drop

    if not np.isfinite(half_width):
        raise ValueError(f"nats = {drop:g} is too large for {n} observations: the region is "
                         "wider than floating point can hold; use a smaller nats")
    # Brackets [1e-6, 1] and [1, 1e6] hold the roots unless nats is large for n: widen then.
    low_bracket, high_bracket = 1e-6, 1e6
    while excess(low_bracket) < 0 and low_bracket > 1e-300:
        low_bracket *= 1e-6
    while excess(high_bracket) < 0 and high_bracket < 1e300:
        high_bracket *= 1e6
    if excess(low_bracket) < 0 or excess(high_bracket) < 0:
        raise ValueError(f"nats = {drop:g} is too large for {n} observations: the region is "
                         "wider than floating point can hold; use a smaller nats")
    r_low = optimize.brentq(excess, low_bracket, 1.0, xtol=1e-14)
    r_high = optimize.brentq(excess, 1.0, high_bracket, xtol=1e-12)
    return NatRegion(
        float(mle.mu - half_width),
        float(mle.mu + half_width),
        float(mle.sigma * r_low),
        float(mle.sigma * r_high),
        drop,
    )


def gaussian_probability_below(threshold: float, mu: float, sigma: float) -> float:
    """P(X < threshold) for X ~ N(mu, sigma): e.g. the chance of a negative weight."""
    t = require_finite(threshold, "threshold")
    m = require_finite(mu, "mu")
    s = require_positive(sigma, "sigma")
    return float(special.ndtr((t - m) / s))


def sample_gaussian(mu: float, sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n new draws x ~ N(mu, sigma) from ``rng``; shape (n,)."""
    m = require_finite(mu, "mu")
    s = require_positive(sigma, "sigma")
    size = require_positive_int(n, "n")
    return require_generator(rng).normal(m, s, size=size)


# ----------------------------------------------------------------------------- Poisson


@answers("2.4", until_answered=True)
def poisson_log_pmf(x: Sequence[int] | np.ndarray, lam: ArrayLike) -> np.ndarray:
    """ln Poisson(x_i | lambda) = x_i ln lambda - lambda - ln x_i! for each count.

    x: shape (n,), non-negative integers. lam: scalar or array of shape P (> 0).
    Returns shape (*P, n). ln x! is computed as gammaln(x + 1).
    """
    counts = as_counts(x, "x")
    rate = _params(lam, "lambda", positive=True)[..., None]
    return counts * np.log(rate) - rate - special.gammaln(counts + 1.0)


@answers("2.4", until_answered=True)
def poisson_log_likelihood(x: Sequence[int] | np.ndarray, lam: ArrayLike) -> float | np.ndarray:
    """ln p(x | lambda) = sum_i ln Poisson(x_i | lambda); float, or shape P for a grid."""
    return _scalar_or_array(poisson_log_pmf(x, lam).sum(axis=-1))


@answers("2.3", until_answered=True)
def poisson_mle(x: Sequence[int] | np.ndarray) -> float:
    """The maximum-likelihood lambda: the mean count (d/dlambda [sum x ln l - n l] = 0)."""
    counts = as_counts(x, "x")
    if counts.sum() == 0:
        raise ValueError(
            "x is all zeros: the likelihood grows as lambda -> 0 and has no maximum with "
            "lambda > 0; a Poisson fit needs at least one non-zero count"
        )
    return float(counts.mean())


@answers("2.1")
def sample_poisson(lam: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n new counts x ~ Poisson(lambda) from ``rng``; shape (n,), dtype int64."""
    rate = require_positive(lam, "lambda")
    size = require_positive_int(n, "n")
    return require_generator(rng).poisson(rate, size=size).astype(np.int64)


def poisson_lr_interval(
    x: Sequence[int] | np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """Likelihood-ratio interval for lambda: {lambda : 2 (l_max - l(lambda)) <= chi2_1(level)}.

    Returns (low, high), the two roots around the MLE (Wilks: 2 x the log-likelihood
    ratio is approximately chi-squared with 1 degree of freedom).
    """
    counts = as_counts(x, "x")
    conf = require_positive(level, "level")
    if conf >= 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    lam_hat = poisson_mle(counts)
    drop = 0.5 * float(stats.chi2.ppf(conf, df=1))
    l_max = poisson_log_likelihood(counts, lam_hat)

    def excess(lam: float) -> float:
        return l_max - poisson_log_likelihood(counts, lam) - drop

    low_bracket = lam_hat
    while excess(low_bracket) < 0:  # walk down until the log-likelihood has dropped enough
        low_bracket /= 2.0
    high_bracket = lam_hat
    while excess(high_bracket) < 0:
        high_bracket *= 2.0
    low = optimize.brentq(excess, low_bracket, lam_hat, xtol=1e-12)
    high = optimize.brentq(excess, lam_hat, high_bracket, xtol=1e-12)
    return float(low), float(high)


def poisson_lr_coverage(lam: float, n: int, level: float = 0.95) -> float:
    """Exact probability that the likelihood-ratio interval of n counts covers the true lam.

    The log-likelihood ratio depends on the counts only through their total S, which is
    Poisson(n * lam): the interval from S covers lam when
    2 [S ln(S / (n lam)) - S + n lam] <= chi2_1(level) (with 0 ln 0 = 0, so S = 0 is
    included). Summed over S up to where the remaining mass is below 1e-15.
    """
    rate = require_positive(lam, "lam")
    size = require_positive_int(n, "n")
    conf = require_positive(level, "level")
    if conf >= 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    mean = size * rate
    totals = np.arange(int(stats.poisson.isf(1e-15, mean)) + 2)
    ratio = 2.0 * (special.xlogy(totals, totals / mean) - totals + mean)
    covered = ratio <= stats.chi2.ppf(conf, df=1)
    return float(np.sum(stats.poisson.pmf(totals, mean)[covered]))
