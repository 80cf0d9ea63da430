"""vaelab.vae: shapes, the loss against a by-hand computation, the reparameterization, bad input."""

import math

import numpy as np
import pytest
import torch
from helpers import D, LinearVAE, binary
from torch import nn

from vaelab import collapse, evaluation, inference_gaps, latent_space, prior_sampling
from vaelab import kl as kl_module
from vaelab.decoder_likelihoods import Bernoulli, FixedVarianceGaussian, LearnedVarianceGaussian
from vaelab.distributions import bernoulli_log_density
from vaelab.evaluation import evaluate, iw_log_likelihood
from vaelab.latent_space import sample_prior
from vaelab.training import NonFiniteLossError, train
from vaelab.vae import VAE, LossTerms, NonFiniteError, check_model, reparameterize, vae_loss


def small_model(**kw):
    torch.manual_seed(0)
    return VAE(**{"latent_dim": 3, "hidden": (16, 8), "input_dim": 10, **kw})


def test_shapes_of_encode_decode_forward():
    model = small_model()
    x = torch.rand(4, 10)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 3)
    assert model.decode(mu).shape == (4, 10)
    logits, mu2, logvar2 = model(x)
    assert logits.shape == (4, 10)
    assert torch.equal(mu, mu2) and torch.equal(logvar, logvar2)


def test_default_architecture_is_784_400_20():
    model = VAE()
    sizes = [(m.in_features, m.out_features) for m in model.modules()
             if isinstance(m, torch.nn.Linear)]
    assert sizes == [(784, 400), (400, 40), (20, 400), (400, 784)]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_activation_choice(activation):
    model = small_model(activation=activation)
    kinds = {type(m).__name__ for m in model.modules()}
    assert ("ReLU" in kinds) == (activation == "relu")
    assert ("Tanh" in kinds) == (activation == "tanh")


def test_no_hidden_layer_is_allowed():
    model = VAE(latent_dim=2, hidden=(), input_dim=5)
    assert model(torch.rand(3, 5))[0].shape == (3, 5)


def test_reparameterize_formula_and_gradients():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[math.log(4.0), 0.0]], requires_grad=True)
    eps = torch.tensor([[1.0, -2.0]])
    z = reparameterize(mu, logvar, eps)
    assert torch.allclose(z, torch.tensor([[0.5 + 2.0, -1.0 - 2.0]]))
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(1, 2))
    # dz/dlogvar = 0.5 * sigma * eps
    assert torch.allclose(logvar.grad, torch.tensor([[0.5 * 2.0 * 1.0, 0.5 * 1.0 * -2.0]]))


def test_reparameterize_samples_have_the_right_moments():
    torch.manual_seed(1)
    mu = torch.full((200_000, 1), 1.5)
    logvar = torch.full((200_000, 1), math.log(0.25))
    z = reparameterize(mu, logvar)
    assert abs(z.mean().item() - 1.5) < 0.01
    assert abs(z.std().item() - 0.5) < 0.01


def test_gradient_reaches_encoder_through_the_sample():
    model = small_model()
    logits, mu, logvar = model(torch.rand(6, 10))
    terms = vae_loss(logits, (torch.rand(6, 10) < 0.5).float(), mu, logvar)
    terms.loss.backward()
    first = model.encoder[0].weight.grad
    assert first is not None and first.abs().sum() > 0


def test_loss_terms_match_a_manual_computation():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 6, generator=gen)
    x = (torch.rand(4, 6, generator=gen) < 0.5).float()
    mu, logvar = torch.randn(4, 2, generator=gen), torch.randn(4, 2, generator=gen)
    p = torch.sigmoid(logits)
    recon = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=1)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)
    terms = vae_loss(logits, x, mu, logvar)
    assert isinstance(terms, LossTerms)
    assert torch.allclose(terms.recon, recon, atol=1e-5)
    assert torch.allclose(terms.kl, kl, atol=1e-5)
    assert torch.allclose(terms.loss, (recon + kl).mean(), atol=1e-5)
    weighted = vae_loss(logits, x, mu, logvar, kl_weight=0.25)
    assert torch.allclose(weighted.loss, (recon + 0.25 * kl).mean(), atol=1e-5)
    assert torch.allclose(weighted.kl, kl, atol=1e-5)  # the reported KL is unweighted


