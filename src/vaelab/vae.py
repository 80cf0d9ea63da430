"""The variational autoencoder: encoder, decoder, reparameterization and the per-image loss.

q(z|x) = N(mu(x), diag(exp(logvar(x))))     an MLP encoder gives mu and logvar
p(x|z) = prod_i Bernoulli(x_i; sigmoid(logits_i(z)))     an MLP decoder gives the logits
loss(x) = BCE-with-logits summed over pixels (the reconstruction term, -E_q ln p(x|z))
          + KL(q(z|x) || N(0, I))              (analytic, from vaelab.kl)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.kl import gaussian_kl_standard_normal
from vaelab.validation import require_positive_int

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive sizes, the activation after each one."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """MLP VAE for binary images flattened to (B, input_dim)."""

    def __init__(
        self,
        latent_dim: int = 20,
        hidden: Sequence[int] = (400,),
        input_dim: int = 784,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        latent_dim = require_positive_int(latent_dim, "latent_dim")
        input_dim = require_positive_int(input_dim, "input_dim")
        hidden = tuple(require_positive_int(h, "each hidden size") for h in hidden)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.latent_dim, self.input_dim = latent_dim, input_dim
        self.hidden, self.activation = hidden, activation
        self.encoder = _mlp((input_dim, *hidden), activation)
        # One layer gives mu and logvar side by side: one matrix product instead of two.
        self.to_stats = nn.Linear(hidden[-1] if hidden else input_dim, 2 * latent_dim)
        self.decoder = nn.Sequential(
            _mlp((latent_dim, *hidden[::-1]), activation),
            nn.Linear(hidden[0] if hidden else latent_dim, input_dim),  # logits: no activation
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, input_dim) float -> mu (B, d), logvar (B, d) of q(z|x)."""
        _check_batch(x, self.input_dim, "x")
        return self.to_stats(self.encoder(x)).chunk(2, dim=-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) -> Bernoulli logits (B, input_dim) of p(x|z)."""
        _check_batch(z, self.latent_dim, "z")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, input_dim) -> (logits (B, input_dim), mu (B, d), logvar (B, d)), one z each."""
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar)), mu, logvar

    @torch.no_grad()
    def init_output_bias(self, mean_image: torch.Tensor, eps: float = 1e-3) -> None:
        """Set the decoder's output bias to logit(mean_image) (clamped to [eps, 1 - eps]).

        The untrained decoder then already outputs the average digit (IWAE paper's trick).
        """
        mean_image = torch.as_tensor(mean_image, dtype=torch.float32).reshape(-1)
        if mean_image.numel() != self.input_dim:
            raise ValueError(
                f"mean_image must have {self.input_dim} values, got {mean_image.numel()}"
            )
        if not torch.all((mean_image >= 0) & (mean_image <= 1)):
            raise ValueError("mean_image must hold pixel probabilities in [0, 1]")
        out = self.decoder[-1]
        out.bias.copy_(torch.logit(mean_image.clamp(eps, 1 - eps)).to(out.bias))


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2), eps ~ N(0, I): shapes (..., d).

    The noise is outside the network, so gradients flow to mu and logvar.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must match")
    if eps is None:
        eps = torch.randn_like(mu)
    elif eps.shape != mu.shape:
        raise ValueError(f"eps {tuple(eps.shape)} must have the shape of mu {tuple(mu.shape)}")
    return mu + torch.exp(0.5 * logvar) * eps


class LossTerms(NamedTuple):
    """loss: scalar to minimise; recon, kl: (B,) per-image terms in nats."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def vae_loss(
    logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_weight: float = 1.0,
    free_bits: float = 0.0,
    recon_weight: float = 1.0,
) -> LossTerms:
    """Negative ELBO per image = recon + KL; loss = batch mean of recon + kl_weight * KL.

    logits, x: (B, D); mu, logvar: (B, d). free_bits > 0 floors each latent
    dimension's batch-mean KL in the loss at that many nats (Kingma et al. 2016);
    the reported kl is always the true KL. recon_weight = 0 trains on the KL alone
    (notebook 05's "KL only" model); the reported recon is always the true term.
    """
    _check_batch(logits, -1, "logits")
    _check_batch(x, -1, "x")
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and x {tuple(x.shape)} must match")
    if mu.ndim != 2 or mu.shape[0] != x.shape[0] or mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must both be (B, d) with B = {x.shape[0]}, "
            f"got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    # Sum over pixels: the likelihood of the whole image (a mean would shrink it 784 times).
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    if free_bits > 0:
        # Per-dimension KL (B, d): the package formula applied to one dimension at a time.
        kl_dims = gaussian_kl_standard_normal(mu.unsqueeze(-1), logvar.unsqueeze(-1))
        kl = kl_dims.sum(dim=-1)
        kl_term = kl_dims.mean(dim=0).clamp(min=free_bits).sum()
        loss = recon_weight * recon.mean() + kl_weight * kl_term
    else:
        kl = gaussian_kl_standard_normal(mu, logvar)
        loss = (recon_weight * recon + kl_weight * kl).mean()
    return LossTerms(loss, recon, kl)


def _check_batch(t: torch.Tensor, width: int, name: str) -> None:
    """Raise ValueError unless t is a float tensor of shape (B, width)."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor, got {t.dtype}: convert uint8 images with "
            "vaelab.mnist.to_unit_float (and binarize them)"
        )
    if t.ndim != 2 or (width >= 0 and t.shape[1] != width):
        want = f"(B, {width})" if width >= 0 else "(B, D)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}: flatten images")
