"""vaelab.exercises.elbo: correct answers pass, each known wrong answer gets its hint."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_devices_named, assert_mistake_named, diagnosis

from vaelab.exercises import elbo
from vaelab.exercises.core import GRADING_ENV, ExerciseError
from vaelab.exercises.elbo import check_elbo_estimator, check_gaussian_kl

LOG_2PI = math.log(2 * math.pi)


def kl_right(mu, logvar):
    return 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - logvar).sum(dim=-1)


def test_gaussian_kl_accepts_the_right_answer(capsys):
    check_gaussian_kl(kl_right)
    assert "Exercise 3.1: correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda mu, lv: -kl_right(mu, lv), "never negative"),
    (lambda mu, lv: 0.5 * (mu**2 + torch.exp(lv) - 1.0 - lv), ".sum(dim=-1)"),
    (lambda mu, lv: kl_right(mu, lv).sum(), "one KL per row"),
    (lambda mu, lv: 0.5 * (mu**2 + torch.exp(lv) - 1.0 - lv).mean(dim=-1), "sum over them"),
    (lambda mu, lv: 2 * kl_right(mu, lv), "factor 1/2"),
    (lambda mu, lv: 0.5 * (mu**2 + lv - 1.0 - torch.log(lv)).sum(-1), "can be negative"),
    (lambda mu, lv: 0.5 * (mu**2 + torch.exp(lv / 2) - 1.0 - lv / 2).sum(-1), "sigma^2 = exp"),
    (lambda mu, lv: kl_right(mu, lv) + 0.1, "closed form in the text"),
    (lambda mu, lv: kl_right(mu, lv).numpy(), "torch.Tensor"),
])
def test_gaussian_kl_rejects_known_wrong_answers_with_hints(wrong, hint):
    with pytest.raises(ExerciseError, match="Exercise 3.1") as info:
        check_gaussian_kl(wrong)
    assert hint in str(info.value)


def est_right(log_likelihood, mu, logvar, eps):
    z = mu + torch.exp(0.5 * logvar) * eps
    return (log_likelihood(z) - 0.5 * (LOG_2PI + z**2).sum()
            + 0.5 * (LOG_2PI + logvar + eps**2).sum())


def test_elbo_estimator_accepts_the_right_answer(capsys):
    check_elbo_estimator(est_right)
    assert "Exercise 3.2: correct" in capsys.readouterr().out


def _variant(kind):
    def est(log_likelihood, mu, logvar, eps):
        sigma = torch.exp(logvar) if kind == "variance" else torch.exp(0.5 * logvar)
        z = mu + sigma * eps
        lp = -0.5 * (LOG_2PI + z**2)
        half = {"no_logvar": 0.0, "double": 2.0}.get(kind, 1.0)
        lq = -0.5 * (LOG_2PI + half * logvar + eps**2)
        if kind == "per_dim":
            return log_likelihood(z) + lp - lq
        if kind == "first_dim":
            return log_likelihood(z) + lp[0] - lq[0]
        value = log_likelihood(z) + lp.sum() - lq.sum()
        return -value if kind == "sign" else value + (0.3 if kind == "other" else 0.0)
    return est


@pytest.mark.parametrize("kind, hint", [
    ("sign", "wrong sign"),
    ("variance", "standard deviation"),
    ("no_logvar", "normalising term"),
    ("double", "normalising term"),
    ("per_dim", "per latent dimension"),
    ("first_dim", "only the first latent dimension"),
    ("other", "expected"),
])
def test_elbo_estimator_rejects_known_wrong_answers_with_hints(kind, hint):
    with pytest.raises(ExerciseError, match="Exercise 3.2") as info:
        check_elbo_estimator(_variant(kind))
    assert hint in str(info.value)


def test_kl_feedback_never_holds_the_solution():
    # The old fallback hint was the solution line itself.
    with pytest.raises(ExerciseError) as info:
        check_gaussian_kl(lambda mu, lv: kl_right(mu, lv) + 0.1)
    assert "torch.exp(logvar)" not in str(info.value)
    assert "0.5 * (mu**2" not in str(info.value)


@pytest.mark.parametrize(("check", "wrong"), [
    (check_gaussian_kl, lambda mu, lv: kl_right(mu, lv) + 0.1),
    (check_elbo_estimator, lambda ll, mu, lv, eps: est_right(ll, mu, lv, eps) + 0.1),
])
def test_expected_values_only_in_practice_mode(check, wrong, monkeypatch):
    with pytest.raises(ExerciseError, match="expected"):
        check(wrong)
    monkeypatch.setenv(GRADING_ENV, "1")
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    assert "expected" not in str(info.value)


# ----------------------------------------------------------------------------- every mistake

def _short(mistake):
    return mistake.problem[:50]


@pytest.mark.parametrize("mistake", elbo.KL_MISTAKES, ids=_short)
def test_3_1_each_known_mistake_gets_its_diagnosis(mistake, monkeypatch):
    assert_mistake_named(monkeypatch, elbo, check_gaussian_kl, mistake, elbo._kl_cases,
                         lambda c: (c.mu, c.logvar), elbo.KL_HINT)


@pytest.mark.parametrize("mistake", elbo.ELBO_MISTAKES, ids=_short)
def test_3_2_each_known_mistake_gets_its_diagnosis(mistake, monkeypatch):
    assert_mistake_named(monkeypatch, elbo, check_elbo_estimator, mistake, elbo._elbo_cases,
                         lambda c: (c.log_likelihood, c.mu, c.logvar, c.eps), elbo.ELBO_HINT)


# Issue 25: the mistakes a student made, as written, each with the diagnosis it now gets
# (3.1 and 3.2 gave the general hint for all of them).


def kl_with_log10(mu, logvar):
    return 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - torch.log10(torch.exp(logvar))).sum(dim=-1)


@pytest.mark.parametrize(("wrong", "problem", "hint"), [
    (lambda mu, lv: -kl_right(mu, lv), "wrong sign", "never negative"),
    (lambda mu, lv: 0.5 * (mu**2 + torch.exp(lv) - 1.0 + lv).sum(dim=-1),
     "ln sigma^2 term has the wrong sign", "ln sigma^2 is subtracted"),
    (lambda mu, lv: 0.5 * (mu**2 + torch.exp(lv) + 1.0 - lv).sum(dim=-1),
     "constant 1 has the wrong sign", "1 is subtracted"),
    (kl_with_log10, "base-10 logarithm", "natural logs"),
    (lambda mu, lv: 0.5 * (mu**2 + torch.exp(lv) - 1.0 - lv / 2).sum(dim=-1),
     "ln sigma stands where", "logvar is ln sigma^2 already"),
], ids=["sign", "logvar-sign", "one-sign", "log10", "ln-sigma"])
def test_3_1_names_sign_and_log10_mistakes(wrong, problem, hint):
    error = diagnosis(check_gaussian_kl, wrong, general=elbo.KL_HINT)
    assert problem in error.problem and hint in error.hint, str(error)


def _estimator(*, q_sign=-1.0, prior=True, closed_form_kl=False, reduce=torch.sum, half=False,
               z_is_mu=False, in_place=False):
    """A student's 3.2 estimator, written the way the notebook's skeleton suggests, with one
    mistake switched on."""
    def estimator(log_likelihood, mu, logvar, eps):
        if in_place:
            z = mu  # a second name for mu: += below writes into mu
            z += torch.exp(0.5 * logvar) * eps
        elif z_is_mu:
            z = mu
        else:
            z = mu + torch.exp(0.5 * logvar) * eps
        log_prior = reduce(-0.5 * (LOG_2PI + z**2))
        log_q = reduce(-0.5 * (LOG_2PI + (0.5 if half else 1.0) * logvar
                               + ((z - mu) / torch.exp(0.5 * logvar)) ** 2))
        if closed_form_kl:
            return log_likelihood(z) - kl_right(mu, logvar)
        return log_likelihood(z) + (log_prior if prior else 0.0) + q_sign * log_q
    return estimator


@pytest.mark.parametrize(("wrong", "problem"), [
    (_estimator(q_sign=1.0), "ln q(z|x) enters with the wrong sign"),
    (_estimator(prior=False), "the prior term ln p(z) is missing"),
    (_estimator(closed_form_kl=True), "closed-form KL"),
    (_estimator(reduce=torch.mean), "averaged ln p(z) and ln q(z|x)"),
    (_estimator(half=True), "half the ln sigma^2"),
    (_estimator(z_is_mu=True), "z = mu: the noise is missing"),
    (_estimator(in_place=True), "changed its argument mu in place"),
    (lambda ll, mu, lv, eps: -est_right(ll, mu, lv, eps), "wrong sign"),
    (lambda ll, mu, lv, eps: est_right(ll, mu, lv, torch.randn_like(eps)), "draws noise"),
], ids=["q-sign", "no-prior", "closed-form-kl", "mean", "half-logvar", "z-mu", "in-place",
        "sign", "own-noise"])
def test_3_2_names_each_mistake_of_the_issue(wrong, problem):
    error = diagnosis(check_elbo_estimator, wrong, general=elbo.ELBO_HINT)
    assert problem in error.problem, str(error)


def test_3_2_accepts_ln_q_written_with_z_minus_mu(capsys):
    check_elbo_estimator(_estimator())
    assert "Exercise 3.2: correct" in capsys.readouterr().out


# ----------------------------------------------------------------------------- issue 24


def test_3_1_names_the_devices():
    assert_devices_named(
        check_gaussian_kl, lambda mu, lv: kl_right(mu, lv).to("meta"),
        lambda mu, lv: kl_right(mu, lv) + torch.zeros(mu.shape[0], device="meta"))


def _in_float32(fn):
    """``fn`` computed in float32 (as on a GPU), from the check's float64 inputs."""
    return lambda *args: fn(*(a.float() if isinstance(a, torch.Tensor) else a for a in args))


@pytest.mark.parametrize(("check", "right"), [
    (check_gaussian_kl, _in_float32(kl_right)),
    (check_elbo_estimator, _in_float32(lambda ll, mu, lv, eps: est_right(
        lambda z: ll(z.double()).float(), mu, lv, eps))),
    (check_gaussian_kl, lambda mu, lv: kl_right(mu, lv).float()),
], ids=["kl-float32", "elbo-float32", "kl-returned-as-float32"])
def test_3_x_accept_a_right_answer_computed_in_float32(check, right, capsys):
    for _ in range(20):  # the inputs change on every run
        check(right)
    assert capsys.readouterr().out.count("correct") == 20
