"""vaelab.exercises.vae: the checks accept the package's answers and reject each known mistake."""

import pytest
import torch
import torch.nn.functional as F

from vaelab.exercises.core import ExerciseError
from vaelab.exercises.vae import check_reparameterize, check_vae_loss
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.vae import reparameterize, vae_loss


def test_reparameterize_accepts_the_package_answer(capsys):
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


def test_loss_accepts_the_package_answer_and_a_tuple(capsys):
    check_vae_loss(lambda *a: vae_loss(*a).loss)
    check_vae_loss(lambda *a: tuple(vae_loss(*a)))
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
        (lambda lg, x, mu, lv: torch.tensor(3.0), "differs from the expected"),
        (lambda lg, x, mu, lv: 3.0, "torch.Tensor"),
    ],
)
def test_loss_rejects_known_mistakes(wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        check_vae_loss(wrong)
