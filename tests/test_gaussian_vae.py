"""vaelab.gaussian_vae: the Gaussian decoder, its loss, training and the IS log-likelihood."""

import math

import numpy as np
import pytest
import torch

from vaelab.gaussian_vae import (
    GaussianVAE,
    fit_gaussian_vae,
    gaussian_log_density,
    gaussian_vae_loss,
    iw_log_likelihood_gaussian,
)
from vaelab.kl import gaussian_kl_standard_normal


def test_log_density_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    x, mean, logvar = (torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    expected = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_density(x, mean, logvar), expected)


def test_fixed_variance_is_the_mse_loss_plus_a_constant():
    torch.manual_seed(0)
    model = GaussianVAE(learned_variance=False, fixed_logvar=0.0)
    x, z = torch.randn(7, 2), torch.randn(7, 2)
    mean, logvar_x = model.decode_stats(z)
    assert torch.all(logvar_x == 0.0)
    mse_half = 0.5 * (x - mean).pow(2).sum(-1)
    torch.testing.assert_close(-model.log_likelihood(x, z), mse_half + math.log(2 * math.pi))


def test_learned_variance_starts_at_the_fixed_value_and_depends_on_z_after_training():
    torch.manual_seed(0)
    model = GaussianVAE(learned_variance=True, fixed_logvar=math.log(0.01))
    _, logvar_x = model.decode_stats(torch.randn(4, 2))
    torch.testing.assert_close(logvar_x, torch.full_like(logvar_x, math.log(0.01)))
    # Heteroscedastic data: the second column's noise is 10x the first's.
    rng = np.random.default_rng(0)
    data = rng.normal(size=(512, 2)) * np.array([0.1, 1.0])
    fit_gaussian_vae(model, data, steps=300, batch_size=128, lr=1e-2)
    _, logvar_x = model.decode_stats(torch.randn(256, 2))
    assert logvar_x[:, 1].mean() > logvar_x[:, 0].mean() + 1.0


def test_loss_terms_are_recon_and_the_package_kl():
    torch.manual_seed(0)
    model = GaussianVAE()
    x = torch.randn(6, 2)
    torch.manual_seed(1)
    terms = gaussian_vae_loss(model, x)
    mu, logvar = model.encode(x)
    torch.testing.assert_close(terms.kl, gaussian_kl_standard_normal(mu, logvar))
    assert terms.recon.shape == (6,)
    torch.testing.assert_close(terms.loss, (terms.recon + terms.kl).mean())


def test_training_raises_the_held_out_likelihood_and_iw_beats_the_elbo():
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(1000, 2)), rng.normal(size=(200, 2))
    torch.manual_seed(0)
    model = GaussianVAE(learned_variance=True)
    before = iw_log_likelihood_gaussian(model, test_x, k=50).mean()
    losses = fit_gaussian_vae(model, train_x, steps=300, batch_size=200, lr=1e-2)
    assert len(losses) == 300 and np.mean(losses[-20:]) < np.mean(losses[:20])
    torch.manual_seed(2)
    after = iw_log_likelihood_gaussian(model, test_x, k=200)
    assert after.mean() > before
    # Standard normal data: ln p(x) of the true model is -ln(2 pi) - E||x||^2 / 2 ~ -2.84.
    assert abs(after.mean().item() - (-math.log(2 * math.pi) - 1.0)) < 0.2
    with torch.no_grad():
        elbo = -gaussian_vae_loss(model, torch.as_tensor(test_x, dtype=torch.float32)).loss
    assert after.mean() >= elbo - 0.05


def test_iw_with_k1_is_an_elbo_sample_and_batching_only_changes_the_draws():
    torch.manual_seed(0)
    model = GaussianVAE()
    x = torch.randn(30, 2)
    torch.manual_seed(5)
    a = iw_log_likelihood_gaussian(model, x, k=2000, batch_size=7)
    torch.manual_seed(5)
    b = iw_log_likelihood_gaussian(model, x, k=2000, batch_size=30)
    torch.testing.assert_close(a, b, atol=0.05, rtol=0)


def test_samples_have_the_data_shape():
    torch.manual_seed(0)
    out = GaussianVAE(data_dim=3, latent_dim=1).sample(11, torch.Generator().manual_seed(0))
    assert out.shape == (11, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("call, match", [
    (lambda m: GaussianVAE(learned_variance="yes"), "True or False"),
    (lambda m: GaussianVAE(fixed_logvar=float("nan")), "finite"),
    (lambda m: fit_gaussian_vae(m, np.zeros((5, 3)), steps=1), r"shape \(n, 2\)"),
    (lambda m: fit_gaussian_vae(m, np.full((5, 2), np.inf), steps=1), "non-finite"),
    (lambda m: fit_gaussian_vae(m, np.zeros((5, 2)), steps=0), "steps"),
    (lambda m: iw_log_likelihood_gaussian(m, np.zeros((5, 2)), k=0), "k must be"),
    (lambda m: gaussian_log_density(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2)),
     "same shape"),
    (lambda m: m.sample(0), "n must be"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call(GaussianVAE())