def test_loss_uses_the_package_kl(monkeypatch):
    calls = []
    real = kl_module.gaussian_kl_standard_normal

    def spy(mu, logvar):
        calls.append(mu.shape)
        return real(mu, logvar)

    monkeypatch.setattr("vaelab.vae.gaussian_kl_standard_normal", spy)
    vae_loss(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 4), torch.zeros(2, 4))
    assert calls == [(2, 4)]


def test_free_bits_floor_the_per_dimension_kl_in_the_loss_only():
    logits, x = torch.zeros(3, 4), torch.ones(3, 4)
    mu = torch.tensor([[0.1, 3.0]] * 3)
    logvar = torch.zeros(3, 2)
    plain = vae_loss(logits, x, mu, logvar)
    floored = vae_loss(logits, x, mu, logvar, free_bits=1.0)
    # dimension 0 has KL 0.005 < 1 (floored to 1), dimension 1 has 4.5 (kept)
    assert torch.allclose(floored.kl, plain.kl)
    assert torch.allclose(floored.loss, plain.recon.mean() + 1.0 + 4.5)
    mu.requires_grad_(True)
    vae_loss(logits, x, mu, logvar, free_bits=1.0).loss.backward()
    assert mu.grad[:, 0].abs().sum() == 0 and mu.grad[:, 1].abs().sum() > 0


def test_init_output_bias_makes_the_untrained_decoder_output_the_mean():
    model = small_model()
    mean = torch.linspace(0.0, 1.0, 10)
    model.init_output_bias(mean)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.zero_()
        model.init_output_bias(mean)
        probs = torch.sigmoid(model.decode(torch.zeros(1, 3)))[0]
    assert torch.allclose(probs, mean.clamp(1e-3, 1 - 1e-3), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": 2.5}, "latent_dim"),
        ({"hidden": (16, 0)}, "hidden"),
        ({"input_dim": -1}, "input_dim"),
        ({"activation": "gelu"}, "activation"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(**kwargs)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(4, 10, dtype=torch.uint8), "float"),
        (torch.zeros(4, 9), r"\(B, 10\)"),
        (torch.zeros(4, 2, 5), "flatten"),
        ([[0.0] * 10], "torch.Tensor"),
    ],
)
def test_bad_model_inputs(x, match):
    with pytest.raises(ValueError, match=match):
        small_model()(x)


def test_bad_latent_into_decode():
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        small_model().decode(torch.zeros(2, 4))


def test_bad_loss_inputs():
    ok = torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 4), torch.zeros(2, 4)
    with pytest.raises(ValueError, match="does not fit x"):
        vae_loss(torch.zeros(2, 4), *ok[1:])
    with pytest.raises(ValueError, match="float"):
        vae_loss(ok[0], torch.ones(2, 3, dtype=torch.int64), *ok[2:])
    with pytest.raises(ValueError, match="mu and logvar"):
        vae_loss(*ok[:2], torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="mu and logvar"):
        vae_loss(*ok[:2], torch.zeros(3, 4), torch.zeros(3, 4))


def test_bad_reparameterize_inputs():
    with pytest.raises(ValueError, match="must match"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="eps"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 3))


def test_bad_mean_image():
    with pytest.raises(ValueError, match="10 values"):
        small_model().init_output_bias(torch.zeros(9))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        small_model().init_output_bias(torch.full((10,), 2.0))


def test_recon_weight_scales_only_the_reconstruction_in_the_loss():
    gen = torch.Generator().manual_seed(4)
    logits, x = torch.randn(5, 8, generator=gen), (torch.rand(5, 8, generator=gen) < 0.5).float()
    mu, logvar = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    full = vae_loss(logits, x, mu, logvar)
    for free_bits in (0.0, 0.2):
        kl_only = vae_loss(logits, x, mu, logvar, free_bits=free_bits, recon_weight=0.0)
        half = vae_loss(logits, x, mu, logvar, free_bits=free_bits, recon_weight=0.5)
        torch.testing.assert_close(kl_only.recon, full.recon)  # reported terms unchanged
        torch.testing.assert_close(half.loss - kl_only.loss, 0.5 * full.recon.mean())
    torch.testing.assert_close(vae_loss(logits, x, mu, logvar, recon_weight=0.0).loss,
                               full.kl.mean())


LOSS_OK = (torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 4), torch.zeros(2, 4))


