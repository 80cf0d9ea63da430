"""Checks for notebook 04's exercises: 4.1 the reparameterization, 4.2 the VAE loss.

Each check draws its inputs when it runs (several shapes), computes the package's answer
(vaelab.vae) first, then runs the student's function on copies (so a function that writes
into its inputs changes neither the reference nor the diagnosis) and, for a wrong answer,
recognises the usual mistakes to give a hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from vaelab.exercises.core import (
    Mistake,
    call_student,
    diagnose,
    draws_its_own_noise,
    fail,
    fresh_seed,
    grid_tensor,
    passed,
    reveal,
    show,
    tensor_answer,
)
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import reparameterize, vae_loss

RTOL, ATOL = 1e-4, 1e-4
_TENSOR_HINT = "build the result from the tensors you are given, with torch operations"


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL))


def _tensor(rng: np.random.Generator, low: float, high: float, shape: tuple[int, ...],
            avoid: tuple[float, ...] = ()) -> torch.Tensor:
    """float32 values on the 0.1 grid, as an encoder would give them."""
    return grid_tensor(rng, low, high, shape, avoid, torch.float32)


# ----------------------------------------------------------------------------- 4.1


class ReparamCase(NamedTuple):
    mu: torch.Tensor  # (B, d)
    logvar: torch.Tensor  # (B, d), never 0: sigma differs from the variance and from logvar
    eps: torch.Tensor  # (B, d)
    want: torch.Tensor  # (B, d)


def _reparam_cases(seed: int) -> list[ReparamCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for batch, dims in ((2, 3), (int(rng.integers(3, 7)), int(rng.integers(2, 6)))):
        mu = _tensor(rng, -2.0, 2.0, (batch, dims))
        logvar = _tensor(rng, -2.0, 1.0, (batch, dims), avoid=(0.0,))
        eps = _tensor(rng, -2.0, 2.0, (batch, dims), avoid=(0.0,))
        cases.append(ReparamCase(mu, logvar, eps, reparameterize(mu, logvar, eps)))
    return cases


REPARAM_MISTAKES = [
    Mistake("your z equals mu + exp(logvar) * eps",
            "exp(logvar) is the variance sigma^2; the noise is scaled by the standard "
            "deviation sigma = exp(logvar / 2)", lambda c: c.mu + torch.exp(c.logvar) * c.eps),
    Mistake("your z equals mu + logvar * eps",
            "logvar is ln sigma^2, not sigma: sigma is the exponential of half of it",
            lambda c: c.mu + c.logvar * c.eps),
    Mistake("your z equals exp(0.5 * logvar) * eps", "z is centred on mu: add mu",
            lambda c: torch.exp(0.5 * c.logvar) * c.eps),
    Mistake("your z equals mu: the noise is missing",
            "add the noise eps, scaled by the standard deviation", lambda c: c.mu),
    Mistake("your z equals mu - sigma * eps: as a random draw it has the right distribution "
            "(eps and -eps are equally likely), but it is not the sample this eps gives",
            "the reparameterization adds the scaled noise to mu; the check, and the code that "
            "builds on it, pass a given eps and expect that same sample",
            lambda c: c.mu - torch.exp(0.5 * c.logvar) * c.eps),
    Mistake("your z equals mu + logvar / 2 * eps: ln sigma, not sigma, scales the noise",
            "logvar / 2 is ln sigma; sigma itself is its exponential",
            lambda c: c.mu + 0.5 * c.logvar * c.eps),
]
OWN_NOISE_HINT = ("eps is the noise: it is drawn once, outside, and passed in, so that z is a "
                  "function of mu, logvar and eps that gradients pass through; use the eps you "
                  "are given and draw nothing inside the function")
REPARAM_HINT = ("use the eps you are given (do not draw new noise) and the standard deviation "
                "sigma, the exponential of half of logvar, not the variance")


def check_reparameterize(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                         ) -> None:
    """Exercise 4.1: fn(mu, logvar, eps) -> z, shapes (B, d); must match vaelab.vae."""
    ex = "4.1"
    calls = []  # per case: z as compared (float64, CPU), the case in float64, z, mu and logvar
    for case in _reparam_cases(fresh_seed()):
        mu_in = case.mu.clone().requires_grad_(True)
        logvar_in = case.logvar.clone().requires_grad_(True)
        z = call_student(ex, fn, mu_in, logvar_in, case.eps.clone(),
                         names=("mu", "logvar", "eps"))
        zd = tensor_answer(z, ex, "your function", _TENSOR_HINT)
        if zd.shape != case.want.shape:
            fail(ex, f"z has shape {tuple(zd.shape)}, expected {tuple(case.want.shape)} (same "
                 "as mu)", "combine mu, logvar and eps elementwise; do not sum or reshape")
        double = case._replace(mu=case.mu.double(), logvar=case.logvar.double(),
                               eps=case.eps.double(), want=case.want.double())
        calls.append((zd, double, z, mu_in, logvar_in))
    results = [(zd, case) for zd, case, *_ in calls]
    for zd, case in results:
        if not _close(zd, case.want):
            diagnose(ex, zd, case, REPARAM_MISTAKES, _close, also=results)
            if draws_its_own_noise(ex, fn, case.mu, case.logvar, case.eps):
                fail(ex, "your z changes from call to call for the same mu, logvar and eps: "
                     "your function draws noise of its own", OWN_NOISE_HINT)
            fail(ex, f"z differs from mu + sigma * eps: at mu = {show(case.mu[0])}, logvar = "
                 f"{show(case.logvar[0])}, eps = {show(case.eps[0])} (first row) your z is "
                 f"{show(zd[0])}" + reveal(f"expected {show(case.want[0])}"), REPARAM_HINT)
    for _, case, z, mu_in, logvar_in in calls:
        if not (isinstance(z, torch.Tensor) and z.requires_grad):
            fail(ex, "z does not depend on mu and logvar through autograd",
                 "do not detach or sample with torch.normal: z = mu + sigma * eps keeps the "
                 "noise outside, so gradients reach the encoder")
        z.sum().backward()
        if (mu_in.grad is None or logvar_in.grad is None
                or not _close(mu_in.grad.double(), torch.ones_like(case.mu))):
            fail(ex, "the gradient of z with respect to mu is not 1",
                 "z must be mu plus the scaled noise, built with torch operations")
    passed(ex, "Gradients flow to mu and logvar; the randomness sits in eps.")


# ----------------------------------------------------------------------------- 4.2


class LossCase(NamedTuple):
    logits: torch.Tensor  # (B, D)
    x: torch.Tensor  # (B, D) binary
    mu: torch.Tensor  # (B, d)
    logvar: torch.Tensor  # (B, d)
    want: torch.Tensor  # ()

    @property
    def bce(self) -> torch.Tensor:  # (B, D)
        return F.binary_cross_entropy_with_logits(self.logits, self.x, reduction="none")

    @property
    def kl(self) -> torch.Tensor:  # (B,)
        return gaussian_kl_standard_normal(self.mu, self.logvar)


def _loss_cases(seed: int) -> list[LossCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for batch, pixels, dims in ((2, 4, 2), (int(rng.integers(3, 7)), int(rng.integers(6, 17)),
                                            int(rng.integers(2, 5)))):
        logits = _tensor(rng, -3.0, 3.0, (batch, pixels), avoid=(0.0,))
        x = torch.from_numpy(rng.integers(0, 2, (batch, pixels))).float()
        x[0, :2] = torch.tensor([0.0, 1.0])  # both pixel values occur
        mu = _tensor(rng, -2.0, 2.0, (batch, dims))
        logvar = _tensor(rng, -2.0, 1.0, (batch, dims), avoid=(0.0,))
        cases.append(LossCase(logits, x, mu, logvar, vae_loss(logits, x, mu, logvar).loss))
    return cases


LOSS_MISTAKES = [
    Mistake("you averaged the reconstruction over pixels",
            "ln p(x|z) is a sum over the pixels of the image: sum the BCE over dim 1, then "
            "average over the batch (a pixel mean shrinks it 784 times against the KL)",
            lambda c: (c.bce.mean(dim=1) + c.kl).mean()),
    Mistake("the KL term has the wrong sign",
            "the ELBO is E[ln p(x|z)] - KL, so the loss (the negative ELBO) adds the KL, which "
            "is always >= 0", lambda c: (c.bce.sum(dim=1) - c.kl).mean()),
    Mistake("you summed over the batch",
            "average over the batch (the loss is per image), sum only over pixels",
            lambda c: (c.bce.sum(dim=1) + c.kl).sum()),
    Mistake("the KL term is missing",
            "add KL(q(z|x) || N(0, I)), the closed form of notebook 03, per image",
            lambda c: c.bce.sum(dim=1).mean()),
    Mistake("your KL treats logvar as the standard deviation",
            "logvar is ln sigma^2: sigma^2 = exp(logvar)",
            lambda c: (c.bce.sum(dim=1)
                       + gaussian_kl_standard_normal(c.mu, 2 * torch.log(c.logvar.abs()))).mean()),
    Mistake("you applied a sigmoid to the logits first",
            "binary_cross_entropy_with_logits applies the sigmoid itself: pass the logits",
            lambda c: (F.binary_cross_entropy_with_logits(torch.sigmoid(c.logits), c.x,
                                                          reduction="none").sum(dim=1)
                       + c.kl).mean()),
    Mistake("the KL term is twice the KL",
            "the closed-form KL of notebook 03 has a factor 1/2 in front of its sum",
            lambda c: (c.bce.sum(dim=1) + 2.0 * c.kl).mean()),
    Mistake("the arguments of the binary cross-entropy are swapped",
            "its first argument is the prediction (here the logits, the decoder's output), the "
            "second the target (the image x)",
            lambda c: (F.binary_cross_entropy_with_logits(c.x, c.logits, reduction="none")
                       .sum(dim=1) + c.kl).mean()),
    Mistake("the arguments of the binary cross-entropy are swapped",
            "its first argument is the prediction, the second the target (the image x); and "
            "binary_cross_entropy_with_logits takes the logits as they are",
            lambda c: (F.binary_cross_entropy(c.x, torch.sigmoid(c.logits), reduction="none")
                       .sum(dim=1) + c.kl).mean()),
    Mistake("you averaged the KL over the latent dimensions",
            "the KL of a diagonal Gaussian is a sum over its dimensions",
            lambda c: (c.bce.sum(dim=1) + c.kl / c.mu.shape[1]).mean()),
    Mistake("the ln sigma^2 term of the KL has the wrong sign",
            "compare each term's sign with notebook 03's closed form: ln sigma^2 is subtracted",
            lambda c: (c.bce.sum(dim=1) + c.kl + c.logvar.sum(dim=1)).mean()),
]
LOSS_HINT = ("the loss is the mean over the batch of two terms per image: the reconstruction "
             "term (binary cross-entropy on the logits, summed over pixels) and the closed-form "
             "Gaussian KL of notebook 03 (summed over latent dimensions)")


def check_vae_loss(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Exercise 4.2: fn(logits, x, mu, logvar) -> scalar loss, the batch mean of recon + KL."""
    ex = "4.2"
    results = []
    for case in _loss_cases(fresh_seed()):
        out = call_student(ex, fn, case.logits.clone(), case.x.clone(), case.mu.clone(),
                           case.logvar.clone(), names=("logits", "x", "mu", "logvar"))
        if isinstance(out, tuple) and out:  # accept (loss, recon, kl) as well as the loss alone
            out = out[0]
        loss = tensor_answer(out, ex, "your loss", _TENSOR_HINT)
        if loss.numel() != 1:
            fail(ex, f"the loss must be one number (a scalar), got shape {tuple(loss.shape)}",
                 "sum over pixels and latent dimensions, then average over the batch")
        results.append((loss.reshape(()), case))
    for value, case in results:
        want = case.want.double()
        if _close(value, want):
            continue
        where = (f" (at logits = {show(case.logits)}, x = {show(case.x)}, mu = {show(case.mu)}, "
                 f"logvar = {show(case.logvar)} your loss is {value.item():.4f}"
                 + reveal(f"expected {want.item():.4f}") + ")")
        diagnose(ex, value, case, LOSS_MISTAKES, lambda a, b: _close(a, b.double()), where,
                 also=results)
        fail(ex, "your loss is not the negative ELBO" + where, LOSS_HINT)
    passed(ex, "the batch mean of the BCE summed over pixels plus the KL.")
