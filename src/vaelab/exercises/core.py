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

import contextlib
import os
import random
import re
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np

from vaelab import references
from vaelab.validation import as_array

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


@contextlib.contextmanager
def global_state_kept() -> Iterator[None]:
    """Inside the block anything may draw random numbers or change torch's settings; after
    it, the random generators (Python's, NumPy's global one, torch's on the CPU and on every
    CUDA device in use), torch's default dtype, thread count and grad mode are as before.

    A check runs the student's function (and its own computations) inside it, so running a
    check cell changes nothing the notebook's later cells rely on.
    """
    # NumPy's legacy global generator: the one np.random.rand in a notebook draws from.
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    torch = sys.modules.get("torch")  # notebooks 01-02 may never load torch
    settings = ((torch.get_default_dtype(), torch.get_num_threads(), torch.is_grad_enabled())
                if torch is not None else None)
    try:
        with contextlib.ExitStack() as stack:
            if torch is not None:
                cuda = (list(range(torch.cuda.device_count())) if torch.cuda.is_initialized()
                        else [])
                stack.enter_context(torch.random.fork_rng(devices=cuda))
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002
        if settings is not None:
            dtype, threads, grad = settings
            torch.set_default_dtype(dtype)
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            torch.set_grad_enabled(grad)


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
    torch's errors for mixed devices or dtypes and for an in-place change of an input that
    requires grad become feedback naming the inputs' devices, dtypes or names. The function
    runs inside ``global_state_kept``.
    """
    if references.exercises_answered_by(fn):
        fail(exercise, f"{fn.__qualname__} is the package's own function, not yours.",
             "Pass the function you wrote in the exercise cell.")
    before = [_snapshot(a) for a in args] if names is not None else []
    _last_call.exercise, _last_call.changed = exercise, []
    with references.switched_off(exercise) as refused, global_state_kept():
        try:
            result = _with_time_limit(exercise, fn, args, seconds)
        except references.ReferenceSwitchedOff:
            if not refused:
                raise
            # reported below, as is a refused call that the student's code caught
        except RuntimeError as error:  # torch's errors are RuntimeErrors
            if not refused:  # else the refused call below is the feedback
                _explain_torch_error(exercise, error, args, names)
                raise
        if refused:
            fail(exercise, f"your function calls {refused[0]}, the package's own answer to this "
                 "exercise, so it is switched off while your function is checked.",
                 "The exercise asks you to write this computation yourself: replace that call "
                 "by your own code (the exercise's text says which functions you may use).")
    _last_call.changed = [name for name, old, new in zip(names or (), before, args, strict=False)
                          if _changed(old, new)]
    return result


def draws_its_own_noise(exercise: str, fn: Callable[..., object], *args: object) -> bool:
    """Whether ``fn(*args)`` (tensors copied for each call) returns different values when
    torch's and NumPy's global generators are seeded differently: the function draws noise
    of its own (torch.randn_like, Normal(...).rsample()) instead of using the one it is given.
    The generators are left as they were."""
    import torch

    outs = []
    with global_state_kept():
        for seed in (0, 1):
            torch.manual_seed(seed)
            np.random.seed(seed)  # noqa: NPY002 - the legacy global generator np.random.randn uses
            copies = [a.clone() if _torch_tensor(a) else a for a in args]  # type: ignore[union-attr]
            out = call_student(exercise, fn, *copies)
            if not _torch_tensor(out):
                return False
            outs.append(on_cpu(out, exercise, "your function"))  # type: ignore[arg-type]
    return not torch.equal(outs[0], outs[1])


# torch's wording (CUDA, MPS and the meta device word it differently), in its RuntimeErrors
_DEVICE_ERROR = re.compile(r"same device|on the expected device|device type", re.IGNORECASE)
_DTYPE_ERROR = re.compile(r"same dtype|scalar type|found dtype|\b(?:float|double|half|bfloat16)"
                          r" did not match\b|to have the same dtype", re.IGNORECASE)
_LEAF_ERROR = "leaf Variable that requires grad is being used in an in-place operation"


def _tensor_of(value: object) -> Any:
    """``value`` if it is a tensor, a model's first parameter if it is a model, else None."""
    if _torch_tensor(value):
        return value
    parameters = getattr(value, "parameters", None)
    if callable(parameters) and _torch_tensor(first := next(iter(parameters()), None)):
        return first
    return None


