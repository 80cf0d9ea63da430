"""vaelab.references: the package's answers refuse while they are switched off, under any name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab import references
from vaelab.display import source_of
from vaelab.exercises.core import passed
from vaelab.references import ReferenceSwitchedOff, answers, switched_off


@answers("9.1")
def _answer(a: int, b: int = 1) -> int:
    """A stand-in answer."""
    return a + b


@answers("9.2", until_answered=True)
def _value_answer() -> float:
    return 0.5


def test_a_guarded_function_works_and_keeps_its_name_doc_and_signature():
    assert _answer(2, b=3) == 5
    assert _answer.__name__ == "_answer" and _answer.__doc__ == "A stand-in answer."
    assert str(__import__("inspect").signature(_answer)) == "(a: 'int', b: 'int' = 1) -> 'int'"
    assert references.exercises_answered_by(_answer) == ("9.1",)
    assert references.exercises_answered_by(len) == ()
    assert not hasattr(_answer, "__wrapped__")  # the unguarded function is not handed out


def test_switched_off_refuses_every_alias_and_records_the_call():
    alias = _answer
    saved = {"fn": _answer}
    with switched_off("9.1") as refused:
        for fn in (_answer, alias, saved["fn"]):
            with pytest.raises(ReferenceSwitchedOff, match="Exercise 9.1: .*_answer computes "
                               "the answer"):
                fn(1)
        assert len(refused) == 3
    assert _answer(1) == 2  # on again afterwards


def test_the_refusal_is_recorded_even_when_the_caller_catches_it():
    def sneaky():
        try:
            return _answer(1)
        except Exception:  # noqa: BLE001 - what a student might write
            return 0
    with switched_off("9.1") as refused:
        assert sneaky() == 0
    assert refused == [f"{__name__}._answer"]


def test_other_exercises_stay_on_while_one_is_checked():
    with switched_off("9.3"):
        assert _answer(1) == 2


def test_the_package_references_are_guarded():
    from vaelab import distributions, kl, mle, vae
    for fn, exercise in [(mle.gaussian_log_likelihood, "1.1"), (mle.gaussian_mle, "1.2"),
                         (mle.poisson_mle, "2.3"), (mle.poisson_log_likelihood, "2.4"),
                         (kl.gaussian_kl_standard_normal, "3.1"),
                         (distributions.reparameterize, "4.1"), (vae.vae_loss, "4.2")]:
        assert exercise in references.exercises_answered_by(fn), fn


def test_show_source_shows_the_guarded_functions_own_source():
    from vaelab.vae import vae_loss
    text = source_of(vae_loss).text
    assert text.startswith("# vaelab.vae.vae_loss\n@answers(")
    assert "def vae_loss(" in text and "def guarded" not in text


class _Shell:
    """What IPython.get_ipython() returns, enough for the check of who is calling."""

    def __init__(self) -> None:
        self.user_ns: dict = {}


@pytest.fixture
def notebook(monkeypatch):
    """A namespace that counts as code typed in an IPython session."""
    import IPython

    shell = _Shell()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setattr(references._BOARD, "answered", set())
    shell.user_ns.update(value_answer=_value_answer, np=np)
    return shell.user_ns


def test_until_answered_refuses_notebook_code_until_the_check_passed(notebook, capsys):
    with pytest.raises(ReferenceSwitchedOff, match="answer the exercise first"):
        exec("value_answer()", notebook)
    with pytest.raises(ReferenceSwitchedOff):
        exec("def mine():\n    return value_answer()\nmine()", notebook)
    assert _value_answer() == 0.5  # code outside the notebook (the package, tests) may call it
    passed("9.2")
    assert "Exercise 9.2: correct." in capsys.readouterr().out
    exec("result = value_answer()", notebook)
    assert notebook["result"] == 0.5


def test_package_code_may_call_a_value_answer_before_it_is_answered(notebook):
    from matplotlib.figure import Figure

    from vaelab.mle import gaussian_mle
    from vaelab.plots.likelihood import plot_loglik_surface
    notebook.update(gaussian_mle=gaussian_mle, plot=plot_loglik_surface, ax=Figure().subplots())
    exec("fig = plot([2642.0, 3500.0, 4358.0], ax=ax)", notebook)  # marks the MLE
    with pytest.raises(ReferenceSwitchedOff, match="Exercise 1.2"):
        exec("gaussian_mle([2642.0, 3500.0, 4358.0])", notebook)


def test_answers_needs_exercise_ids():
    with pytest.raises(ValueError, match="exercise ids"):
        answers()
    with pytest.raises(ValueError, match="exercise ids"):
        answers(4.2)  # type: ignore[arg-type]


def test_a_guarded_torch_function_still_runs_outside_a_check():
    from vaelab.vae import reparameterize
    mu, logvar, eps = torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3)
    assert torch.equal(reparameterize(mu, logvar, eps), torch.ones(2, 3))
