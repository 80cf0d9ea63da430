"""The two small data sets of notebooks 01 and 02, as read-only NumPy arrays.

Read-only so that a notebook cell cannot change the data every later cell
(and every other notebook imported in the same kernel) relies on.
"""

from __future__ import annotations

import numpy as np


def _read_only(values: list[float] | list[int], dtype: type) -> np.ndarray:
    arr = np.array(values, dtype=dtype)
    arr.flags.writeable = False
    return arr


#: Birth weights of three newborns in grams, shape (3,): notebook 01.
NEWBORN_WEIGHTS_G: np.ndarray = _read_only([2642.0, 3500.0, 4358.0], np.float64)

#: Cars counted passing near home in three intervals, shape (3,): notebook 02.
CAR_COUNTS: np.ndarray = _read_only([3, 4, 1], np.int64)
