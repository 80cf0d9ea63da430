"""vaelab.exercises.vae: the checks accept the package's answers and reject each known mistake."""

import pytest
import torch
import torch.nn.functional as F

from vaelab.exercises.core import GRADING_ENV, ExerciseError
from vaelab.exercises.vae import check_reparameterize, check_vae_loss


def reparameterize(mu, logvar, eps):  # the exercise's answer, written out as a student would
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=-1)


def vae_loss(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = gaussian_kl_standard_normal(mu, logvar)
    return (bce + kl).mean(), bce, kl


def test_reparameterize_accepts_the_answer(capsys):
    check_reparameterize(reparameterize)
    assert "Exercise 4.1: correct." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda mu, lv, eps: mu + torch.exp(lv) * eps, "variance"),
        (lambda mu, lv, eps: mu + lv * eps, "not sigma"),
        (lambda mu, lv, eps: torch.exp(0.5 * lv) * eps, "add mu"),
        (lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * torch.randn_like(mu), "eps you are given"),
        (lambda mu, lv, eps: mu.clone(), "noise is missing"),
        (lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).detach(), "detach"),
        (lambda mu, lv, eps: (mu + torch.exp(0.5 * lv) * eps).sum(dim=1), "shape"),
        (lambda mu, lv, eps: [1.0], "torch.Tensor"),
    ],
)
def test_reparameterize_rejects_known_mistakes(wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        check_reparameterize(wrong)


def test_loss_accepts_the_answer_and_a_tuple(capsys):
    check_vae_loss(lambda *a: vae_loss(*a)[0])
    check_vae_loss(vae_loss)
    assert capsys.readouterr().out.count("Exercise 4.2: correct.") == 2


def _bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none")


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda lg, x, mu, lv: (_bce(lg, x).mean(1) + gaussian_kl_standard_normal(mu, lv)).mean(),
         "sum the BCE"),
        (lambda lg, x, mu, lv: _bce(lg, x).mean() + gaussian_kl_standard_normal(mu, lv).mean(),
         "sum the BCE"),
        (lambda lg, x, mu, lv: (_bce(lg, x).sum(1) - gaussian_kl_standard_normal(mu, lv)).mean(),
         "adds the KL"),
        (lambda lg, x, mu, lv: (_bce(lg, x).sum(1) + gaussian_kl_standard_normal(mu, lv)).sum(),
         "average over the batch"),
        (lambda lg, x, mu, lv: _bce(lg, x).sum(1).mean(), "KL term is missing"),
        (lambda lg, x, mu, lv: (_bce(lg, x).sum(1)
                                + 0.5 * (mu**2 + lv**2 - 1 - torch.log(lv**2)).sum(1)).mean(),
         "standard deviation"),
        (lambda lg, x, mu, lv: (_bce(torch.sigmoid(lg), x).sum(1)
                                + gaussian_kl_standard_normal(mu, lv)).mean(), "sigmoid"),
        (lambda lg, x, mu, lv: _bce(lg, x).sum(1) + gaussian_kl_standard_normal(mu, lv),
         "one number"),
        (lambda lg, x, mu, lv: torch.tensor(3.0), "is not the negative ELBO"),
        (lambda lg, x, mu, lv: 3.0, "torch.Tensor"),
    ],
)
def test_loss_rejects_known_mistakes(wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        check_vae_loss(wrong)


# Inputs written in place: the check computes its reference first and passes copies.


def _zero_eps_then_reparameterize(mu, lv, eps):
    eps.zero_()
    return mu + torch.exp(0.5 * lv) * eps


def _scale_eps_in_place(mu, lv, eps):
    return mu + eps.mul_(torch.exp(0.5 * lv))  # correct, but writes into its input


def _double_sigmoid_in_place(lg, x, mu, lv):
    lg.sigmoid_()
    return (_bce(lg, x).sum(1) + gaussian_kl_standard_normal(mu, lv)).mean()


def _loss_in_place(lg, x, mu, lv):  # correct, but writes into its inputs
    kl = 0.5 * (mu.pow_(2) + lv.exp() - 1 - lv).sum(1)
    return (_bce(lg, x).sum(1) + kl).mean()


def test_reparameterize_zeroing_eps_in_place_does_not_pass():
    with pytest.raises(ExerciseError, match="noise is missing"):
        check_reparameterize(_zero_eps_then_reparameterize)


def test_reparameterize_correct_answer_writing_into_eps_passes(capsys):
    check_reparameterize(_scale_eps_in_place)
    assert "Exercise 4.1: correct." in capsys.readouterr().out


def test_loss_double_sigmoid_in_place_does_not_pass():
    with pytest.raises(ExerciseError, match="sigmoid"):
        check_vae_loss(_double_sigmoid_in_place)


def test_loss_correct_answer_writing_into_its_inputs_passes(capsys):
    check_vae_loss(_loss_in_place)
    assert "Exercise 4.2: correct." in capsys.readouterr().out


@pytest.mark.parametrize(("check", "wrong"), [
    (check_reparameterize, lambda mu, lv, eps: mu + 2 * eps),
    (check_vae_loss, lambda lg, x, mu, lv: torch.tensor(3.0)),
])
def test_expected_values_only_in_practice_mode(check, wrong, monkeypatch):
    with pytest.raises(ExerciseError, match="expected"):
        check(wrong)
    monkeypatch.setenv(GRADING_ENV, "1")
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    assert "expected" not in str(info.value)
