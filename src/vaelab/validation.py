"""Input checks shared by every public function: one wording for one mistake."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_finite_array(values: Sequence[float] | np.ndarray, name: str = "data") -> np.ndarray:
    """Return ``values`` as a non-empty 1-D float array, or raise ``ValueError``."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass at least one observation")
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)][0]
        raise ValueError(f"{name} contains a non-finite value ({bad}); remove or fix it")
    return arr


def as_counts(values: Sequence[int] | np.ndarray, name: str = "counts") -> np.ndarray:
    """Return ``values`` as a non-empty 1-D int array of counts (0, 1, 2, ...)."""
    arr = as_finite_array(values, name)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative counts, got {arr[arr < 0][0]:g}")
    if np.any(arr != np.round(arr)):
        bad = arr[arr != np.round(arr)][0]
        raise ValueError(f"{name} must be whole numbers (counts), got {bad:g}")
    return arr.astype(np.int64)


def require_positive(value: float, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise ``ValueError``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")
    return x


def require_finite(value: float, name: str) -> float:
    """Return ``value`` as a float if it is finite, else raise ``ValueError``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return x


def require_positive_int(value: int, name: str) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def require_generator(rng: object) -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``, else raise ``ValueError``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            "rng must be a numpy.random.Generator (for example seed_everything(0) or "
            f"np.random.default_rng(0)), got {type(rng).__name__}"
        )
    return rng
