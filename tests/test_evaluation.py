"""vaelab.evaluation: negative ELBO, importance weights, IS log-likelihood, bound curves."""

import math

import pytest
import torch
from helpers import binary, small_model, synthetic_images

from vaelab import evaluation
from vaelab.evaluation import evaluate, iw_bound_curve, iw_log_likelihood, log_importance_weights
from vaelab.training import train
from vaelab.vae import vae_loss


def test_evaluate_matches_a_direct_computation():
    model = small_model()
    x = binary()
    result = evaluate(model, x, batch_size=20, seed=3)
    assert set(result) == {"neg_elbo", "recon", "kl"}
    assert math.isclose(result["neg_elbo"], result["recon"] + result["kl"], rel_tol=1e-6)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        kl = vae_loss(model.decode(mu), x, mu, logvar).kl.mean().item()
    assert math.isclose(result["kl"], kl, rel_tol=1e-5)  # the KL needs no sample
    assert evaluate(model, x, batch_size=20, seed=3) == result
    assert evaluate(model, x, batch_size=20, seed=4) != result


def test_negative_elbo_averages_the_reconstruction_over_samples():
    model, x = small_model(), binary(10)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        gen = torch.Generator().manual_seed(0)
        recon, kl = evaluation.negative_elbo_terms(model, x, mu, logvar, samples=4, generator=gen)
        gen = torch.Generator().manual_seed(0)
        eps = torch.randn((40, mu.shape[1]), generator=gen)
        z = mu.repeat(4, 1) + torch.exp(0.5 * logvar.repeat(4, 1)) * eps
        terms = vae_loss(model.decode(z), x.repeat(4, 1), mu.repeat(4, 1), logvar.repeat(4, 1))
    torch.testing.assert_close(recon, terms.recon.view(4, 10).mean(dim=0))
    torch.testing.assert_close(kl, terms.kl[:10])


def test_iw_bound_is_above_the_elbo_and_k1_is_the_elbo_in_expectation():
    model = small_model()
    train(model, synthetic_images(), epochs=3, batch_size=32, lr=1e-2, progress=False)
    x = binary(200)
    elbo = -evaluate(model, x)["neg_elbo"]
    k1 = torch.stack([iw_log_likelihood(model, x, k=1, seed=s) for s in range(20)]).mean()
    assert abs(k1.item() - elbo) < 0.5
    iw = iw_log_likelihood(model, x, k=200)
    assert iw.shape == (200,)
    assert iw.mean().item() > elbo and iw.mean().item() > k1.item()
    assert (iw <= 0).all()  # ln p(x) of binary data is <= 0


def test_memory_is_bounded_by_the_row_budget_whatever_k(monkeypatch):
    model, x = small_model(), binary(30)
    rows = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda z: rows.append(z.shape[0]) or decode(z))
    estimate = iw_log_likelihood(model, x, k=5000, batch_size=10, max_rows=64)
    assert max(rows) <= 64 and sum(rows[1:]) == 30 * 5000  # rows[0]: the check of 2 images
    assert estimate.shape == (30,) and torch.isfinite(estimate).all()
    rows.clear()
    iw_log_likelihood(model, x, k=3, batch_size=100, max_rows=8)  # images split as well
    assert max(rows) <= 8


def test_the_row_budget_changes_only_the_draws():
    model, x = small_model(), binary(30)
    a = iw_log_likelihood(model, x, k=4000, batch_size=10, max_rows=100_000)
    b = iw_log_likelihood(model, x, k=4000, batch_size=10, max_rows=70)
    torch.testing.assert_close(a, b, atol=0.05, rtol=0)


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "5"])
def test_iw_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k"):
        iw_log_likelihood(small_model(), binary(4), k=k)


def test_numpy_integers_are_integers():
    import numpy as np

    model, x = small_model(), binary(4)
    assert iw_log_likelihood(model, x, k=np.int64(5)).shape == (4,)
    assert torch.equal(iw_log_likelihood(model, x, k=5, seed=np.int64(2), batch_size=np.int64(3)),
                       iw_log_likelihood(model, x, k=5, seed=2, batch_size=3))
    assert evaluate(model, x, seed=np.int64(1)) == evaluate(model, x, seed=1)
    assert iw_bound_curve(model, x, np.array([1, 5])) == iw_bound_curve(model, x, [1, 5])
    with pytest.raises(ValueError, match="seed"):
        evaluate(model, x, seed=True)


def test_binary_likelihoods_refuse_grey_or_uint8_images():
    with pytest.raises(ValueError, match="float"):
        evaluate(small_model(), synthetic_images(4))
    with pytest.raises(ValueError, match="binary"):
        evaluate(small_model(), synthetic_images(4).float() / 255)
    with pytest.raises(ValueError, match="binarize"):
        iw_log_likelihood(small_model(), synthetic_images(4).float() / 255, k=2)


def test_log_importance_weights_are_the_draws_behind_iw_log_likelihood():
    model, x = small_model(), binary()
    log_w = log_importance_weights(model, x, k=40, batch_size=16, seed=3)
    assert log_w.shape == (x.shape[0], 40)
    expected = iw_log_likelihood(model, x, k=40, batch_size=16, seed=3)
    torch.testing.assert_close(torch.logsumexp(log_w, 1) - math.log(40), expected)


def test_a_proposal_replaces_the_encoder_and_the_encoder_as_proposal_changes_nothing():
    model, x = small_model(), binary(n=20)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    same = iw_log_likelihood(model, x, k=30, seed=1, proposal=(mu, logvar))
    torch.testing.assert_close(same, iw_log_likelihood(model, x, k=30, seed=1))
    far = iw_log_likelihood(model, x, k=30, seed=1, proposal=(mu + 6.0, logvar - 4.0))
    assert torch.all(far < same)


@pytest.mark.parametrize("proposal, match", [
    ((torch.zeros(20, 2),), "pair"),
    ((torch.zeros(19, 2), torch.zeros(20, 2)), r"mu and logvar must both be \(N, d\)"),
    ((torch.zeros(20, 2), torch.full((20, 2), float("nan"))), "non-finite"),
])
def test_bad_proposals_are_refused(proposal, match):
    with pytest.raises(ValueError, match=match):
        iw_log_likelihood(small_model(), binary(n=20), k=3, proposal=proposal)


def test_iw_bound_curve_is_nested_and_ends_at_iw_log_likelihood():
    model, x = small_model(), binary(40)
    curve = iw_bound_curve(model, x, [1, 5, 50], batch_size=20, seed=2)
    assert list(curve) == [1, 5, 50]
    full = iw_log_likelihood(model, x, k=50, batch_size=20, seed=2).mean().item()
    assert math.isclose(curve[50], full, rel_tol=1e-5)
    log_w = log_importance_weights(model, x, k=50, batch_size=20, seed=2)
    five = (torch.logsumexp(log_w[:, :5], 1) - math.log(5)).mean().item()
    assert math.isclose(curve[5], five, rel_tol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        iw_bound_curve(model, x, [])
    with pytest.raises(ValueError, match="k"):
        iw_bound_curve(model, x, [0, 3])
