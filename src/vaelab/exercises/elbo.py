"""Checks for notebook 03's exercises: the Gaussian KL and the single-sample ELBO estimator.

Each check calls the student's function on fixed inputs, compares with the package
(``vaelab.kl``, ``vaelab.elbo``) and, for a wrong answer, recognises the usual mistakes:
the sign of the KL, the log-variance used as a variance (or sigma as sigma^2), a
missing sum over the latent dimensions, a missing factor 1/2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vaelab.distributions import LOG_2PI
from vaelab.elbo import reparameterized_elbo
from vaelab.exercises.core import call_student, fail, passed, reveal
from vaelab.kl import gaussian_kl_standard_normal


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of 4 q's in 3 dimensions, with negative and positive log-variances."""
    mu = torch.tensor([[0.5, -1.0, 0.2], [0.0, 0.0, 0.0], [1.5, 0.3, -0.7], [-0.4, 2.0, 0.9]],
                      dtype=torch.float64)
    logvar = torch.tensor([[-0.5, 0.3, -1.2], [0.0, 0.0, 0.0], [0.8, -2.0, 0.1],
                           [-0.3, 0.6, -0.9]], dtype=torch.float64)
    return mu, logvar


def _as_result(value: object, exercise: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(exercise, f"your function returned a {type(value).__name__}, not a torch.Tensor",
             "build the result from torch operations on mu and logvar (torch.exp, .sum(dim=-1))")
    return value.detach().to(torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-6, atol=1e-8))


