"""vaelab.inference_gaps: per-image optimisation of q and the Cremer et al. decomposition."""

import numpy as np
import pytest
import torch

from vaelab.inference_gaps import (
    frozen,
    inference_gaps,
    negative_elbo,
    optimise_local_posteriors,
)
from vaelab.vae import VAE, vae_loss


def setup(n: int = 12):
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden=(16,), input_dim=20).eval()
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(n, 20, generator=gen) < 0.4).float()
    with torch.no_grad():
        mu, logvar = model.encode(x)
    return model, x, mu, logvar


def test_negative_elbo_is_vae_loss_averaged_over_samples():
    model, x, mu, logvar = setup()
    torch.manual_seed(3)
    got = negative_elbo(model, x, mu, logvar, samples=1)
    torch.manual_seed(3)
    eps = torch.randn_like(mu)
    terms = vae_loss(model.decode(mu + torch.exp(0.5 * logvar) * eps), x, mu, logvar)
    torch.testing.assert_close(got, terms.recon + terms.kl)


def test_optimisation_raises_every_elbo_and_leaves_model_and_start_alone():
    model, x, mu0, logvar0 = setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    start = (mu0.clone(), logvar0.clone())
    history = []
    mu, logvar = optimise_local_posteriors(model, x, mu0, logvar0, steps=150, history=history)
    assert len(history) == 150 and history[-1] < history[0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert torch.equal(mu0, start[0]) and torch.equal(logvar0, start[1])
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again
    torch.manual_seed(9)
    with torch.no_grad():
        e0 = -negative_elbo(model, x, mu0, logvar0, samples=4000)
        e1 = -negative_elbo(model, x, mu, logvar, samples=4000)
    assert torch.all(e1 > e0 - 0.05)
    assert (e1 - e0).mean() > 0.1


def test_optimisation_is_seeded_and_leaves_torchs_global_random_state_alone():
    model, x, mu0, logvar0 = setup()
    torch.manual_seed(123)
    first = optimise_local_posteriors(model, x, mu0, logvar0, steps=3, seed=4)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))  # the caller's next draws are unchanged
    again = optimise_local_posteriors(model, x, mu0, logvar0, steps=3, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_gaps_are_non_negative_and_add_up():
    model, x, mu0, logvar0 = setup()
    mu, logvar = optimise_local_posteriors(model, x, mu0, logvar0, steps=200)
    g = inference_gaps(model, x, mu, logvar, k=500)
    for gap in (g.amortization_gap, g.approximation_gap):
        assert gap.mean > -3 * gap.std_error and gap.std_error > 0
    np.testing.assert_allclose(g.log_likelihood.mean - g.encoder_elbo.mean,
                               g.amortization_gap.mean + g.approximation_gap.mean, atol=1e-9)
    assert g.per_image_amortization.shape == (12,)
    np.testing.assert_allclose(g.per_image_amortization.mean(), g.amortization_gap.mean)


def test_with_the_encoder_as_q_star_the_amortization_gap_is_only_noise():
    model, x, mu0, logvar0 = setup()
    g = inference_gaps(model, x, mu0, logvar0, k=400)
    assert abs(g.amortization_gap.mean) < 4 * g.amortization_gap.std_error


def test_frozen_restores_the_flags_even_after_an_error():
    model, *_ = setup()
    model.decoder[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(RuntimeError), frozen(model):
        assert not any(p.requires_grad for p in model.parameters())
        raise RuntimeError("boom")
    assert [p.requires_grad for p in model.parameters()] == flags


@pytest.mark.parametrize("call, match", [
    (lambda m, x, mu, lv: optimise_local_posteriors(m, x, mu[:3], lv), r"mu0 must be .* \(12, 3\)"),
    (lambda m, x, mu, lv: optimise_local_posteriors(m, x[:, :5], mu, lv), r"\(B, 20\)"),
    (lambda m, x, mu, lv: optimise_local_posteriors(m, x.long(), mu, lv), "float tensor"),
    (lambda m, x, mu, lv: optimise_local_posteriors(m, x, mu, lv, steps=0), "steps"),
    (lambda m, x, mu, lv: optimise_local_posteriors(m, x, mu, lv, lr=-1), "lr"),
    (lambda m, x, mu, lv: inference_gaps(m, x, mu, lv, k=1), "k must be >= 2"),
    (lambda m, x, mu, lv: inference_gaps(m, x, mu, lv[:, :2]), "logvar_local must be"),
    (lambda m, x, mu, lv: negative_elbo(m, x, mu, lv, samples=0), "samples"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call(*setup())


def test_something_that_is_not_a_vae_is_refused():
    model, x, mu, lv = setup()
    with pytest.raises(TypeError, match="encode"):
        optimise_local_posteriors("m", x, mu, lv)
