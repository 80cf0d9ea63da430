"""vaelab.plots.elbo: the figures draw what vaelab.elbo computes, and update in place."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vaelab.elbo import Estimate, decomposition_along_means  # noqa: E402
from vaelab.latent_models import LinearGaussianModel  # noqa: E402
from vaelab.plots import elbo as P  # noqa: E402
from vaelab.plots.likelihood import artist_by_gid  # noqa: E402

MODEL = LinearGaussianModel([[1.5]], [0.5], 0.8)
X = np.array([2.0])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_decomposition_curves_add_up_to_the_evidence():
    fig = P.plot_decomposition(MODEL, X, -0.5, current=0.4)
    ax = fig.axes[0]
    elbo_y = artist_by_gid(ax, "elbo-curve").get_ydata()
    sum_y = artist_by_gid(ax, "sum-curve").get_ydata()
    assert np.allclose(sum_y, MODEL.log_marginal(X), atol=1e-10)
    assert np.all(elbo_y <= sum_y + 1e-12)


def test_explorer_update_moves_artists_to_the_new_q():
    fig = P.plot_q_explorer(MODEL, X, 0.0, 0.0)
    n_artists = len(fig.axes[1].get_children())
    P.update_q_explorer(fig, MODEL, X, 1.0, -1.0)
    ax_d, ax_c = fig.axes
    q_line = artist_by_gid(ax_d, "q-density")
    grid = q_line.get_xdata()
    assert grid[np.argmax(q_line.get_ydata())] == pytest.approx(1.0, abs=0.02)
    d = decomposition_along_means(MODEL, X, P.explorer_means(fig), -1.0)
    assert np.allclose(artist_by_gid(ax_c, "elbo-curve").get_ydata(), d.elbo)
    cur = decomposition_along_means(MODEL, X, [1.0], -1.0)
    assert artist_by_gid(ax_c, "current-elbo").get_ydata()[0] == pytest.approx(cur.elbo[0])
    assert len(ax_c.get_children()) == n_artists  # no new artists
    assert fig.get_suptitle() == P.elbo_readout(MODEL, X, 1.0, -1.0)
    with pytest.raises(ValueError, match="points"):
        P.update_q_explorer(fig, MODEL, X, 1.0, -1.0, curve=d._replace(elbo=d.elbo[:3]))


def test_decomposition_ylim_fits_the_curve_or_the_widest_view():
    lm = float(MODEL.log_marginal(X))
    assert P.decomposition_ylim(lm) == pytest.approx((lm - 12.5, lm + 1.0))
    assert P.decomposition_ylim(lm, [lm - 2.0, lm]) == pytest.approx((lm - 2.5, lm + 1.0))
    assert P.decomposition_ylim(lm, [lm - 40.0]) == pytest.approx((lm - 12.5, lm + 1.0))
    fig = P.plot_decomposition(MODEL, X, -0.5)
    elbo = artist_by_gid(fig.axes[0], "elbo-curve").get_ydata()
    assert fig.axes[0].get_ylim() == pytest.approx(P.decomposition_ylim(lm, elbo))
    fig = P.plot_q_explorer(MODEL, X, 0.0, 0.0)
    P.update_q_explorer(fig, MODEL, X, 1.0, -1.0, ylim=(-5.0, 0.0))
    assert fig.axes[1].get_ylim() == pytest.approx((-5.0, 0.0))


def test_densities_show_the_whole_of_a_narrow_q_but_the_widget_keeps_its_scale():
    # Notebook 03 draws the fitted q (std 0.13, peak about 3) beside a posterior that peaks
    # below 2: its top was cut off. The static figure fits both curves; the explorer keeps
    # the height fixed at the posterior's scale while q moves.
    fig = P.plot_densities(MODEL, X, 0.8, np.log(0.13))
    ax = fig.axes[0]
    q_peak = artist_by_gid(ax, "q-density").get_ydata().max()
    post_peak = artist_by_gid(ax, "posterior").get_ydata().max()
    assert q_peak > 1.6 * post_peak  # the case that was cut off
    assert ax.get_ylim() == pytest.approx((0.0, P.densities_top(post_peak, q_peak)))
    assert ax.get_ylim()[1] > q_peak
    fig = P.plot_q_explorer(MODEL, X, 0.8, np.log(0.13))
    assert fig.axes[0].get_ylim() == pytest.approx((0.0, P.densities_top(post_peak)))
    assert P.densities_top(0.1) == pytest.approx(0.64)  # at least 1.6 x 0.4


def test_readout_text():
    text = P.elbo_readout(MODEL, X, 0.0, 0.0)
    d = decomposition_along_means(MODEL, X, [0.0], 0.0)
    assert text == (f"ELBO = {d.elbo[0]:.3f}   ln p(x) = {d.log_marginal:.3f}   "
                    f"gap = KL(q || p(z|x)) = {d.kl_posterior[0]:.3f}")


def test_other_figures_and_their_errors():
    ests = [Estimate(-3.0, 0.01, 10), Estimate(-2.0, 0.01, 10)]
    fig = P.plot_iw_bound([1, 10], ests, -1.8, -3.0)
    assert np.allclose(artist_by_gid(fig.axes[0], "log-marginal").get_ydata(), -1.8)
    with pytest.raises(ValueError, match="same length"):
        P.plot_iw_bound([1], ests, -1.8, -3.0)
    z = np.random.default_rng(0).standard_normal((100, 2))
    assert len(P.plot_ring(z, z).axes) == 2
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        P.plot_ring(z[:, :1], z)
    assert P.plot_sga_trace(np.zeros(100), 0.0, -0.1).axes
    with pytest.raises(ValueError, match="window"):
        P.plot_sga_trace(np.zeros(10), 0.0, 0.0)
    assert P.plot_densities(MODEL, X, 0.0, 0.0).axes


# Before: NaN limits reached matplotlib, k = 0 vanished from the log axis, window = 0 divided
# by zero, a NaN trace was drawn as a gap, one Axes for two panels failed on indexing.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: P.decomposition_ylim(np.nan), ValueError, "log_marginal must be finite"),
        (lambda: P.decomposition_ylim(-3.0, [np.nan, -4.0]), ValueError, "elbo contains NaN"),
        (lambda: P.plot_iw_bound([0, 1], [Estimate(-3.0, 0.1, 5)] * 2, -2.0, -3.0), ValueError,
         "each k must be an integer >= 1"),
        (lambda: P.plot_iw_bound([1], [(-3.0, 0.1, 5)], -2.0, -3.0), TypeError,
         "estimates must be Estimates"),
        (lambda: P.plot_iw_bound([1], [Estimate(-3.0, 0.1, 5)], np.nan, -3.0), ValueError,
         "log_marginal must be finite"),
        (lambda: P.plot_sga_trace(np.zeros(10), -1.0, -1.0, window=0), ValueError, "window"),
        (lambda: P.plot_sga_trace(np.full(10, np.nan), -1.0, -1.0, window=2), ValueError,
         "trace contains NaN"),
        (lambda: P.plot_ring(np.ones((3, 2)), np.ones((3, 2)), axes=plt.subplots()[1]),
         ValueError, "axes must be two matplotlib Axes"),
    ],
)
def test_non_finite_values_and_bad_sizes_are_refused(call, error, message):
    with pytest.raises(error, match=message):  # figures are closed by the module's fixture
        call()
