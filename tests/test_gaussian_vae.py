"""vaelab.gaussian_vae: a VAE with a Gaussian likelihood, trained and scored like any other."""

import math

import numpy as np
import pytest
import torch

from vaelab.decoder_likelihoods import FixedVarianceGaussian, LearnedVarianceGaussian
from vaelab.evaluation import evaluate, iw_log_likelihood
from vaelab.gaussian_vae import GaussianVAE, as_float_data
from vaelab.latent_space import sample_prior
from vaelab.training import train


def test_the_constructor_configures_the_likelihood():
    fixed = GaussianVAE(learned_variance=False, fixed_logvar=-1.0)
    assert fixed.likelihood == FixedVarianceGaussian(logvar=-1.0)
    learned = GaussianVAE(learned_variance=True, fixed_logvar=math.log(0.01))
    assert learned.likelihood == LearnedVarianceGaussian(init_logvar=math.log(0.01))
    params = learned.decode(torch.randn(4, 2))
    assert params.shape == (4, 4)
    torch.testing.assert_close(params[:, 2:], torch.full((4, 2), math.log(0.01)))


def test_learned_variance_follows_heteroscedastic_noise():
    torch.manual_seed(0)
    model = GaussianVAE(learned_variance=True, fixed_logvar=math.log(0.01))
    rng = np.random.default_rng(0)
    data = as_float_data(rng.normal(size=(512, 2)) * np.array([0.1, 1.0]))
    train(model, data, epochs=60, batch_size=128, lr=1e-2, progress=False)
    with torch.no_grad():
        logvar_x = model.decode(torch.randn(256, 2))[:, 2:]
    assert logvar_x[:, 1].mean() > logvar_x[:, 0].mean() + 1.0


def test_training_raises_the_held_out_likelihood_and_iw_beats_the_elbo():
    rng = np.random.default_rng(1)
    train_x = as_float_data(rng.normal(size=(1000, 2)))
    test_x = as_float_data(rng.normal(size=(200, 2)))
    torch.manual_seed(0)
    model = GaussianVAE(learned_variance=True)
    before = iw_log_likelihood(model, test_x, k=50).mean()
    history = train(model, train_x, epochs=60, batch_size=200, lr=1e-2, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    after = iw_log_likelihood(model, test_x, k=200)
    assert after.mean() > before
    # Standard normal data: ln p(x) of the true model is -ln(2 pi) - E||x||^2 / 2 ~ -2.84.
    assert abs(after.mean().item() - (-math.log(2 * math.pi) - 1.0)) < 0.2
    assert after.mean() >= -evaluate(model, test_x)["neg_elbo"] - 0.05


def test_prior_samples_have_the_data_shape():
    torch.manual_seed(0)
    means, draws = sample_prior(GaussianVAE(data_dim=3, latent_dim=1), 11, seed=0)
    assert means.shape == draws.shape == (11, 3) and torch.isfinite(draws).all()


@pytest.mark.parametrize("call, match", [
    (lambda: GaussianVAE(learned_variance="yes"), "True or False"),
    (lambda: GaussianVAE(fixed_logvar=float("nan")), "finite"),
    (lambda: train(GaussianVAE(), torch.zeros(5, 3), epochs=1, progress=False),
     r"shape \(N, 2\)"),
    (lambda: train(GaussianVAE(), torch.full((5, 2), math.inf), epochs=1, progress=False),
     "NaN or infinite"),
    (lambda: iw_log_likelihood(GaussianVAE(), torch.zeros(5, 2), k=0), "k"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
