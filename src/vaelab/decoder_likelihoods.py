"""The likelihood p(x|z) a decoder parameterizes: Bernoulli, Gaussian (fixed or learned variance).

The decoder network maps z to numbers; the likelihood object says what those numbers mean:

    Bernoulli()                        params (B, D): logits l, p(x_i = 1 | z) = sigmoid(l_i)
    FixedVarianceGaussian(logvar=c)    params (B, D): the mean m; ln sigma^2 = c everywhere
    LearnedVarianceGaussian()          params (B, 2D): [m, ln sigma^2] side by side

Each knows ``log_prob(x, params)`` = ln p(x|z) summed over the D dimensions, (B,);
``mean(params)``, the mean of p(x|z), what figures show; ``sample(params)``, a draw of x;
``params_per_dim``, how many decoder outputs each data dimension needs; ``binary``, whether
the data must be 0/1 (training then binarizes grey images afresh at every step); and
``check_data(x)``, which rejects data this likelihood does not describe.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaelab.distributions import bernoulli_log_density, gaussian_log_density
from vaelab.validation import require_finite


class Likelihood:
    """What every likelihood offers (see the module docstring); subclasses fill it in."""

    binary = False
    params_per_dim = 1

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """ln p(x|z) summed over dimensions: x (B, D), params (B, params_per_dim * D) -> (B,)."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z), (B, D)."""
        raise NotImplementedError

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """One draw x ~ p(x|z) per row, (B, D)."""
        raise NotImplementedError

    def check_data(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise ValueError unless x is a float tensor (N, D) of finite values."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a float tensor (N, D), got {got}")
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{name} must have shape (N, D) with N >= 1, got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or infinite values: remove or replace them")

    def init_output_layer(self, layer: nn.Linear) -> None:
        """Adjust a freshly built MLP decoder's output layer (nothing to do by default)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class Bernoulli(Likelihood):
    """p(x|z) = prod_i Bernoulli(x_i; sigmoid(l_i)) for binary x; params are the logits l."""

    binary = True

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return bernoulli_log_density(x, params).sum(dim=-1)  # params: the logits

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params), generator=generator)

    def check_data(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise ValueError unless x is a float tensor (N, D) of 0s and 1s."""
        super().check_data(x, name)
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(
                f"{name} must hold binary pixels (0.0 or 1.0) for a Bernoulli likelihood: "
                "binarize grey images first (vaelab.binarization.binarize, or "
                "vaelab.mnist.binarized_test_set for the test set)"
            )


class FixedVarianceGaussian(Likelihood):
    """p(x|z) = N(x; m(z), e^logvar I): params are the mean m. logvar = 0 gives the MSE loss / 2."""

    def __init__(self, logvar: float = 0.0) -> None:
        self.logvar = require_finite(logvar, "logvar")

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return gaussian_log_density(x, params, self.logvar).sum(dim=-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        noise = torch.randn(params.shape, generator=generator, dtype=params.dtype)
        return params + math.exp(0.5 * self.logvar) * noise.to(params.device)

    def __repr__(self) -> str:
        return f"FixedVarianceGaussian(logvar={self.logvar!r})"


class LearnedVarianceGaussian(Likelihood):
    """p(x|z) = N(x; m(z), diag(exp(g(z)))): params are [m, g] side by side, (B, 2D).

    init_logvar: the default MLP decoder starts with g(z) = init_logvar everywhere (its
    variance rows zeroed), so training starts from that fixed-variance model.
    """

    params_per_dim = 2

    def __init__(self, init_logvar: float = 0.0) -> None:
        self.init_logvar = require_finite(init_logvar, "init_logvar")

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """params (B, 2D) -> mean (B, D), ln sigma^2 (B, D)."""
        mean, logvar = params.chunk(2, dim=-1)
        return mean, logvar

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return gaussian_log_density(x, *self.split(params)).sum(dim=-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.split(params)[0]

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        mean, logvar = self.split(params)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * noise.to(mean.device)

    def init_output_layer(self, layer: nn.Linear) -> None:
        d = layer.out_features // 2
        with torch.no_grad():
            layer.weight[d:].zero_()
            layer.bias[d:].fill_(self.init_logvar)

    def __repr__(self) -> str:
        return f"LearnedVarianceGaussian(init_logvar={self.init_logvar!r})"


def check_likelihood(likelihood: object) -> Likelihood:
    """``likelihood`` if it is one of this module's likelihood objects, else a clear TypeError."""
    if not isinstance(likelihood, Likelihood):
        raise TypeError(
            f"likelihood must be a vaelab.decoder_likelihoods object such as Bernoulli(), "
            f"FixedVarianceGaussian(logvar=0.0) or LearnedVarianceGaussian(), got {likelihood!r}"
        )
    return likelihood
