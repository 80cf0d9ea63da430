"""A VAE for real-valued data: the decoder outputs a Gaussian, not Bernoulli logits.

p(x|z) = N(x; m(z), diag(sigma^2(z))), with two choices for the variance:
- fixed: ln sigma^2 = a constant c. Then -ln p(x|z) = ||x - m(z)||^2 / (2 e^c) + const,
  the mean-squared-error loss (c = 0 is "MSE / 2").
- learned: ln sigma^2 = g(z), a second output of the decoder network, as in the seed's
  generative process.
No sigmoid on the output: the data are standardised real numbers, not pixel probabilities.

The encoder, the reparameterization and the KL are the Bernoulli VAE's (``vaelab.vae``,
``vaelab.kl``); only the decoder's likelihood changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import VAE, LossTerms, reparameterize
from vaelab.validation import require_finite, require_positive, require_positive_int

_LOG_2PI = math.log(2.0 * math.pi)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Tiny 2-D models: a second thread only adds synchronisation (much worse on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class GaussianVAE(VAE):
    """MLP VAE for real-valued vectors (B, data_dim) with a Gaussian decoder.

    learned_variance=False: ln sigma^2 = fixed_logvar for every z and dimension (MSE loss).
    learned_variance=True: the decoder's last layer outputs [m(z), ln sigma^2(z)] side by side,
    ln sigma^2(z) initialised to fixed_logvar everywhere.
    """

    def __init__(
        self,
        data_dim: int = 2,
        latent_dim: int = 2,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        learned_variance: bool = True,
        fixed_logvar: float = 0.0,
    ) -> None:
        super().__init__(latent_dim, hidden, input_dim=data_dim, activation=activation)
        if not isinstance(learned_variance, bool):
            raise ValueError(f"learned_variance must be True or False, got {learned_variance!r}")
        self.learned_variance = learned_variance
        self.fixed_logvar = require_finite(fixed_logvar, "fixed_logvar")
        if learned_variance:
            # One output layer gives the mean and ln sigma^2 of p(x|z): g(z) shares the trunk.
            last = self.decoder[-1]
            self.decoder[-1] = nn.Linear(last.in_features, 2 * data_dim)
            with torch.no_grad():
                # ln sigma^2(z) = fixed_logvar + g(z) with g = 0 at the start: the learned model
                # starts from the fixed model's noise level and moves only where the data ask.
                self.decoder[-1].weight[data_dim:].zero_()
                self.decoder[-1].bias[data_dim:].fill_(self.fixed_logvar)

    def decode_stats(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, d) -> mean (B, D) and ln sigma^2 (B, D) of p(x|z)."""
        out = super().decode(z)
        if self.learned_variance:
            mean, logvar_x = out.chunk(2, dim=-1)
            return mean, logvar_x
        return out, torch.full_like(out, self.fixed_logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) -> the decoder's mean m(z) (B, D): what a reconstruction shows."""
        return self.decode_stats(z)[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, D) -> (mean (B, D) of p(x|z), mu (B, d), logvar (B, d)), one z each."""
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar)), mu, logvar

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """ln p(x|z) summed over dimensions: x (B, D), z (B, d) -> (B,)."""
        mean, logvar_x = self.decode_stats(z)
        return gaussian_log_density(x, mean, logvar_x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws x ~ p(x) = int p(x|z) p(z) dz (z from the prior, then decoder noise): (n, D)."""
        n = require_positive_int(n, "n")
        z = torch.randn(n, self.latent_dim, generator=generator)
        mean, logvar_x = self.decode_stats(z)
        noise = torch.randn(mean.shape, generator=generator)
        return mean + torch.exp(0.5 * logvar_x) * noise


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """ln N(x; mean, diag(exp(logvar))) summed over the last dimension: (..., D) -> (...)."""
    if not (x.shape == mean.shape == logvar.shape):
        raise ValueError(
            f"x {tuple(x.shape)}, mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)} "
            "must have the same shape"
        )
    return -0.5 * (_LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def gaussian_vae_loss(model: GaussianVAE, x: torch.Tensor, kl_weight: float = 1.0) -> LossTerms:
    """Negative ELBO per point with one reparameterized z: recon = -ln p(x|z), kl analytic.

    x: (B, D) float. Returns LossTerms(loss = batch mean of recon + kl_weight * kl, recon (B,),
    kl (B,)).
    """
    mu, logvar = model.encode(x)
    recon = -model.log_likelihood(x, reparameterize(mu, logvar))
    kl = gaussian_kl_standard_normal(mu, logvar)
    return LossTerms((recon + kl_weight * kl).mean(), recon, kl)


def _as_data(x: np.ndarray | torch.Tensor, dim: int, name: str = "data") -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x)
    if t.ndim != 2 or t.shape[1] != dim or t.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, {dim}) with n >= 1, got {tuple(t.shape)}")
    if not torch.all(torch.isfinite(t)):
        raise ValueError(f"{name} contains non-finite values")
    return t.to(torch.float32)


def fit_gaussian_vae(
    model: GaussianVAE,
    data: np.ndarray | torch.Tensor,
    *,
    steps: int,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Adam on the negative ELBO over minibatches of data (n, D); returns the loss per step."""
    steps = require_positive_int(steps, "steps")
    batch_size = require_positive_int(batch_size, "batch_size")
    lr = require_positive(lr, "lr")
    x = _as_data(data, model.input_dim)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    with _one_thread():
        for step in range(steps):
            idx = torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), generator=gen)
            loss = gaussian_vae_loss(model, x[idx]).loss
            if not torch.isfinite(loss):
                raise RuntimeError(
                    f"the loss became {loss.item()} at step {step}: lower lr or use a fixed "
                    "variance"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def iw_log_likelihood_gaussian(
    model: GaussianVAE, data: np.ndarray | torch.Tensor, k: int, batch_size: int = 1000
) -> torch.Tensor:
    """Importance-sampled ln p(x) per point (N,): log-mean-exp over k draws z ~ q(z|x) of
    ln p(x|z) + ln p(z) - ln q(z|x). Memory is bounded by batch_size * k rows."""
    k = require_positive_int(k, "k")
    batch_size = require_positive_int(batch_size, "batch_size")
    x_all = _as_data(data, model.input_dim)
    out = []
    for x in x_all.split(batch_size):
        mu, logvar = model.encode(x)
        z = reparameterize(mu.expand(k, *mu.shape), logvar.expand(k, *logvar.shape))  # (k, B, d)
        xk = x.expand(k, *x.shape)
        log_w = (
            model.log_likelihood(xk.reshape(-1, x.shape[1]), z.reshape(-1, z.shape[-1])).view(k, -1)
            + gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            - gaussian_log_density(z, mu.expand_as(z), logvar.expand_as(z))
        )
        out.append(torch.logsumexp(log_w, dim=0) - math.log(k))
    return torch.cat(out)
