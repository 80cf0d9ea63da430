"""vaelab.kl: the closed-form Gaussian KLs against Monte Carlo and torch.distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vaelab.kl import gaussian_kl_diagonal, gaussian_kl_full, gaussian_kl_standard_normal

finite = st.floats(-2.0, 2.0, allow_nan=False)


def _normal(mu, logvar):
    return torch.distributions.Normal(torch.as_tensor(mu, dtype=torch.float64),
                                      torch.exp(0.5 * torch.as_tensor(logvar, dtype=torch.float64)))


def test_standard_normal_kl_known_values_and_shape():
    kl = gaussian_kl_standard_normal(np.zeros((4, 3)), np.zeros((4, 3)))
    assert kl.shape == (4,) and torch.all(kl == 0)
    # d = 1, mu = 1, sigma = 1: 1/2 * 1
    one = gaussian_kl_standard_normal(np.array([1.0]), np.array([0.0])).item()
    assert one == pytest.approx(0.5)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (3, 4), elements=finite), arrays(np.float64, (3, 4), elements=finite))
def test_standard_normal_kl_matches_torch_distributions_and_is_non_negative(mu, logvar):
    ours = gaussian_kl_standard_normal(mu, logvar)
    standard = _normal(0 * mu, 0 * logvar)
    ref = torch.distributions.kl_divergence(_normal(mu, logvar), standard).sum(-1)
    assert torch.allclose(ours, ref, atol=1e-10)
    assert torch.all(ours >= 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("logvar", [1.09231838e-117, -1e-30, 1e-17, -1e-8, 3e-5])
def test_standard_normal_kl_is_not_negative_when_q_is_almost_the_prior(dtype, logvar):
    # found by hypothesis: exp(lv) - 1 - lv rounds to -2e-117 for lv = 1.09e-117
    lv = torch.full((3, 4), logvar, dtype=dtype)
    assert torch.all(gaussian_kl_standard_normal(torch.zeros_like(lv), lv) >= 0)


@settings(max_examples=50, deadline=None)
@given(*(arrays(np.float64, (2, 3), elements=finite) for _ in range(4)))
def test_diagonal_kl_matches_torch_distributions(mq, lq, mp, lp):
    ours = gaussian_kl_diagonal(mq, lq, mp, lp)
    ref = torch.distributions.kl_divergence(_normal(mq, lq), _normal(mp, lp)).sum(-1)
    assert torch.allclose(ours, ref, atol=1e-9)
    assert torch.all(ours >= -1e-12)


def test_diagonal_kl_reduces_to_the_standard_normal_one():
    mu, logvar = np.array([0.3, -1.2]), np.array([0.5, -0.4])
    assert gaussian_kl_diagonal(mu, logvar, np.zeros(2), np.zeros(2)).item() == pytest.approx(
        gaussian_kl_standard_normal(mu, logvar).item(), abs=1e-14)


def _spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + 0.5 * np.eye(d)


@pytest.mark.parametrize("seed", range(5))
def test_full_kl_matches_torch_multivariate_normal(seed):
    rng = np.random.default_rng(seed)
    mq, mp = rng.standard_normal(3), rng.standard_normal(3)
    cq, cp = _spd(rng, 3), _spd(rng, 3)
    ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(torch.tensor(mq), torch.tensor(cq)),
        torch.distributions.MultivariateNormal(torch.tensor(mp), torch.tensor(cp)))
    assert gaussian_kl_full(mq, cq, mp, cp).item() == pytest.approx(ref.item(), abs=1e-10)
    assert gaussian_kl_full(mq, cq, mq, cq).item() == pytest.approx(0.0, abs=1e-12)


def test_full_kl_matches_monte_carlo_within_four_standard_errors():
    rng = np.random.default_rng(0)
    mq, mp, cq, cp = rng.standard_normal(2), rng.standard_normal(2), _spd(rng, 2), _spd(rng, 2)
    q = torch.distributions.MultivariateNormal(torch.tensor(mq), torch.tensor(cq))
    p = torch.distributions.MultivariateNormal(torch.tensor(mp), torch.tensor(cp))
    z = torch.tensor(mq + rng.standard_normal((200_000, 2)) @ np.linalg.cholesky(cq).T)
    v = (q.log_prob(z) - p.log_prob(z)).numpy()
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert abs(v.mean() - gaussian_kl_full(mq, cq, mp, cp).item()) < 4 * se


def test_standard_normal_kl_matches_monte_carlo():
    rng = np.random.default_rng(1)
    mu, logvar = np.array([0.8, -0.5]), np.array([-0.6, 0.4])
    std = np.exp(0.5 * logvar)
    eps = rng.standard_normal((200_000, 2))
    z = mu + std * eps
    v = (-0.5 * (np.log(2 * np.pi) + logvar + eps**2) + 0.5 * (np.log(2 * np.pi) + z**2)).sum(1)
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert abs(v.mean() - gaussian_kl_standard_normal(mu, logvar).item()) < 4 * se


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        gaussian_kl_standard_normal(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="broadcastable"):
        gaussian_kl_diagonal(np.zeros(3), np.zeros(2), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="non-positive variance"):
        gaussian_kl_full(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_kl_full(np.zeros(2), [[1.0, 2.0], [2.0, 1.0]], np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="must be"):
        gaussian_kl_full(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="real numbers"):
        gaussian_kl_standard_normal(np.array(["a"]), np.array(["b"]))


def test_non_symmetric_covariance_is_refused():
    # Cholesky reads one triangle only: this q gave KL 0 to N(0, I) although it is not N(0, I).
    lopsided = np.array([[1.0, 0.9], [0.0, 1.0]])
    with pytest.raises(ValueError, match="cov_q must be symmetric"):
        gaussian_kl_full(np.zeros(2), lopsided, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="cov_p must be symmetric"):
        gaussian_kl_full(np.zeros(2), np.eye(2), np.zeros(2), lopsided.T)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # NumPy NaN came back as a NaN KL, complex lost its imaginary part, bool tensors and
        # integer tensors gave torch's own errors, mixed devices torch's device message.
        (lambda: gaussian_kl_standard_normal(np.array([np.nan]), np.zeros(1)), ValueError,
         "mu contains a non-finite value"),
        (lambda: gaussian_kl_full(np.array([np.inf, 0.0]), np.eye(2), np.zeros(2), np.eye(2)),
         ValueError, "mean_q contains a non-finite value"),
        (lambda: gaussian_kl_standard_normal(np.array([1j]), np.zeros(1)), TypeError,
         "mu must be real numbers"),
        (lambda: gaussian_kl_standard_normal(torch.tensor([True]), torch.tensor([False])),
         TypeError, "mu must be a floating-point tensor, got torch.bool"),
        (lambda: gaussian_kl_full(torch.zeros(2, dtype=torch.long), torch.eye(2),
                                  torch.zeros(2), torch.eye(2)), TypeError, "floating-point"),
        (lambda: gaussian_kl_diagonal(torch.zeros(1, device="meta"), torch.zeros(1),
                                      torch.zeros(1), torch.zeros(1)), ValueError,
         "must be on one device, got mu_q on meta"),
    ],
)
def test_bad_types_values_and_devices_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
