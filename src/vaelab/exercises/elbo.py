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
    draws_its_own_noise,
    fail,
    fail_if_inputs_changed,
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
    # The inputs are float64; a right answer computed in float32 lands within about 1e-6 of
    # the reference (sums of terms near 10), every known mistake far outside 1e-5.
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-5))


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


def _per_dim(c: KLCase, square: float = 1.0, variance: float = 1.0, one: float = 1.0,
             log_variance: float = 1.0) -> torch.Tensor:
    """Each dimension's KL, 1/2 (mu^2 + sigma^2 - 1 - ln sigma^2), (B, d), with each of its
    four terms multiplied by a factor (a flipped sign is -1, a missing term 0)."""
    return 0.5 * (square * c.mu**2 + variance * c.logvar.exp() - one
                  - log_variance * c.logvar)


def _kl_with(**factors: float) -> Callable[[KLCase], torch.Tensor]:
    return lambda c: _per_dim(c, **factors).sum(dim=-1)


_KL_SIGN_HINT = ("compare the sign of each term with the closed form: a KL never goes below 0, "
                 "and it is 0 only where q equals the prior")

KL_MISTAKES = [
    Mistake("your values have the wrong sign (some are negative; a KL never is)",
            "the ELBO contains -KL; the KL itself, the quantity asked for, is never negative",
            lambda c: -c.want),
    Mistake("the ln sigma^2 term has the wrong sign", _KL_SIGN_HINT + "; ln sigma^2 is "
            "subtracted, so that a sigma^2 below 1 costs as a sigma^2 above 1 does",
            _kl_with(log_variance=-1.0)),
    Mistake("the constant 1 has the wrong sign", _KL_SIGN_HINT + "; 1 is subtracted in every "
            "dimension (where mu = 0 and sigma^2 = 1 the terms must cancel)", _kl_with(one=-1.0)),
    Mistake("the mu^2 term has the wrong sign", _KL_SIGN_HINT + "; moving the mean away from "
            "0 makes q differ more from the prior", _kl_with(square=-1.0)),
    Mistake("the sigma^2 term has the wrong sign", _KL_SIGN_HINT + "; a wider q than the prior "
            "costs more", _kl_with(variance=-1.0)),
    Mistake("your ln sigma^2 is a base-10 logarithm",
            "torch.log10 is the base-10 logarithm; the KL is in nats, with natural logs, and "
            "ln sigma^2 is logvar itself: no log to take", _kl_with(log_variance=1 / np.log(10))),
    Mistake("ln sigma stands where the formula has ln sigma^2",
            "logvar is ln sigma^2 already (ln sigma is half of it)", _kl_with(log_variance=0.5)),
    Mistake("the constant -1 is missing",
            "each dimension's term has a -1 (where mu = 0 and sigma^2 = 1 the terms cancel)",
            _kl_with(one=0.0)),
    Mistake("the mu^2 term is missing", "the closed form has a term for the mean too",
            _kl_with(square=0.0)),
    Mistake("you averaged over the latent dimensions", "sum over them instead: .sum(dim=-1)",
            lambda c: _per_dim(c).mean(dim=-1)),
    Mistake("your values are twice the KL", "the closed form has a factor 1/2 in front",
            lambda c: 2.0 * c.want),
    Mistake("you used sigma = exp(logvar / 2) where the formula needs sigma^2",
            "sigma^2 = exp(logvar) and ln sigma^2 = logvar",
            lambda c: 0.5 * (c.mu**2 + (0.5 * c.logvar).exp() - 1.0 - 0.5 * c.logvar).sum(-1)),
]
KL_HINT = ("write one dimension's KL from the closed form in the text (it needs sigma^2, the "
           "exponential of logvar, and ln sigma^2, which is logvar itself), then sum over the "
           "dimensions; compare term by term with the derivation")


