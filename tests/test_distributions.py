"""vaelab.distributions: Gaussian and Categorical against scipy; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vaelab.distributions import Categorical, Gaussian


def test_gaussian_log_prob_entropy_and_samples_match_scipy():
    mean, cov = np.array([0.5, -1.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
    g, ref = Gaussian(mean, cov), stats.multivariate_normal(mean, cov)
    z = np.random.default_rng(0).standard_normal((7, 2))
    assert np.allclose(g.log_prob(z), ref.logpdf(z), atol=1e-12)
    assert g.log_prob(z[:3].reshape(3, 1, 2)).shape == (3, 1)
    assert g.entropy() == pytest.approx(ref.entropy(), abs=1e-12)
    s = g.sample(100_000, np.random.default_rng(1))
    assert np.allclose(s.mean(0), mean, atol=0.02) and np.allclose(np.cov(s.T), cov, atol=0.02)


def test_diagonal_constructor():
    g = Gaussian.diagonal([0.0, 1.0], [2.0, 0.5])
    assert np.allclose(g.cov, np.diag([4.0, 0.25])) and np.allclose(g.std, [2.0, 0.5])


def test_categorical():
    c = Categorical([0.2, 0.0, 0.8])
    assert c.entropy() == pytest.approx(stats.entropy([0.2, 0.8]))
    assert c.log_prob(1) == -np.inf
    assert c.expect(np.array([1.0, -np.inf, 2.0])) == pytest.approx(1.8)
    s = c.sample(10_000, np.random.default_rng(0))
    assert set(np.unique(s)) <= {0, 2}


def test_bad_input():
    with pytest.raises(ValueError, match="non-positive variance"):
        Gaussian([0.0], [[0.0]])
    with pytest.raises(ValueError, match="positive definite"):
        Gaussian([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        Gaussian([0.0, 0.0], [[1.0, 0.5], [0.1, 1.0]])
    with pytest.raises(ValueError, match="shape"):
        Gaussian([0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="std must be > 0"):
        Gaussian.diagonal([0.0], [-1.0])
    with pytest.raises(ValueError, match="z must have shape"):
        Gaussian([0.0], [[1.0]]).log_prob(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="sum to 1"):
        Categorical([0.5, 0.6])
    with pytest.raises(ValueError, match=">= 0"):
        Categorical([1.5, -0.5])
    with pytest.raises(ValueError, match="integer"):
        Categorical([0.5, 0.5]).log_prob(np.array([0.5]))
    with pytest.raises(ValueError, match="Generator"):
        Gaussian([0.0], [[1.0]]).sample(3, 0)
    with pytest.raises(ValueError, match="n must be"):
        Gaussian([0.0], [[1.0]]).sample(0, np.random.default_rng(0))


# Each returned an object or a number before (a 0-dimensional Gaussian, True as a mean of 1,
# a NaN expectation), or said "non-finite" for None, or "non-positive variance (0)" for a
# std whose square underflowed.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: Gaussian([], np.zeros((0, 0))), ValueError, "mean is empty"),
        (lambda: Gaussian.diagonal([], []), ValueError, "mean is empty"),
        (lambda: Gaussian.diagonal(True, 1.0), TypeError, "mean must be real numbers"),
        (lambda: Gaussian.diagonal(None, 1.0), TypeError, "mean must be real numbers"),
        (lambda: Gaussian.diagonal(0.0, 1e-200), ValueError, "std = 1e-200 has a variance"),
        (lambda: Gaussian.diagonal(0.0, 1e200), ValueError, "std = 1e.200 has a variance"),
        (lambda: Categorical([True]), TypeError, "probs must be real numbers"),
        (lambda: Categorical([0.5, 0.5]).expect(np.array([np.nan, 0.0])), ValueError,
         "values contain NaN"),
        (lambda: Categorical([0.5, 0.5]).expect(["a", "b"]), TypeError, "values must be real"),
    ],
)
def test_degenerate_or_wrongly_typed_input_is_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_expect_still_counts_zero_probability_times_minus_infinity_as_zero():
    q = Categorical([1.0, 0.0])
    assert q.expect(np.array([2.0, -np.inf])) == 2.0
    assert q.entropy() == 0.0
