"""vaelab.mle against scipy.stats, the notebooks' numbers, properties and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from vaelab import mle as lk
from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-2, 1e4, allow_nan=False, allow_infinity=False)
data_1d = st.lists(finite, min_size=1, max_size=20)
spread_data = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=20).filter(
    lambda v: np.std(v) > 1e-3 * (1.0 + np.max(np.abs(v)))
)
counts_1d = st.lists(st.integers(0, 50), min_size=1, max_size=20)


# --------------------------------------------------------------------------- the notebooks' numbers


def test_newborn_gaussian_mle_numbers() -> None:
    mle = lk.gaussian_mle(NEWBORN_WEIGHTS_G)
    assert mle.mu == pytest.approx(3500.0)
    assert mle.sigma == pytest.approx(700.55, abs=5e-3)
    assert lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, *mle) == pytest.approx(-23.912, abs=5e-4)


def test_car_count_poisson_numbers() -> None:
    lam = lk.poisson_mle(CAR_COUNTS)
    assert lam == pytest.approx(8 / 3)
    assert lk.poisson_log_likelihood(CAR_COUNTS, lam) == pytest.approx(-5.1232, abs=5e-5)


# ----------------------------------------------------------------------------- Gaussian


@settings(max_examples=60, deadline=None)
@given(data_1d, finite, positive)
def test_gaussian_log_likelihood_matches_scipy(x: list[float], mu: float, sigma: float) -> None:
    want = stats.norm.logpdf(x, loc=mu, scale=sigma)
    np.testing.assert_allclose(lk.gaussian_log_pdf(x, mu, sigma), want, rtol=1e-10)
    assert lk.gaussian_log_likelihood(x, mu, sigma) == pytest.approx(want.sum(), rel=1e-10)


def test_gaussian_log_likelihood_broadcasts_over_a_grid() -> None:
    mus = np.linspace(3000, 4000, 5)
    sigmas = np.linspace(500, 1600, 4)
    grid = lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, mus[None, :], sigmas[:, None])
    assert grid.shape == (4, 5)
    want = stats.norm.logpdf(NEWBORN_WEIGHTS_G, loc=mus[2], scale=sigmas[1]).sum()
    assert grid[1, 2] == pytest.approx(want)
    assert lk.gaussian_log_pdf(NEWBORN_WEIGHTS_G, mus, 700.0).shape == (5, 3)
    assert isinstance(lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, 3500, 700), float)


@settings(max_examples=60, deadline=None)
@given(spread_data, st.floats(-1.0, 1.0), st.floats(-0.5, 0.5))
def test_gaussian_mle_is_never_beaten(x: list[float], dmu: float, dlog_sigma: float) -> None:
    mle = lk.gaussian_mle(x)
    best = lk.gaussian_log_likelihood(x, *mle)
    other = lk.gaussian_log_likelihood(x, mle.mu + dmu * mle.sigma, mle.sigma * np.exp(dlog_sigma))
    assert other <= best + 1e-9 * abs(best)


def test_gaussian_mle_uses_biased_std() -> None:
    mle = lk.gaussian_mle(NEWBORN_WEIGHTS_G)
    assert mle.sigma == pytest.approx(np.std(NEWBORN_WEIGHTS_G, ddof=0))
    assert mle.sigma != pytest.approx(np.std(NEWBORN_WEIGHTS_G, ddof=1))


def test_gradient_matches_finite_differences() -> None:
    x, mu, sigma = NEWBORN_WEIGHTS_G, 3300.0, 900.0
    g_mu, g_ls = lk.gaussian_log_likelihood_grad(x, mu, sigma)
    h = 1e-3
    fd_mu = (lk.gaussian_log_likelihood(x, mu + h, sigma)
             - lk.gaussian_log_likelihood(x, mu - h, sigma)) / (2 * h)
    fd_ls = (lk.gaussian_log_likelihood(x, mu, sigma * np.exp(h))
             - lk.gaussian_log_likelihood(x, mu, sigma * np.exp(-h))) / (2 * h)
    assert g_mu == pytest.approx(fd_mu, rel=1e-6)
    assert g_ls == pytest.approx(fd_ls, rel=1e-5)


def test_gradient_ascent_reaches_the_analytic_mle() -> None:
    path = lk.gaussian_gradient_ascent(NEWBORN_WEIGHTS_G)
    assert path.ndim == 2 and path.shape[1] == 2
    np.testing.assert_allclose(path[0], [3100.0, 1500.0])
    np.testing.assert_allclose(path[-1], lk.gaussian_mle(NEWBORN_WEIGHTS_G), rtol=1e-6)
    ll = lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, path[:, 0], path[:, 1])
    assert np.all(np.diff(ll) >= -1e-12), "each step should climb"
    assert len(path) < 1000


def test_gradient_ascent_stops_at_max_steps() -> None:
    path = lk.gaussian_gradient_ascent(NEWBORN_WEIGHTS_G, max_steps=5)
    assert path.shape == (6, 2)


def test_within_nats_region_matches_a_brute_force_grid() -> None:
    region = lk.gaussian_within_nats(NEWBORN_WEIGHTS_G, 1.0)
    mus = np.linspace(2500, 4500, 801)
    sigmas = np.linspace(300, 1800, 1201)
    ll = lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, mus[None, :], sigmas[:, None])
    inside = ll >= ll.max() - 1.0
    assert mus[inside.any(axis=0)].min() == pytest.approx(region.mu_low, abs=3.0)
    assert mus[inside.any(axis=0)].max() == pytest.approx(region.mu_high, abs=3.0)
    assert sigmas[inside.any(axis=1)].min() == pytest.approx(region.sigma_low, abs=2.0)
    assert sigmas[inside.any(axis=1)].max() == pytest.approx(region.sigma_high, abs=2.0)
    # notebook 01's window [3000, 4000] x [500, 1600] does not contain the whole region
    assert region.mu_low < 3000 and region.mu_high > 4000 and region.sigma_low < 500


def test_probability_of_a_negative_weight() -> None:
    mle = lk.gaussian_mle(NEWBORN_WEIGHTS_G)
    p = lk.gaussian_probability_below(0.0, *mle)
    assert p == pytest.approx(stats.norm.cdf(0.0, mle.mu, mle.sigma), rel=1e-10)
    assert 1e-7 < p < 1e-6


def test_sample_gaussian_is_seeded_and_shaped() -> None:
    a = lk.sample_gaussian(3500.0, 700.0, 10, np.random.default_rng(0))
    b = lk.sample_gaussian(3500.0, 700.0, 10, np.random.default_rng(0))
    assert a.shape == (10,)
    np.testing.assert_array_equal(a, b)
    big = lk.sample_gaussian(3500.0, 700.0, 50_000, np.random.default_rng(1))
    assert big.mean() == pytest.approx(3500.0, abs=20.0)
    assert big.std() == pytest.approx(700.0, rel=0.02)


# ----------------------------------------------------------------------------- Poisson


@settings(max_examples=60, deadline=None)
@given(counts_1d, st.floats(1e-3, 100.0))
def test_poisson_log_likelihood_matches_scipy(x: list[int], lam: float) -> None:
    want = stats.poisson.logpmf(x, lam)
    np.testing.assert_allclose(lk.poisson_log_pmf(x, lam), want, rtol=1e-9, atol=1e-12)
    assert lk.poisson_log_likelihood(x, lam) == pytest.approx(want.sum(), rel=1e-9, abs=1e-12)


def test_poisson_log_likelihood_broadcasts_over_lambda() -> None:
    lams = np.array([1.0, 2.0, 8 / 3, 4.0])
    grid = lk.poisson_log_likelihood(CAR_COUNTS, lams)
    assert grid.shape == (4,)
    np.testing.assert_allclose(grid, stats.poisson.logpmf(CAR_COUNTS, lams[:, None]).sum(axis=1))
    assert np.argmax(grid) == 2


@settings(max_examples=60, deadline=None)
@given(counts_1d.filter(lambda v: sum(v) > 0), st.floats(-0.9, 0.9))
def test_poisson_mle_is_never_beaten(x: list[int], dlog: float) -> None:
    lam = lk.poisson_mle(x)
    assert lam == pytest.approx(np.mean(x))
    best = lk.poisson_log_likelihood(x, lam)
    assert lk.poisson_log_likelihood(x, lam * np.exp(dlog)) <= best + 1e-9 * abs(best)


def test_sample_poisson() -> None:
    a = lk.sample_poisson(8 / 3, 20_000, np.random.default_rng(0))
    assert a.dtype == np.int64 and a.shape == (20_000,)
    assert np.all(a >= 0)
    assert a.mean() == pytest.approx(8 / 3, abs=0.05)
    assert a.var() == pytest.approx(8 / 3, abs=0.1)
    np.testing.assert_array_equal(a, lk.sample_poisson(8 / 3, 20_000, np.random.default_rng(0)))


def test_lr_interval_cars() -> None:
    low, high = lk.poisson_lr_interval(CAR_COUNTS)
    assert low < 8 / 3 < high
    lmax = lk.poisson_log_likelihood(CAR_COUNTS, 8 / 3)
    crit = stats.chi2.ppf(0.95, 1)
    for edge in (low, high):
        assert 2 * (lmax - lk.poisson_log_likelihood(CAR_COUNTS, edge)) == pytest.approx(crit)
    assert low == pytest.approx(1.2186, abs=1e-3)
    assert high == pytest.approx(4.9638, abs=1e-3)
    narrow = lk.poisson_lr_interval(CAR_COUNTS, level=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_poisson_lr_coverage_matches_simulated_intervals() -> None:
    lam, n = 8 / 3, 3
    exact = lk.poisson_lr_coverage(lam, n)
    rng = np.random.default_rng(0)
    totals = rng.poisson(n * lam, size=4000)
    hits = []
    for total in totals:
        if total == 0:  # the MLE is 0: the interval is [0, chi2 / (2 n)]
            hits.append(lam <= stats.chi2.ppf(0.95, 1) / (2 * n))
            continue
        low, high = lk.poisson_lr_interval([total] + [0] * (n - 1))
        hits.append(low <= lam <= high)
    share = float(np.mean(hits))
    assert abs(share - exact) < 4 * np.sqrt(exact * (1 - exact) / totals.size)


def test_poisson_lr_coverage_approaches_the_level_with_many_counts() -> None:
    few = lk.poisson_lr_coverage(8 / 3, 3)
    many = lk.poisson_lr_coverage(8 / 3, 3000)
    assert 0.0 < few < 1.0
    assert many == pytest.approx(0.95, abs=0.005)
    assert lk.poisson_lr_coverage(2.0, 50, level=0.5) == pytest.approx(0.5, abs=0.06)


# ----------------------------------------------------------------------------- bad input

BAD_CALLS = [
    ("empty", lambda: lk.gaussian_log_likelihood([], 0.0, 1.0), "empty"),
    ("nan data", lambda: lk.gaussian_log_likelihood([1.0, np.nan], 0.0, 1.0), "non-finite"),
    ("inf data", lambda: lk.gaussian_mle([1.0, np.inf]), "non-finite"),
    ("2-D data", lambda: lk.gaussian_mle([[1.0, 2.0]]), "1-D"),
    ("sigma 0", lambda: lk.gaussian_log_likelihood([1.0], 0.0, 0.0), "sigma"),
    ("sigma < 0", lambda: lk.gaussian_log_pdf([1.0], 0.0, -1.0), "sigma"),
    ("sigma grid", lambda: lk.gaussian_log_likelihood([1.0], 0.0, np.array([1.0, -1.0])), "sigma"),
    ("mu nan", lambda: lk.gaussian_log_likelihood([1.0], np.nan, 1.0), "mu"),
    ("mu text", lambda: lk.gaussian_log_likelihood([1.0], "a", 1.0), "mu"),
    ("no spread", lambda: lk.gaussian_mle([5.0, 5.0]), "spread"),
    ("grad sigma", lambda: lk.gaussian_log_likelihood_grad([1.0], 0.0, 0.0), "sigma"),
    ("ascent start", lambda: lk.gaussian_gradient_ascent([1.0, 2.0], (0.0, -1.0)), "sigma"),
    ("ascent lr", lambda: lk.gaussian_gradient_ascent([1.0, 2.0], learning_rate=0), "learning"),
    ("ascent steps", lambda: lk.gaussian_gradient_ascent([1.0, 2.0], max_steps=0), "max_steps"),
    ("nats", lambda: lk.gaussian_within_nats([1.0, 2.0], nats=0.0), "nats"),
    ("prob sigma", lambda: lk.gaussian_probability_below(0.0, 1.0, 0.0), "sigma"),
    ("prob threshold", lambda: lk.gaussian_probability_below(np.nan, 1.0, 1.0), "threshold"),
    ("sample sigma", lambda: lk.sample_gaussian(0.0, -1.0, 3, np.random.default_rng()), "sigma"),
    ("sample n", lambda: lk.sample_gaussian(0.0, 1.0, 0, np.random.default_rng()), "n must"),
    ("sample rng", lambda: lk.sample_gaussian(0.0, 1.0, 3, 0), "Generator"),
    ("negative count", lambda: lk.poisson_log_likelihood([3, -1], 1.0), "non-negative"),
    ("fractional count", lambda: lk.poisson_log_pmf([3, 1.5], 1.0), "whole numbers"),
    ("nan count", lambda: lk.poisson_mle([3, np.nan]), "non-finite"),
    ("empty counts", lambda: lk.poisson_mle([]), "empty"),
    ("lambda 0", lambda: lk.poisson_log_likelihood([1, 2], 0.0), "lambda"),
    ("lambda < 0", lambda: lk.poisson_log_pmf([1, 2], np.array([1.0, -2.0])), "lambda"),
    ("all zeros", lambda: lk.poisson_mle([0, 0]), "all zeros"),
    ("sample lambda", lambda: lk.sample_poisson(0.0, 3, np.random.default_rng()), "lambda"),
    ("sample rng p", lambda: lk.sample_poisson(1.0, 3, None), "Generator"),
    ("interval level", lambda: lk.poisson_lr_interval([1, 2], level=1.0), "level"),
    ("interval counts", lambda: lk.poisson_lr_interval([1, -2]), "non-negative"),
    ("coverage lam", lambda: lk.poisson_lr_coverage(0.0, 3), "lam"),
    ("coverage n", lambda: lk.poisson_lr_coverage(1.0, 0), "n"),
    ("coverage level", lambda: lk.poisson_lr_coverage(1.0, 3, level=1.5), "level"),
]


@pytest.mark.parametrize(("name", "call", "message"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_value_error(name: str, call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# Each case returned a number (or a raw error from deep inside) before it was checked.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: lk.gaussian_log_likelihood([1.0], True, 1.0), TypeError, "mu must be real"),
        (lambda: lk.gaussian_log_likelihood([1.0], "3", 1.0), TypeError, "mu must be real"),
        (lambda: lk.poisson_log_likelihood([3, 4, 1], True), TypeError, "lambda must be real"),
        (lambda: lk.gaussian_log_likelihood([1.0], [0.0, 1.0], [1.0, 2.0, 3.0]), ValueError,
         r"mu and sigma must broadcast to one grid, got shapes \(2,\) and \(3,\)"),
        (lambda: lk.gaussian_gradient_ascent([1.0, 2.0], start=(0.0,)), ValueError,
         r"start must be a pair \(mu, sigma\)"),
        (lambda: lk.gaussian_gradient_ascent([1.0, 2.0], start=5.0), ValueError, "start must be"),
        (lambda: lk.gaussian_gradient_ascent(NEWBORN_WEIGHTS_G, learning_rate=3.0), ValueError,
         "diverged .* use a smaller learning_rate"),  # was OverflowError: Numerical result ...
        (lambda: lk.gaussian_gradient_ascent([1.0, 2.0], tol=np.nan), ValueError, "tol"),
        (lambda: lk.gaussian_gradient_ascent([1.0, 2.0], tol=-1.0), ValueError, "tol must be >= 0"),
        # x with no spread has no MLE: the ascent crawled to sigma = 9e-16 and returned that.
        (lambda: lk.gaussian_gradient_ascent([1.0, 1.0, 1.0]), ValueError, "no spread"),
        (lambda: lk.gaussian_within_nats(NEWBORN_WEIGHTS_G, nats=1e6), ValueError,
         "too large for 3 observations"),
        # int64 overflow: 1e20 cars became -9.2e18 with only a RuntimeWarning.
        (lambda: lk.poisson_log_likelihood([1e20], 1.0), ValueError, "too large to count exactly"),
    ],
)
def test_wrong_or_out_of_range_input_is_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_within_nats_finds_wide_regions_beyond_the_default_brackets():
    # 50 nats around two points: the sigma root lies past the old bracket [1, 1e6].
    region = lk.gaussian_within_nats([1.0, 2.0], nats=50.0)
    for sigma in (region.sigma_low, region.sigma_high):
        drop = lk.gaussian_log_likelihood([1.0, 2.0], 1.5, 0.5) - lk.gaussian_log_likelihood(
            [1.0, 2.0], 1.5, sigma)
        assert drop == pytest.approx(50.0, rel=1e-9)
