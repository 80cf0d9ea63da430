"""The package's own answers to the exercises, and the switch that turns them off.

Some functions of the package compute what an exercise asks a student to write (the
Gaussian KL, the VAE loss) or to find (the Gaussian MLE). Each carries ``@answers``::

    @answers("4.2", "5.1")
    def vae_loss(...): ...

and is then switched off, whoever calls it and under whatever name it was imported:

- while a check runs the student's function for one of its exercises (``switched_off``):
  every call refuses, and the check learns of it even if the student's code catches the
  refusal;
- with ``until_answered=True`` (exercises answered by a value computed in a notebook cell,
  not by a function the check can call): every call from code typed in the notebook
  refuses until that exercise's check has passed in this kernel (``mark_answered``). The
  package's own code (a plot that marks the maximum) may still call it.

The state lives in one object that each guarded function captured when it was defined, so
rebinding a name (``vaelab.vae.vae_loss = ...``) or keeping an alias
(``from vaelab.vae import vae_loss``) does not escape it. It is a guard against using the
package's answer, not a sandbox: Python code running in the same process can always reach
and change it.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import textwrap
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])



class ReferenceSwitchedOff(NotImplementedError):
    """The package's answer to an exercise was called where the student's own is wanted."""

    def __init__(self, exercise: str, name: str, reason: str) -> None:
        self.exercise = exercise
        self.name = name
        super().__init__(f"Exercise {exercise}: {name} computes the answer to this "
                         f"exercise, {reason}")


class _Switchboard:
    """Which exercises are being checked, which are answered, and what was refused."""

    def __init__(self) -> None:
        self.checking: dict[str, list[str]] = {}  # exercise -> names refused during its check
        self.answered: set[str] = set()
        self.registry: dict[str, Callable[..., Any]] = {}  # qualified name -> guarded function
        # guarded function -> the function it guards; kept here, not on the function, so the
        # unguarded one is not one attribute away.
        self.originals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def refuse(self, exercises: tuple[str, ...], until_answered: bool, name: str) -> None:
        for exercise in exercises:
            if exercise in self.checking:
                self.checking[exercise].append(name)
                raise ReferenceSwitchedOff(
                    exercise, name, "switched off while your answer is checked: write it "
                    "yourself (the exercise's text says what you may use)")
        if until_answered:
            for exercise in exercises:
                if exercise not in self.answered and _called_from_notebook():
                    raise ReferenceSwitchedOff(
                        exercise, name, "so code in this notebook can use it only once your "
                        "own answer has passed the exercise's check: answer the exercise first")

    def answers(self, *exercises: str, until_answered: bool = False) -> Callable[[F], F]:
        if not exercises or not all(isinstance(e, str) and e for e in exercises):
            raise ValueError(f"answers needs exercise ids such as '4.2', got {exercises!r}")

        def decorate(fn: F) -> F:
            name = f"{fn.__module__}.{fn.__qualname__}"
            refuse = self.refuse

            def guarded(*args: Any, **kwargs: Any) -> Any:
                refuse(exercises, until_answered, name)
                return fn(*args, **kwargs)

            for attr in ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__"):
                setattr(guarded, attr, getattr(fn, attr))
            guarded.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
            guarded.answers_exercises = exercises  # type: ignore[attr-defined]
            self.registry.setdefault(name, guarded)
            self.originals[guarded] = fn
            return guarded  # type: ignore[return-value]

        return decorate

    @contextlib.contextmanager
    def switched_off(self, exercise: str) -> Iterator[list[str]]:
        """While inside: every guarded function of ``exercise`` refuses; yields the list of
        the names refused so far (the check reads it after the student's function ran)."""
        refused = self.checking.setdefault(exercise, [])
        try:
            yield refused
        finally:
            self.checking.pop(exercise, None)


def _called_from_notebook() -> bool:
    """Whether the caller of the guarded function is code typed in an IPython session."""
    frame = sys._getframe(3)  # _called_from_notebook <- refuse <- guarded <- the caller
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and frame.f_globals is shell.user_ns


_BOARD = _Switchboard()

answers = _BOARD.answers
switched_off = _BOARD.switched_off


def mark_answered(exercise: str) -> None:
    """Record that ``exercise``'s check passed in this process (opens ``until_answered``)."""
    _BOARD.answered.add(exercise)


def is_answered(exercise: str) -> bool:
    """Whether ``exercise``'s check has passed in this process."""
    return exercise in _BOARD.answered


def exercises_answered_by(fn: object) -> tuple[str, ...]:
    """The exercises ``fn`` answers if it is a function carrying ``@answers``, else ``()``."""
    try:
        return fn.answers_exercises if fn in _BOARD.originals else ()  # type: ignore[union-attr]
    except TypeError:  # not weak-referenceable: not a guarded function
        return ()


def registry_items() -> list[tuple[str, Callable[..., Any]]]:
    """(qualified name, guarded function) for every function carrying ``@answers``, as
    first defined in this process."""
    return list(_BOARD.registry.items())


def package_module(name: str) -> bool:
    """Whether the module called ``name`` belongs to this package."""
    return name == "vaelab" or name.startswith("vaelab.")


def source_code(fn: object) -> str | None:
    """The source text of the function behind a guarded ``fn``, decorators included (what
    ``vaelab.display.show_source`` shows); None if ``fn`` is not a guarded function."""
    try:
        original = _BOARD.originals.get(fn)  # type: ignore[arg-type]
    except TypeError:
        return None
    return None if original is None else textwrap.dedent(inspect.getsource(original))
