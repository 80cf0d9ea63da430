"""The feedback mechanism every exercise check uses.

A check either prints one line saying the exercise is correct, or raises
``ExerciseError`` (an ``AssertionError``, so autograders count it as a failed
test) whose message says what was expected and gives a hint for the likely
mistake.
"""

from __future__ import annotations

from typing import NoReturn


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
