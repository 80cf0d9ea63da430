"""vaelab.latent_models: exact ln p(x), posteriors, expectations; identities; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from vaelab.distributions import Categorical, Gaussian
from vaelab.elbo import elbo_terms
from vaelab.latent_models import (
    GaussianMixtureModel,
    LinearGaussianModel,
    NonlinearModel1D,
    bernoulli_log_likelihood,
    ring_map,
)


def _lg(seed: int, d: int = 2, big_d: int = 3) -> LinearGaussianModel:
    rng = np.random.default_rng(seed)
    return LinearGaussianModel(rng.standard_normal((big_d, d)), rng.standard_normal(big_d),
                               float(rng.uniform(0.3, 1.5)))


def _random_gaussian(rng: np.random.Generator, d: int) -> Gaussian:
    a = rng.standard_normal((d, d)) * 0.5
    return Gaussian(rng.standard_normal(d), a @ a.T + 0.2 * np.eye(d))


BIMODAL = NonlinearModel1D([3.0, 3.0], [-3.0, 3.0], [[1.0, -1.0]], [0.0], "gaussian", 0.3)
BERNOULLI = NonlinearModel1D([2.0, -1.5, 1.0], [0.0, 0.5, -1.0], 3.0 * np.eye(3), [0.0] * 3,
                             "bernoulli")


def test_linear_gaussian_marginal_matches_scipy():
    m = _lg(0)
    x = np.array([0.3, -1.0, 2.0])
    ref = stats.multivariate_normal(m.b, m.W @ m.W.T + m.noise_std**2 * np.eye(3)).logpdf(x)
    assert m.log_marginal(x) == pytest.approx(ref, abs=1e-12)


def test_linear_gaussian_posterior_satisfies_bayes_at_every_z():
    m, x = _lg(1), np.array([1.0, 0.2, -0.4])
    z = np.random.default_rng(0).standard_normal((50, 2))
    lhs = m.log_likelihood(x, z) + m.log_prior(z) - m.log_posterior(x, z)
    assert np.allclose(lhs, m.log_marginal(x), atol=1e-10)


def test_linear_gaussian_expected_log_likelihood_matches_monte_carlo():
    m, x = _lg(2), np.array([0.5, 0.5, -1.0])
    q = _random_gaussian(np.random.default_rng(3), 2)
    z = q.sample(200_000, np.random.default_rng(4))
    v = m.log_likelihood(x, z)
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert abs(v.mean() - m.expected_log_likelihood(x, q)) < 4 * se


def test_torch_and_numpy_paths_agree():
    z = np.random.default_rng(0).standard_normal((5, 1))
    for model, x in ((_lg(3, d=1, big_d=2), [0.1, 0.4]), (BIMODAL, [-1.0]),
                     (BERNOULLI, [1.0, 0.0, 1.0])):
        a = model.log_likelihood(x, z)
        b = model.log_likelihood(x, torch.tensor(z)).numpy()
        assert np.allclose(a, b, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_linear_gaussian_identity_and_bound_for_random_models_and_q(seed):
    rng = np.random.default_rng(seed)
    d, big_d = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    m = _lg(seed, d, big_d)
    x, q = rng.standard_normal(big_d), _random_gaussian(rng, d)
    t = elbo_terms(m, x, q)
    assert t.kl_posterior >= -1e-12 and t.kl_prior >= -1e-12
    assert t.elbo <= t.log_marginal + 1e-12
    assert abs(t.log_marginal - (t.elbo + t.kl_posterior)) < 1e-9
    assert abs(t.kl_prior - (-t.entropy - t.expected_log_prior)) < 1e-9
    # q equal to the posterior closes the gap
    post = elbo_terms(m, x, m.posterior(x))
    assert abs(post.kl_posterior) < 1e-9 and abs(post.gap) < 1e-9


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_mixture_identity_and_bound_for_random_models_and_q(seed):
    rng = np.random.default_rng(seed)
    k, d = int(rng.integers(2, 5)), int(rng.integers(1, 3))
    w = rng.dirichlet(np.ones(k)) * 0.9 + 0.1 / k
    covs = np.stack([_random_gaussian(rng, d).cov for _ in range(k)])
    m = GaussianMixtureModel(w, rng.standard_normal((k, d)) * 2, covs)
    x, q = rng.standard_normal(d), Categorical(rng.dirichlet(np.ones(k)))
    t = elbo_terms(m, x, q)
    assert t.kl_posterior >= -1e-12 and t.elbo <= t.log_marginal + 1e-12
    assert abs(t.log_marginal - (t.elbo + t.kl_posterior)) < 1e-10
    assert abs(elbo_terms(m, x, m.posterior(x)).gap) < 1e-10


def test_mixture_marginal_is_the_weighted_sum_of_components():
    m = GaussianMixtureModel([0.4, 0.6], [[0.0], [2.0]], [[[1.0]], [[0.5]]])
    ref = np.log(0.4 * stats.norm(0, 1).pdf(1.0) + 0.6 * stats.norm(2, np.sqrt(0.5)).pdf(1.0))
    assert m.log_marginal([1.0]) == pytest.approx(ref, abs=1e-13)
    assert m.posterior([1.0]).probs.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("model, x", [(BIMODAL, [-1.0]), (BERNOULLI, [1.0, 0.0, 1.0])])
def test_nonlinear_quadrature_matches_scipy_quad(model, x):
    def integrand(z: float) -> float:
        return float(np.exp(model.log_joint(x, np.array([[z]]))[0]))

    ref = np.log(integrate.quad(integrand, -12, 12, points=[-1, 0, 1], limit=200,
                                epsabs=1e-14, epsrel=1e-12)[0])
    assert model.log_marginal(x) == pytest.approx(ref, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_nonlinear_identity_and_bound_for_random_models_and_q(seed):
    rng = np.random.default_rng(seed)
    h, big_d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    lik = "gaussian" if seed % 2 else "bernoulli"
    m = NonlinearModel1D(rng.standard_normal(h) * 2, rng.standard_normal(h),
                         rng.standard_normal((big_d, h)) * 2, rng.standard_normal(big_d), lik,
                         float(rng.uniform(0.2, 1.5)))
    x = rng.standard_normal(big_d) if lik == "gaussian" else rng.integers(0, 2, big_d)
    q = Gaussian.diagonal(rng.normal(0, 1.5, 1), np.exp(rng.uniform(-2, 0.5, 1)))
    t = elbo_terms(m, x, q)
    assert t.kl_posterior >= -1e-10 and t.elbo <= t.log_marginal + 1e-10
    assert abs(t.log_marginal - (t.elbo + t.kl_posterior)) < 1e-9


def test_bimodal_posterior_has_two_modes():
    z = np.linspace(-9, 9, 1801)
    dens = BIMODAL.posterior_density([-1.0], z)
    assert dens[np.argmin(abs(z - 1))] > 10 * dens[np.argmin(abs(z))]
    assert dens[np.argmin(abs(z + 1))] == pytest.approx(dens[np.argmin(abs(z - 1))], rel=1e-9)
    assert np.trapezoid(dens, z) == pytest.approx(1.0, abs=1e-6)


def test_bernoulli_log_likelihood_is_minus_bce():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(0, 4, (6, 5)))
    x = torch.tensor(rng.integers(0, 2, (6, 5)).astype(float))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    assert torch.allclose(bernoulli_log_likelihood(x, logits), -bce, atol=1e-12)
    as_numpy = bernoulli_log_likelihood(x.numpy(), logits.numpy())
    assert np.allclose(as_numpy, -bce.numpy(), atol=1e-12)
    # extreme logits stay finite
    assert np.isfinite(bernoulli_log_likelihood(np.array([1.0, 0.0]), np.array([-800.0, 800.0])))


def test_ring_map_puts_points_on_a_ring():
    z = np.random.default_rng(0).standard_normal((1000, 2))
    r = np.linalg.norm(ring_map(z), axis=1)
    assert np.allclose(r, 1 + np.linalg.norm(z, axis=1) / 10)
    with pytest.raises(ValueError, match="origin"):
        ring_map([[0.0, 0.0]])


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="noise_std"):
        LinearGaussianModel([[1.0]], [0.0], 0.0)
    with pytest.raises(ValueError, match="noise_std"):
        NonlinearModel1D([1.0], [0.0], [[1.0]], [0.0], noise_std=-1.0)
    with pytest.raises(ValueError, match="b must have shape"):
        LinearGaussianModel([[1.0], [2.0]], [0.0], 1.0)
    m = _lg(0)
    with pytest.raises(ValueError, match="x must have shape"):
        m.log_marginal([1.0, 2.0])
    with pytest.raises(ValueError, match="z must have shape"):
        m.log_likelihood([0.0, 0.0, 0.0], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="Gaussian of dimension"):
        m.kl_to_prior(Gaussian.diagonal([0.0], [1.0]))
    with pytest.raises(ValueError, match="0s and 1s"):
        BERNOULLI.log_marginal([0.5, 0.0, 1.0])
    with pytest.raises(ValueError, match="likelihood"):
        NonlinearModel1D([1.0], [0.0], [[1.0]], [0.0], likelihood="poisson")
    with pytest.raises(ValueError, match="weights must all be > 0"):
        GaussianMixtureModel([1.0, 0.0], [[0.0], [1.0]], [[[1.0]], [[1.0]]])
    with pytest.raises(ValueError, match="non-positive variance"):
        GaussianMixtureModel([0.5, 0.5], [[0.0], [1.0]], [[[1.0]], [[0.0]]])
    with pytest.raises(ValueError, match="covs"):
        GaussianMixtureModel([0.5, 0.5], [[0.0], [1.0]], [[[1.0]]])


# Before: integer tensors cast the model's parameters to integers (W = 0.5 became 0), x
# outside [0, 1] and NaN gave a Bernoulli "log-likelihood", torch broadcast (3,) against
# (3, 1), empty W or V built a model, a (n, 3) z was mapped "to a ring", and a far-away x made
# the quadrature index an empty array.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: LinearGaussianModel([[0.5]], [0.0], 1.0).decoder_mean(torch.tensor([[1]])),
         TypeError, "z must be a floating-point tensor"),
        (lambda: bernoulli_log_likelihood(np.array([5.0]), np.array([0.0])), ValueError,
         r"x must hold values in \[0, 1\]"),
        (lambda: bernoulli_log_likelihood(torch.tensor([-1.0]), torch.tensor([0.0])), ValueError,
         r"x must hold values in \[0, 1\]"),
        (lambda: bernoulli_log_likelihood(np.array([np.nan]), np.array([0.0])), ValueError,
         "x contains a non-finite value"),
        (lambda: bernoulli_log_likelihood(np.array([1.0]), np.array([np.inf])), ValueError,
         "logits contains a non-finite value"),
        (lambda: bernoulli_log_likelihood(torch.tensor([1.0, 0.0, 1.0]),
                                          torch.tensor([[0.0], [1.0], [2.0]])), ValueError,
         "must share their last dimension"),
        (lambda: bernoulli_log_likelihood(torch.tensor([1]), torch.tensor([2])), TypeError,
         "logits must be a floating-point tensor"),
        (lambda: ring_map(np.ones((2, 3))), ValueError, r"shape \(n, 2\)"),
        (lambda: LinearGaussianModel(np.zeros((1, 0)), [0.0], 1.0), ValueError, "D, d >= 1"),
        (lambda: LinearGaussianModel(np.zeros((0, 1)), np.zeros(0), 1.0), ValueError,
         "D, d >= 1"),
        (lambda: NonlinearModel1D([], [], np.zeros((1, 0)), [0.0]), ValueError, "H >= 1"),
        (lambda: NonlinearModel1D([1.0], [0.0], np.zeros((0, 1)), np.zeros(0)), ValueError,
         "D >= 1"),
    ],
)
def test_wrong_types_ranges_and_empty_models_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_log_marginal_of_a_far_away_x_is_a_number_or_a_clear_error():
    model = NonlinearModel1D([1.0], [0.0], [[1.0]], [0.0])
    # ln p(x, z) ~ -5e299: max - 60 rounds to max and the grid kept no point (IndexError).
    assert model.log_marginal([1e150]) == pytest.approx(-0.5 * 1e300, rel=1e-12)
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="-inf in float64"):
        model.log_marginal([1e300])