def check_gaussian_kl(kl_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 3.1: kl_fn(mu, logvar) (B, d) -> (B,) = KL(N(mu, diag e^logvar) || N(0, I))."""
    ex = "3.1"
    mu, logvar = _inputs()
    expected = gaussian_kl_standard_normal(mu, logvar)
    got = _as_result(call_student(ex, kl_fn, mu.clone(), logvar.clone()), ex)
    if _close(got, expected):
        passed(ex, "KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2), one value per row.")
        return
    per_dim = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)
    if got.shape == per_dim.shape and _close(got, per_dim):
        fail(ex, "you returned one value per latent dimension, shape (B, d)",
             "the KL of a diagonal Gaussian is the sum over dimensions: add .sum(dim=-1)")
    if got.shape == () and (_close(got, expected.sum()) or _close(got, expected.mean())):
        fail(ex, "you returned one number for the whole batch",
             "sum over the last dimension only (dim=-1): one KL per row of mu")
    if got.shape != expected.shape:
        fail(ex, f"expected shape {tuple(expected.shape)} (one KL per row), "
             f"got {tuple(got.shape)}",
             "sum over the last dimension only: .sum(dim=-1)")
    if _close(got, -expected):
        fail(ex, "your values have the wrong sign (some are negative; a KL never is)",
             "the ELBO contains -KL; the KL itself, the quantity asked for, is never negative")
    if _close(got, per_dim.mean(dim=-1)):
        fail(ex, "you averaged over the latent dimensions", "sum over them instead: .sum(dim=-1)")
    if _close(got, 2.0 * expected):
        fail(ex, "your values are twice the KL", "the closed form has a factor 1/2 in front")
    sigma_for_var = 0.5 * (mu**2 + (0.5 * logvar).exp() - 1.0 - 0.5 * logvar).sum(-1)
    if not bool(torch.isfinite(got).all()):
        fail(ex, "your result is not finite or treats logvar as the variance itself",
             "logvar is ln sigma^2 and can be negative: sigma^2 = torch.exp(logvar), and "
             "ln sigma^2 is logvar itself")
    if _close(got, sigma_for_var):
        fail(ex, "you used sigma = exp(logvar / 2) where the formula needs sigma^2",
             "sigma^2 = exp(logvar) and ln sigma^2 = logvar")
    fail(ex, f"your KL differs from the closed form: got {got.numpy().round(4)}"
         + reveal(f"expected {expected.numpy().round(4)}"),
         "write one dimension's KL from the closed form in the text (it needs sigma^2, the "
         "exponential of logvar, and ln sigma^2, which is logvar itself), then sum over the "
         "dimensions; compare term by term with the derivation")


# ----------------------------------------------------------------------------- 3.2


def _toy_log_likelihood(z: torch.Tensor) -> torch.Tensor:
    """ln N(x; A z, 0.5^2 I) for a fixed x in 2 dimensions and a 3-dimensional z."""
    a = torch.tensor([[1.0, -0.5, 0.3], [0.2, 0.8, -1.0]], dtype=torch.float64)
    x = torch.tensor([0.7, -0.4], dtype=torch.float64)
    r = x - z @ a.T
    return -0.5 * (2 * (LOG_2PI + 2 * torch.log(torch.tensor(0.5, dtype=torch.float64)))
                   + (r**2).sum(-1) / 0.25)


def check_elbo_estimator(estimator: Callable[..., torch.Tensor]) -> None:
    """Exercise 3.2: estimator(log_likelihood, mu, logvar, eps) -> ln p(x|z) + ln p(z) - ln q(z|x).

    z = mu + exp(logvar / 2) * eps; mu, logvar, eps: (d,); returns a scalar tensor. Checked
    against ``vaelab.elbo.reparameterized_elbo(..., analytic_kl=False)`` on several eps.
    """
    ex = "3.2"
    mu = torch.tensor([0.3, -0.6, 1.1], dtype=torch.float64)
    logvar = torch.tensor([-0.8, 0.4, -1.5], dtype=torch.float64)
    eps_list = [torch.tensor(e, dtype=torch.float64)
                for e in ([0.5, -1.2, 0.3], [-0.7, 0.1, 1.9], [1.4, 0.6, -0.2])]
    for eps in eps_list:
        expected = reparameterized_elbo(_toy_log_likelihood, mu, logvar, eps, analytic_kl=False)
        got = _as_result(call_student(ex, estimator, _toy_log_likelihood, mu.clone(),
                                      logvar.clone(), eps.clone()), ex)
        if _close(got.reshape(()) if got.numel() == 1 else got, expected):
            continue
        _diagnose_estimator(got, mu, logvar, eps, expected)
    passed(ex, "ln p(x|z) + ln p(z) - ln q(z|x) at z = mu + sigma * eps: its mean is the ELBO.")


def _diagnose_estimator(got: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                        eps: torch.Tensor, expected: torch.Tensor) -> None:
    ex = "3.2"
    if got.numel() == mu.numel() and got.numel() > 1:
        fail(ex, f"you returned {got.numel()} numbers, one per latent dimension",
             "ln p(z) and ln q(z|x) are sums over the latent dimensions of the 1-D log-densities")
    if got.numel() != 1:
        fail(ex, f"expected one number, got shape {tuple(got.shape)}", "return a scalar tensor")
    value = got.reshape(())
    if _close(value, -expected):
        fail(ex, "your estimate has the wrong sign",
             "the ELBO integrand is ln p(x, z) - ln q(z|x): the log-joint minus the log of q")
    ll = _toy_log_likelihood
    z_var = mu + logvar.exp() * eps  # sigma^2 used as sigma
    log_q = 0.5 * (LOG_2PI + logvar + eps**2).sum()  # minus ln q(z|x) at z = mu + sigma eps
    wrong_z = ll(z_var) - 0.5 * (LOG_2PI + z_var**2).sum() + log_q
    if _close(value, wrong_z):
        fail(ex, "z was drawn with the variance where the standard deviation belongs",
             "sigma = exp(logvar / 2), so z = mu + torch.exp(0.5 * logvar) * eps")
    z = mu + (0.5 * logvar).exp() * eps
    log_prior = -0.5 * (LOG_2PI + z**2).sum()
    no_half_logvar = ll(z) + log_prior + 0.5 * (LOG_2PI + eps**2).sum()  # forgot ln sigma in q
    full_logvar = ll(z) + log_prior + 0.5 * (LOG_2PI + 2 * logvar + eps**2).sum()
    if _close(value, no_half_logvar) or _close(value, full_logvar):
        fail(ex, "ln q(z|x) has the wrong normalising term",
             "ln N(z; mu, sigma^2) = -1/2 (ln 2 pi + ln sigma^2 + (z - mu)^2 / sigma^2) per "
             "dimension, and ln sigma^2 is logvar (not logvar / 2, not 2 logvar)")
    first_dim = ll(z) - 0.5 * (LOG_2PI + z[0] ** 2) + 0.5 * (LOG_2PI + logvar[0] + eps[0] ** 2)
    if _close(value, first_dim):
        fail(ex, "only the first latent dimension entered ln p(z) and ln q(z|x)",
             "sum the per-dimension log-densities over all dimensions (.sum())")
    fail(ex, f"your estimate is {float(value):.6f}" + reveal(f"expected {float(expected):.6f}"),
         "check the three terms one at a time: ln p(x|z) is log_likelihood(z) at the z "
         "built from eps; ln p(z) and ln q(z|x) are sums over dimensions of 1-D normal "
         "log-densities (the prior's mean 0 and variance 1, q's mean mu and variance "
         "exp(logvar))")
