"""Amortized vs per-image inference: the gaps of Cremer, Li and Duvenaud (2018).

For one image x and a trained decoder, three numbers:
- ELBO(q_phi): the encoder's q(z|x), one network for every image (amortized);
- ELBO(q*): the best diagonal Gaussian for this image alone, found by optimising its own
  (mu, ln sigma^2) on the ELBO, starting from the encoder's output;
- ln p(x): importance-sampled (with q* as the proposal).

amortization gap = ELBO(q*) - ELBO(q_phi)  >= 0  (the encoder is not the best it could be)
approximation gap = ln p(x) - ELBO(q*)     >= 0  (no diagonal Gaussian is the posterior)
Their sum is the whole gap ln p(x) - ELBO(q_phi) = KL(q_phi || p(z|x)).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch

from vaelab.elbo import Estimate, log_mean_exp_estimate, mc_estimate
from vaelab.evaluation import log_importance_weights, negative_elbo
from vaelab.references import answers
from vaelab.vae import VAE, check_model, check_vae_interface, mode_kept
from vaelab.validation import require_positive, require_positive_int

__all__ = ["frozen", "negative_elbo", "optimise_local_posteriors", "InferenceGaps",
           "inference_gaps"]


def _check_inputs(model: VAE, x: torch.Tensor, mu0: torch.Tensor, logvar0: torch.Tensor,
                  names: tuple[str, str] = ("mu0", "logvar0")) -> None:
    check_vae_interface(model)
    model.likelihood.check_data(x)
    check_model(model, x[:2])
    with torch.no_grad(), mode_kept(model):
        latent_dim = model.eval().encode(x[:1])[0].shape[1]
    want = (x.shape[0], latent_dim)
    for t, name in zip((mu0, logvar0), names, strict=True):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != want:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a tensor of shape {want}, got {shape}")


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Inside the block the model's parameters need no gradient (restored afterwards)."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)


@answers("5.2")
def optimise_local_posteriors(
    model: VAE,
    x: torch.Tensor,
    mu0: torch.Tensor,
    logvar0: torch.Tensor,
    steps: int = 200,
    lr: float = 0.05,
    samples: int = 4,
    seed: int = 0,
    history: list[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Gaussian per image: Adam on each image's own (mu_i, ln sigma_i^2), decoder fixed.

    x: (N, D) binary; mu0, logvar0: (N, d) starting point (the encoder's output). Minimises
    the sum over images of the negative ELBO (each image's parameters see only its own term).
    Returns the optimised (mu, logvar), detached; mu0 and logvar0 are not modified. If
    ``history`` is a list, the mean negative ELBO of each step is appended to it. The noise
    comes from ``seed`` (torch's global random state is left as it was); the model is
    returned in the mode it came in.
    """
    _check_inputs(model, x, mu0, logvar0)
    steps = require_positive_int(steps, "steps")
    lr = require_positive(lr, "lr")
    mu = mu0.detach().clone().requires_grad_(True)
    logvar = logvar0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([mu, logvar], lr=lr)
    cuda = [x.device] if x.device.type == "cuda" else []
    with frozen(model), mode_kept(model), torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)  # the reparameterization noise
        model.eval()
        for _ in range(steps):
            loss = negative_elbo(model, x, mu, logvar, samples)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            if history is not None:
                history.append(float(loss.detach().mean()))
    return mu.detach(), logvar.detach()


class InferenceGaps(NamedTuple):
    """Means over the images, each with its Monte Carlo standard error; per-image arrays (N,)."""

    encoder_elbo: Estimate
    local_elbo: Estimate
    log_likelihood: Estimate
    amortization_gap: Estimate
    approximation_gap: Estimate
    per_image_amortization: np.ndarray
    per_image_approximation: np.ndarray


def _per_image(log_w: torch.Tensor) -> tuple[Estimate, ...]:
    """Per image: (MC ELBO, IS ln p(x)) Estimates from log-weights (k,) of one image."""
    return mc_estimate(log_w.numpy()), log_mean_exp_estimate(log_w.numpy())


def _average(means: np.ndarray, ses: np.ndarray, n_samples: int) -> Estimate:
    """The mean over images; independent per-image errors add in quadrature."""
    return Estimate(float(means.mean()), float(np.sqrt((ses**2).sum()) / means.size), n_samples)


def inference_gaps(
    model: VAE,
    x: torch.Tensor,
    mu_local: torch.Tensor,
    logvar_local: torch.Tensor,
    k: int = 1000,
    seed: int = 0,
) -> InferenceGaps:
    """Measure both gaps on images x (N, D), given their optimised q* = (mu_local, logvar_local).

    Each ELBO is the mean of k log-weights ln p(x, z) - ln q(z|x), z ~ q (encoder or q*);
    ln p(x) is the log-mean-exp of q*'s k weights (``vaelab.evaluation.log_importance_weights``).
    Standard errors: std/sqrt(k) per image (delta method for ln p(x)), in quadrature over
    images; a gap's error adds its two terms' errors in quadrature.
    """
    _check_inputs(model, x, mu_local, logvar_local, ("mu_local", "logvar_local"))
    with torch.no_grad(), mode_kept(model):
        mu_enc, logvar_enc = model.eval().encode(x)
    k = require_positive_int(k, "k")
    if k < 2:
        raise ValueError("k must be >= 2: a standard error needs two samples")
    lw_enc = log_importance_weights(model, x, k, seed=seed, proposal=(mu_enc, logvar_enc))
    lw_loc = log_importance_weights(model, x, k, seed=seed + 1, proposal=(mu_local, logvar_local))
    enc = [mc_estimate(row.numpy()) for row in lw_enc]
    loc = [_per_image(row) for row in lw_loc]
    e_enc = np.array([e.mean for e in enc]), np.array([e.std_error for e in enc])
    e_loc = np.array([e.mean for e, _ in loc]), np.array([e.std_error for e, _ in loc])
    ll = np.array([p.mean for _, p in loc]), np.array([p.std_error for _, p in loc])
    amort = e_loc[0] - e_enc[0]
    approx = ll[0] - e_loc[0]
    return InferenceGaps(
        encoder_elbo=_average(*e_enc, k),
        local_elbo=_average(*e_loc, k),
        log_likelihood=_average(*ll, k),
        amortization_gap=_average(amort, np.hypot(e_loc[1], e_enc[1]), k),
        approximation_gap=_average(approx, np.hypot(ll[1], e_loc[1]), k),
        per_image_amortization=amort,
        per_image_approximation=approx,
    )
