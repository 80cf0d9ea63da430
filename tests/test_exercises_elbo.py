"""vaelab.exercises.elbo: correct answers pass, each known wrong answer gets its hint."""

from __future__ import annotations

import math

import pytest
import torch

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
