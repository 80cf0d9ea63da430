"""The feedback mechanism every exercise check uses.

A check either prints one line saying the exercise is correct, or raises
``ExerciseError`` (an ``AssertionError``, so autograders count it as a failed
test) whose message says what is wrong and gives a hint for the likely mistake,
without a value that could be pasted to pass (expected values only in practice mode,
see ``practice_mode``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import NoReturn, TypeVar

T = TypeVar("T")


class ExerciseError(AssertionError):
    """A wrong answer: the message says what was expected and hints at the mistake."""

    def __init__(self, exercise: str, problem: str, hint: str = "") -> None:
        self.exercise = exercise
        self.problem = problem
        self.hint = hint
        text = f"Exercise {exercise}: {problem}"
        if hint:
            text += f"\nHint: {hint}"
        super().__init__(text)


def fail(exercise: str, problem: str, hint: str = "") -> NoReturn:
    """Raise the feedback for a wrong answer."""
    raise ExerciseError(exercise, problem, hint)


def passed(exercise: str, detail: str = "") -> None:
    """Print the one-line confirmation for a correct answer."""
    print(f"Exercise {exercise}: correct." + (f" {detail}" if detail else ""))


# Graders set VAELAB_GRADING=1: feedback then never shows an expected value, which a
# student at home may see (practice mode) but could otherwise paste into a submission.
GRADING_ENV = "VAELAB_GRADING"


def practice_mode() -> bool:
    """True unless the graders' variable ``VAELAB_GRADING`` is set to 1 (or true, yes)."""
    return os.environ.get(GRADING_ENV, "").strip().lower() not in ("1", "true", "yes")


def reveal(detail: str) -> str:
    """``"; <detail>"`` in practice mode, nothing when grading: for expected values."""
    return f"; {detail}" if practice_mode() else ""


def call_student(exercise: str, fn: Callable[..., T], *args: object,
                 seconds: float = 60.0) -> T:
    """``fn(*args)``, stopped with feedback if it has not returned after ``seconds``.

    A student's loop that never ends would otherwise hang the check (and the kernel's
    cell) with no message. The limit uses SIGALRM, so it applies only on the main thread
    of a Unix process (a Jupyter kernel's cells run there); elsewhere ``fn`` runs unlimited.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        return fn(*args)

    def stop(signum: int, frame: object) -> None:
        fail(exercise, f"your function had not returned after {seconds:g} s, so the check "
             "stopped it.",
             "Look for a loop whose condition never changes (a while loop, or a for loop over "
             "something that grows). If a cell of yours hangs, interrupt the kernel (the square "
             "'stop' button, or Kernel > Interrupt), fix the loop and run the cell again.")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
