"""vaelab.fastcpu: the accelerator trains only the model it knows, as autograd would."""

import pytest
import torch
from helpers import ConvVAE, D, binary, small_model
from torch import nn

from vaelab import fastcpu
from vaelab.gaussian_vae import GaussianVAE
from vaelab.training import autograd_step
from vaelab.vae import VAE


class OwnDecode(VAE):
    def decode(self, z):
        return super().decode(z) * 2


def conv_encoder_vae():
    return VAE(latent_dim=2, hidden=(12,), input_dim=D, encoder=nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(),
        nn.Linear(32, 4)))


def with_extra_parameter():
    model = small_model()
    model.scale = nn.Parameter(torch.ones(1))
    return model


def frozen_layer():
    model = small_model()
    model.encoder[0].weight.requires_grad_(False)
    return model


@pytest.mark.parametrize("make, reason", [
    (lambda: OwnDecode(latent_dim=2, hidden=(12,), input_dim=D), "not OwnDecode"),
    (lambda: GaussianVAE(), "Bernoulli likelihood"),
    (lambda: GaussianVAE(learned_variance=False), "Bernoulli likelihood"),
    (conv_encoder_vae, "own encoder or decoder"),
    (ConvVAE, "not ConvVAE"),
    (lambda: small_model().double(), "float32 only"),
    (with_extra_parameter, "parameters outside"),
    (frozen_layer, "frozen"),
])
def test_the_accelerator_declines_what_it_does_not_know(make, reason):
    model = make()
    assert reason in fastcpu.unsupported(model)
    with pytest.raises(ValueError, match="cannot train this model"):
        fastcpu.make_step(model, torch.optim.Adam(model.parameters()))


def test_a_replaced_decode_on_the_instance_is_declined():
    model = small_model()
    model.decode = lambda z: z
    assert "replaced on the instance" in fastcpu.unsupported(model)


def test_a_missing_private_operator_is_declined(monkeypatch):
    monkeypatch.setattr(torch, "_fused_adam_", None, raising=False)
    monkeypatch.delattr(torch, "_fused_adam_")
    assert fastcpu.missing_private_ops() == ["torch._fused_adam_"]
    assert "lacks torch._fused_adam_" in fastcpu.unsupported(small_model())


def test_only_a_plain_adam_is_replaced():
    model = small_model()
    with pytest.raises(ValueError, match="plain torch.optim.Adam"):
        fastcpu.make_step(model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="plain torch.optim.Adam"):
        fastcpu.make_step(model, torch.optim.Adam(model.parameters(), weight_decay=0.1))


@pytest.mark.parametrize("kwargs", [{}, {"kl_weight": 0.5, "free_bits": 0.2},
                                    {"recon_weight": 0.0}])
def test_both_steps_give_the_same_losses_over_50_steps_from_the_same_noise(kwargs):
    fast_model, plain_model = small_model(hidden=(24, 12)), small_model(hidden=(24, 12))
    assert fastcpu.unsupported(fast_model) is None
    fast = fastcpu.make_step(fast_model, torch.optim.Adam(fast_model.parameters(), lr=3e-3))
    plain = autograd_step(plain_model, torch.optim.Adam(plain_model.parameters(), lr=3e-3))
    for i in range(50):
        x = binary(32, seed=i)
        torch.manual_seed(i)
        a = fast(x, **kwargs)
        torch.manual_seed(i)
        b = plain(x, **kwargs)
        torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-4, msg=f"step {i}")
    for (name, p), q in zip(fast_model.named_parameters(), plain_model.parameters(),
                            strict=True):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=name)


def test_the_step_follows_the_optimizers_learning_rate():
    model = small_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = fastcpu.make_step(model, opt)
    opt.param_groups[0]["lr"] = 0.0
    before = [p.clone() for p in model.parameters()]
    step(binary(8))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
