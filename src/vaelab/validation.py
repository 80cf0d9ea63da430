"""Input checks shared by every public function: one wording for one mistake.

Numbers may be Python or NumPy scalars (``np.int64(5)`` is an integer, ``np.float32(0.5)`` a
number) or one-element arrays and tensors of zero dimensions. A bool is refused wherever a
number is meant (``True`` would silently count as 1), and so is a str (``"3"`` is not 3).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

_MAX_EXACT_COUNT = 2**53


class InputTypeError(TypeError, ValueError):
    """An argument of the wrong type (a bool or str where a number is meant, ...).

    A ``TypeError``, and a ``ValueError`` too: the package reported these as ``ValueError``
    before, and callers that catch that keep working.
    """


def _scalar(value: object) -> object:
    """A 0-d NumPy array or torch tensor as its Python number; anything else unchanged."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def _number(value: object, name: str, what: str) -> float:
    """``value`` as a float if it is a real number (not a bool, str or None), else raise."""
    x = _scalar(value)
    if isinstance(x, bool | np.bool_):
        raise InputTypeError(f"{name} must be {what}, got the bool {value!r}; pass a number")
    if not isinstance(x, numbers.Real):
        raise InputTypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    return float(x)


def as_array(values: object, name: str, *, ndim: int | None = None, finite: bool = True
             ) -> np.ndarray:
    """``values`` as a float64 NumPy array of real numbers: the one coercer of the package.

    Accepts Python numbers and (nested) sequences of them, NumPy arrays and torch tensors
    (detached, copied to the CPU). Refuses, with ``InputTypeError``, what is not real numbers:
    bools (True would silently count as 1), strings, None, complex numbers, ragged lists.
    ndim: the number of dimensions required; finite=True also refuses NaN and infinities.
    """
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        raw = np.asarray(values)
    except ValueError:  # ragged nested lists
        raise InputTypeError(f"{name} must be real numbers, got a ragged sequence {values!r}"
                             ) from None
    if raw.dtype == bool:
        raise InputTypeError(f"{name} must be real numbers, got booleans; True/False would "
                             "silently count as 1/0")
    # Object arrays hold mixed Python objects: numbers pass, None (cast to NaN) does not.
    numeric = raw.dtype.kind in "iuf" or (raw.dtype.kind == "O" and raw.size > 0 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in raw.ravel()))
    if not numeric:
        raise InputTypeError(f"{name} must be real numbers, got {values!r}")
    arr = raw.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].flat[0]
        raise ValueError(f"{name} contains a non-finite value ({bad}); pass finite numbers")
    return arr


def as_finite_array(values: Sequence[float] | np.ndarray, name: str = "data") -> np.ndarray:
    """Return ``values`` as a non-empty 1-D float array of finite numbers (a scalar becomes one
    observation), or raise ``ValueError``/``TypeError``."""
    arr = as_array(values, name)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass at least one observation")
    return arr


def as_counts(values: Sequence[int] | np.ndarray, name: str = "counts") -> np.ndarray:
    """Return ``values`` as a non-empty 1-D int array of counts (0, 1, 2, ...)."""
    arr = as_finite_array(values, name)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative counts, got {arr[arr < 0][0]:g}")
    if np.any(arr > _MAX_EXACT_COUNT):  # beyond 2**53 floats skip integers, int64 overflows
        raise ValueError(f"{name} holds a count of {arr.max():g}, too large to count exactly; "
                         f"counts must be at most 2**53 = {_MAX_EXACT_COUNT}")
    if np.any(arr != np.round(arr)):
        bad = arr[arr != np.round(arr)][0]
        raise ValueError(f"{name} must be whole numbers (counts), got {bad:g}")
    return arr.astype(np.int64)


def require_positive(value: float, name: str) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise ``ValueError``
    (``TypeError`` for a bool, str or other non-number)."""
    x = _number(value, name, "a positive number")
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")
    return x


def require_finite(value: float, name: str) -> float:
    """Return ``value`` as a float if it is a finite number, else raise ``ValueError``
    (``TypeError`` for a bool, str or other non-number)."""
    x = _number(value, name, "a finite number")
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}; pass a finite number")
    return x


def require_range(pair: Sequence[float], name: str) -> tuple[float, float]:
    """Return ``pair`` as ``(low, high)`` floats if it is two finite numbers with low < high."""
    if isinstance(pair, str) or not isinstance(pair, Sequence | np.ndarray) or len(pair) != 2:
        raise InputTypeError(f"{name} must be a pair (low, high), got {pair!r}")
    lo = _number(pair[0], name, "a pair of numbers (low, high)")
    hi = _number(pair[1], name, "a pair of numbers (low, high)")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be (low, high) with finite low < high, got {pair!r}")
    return lo, hi


def require_int(value: int, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer (Python or NumPy, not a bool) and at least
    ``minimum``, else raise ``ValueError`` (``TypeError`` for a bool or a non-integer)."""
    x = _scalar(value)
    if isinstance(x, bool | np.bool_) or not isinstance(x, numbers.Integral):
        hint = "; pass a whole number such as 5" if isinstance(x, numbers.Real) else ""
        raise InputTypeError(f"{name} must be an integer, got {value!r} "
                        f"({type(value).__name__}){hint}")
    if minimum is not None and x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(x)


def require_positive_int(value: int, name: str) -> int:
    """Return ``value`` as an int if it is an integer >= 1, else raise ``ValueError``."""
    try:
        return require_int(value, name, 1)
    except InputTypeError as exc:  # one wording for every non-integer: ">= 1" included
        raise InputTypeError(str(exc).replace("an integer,", "an integer >= 1,")) from None


def require_generator(rng: object) -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``, else raise ``ValueError``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            "rng must be a numpy.random.Generator (for example seed_everything(0) or "
            f"np.random.default_rng(0)), got {type(rng).__name__}"
        )
    return rng
