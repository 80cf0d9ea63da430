"""The Gaussian KL divergence, once: notebook 03 checks it, 04's loss and 05's experiments use it.

KL(N(mu, diag(sigma^2)) || N(0, I)) = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2)

(the seed writes the negative of this, -KL, the term that appears in the ELBO).
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x: torch.Tensor | np.ndarray | float, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return torch.as_tensor(arr, dtype=torch.float64)


def gaussian_kl_standard_normal(
    mu: torch.Tensor | np.ndarray, logvar: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """KL(q || N(0, I)) for a diagonal Gaussian q, summed over the last dimension.

    mu, logvar: shape (..., d), the mean and the log-variance ln sigma^2 of q.
    Returns shape (...): one KL per row, in nats, always >= 0.
    NumPy inputs are converted to float64 tensors.
    """
    mu_t, logvar_t = _as_tensor(mu, "mu"), _as_tensor(logvar, "logvar")
    if mu_t.shape != logvar_t.shape:
        raise ValueError(
            f"mu and logvar must have the same shape, got {tuple(mu_t.shape)} "
            f"and {tuple(logvar_t.shape)}"
        )
    if mu_t.ndim == 0:
        raise ValueError("mu and logvar need a last dimension (the latent size), got scalars")
    return 0.5 * (mu_t.pow(2) + logvar_t.exp() - 1.0 - logvar_t).sum(dim=-1)
