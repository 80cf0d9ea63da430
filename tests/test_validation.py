"""The shared input checks: NumPy integers are integers, bools and strs are not numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab.validation import (
    as_counts,
    as_finite_array,
    require_finite,
    require_int,
    require_positive,
    require_positive_int,
)


@pytest.mark.parametrize("k", [5, np.int64(5), np.int32(5), np.uint8(5), np.array(5),
                               torch.tensor(5)])
def test_integers_of_every_kind_are_integers(k):
    assert require_positive_int(k, "k") == 5 and type(require_positive_int(k, "k")) is int
    assert require_int(k, "k", 0) == 5


@pytest.mark.parametrize("k", [True, np.bool_(True), 5.0, "5", None, np.float64(5)])
def test_non_integers_are_refused_where_an_int_is_meant(k):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        require_positive_int(k, "k")
    with pytest.raises(TypeError, match="k must be an integer"):
        require_int(k, "k")


def test_integer_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -1"):
        require_int(-1, "n", 0)
    with pytest.raises(ValueError, match=r"k must be an integer >= 1, got np.int64\(0\)"):
        require_positive_int(np.int64(0), "k")


@pytest.mark.parametrize("check", [require_positive, require_finite])
@pytest.mark.parametrize("value", [True, False, "3", None, [1.0], 1 + 2j])
def test_bools_strs_and_non_numbers_are_refused_where_a_number_is_meant(check, value):
    # True was taken as 1.0 and "3" as 3.0 without a word.
    with pytest.raises(TypeError, match="sigma must be a"):
        check(value, "sigma")


@pytest.mark.parametrize("check", [require_positive, require_finite])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused_with_the_name(check, value):
    with pytest.raises(ValueError, match=r"sigma must be (a positive, )?finite"):
        check(value, "sigma")


@pytest.mark.parametrize("value", [2, np.float32(2.0), np.int64(2), np.array(2.0),
                                   torch.tensor(2.0)])
def test_numbers_of_every_kind_are_numbers(value):
    assert require_positive(value, "s") == 2.0 and require_finite(value, "s") == 2.0


def test_require_positive_refuses_zero_and_negative():
    for value in (0, -1.5):
        with pytest.raises(ValueError, match="positive"):
            require_positive(value, "s")


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        ([True, False], TypeError, "got booleans"),
        (["a", "b"], TypeError, "must be real numbers"),
        (None, TypeError, "must be real numbers"),  # was "non-finite value (nan)"
        ([1.0, None], TypeError, "must be real numbers"),
        ([1 + 2j], TypeError, "must be real numbers"),
        ([[1.0], [2.0, 3.0]], ValueError, "ragged"),
        ([[1.0, 2.0]], ValueError, "1-D sequence"),
        ([], ValueError, "empty"),
        ([1.0, np.nan], ValueError, "non-finite value"),
        ([1.0, np.inf], ValueError, "non-finite value"),
    ],
)
def test_as_finite_array_says_what_is_wrong(values, error, match):
    with pytest.raises(error, match=match):
        as_finite_array(values, "data")


def test_as_finite_array_accepts_one_value_arrays_tensors_and_mixed_numbers():
    np.testing.assert_array_equal(as_finite_array(3.0), [3.0])
    np.testing.assert_array_equal(as_finite_array(torch.tensor([1.0, 2.0])), [1.0, 2.0])
    np.testing.assert_array_equal(as_finite_array([1, np.float64(2.5)]), [1.0, 2.5])


def test_as_counts_refuses_negative_and_fractional_counts():
    np.testing.assert_array_equal(as_counts([3, 4, 1]), [3, 4, 1])
    with pytest.raises(ValueError, match="non-negative"):
        as_counts([1, -1])
    with pytest.raises(ValueError, match="whole numbers"):
        as_counts([1.5])


def test_require_range_takes_two_finite_increasing_numbers():
    from vaelab.validation import require_range

    assert require_range((np.int64(1), 2.5), "r") == (1.0, 2.5)
    for bad, error in [((1.0,), TypeError), ("ab", TypeError), ((2.0, 1.0), ValueError),
                       ((0.0, np.inf), ValueError), ((True, 2.0), TypeError)]:
        with pytest.raises(error, match="r must be"):
            require_range(bad, "r")
