"""vaelab.decoder_likelihoods: log-densities against torch.distributions, means, samples, checks."""

import math

import pytest
import torch
from torch import nn

from vaelab.decoder_likelihoods import (
    Bernoulli,
    FixedVarianceGaussian,
    LearnedVarianceGaussian,
    check_likelihood,
)

GEN = torch.Generator().manual_seed(0)
X_REAL = torch.randn(5, 3, generator=GEN, dtype=torch.float64)
PARAMS = torch.randn(5, 3, generator=GEN, dtype=torch.float64)


def test_bernoulli_is_torch_distributions_bernoulli_of_the_logits():
    x = (torch.rand(5, 3, generator=GEN) < 0.5).double()
    expected = torch.distributions.Bernoulli(logits=PARAMS).log_prob(x).sum(-1)
    torch.testing.assert_close(Bernoulli().log_prob(x, PARAMS), expected)
    torch.testing.assert_close(Bernoulli().mean(PARAMS), torch.sigmoid(PARAMS))
    draws = Bernoulli().sample(torch.zeros(20000, 1), generator=GEN)
    assert set(draws.unique().tolist()) == {0.0, 1.0} and abs(draws.mean() - 0.5) < 0.02


def test_fixed_variance_gaussian_is_mse_plus_a_constant():
    lik = FixedVarianceGaussian(logvar=0.0)
    mse_half = 0.5 * (X_REAL - PARAMS).pow(2).sum(-1)
    constant = 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(-lik.log_prob(X_REAL, PARAMS), mse_half + constant)
    other = FixedVarianceGaussian(logvar=math.log(0.01))
    expected = torch.distributions.Normal(PARAMS, 0.1).log_prob(X_REAL).sum(-1)
    torch.testing.assert_close(other.log_prob(X_REAL, PARAMS), expected)
    assert torch.equal(lik.mean(PARAMS), PARAMS)
    draws = other.sample(torch.zeros(20000, 1), generator=GEN)
    assert abs(draws.std().item() - 0.1) < 0.005


def test_learned_variance_gaussian_reads_mean_and_log_variance_side_by_side():
    lik = LearnedVarianceGaussian()
    logvar = torch.randn(5, 3, generator=GEN, dtype=torch.float64)
    params = torch.cat([PARAMS, logvar], dim=1)
    expected = torch.distributions.Normal(PARAMS, torch.exp(0.5 * logvar)).log_prob(X_REAL).sum(-1)
    torch.testing.assert_close(lik.log_prob(X_REAL, params), expected)
    assert torch.equal(lik.mean(params), PARAMS) and lik.params_per_dim == 2
    layer = nn.Linear(4, 6)
    LearnedVarianceGaussian(init_logvar=-2.0).init_output_layer(layer)
    assert torch.all(layer.weight[3:] == 0) and torch.all(layer.bias[3:] == -2.0)


def test_data_checks_say_what_is_wrong():
    with pytest.raises(ValueError, match="binary"):
        Bernoulli().check_data(torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="float"):
        Bernoulli().check_data(torch.zeros(2, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        FixedVarianceGaussian().check_data(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="shape"):
        FixedVarianceGaussian().check_data(torch.zeros(3))
    Bernoulli().check_data(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        FixedVarianceGaussian(logvar=float("inf"))
    with pytest.raises(TypeError, match="likelihood must be"):
        check_likelihood("bernoulli")


def test_likelihoods_compare_by_value():
    assert FixedVarianceGaussian(0.5) == FixedVarianceGaussian(0.5) != FixedVarianceGaussian(1.0)
    assert Bernoulli() == Bernoulli() and Bernoulli() != LearnedVarianceGaussian()
