"""vaelab.small_data: values, dtypes, read-only."""

import numpy as np
import pytest

from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G


def test_newborn_weights_are_the_notebook_values() -> None:
    np.testing.assert_array_equal(NEWBORN_WEIGHTS_G, [2642.0, 3500.0, 4358.0])
    assert NEWBORN_WEIGHTS_G.dtype == np.float64
    assert NEWBORN_WEIGHTS_G.shape == (3,)


def test_car_counts_are_the_notebook_values() -> None:
    np.testing.assert_array_equal(CAR_COUNTS, [3, 4, 1])
    assert np.issubdtype(CAR_COUNTS.dtype, np.integer)


@pytest.mark.parametrize("arr", [NEWBORN_WEIGHTS_G, CAR_COUNTS])
def test_constants_are_read_only(arr: np.ndarray) -> None:
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = 0
