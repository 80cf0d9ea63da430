"""Posterior collapse, measured: KL per latent dimension, active units, and a KL warm-up.

A latent dimension j is *active* when the encoder's mean moves with the input
(Burda, Grosse and Salakhutdinov 2015): A_j = Cov_x(E_q[z_j | x]) > 0.01. An inactive
dimension has q(z_j|x) ~ N(0, 1) for every x, so its KL is ~ 0 and the decoder learns to
ignore it. The remedies live where training does: free bits (a floor on each dimension's KL in
the loss) in ``vaelab.vae.vae_loss`` and ``train(free_bits=...)``, the KL warm-up in
``vaelab.schedules.kl_warmup``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import VAE, check_model, mode_kept
from vaelab.validation import require_positive, require_positive_int

ACTIVE_THRESHOLD = 0.01  # Burda et al.'s threshold on Cov_x(E_q[z_j])


def _check_x(model: VAE, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be a float tensor (N, D): binarize uint8 images first")
    width = getattr(model, "input_dim", x.shape[-1])
    if x.ndim != 2 or x.shape[1] != width or x.shape[0] < 2:
        raise ValueError(
            f"x must have shape (N, {width}) with N >= 2 (a covariance needs two "
            f"images), got {tuple(x.shape)}"
        )
    check_model(model, x[:2])


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
    mus, kls = [], []
    with mode_kept(model):
        model.eval()
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
    with mode_kept(model):
        model.eval()
        recon = model.likelihood.mean(model.decode(model.encode(x)[0]))
    return float((recon - recon.mean(dim=0)).pow(2).sum(dim=1).mean())
