"""vaelab.exercises.vae_questions: right answers pass, each known wrong answer gets its hint."""

import pytest
import torch
from helpers import assert_devices_named, assert_mistake_named, diagnosis

from vaelab.exercises import vae_questions as checks
from vaelab.exercises.core import ExerciseError
from vaelab.exercises.vae_questions import check_free_bits, check_local_q, free_bits_reference
from vaelab.inference_gaps import negative_elbo
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import vae_loss


def kl_dims(mu, logvar):  # allowed in 5.1: the exercise builds on notebook 03's KL
    return gaussian_kl_standard_normal(mu.unsqueeze(-1), logvar.unsqueeze(-1))


def free_bits_right(mu, logvar, lam):
    return kl_dims(mu, logvar).mean(0).clamp(min=lam).sum()


def test_reference_is_what_vae_loss_minimises():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    logits, x = torch.randn(6, 10, generator=gen), torch.ones(6, 10)
    loss = vae_loss(logits, x, mu, logvar, free_bits=0.3)
    torch.testing.assert_close(free_bits_reference(mu, logvar, 0.3),
                               loss.loss - loss.recon.mean())
    torch.testing.assert_close(free_bits_right(mu, logvar, 0.3),
                               free_bits_reference(mu, logvar, 0.3))


def test_free_bits_accepts_the_right_answer(capsys):
    check_free_bits(free_bits_right)
    assert "Exercise 5.1: correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda mu, lv, lam: kl_dims(mu, lv).clamp(min=lam).mean(0).sum(), "average each dimension"),
    (lambda mu, lv, lam: kl_dims(mu, lv).sum(1).mean().clamp(min=mu.shape[1] * lam), "separately"),
    (lambda mu, lv, lam: kl_dims(mu, lv).mean(0).clamp(max=lam).sum(), "max(lambda, KL_j)"),
    (lambda mu, lv, lam: kl_dims(mu, lv).mean(0).sum(), "apply max"),
    (lambda mu, lv, lam: kl_dims(mu, lv).mean(0).clamp(min=lam).mean(), "do not average"),
    (lambda mu, lv, lam: kl_dims(mu, lv).sum(0).clamp(min=lam).sum(), "mean over the batch"),
    (lambda mu, lv, lam: kl_dims(mu, lv).mean(0).clamp(min=lam), "scalar"),
    (lambda mu, lv, lam: 2 * free_bits_right(mu, lv, lam), "three steps"),
])
def test_free_bits_rejects_known_mistakes_with_their_hint(wrong, hint):
    with pytest.raises(ExerciseError, match="Exercise 5.1") as err:
        check_free_bits(wrong)
    assert hint in str(err.value)


def optimiser(reduction: str = "sum"):
    """5.2's answer, with ``reduction`` ("sum" or "mean") of the images' negative ELBOs."""
    def optimise(model, x, mu0, logvar0, steps, lr):
        mu = mu0.detach().clone().requires_grad_(True)
        logvar = logvar0.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([mu, logvar], lr=lr)
        for _ in range(steps):
            loss = getattr(negative_elbo(model, x, mu, logvar, samples=4), reduction)()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return mu.detach(), logvar.detach()
    return optimise


optimise_right = optimiser()


def test_local_q_accepts_the_right_answer(capsys):
    check_local_q(optimise_right)
    assert "Exercise 5.2: correct" in capsys.readouterr().out


def in_place(model, x, mu0, logvar0, steps, lr):
    mu, logvar = optimise_right(model, x, mu0, logvar0, steps, lr)
    mu0.copy_(mu)
    return mu, logvar


