"""vaelab.exercises.core: feedback, practice mode and the time limit on a student's function."""

from __future__ import annotations

import threading
import time

import pytest

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
