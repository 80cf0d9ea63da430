"""Scoring a trained VAE, once, for any model with encode, decode and likelihood.

- ``negative_elbo_terms``: per-image reconstruction term and KL of a given q = N(mu, sigma^2);
- ``evaluate``: the mean negative ELBO and its two terms on a data set (one z per image);
- ``log_importance_weights``: ln w = ln p(x|z) + ln p(z) - ln q(z|x), z ~ q (or another
  Gaussian proposal), the numbers behind every estimate below;
- ``iw_log_likelihood``: the importance-sampled ln p(x) (log-mean-exp over k weights);
- ``iw_bound_curve``: the importance-weighted bound L_k for several k.

Memory stays bounded whatever k is: at most ``max_rows`` latent samples are decoded at once
(and at most that many images go through the encoder together). The random draws depend on
``batch_size`` and ``max_rows``, so keep them fixed to repeat a number exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from vaelab.distributions import gaussian_log_density, reparameterize
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import NonFiniteError, check_model, check_vae_interface, mode_kept
from vaelab.validation import require_int, require_positive_int

Proposal = tuple[torch.Tensor, torch.Tensor]
MAX_ROWS = 16384


def negative_elbo_terms(model: nn.Module, x: torch.Tensor, mu: torch.Tensor,
                        logvar: torch.Tensor, samples: int = 1,
                        generator: torch.Generator | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(recon, kl), each (N,), of q = N(mu, diag(exp(logvar))) for images x (N, D).

    recon: -ln p(x|z) averaged over ``samples`` reparameterized draws per image; kl: the
    analytic KL(q || N(0, I)). Their sum is the per-image negative ELBO. Differentiable in
    mu and logvar (notebook 05 optimises one q per image with it).
    """
    samples = require_positive_int(samples, "samples")
    n = x.shape[0]
    mu_s, logvar_s = mu.repeat(samples, 1), logvar.repeat(samples, 1)  # (S * N, d)
    eps = torch.randn(mu_s.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    params = model.decode(reparameterize(mu_s, logvar_s, eps))
    recon = -model.likelihood.log_prob(x.repeat(samples, 1), params).view(samples, n).mean(dim=0)
    return recon, gaussian_kl_standard_normal(mu, logvar)


def negative_elbo(model: nn.Module, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  samples: int = 1) -> torch.Tensor:
    """Per-image negative ELBO (N,) of q = N(mu, diag(exp(logvar))), ``samples`` draws each."""
    recon, kl = negative_elbo_terms(model, x, mu, logvar, samples)
    return recon + kl


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, batch_size: int = 1000, seed: int = 0
             ) -> dict[str, float]:
    """Single-sample negative ELBO and its two terms, means per image, on data x (N, D).

    Returns dict(neg_elbo=, recon=, kl=) in nats per image. seed fixes the one z per image.
    The model is scored in eval() mode and returned in the mode it came in.
    """
    _check_eval_inputs(model, x)
    batch_size = require_positive_int(batch_size, "batch_size")
    device, dtype = device_and_dtype(model)
    gen = torch.Generator(device=device).manual_seed(require_int(seed, "seed", 0))
    recon_sum = kl_sum = 0.0
    with mode_kept(model):
        model.eval()
        for xb in x.split(batch_size):
            xb = xb.to(device, dtype)
            mu, logvar = model.encode(xb)
            recon, kl = negative_elbo_terms(model, xb, mu, logvar, generator=gen)
            recon_sum += recon.double().sum().item()
            kl_sum += kl.double().sum().item()
    n = x.shape[0]
    _check_finite(recon_sum + kl_sum, "the negative ELBO")
    return {"neg_elbo": (recon_sum + kl_sum) / n, "recon": recon_sum / n, "kl": kl_sum / n}