def _explain_torch_error(exercise: str, error: RuntimeError, args: tuple,
                         names: Sequence[str] | None) -> None:
    """Feedback for a torch error the student's function raised that a check can explain
    (and nothing, to let the error through, for any other)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    labels = names or [f"argument {i + 1}" for i in range(len(args))]
    tensors = [(name, t) for name, a in zip(labels, args, strict=False)
               if (t := _tensor_of(a)) is not None]
    if _DEVICE_ERROR.search(text):
        where = ", ".join(f"{name} on {t.device}" for name, t in tensors)
        fail(exercise, f"your function mixes tensors on different devices (torch: {text}); "
             f"the check passes {where or 'its inputs'}.",
             "Create every new tensor on the device of the inputs (torch.zeros_like(mu), "
             "torch.randn_like(mu), or device=mu.device) instead of a fixed device: the "
             "same function then runs wherever its inputs are.")
    if _DTYPE_ERROR.search(text):
        where = ", ".join(f"{name} in {str(t.dtype).replace('torch.', '')}" for name, t in tensors)
        fail(exercise, f"your function mixes dtypes (torch: {text}); the check passes "
             f"{where or 'its inputs'}.",
             "Keep every tensor in the inputs' dtype: create new ones with torch.zeros_like(mu) "
             "or dtype=mu.dtype, and convert none of them with .double() or .float().")
    if _LEAF_ERROR in text:
        grad = [name for name, a in zip(labels, args, strict=False)
                if _torch_tensor(a) and a.requires_grad]  # type: ignore[union-attr]
        fail(exercise, f"your function writes into its input {' or '.join(grad) or 'tensors'} "
             "in place (+=, -=, *=, a method ending in _, or z = mu; z += ...), which torch "
             "refuses for a tensor that requires grad.",
             "Build new tensors from the inputs instead (z = mu + ..., which leaves mu as it "
             "was): writing into an argument changes the caller's tensor, and autograd needs "
             "it unchanged to compute gradients.")


class _LastCall:
    exercise: str = ""  # the exercise of the last call_student
    changed: list[str] = []  # the arguments that call changed in place


_last_call = _LastCall()


def inputs_changed() -> list[str]:
    """The arguments (by the ``names`` given) that the last ``call_student`` changed in place."""
    return list(_last_call.changed)


def fail_if_inputs_changed(exercise: str) -> None:
    """Feedback naming an argument the student's function changed in place, if the last
    ``call_student`` (for this exercise) recorded one."""
    if _last_call.exercise != exercise:
        return  # a check that calls no student function (a value exercise) changes nothing
    for name in _last_call.changed:
        fail(exercise, f"your function changed its argument {name} in place.",
             f"Leave {name} as it was: build new tensors from it. z = {name} gives the same "
             f"tensor a second name, so z += ... (or any method ending in _) changes {name} "
             "too; z = mu + ... makes a new one, and keeps autograd's graph intact.")


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


def on_cpu(value: torch.Tensor, exercise: str, what: str) -> torch.Tensor:
    """``value`` detached and copied to the CPU (from any device), or the feedback naming
    the device it could not be copied from."""
    try:
        return value.detach().cpu()
    except (RuntimeError, NotImplementedError) as error:  # the meta device holds no values
        fail(exercise, f"{what} is a tensor on the {value.device} device, and its values "
             f"cannot be read from there ({error}).",
             "Return a tensor computed from the inputs, on their device.")


def _plain(value: object, exercise: str, what: str) -> object:
    """``value`` with every torch tensor in it (in a list or tuple too) on the CPU, detached."""
    if _torch_tensor(value):
        return on_cpu(value, exercise, what)  # type: ignore[arg-type]
    if isinstance(value, list | tuple):
        return [_plain(v, exercise, what) for v in value]
    return value


def _kind_of(value: object) -> str:
    """'string' or 'bool' if ``value`` (a scalar, or a 0-d or one-element array or tensor)
    is text or a truth value rather than a number; '' otherwise."""
    while isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, str | bytes | np.str_ | np.bytes_):
        return "string"
    dtype = getattr(value, "dtype", None)
    if isinstance(value, bool | np.bool_) or str(dtype) in ("bool", "torch.bool"):
        return "bool"
    if isinstance(value, np.ndarray) and value.dtype.kind in "USO" and value.size == 1:
        return _kind_of(value.reshape(-1)[0])
    return ""


def number_answer(value: object, exercise: str, what: str) -> float:
    """The answer as a finite float, or the feedback that it is not one.

    Any real-number form passes: a Python or NumPy number, a 0-d or one-element array or
    tensor of any dtype, on any device, with or without ``requires_grad``, or a list of one.
    A string or a bool is refused, even one that reads as a number (``"3.5"``, ``True``).
    """
    plain = _plain(value, exercise, what)
    kind = _kind_of(plain)
    if kind == "string":
        fail(exercise, f"{what} should be a number, got a string.",
             "Assign the number your code computes, without quotes: text that reads as a "
             "number is not one.")
    if kind == "bool":
        fail(exercise, f"{what} should be a number, got a bool (True or False).",
             "Assign the number your code computes: True and False are not counts, although "
             "Python would count True as 1.")
    try:
        arr = as_array(plain, what, finite=False)
    except (TypeError, ValueError):
        fail(exercise, f"{what} should be a number, got {type(value).__name__}.",
             "Assign the result of your computation (a float), not a function or a string.")
    if arr.size != 1:
        fail(exercise, f"{what} should be a single number, got an array of shape {arr.shape}.",
             "Sum (or average) over the observations to get one number.")
    x = float(arr.reshape(()))
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
    return on_cpu(value, exercise, what).to(torch.float64)


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: ``answer(case)`` is what it returns on a check's inputs."""

    problem: str
    hint: str
    answer: Callable[[Any], Any]


def diagnose(exercise: str, got: Any, case: Any, mistakes: Sequence[Mistake],
             close: Callable[[Any, Any], bool], where: str = "",
             also: Sequence[tuple[Any, Any]] = ()) -> None:
    """Fail with the first mistake whose answer on ``case`` is ``close`` to ``got``;
    return if none matches. ``where`` is appended to the problem (the inputs, the values).
    ``also``: the check's other (got, case) pairs; a mistake is named only if it gives the
    student's answer on those too, so a wrong answer that matches one on one set of inputs by
    chance is not misnamed. When none matches, a function that changed its inputs in place
    is told so."""
    pairs = [(got, case), *also]
    for mistake in mistakes:
        try:
            candidates = [mistake.answer(c) for _, c in pairs]
        except (ArithmeticError, ValueError, RuntimeError):
            continue  # a mistake that cannot even be computed on these inputs
        if all(close(g, candidate) for (g, _), candidate in zip(pairs, candidates, strict=True)):
            fail(exercise, mistake.problem + where, mistake.hint)
    fail_if_inputs_changed(exercise)
