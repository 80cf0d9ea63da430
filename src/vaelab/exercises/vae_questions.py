"""Checks for notebook 05's exercises: free bits (5.1) and the per-image optimisation loop (5.2).

Both draw their inputs when they run (5.1 in two shapes, 5.2 a small random VAE and
images) and leave the notebook's random state as they found it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from vaelab.exercises.core import (
    Mistake,
    call_student,
    diagnose,
    fail,
    fresh_seed,
    global_state_kept,
    grid,
    inputs_changed,
    on_cpu,
    passed,
    reveal,
    tensor_answer,
)
from vaelab.inference_gaps import negative_elbo, optimise_local_posteriors
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.references import answers
from vaelab.vae import VAE, vae_loss

FREE_BITS = "5.1"
LOCAL_Q = "5.2"


@answers(FREE_BITS)
def free_bits_reference(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term that ``vaelab.vae.vae_loss(..., free_bits=...)`` puts in its loss (kl_weight 1).

    Read off the package's loss itself (minus its reconstruction part), so there is one
    definition of free bits.
    """
    x = torch.zeros(mu.shape[0], 1, dtype=mu.dtype)
    terms = vae_loss(torch.zeros_like(x), x, mu, logvar, free_bits=free_bits)
    return terms.loss - terms.recon.mean()


class FreeBitsCase(NamedTuple):
    mu: torch.Tensor  # (B, d)
    logvar: torch.Tensor  # (B, d)
    free_bits: float
    want: float

    @property
    def kl(self) -> torch.Tensor:
        """Each image's KL in each latent dimension, (B, d)."""
        return gaussian_kl_standard_normal(self.mu.unsqueeze(-1), self.logvar.unsqueeze(-1))


FREE_BITS_MISTAKES = [
    Mistake("you returned the plain KL, without a floor",
            "apply max(lambda, .) to each dimension's batch-mean KL",
            lambda c: c.kl.mean(0).sum()),
    Mistake("you floored each image's KL before averaging over the batch",
            "average each dimension's KL over the batch first, then floor it: a single image "
            "may sit below the floor while the dimension as a whole does not",
            lambda c: c.kl.clamp(min=c.free_bits).mean(0).sum()),
    Mistake("you floored the total KL instead of each dimension",
            "the floor applies to every latent dimension separately: sum_j max(lambda, KL_j)",
            lambda c: c.kl.sum(1).mean().clamp(min=c.free_bits * c.kl.shape[1])),
    Mistake("you took the minimum instead of the maximum",
            "a floor is max(lambda, KL_j): dimensions below lambda count as lambda",
            lambda c: c.kl.mean(0).clamp(max=c.free_bits).sum()),
    Mistake("you averaged over the latent dimensions instead of summing",
            "the KL of a diagonal Gaussian is a sum over dimensions: sum, do not average",
            lambda c: c.kl.mean(0).clamp(min=c.free_bits).mean()),
    Mistake("you summed over the batch instead of averaging",
            "the loss is a mean over the batch: average each dimension's KL over the images",
            lambda c: c.kl.sum(0).clamp(min=c.free_bits).sum()),
]

FREE_BITS_HINT = ("work in three steps: the KL of each image in each latent dimension (a (B, d) "
                  "array), its mean over the batch per dimension, then the floor on each "
                  "dimension and the sum over dimensions")


def _free_bits_cases(seed: int) -> list[FreeBitsCase]:
    """Batches where some dimensions sit below the floor and some above it, and where
    single images straddle it, drawn again until every known mistake gives its own value
    (so each is told apart from the right answer and from the others)."""
    rng = np.random.default_rng(seed)
    cases: list[FreeBitsCase] = []
    for _ in range(1000):
        if len(cases) == 2:
            return cases
        batch, dims = (8, 5) if not cases else (int(rng.integers(6, 11)), int(rng.integers(3, 6)))
        scale = rng.uniform(0.05, 0.4, dims)
        scale[0] = 1.5  # one dimension above the floor, where single images straddle it
        mu = torch.from_numpy(rng.standard_normal((batch, dims)) * scale)
        logvar = torch.from_numpy(rng.standard_normal((batch, dims)) * 0.3 * scale)
        lam = float(grid(rng, 0.3, 0.6))
        case = FreeBitsCase(mu, logvar, lam, float(free_bits_reference(mu, logvar, lam)))
        values = sorted([case.want] + [float(m.answer(case)) for m in FREE_BITS_MISTAKES])
        if np.diff(values).min() > 1e-3:
            cases.append(case)
    raise RuntimeError("two of FREE_BITS_MISTAKES give the same value on every batch drawn: "
                       "merge them, or make one of them another mistake")