def _log_weight_chunks(model: nn.Module, x: torch.Tensor, k: int, batch_size: int, seed: int,
                       max_rows: int, proposal: Proposal | None
                       ) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield (first image, first sample, ln w (b, kc)) for at most max_rows samples at a time."""
    batch_size = min(require_positive_int(batch_size, "batch_size"),
                     require_positive_int(max_rows, "max_rows"))
    device, dtype = device_and_dtype(model)
    gen = torch.Generator(device=device).manual_seed(require_int(seed, "seed", 0))
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size].to(device, dtype)
        b = xb.shape[0]
        if proposal is None:
            mu, logvar = model.encode(xb)
        else:
            mu, logvar = (t[i : i + batch_size].to(device, dtype) for t in proposal)
        per_pass = max(1, max_rows // b)  # samples per image in one decoder pass
        for j in range(0, k, per_pass):
            kc = min(per_pass, k - j)
            eps = torch.randn((kc, b, mu.shape[1]), generator=gen, device=device, dtype=dtype)
            z = reparameterize(mu.expand(kc, -1, -1), logvar.expand(kc, -1, -1), eps)
            params = model.decode(z.reshape(kc * b, -1))
            log_px_z = model.likelihood.log_prob(xb.expand(kc, -1, -1).reshape(kc * b, -1),
                                                 params).view(kc, b)
            # ln p(z) - ln q(z|x), with ln q(z|x) = ln N(eps; 0, I) - sum ln sigma at
            # z = mu + sigma eps (exact, no z - mu).
            log_pz_minus_qz = (gaussian_log_density(z, 0.0, 0.0)
                               - gaussian_log_density(eps, 0.0, 0.0) + 0.5 * logvar).sum(dim=-1)
            yield i, j, (log_px_z + log_pz_minus_qz).T  # (b, kc)


@torch.inference_mode()
def log_importance_weights(model: nn.Module, x: torch.Tensor, k: int, batch_size: int = 100,
                           seed: int = 0, max_rows: int = MAX_ROWS,
                           proposal: Proposal | None = None) -> torch.Tensor:
    """ln w_j = ln p(x|z_j) + ln p(z_j) - ln q(z_j|x), (N, k) on the CPU (same draws as below).

    Their mean is a Monte Carlo ELBO, their log-mean-exp the importance-sampled ln p(x).
    proposal = (mu, logvar), each (N, d): sample z from these Gaussians instead of the
    encoder's q (notebook 05's per-image q*). Returns all N * k values.
    """
    k = _check_iw_inputs(model, x, [k], proposal)[0]
    out = torch.empty(x.shape[0], k)
    with mode_kept(model):
        model.eval()
        for i, j, log_w in _log_weight_chunks(model, x, k, batch_size, seed, max_rows, proposal):
            out[i : i + log_w.shape[0], j : j + log_w.shape[1]] = log_w.cpu()
    _check_finite(out, "the log-weights")
    return out


@torch.inference_mode()
def iw_log_likelihood(model: nn.Module, x: torch.Tensor, k: int, batch_size: int = 100,
                      seed: int = 0, max_rows: int = MAX_ROWS,
                      proposal: Proposal | None = None) -> torch.Tensor:
    """Importance-sampled ln p(x) per image, (N,) on the CPU: log-mean-exp over k samples.

    ln p(x) ~= ln (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x), z_j ~ q(z|x) (or ``proposal``).
    k = 1 is the single-sample ELBO; the estimate rises towards ln p(x) as k grows (it is
    itself a lower bound in expectation, the importance-weighted bound L_k).
    """
    return iw_bound_curve(model, x, [k], batch_size, seed, max_rows, proposal, per_image=True)[k]


@torch.inference_mode()
def iw_bound_curve(model: nn.Module, x: torch.Tensor, ks: Sequence[int], batch_size: int = 100,
                   seed: int = 0, max_rows: int = MAX_ROWS, proposal: Proposal | None = None,
                   per_image: bool = False) -> dict:
    """The importance-weighted bound L_k for each k in ks: mean over images (nats per image),
    or with per_image=True each image's estimate (N,) on the CPU.

    One set of max(ks) samples per image; the bound for k uses its first k (nested
    estimates, so the curve is smooth in k). k = 1 is a single-sample ELBO estimate.
    """
    ks = _check_iw_inputs(model, x, ks, proposal)
    n = x.shape[0]
    # running log-sum-exp of each image's first k weights
    acc = {k: torch.full((n,), -math.inf, dtype=torch.float64) for k in ks}
    with mode_kept(model):
        model.eval()
        for i, j, log_w in _log_weight_chunks(model, x, max(ks), batch_size, seed, max_rows,
                                              proposal):
            log_w = log_w.double().cpu()
            rows = slice(i, i + log_w.shape[0])
            for k in ks:
                if j < k:
                    part = torch.logsumexp(log_w[:, : k - j], dim=1)
                    acc[k][rows] = torch.logaddexp(acc[k][rows], part)
    _check_finite(acc[max(ks)], "the importance-sampled log-likelihood")
    curves = {k: (acc[k] - math.log(k)).float() for k in ks}
    return curves if per_image else {k: float(v.double().mean()) for k, v in curves.items()}


def device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's parameters live and their dtype: where its inputs must go."""
    param = next(iter(model.parameters()), None)
    if param is None:
        return torch.device("cpu"), torch.float32
    return param.device, param.dtype


def _check_eval_inputs(model: nn.Module, x: torch.Tensor) -> None:
    """The model, the data, and what the model returns on the data's first images."""
    check_vae_interface(model)
    model.likelihood.check_data(x)
    width = getattr(model, "input_dim", x.shape[1])
    if x.shape[1] != width:
        raise ValueError(f"x must have shape (N, {width}), got {tuple(x.shape)}")
    device, dtype = device_and_dtype(model)
    check_model(model, x[:2].to(device, dtype))


def _check_finite(result: float | torch.Tensor, what: str) -> None:
    """A score that is NaN or infinite is no score: say so rather than return it."""
    if not bool(torch.isfinite(torch.as_tensor(result)).all()):
        raise NonFiniteError(f"{what} came out NaN or infinite although the model's weights "
                             "are finite: its outputs overflow on some images; check its "
                             "layers (a decoder's log-variance, for example)")


def _check_iw_inputs(model: nn.Module, x: torch.Tensor, ks: Sequence[int],
                     proposal: Proposal | None) -> list[int]:
    """Everything the importance-sampling functions take, checked before any work starts."""
    if isinstance(ks, np.ndarray) and ks.ndim == 1:
        ks = ks.tolist()
    if isinstance(ks, str) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"ks must list at least one number of samples, got {ks!r}")
    ks = [require_positive_int(k, "k (the number of importance samples)") for k in ks]
    _check_eval_inputs(model, x)
    if proposal is not None:
        if not (isinstance(proposal, tuple | list) and len(proposal) == 2 and all(
                isinstance(t, torch.Tensor) for t in proposal)):
            raise ValueError("proposal must be a pair (mu, logvar) of tensors (N, d), or None")
        mu, logvar = proposal
        if mu.ndim != 2 or mu.shape[0] != x.shape[0] or mu.shape != logvar.shape:
            raise ValueError(f"the proposal's mu and logvar must both be (N, d) for the "
                             f"N = {x.shape[0]} images, got {tuple(mu.shape)} and "
                             f"{tuple(logvar.shape)}")
        if not (bool(torch.isfinite(mu).all()) and bool(torch.isfinite(logvar).all())):
            raise ValueError("the proposal's mu or logvar contains non-finite values")
    return ks
