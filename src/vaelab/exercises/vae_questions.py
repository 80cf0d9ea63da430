"""Checks for notebook 05's exercises: free bits (5.1) and the per-image optimisation loop (5.2)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from vaelab.exercises.core import call_student, fail, passed, reveal
from vaelab.inference_gaps import negative_elbo, optimise_local_posteriors
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import VAE, vae_loss

FREE_BITS = "5.1"
LOCAL_Q = "5.2"


def _free_bits_inputs() -> tuple[torch.Tensor, torch.Tensor, float]:
    """A batch (8 images, 5 dimensions) where some dimensions sit below the floor and some
    above it, and where single images straddle it (so per-image flooring gives another value)."""
    gen = torch.Generator().manual_seed(5)
    scale = torch.tensor([0.05, 0.3, 1.0, 2.0, 0.6])
    mu = torch.randn(8, 5, generator=gen, dtype=torch.float64) * scale
    logvar = torch.randn(8, 5, generator=gen, dtype=torch.float64) * 0.3 * scale
    return mu, logvar, 0.6


def free_bits_reference(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term that ``vaelab.vae.vae_loss(..., free_bits=...)`` puts in its loss (kl_weight 1).

    Read off the package's loss itself (minus its reconstruction part), so there is one
    definition of free bits.
    """
    x = torch.zeros(mu.shape[0], 1, dtype=mu.dtype)
    terms = vae_loss(torch.zeros_like(x), x, mu, logvar, free_bits=free_bits)
    return terms.loss - terms.recon.mean()


FreeBitsFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def check_free_bits(student_fn: FreeBitsFn) -> None:
    """Exercise 5.1: free_bits_kl(mu, logvar, free_bits) -> sum_j max(lambda, mean_i KL_ij)."""
    mu, logvar, lam = _free_bits_inputs()
    expected = float(free_bits_reference(mu, logvar, lam))
    got = call_student(FREE_BITS, student_fn, mu.clone(), logvar.clone(), lam)
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        fail(FREE_BITS, f"expected a scalar tensor, got {type(got).__name__} "
             f"{tuple(got.shape) if isinstance(got, torch.Tensor) else ''}",
             "reduce to one number: the loss term of the whole batch")
    got_v = float(got)
    if abs(got_v - expected) < 1e-6 * max(1.0, abs(expected)):
        passed(FREE_BITS, f"free-bits KL term = {expected:.4f} nats")
        return
    kl_ij = gaussian_kl_standard_normal(mu.unsqueeze(-1), logvar.unsqueeze(-1))  # (B, d)
    wrong = {
        "returned the plain KL, without a floor":
            (kl_ij.mean(0).sum(), "apply max(lambda, .) to each dimension's batch-mean KL"),
        "floored each image's KL before averaging over the batch":
            (kl_ij.clamp(min=lam).mean(0).sum(),
             "average each dimension's KL over the batch first, then floor it: a single image "
             "may sit below the floor while the dimension as a whole does not"),
        "floored the total KL instead of each dimension":
            (kl_ij.sum(1).mean().clamp(min=lam * kl_ij.shape[1]),
             "the floor applies to every latent dimension separately: sum_j max(lambda, KL_j)"),
        "took the minimum instead of the maximum":
            (kl_ij.mean(0).clamp(max=lam).sum(),
             "a floor is max(lambda, KL_j): dimensions below lambda count as lambda"),
        "averaged over the latent dimensions instead of summing":
            (kl_ij.mean(0).clamp(min=lam).mean(),
             "the KL of a diagonal Gaussian is a sum over dimensions: sum, do not average"),
        "summed over the batch instead of averaging":
            (kl_ij.sum(0).clamp(min=lam).sum(),
             "the loss is a mean over the batch: average each dimension's KL over the images"),
    }
    for problem, (value, hint) in wrong.items():
        if abs(got_v - float(value)) < 1e-6 * max(1.0, abs(float(value))):
            fail(FREE_BITS, f"you {problem} (your term {got_v:.4f}"
                 + reveal(f"expected {expected:.4f}") + ")", hint)
    fail(FREE_BITS, f"your term {got_v:.4f} is not the free-bits KL"
         + reveal(f"expected {expected:.4f}"),
         "work in three steps: the KL of each image in each latent dimension (a (B, d) "
         "array), its mean over the batch per dimension, then the floor on each dimension "
         "and the sum over dimensions")