@pytest.mark.parametrize("kwargs, match", [
    ({"kl_weight": -1.0}, "kl_weight"),
    ({"kl_weight": float("nan")}, "kl_weight"),
    ({"free_bits": float("nan")}, "free_bits"),
    ({"free_bits": float("inf")}, "free_bits"),
    ({"free_bits": -0.5}, "free_bits"),
    ({"recon_weight": -1.0}, "recon_weight"),
])
def test_loss_weights_must_be_finite_and_non_negative(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vae_loss(*LOSS_OK, **kwargs)


def test_grey_levels_as_0_to_255_floats_or_nan_pixels_are_refused():
    images = torch.tensor([[0.0, 128.0, 255.0], [3.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match=r"\[0, 1\].*255"):
        vae_loss(LOSS_OK[0], images, *LOSS_OK[2:])
    nan_pixel = torch.tensor([[0.0, float("nan"), 1.0], [1.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        vae_loss(LOSS_OK[0], nan_pixel, *LOSS_OK[2:])


@pytest.mark.parametrize("hidden", [400, "400", None])
def test_hidden_must_be_a_sequence_of_sizes(hidden):
    with pytest.raises(ValueError, match=r"hidden must be a sequence of layer sizes such as"):
        VAE(hidden=hidden)


def test_encoder_and_decoder_modules_and_a_likelihood_can_be_passed():
    from torch import nn

    from vaelab.decoder_likelihoods import LearnedVarianceGaussian

    enc, dec = nn.Linear(6, 4), nn.Linear(2, 12)
    model = VAE(latent_dim=2, input_dim=6, encoder=enc, decoder=dec,
                likelihood=LearnedVarianceGaussian())
    assert model.encoder is enc and model.decoder is dec
    mu, logvar = model.encode(torch.zeros(3, 6))
    assert mu.shape == logvar.shape == (3, 2) and model.decode(mu).shape == (3, 12)
    assert "LearnedVarianceGaussian" in repr(model)
    with pytest.raises(TypeError, match="encoder must be"):
        VAE(encoder="conv")
    with pytest.raises(ValueError, match="init_output_bias needs a Bernoulli"):
        model.init_output_bias(torch.zeros(6))
    with pytest.raises(TypeError, match="likelihood must be"):
        VAE(likelihood="gaussian")


def test_the_loss_under_a_gaussian_likelihood_is_its_negative_log_density():
    from vaelab.decoder_likelihoods import FixedVarianceGaussian

    x, mean = torch.randn(4, 3), torch.randn(4, 3)
    mu, logvar = torch.zeros(4, 2), torch.zeros(4, 2)
    terms = vae_loss(mean, x, mu, logvar, likelihood=FixedVarianceGaussian(0.0))
    expected = 0.5 * (x - mean).pow(2).sum(1) + 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(terms.recon, expected)
    with pytest.raises(ValueError, match="NaN or infinite"):
        vae_loss(mean, x.masked_fill(x > 0, math.inf), mu, logvar,
                 likelihood=FixedVarianceGaussian(0.0))


# ---------------------------------------------------------------- real-valued data (notebook 05)

def gaussian_vae(data_dim=2, latent_dim=2, likelihood=None) -> VAE:
    """Notebook 05's real-valued VAE: the same VAE, with a Gaussian likelihood."""
    return VAE(latent_dim, (64, 64), input_dim=data_dim, activation="tanh",
               likelihood=likelihood or LearnedVarianceGaussian())


def test_a_learned_variance_decoder_starts_at_its_initial_log_variance():
    learned = gaussian_vae(likelihood=LearnedVarianceGaussian(init_logvar=math.log(0.01)))
    params = learned.decode(torch.randn(4, 2))
    assert params.shape == (4, 4)
    torch.testing.assert_close(params[:, 2:], torch.full((4, 2), math.log(0.01)))


def test_learned_variance_follows_heteroscedastic_noise():
    torch.manual_seed(0)
    model = gaussian_vae(likelihood=LearnedVarianceGaussian(init_logvar=math.log(0.01)))
    rng = np.random.default_rng(0)
    data = torch.as_tensor(rng.normal(size=(512, 2)) * np.array([0.1, 1.0]), dtype=torch.float32)
    train(model, data, epochs=60, batch_size=128, lr=1e-2, progress=False)
    with torch.no_grad():
        logvar_x = model.decode(torch.randn(256, 2))[:, 2:]
    assert logvar_x[:, 1].mean() > logvar_x[:, 0].mean() + 1.0


def test_training_raises_the_held_out_likelihood_and_iw_beats_the_elbo():
    rng = np.random.default_rng(1)
    train_x = torch.as_tensor(rng.normal(size=(1000, 2)), dtype=torch.float32)
    test_x = torch.as_tensor(rng.normal(size=(200, 2)), dtype=torch.float32)
    torch.manual_seed(0)
    model = gaussian_vae()
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
    means, draws = sample_prior(gaussian_vae(data_dim=3, latent_dim=1), 11, seed=0)
    assert means.shape == draws.shape == (11, 3) and torch.isfinite(draws).all()


@pytest.mark.parametrize("call, match", [
    (lambda: FixedVarianceGaussian(logvar=float("nan")), "finite"),
    (lambda: train(gaussian_vae(), torch.zeros(5, 3), epochs=1, progress=False),
     r"shape \(N, 2\)"),
    (lambda: train(gaussian_vae(), torch.full((5, 2), math.inf), epochs=1, progress=False),
     "NaN or infinite"),
    (lambda: iw_log_likelihood(gaussian_vae(), torch.zeros(5, 2), k=0), "k"),
])
def test_bad_input_to_a_gaussian_vae_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------ what a student's model returns, checked once

class PerPixelBernoulli(Bernoulli):
    """A likelihood whose log_prob forgets to sum over the pixels: (B, D) instead of (B,)."""

    def log_prob(self, x, params):
        return bernoulli_log_density(x, params)


class ThreeOutputs(LinearVAE):
    def encode(self, x):
        return self.enc(x).chunk(3, dim=1)


class ImageDecoder(LinearVAE):
    def decode(self, z):
        return self.dec(z).view(-1, 1, 4, 4)  # a conv decoder's (B, 1, H, W), not flattened


class IntegerDecoder(LinearVAE):
    def decode(self, z):
        return self.dec(z).round().long()


def mixed_dtypes():
    model = LinearVAE()
    model.dec.double()
    return model


BROKEN = {  # model, error, what the one message must say (naming the output and the data)
    "log_prob (B, D)": (lambda: LinearVAE(PerPixelBernoulli()), ValueError,
                        r"log_prob\(x, params\) must return one log-density per image, shape "
                        r"\(2,\) for data of shape \(2, 16\); it returned \(2, 16\)"),
    "Gaussian decode (B, 1)": (lambda: LinearVAE(FixedVarianceGaussian(), dec_out=1), ValueError,
                               r"decode\(z\) returned shape \(2, 1\) for data of shape \(2, 16\): "
                               r"FixedVarianceGaussian.* needs \(B, 16\)"),
    "conv decode (B, 1, 4, 4)": (ImageDecoder, ValueError,
                                 r"decode\(z\) returned shape \(2, 1, 4, 4\) for data of shape "
                                 r"\(2, 16\).*nn\.Flatten"),
    "Bernoulli decode (B, D / 2)": (lambda: LinearVAE(dec_out=D // 2), ValueError,
                                    r"decode\(z\) returned shape \(2, 8\) for data of shape "
                                    r"\(2, 16\): Bernoulli\(\) needs \(B, 16\)"),
    "learned variance decode (B, D)": (lambda: LinearVAE(LearnedVarianceGaussian(), dec_out=D),
                                       ValueError, r"returned shape \(2, 16\).* needs \(B, 32\)"),
    "encode returns 3 tensors": (lambda: ThreeOutputs(enc_out=6), ValueError,
                                 r"encode\(x\) must return \(mu, logvar\).*3 values"),
    "encode mu, logvar of unequal shape": (lambda: LinearVAE(enc_out=5), ValueError,
                                           r"equal shape \(B, d\).*mu \(2, 3\) and logvar "
                                           r"\(2, 2\)"),
    "decode returns integers": (IntegerDecoder, TypeError, r"decode\(z\).* torch\.int64"),
    "encoder float32, decoder float64": (mixed_dtypes, TypeError,
                                         r"mix torch\.float32 \(enc\.bias\) and torch\.float64 "
                                         r"\(dec\.bias\).*model\.float\(\)"),
    "float16": (lambda: LinearVAE().half(), TypeError, r"torch\.float16.*model\.float\(\)"),
}

CALLS = {
    "train": lambda m, x: train(m, x, epochs=1, progress=False),
    "train with free bits": lambda m, x: train(m, x, epochs=1, free_bits=0.5, progress=False),
    "evaluate": lambda m, x: evaluation.evaluate(m, x),
    "iw_log_likelihood": lambda m, x: evaluation.iw_log_likelihood(m, x, k=3),
    "log_importance_weights": lambda m, x: evaluation.log_importance_weights(m, x, k=3),
    "latent_usage": lambda m, x: collapse.latent_usage(m, x),
}


def data_for(model):
    return binary(8) if model.likelihood.binary else torch.rand(8, D)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("case", BROKEN)
def test_what_a_students_model_returns_is_checked_before_any_work_in_one_message(case, call):
    make, error, match = BROKEN[case]
    model = make()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(error, match=match):
        CALLS[call](model, data_for(model))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_check_is_silent_for_good_models_and_leaves_mode_and_random_state_alone():
    model = LinearVAE().train()
    torch.manual_seed(5)
    assert check_model(model, binary(4)) is model
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3)) and model.training
    check_model(VAE(latent_dim=2, hidden=(8,), input_dim=D, likelihood=LearnedVarianceGaussian()),
                torch.rand(3, D))


def test_nan_weights_are_an_error_like_trainings_not_a_nan_score():
    model = LinearVAE()
    with torch.no_grad():
        model.dec.weight[0, 0] = float("nan")
    for call in ("evaluate", "iw_log_likelihood", "log_importance_weights"):
        with pytest.raises(NonFiniteError, match=r"NaN or infinite values \(in dec\.weight\)"):
            CALLS[call](model, binary(8))
    with pytest.raises(NonFiniteError, match=r"dec\.weight"):
        evaluation.iw_bound_curve(model, binary(8), [1, 2])
    assert issubclass(NonFiniteLossError, NonFiniteError)  # one except clause catches both


def test_a_score_that_overflows_past_the_first_images_is_an_error_not_a_number():
    model = LinearVAE(FixedVarianceGaussian())
    x = torch.rand(8, D)
    x[5] = 1e30  # finite data whose squared error overflows float32
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        evaluation.evaluate(model, x)
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        evaluation.iw_log_likelihood(model, x, k=2)


# ------------------------------------------------ every entry that takes a model keeps its mode

def dropout_model(latent_dim=2):
    """A VAE with dropout in its encoder and decoder: outputs differ between train and eval."""
    torch.manual_seed(0)
    model = VAE(latent_dim=latent_dim, hidden=(12,), input_dim=D)
    model.encoder.insert(2, nn.Dropout(0.5))
    model.decoder.insert(2, nn.Dropout(0.5))
    return model


def local_q(m, x):
    with torch.no_grad():
        return [t.detach() for t in m.eval().encode(x)]


ENTRIES = {
    "evaluate": lambda m, x: evaluation.evaluate(m, x),
    "iw_log_likelihood": lambda m, x: evaluation.iw_log_likelihood(m, x, k=3),
    "log_importance_weights": lambda m, x: evaluation.log_importance_weights(m, x, k=3),
    "iw_bound_curve": lambda m, x: evaluation.iw_bound_curve(m, x, [1, 3]),
    "latent_usage": lambda m, x: collapse.latent_usage(m, x),
    "reconstruction_spread": lambda m, x: collapse.reconstruction_spread(m, x),
    "optimise_local_posteriors": lambda m, x: inference_gaps.optimise_local_posteriors(
        m, x, *local_q(dropout_model(), x), steps=2),
    "inference_gaps": lambda m, x: inference_gaps.inference_gaps(
        m, x, *local_q(dropout_model(), x), k=3),
    "reconstruct": lambda m, x: latent_space.reconstruct(m, x),
    "encode_means": lambda m, x: latent_space.encode_means(m, x),
    "sample_prior": lambda m, x: latent_space.sample_prior(m, 3),
    "decode_grid": lambda m, x: latent_space.decode_grid(m, n=3),
    "decode_point": lambda m, x: latent_space.decode_point(m, (0.5, -1.0)),
    "interpolate": lambda m, x: latent_space.interpolate(m, x[0], x[1], steps=3),
    "sample_log_weights": lambda m, x: prior_sampling.sample_log_weights(m, x, 4, "prior"),
}


def same(a, b) -> bool:
    """Equal results, whatever their structure (tensors, arrays, tuples, dicts, numbers)."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_every_entry_that_takes_a_model_uses_eval_mode_and_returns_it_as_it_came(entry, mode):
    model, x = dropout_model(), binary(6)
    getattr(model, mode)()
    first = ENTRIES[entry](model, x)
    assert all(m.training == (mode == "train") for m in model.modules())
    assert same(first, ENTRIES[entry](model, x))  # no dropout noise: scored in eval mode
