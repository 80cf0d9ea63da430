"""vaelab.toy_data: the ring, the cluster mixture, standardisation."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vaelab.toy_data import (
    CLUSTER_CENTERS,
    CLUSTER_SCALES,
    as_points,
    fit_standardization,
    sample_clusters,
    sample_ring,
)


def test_ring_points_sit_at_radius_one_plus_a_tenth_of_z():
    x = sample_ring(5000, np.random.default_rng(0))
    radius = np.linalg.norm(x, axis=1)
    assert x.shape == (5000, 2) and x.dtype == np.float64
    assert radius.min() >= 1.0
    # ||f(z)|| = 1 + ||z||/10 and E||z|| = sqrt(pi/2) for a 2-D standard normal.
    assert abs(radius.mean() - (1 + np.sqrt(np.pi / 2) / 10)) < 0.005


def test_samplers_are_reproducible_for_a_seed():
    a = sample_clusters(100, np.random.default_rng(3))
    b = sample_clusters(100, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_clusters_have_their_centres_and_spreads():
    # Centres far apart, so the nearest centre recovers each point's cluster.
    centers = 100 * CLUSTER_CENTERS
    x = sample_clusters(40000, np.random.default_rng(1), centers=centers)
    nearest = np.argmin(((x[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    for k, (centre, scale) in enumerate(zip(centers, CLUSTER_SCALES, strict=True)):
        pts = x[nearest == k]
        assert abs(len(pts) / len(x) - 0.25) < 0.02
        np.testing.assert_allclose(pts.mean(0), centre, atol=0.05)
        assert abs(pts.std(0).mean() / scale - 1) < 0.05


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 30), st.integers(1, 4)),
              elements=st.floats(-1e3, 1e3)))
def test_standardization_gives_zero_mean_unit_variance_and_inverts(x):
    assume(np.all(x.std(axis=0) > 1e-3))
    s = fit_standardization(x)
    z = s.apply(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-8)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-8)
    np.testing.assert_allclose(s.invert(z), x, atol=1e-8 * (1 + np.abs(x).max()))


@pytest.mark.parametrize("call, match", [
    (lambda: sample_ring(0, np.random.default_rng(0)), "n must be an integer >= 1"),
    (lambda: sample_ring(5, 0), "numpy.random.Generator"),
    (lambda: sample_clusters(5, np.random.default_rng(0), scales=[1.0]), "one value per cluster"),
    (lambda: sample_clusters(5, np.random.default_rng(0), scales=[1, 1, 1, -1]), "positive"),
    (lambda: fit_standardization(np.ones((1, 2))), "at least two points"),
    (lambda: fit_standardization(np.ones((5, 2))), "constant"),
    (lambda: fit_standardization(np.ones(5)), r"shape \(n, D\)"),
    (lambda: as_points([[1.0, np.nan]]), "non-finite"),
    (lambda: as_points("abc"), "real numbers"),
    (lambda: fit_standardization(np.random.default_rng(0).normal(size=(5, 2))).apply(
        np.zeros((3, 3))), "2 columns"),
])
def test_bad_input_is_refused_with_a_clear_message(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# Booleans passed as coordinates and scales, and an overflowing spread gave a
# Standardization with std = inf that mapped every point to 0.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: as_points([[True, False]]), TypeError, "must be real numbers"),
        (lambda: as_points([["1", "2"]]), TypeError, "must be real numbers"),
        (lambda: sample_clusters(3, np.random.default_rng(0), centers=[[0.0, 0.0]],
                                 scales=[True]), TypeError, "scales must be real numbers"),
        (lambda: fit_standardization([[1e308], [-1e308]]), ValueError, "overflows float64"),
    ],
)
def test_wrong_types_and_overflow_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()