def trains_the_model(model, x, mu0, logvar0, steps, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = negative_elbo(model, x, mu0, logvar0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mu0.clone(), logvar0.clone()


def maximises(model, x, mu0, logvar0, steps, lr):
    mu = mu0.detach().clone().requires_grad_(True)
    logvar = logvar0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([mu, logvar], lr=lr)
    for _ in range(steps):
        loss = -negative_elbo(model, x, mu, logvar, samples=4).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mu.detach(), logvar.detach()


def no_zero_grad_adam(model, x, mu0, logvar0, steps, lr):
    # What students write: Adam with the zero_grad line forgotten. The summed gradients
    # overshoot and the ELBO ends lower than it started, as a flipped sign would leave it.
    mu = mu0.detach().clone().requires_grad_(True)
    logvar = logvar0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([mu, logvar], lr=lr)
    for _ in range(steps):
        negative_elbo(model, x, mu, logvar, samples=4).sum().backward()
        opt.step()
    return mu.detach(), logvar.detach()


def no_zero_grad(model, x, mu0, logvar0, steps, lr):
    mu = mu0.detach().clone().requires_grad_(True)
    logvar = logvar0.detach().clone().requires_grad_(True)
    for _ in range(steps):  # plain gradient steps on accumulated gradients, tiny lr
        loss = negative_elbo(model, x, mu, logvar, samples=4).sum()
        loss.backward()
        with torch.no_grad():
            mu -= 1e-6 * mu.grad
            logvar -= 1e-6 * logvar.grad
    return mu.detach(), logvar.detach()


@pytest.mark.parametrize("wrong, hint", [
    (lambda m, x, mu0, lv0, s, lr: mu0, "pair of tensors"),
    (lambda m, x, mu0, lv0, s, lr: (mu0[:2], lv0), "one row of parameters per image"),
    (in_place, "copies"),
    (trains_the_model, "only [mu, logvar]"),
    (lambda m, x, mu0, lv0, s, lr: (mu0.clone(), lv0.clone()), "requires_grad_(True)"),
    (maximises, "do not maximise"),
    (no_zero_grad, "zero the gradients"),
    (no_zero_grad_adam, "opt.zero_grad()"),
])
def test_local_q_rejects_known_mistakes_with_their_hint(wrong, hint):
    with pytest.raises(ExerciseError, match="Exercise 5.2") as err:
        check_local_q(wrong)
    assert hint in str(err.value)


def test_local_q_does_not_blame_the_sign_for_a_missing_zero_grad():
    with pytest.raises(ExerciseError) as err:
        check_local_q(no_zero_grad_adam)
    assert "maximise" not in str(err.value)
    assert "first step went the right way" in str(err.value)


# ----------------------------------------------------------------------------- every mistake

@pytest.mark.parametrize("mistake", checks.FREE_BITS_MISTAKES, ids=lambda m: m.problem[:50])
def test_5_1_each_known_mistake_gets_its_diagnosis(mistake, monkeypatch):
    assert_mistake_named(monkeypatch, checks, check_free_bits, mistake, checks._free_bits_cases,
                         lambda c: (c.mu, c.logvar, c.free_bits), checks.FREE_BITS_HINT)


# Issue 25: 5.2 accepted a loss averaged over the images and (mu, logvar) still attached to
# the optimisation's graph.


def optimise_attached(model, x, mu0, logvar0, steps, lr):
    mu, logvar = optimise_right(model, x, mu0, logvar0, steps, lr)
    return mu.requires_grad_(True), logvar.requires_grad_(True)


@pytest.mark.parametrize(("wrong", "problem"), [
    (optimiser("mean"), "the mean of the images' negative ELBOs, not their sum"),
    (optimise_attached, "still require gradients"),
], ids=["mean", "no-detach"])
def test_5_2_names_each_mistake_of_the_issue(wrong, problem):
    error = diagnosis(check_local_q, wrong, general=checks.LOCAL_Q_HINT)
    assert problem in error.problem, str(error)


# ----------------------------------------------------------------------------- issue 24


def test_5_2_rejects_mu_times_nan():
    # mu * nan was "correct": a NaN compares as neither better nor worse
    def nan_mu(model, x, mu0, logvar0, steps, lr):
        mu, logvar = optimise_right(model, x, mu0, logvar0, steps, lr)
        return mu * float("nan"), logvar
    with pytest.raises(ExerciseError, match="NaN or infinite"):
        check_local_q(nan_mu)


@pytest.mark.parametrize("right", [
    lambda *args: tuple(t.double() for t in optimise_right(*args)),
    lambda *args: [t.double() for t in optimise_right(*args)],
], ids=["tuple", "list"])
def test_5_2_accepts_a_right_answer_in_float64(right, capsys):
    check_local_q(right)
    assert "Exercise 5.2: correct" in capsys.readouterr().out


def test_5_1_accepts_a_right_answer_in_float32(capsys):
    check_free_bits(lambda mu, lv, lam: free_bits_right(mu.float(), lv.float(), lam))
    assert "Exercise 5.1: correct" in capsys.readouterr().out


def test_5_1_names_the_devices():
    assert_devices_named(
        check_free_bits, lambda mu, lv, lam: free_bits_right(mu, lv, lam).to("meta"),
        lambda mu, lv, lam: kl_dims(mu, lv).mean(0).clamp(
            min=torch.tensor(lam, device="meta")).sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_5_x_accept_a_right_answer_on_a_gpu(capsys):
    check_free_bits(lambda mu, lv, lam: free_bits_right(mu.cuda(), lv.cuda(), lam))
    check_local_q(lambda *args: tuple(t.cuda() for t in optimise_right(*args)))
    assert capsys.readouterr().out.count("correct") == 2


def test_5_2_names_the_dtypes_of_a_loop_run_in_float64():
    def optimise_in_float64(model, x, mu0, logvar0, steps, lr):
        mu = mu0.detach().double().requires_grad_(True)
        logvar = logvar0.detach().double().requires_grad_(True)
        return optimise_right(model, x, mu, logvar, steps, lr)
    with pytest.raises(ExerciseError, match="mixes dtypes") as info:
        check_local_q(optimise_in_float64)
    assert "mu0 in float32" in info.value.problem
