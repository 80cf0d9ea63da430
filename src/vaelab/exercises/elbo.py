"""Checks for notebook 03's exercises: the Gaussian KL and the single-sample ELBO estimator.

Each check draws its inputs when it runs (several shapes), computes the package's answer
(``vaelab.kl``, ``vaelab.elbo``), calls the student's function on copies and, for a wrong
answer, recognises the usual mistakes: the sign of the KL, the log-variance used as a
variance (or sigma as sigma^2), a missing sum over the latent dimensions, a missing
factor 1/2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from vaelab.distributions import LOG_2PI, gaussian_log_density, reparameterize
from vaelab.elbo import reparameterized_elbo
from vaelab.exercises.core import (
    Mistake,
    call_student,
    diagnose,
    fail,
    fresh_seed,
    grid_tensor,
    passed,
    reveal,
    show,
    tensor_answer,
)
from vaelab.kl import gaussian_kl_standard_normal

_TENSOR_HINT = "build the result from torch operations on mu and logvar (torch.exp, .sum(dim=-1))"


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-6, atol=1e-8))


# ----------------------------------------------------------------------------- 3.1


class KLCase(NamedTuple):
    mu: torch.Tensor  # (B, d)
    logvar: torch.Tensor  # (B, d), never 0, at least one negative
    want: torch.Tensor  # (B,)


def _kl_cases(seed: int) -> list[KLCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for batch, dims in ((2, 2), (int(rng.integers(3, 6)), int(rng.integers(3, 6))), (5, 3)):
        mu = grid_tensor(rng, -2.0, 2.0, (batch, dims))
        logvar = grid_tensor(rng, -2.0, 1.0, (batch, dims), avoid=(0.0,))
        logvar[0, 0] = -abs(float(logvar[0, 0]))  # a variance below 1 (ln sigma^2 < 0)
        cases.append(KLCase(mu, logvar, gaussian_kl_standard_normal(mu, logvar)))
    return cases


def _per_dim(c: KLCase) -> torch.Tensor:
    return 0.5 * (c.mu**2 + c.logvar.exp() - 1.0 - c.logvar)


KL_MISTAKES = [
    Mistake("your values have the wrong sign (some are negative; a KL never is)",
            "the ELBO contains -KL; the KL itself, the quantity asked for, is never negative",
            lambda c: -c.want),
    Mistake("you averaged over the latent dimensions", "sum over them instead: .sum(dim=-1)",
            lambda c: _per_dim(c).mean(dim=-1)),
    Mistake("your values are twice the KL", "the closed form has a factor 1/2 in front",
            lambda c: 2.0 * c.want),
    Mistake("you used sigma = exp(logvar / 2) where the formula needs sigma^2",
            "sigma^2 = exp(logvar) and ln sigma^2 = logvar",
            lambda c: 0.5 * (c.mu**2 + (0.5 * c.logvar).exp() - 1.0 - 0.5 * c.logvar).sum(-1)),
]


def check_gaussian_kl(kl_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 3.1: kl_fn(mu, logvar) (B, d) -> (B,) = KL(N(mu, diag e^logvar) || N(0, I))."""
    ex = "3.1"
    for case in _kl_cases(fresh_seed()):
        out = call_student(ex, kl_fn, case.mu.clone(), case.logvar.clone(),
                           names=("mu", "logvar"))
        got = tensor_answer(out, ex, "your function", _TENSOR_HINT)
        if _close(got, case.want):
            continue
        per_dim = _per_dim(case)
        if got.shape == per_dim.shape and _close(got, per_dim):
            fail(ex, "you returned one value per latent dimension, shape (B, d)",
                 "the KL of a diagonal Gaussian is the sum over dimensions: add .sum(dim=-1)")
        if got.numel() == 1 and (_close(got.reshape(()), case.want.sum())
                                 or _close(got.reshape(()), case.want.mean())):
            fail(ex, "you returned one number for the whole batch",
                 "sum over the last dimension only (dim=-1): one KL per row of mu")
        if got.shape != case.want.shape:
            fail(ex, f"expected shape {tuple(case.want.shape)} (one KL per row), "
                 f"got {tuple(got.shape)}", "sum over the last dimension only: .sum(dim=-1)")
        diagnose(ex, got, case, KL_MISTAKES, _close)
        if not bool(torch.isfinite(got).all()):
            fail(ex, "your result is not finite or treats logvar as the variance itself",
                 "logvar is ln sigma^2 and can be negative: sigma^2 = torch.exp(logvar), and "
                 "ln sigma^2 is logvar itself")
        fail(ex, f"your KL differs from the closed form: at mu = {show(case.mu)}, logvar = "
             f"{show(case.logvar)} you returned {show(got)}"
             + reveal(f"expected {show(case.want)}"),
             "write one dimension's KL from the closed form in the text (it needs sigma^2, the "
             "exponential of logvar, and ln sigma^2, which is logvar itself), then sum over the "
             "dimensions; compare term by term with the derivation")
    passed(ex, "KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2), one value per row.")


# ----------------------------------------------------------------------------- 3.2


class ToyLikelihood:
    """ln N(x; A z, 0.5^2 I) for a fixed 2-D x: the log_likelihood handed to the estimator."""

    def __init__(self, a: torch.Tensor, x: torch.Tensor) -> None:
        self.a, self.x = a, x

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        r = self.x - z @ self.a.T
        return -0.5 * (2 * (LOG_2PI + 2 * np.log(0.5)) + (r**2).sum(-1) / 0.25)

    def __repr__(self) -> str:
        return f"ln N(x = {show(self.x)}; A z, 0.25 I) with A = {show(self.a)}"