def _same(a: float, b: object) -> bool:
    return abs(a - float(b)) < 1e-6 * max(1.0, abs(float(b)))  # type: ignore[arg-type]


FreeBitsFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def check_free_bits(student_fn: FreeBitsFn) -> None:
    """Exercise 5.1: free_bits_kl(mu, logvar, free_bits) -> sum_j max(lambda, mean_i KL_ij)."""
    results = []
    for case in _free_bits_cases(fresh_seed()):
        out = call_student(FREE_BITS, student_fn, case.mu.clone(), case.logvar.clone(),
                           case.free_bits, names=("mu", "logvar", "free_bits"))
        got = tensor_answer(out, FREE_BITS, "your function", "return the loss term as a scalar "
                            "tensor, computed with torch operations from mu and logvar")
        if got.numel() != 1:
            fail(FREE_BITS, f"expected a scalar tensor, got shape {tuple(got.shape)}",
                 "reduce to one number: the loss term of the whole batch")
        results.append((float(got.reshape(())), case))
    for got_v, case in results:
        if _same(got_v, case.want):
            continue
        where = (f" (your term {got_v:.4f}" + reveal(f"expected {case.want:.4f}")
                 + f", for a batch of {case.mu.shape[0]} images in {case.mu.shape[1]} "
                 f"dimensions with free_bits = {case.free_bits:g})")
        diagnose(FREE_BITS, got_v, case, FREE_BITS_MISTAKES, _same, where, also=results)
        fail(FREE_BITS, "your term is not the free-bits KL" + where, FREE_BITS_HINT)
    passed(FREE_BITS, "the free-bits KL term of vaelab.vae.vae_loss.")


