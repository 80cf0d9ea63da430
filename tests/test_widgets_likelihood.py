"""The slider explorers: a slider change updates the readout, the lines and the picture."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from vaelab.plots.likelihood import artist_by_gid  # noqa: E402
from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G  # noqa: E402
from vaelab.widgets import likelihood as wl  # noqa: E402

PNG_MAGIC = b"\x89PNG"


def test_gaussian_explorer_defaults_to_the_mle() -> None:
    ex = wl.gaussian_explorer()
    assert ex.mu_slider.description == "mu"
    assert ex.sigma_slider.description == "sigma"
    assert "vaelab-mu" in ex.mu_slider._dom_classes
    assert "vaelab-readout" in ex.readout._dom_classes
    assert ex.readout.value == "log-likelihood = -23.912 (maximum -23.912)"
    assert isinstance(ex.widget, widgets.VBox)
    assert bytes(ex.image.value).startswith(PNG_MAGIC)


def test_gaussian_sliders_update_readout_and_lines() -> None:
    ex = wl.gaussian_explorer()
    before = bytes(ex.image.value)
    ex.mu_slider.value = 3000.0
    ex.sigma_slider.value = 1000.0
    want = stats.norm.logpdf(NEWBORN_WEIGHTS_G, 3000.0, 1000.0).sum()
    assert ex.readout.value == f"log-likelihood = {want:.3f} (maximum -23.912)"
    ax = ex.figure.axes[0]
    curve = artist_by_gid(ax, "density")
    np.testing.assert_allclose(curve.get_ydata(), stats.norm.pdf(curve.get_xdata(), 3000, 1000))
    points = artist_by_gid(ax, "data-density")
    np.testing.assert_allclose(points.get_ydata(), stats.norm.pdf(NEWBORN_WEIGHTS_G, 3000, 1000))
    assert bytes(ex.image.value).startswith(PNG_MAGIC)
    assert bytes(ex.image.value) != before


def test_poisson_slider_updates_readout_and_pmf() -> None:
    ex = wl.poisson_explorer()
    assert ex.lam_slider.description == "lambda"
    assert "vaelab-lambda" in ex.lam_slider._dom_classes
    assert ex.readout.value == "log-likelihood = -5.1232 (maximum -5.1232)"
    before = bytes(ex.image.value)
    ex.lam_slider.value = 4.0
    want = stats.poisson.logpmf(CAR_COUNTS, 4.0).sum()
    assert ex.readout.value == f"log-likelihood = {want:.4f} (maximum -5.1232)"
    pmf = artist_by_gid(ex.figure.axes[0], "pmf")
    np.testing.assert_allclose(pmf.get_ydata(), stats.poisson.pmf(pmf.get_xdata(), 4.0))
    current = artist_by_gid(ex.figure.axes[1], "current")
    assert current.get_xdata()[0] == pytest.approx(4.0)
    assert bytes(ex.image.value) != before


def test_blit_renderer_matches_a_full_draw() -> None:
    """The cheap path (background + moving artists) gives the same pixels as a full draw."""
    ex = wl.gaussian_explorer()
    ex.mu_slider.value = 3300.0
    blitted = np.asarray(ex.renderer.canvas.buffer_rgba()).copy()
    for artist in ex.renderer.artists:
        artist.set_animated(False)
    ex.renderer.canvas.draw()
    full = np.asarray(ex.renderer.canvas.buffer_rgba())
    # anti-aliased edges may differ by a few levels where artists overlap
    assert np.mean(np.abs(blitted.astype(int) - full.astype(int)) > 8) < 0.002


def test_explorer_rejects_bad_data() -> None:
    with pytest.raises(ValueError, match="empty"):
        wl.gaussian_explorer([])
    with pytest.raises(ValueError, match="non-negative"):
        wl.poisson_explorer([1, -1])


def test_static_figures_match_the_explorers_start() -> None:
    import matplotlib.pyplot as plt

    fig = wl.gaussian_explorer_figure(NEWBORN_WEIGHTS_G)
    ex = wl.gaussian_explorer(NEWBORN_WEIGHTS_G)
    for gid in ("density", "data-density"):
        np.testing.assert_allclose(artist_by_gid(fig.axes[0], gid).get_xydata(),
                                   artist_by_gid(ex.figure.axes[0], gid).get_xydata())
    assert fig.axes[0].get_ylim() == ex.figure.axes[0].get_ylim()
    pfig = wl.poisson_explorer_figure(CAR_COUNTS)
    pex = wl.poisson_explorer(CAR_COUNTS)
    np.testing.assert_allclose(artist_by_gid(pfig.axes[0], "pmf").get_ydata(),
                               artist_by_gid(pex.figure.axes[0], "pmf").get_ydata())
    assert pfig.axes[0].get_ylim() == pex.figure.axes[0].get_ylim()
    plt.close("all")


# Before: a start outside the slider's range was drawn at that value while the slider,
# clamped by ipywidgets, showed another; "3" and True were taken as numbers.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: wl.gaussian_explorer(mu=10_000.0), ValueError,
         "mu = 10000 lies outside the slider's range"),
        (lambda: wl.gaussian_explorer(sigma=5_000.0), ValueError, "sigma = 5000 lies outside"),
        (lambda: wl.gaussian_explorer(sigma_range=(0.0, 2000.0)), ValueError,
         "sigma_range must lie above 0"),
        (lambda: wl.poisson_explorer(lam=50.0), ValueError, "lam = 50 lies outside"),
        (lambda: wl.poisson_explorer(lam="3"), TypeError, "lam must be a positive number"),
        (lambda: wl.gaussian_explorer(mu=True), TypeError, "mu must be a finite number"),
    ],
)
def test_start_values_and_ranges_are_checked(call, error, message):
    with pytest.raises(error, match=message):
        call()
