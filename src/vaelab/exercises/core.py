"""The feedback mechanism every exercise check uses.

A check either prints one line saying the exercise is correct, or raises
``ExerciseError`` (an ``AssertionError``, so autograders count it as a failed
test) whose message says what is wrong and gives a hint for the likely mistake,
without a value that could be pasted to pass.

How a check of a function exercise is built (``vaelab.exercises.vae`` is a short example):

1. draw its inputs when it runs: ``seed = fresh_seed()``, then several cases of different
   shapes from ``np.random.default_rng(seed)`` (values on a 0.1 grid print exactly, so a
   student can paste them to reproduce a failure; ``show`` formats them);
2. compute the package's answer on each case first, then call the student's function on
   copies with ``call_student`` (time limit; the package's answer to the exercise is
   switched off meanwhile, ``vaelab.references``; with ``names=`` the arguments it changed
   in place are recorded);
3. turn what came back into a comparable value (``number_answer``, ``tensor_answer``: any
   dtype, device or NumPy/torch form of a right answer is accepted);
4. on a mismatch, ``diagnose`` the known mistakes: a list of ``Mistake(problem, hint,
   answer)`` where ``answer(case)`` computes what that mistake returns on the case; the
   first that matches raises its feedback (then an input changed in place does). Adding a
   diagnosis is adding one ``Mistake``;
5. otherwise ``fail`` with the general hint; ``reveal`` adds the expected value in practice
   mode only (inputs change on every run, so it cannot be pasted to pass).

Exercises answered with a value (not a function) compare it with the package's value and
never show the expected value.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np

from vaelab import references

if TYPE_CHECKING:
    import torch

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
    """Print the one-line confirmation for a correct answer, and record it: the package's
    answers to this exercise are then open to the notebook (``vaelab.references``)."""
    references.mark_answered(exercise)
    print(f"Exercise {exercise}: correct." + (f" {detail}" if detail else ""))


# Graders set VAELAB_GRADING=1, and a graded check cell (vaelab.exercises.grading) switches
# it on for its own copy of this module: feedback then never shows an expected value.
GRADING_ENV = "VAELAB_GRADING"
_graded = False


def practice_mode() -> bool:
    """True unless this is a graded check or ``VAELAB_GRADING`` is set to 1 (or true, yes)."""
    if _graded:
        return False
    return os.environ.get(GRADING_ENV, "").strip().lower() not in ("1", "true", "yes")


def reveal(detail: str) -> str:
    """``"; <detail>"`` in practice mode, nothing when grading: for expected values."""
    return f"; {detail}" if practice_mode() else ""


# ----------------------------------------------------------------------------- inputs


def fresh_seed() -> int:
    """A new seed on every call: a check's inputs change from run to run, so no value
    printed by one run (and no constant) can pass the next."""
    return secrets.randbits(31)


def grid(rng: np.random.Generator, low: float, high: float, shape: tuple[int, ...] | int = (),
         avoid: Sequence[float] = ()) -> np.ndarray:
    """Values on the 0.1 grid in [low, high] (printed exactly), never one of ``avoid``."""
    choices = np.round(np.arange(round(low * 10), round(high * 10) + 1) / 10.0, 1)
    choices = choices[~np.isin(choices, np.asarray(avoid, dtype=float))]
    return rng.choice(choices, size=shape)


def grid_tensor(rng: np.random.Generator, low: float, high: float, shape: tuple[int, ...],
                avoid: Sequence[float] = (), dtype: Any = None) -> torch.Tensor:
    """``grid`` as a torch tensor (float64, or ``dtype``)."""
    import torch

    return torch.from_numpy(grid(rng, low, high, shape, avoid)).to(dtype or torch.float64)


def _torch_tensor(value: object) -> bool:
    # torch is imported only by the notebooks that use it; notebooks 01-02 never load it.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def show(value: Any) -> str:
    """A short text form of an input or an answer (numbers to 6 significant digits)."""
    if _torch_tensor(value):
        value = value.detach().cpu().double().numpy()
    if isinstance(value, np.ndarray | float | int | np.floating | np.integer):
        text = np.array2string(np.asarray(value, dtype=float), precision=6, separator=", ",
                               suppress_small=True, floatmode="maxprec", max_line_width=10**6)
        return text.replace("\n", "")  # one line, rows still bracketed
    return repr(value)


# ----------------------------------------------------------------------------- the student's call


def _snapshot(value: object) -> object:
    if _torch_tensor(value):
        return value.detach().clone()  # type: ignore[union-attr]
    if isinstance(value, np.ndarray):
        return value.copy()
    return None


def _changed(before: object, after: object) -> bool:
    if _torch_tensor(before):
        return not sys.modules["torch"].equal(before, after.detach())  # type: ignore[union-attr]
    if isinstance(before, np.ndarray):
        return not np.array_equal(before, after, equal_nan=True)  # type: ignore[arg-type]
    return False


def call_student(exercise: str, fn: Callable[..., T], *args: object, seconds: float = 60.0,
                 names: Sequence[str] | None = None) -> T:
    """``fn(*args)`` with the package's answer to ``exercise`` switched off, stopped with
    feedback if it has not returned after ``seconds``.

    A call of any function that answers the exercise (``vaelab.references``), under any
    name, fails the check, even if the student's code catches the refusal. With ``names``
    (one per argument), the arguments the function changed in place are recorded:
    ``diagnose`` tells a wrong answer so, ``inputs_changed`` lists them.
    A student's loop that never ends would otherwise hang the check (and the kernel's
    cell) with no message. The limit uses SIGALRM, so it applies only on the main thread
    of a Unix process (a Jupyter kernel's cells run there); elsewhere ``fn`` runs unlimited.
    """
    if references.exercises_answered_by(fn):
        fail(exercise, f"{fn.__qualname__} is the package's own function, not yours.",
             "Pass the function you wrote in the exercise cell.")
    before = [_snapshot(a) for a in args] if names is not None else []
    with references.switched_off(exercise) as refused:
        try:
            result = _with_time_limit(exercise, fn, args, seconds)
        except references.ReferenceSwitchedOff:
            if not refused:
                raise
            # reported below, as is a refused call that the student's code caught
        if refused:
            fail(exercise, f"your function calls {refused[0]}, the package's own answer to this "
                 "exercise, so it is switched off while your function is checked.",
                 "The exercise asks you to write this computation yourself: replace that call "
                 "by your own code (the exercise's text says which functions you may use).")
    _last_call.changed = [name for name, old, new in zip(names or (), before, args, strict=False)
                          if _changed(old, new)]
    return result


class _LastCall:
    changed: list[str] = []  # the arguments the last call_student(..., names=) changed in place


_last_call = _LastCall()


def inputs_changed() -> list[str]:
    """The arguments (by the ``names`` given) that the last ``call_student`` changed in place."""
    return list(_last_call.changed)


def fail_if_inputs_changed(exercise: str) -> None:
    """Feedback naming an argument the student's function changed in place, if it did."""
    for name in _last_call.changed:
        fail(exercise, f"your function changed its argument {name} in place.",
             f"Leave {name} as it was: work on copies or build new tensors (z = mu + ..., not "
             f"z = {name}; z += ...), which also keeps autograd's graph intact.")


def _with_time_limit(exercise: str, fn: Callable[..., T], args: tuple, seconds: float) -> T:
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


# ----------------------------------------------------------------------------- answers


def number_answer(value: object, exercise: str, what: str) -> float:
    """The answer as a finite float, or the feedback that it is not one."""
    if _torch_tensor(value):
        value = value.detach().cpu()  # type: ignore[union-attr]
    arr = np.asarray(value)
    if arr.size != 1:
        fail(exercise, f"{what} should be a single number, got an array of shape {arr.shape}.",
             "Sum (or average) over the observations to get one number.")
    try:
        x = float(arr.reshape(()))
    except (TypeError, ValueError):
        fail(exercise, f"{what} should be a number, got {value!r}.",
             "Assign the result of your computation (a float), not a function or a string.")
    if not np.isfinite(x):
        fail(exercise, f"{what} is {x}, not a finite number.",
             "Check for a log of zero or of a negative number.")
    return x


def tensor_answer(value: object, exercise: str, what: str, hint: str) -> torch.Tensor:
    """A tensor answer as float64 on the CPU, detached (any dtype or device is accepted);
    the feedback ``hint`` if it is not a tensor."""
    import torch

    if not isinstance(value, torch.Tensor):
        fail(exercise, f"{what} must return a torch.Tensor, got {type(value).__name__}", hint)
    return value.detach().cpu().to(torch.float64)


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: ``answer(case)`` is what it returns on a check's inputs."""

    problem: str
    hint: str
    answer: Callable[[Any], Any]


def diagnose(exercise: str, got: Any, case: Any, mistakes: Sequence[Mistake],
             close: Callable[[Any, Any], bool], where: str = "") -> None:
    """Fail with the first mistake whose answer on ``case`` is ``close`` to ``got``;
    return if none matches. ``where`` is appended to the problem (the inputs, the values).
    When none matches, a function that changed its inputs in place is told so."""
    for mistake in mistakes:
        try:
            candidate = mistake.answer(case)
        except (ArithmeticError, ValueError, RuntimeError):
            continue  # a mistake that cannot even be computed on these inputs
        if close(got, candidate):
            fail(exercise, mistake.problem + where, mistake.hint)
    fail_if_inputs_changed(exercise)
