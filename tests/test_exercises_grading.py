"""vaelab.exercises.grading: a graded check comes from a fresh copy of the package's code."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
import torch.nn.functional as F

import vaelab.exercises.core as core
import vaelab.exercises.vae as vae_checks
from vaelab.exercises import grading
from vaelab.exercises.core import GRADING_ENV
from vaelab.exercises.grading import grade, tampering

LOSS = "vaelab.exercises.vae.check_vae_loss"


# A graded check raises its own copy's ExerciseError, and grading its GradingError (a graded
# cell reloads the module, so the class may be a newer copy): both are AssertionErrors.


def right_loss(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    return (bce + 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)).mean()


def wrong_loss(logits, x, mu, logvar):
    return torch.tensor(14.2277)


def test_grade_passes_a_right_answer(capsys):
    grade(LOSS, right_loss)
    assert "Exercise 4.2: correct." in capsys.readouterr().out


def test_every_checks_module_grades(capsys):
    def free_bits(mu, logvar, free_bits):
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)
        return kl.mean(dim=0).clamp(min=free_bits).sum()
    grade("vaelab.exercises.vae_questions.check_free_bits", free_bits)
    grade("vaelab.exercises.elbo.check_gaussian_kl",
          lambda mu, logvar: 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=-1))
    grade("vaelab.exercises.mle.check_poisson_mle", 8 / 3)
    assert capsys.readouterr().out.count("correct.") == 3


def test_rebinding_the_check_or_the_feedback_does_not_change_the_grade(monkeypatch):
    monkeypatch.setattr(vae_checks, "check_vae_loss", lambda *a: print("correct"))
    monkeypatch.setattr(vae_checks, "RTOL", 1e9)
    monkeypatch.setattr(core, "fail", lambda *a, **k: None)
    with pytest.raises(AssertionError, match="Exercise 4.2"):
        grade(LOSS, wrong_loss)


def test_the_kernels_modules_are_left_as_they_were():
    import vaelab.exercises as package
    before = (sys.modules["vaelab.exercises.vae"], sys.modules["vaelab.exercises.core"],
              package.vae, package.core)
    with pytest.raises(AssertionError):
        grade(LOSS, wrong_loss)
    assert (sys.modules["vaelab.exercises.vae"], sys.modules["vaelab.exercises.core"],
            package.vae, package.core) == before
    assert core._graded is False  # only the fresh copy grades


def test_a_graded_check_never_shows_the_expected_value(monkeypatch):
    monkeypatch.delenv(GRADING_ENV, raising=False)
    with pytest.raises(AssertionError) as info:
        grade(LOSS, wrong_loss)
    assert "expected" not in str(info.value)
    with pytest.raises(AssertionError, match="expected"):  # practice mode keeps it
        vae_checks.check_vae_loss(wrong_loss)


def test_a_replaced_package_answer_is_refused(monkeypatch):
    import vaelab.vae

    monkeypatch.setattr(vaelab.vae, "vae_loss", lambda *a, **k: None)
    with pytest.raises(AssertionError, match="vaelab.vae.vae_loss in this kernel is not the "
                       "package's own function"):
        grade(LOSS, right_loss)


@pytest.mark.parametrize("name", ["vaelab.exercises.core.passed", "os.system",
                                  "vaelab.exercises.vae.reparameterize", "check_vae_loss",
                                  "vaelab.exercises.vae.check_nothing", 42])
def test_only_the_packages_checks_can_be_graded(name):
    with pytest.raises(AssertionError, match="check"):
        grade(name, right_loss)


# ----------------------------------------------------------------------------- the scan

NAMESPACE = {"c": vae_checks, "torch": torch, "vaelab": sys.modules["vaelab"],
             "model": torch.nn.Linear(2, 2), "sys": sys, "os": __import__("os"),
             "plt": importlib.import_module("matplotlib.pyplot")}


@pytest.mark.parametrize("code", [
    "c.check_vae_loss = lambda *a: print('correct')",
    "c.RTOL = 1e9",
    "torch.allclose = lambda *a, **k: True",
    "vaelab.exercises.vae.check_vae_loss, x = f, 1",
    "setattr(c, 'check_vae_loss', print)",
    "sys.modules['vaelab.exercises.grading'] = object()",
    "c.__dict__['check_vae_loss'] = print",
    "right_loss.__code__ = wrong_loss.__code__",
    "exec('c.RTOL = 1')",
    "del torch.allclose",
    "return sys._getframe(2).f_locals['case'].want",
])
def test_the_scan_finds_code_that_changes_a_module(code):
    assert tampering([code], NAMESPACE) == [f"`{code}`"]


@pytest.mark.parametrize("code", [
    "torch.backends.cudnn.deterministic = True",
    "model.weight = torch.nn.Parameter(torch.zeros(2, 2))",
    "plt.rcParams['figure.figsize'] = (4, 3)",
    "os.environ['TQDM_DISABLE'] = '1'",
    "x = torch.zeros(3); x += 1",
    "def f(mu):\n    mu = mu + 1\n    return mu",
    "import importlib, vaelab.exercises.grading\n"
    "importlib.reload(vaelab.exercises.grading).grade('vaelab.exercises.vae.check_vae_loss', f)",
    "not python (",
])
def test_the_scan_leaves_ordinary_code_alone(code):
    assert tampering([code], NAMESPACE) == []


def test_grade_refuses_a_notebook_that_changed_a_module(monkeypatch):
    import IPython

    class Shell:
        user_ns = {**NAMESPACE, "In": ["", "c.check_vae_loss = print"]}

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    with pytest.raises(AssertionError, match="changes code that the check relies on: "
                       "`c.check_vae_loss = print`"):
        grade(LOSS, right_loss)


def test_reloading_the_grading_module_restores_grade(monkeypatch):
    monkeypatch.setattr(grading, "grade", lambda *a: print("correct"))
    reloaded = importlib.reload(grading)
    with pytest.raises(AssertionError):
        reloaded.grade(LOSS, wrong_loss)
