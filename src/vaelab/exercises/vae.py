"""Checks for notebook 04's exercises: 4.1 the reparameterization, 4.2 the VAE loss.

Each check computes the package's answer (vaelab.vae) first, then runs the student's
function on copies of the fixed inputs (so a function that writes into its inputs changes
neither the reference nor the diagnosis) and, for a wrong answer, recognises the usual
mistakes to give a hint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from vaelab.exercises.core import call_student, fail, passed, reveal
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import reparameterize, vae_loss

RTOL, ATOL = 1e-4, 1e-4


def _fixed_gaussian(batch: int = 4, latent: int = 3) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(4)
    mu = torch.randn(batch, latent, generator=gen)
    logvar = torch.randn(batch, latent, generator=gen) - 0.5  # sigma differs from var and logvar
    eps = torch.randn(batch, latent, generator=gen)
    return mu, logvar, eps


def _as_tensor(value: object, exercise: str, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(exercise, f"{what} must return a torch.Tensor, got {type(value).__name__}",
             "build the result from the tensors you are given, with torch operations")
    return value


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL))


def check_reparameterize(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                         ) -> None:
    """Exercise 4.1: fn(mu, logvar, eps) -> z, shapes (B, d); must match vaelab.vae."""
    ex = "4.1"
    mu, logvar, eps = _fixed_gaussian()
    expected = reparameterize(mu, logvar, eps)
    mu_in = mu.clone().requires_grad_(True)
    logvar_in = logvar.clone().requires_grad_(True)
    z = _as_tensor(call_student(ex, fn, mu_in, logvar_in, eps.clone()), ex, "your function")
    if z.shape != expected.shape:
        fail(ex, f"z has shape {tuple(z.shape)}, expected {tuple(expected.shape)} (same as mu)",
             "combine mu, logvar and eps elementwise; do not sum or reshape")
    zd = z.detach()
    if not _close(zd, expected.detach()):
        with torch.no_grad():
            wrong = [
                ("mu + exp(logvar) * eps", mu + torch.exp(logvar) * eps,
                 "exp(logvar) is the variance sigma^2; the noise is scaled by the standard "
                 "deviation sigma = exp(logvar / 2)"),
                ("mu + logvar * eps", mu + logvar * eps,
                 "logvar is ln sigma^2, not sigma: use sigma = exp(0.5 * logvar)"),
                ("exp(0.5 * logvar) * eps", torch.exp(0.5 * logvar) * eps,
                 "z is centred on mu: add mu"),
            ]
        for formula, value, hint in wrong:
            if _close(zd, value):
                fail(ex, f"your z equals {formula}", hint)
        if _close(zd, mu.detach()):
            fail(ex, "your z equals mu: the noise is missing",
                 "add the noise eps, scaled by the standard deviation")
        fail(ex, f"z differs from mu + sigma * eps (your first row {zd[0].tolist()}"
             + reveal(f"expected {expected[0].tolist()}") + ")",
             "use the eps you are given (do not draw new noise) and the standard deviation "
             "sigma = exp(0.5 * logvar), not the variance")
    if not z.requires_grad:
        fail(ex, "z does not depend on mu and logvar through autograd",
             "do not detach or sample with torch.normal: z = mu + sigma * eps keeps the "
             "noise outside, so gradients reach the encoder")
    z.sum().backward()
    if (mu_in.grad is None or logvar_in.grad is None
            or not _close(mu_in.grad, torch.ones_like(mu))):
        fail(ex, "the gradient of z with respect to mu is not 1",
             "z must be mu plus the scaled noise, built with torch operations")
    passed(ex, "Gradients flow to mu and logvar; the randomness sits in eps.")


def _fixed_batch(batch: int = 5, pixels: int = 12, latent: int = 3) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(42)
    logits = 2 * torch.randn(batch, pixels, generator=gen)
    x = (torch.rand(batch, pixels, generator=gen) < 0.4).float()
    mu = torch.randn(batch, latent, generator=gen)
    logvar = torch.randn(batch, latent, generator=gen) - 0.3
    return logits, x, mu, logvar


def check_vae_loss(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Exercise 4.2: fn(logits, x, mu, logvar) -> scalar loss, the batch mean of recon + KL."""
    ex = "4.2"
    logits, x, mu, logvar = _fixed_batch()
    expected = vae_loss(logits, x, mu, logvar).loss
    out = call_student(ex, fn, logits.clone(), x.clone(), mu.clone(), logvar.clone())
    if isinstance(out, tuple):  # accept (loss, recon, kl) as well as the loss alone
        out = out[0]
    loss = _as_tensor(out, ex, "your loss")
    if loss.numel() != 1:
        fail(ex, f"the loss must be one number (a scalar), got shape {tuple(loss.shape)}",
             "sum over pixels and latent dimensions, then average over the batch")
    value = loss.detach().reshape(())
    if _close(value, expected):
        passed(ex, f"loss = {expected.item():.4f} nats per image on the fixed batch.")
        return
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    kl = gaussian_kl_standard_normal(mu, logvar)
    double_sigmoid = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="none")
    wrong = [
        ((bce.mean(dim=1) + kl).mean(), "you averaged the reconstruction over pixels",
         "ln p(x|z) is a sum over the pixels of the image: sum the BCE over dim 1, then "
         "average over the batch (a pixel mean shrinks it 784 times against the KL)"),
        (bce.mean() + kl.mean(), "you averaged the reconstruction over pixels",
         "sum the BCE over the pixels of each image, average only over the batch"),
        ((bce.sum(dim=1) - kl).mean(), "the KL term has the wrong sign",
         "the ELBO is E[ln p(x|z)] - KL, so the loss (the negative ELBO) adds the KL, which "
         "is always >= 0"),
        ((bce.sum(dim=1) + kl).sum(), "you summed over the batch",
         "average over the batch (the loss is per image), sum only over pixels"),
        (bce.sum(dim=1).mean(), "the KL term is missing",
         "add KL(q(z|x) || N(0, I)), the closed form of notebook 03, per image"),
        ((bce.sum(dim=1) + gaussian_kl_standard_normal(mu, 2 * torch.log(logvar.abs()))).mean(),
         "your KL treats logvar as the standard deviation",
         "logvar is ln sigma^2: sigma^2 = exp(logvar)"),
        ((double_sigmoid.sum(dim=1) + kl).mean(), "you applied a sigmoid to the logits first",
         "binary_cross_entropy_with_logits applies the sigmoid itself: pass the logits"),
    ]
    for candidate, problem, hint in wrong:
        if _close(value, candidate):
            fail(ex, f"{problem} (your loss {value.item():.4f}"
                 + reveal(f"expected {expected.item():.4f}") + ")", hint)
    fail(ex, f"your loss {value.item():.4f} is not the negative ELBO"
         + reveal(f"expected {expected.item():.4f}"),
         "the loss is the mean over the batch of two terms per image: the reconstruction "
         "term (binary cross-entropy on the logits, summed over pixels) and the closed-form "
         "Gaussian KL of notebook 03 (summed over latent dimensions)")