def _local_q_setup(seed: int) -> tuple[VAE, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small random VAE and binary images: fast, and the encoder is far from optimal."""
    torch.manual_seed(seed)
    model = VAE(latent_dim=3, hidden=(32,), input_dim=40).eval()
    gen = torch.Generator().manual_seed(seed)
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


class _ImageWeights:
    """While active, records how the loss that each backward pass differentiates weighs each
    image's negative ELBO: 1 for their sum, 1/N for their mean over N images.

    A forward hook on the decoder keeps its output (the Bernoulli logits l); a hook on that
    output reads the loss's gradient g there. The negative log-likelihood of a pixel x has
    gradient sigmoid(l) - x in l, so g = w (sigmoid(l) - x) with w the weight of that row:
    g > 0 where x = 0 and g < 0 where x = 1, which gives w without knowing how the rows
    line up with the images. Rows = samples per image x N images, each image's samples
    averaged, so w * rows / N is the weight of one image's negative ELBO. Adam's steps do
    not show it (they are the same for any constant factor of the loss); the gradient does.
    """

    def __init__(self, model: VAE, images: int) -> None:
        self.model, self.images, self.weights = model, images, []

    def __enter__(self) -> _ImageWeights:
        self.handle = self.model.decoder.register_forward_hook(self._forward)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()

    def _forward(self, module: torch.nn.Module, inputs: object, logits: torch.Tensor) -> None:
        if isinstance(logits, torch.Tensor) and logits.requires_grad:
            probs = torch.sigmoid(logits.detach())
            logits.register_hook(lambda grad: self._record(grad.detach(), probs))

    def _record(self, grad: torch.Tensor, probs: torch.Tensor) -> None:
        per_pixel = torch.where(grad > 0, grad / probs, grad / (probs - 1.0))[grad != 0]
        if per_pixel.numel():
            rows = grad.shape[0]
            self.weights.append(float(per_pixel.median()) * rows / self.images)

    def mean_over_images(self) -> bool:
        """Whether the losses weighed each image by 1/N or less (a mean over the images)."""
        return bool(self.weights) and float(np.median(self.weights)) < self.images**-0.5


LOCAL_Q_HINT = "zero the gradients in every step (opt.zero_grad()), and use all `steps` steps"


def check_local_q(student_fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Exercise 5.2: optimise_q(model, x, mu0, logvar0, steps, lr) -> (mu, logvar)."""
    with global_state_kept():  # the notebook's random state stays as it was
        _check_local_q(student_fn, fresh_seed())


def _pair(out: object, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's (mu, logvar) on the CPU in ``dtype``, or the feedback."""
    if not (isinstance(out, tuple | list) and len(out) == 2
            and all(isinstance(t, torch.Tensor) for t in out)):
        fail(LOCAL_Q, "expected a pair of tensors (mu, logvar)", "return mu, logvar at the end")
    mu, logvar = (on_cpu(t, LOCAL_Q, name).to(dtype) for t, name in zip(out, ("mu", "logvar"),
                                                                          strict=True))
    return mu, logvar


def _check_local_q(student_fn: Callable[..., tuple[torch.Tensor, torch.Tensor]], seed: int
                   ) -> None:
    model, x, mu0, logvar0 = _local_q_setup(seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ref_mu, ref_logvar = optimise_local_posteriors(model, x, mu0, logvar0, steps=150, lr=0.05)
    start, best = _mean_elbo(model, x, mu0, logvar0), _mean_elbo(model, x, ref_mu, ref_logvar)
    names = ("model", "x", "mu0", "logvar0", "steps", "lr")
    with _ImageWeights(model, x.shape[0]) as weights:
        out = call_student(LOCAL_Q, student_fn, model, x.clone(), mu0.clone(), logvar0.clone(),
                           150, 0.05, seconds=300.0, names=names)
    mu, logvar = _pair(out, mu0.dtype)
    attached = [name for name, t in zip(("mu", "logvar"), out, strict=True) if t.requires_grad]
    if attached:
        fail(LOCAL_Q, f"the {' and '.join(attached)} you returned still require gradients: they "
             "are attached to the optimisation's autograd graph",
             "the text asks for them detached: a tensor that requires grad cannot go to NumPy, "
             "and it keeps the whole graph of its last step in memory")
    if inputs_changed():
        fail(LOCAL_Q, f"{' and '.join(inputs_changed())} changed in place",
             "optimise copies of them, detached from the encoder's graph, and leave the "
             "arguments as they were")
    if mu.shape != mu0.shape or logvar.shape != logvar0.shape:
        fail(LOCAL_Q, f"expected (mu, logvar) of shape {tuple(mu0.shape)}, got "
             f"{tuple(mu.shape)} and {tuple(logvar.shape)}", "one row of parameters per image")
    if any(not torch.equal(v, model.state_dict()[k]) for k, v in before.items()):
        model.load_state_dict(before)
        fail(LOCAL_Q, "the model's weights changed",
             "give the optimiser only [mu, logvar]: the decoder stays fixed, only each image's "
             "q moves")
    if not (bool(torch.isfinite(mu).all()) and bool(torch.isfinite(logvar).all())):
        fail(LOCAL_Q, "mu or logvar holds NaN or infinite values",
             "a step size that is far too large, or a log of something that can be 0: start "
             "from copies of mu0 and logvar0 and use the lr you are given")
    end = _mean_elbo(model, x, mu, logvar)
    if torch.allclose(mu, mu0) and torch.allclose(logvar, logvar0):
        fail(LOCAL_Q, "mu and logvar did not move",
             "create them with requires_grad_(True), pass them to torch.optim.Adam, and call "
             "loss.backward() and opt.step() in every iteration")
    if end < start:
        # A flipped sign goes uphill from the first step; forgotten zero_grad only later,
        # when the summed old gradients overshoot (the first step of both is the same).
        mu1, logvar1 = _pair(call_student(LOCAL_Q, student_fn, model, x.clone(), mu0.clone(),
                                          logvar0.clone(), 1, 0.05), mu0.dtype)
        if _uphill(model, x, mu0, logvar0, mu1, logvar1):
            fail(LOCAL_Q, f"the mean ELBO went down, from {start:.3f} to {end:.3f}, from the "
                 "first step on", "minimise the negative ELBO (negative_elbo(...).sum()), do "
                 "not maximise it")
        fail(LOCAL_Q, f"the mean ELBO went down, from {start:.3f} to {end:.3f}, although "
             "your first step went the right way",
             "gradients add up across backward() calls unless they are zeroed: call "
             "opt.zero_grad() in every step, before loss.backward()")
    if weights.mean_over_images():
        fail(LOCAL_Q, "your loss is the mean of the images' negative ELBOs, not their sum",
             "each image's q is a separate problem, and its gradient should be that of its own "
             "negative ELBO: the sum gives each image exactly that, the mean 1/N of it (Adam "
             "hides the factor, plain gradient descent would step N times slower); the text "
             "says which reduction to use")
    if end - start < 0.5 * (best - start):
        fail(LOCAL_Q, f"the mean ELBO rose only from {start:.3f} to {end:.3f}"
             + reveal(f"the package's loop reaches {best:.3f}"), LOCAL_Q_HINT)
    passed(LOCAL_Q, "each image's q now has a higher ELBO than the encoder gave it.")
