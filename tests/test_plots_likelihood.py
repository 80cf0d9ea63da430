"""Figures for notebooks 01 and 02 build, and their artists hold the right data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from vaelab import mle as lk  # noqa: E402
from vaelab.plots import likelihood as pl  # noqa: E402
from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_readouts() -> None:
    assert pl.gaussian_readout(NEWBORN_WEIGHTS_G, 3500.0, 700.554066) == (
        "log-likelihood = -23.912 (maximum -23.912)"
    )
    want = lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, 3000.0, 1000.0)
    assert pl.gaussian_readout(NEWBORN_WEIGHTS_G, 3000.0, 1000.0) == (
        f"log-likelihood = {want:.3f} (maximum -23.912)"
    )
    assert pl.poisson_readout(CAR_COUNTS, 8 / 3) == "log-likelihood = -5.1232 (maximum -5.1232)"


def test_surface_figure() -> None:
    path = lk.gaussian_gradient_ascent(NEWBORN_WEIGHTS_G)
    fig = pl.plot_loglik_surface(NEWBORN_WEIGHTS_G, path=path, resolution=51)
    ax = fig.axes[0]
    image = pl.artist_by_gid(ax, "loglik-surface")
    data = image.get_array()
    assert data.shape == (51, 51)
    assert image.origin == "lower"
    assert image.get_extent() == [3000.0, 4000.0, 500.0, 1600.0]
    # row 0 is the smallest sigma, column 0 the smallest mu
    assert data[0, 0] == pytest.approx(lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, 3000, 500))
    mle = pl.artist_by_gid(ax, "mle")
    np.testing.assert_allclose(mle.get_xydata()[0], lk.gaussian_mle(NEWBORN_WEIGHTS_G))
    drawn = pl.artist_by_gid(ax, "ascent-path").get_xydata()
    np.testing.assert_allclose(drawn, path)
    contours = pl.artist_by_gid(ax, "contours")
    ll_max = lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, *lk.gaussian_mle(NEWBORN_WEIGHTS_G))
    np.testing.assert_allclose(contours.levels, ll_max - np.array([1.5, 1.0, 0.5, 0.25]))
    # Every contour is labelled with its distance below the maximum (the 1.5-nat one only
    # clips two corners, too short for matplotlib's own placement), inside the window.
    labels = contours.labelTexts
    assert [t.get_text() for t in labels] == ["1.5", "1", "0.5", "0.25"]
    for text, level in zip(labels, contours.levels, strict=True):
        mu, sigma = text.get_position()
        assert 3000.0 <= mu <= 4000.0 and 500.0 <= sigma <= 1600.0
        assert lk.gaussian_log_likelihood(NEWBORN_WEIGHTS_G, mu, sigma) == pytest.approx(
            level, abs=0.02)
    assert pl.contour_labels(ll_max) == {ll_max - 1.5: "1.5", ll_max - 1.0: "1",
                                         ll_max - 0.5: "0.5", ll_max - 0.25: "0.25"}
    assert "nats below the maximum" in ax.get_title()
    fig.canvas.draw()


def test_surface_on_given_axes_and_bad_path() -> None:
    fig, ax = plt.subplots()
    assert pl.plot_loglik_surface(NEWBORN_WEIGHTS_G, ax=ax, resolution=11) is fig
    with pytest.raises(ValueError, match="path"):
        pl.plot_loglik_surface(NEWBORN_WEIGHTS_G, path=np.zeros((3, 3)), resolution=11)
    with pytest.raises(ValueError, match="mu_range"):
        pl.plot_loglik_surface(NEWBORN_WEIGHTS_G, mu_range=(4000, 3000))
    with pytest.raises(ValueError, match="sigma_range"):
        pl.plot_loglik_surface(NEWBORN_WEIGHTS_G, sigma_range=(-5, 100))


def test_density_figure_and_update() -> None:
    samples = lk.sample_gaussian(3500, 700, 10, np.random.default_rng(0))
    fig = pl.plot_gaussian_density(NEWBORN_WEIGHTS_G, 3500.0, 700.0, samples=samples)
    ax = fig.axes[0]
    curve = pl.artist_by_gid(ax, "density")
    np.testing.assert_allclose(curve.get_ydata(), stats.norm.pdf(curve.get_xdata(), 3500, 700))
    points = pl.artist_by_gid(ax, "data-density")
    np.testing.assert_allclose(points.get_ydata(), stats.norm.pdf(NEWBORN_WEIGHTS_G, 3500, 700))
    np.testing.assert_allclose(pl.artist_by_gid(ax, "samples").get_xdata(), samples)
    pl.update_gaussian_density(ax, NEWBORN_WEIGHTS_G, 3000.0, 1200.0)
    np.testing.assert_allclose(curve.get_ydata(), stats.norm.pdf(curve.get_xdata(), 3000, 1200))
    np.testing.assert_allclose(points.get_ydata(), stats.norm.pdf(NEWBORN_WEIGHTS_G, 3000, 1200))
    stems = pl.artist_by_gid(ax, "data-stems").get_segments()
    assert stems[2][1][1] == pytest.approx(stats.norm.pdf(4358.0, 3000, 1200))
    assert "mu = 3000.0, sigma = 1200.0" in ax.get_title()
    fig.canvas.draw()


def test_poisson_figure_and_update() -> None:
    fig = pl.plot_poisson(CAR_COUNTS, 2.0)
    ax_pmf, ax_ll = fig.axes
    pmf = pl.artist_by_gid(ax_pmf, "pmf")
    np.testing.assert_allclose(pmf.get_ydata(), stats.poisson.pmf(np.arange(13), 2.0))
    observed = pl.artist_by_gid(ax_pmf, "observed")
    np.testing.assert_array_equal(observed.get_xdata(), [1, 3, 4])
    np.testing.assert_allclose(observed.get_ydata(), [1 / 3] * 3)
    curve = pl.artist_by_gid(ax_ll, "loglik-curve")
    lam = curve.get_xdata()
    np.testing.assert_allclose(curve.get_ydata(), stats.poisson.logpmf(CAR_COUNTS, lam[:, None])
                               .sum(axis=1))
    assert pl.artist_by_gid(ax_ll, "mle").get_xdata()[0] == pytest.approx(8 / 3)
    span = pl.artist_by_gid(ax_ll, "lr-interval").get_extents()  # drawn, non-empty
    assert span.width > 0
    low, high = lk.poisson_lr_interval(CAR_COUNTS)
    assert f"[{low:.2f}, {high:.2f}]" in pl.artist_by_gid(ax_ll, "lr-interval").get_label()
    pl.update_poisson((ax_pmf, ax_ll), CAR_COUNTS, 4.0)
    np.testing.assert_allclose(pmf.get_ydata(), stats.poisson.pmf(np.arange(13), 4.0))
    current = pl.artist_by_gid(ax_ll, "current")
    assert current.get_ydata()[0] == pytest.approx(stats.poisson.logpmf(CAR_COUNTS, 4.0).sum())
    assert ax_ll.get_title() == pl.poisson_readout(CAR_COUNTS, 4.0)
    fig.canvas.draw()


def test_missing_artist_is_reported() -> None:
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="no artist"):
        pl.artist_by_gid(ax, "density")


# Before: a range of three values or a str gave Python's unpacking errors, a negative ylim
# drew an upside-down axis, a single Axes for the two panels failed deep inside matplotlib.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: pl.loglik_surface(NEWBORN_WEIGHTS_G, mu_range=(1.0, 2.0, 3.0)), TypeError,
         r"mu_range must be a pair \(low, high\)"),
        (lambda: pl.loglik_surface(NEWBORN_WEIGHTS_G, mu_range="ab"), TypeError, "a pair"),
        (lambda: pl.loglik_surface(NEWBORN_WEIGHTS_G, mu_range=(5.0, 1.0)), ValueError,
         "finite low < high"),
        (lambda: pl.plot_gaussian_density(NEWBORN_WEIGHTS_G, 3500.0, 700.0, ylim=-1.0),
         ValueError, "ylim must be a positive"),
        (lambda: pl.plot_poisson(CAR_COUNTS, 2.0, pmf_ylim=np.nan), ValueError, "pmf_ylim"),
        (lambda: pl.plot_poisson(CAR_COUNTS, 2.0, axes=plt.subplots()[1]), ValueError,
         "axes must be two matplotlib Axes"),
    ],
)
def test_bad_ranges_limits_and_axes_are_refused(call, error, message):
    with pytest.raises(error, match=message):  # figures are closed by the module's fixture
        call()
