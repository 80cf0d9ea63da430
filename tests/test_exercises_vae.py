"""vaelab.exercises.vae: the checks accept the package's answers and reject each known mistake."""

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_devices_named, assert_mistake_named, diagnosis

from vaelab.exercises import vae as vae_checks
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


# ----------------------------------------------------------------------------- every mistake

def _short(mistake):
    return mistake.problem[:50]


@pytest.mark.parametrize("mistake", vae_checks.REPARAM_MISTAKES, ids=_short)
def test_4_1_each_known_mistake_gets_its_diagnosis(mistake, monkeypatch):
    assert_mistake_named(monkeypatch, vae_checks, check_reparameterize, mistake,
                         vae_checks._reparam_cases, lambda c: (c.mu, c.logvar, c.eps),
                         vae_checks.REPARAM_HINT)


@pytest.mark.parametrize("mistake", vae_checks.LOSS_MISTAKES, ids=_short)
def test_4_2_each_known_mistake_gets_its_diagnosis(mistake, monkeypatch):
    assert_mistake_named(monkeypatch, vae_checks, check_vae_loss, mistake,
                         vae_checks._loss_cases, lambda c: (c.logits, c.x, c.mu, c.logvar),
                         vae_checks.LOSS_HINT)


# Issue 25: 4.1 rejected mu - sigma * eps with the hint about fresh noise and the variance,
# and an in-place mu += ... stopped with torch's leaf-variable error; 4.2 gave the general
# hint for a KL without its 1/2 and for swapped BCE arguments.


def _in_place_on_mu(mu, logvar, eps):
    mu += torch.exp(0.5 * logvar) * eps
    return mu


def _second_name_for_mu(mu, logvar, eps):
    z = mu
    z += torch.exp(0.5 * logvar) * eps
    return z


@pytest.mark.parametrize(("wrong", "problem", "hint"), [
    (lambda mu, lv, eps: mu - torch.exp(0.5 * lv) * eps, "right distribution",
     "adds the scaled noise"),
    (_in_place_on_mu, "writes into its input mu or logvar in place", "leaves mu as it was"),
    (_second_name_for_mu, "z = mu; z += ...", "Build new tensors from the inputs"),
    (lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * torch.randn_like(mu), "draws noise of its own",
     "draw nothing inside"),
    (lambda mu, lv, eps: torch.distributions.Normal(mu, torch.exp(0.5 * lv)).rsample(),
     "draws noise of its own", "use the eps you are given"),
], ids=["minus-eps", "in-place", "second-name", "randn-like", "rsample"])
def test_4_1_names_each_mistake_of_the_issue(wrong, problem, hint):
    error = diagnosis(check_reparameterize, wrong, general=vae_checks.REPARAM_HINT)
    assert problem in error.problem and hint in error.hint + error.problem, str(error)


def _kl_without_half(mu, logvar):
    return (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)


@pytest.mark.parametrize(("wrong", "problem"), [
    (lambda lg, x, mu, lv: (_bce(lg, x).sum(1) + _kl_without_half(mu, lv)).mean(),
     "twice the KL"),
    (lambda lg, x, mu, lv: (_bce(x, lg).sum(1) + gaussian_kl_standard_normal(mu, lv)).mean(),
     "arguments of the binary cross-entropy are swapped"),
    (lambda lg, x, mu, lv: (F.binary_cross_entropy(x, torch.sigmoid(lg), reduction="none").sum(1)
                            + gaussian_kl_standard_normal(mu, lv)).mean(),
     "arguments of the binary cross-entropy are swapped"),
    (lambda lg, x, mu, lv: (_bce(lg, x).sum(1)
                            + gaussian_kl_standard_normal(mu, lv) / mu.shape[1]).mean(),
     "averaged the KL over the latent dimensions"),
], ids=["kl-no-half", "bce-swapped", "bce-swapped-probabilities", "kl-mean"])
def test_4_2_names_each_mistake_of_the_issue(wrong, problem):
    error = diagnosis(check_vae_loss, wrong, general=vae_checks.LOSS_HINT)
    assert problem in error.problem, str(error)


@pytest.mark.parametrize("right", [
    lambda mu, lv, eps: mu + torch.sqrt(torch.exp(lv)) * eps,
    lambda mu, lv, eps: torch.addcmul(mu, lv.mul(0.5).exp(), eps),
], ids=["sqrt-exp", "addcmul"])
def test_4_1_accepts_a_right_answer_in_another_form(right, capsys):
    check_reparameterize(right)
    assert "Exercise 4.1: correct." in capsys.readouterr().out


def test_4_2_accepts_the_bce_of_probabilities(capsys):
    check_vae_loss(lambda lg, x, mu, lv: (F.binary_cross_entropy(torch.sigmoid(lg), x,
                                                                 reduction="none").sum(1)
                                          + gaussian_kl_standard_normal(mu, lv)).mean())
    assert "Exercise 4.2: correct." in capsys.readouterr().out


# ----------------------------------------------------------------------------- issue 24
# "Double did not match Float" for a right answer in float64; raw RuntimeErrors for an
# answer on another device (the meta device stands in for a GPU on a machine without one).


@pytest.mark.parametrize(("check", "right"), [
    (check_reparameterize, lambda mu, lv, eps: reparameterize(mu, lv, eps).double()),
    (check_reparameterize, lambda mu, lv, eps: reparameterize(mu.double(), lv.double(),
                                                              eps.double())),
    (check_vae_loss, lambda lg, x, mu, lv: vae_loss(lg, x, mu, lv)[0].double()),
    (check_vae_loss, lambda lg, x, mu, lv: vae_loss(lg.double(), x.double(), mu.double(),
                                                    lv.double())),
], ids=["4.1-returned", "4.1-computed", "4.2-returned", "4.2-computed"])
def test_4_x_accept_a_right_answer_in_float64(check, right, capsys):
    check(right)
    assert "correct." in capsys.readouterr().out


def test_4_1_names_the_devices():
    assert_devices_named(
        check_reparameterize, lambda mu, lv, eps: reparameterize(mu, lv, eps).to("meta"),
        lambda mu, lv, eps: mu + torch.exp(0.5 * lv) * eps.to("meta"))


def test_4_2_names_the_dtypes_a_function_mixes():
    def float64_constant(lg, x, mu, lv):
        weights = torch.ones(lg.shape[1], 1, dtype=torch.float64)
        return (_bce(lg, x) @ weights).mean() + gaussian_kl_standard_normal(mu, lv).mean()
    with pytest.raises(ExerciseError, match="mixes dtypes") as info:
        check_vae_loss(float64_constant)
    assert "logits in float32" in info.value.problem and "dtype=mu.dtype" in info.value.hint


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_4_x_accept_a_right_answer_on_a_gpu(capsys):
    check_reparameterize(lambda mu, lv, eps: reparameterize(mu.cuda(), lv.cuda(), eps.cuda()))
    check_vae_loss(lambda lg, x, mu, lv: vae_loss(lg.cuda(), x.cuda(), mu.cuda(), lv.cuda()))
    assert capsys.readouterr().out.count("correct.") == 2