class ElboCase(NamedTuple):
    log_likelihood: ToyLikelihood
    mu: torch.Tensor  # (d,)
    logvar: torch.Tensor  # (d,)
    eps: torch.Tensor  # (d,)
    want: torch.Tensor  # ()


def _elbo_cases(seed: int) -> list[ElboCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for dims in (3, int(rng.integers(2, 6)), int(rng.integers(2, 6))):
        ll = ToyLikelihood(grid_tensor(rng, -1.0, 1.0, (2, dims)),
                           grid_tensor(rng, -1.0, 1.0, (2,)))
        mu = grid_tensor(rng, -1.5, 1.5, (dims,))
        logvar = grid_tensor(rng, -2.0, 0.5, (dims,), avoid=(0.0,))
        eps = grid_tensor(rng, -2.0, 2.0, (dims,), avoid=(0.0,))
        want = reparameterized_elbo(ll, mu, logvar, eps, analytic_kl=False)
        cases.append(ElboCase(ll, mu, logvar, eps, want))
    return cases


def _terms(c: ElboCase, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ln p(x|z) and ln p(z) (summed over dimensions) at a given z."""
    return c.log_likelihood(z), gaussian_log_density(z, 0.0, 0.0).sum()


def _minus_log_q(c: ElboCase, logvar_factor: float = 1.0) -> torch.Tensor:
    """-ln q(z|x) at z = mu + sigma * eps, with ``logvar_factor`` times ln sigma^2 in it."""
    return 0.5 * (LOG_2PI + logvar_factor * c.logvar + c.eps**2).sum()


def _variance_as_sigma(c: ElboCase) -> torch.Tensor:
    z = c.mu + c.logvar.exp() * c.eps
    return sum(_terms(c, z)) + _minus_log_q(c)


def _with_log_q_factor(factor: float) -> Callable[[ElboCase], torch.Tensor]:
    def answer(c: ElboCase) -> torch.Tensor:
        return sum(_terms(c, reparameterize(c.mu, c.logvar, c.eps))) + _minus_log_q(c, factor)
    return answer


def _first_dimension_only(c: ElboCase) -> torch.Tensor:
    z = reparameterize(c.mu, c.logvar, c.eps)
    return (c.log_likelihood(z) + gaussian_log_density(z[0], 0.0, 0.0)
            + 0.5 * (LOG_2PI + c.logvar[0] + c.eps[0] ** 2))


ELBO_MISTAKES = [
    Mistake("your estimate has the wrong sign",
            "the ELBO integrand is ln p(x, z) - ln q(z|x): the log-joint minus the log of q",
            lambda c: -c.want),
    Mistake("z was drawn with the variance where the standard deviation belongs",
            "sigma = exp(logvar / 2) is the standard deviation; exp(logvar) is the variance",
            _variance_as_sigma),
    Mistake("ln q(z|x) has the wrong normalising term",
            "ln N(z; mu, sigma^2) = -1/2 (ln 2 pi + ln sigma^2 + (z - mu)^2 / sigma^2) per "
            "dimension, and ln sigma^2 is logvar (not logvar / 2, not 2 logvar)",
            _with_log_q_factor(0.0)),
    Mistake("ln q(z|x) has the wrong normalising term",
            "ln N(z; mu, sigma^2) = -1/2 (ln 2 pi + ln sigma^2 + (z - mu)^2 / sigma^2) per "
            "dimension, and ln sigma^2 is logvar (not logvar / 2, not 2 logvar)",
            _with_log_q_factor(2.0)),
    Mistake("only the first latent dimension entered ln p(z) and ln q(z|x)",
            "sum the per-dimension log-densities over all dimensions (.sum())",
            _first_dimension_only),
]


def check_elbo_estimator(estimator: Callable[..., torch.Tensor]) -> None:
    """Exercise 3.2: estimator(log_likelihood, mu, logvar, eps) -> ln p(x|z) + ln p(z) - ln q(z|x).

    z = mu + exp(logvar / 2) * eps; mu, logvar, eps: (d,); returns a scalar tensor. Checked
    against ``vaelab.elbo.reparameterized_elbo(..., analytic_kl=False)`` on inputs drawn
    when the check runs, in several dimensions.
    """
    ex = "3.2"
    for case in _elbo_cases(fresh_seed()):
        out = call_student(ex, estimator, case.log_likelihood, case.mu.clone(),
                           case.logvar.clone(), case.eps.clone(),
                           names=("log_likelihood", "mu", "logvar", "eps"))
        got = tensor_answer(out, ex, "your estimator",
                            "build the estimate from torch operations and return it as a tensor")
        if got.numel() == 1 and _close(got.reshape(()), case.want):
            continue
        if got.numel() == case.mu.numel() and got.numel() > 1:
            fail(ex, f"you returned {got.numel()} numbers, one per latent dimension",
                 "ln p(z) and ln q(z|x) are sums over the latent dimensions of the 1-D "
                 "log-densities")
        if got.numel() != 1:
            fail(ex, f"expected one number, got shape {tuple(got.shape)}", "return a scalar tensor")
        value = got.reshape(())
        diagnose(ex, value, case, ELBO_MISTAKES, _close)
        fail(ex, f"at mu = {show(case.mu)}, logvar = {show(case.logvar)}, eps = {show(case.eps)} "
             f"and log_likelihood {case.log_likelihood!r} your estimate is {float(value):.6f}"
             + reveal(f"expected {float(case.want):.6f}"),
             "check the three terms one at a time: ln p(x|z) is log_likelihood(z) at the z "
             "built from eps; ln p(z) and ln q(z|x) are sums over dimensions of 1-D normal "
             "log-densities (the prior's mean 0 and variance 1, q's mean mu and variance "
             "exp(logvar))")
    passed(ex, "ln p(x|z) + ln p(z) - ln q(z|x) at z = mu + sigma * eps: its mean is the ELBO.")
