"""A VAE for real-valued data: the same VAE, with a Gaussian likelihood p(x|z) instead of Bernoulli.

p(x|z) = N(x; m(z), diag(sigma^2(z))), with two choices for the variance:
- fixed: ln sigma^2 = a constant c. Then -ln p(x|z) = ||x - m(z)||^2 / (2 e^c) + const,
  the mean-squared-error loss (c = 0 is "MSE / 2").
- learned: ln sigma^2 = g(z), a second output of the decoder network.
No sigmoid on the output: the data are standardised real numbers, not pixel probabilities.

The encoder, the reparameterization, the KL, the training loop and the evaluators are the
Bernoulli VAE's (``vaelab.vae``, ``vaelab.training``, ``vaelab.evaluation``); only the
likelihood object changes (``vaelab.decoder_likelihoods``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vaelab.decoder_likelihoods import FixedVarianceGaussian, LearnedVarianceGaussian
from vaelab.vae import VAE
from vaelab.validation import require_finite


def GaussianVAE(  # noqa: N802 - reads as the class it configures
    data_dim: int = 2,
    latent_dim: int = 2,
    hidden: Sequence[int] = (64, 64),
    activation: str = "tanh",
    learned_variance: bool = True,
    fixed_logvar: float = 0.0,
) -> VAE:
    """An MLP VAE for real-valued vectors (B, data_dim) with a Gaussian decoder.

    learned_variance=False: ln sigma^2 = fixed_logvar for every z and dimension (MSE loss).
    learned_variance=True: the decoder outputs [m(z), ln sigma^2(z)] side by side, with
    ln sigma^2(z) starting at fixed_logvar everywhere.
    """
    if not isinstance(learned_variance, bool):
        raise ValueError(f"learned_variance must be True or False, got {learned_variance!r}")
    fixed_logvar = require_finite(fixed_logvar, "fixed_logvar")
    likelihood = (LearnedVarianceGaussian(init_logvar=fixed_logvar) if learned_variance
                  else FixedVarianceGaussian(logvar=fixed_logvar))
    return VAE(latent_dim, hidden, input_dim=data_dim, activation=activation,
               likelihood=likelihood)


def as_float_data(x: np.ndarray | torch.Tensor, name: str = "data") -> torch.Tensor:
    """Real-valued data (n, D), NumPy or torch, as a float32 tensor for train and evaluation."""
    t = x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    if not t.is_floating_point():
        t = t.to(torch.float32)
    return t.to(torch.float32)
