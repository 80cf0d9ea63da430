"""vaelab.exercises.core: feedback, practice mode, the student's call (time limit, the package's
answer switched off, inputs changed in place), diagnoses and drawn inputs."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from vaelab.exercises import core
from vaelab.exercises.core import GRADING_ENV, ExerciseError


def test_fail_is_an_assertion_error_with_the_hint():
    with pytest.raises(AssertionError, match="Exercise 1.1: wrong\nHint: look"):
        core.fail("1.1", "wrong", "look")


@pytest.mark.parametrize(("value", "practice"), [
    (None, True), ("", True), ("0", True), ("1", False), ("true", False), ("YES", False)])
def test_practice_mode_is_off_only_when_graders_say_so(value, practice, monkeypatch):
    if value is None:
        monkeypatch.delenv(GRADING_ENV, raising=False)
    else:
        monkeypatch.setenv(GRADING_ENV, value)
    assert core.practice_mode() is practice
    assert core.reveal("expected 3") == ("; expected 3" if practice else "")


def _hangs(*args):
    while True:
        time.sleep(0.01)


def test_a_function_that_hangs_is_stopped_with_what_to_do():
    start = time.monotonic()
    with pytest.raises(ExerciseError) as info:
        core.call_student("1.1", _hangs, 1, 2, seconds=0.3)
    assert time.monotonic() - start < 5
    text = str(info.value)
    assert "had not returned after 0.3 s" in text and "interrupt the kernel" in text


def test_the_time_limit_is_cleared_after_a_normal_return():
    assert core.call_student("1.1", lambda a, b: a + b, 1, 2, seconds=0.2) == 3
    time.sleep(0.4)  # an alarm left armed would fire here


def test_off_the_main_thread_the_function_runs_unlimited():
    result = []
    thread = threading.Thread(target=lambda: result.append(
        core.call_student("1.1", lambda: "done", seconds=0.1)))
    thread.start()
    thread.join()
    assert result == ["done"]


# ------------------------------------------------------------------ the package's answers


def test_a_call_of_the_package_answer_inside_the_students_function_fails_the_check():
    from vaelab.vae import vae_loss

    with pytest.raises(ExerciseError, match="calls vaelab.vae.vae_loss, the package's own answer"):
        core.call_student("4.2", lambda *a: vae_loss(*a).loss, *[torch.zeros(2, 3)] * 2,
                          *[torch.zeros(2, 2)] * 2)


def test_catching_the_refusal_does_not_help():
    from vaelab.kl import gaussian_kl_standard_normal

    def sneaky(mu, logvar):
        try:
            return gaussian_kl_standard_normal(mu, logvar)
        except Exception:  # noqa: BLE001 - what a student might write
            return torch.zeros(mu.shape[0])
    with pytest.raises(ExerciseError, match="switched off while your function is checked"):
        core.call_student("3.1", sneaky, torch.zeros(2, 2), torch.zeros(2, 2))


def test_the_package_answer_passed_as_the_students_function_is_refused():
    from vaelab.mle import gaussian_mle

    # Not even to run another exercise's check: call_student never runs the package's answer.
    with pytest.raises(ExerciseError, match="the package's own function, not yours"):
        core.call_student("9.9", gaussian_mle, np.array([1.0, 2.0]))


def test_inputs_changed_in_place_are_recorded_and_told_when_the_answer_is_wrong():
    mu = torch.ones(2)
    core.call_student("9.9", lambda m: m.mul_(2), mu.clone(), names=("mu",))
    assert core.inputs_changed() == ["mu"]
    with pytest.raises(ExerciseError, match="changed its argument mu in place"):
        core.diagnose("9.9", 0.0, None, [], lambda a, b: a == b)
    core.call_student("9.9", lambda m: m * 2, mu.clone(), names=("mu",))
    assert core.inputs_changed() == []


def test_diagnose_names_the_first_matching_mistake_and_returns_when_none_matches():
    mistakes = [core.Mistake("doubled", "halve it", lambda c: 2 * c),
                core.Mistake("negated", "flip it", lambda c: -c),
                core.Mistake("broken", "never", lambda c: 1 / 0)]
    core.call_student("9.9", lambda: None)  # no inputs changed
    with pytest.raises(ExerciseError, match="negated at x = 3\nHint: flip it"):
        core.diagnose("9.9", -3, 3, mistakes, lambda a, b: a == b, " at x = 3")
    assert core.diagnose("9.9", 5, 3, mistakes, lambda a, b: a == b) is None


def test_fresh_seeds_differ_and_grid_values_print_exactly():
    assert len({core.fresh_seed() for _ in range(20)}) > 1
    values = core.grid(np.random.default_rng(0), -2.0, 2.0, (50,), avoid=[0.0])
    assert 0.0 not in values and np.all(np.abs(values) <= 2.0)
    assert all(len(repr(float(v))) <= 4 for v in values)  # -1.3, 0.4: one decimal
    assert core.show(torch.tensor([[0.5, -1.25]])) == "[[ 0.5 , -1.25]]"


@pytest.mark.parametrize("value", [np.float32(2.5), torch.tensor(2.5, dtype=torch.float64),
                                   torch.tensor([2.5], requires_grad=True), 2.5])
def test_a_number_is_accepted_in_any_form(value):
    assert core.number_answer(value, "9.9", "x") == 2.5


def test_a_graded_copy_never_reveals(monkeypatch):
    monkeypatch.delenv(GRADING_ENV, raising=False)
    monkeypatch.setattr(core, "_graded", True)
    assert not core.practice_mode() and core.reveal("expected 3") == ""
