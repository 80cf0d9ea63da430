"""vaelab.exercises.core: feedback, practice mode, the student's call (time limit, the package's
answer switched off, inputs changed in place), diagnoses and drawn inputs."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest
import torch
from helpers import global_state

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


def test_a_torch_error_after_a_caught_refusal_is_told_as_the_refusal():
    from vaelab.kl import gaussian_kl_standard_normal

    def falls_back_badly(mu, logvar):
        try:
            return gaussian_kl_standard_normal(mu, logvar)
        except Exception:  # noqa: BLE001 - what a student might write
            return mu @ torch.zeros(3, 3)  # a shape error of its own
    with pytest.raises(ExerciseError, match="switched off while your function is checked"):
        core.call_student("3.1", falls_back_badly, torch.zeros(2, 2), torch.zeros(2, 2))


def test_a_function_that_draws_its_own_noise_is_told_from_one_that_does_not():
    mu = torch.zeros(3)
    assert core.draws_its_own_noise("9.9", lambda m: m + torch.randn_like(m), mu)
    assert core.draws_its_own_noise("9.9", lambda m: m + torch.from_numpy(np.random.randn(3)), mu)  # noqa: NPY002
    assert not core.draws_its_own_noise("9.9", lambda m: m + 1.0, mu)
    assert not core.draws_its_own_noise("9.9", lambda m: 1.0, mu)  # not a tensor: no verdict


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


@pytest.mark.parametrize("value", [
    np.float32(2.5), torch.tensor(2.5, dtype=torch.float64), 2.5, [2.5], np.array([[2.5]]),
    torch.tensor([2.5], requires_grad=True), torch.tensor(2.5, dtype=torch.float16),
    # issue 24: a requires-grad tensor in a list was "Can't call numpy() on Tensor that
    # requires grad"
    [torch.tensor(2.5, requires_grad=True)], (torch.tensor([2.5], requires_grad=True),)])
def test_a_number_is_accepted_in_any_form(value):
    assert core.number_answer(value, "9.9", "x") == 2.5


# Issue 24: "2.5" and True passed as numbers (float("2.5"), float(True)).
@pytest.mark.parametrize("value", ["2.5", b"2.5", np.str_("2.5"), ["2.5"], np.array("2.5")])
def test_a_number_written_as_text_is_refused(value):
    with pytest.raises(ExerciseError, match="x should be a number, got a string") as info:
        core.number_answer(value, "9.9", "x")
    assert "2.5" not in str(info.value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), torch.tensor(True), [True],
                                   np.array([True])])
def test_a_bool_is_refused_as_a_number(value):
    with pytest.raises(ExerciseError, match="got a bool"):
        core.number_answer(value, "9.9", "x")


@pytest.mark.parametrize("value", [None, print, {"a": 1}, [1.0, 2.0]])
def test_what_is_no_single_number_is_refused_with_feedback(value):
    with pytest.raises(ExerciseError, match="Exercise 9.9: x should be"):
        core.number_answer(value, "9.9", "x")


# ------------------------------------------------------------------ devices and dtypes
# The meta device (shapes, no values) stands in for a GPU on machines that have none.


def test_an_answer_whose_values_cannot_reach_the_cpu_is_named_by_its_device():
    with pytest.raises(ExerciseError, match="your function is a tensor on the meta device"):
        core.tensor_answer(torch.zeros(2, device="meta"), "9.9", "your function", "")
    with pytest.raises(ExerciseError, match="x is a tensor on the meta device"):
        core.number_answer(torch.tensor(1.0, device="meta"), "9.9", "x")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_an_answer_on_a_gpu_is_accepted_in_any_dtype():
    answer = torch.tensor([1.5, 2.5], device="cuda", dtype=torch.float16, requires_grad=True)
    assert torch.equal(core.tensor_answer(answer, "9.9", "z", ""),
                       torch.tensor([1.5, 2.5], dtype=torch.float64))
    assert core.number_answer(answer[1], "9.9", "x") == 2.5


def _mixes_devices(mu):
    return mu + torch.zeros(mu.shape, device="meta")


def _mixes_dtypes(mu):
    return mu @ torch.eye(2, dtype=torch.float64)


def _adds_in_place(mu):
    mu += 1.0
    return mu


@pytest.mark.parametrize(("fn", "problem", "hint"), [
    (_mixes_devices, ["mixes tensors on different devices (torch: ", "meta",
                      "the check passes mu on cpu"], "device=mu.device"),
    (_mixes_dtypes, ["mixes dtypes (torch: ", "the check passes mu in float32"],
     "dtype=mu.dtype"),
    (_adds_in_place, ["writes into its input mu in place"], "leaves mu as it was"),
])
def test_torch_errors_a_check_can_explain_become_feedback(fn, problem, hint):
    mu = torch.zeros(2, 2, requires_grad=True)
    with pytest.raises(ExerciseError) as info:
        core.call_student("9.9", fn, mu, names=("mu",))
    assert info.value.exercise == "9.9"
    assert all(part in info.value.problem for part in problem), info.value.problem
    assert hint in info.value.hint


def test_other_errors_of_the_students_function_are_its_own():
    def broken(mu):
        raise RuntimeError("shape '[3]' is invalid for input of size 4")
    with pytest.raises(RuntimeError, match="is invalid for input"):
        core.call_student("9.9", broken, torch.zeros(4), names=("mu",))


# ------------------------------------------------------------------ global state


def _changes_everything():
    random.random()
    np.random.rand()  # noqa: NPY002 - the legacy global generator a notebook may use
    torch.rand(3)
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(torch.get_num_threads() + 1)
    torch.set_grad_enabled(False)
    return 1.0


def test_a_check_leaves_random_state_and_torch_settings_as_it_found_them():
    before = global_state()
    with core.global_state_kept():
        _changes_everything()
    assert global_state() == before
    core.call_student("9.9", _changes_everything)
    assert global_state() == before
    with pytest.raises(ExerciseError), core.global_state_kept():
        _changes_everything()
        core.fail("9.9", "wrong")
    assert global_state() == before


# ------------------------------------------------------------------ diagnoses


def test_a_mistake_is_named_only_if_it_explains_every_case():
    mistakes = [core.Mistake("one too many", "subtract one", lambda c: c + 1)]
    core.call_student("9.9", lambda: None)
    # 4 on input 3 is "one too many"; 20 on input 10 is not: a coincidence, not the mistake
    assert core.diagnose("9.9", 4, 3, mistakes, lambda a, b: a == b,
                         also=[(4, 3), (20, 10)]) is None
    with pytest.raises(ExerciseError, match="one too many"):
        core.diagnose("9.9", 4, 3, mistakes, lambda a, b: a == b, also=[(4, 3), (11, 10)])


def test_an_input_changed_by_one_exercise_is_not_blamed_on_another():
    core.call_student("1.1", lambda m: m.mul_(2), torch.ones(2), names=("mu",))
    assert core.inputs_changed() == ["mu"]
    # 2.4 is answered with a value: no function of the student's ran for it
    assert core.diagnose("2.4", 0.0, None, [], lambda a, b: a == b) is None
    with pytest.raises(ExerciseError, match="changed its argument mu in place"):
        core.diagnose("1.1", 0.0, None, [], lambda a, b: a == b)


def test_a_graded_copy_never_reveals(monkeypatch):
    monkeypatch.delenv(GRADING_ENV, raising=False)
    monkeypatch.setattr(core, "_graded", True)
    assert not core.practice_mode() and core.reveal("expected 3") == ""