def _local_q_setup() -> tuple[VAE, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small fixed random VAE and binary images: fast, and the encoder is far from optimal."""
    torch.manual_seed(52)
    model = VAE(latent_dim=3, hidden=(32,), input_dim=40).eval()
    gen = torch.Generator().manual_seed(52)
    x = (torch.rand(16, 40, generator=gen) < 0.3).float()
    with torch.no_grad():
        mu0, logvar0 = model.encode(x)
    return model, x, mu0, logvar0


def _mean_elbo(model: VAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> float:
    torch.manual_seed(7)
    with torch.no_grad():
        return -float(negative_elbo(model, x, mu, logvar, samples=2000).mean())


def _uphill(model: VAE, x: torch.Tensor, mu0: torch.Tensor, logvar0: torch.Tensor,
            mu1: torch.Tensor, logvar1: torch.Tensor) -> bool:
    """Whether the step from (mu0, logvar0) to (mu1, logvar1) raised the negative ELBO to
    first order (along its gradient, estimated with many samples)."""
    mu = mu0.clone().requires_grad_(True)
    logvar = logvar0.clone().requires_grad_(True)
    torch.manual_seed(7)
    negative_elbo(model, x, mu, logvar, samples=500).sum().backward()
    slope = ((mu1 - mu0) * mu.grad).sum() + ((logvar1 - logvar0) * logvar.grad).sum()
    return float(slope) > 0


def check_local_q(student_fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Exercise 5.2: optimise_q(model, x, mu0, logvar0, steps, lr) -> (mu, logvar)."""
    model, x, mu0, logvar0 = _local_q_setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ref_mu, ref_logvar = optimise_local_posteriors(model, x, mu0, logvar0, steps=150, lr=0.05)
    start, best = _mean_elbo(model, x, mu0, logvar0), _mean_elbo(model, x, ref_mu, ref_logvar)
    mu_in, logvar_in = mu0.clone(), logvar0.clone()
    out = call_student(LOCAL_Q, student_fn, model, x, mu_in, logvar_in, 150, 0.05,
                       seconds=300.0)
    if not (isinstance(out, tuple | list) and len(out) == 2
            and all(isinstance(t, torch.Tensor) for t in out)):
        fail(LOCAL_Q, "expected a pair of tensors (mu, logvar)", "return mu, logvar at the end")
    mu, logvar = (t.detach() for t in out)
    if mu.shape != mu0.shape or logvar.shape != logvar0.shape:
        fail(LOCAL_Q, f"expected (mu, logvar) of shape {tuple(mu0.shape)}, got "
             f"{tuple(mu.shape)} and {tuple(logvar.shape)}", "one row of parameters per image")
    if not (torch.equal(mu_in, mu0) and torch.equal(logvar_in, logvar0)):
        fail(LOCAL_Q, "mu0 or logvar0 was changed in place",
             "optimise copies of them, detached from the encoder's graph, and leave the "
             "arguments as they were")
    if any(not torch.equal(v, model.state_dict()[k]) for k, v in before.items()):
        model.load_state_dict(before)
        fail(LOCAL_Q, "the model's weights changed",
             "give the optimiser only [mu, logvar]: the decoder stays fixed, only each image's "
             "q moves")
    end = _mean_elbo(model, x, mu, logvar)
    if torch.allclose(mu, mu0) and torch.allclose(logvar, logvar0):
        fail(LOCAL_Q, "mu and logvar did not move",
             "create them with requires_grad_(True), pass them to torch.optim.Adam, and call "
             "loss.backward() and opt.step() in every iteration")
    if end < start:
        # A flipped sign goes uphill from the first step; forgotten zero_grad only later,
        # when the summed old gradients overshoot (the first step of both is the same).
        mu1, logvar1 = (t.detach() for t in call_student(
            LOCAL_Q, student_fn, model, x, mu0.clone(), logvar0.clone(), 1, 0.05))
        if _uphill(model, x, mu0, logvar0, mu1, logvar1):
            fail(LOCAL_Q, f"the mean ELBO went down, from {start:.3f} to {end:.3f}, from the "
                 "first step on", "minimise the negative ELBO (negative_elbo(...).sum()), do "
                 "not maximise it")
        fail(LOCAL_Q, f"the mean ELBO went down, from {start:.3f} to {end:.3f}, although "
             "your first step went the right way",
             "gradients add up across backward() calls unless they are zeroed: call "
             "opt.zero_grad() in every step, before loss.backward()")
    if end - start < 0.5 * (best - start):
        fail(LOCAL_Q, f"the mean ELBO rose only from {start:.3f} to {end:.3f}"
             + reveal(f"the package's loop reaches {best:.3f}"),
             "zero the gradients in every step (opt.zero_grad()), and use all `steps` steps")
    passed(LOCAL_Q, "each image's q now has a higher ELBO than the encoder gave it.")
