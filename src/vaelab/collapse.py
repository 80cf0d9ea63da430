"""Posterior collapse, measured: KL per latent dimension, active units, and a KL warm-up.

A latent dimension j is *active* when the encoder's mean moves with the input
(Burda, Grosse and Salakhutdinov 2015): A_j = Cov_x(E_q[z_j | x]) > 0.01. An inactive
dimension has q(z_j|x) ~ N(0, 1) for every x, so its KL is ~ 0 and the decoder learns to
ignore it. Free bits (a floor on each dimension's KL in the loss) live in ``vaelab.vae.vae_loss``
and ``vaelab.training.train(free_bits=...)``; the warm-up schedule is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import VAE
from vaelab.validation import require_positive, require_positive_int

ACTIVE_THRESHOLD = 0.01  # Burda et al.'s threshold on Cov_x(E_q[z_j])


def _check_x(model: VAE, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a float tensor (N, D): binarize uint8 images first")
    if x.ndim != 2 or x.shape[1] != model.input_dim or x.shape[0] < 2:
        raise ValueError(
            f"x must have shape (N, {model.input_dim}) with N >= 2 (a covariance needs two "
            f"images), got {tuple(x.shape)}"
        )


class LatentUsage(NamedTuple):
    """How much each latent dimension is used, over a set of inputs x (N, D).

    kl_per_dim: (d,) mean over x of KL(q(z_j|x) || N(0, 1)) in nats (sums to the mean KL).
    activity: (d,) Cov_x(E_q[z_j|x]), the variance over inputs of the encoder's mean.
    active: (d,) bool, activity > threshold.
    """

    kl_per_dim: torch.Tensor
    activity: torch.Tensor
    active: torch.Tensor

    @property
    def n_active(self) -> int:
        """The number of active units."""
        return int(self.active.sum())

    @property
    def kl(self) -> float:
        """Mean total KL per input, in nats."""
        return float(self.kl_per_dim.sum())


@torch.no_grad()
def latent_usage(
    model: VAE, x: torch.Tensor, threshold: float = ACTIVE_THRESHOLD, batch_size: int = 1000
) -> LatentUsage:
    """KL per latent dimension and active units of ``model`` on inputs x (N, D)."""
    _check_x(model, x)
    threshold = require_positive(threshold, "threshold")
    batch_size = require_positive_int(batch_size, "batch_size")
    model.eval()
    mus, kls = [], []
    for xb in x.split(batch_size):
        mu, logvar = model.encode(xb)
        mus.append(mu)
        # One dimension at a time: the package's KL with a last axis of size 1.
        kls.append(gaussian_kl_standard_normal(mu.unsqueeze(-1), logvar.unsqueeze(-1)))
    mu = torch.cat(mus)
    activity = mu.var(dim=0, unbiased=True)
    return LatentUsage(torch.cat(kls).mean(dim=0), activity, activity > threshold)


@torch.no_grad()
def reconstruction_spread(model: VAE, x: torch.Tensor) -> float:
    """How much the reconstructions depend on the input: mean over x of ||r(x) - mean_x r||^2.

    r(x) = the mean of p(x|z) at z = E_q[z|x] (pixel probabilities for a Bernoulli decoder).
    A collapsed model gives (nearly) the same image for every x, so this is ~ 0; compare
    with the same spread of the data, sum over pixels of Var_x(x_i).
    """
    _check_x(model, x)
    model.eval()
    recon = model.likelihood.mean(model.decode(model.encode(x)[0]))
    return float((recon - recon.mean(dim=0)).pow(2).sum(dim=1).mean())


def kl_warmup(warmup_epochs: int, final_weight: float = 1.0) -> Callable[[int], float]:
    """A linear KL warm-up for ``train(kl_weight=...)``: epoch e (1-based) ->
    final_weight * min(1, (e - 1) / warmup_epochs).

    The first epoch trains the reconstruction alone (weight 0); the weight then rises
    linearly and reaches final_weight at epoch warmup_epochs + 1.
    """
    n = require_positive_int(warmup_epochs, "warmup_epochs")
    final = require_positive(final_weight, "final_weight")

    def weight(epoch: int) -> float:
        epoch = require_positive_int(epoch, "epoch")
        return final * min(1.0, (epoch - 1) / n)

    return weight
