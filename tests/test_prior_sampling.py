"""vaelab.prior_sampling: ln p(x) from prior draws against draws from q, ESS, prior mass of q."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from vaelab.evaluation import iw_log_likelihood
from vaelab.prior_sampling import (
    effective_sample_size,
    estimate_curve,
    estimate_table,
    group_spread,
    log_likelihood_estimates,
    prior_mass_of_typical_set,
    sample_log_weights,
)
from vaelab.vae import VAE


def setup(n: int = 3):
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden=(16,), input_dim=12).eval()
    x = (torch.rand(n, 12, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    return model, x


def test_prior_weights_are_the_decoder_likelihood_of_prior_draws():
    model, x = setup()
    log_w = sample_log_weights(model, x, 50, "prior", seed=3)
    assert log_w.shape == (3, 50)
    # the same draws, by hand: eps ~ N(0, I) is z itself when the proposal is the prior
    gen = torch.Generator().manual_seed(3)
    z = torch.randn((50, 3, 2), generator=gen)
    with torch.no_grad():
        by_hand = model.likelihood.log_prob(x.repeat(50, 1), model.decode(z.reshape(150, 2)))
    torch.testing.assert_close(log_w, by_hand.view(50, 3).T, rtol=1e-5, atol=1e-4)


def test_both_samplers_estimate_the_same_log_likelihood():
    model, x = setup()
    prior = log_likelihood_estimates(sample_log_weights(model, x, 20_000, "prior"), 20_000)
    q = log_likelihood_estimates(sample_log_weights(model, x, 20_000, "q"), 20_000)
    for a, b in zip(prior, q, strict=True):
        assert abs(a.mean - b.mean) < 4 * math.hypot(a.std_error, b.std_error) + 1e-3
    reference = iw_log_likelihood(model, x, 20_000)  # the evaluator's own q estimate
    np.testing.assert_allclose(estimate_table(q)[0], reference.double().numpy(), rtol=1e-5)


def test_estimates_use_the_first_k_weights():
    log_w = torch.log(torch.tensor([[1.0, 3.0, 100.0], [2.0, 2.0, 2.0]]))
    est = log_likelihood_estimates(log_w, 2)
    assert est[0].mean == pytest.approx(math.log(2.0)) and est[0].n == 2
    assert est[1].mean == pytest.approx(math.log(2.0)) and est[1].std_error == 0.0
    with pytest.raises(ValueError, match="k must be between"):
        log_likelihood_estimates(log_w, 4)
    with pytest.raises(ValueError, match="sampler"):
        sample_log_weights(*setup(), 5, "posterior")


def test_effective_sample_size_limits():
    equal = torch.zeros(2, 100)
    torch.testing.assert_close(effective_sample_size(equal), torch.full((2,), 100.0,
                                                                        dtype=torch.float64))
    one = torch.full((1, 100), -1000.0)
    one[0, 7] = 0.0
    assert effective_sample_size(one).item() == pytest.approx(1.0)
    lw = torch.randn(1, 50, generator=torch.Generator().manual_seed(0)).double()
    w = lw.exp()
    assert effective_sample_size(lw).item() == pytest.approx((w.sum() ** 2 / (w**2).sum()).item())


def test_group_spread_is_the_std_of_block_estimates():
    lw = torch.randn(2, 30, generator=torch.Generator().manual_seed(2)).double()
    blocks = lw[:, :30].reshape(2, 3, 10).numpy()
    expected = (logsumexp(blocks, axis=2) - math.log(10)).std(axis=1, ddof=1)
    np.testing.assert_allclose(group_spread(lw, 10).numpy(), expected)
    with pytest.raises(ValueError, match="2 groups"):
        group_spread(lw, 16)


def test_prior_mass_of_typical_set():
    d = 3
    q_equals_prior = prior_mass_of_typical_set(torch.zeros(1, d), torch.zeros(1, d), 0.9)[0]
    assert q_equals_prior.mean == pytest.approx(math.log(0.9), abs=0.02)
    # a narrow q far from the origin: P_p(A) ~ vol(A) * p(mu), a closed form to compare with
    mu, logvar = torch.full((1, d), 3.0), torch.full((1, d), 2 * math.log(0.01))
    radius = 0.01 * math.sqrt(6.251388631170325)  # chi2_3 0.9 quantile, scaled by sigma
    log_vol = math.log(4 / 3 * math.pi * radius**3)
    log_p_mu = -0.5 * d * math.log(2 * math.pi) - 0.5 * 9.0 * d
    est = prior_mass_of_typical_set(mu, logvar, 0.9)[0]
    assert est.mean == pytest.approx(log_vol + log_p_mu, abs=0.05)
    with pytest.raises(ValueError, match="coverage"):
        prior_mass_of_typical_set(mu, logvar, 1.0)


def test_estimate_curve_rows_are_images_columns_are_k():
    lw = torch.randn(3, 40, generator=torch.Generator().manual_seed(4)).double()
    curve = estimate_curve(lw, [2, 10, 40])
    assert curve.shape == (3, 3)
    np.testing.assert_allclose(curve[:, 1], logsumexp(lw[:, :10].numpy(), axis=1) - math.log(10))


def test_coverage_is_a_number_numpy_included():
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    as_numpy = prior_mass_of_typical_set(mu, logvar, coverage=np.float64(0.9), samples=50)
    assert as_numpy == prior_mass_of_typical_set(mu, logvar, coverage=0.9, samples=50)
    for bad in ("0.9", True):
        with pytest.raises(TypeError, match="coverage"):
            prior_mass_of_typical_set(mu, logvar, coverage=bad)
