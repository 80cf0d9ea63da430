"""The Gaussian KL divergence, once: notebook 03 checks it, 04's loss and 05's experiments use it.

KL(N(mu, diag(sigma^2)) || N(0, I)) = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - ln sigma_j^2)

(Kingma and Welling, 2014, Appendix B, write the negative of this, -KL, the term that
appears in the ELBO).
"""

from __future__ import annotations

import numpy as np
import torch

from vaelab.distributions import cholesky
from vaelab.references import answers
from vaelab.validation import InputTypeError, as_array


def _as_tensor(x: torch.Tensor | np.ndarray | float, name: str) -> torch.Tensor:
    """A float tensor of ``x``. NumPy input (notebook 03's) is checked finite; a tensor is not
    scanned for NaN (a synchronisation inside training loops, which check their losses)."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise InputTypeError(f"{name} must be a floating-point tensor, got {x.dtype}; "
                                 "convert it with .double() or .float()")
        return x
    return torch.as_tensor(as_array(x, name), dtype=torch.float64)


def _same_device(**tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"the inputs must be on one device, got {listed}; move them with "
                         ".to(device) (NumPy arrays become CPU tensors)")


@answers("3.1", "4.2")
def gaussian_kl_standard_normal(
    mu: torch.Tensor | np.ndarray, logvar: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """KL(q || N(0, I)) for a diagonal Gaussian q, summed over the last dimension.

    mu, logvar: shape (..., d), the mean and the log-variance ln sigma^2 of q.
    Returns shape (...): one KL per row, in nats, always >= 0.
    NumPy inputs are converted to float64 tensors.
    """
    mu_t, logvar_t = _as_tensor(mu, "mu"), _as_tensor(logvar, "logvar")
    _same_device(mu=mu_t, logvar=logvar_t)
    if mu_t.shape != logvar_t.shape:
        raise ValueError(
            f"mu and logvar must have the same shape, got {tuple(mu_t.shape)} "
            f"and {tuple(logvar_t.shape)}"
        )
    if mu_t.ndim == 0:
        raise ValueError("mu and logvar need a last dimension (the latent size), got scalars")
    # sigma^2 - 1 - ln sigma^2 as expm1(logvar) - logvar: never below 0 in floating point
    # (exp(logvar) - 1 - logvar rounds to a tiny negative number when logvar is near 0)
    return 0.5 * (mu_t.pow(2) + (logvar_t.expm1() - logvar_t)).sum(dim=-1)


@answers("3.1", "4.2")
def gaussian_kl_diagonal(
    mu_q: torch.Tensor | np.ndarray,
    logvar_q: torch.Tensor | np.ndarray,
    mu_p: torch.Tensor | np.ndarray,
    logvar_p: torch.Tensor | np.ndarray,
) -> torch.Tensor:
    """KL(N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p)), summed over the last dimension.

    = 1/2 sum_j (ln s_p^2 - ln s_q^2 + (s_q^2 + (mu_q - mu_p)^2) / s_p^2 - 1).
    All four inputs: shape (..., d) (broadcastable); returns shape (...), >= 0.
    With mu_p = 0, logvar_p = 0 it equals ``gaussian_kl_standard_normal``.
    """
    mq, lq = _as_tensor(mu_q, "mu_q"), _as_tensor(logvar_q, "logvar_q")
    mp, lp = _as_tensor(mu_p, "mu_p"), _as_tensor(logvar_p, "logvar_p")
    _same_device(mu_q=mq, logvar_q=lq, mu_p=mp, logvar_p=lp)
    try:
        shape = torch.broadcast_shapes(mq.shape, lq.shape, mp.shape, lp.shape)
    except RuntimeError:
        raise ValueError(
            "mu_q, logvar_q, mu_p, logvar_p must have broadcastable shapes (..., d), got "
            f"{tuple(mq.shape)}, {tuple(lq.shape)}, {tuple(mp.shape)}, {tuple(lp.shape)}"
        ) from None
    if len(shape) == 0:
        raise ValueError("the inputs need a last dimension (the latent size), got scalars")
    ratio = torch.exp(lq - lp)  # s_q^2 / s_p^2, computed without dividing small numbers
    return 0.5 * (ratio + (mq - mp).pow(2) * torch.exp(-lp) - 1.0 - (lq - lp)).sum(dim=-1)


@answers("3.1", "4.2")
def gaussian_kl_full(
    mean_q: torch.Tensor | np.ndarray,
    cov_q: torch.Tensor | np.ndarray,
    mean_p: torch.Tensor | np.ndarray,
    cov_p: torch.Tensor | np.ndarray,
) -> torch.Tensor:
    """KL(N(mean_q, cov_q) || N(mean_p, cov_p)) for full covariances.

    = 1/2 (tr(cov_p^-1 cov_q) + (m_p - m_q)^T cov_p^-1 (m_p - m_q) - d + ln det cov_p
    - ln det cov_q). means: (..., d); covs: (..., d, d) symmetric positive definite.
    Returns shape (...), >= 0. NumPy inputs become float64 tensors.
    """
    mq, mp = _as_tensor(mean_q, "mean_q"), _as_tensor(mean_p, "mean_p")
    cq, cp = _as_tensor(cov_q, "cov_q"), _as_tensor(cov_p, "cov_p")
    _same_device(mean_q=mq, cov_q=cq, mean_p=mp, cov_p=cp)
    if mq.ndim == 0 or mq.shape[-1:] != mp.shape[-1:]:
        raise ValueError(
            f"mean_q and mean_p must be (..., d) with the same d, got {tuple(mq.shape)} "
            f"and {tuple(mp.shape)}"
        )
    d = mq.shape[-1]
    for name, cov in (("cov_q", cq), ("cov_p", cp)):
        if cov.shape[-2:] != (d, d):
            raise ValueError(f"{name} must be (..., {d}, {d}) to match the means, "
                             f"got {tuple(cov.shape)}")
    lq, lp = cholesky(cq, "cov_q"), cholesky(cp, "cov_p")
    # Everything through L_p^{-1}: tr(cov_p^-1 cov_q) = ||L_p^-1 L_q||_F^2.
    a = torch.linalg.solve_triangular(lp, lq, upper=False)
    diff = (mp - mq).unsqueeze(-1)
    b = torch.linalg.solve_triangular(lp, diff, upper=False).squeeze(-1)
    logdet_q = 2.0 * torch.log(torch.diagonal(lq, dim1=-2, dim2=-1)).sum(-1)
    logdet_p = 2.0 * torch.log(torch.diagonal(lp, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (a.pow(2).sum((-2, -1)) + b.pow(2).sum(-1) - d + logdet_p - logdet_q)
