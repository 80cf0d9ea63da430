"""vaelab.elbo: estimators land within their standard errors of the exact values; SGA; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab.distributions import Gaussian
from vaelab.elbo import (
    Estimate,
    decomposition_along_means,
    elbo_terms,
    fit_gaussian_q,
    format_estimate,
    iw_bounds_from_weights,
    iw_log_weights,
    log_mean_exp,
    log_mean_exp_estimate,
    mc_estimate,
    reparameterized_elbo,
)
from vaelab.latent_models import LinearGaussianModel, NonlinearModel1D

MODEL_1D = LinearGaussianModel([[1.5]], [0.5], 0.8)
X_1D = np.array([2.0])
BIMODAL = NonlinearModel1D([3.0, 3.0], [-3.0, 3.0], [[1.0, -1.0]], [0.0], "gaussian", 0.3)


def test_mc_estimate_and_formatting():
    est = mc_estimate([1.0, 2.0, 3.0, 4.0])
    assert est.mean == 2.5 and est.std_error == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert format_estimate(Estimate(-3.14159, 0.0123, 10)) == "-3.142 ± 0.012"
    assert format_estimate(Estimate(2.0, 0.0, 10)) == "2.000000 (exact)"
    assert format_estimate(Estimate(12.3456, 1.5, 10)) == "12.3 ± 1.5"
    assert Estimate(1.0, 0.1, 5).within(1.39) and not Estimate(1.0, 0.1, 5).within(1.41)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_the_mean_log_weight_lands_within_its_standard_errors_of_the_elbo(seed):
    rng = np.random.default_rng(seed)
    d, big_d = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    m = LinearGaussianModel(rng.standard_normal((big_d, d)), rng.standard_normal(big_d),
                            float(rng.uniform(0.4, 1.5)))
    x = rng.standard_normal(big_d)
    q = Gaussian.diagonal(rng.standard_normal(d), np.exp(rng.uniform(-1, 0.5, d)))
    est = mc_estimate(iw_log_weights(m, x, q, 20_000, np.random.default_rng(seed + 1)))
    assert est.within(elbo_terms(m, x, q).elbo, 4.5)  # the mean log-weight is an MC ELBO


def test_log_mean_exp_estimate_is_consistent_for_the_evidence():
    q = Gaussian.diagonal([0.5], [0.7])
    lw = iw_log_weights(MODEL_1D, X_1D, q, 200_000, np.random.default_rng(0))
    assert log_mean_exp_estimate(lw).within(MODEL_1D.log_marginal(X_1D), 4)


def test_iw_bound_increases_and_converges():
    q = Gaussian.diagonal([0.2], [0.8])
    rng = np.random.default_rng(0)
    pool = iw_log_weights(MODEL_1D, X_1D, q, 200 * 1000, rng).reshape(200, 1000)
    ks = [1, 5, 10, 50, 100, 500, 1000]
    bounds = iw_bounds_from_weights(pool, ks)
    means = [b.mean for b in bounds]
    assert all(a < b for a, b in zip(means, means[1:], strict=False))
    t = elbo_terms(MODEL_1D, X_1D, q)
    assert bounds[0].within(t.elbo, 4)
    assert bounds[-1].within(t.log_marginal, 4)
    fresh = iw_log_weights(MODEL_1D, X_1D, q, 2000 * 50, rng).reshape(2000, 50)
    single = mc_estimate(log_mean_exp(fresh, axis=1))  # L_50 from fresh groups of 50
    assert single.within(bounds[3].mean, 4.0 * np.hypot(1, single.std_error / bounds[3].std_error))


def test_reparameterized_estimators_have_the_elbo_as_mean_and_carry_gradients():
    q = Gaussian.diagonal([0.1], [0.6])
    exact = elbo_terms(MODEL_1D, X_1D, q).elbo
    mu = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([2 * np.log(0.6)], dtype=torch.float64, requires_grad=True)
    eps = torch.randn(100_000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for analytic in (True, False):
        v = reparameterized_elbo(lambda z: MODEL_1D.log_likelihood(X_1D, z), mu, logvar, eps,
                                 analytic_kl=analytic)
        assert v.shape == (100_000,)
        assert mc_estimate(v.detach().numpy()).within(exact, 4)
    v.mean().backward()
    assert mu.grad is not None and torch.isfinite(mu.grad).all()


def test_sga_reaches_the_exact_posterior_in_the_linear_gaussian_model():
    fit = fit_gaussian_q(lambda z: MODEL_1D.log_likelihood(X_1D, z), 1, steps=800, lr=0.05)
    q = Gaussian.diagonal(fit.mean, np.exp(fit.log_std))
    assert MODEL_1D.kl_to_posterior(X_1D, q) < 5e-3
    assert fit.elbo_trace.shape == (800,)


def test_sga_leaves_a_gap_in_the_bimodal_model():
    fit = fit_gaussian_q(lambda z: BIMODAL.log_likelihood([-1.0], z), 1, steps=800, lr=0.05,
                         init_mean=[0.5], init_log_std=[-1.0])
    t = elbo_terms(BIMODAL, [-1.0], Gaussian.diagonal(fit.mean, np.exp(fit.log_std)))
    assert 0.3 < t.gap < 1.0


def test_decomposition_along_means_adds_up():
    d = decomposition_along_means(MODEL_1D, X_1D, np.linspace(-2, 2, 9), -0.5)
    assert np.allclose(d.elbo + d.kl_posterior, d.log_marginal, atol=1e-10)
    assert np.all(d.kl_posterior >= 0)


def test_bad_input_gives_clear_errors():
    q = Gaussian.diagonal([0.0], [1.0])
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        iw_bounds_from_weights(np.zeros((3, 10)), [0])
    with pytest.raises(ValueError, match="divide"):
        iw_bounds_from_weights(np.zeros((3, 10)), [3])
    with pytest.raises(ValueError, match="at least 2"):
        mc_estimate([1.0])
    with pytest.raises(ValueError, match="non-finite"):
        mc_estimate([1.0, -np.inf])
    with pytest.raises(ValueError, match="Generator"):
        iw_log_weights(MODEL_1D, X_1D, q, 10, 0)
    mu = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="mu and logvar"):
        reparameterized_elbo(lambda z: z.sum(-1), mu, torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="eps"):
        reparameterized_elbo(lambda z: z.sum(-1), mu, mu, torch.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        fit_gaussian_q(lambda z: z.sum(-1), 1, steps=0)
    with pytest.raises(ValueError, match="init_mean"):
        fit_gaussian_q(lambda z: z.sum(-1), 2, init_mean=[0.0])


_LG = LinearGaussianModel([[1.0]], [0.0], 1.0)
_Q = Gaussian.diagonal(0.0, 1.0)


def _rng():
    return np.random.default_rng(0)


def _square(z):
    return -0.5 * (z**2).sum(-1)


# Before: NaN in, NaN (or a raw ValueError/IndexError/AttributeError) out; a log_likelihood
# that summed over the samples or kept an axis broadcast into a wrong ELBO; a seed of 1.7 ran
# as 1; an ELBO that became NaN was returned as a fitted q.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: format_estimate(Estimate(1.0, np.nan, 2)), ValueError, "finite standard error"),
        (lambda: format_estimate(Estimate(1.0, -1.0, 2)), ValueError, "standard error >= 0"),
        (lambda: format_estimate((1.0, 0.1, 2)), TypeError, "est must be an Estimate"),
        (lambda: mc_estimate(["a", "b"]), TypeError, "values must be real numbers"),
        (lambda: mc_estimate(None), TypeError, "values must be real numbers"),
        (lambda: log_mean_exp([]), ValueError, "at least one value"),
        (lambda: log_mean_exp([np.nan, 0.0]), ValueError, "NaN or \\+inf"),
        (lambda: log_mean_exp([1.0, 2.0], axis=3), ValueError, "axis 3 is out of range"),
        (lambda: log_mean_exp_estimate([np.nan, 0.0]), ValueError, "not NaN or \\+inf"),
        (lambda: log_mean_exp_estimate([-np.inf, -np.inf]), ValueError, "at least one finite"),
        (lambda: elbo_terms(object(), [0.0], _Q), TypeError, "lacks log_marginal"),
        (lambda: iw_bounds_from_weights(np.zeros((2, 2)), 2), TypeError, "ks must be a sequence"),
        (lambda: iw_bounds_from_weights(np.zeros((2, 0)), [1]), ValueError, "K >= 1"),
        (lambda: iw_bounds_from_weights(np.zeros((1, 4)), [4]), ValueError, "leaves 1 block"),
        (lambda: reparameterized_elbo(_square, np.zeros(1), np.zeros(1), torch.zeros(1)),
         TypeError, "mu must be a floating-point torch tensor"),
        (lambda: reparameterized_elbo(lambda z: _square(z).sum(), torch.zeros(1),
                                      torch.zeros(1), torch.zeros(4, 1)), ValueError,
         r"to a tensor of shape \(4,\) \(one value per z\), got \(\)"),
        (lambda: reparameterized_elbo(lambda z: -0.5 * z**2, torch.zeros(1), torch.zeros(1),
                                      torch.zeros(4, 1)), ValueError, r"got \(4, 1\)"),
        (lambda: reparameterized_elbo(_square, torch.zeros(1), torch.zeros(1),
                                      torch.zeros(0, 1)), ValueError, "n >= 1"),
        (lambda: fit_gaussian_q(_square, 1, steps=2, seed=1.7), TypeError, "seed must be an int"),
        (lambda: fit_gaussian_q(_square, 1, steps=2, seed=-1), ValueError, "seed must be"),
        (lambda: fit_gaussian_q(_square, 1, steps=2, init_mean=[np.nan]), ValueError,
         "init_mean contains a non-finite value"),
        (lambda: fit_gaussian_q(lambda z: z.sum(-1) * np.nan, 1, steps=2), ValueError,
         "the ELBO estimate became nan at step 1"),
        (lambda: decomposition_along_means(_LG, [0.0], [], 0.0), ValueError, "non-empty"),
        (lambda: decomposition_along_means(_LG, [0.0], [0.0], np.nan), ValueError, "log_std"),
        (lambda: decomposition_along_means(_LG, [0.0], [0.0], 1000.0), ValueError,
         "log_std = 1000"),
        (lambda: decomposition_along_means(LinearGaussianModel(np.eye(2), [0.0, 0.0], 1.0),
                                           [0.0, 0.0], [0.0], 0.0), ValueError, "1-D latent"),
    ],
)
def test_bad_input_is_refused_before_work(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_log_mean_exp_keeps_zero_weights():
    assert log_mean_exp([-np.inf, -np.inf]) == -np.inf
    assert log_mean_exp([-np.inf, 0.0]) == pytest.approx(np.log(0.5))
