"""vaelab.collapse: KL per dimension, active units, reconstruction spread, the warm-up."""

import pytest
import torch

from vaelab.collapse import latent_usage, reconstruction_spread
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import VAE


def model_with_two_used_dims() -> VAE:
    """A VAE whose encoder mean uses only dimensions 0 and 1 (the others are N(0, 1))."""
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden=(8,), input_dim=6)
    with torch.no_grad():
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.zero_()
        model.encoder[-1].weight[0, :] = 1.0
        model.encoder[-1].weight[1, :] = -0.5
    return model


def test_usage_counts_active_units_and_kl_per_dimension():
    model = model_with_two_used_dims()
    x = torch.rand(50, 6)
    u = latent_usage(model, x, batch_size=7)
    assert u.n_active == 2 and u.active.tolist() == [True, True, False, False]
    mu, logvar = model.encode(x)
    torch.testing.assert_close(u.activity, mu.detach().var(dim=0))
    torch.testing.assert_close(u.kl, gaussian_kl_standard_normal(mu, logvar).mean().item())
    assert torch.all(u.kl_per_dim[2:] == 0)


def test_threshold_decides_what_counts_as_active():
    model = model_with_two_used_dims()
    x = torch.rand(50, 6)
    u = latent_usage(model, x)
    assert latent_usage(model, x, threshold=float(u.activity.max()) * 2).n_active == 0


def test_a_collapsed_model_has_zero_reconstruction_spread():
    model = model_with_two_used_dims()
    x = torch.rand(20, 6)
    assert reconstruction_spread(model, x) > 1e-4
    with torch.no_grad():
        model.encoder[-1].weight.zero_()  # every input now gets q = N(0, I)
    assert reconstruction_spread(model, x) == pytest.approx(0.0, abs=1e-12)
    assert latent_usage(model, x).n_active == 0


@pytest.mark.parametrize("call, match", [
    (lambda m: latent_usage(m, torch.rand(1, 6)), "N >= 2"),
    (lambda m: latent_usage(m, torch.rand(5, 7)), r"\(N, 6\)"),
    (lambda m: latent_usage(m, torch.ones(5, 6, dtype=torch.uint8)), "float tensor"),
    (lambda m: latent_usage(m, torch.rand(5, 6), threshold=0), "threshold"),
    (lambda m: reconstruction_spread(m, torch.rand(5)), r"\(N, 6\)"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call(model_with_two_used_dims())