def check_gaussian_kl(kl_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 3.1: kl_fn(mu, logvar) (B, d) -> (B,) = KL(N(mu, diag e^logvar) || N(0, I))."""
    ex = "3.1"
    results = []
    for case in _kl_cases(fresh_seed()):
        out = call_student(ex, kl_fn, case.mu.clone(), case.logvar.clone(),
                           names=("mu", "logvar"))
        results.append((tensor_answer(out, ex, "your function", _TENSOR_HINT), case))
    for got, case in results:
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
        diagnose(ex, got, case, KL_MISTAKES, _close, also=results)
        if not bool(torch.isfinite(got).all()):
            fail(ex, "your result is not finite or treats logvar as the variance itself",
                 "logvar is ln sigma^2 and can be negative: sigma^2 = torch.exp(logvar), and "
                 "ln sigma^2 is logvar itself")
        fail(ex, f"your KL differs from the closed form: at mu = {show(case.mu)}, logvar = "
             f"{show(case.logvar)} you returned {show(got)}"
             + reveal(f"expected {show(case.want)}"), KL_HINT)
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


Reduction = Callable[[torch.Tensor], torch.Tensor]


def _log_q_dims(c: ElboCase, logvar_factor: float = 1.0) -> torch.Tensor:
    """ln q(z|x) per dimension at z = mu + sigma * eps, with ``logvar_factor`` times
    ln sigma^2 in it, (d,)."""
    return -0.5 * (LOG_2PI + logvar_factor * c.logvar + c.eps**2)


def _estimate(c: ElboCase, z: torch.Tensor | None = None, likelihood_at: torch.Tensor | None = None,
              prior_at: torch.Tensor | None = None, log_q: torch.Tensor | None = None,
              likelihood: float = 1.0, prior: float = 1.0, q: float = -1.0,
              reduce_prior: Reduction = torch.sum, reduce_q: Reduction = torch.sum
              ) -> torch.Tensor:
    """ln p(x|z) + ln p(z) - ln q(z|x), each part replaceable: z (default mu + sigma * eps),
    where ln p(x|z) and ln p(z) are evaluated (default z), ln q per dimension (default the
    right one), the factor of each term (-1 for ln q is right) and the reductions of ln p(z)
    and ln q over the latent dimensions."""
    if z is None:
        z = reparameterize(c.mu, c.logvar, c.eps)
    log_q = _log_q_dims(c) if log_q is None else log_q
    at_prior = z if prior_at is None else prior_at
    return (likelihood * c.log_likelihood(z if likelihood_at is None else likelihood_at)
            + prior * reduce_prior(gaussian_log_density(at_prior, 0.0, 0.0))
            + q * reduce_q(log_q))


def _first_dimension_only(c: ElboCase) -> torch.Tensor:
    z = reparameterize(c.mu, c.logvar, c.eps)
    return (c.log_likelihood(z) + gaussian_log_density(z[0], 0.0, 0.0)
            - _log_q_dims(c)[0])


_LOG_Q_HINT = ("ln N(z; mu, sigma^2) = -1/2 (ln 2 pi + ln sigma^2 + (z - mu)^2 / sigma^2) per "
               "dimension, and ln sigma^2 is logvar (not logvar / 2, not 2 logvar)")

ELBO_MISTAKES = [
    Mistake("your estimate has the wrong sign",
            "the ELBO integrand is ln p(x, z) - ln q(z|x): the log-joint minus the log of q",
            lambda c: -c.want),
    Mistake("ln q(z|x) enters with the wrong sign",
            "the estimate is ln p(x|z) + ln p(z) MINUS ln q(z|x): q is the distribution z was "
            "drawn from, and the ELBO charges for it", lambda c: _estimate(c, q=1.0)),
    Mistake("the prior term ln p(z) is missing",
            "the ELBO's integrand is ln p(x, z) - ln q(z|x), and ln p(x, z) = ln p(x|z) + "
            "ln p(z), with p(z) the standard normal N(0, I) at the sampled z",
            lambda c: _estimate(c, prior=0.0)),
    Mistake("the likelihood term ln p(x|z) is missing",
            "add log_likelihood(z), at the z built from eps",
            lambda c: _estimate(c, likelihood=0.0)),
    Mistake("you subtracted the closed-form KL of exercise 3.1",
            "that is another estimator of the same ELBO; this exercise asks for the "
            "single-sample one, which evaluates ln p(z) - ln q(z|x) at the sampled z (no closed "
            "form)", lambda c: c.log_likelihood(reparameterize(c.mu, c.logvar, c.eps))
            - gaussian_kl_standard_normal(c.mu, c.logvar)),
    Mistake("you averaged ln p(z) and ln q(z|x) over the latent dimensions",
            "the log-density of independent dimensions is the SUM of the 1-D log-densities: "
            ".sum(), not .mean()",
            lambda c: _estimate(c, reduce_prior=torch.mean, reduce_q=torch.mean)),
    Mistake("you averaged ln p(z) over the latent dimensions",
            "the log-density of independent dimensions is the SUM of the 1-D log-densities: "
            ".sum(), not .mean()", lambda c: _estimate(c, reduce_prior=torch.mean)),
    Mistake("you averaged ln q(z|x) over the latent dimensions",
            "the log-density of independent dimensions is the SUM of the 1-D log-densities: "
            ".sum(), not .mean()", lambda c: _estimate(c, reduce_q=torch.mean)),
    Mistake("z was drawn with the variance where the standard deviation belongs",
            "sigma = exp(logvar / 2) is the standard deviation; exp(logvar) is the variance",
            lambda c: _estimate(c, z=c.mu + c.logvar.exp() * c.eps)),
    Mistake("z = mu: the noise is missing",
            "z is a sample from q: mu shifted by the noise eps scaled by sigma, the standard "
            "deviation", lambda c: _estimate(c, z=c.mu)),
    Mistake("z = mu: the noise is missing",
            "z is a sample from q: mu shifted by the noise eps scaled by sigma, the standard "
            "deviation", lambda c: _estimate(c, z=c.mu, log_q=_log_q_dims(c) + 0.5 * c.eps**2)),
    Mistake("ln p(x|z) was evaluated at mu, not at the sampled z",
            "all three terms are evaluated at the same sample z", lambda c: _estimate(
                c, likelihood_at=c.mu)),
    Mistake("ln p(z) was evaluated at eps, not at z",
            "the prior's log-density is taken at the sample z itself (eps is only the noise "
            "z is built from)", lambda c: _estimate(c, prior_at=c.eps)),
    Mistake("ln q(z|x) has half the ln sigma^2 it needs",
            "logvar is ln sigma^2 already: the normalising term of ln N(z; mu, sigma^2) is "
            "-1/2 (ln 2 pi + ln sigma^2) per dimension, and ln sigma = logvar / 2 is half of it",
            lambda c: _estimate(c, log_q=_log_q_dims(c, 0.5))),
    Mistake("ln q(z|x) has the wrong normalising term", _LOG_Q_HINT,
            lambda c: _estimate(c, log_q=_log_q_dims(c, 0.0))),
    Mistake("ln q(z|x) has the wrong normalising term", _LOG_Q_HINT,
            lambda c: _estimate(c, log_q=_log_q_dims(c, 2.0))),
    Mistake("only the first latent dimension entered ln p(z) and ln q(z|x)",
            "sum the per-dimension log-densities over all dimensions (.sum())",
            _first_dimension_only),
]
ELBO_HINT = ("check the three terms one at a time: ln p(x|z) is log_likelihood(z) at the z "
             "built from eps; ln p(z) and ln q(z|x) are sums over dimensions of 1-D normal "
             "log-densities (the prior's mean 0 and variance 1, q's mean mu and variance "
             "exp(logvar))")


def check_elbo_estimator(estimator: Callable[..., torch.Tensor]) -> None:
    """Exercise 3.2: estimator(log_likelihood, mu, logvar, eps) -> ln p(x|z) + ln p(z) - ln q(z|x).

    z = mu + exp(logvar / 2) * eps; mu, logvar, eps: (d,); returns a scalar tensor. Checked
    against ``vaelab.elbo.reparameterized_elbo(..., analytic_kl=False)`` on inputs drawn
    when the check runs, in several dimensions.
    """
    ex = "3.2"
    results = []
    for case in _elbo_cases(fresh_seed()):
        out = call_student(ex, estimator, case.log_likelihood, case.mu.clone(),
                           case.logvar.clone(), case.eps.clone(),
                           names=("log_likelihood", "mu", "logvar", "eps"))
        got = tensor_answer(out, ex, "your estimator",
                            "build the estimate from torch operations and return it as a tensor")
        # The notebook calls the estimator again and again with the same mu: one that writes
        # into its inputs is wrong even when this call's value is right.
        fail_if_inputs_changed(ex)
        if got.numel() == case.mu.numel() and got.numel() > 1:
            fail(ex, f"you returned {got.numel()} numbers, one per latent dimension",
                 "ln p(z) and ln q(z|x) are sums over the latent dimensions of the 1-D "
                 "log-densities")
        if got.numel() != 1:
            fail(ex, f"expected one number, got shape {tuple(got.shape)}", "return a scalar tensor")
        results.append((got.reshape(()), case))
    for value, case in results:
        if _close(value, case.want):
            continue
        diagnose(ex, value, case, ELBO_MISTAKES, _close, also=results)
        if draws_its_own_noise(ex, estimator, case.log_likelihood, case.mu, case.logvar,
                               case.eps):
            fail(ex, "your estimate changes from call to call for the same inputs: your "
                 "function draws noise of its own", "z is built from the eps you are given "
                 "(z = mu + sigma * eps with that eps): the estimator itself draws nothing")
        fail(ex, f"at mu = {show(case.mu)}, logvar = {show(case.logvar)}, eps = {show(case.eps)} "
             f"and log_likelihood {case.log_likelihood!r} your estimate is {float(value):.6f}"
             + reveal(f"expected {float(case.want):.6f}"), ELBO_HINT)
    passed(ex, "ln p(x|z) + ln p(z) - ln q(z|x) at z = mu + sigma * eps: its mean is the ELBO.")
