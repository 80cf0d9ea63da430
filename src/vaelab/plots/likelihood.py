"""Figures for notebooks 01 and 02: likelihood surface, fitted density, Poisson fit.

Every ``plot_*`` function returns its Figure and accepts existing axes, so the
widgets can draw into a pyplot-free Figure. Artists that change with a parameter
carry a ``gid``; the matching ``update_*`` function changes their data in place
(no new artists, no re-layout), which keeps a slider update cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from vaelab.mle import (
    gaussian_log_likelihood,
    gaussian_log_pdf,
    gaussian_mle,
    poisson_log_likelihood,
    poisson_log_pmf,
    poisson_lr_interval,
    poisson_mle,
)
from vaelab.references import answers
from vaelab.validation import (
    as_counts,
    as_finite_array,
    require_positive,
    require_positive_int,
    require_range,
)

#: The window of notebook 01's surface figure: mu in grams, sigma in grams.
SURFACE_MU_RANGE = (3000.0, 4000.0)
SURFACE_SIGMA_RANGE = (500.0, 1600.0)
#: Contours drawn this many nats below the maximum.
SURFACE_NAT_LEVELS = (0.25, 0.5, 1.0, 1.5)
DENSITY_X_RANGE = (-500.0, 7500.0)
POISSON_LAMBDA_RANGE = (0.5, 10.0)


# ----------------------------------------------------------------------------- helpers


def artist_by_gid(ax: Axes, gid: str) -> Artist:
    """The artist in ``ax`` whose gid is ``gid`` (raises ``ValueError`` if none)."""
    for artist in ax.get_children():
        if artist.get_gid() == gid:
            return artist
    raise ValueError(f"no artist with gid {gid!r} in these axes; was it drawn by vaelab.plots?")


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.get_figure(root=True), ax


def _range(pair: Sequence[float], name: str) -> tuple[float, float]:
    return require_range(pair, name)


def _top(value: float | None, name: str) -> float | None:
    """An optional top of a y axis: None or a positive number (a negative one flips the axis)."""
    return None if value is None else require_positive(value, name)


def _pair_of_axes(axes: Sequence[Axes]) -> tuple[Axes, Axes]:
    if isinstance(axes, Axes) or len(axes) != 2 or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(f"axes must be two matplotlib Axes (left, right), got {axes!r}")
    return axes[0], axes[1]


def gaussian_readout(x: Sequence[float] | np.ndarray, mu: float, sigma: float) -> str:
    """'log-likelihood = -24.123 (maximum -23.912)': the value at (mu, sigma) vs the MLE's."""
    data = as_finite_array(x, "x")
    value = gaussian_log_likelihood(data, mu, sigma)
    best = gaussian_log_likelihood(data, *gaussian_mle(data))
    return f"log-likelihood = {value:.3f} (maximum {best:.3f})"


@answers("2.4", until_answered=True)
def poisson_readout(x: Sequence[int] | np.ndarray, lam: float) -> str:
    """'log-likelihood = <at lam> (maximum <at the MLE>)', both to 4 decimals."""
    counts = as_counts(x, "x")
    value = poisson_log_likelihood(counts, lam)
    best = poisson_log_likelihood(counts, poisson_mle(counts))
    return f"log-likelihood = {value:.4f} (maximum {best:.4f})"


# ----------------------------------------------------------------------------- Gaussian


def loglik_surface(
    x: Sequence[float] | np.ndarray,
    mu_range: Sequence[float] = SURFACE_MU_RANGE,
    sigma_range: Sequence[float] = SURFACE_SIGMA_RANGE,
    resolution: int = 201,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu grid (m,), sigma grid (m,), log-likelihood (m, m) indexed [sigma, mu])."""
    m = require_positive_int(resolution, "resolution")
    mus = np.linspace(*_range(mu_range, "mu_range"), m)
    sigmas = np.linspace(*_range(sigma_range, "sigma_range"), m)
    if sigmas[0] <= 0:
        raise ValueError(f"sigma_range must be above 0, got {sigma_range!r}")
    return mus, sigmas, gaussian_log_likelihood(x, mus[None, :], sigmas[:, None])


def contour_labels(ll_max: float) -> dict[float, str]:
    """The surface's contour labels by level, nats below the maximum: {ll_max - 0.25: "0.25"}."""
    return {ll_max - nats: f"{nats:g}" for nats in SURFACE_NAT_LEVELS}


def _label_positions(allsegs: list[list[np.ndarray]], mus: np.ndarray,
                     sigmas: np.ndarray) -> list[tuple[float, float]]:
    """One point per contour level, near three quarters of the window's width (clear of a
    gradient-ascent path from the upper left) and as far from the edges as the level goes
    there, so that no label is cut by an edge."""
    low, span = np.array([mus[0], sigmas[0]]), np.array([np.ptp(mus), np.ptp(sigmas)])
    points = []
    for pieces in allsegs:
        vertices = np.concatenate(pieces)
        frac = (vertices - low) / span  # position in the window, 0..1 on each axis
        inside = np.minimum(frac, 1.0 - frac).min(axis=1)
        score = np.minimum(inside, 0.25 - np.abs(frac[:, 0] - 0.75))
        points.append(tuple(float(v) for v in vertices[int(np.argmax(score))]))
    return points


def plot_loglik_surface(
    x: Sequence[float] | np.ndarray,
    path: np.ndarray | None = None,
    mu_range: Sequence[float] = SURFACE_MU_RANGE,
    sigma_range: Sequence[float] = SURFACE_SIGMA_RANGE,
    resolution: int = 201,
    ax: Axes | None = None,
) -> Figure:
    """The log-likelihood over (mu, sigma) as an image, contours, the MLE and a path.

    path: optional shape (k, 2) array of (mu, sigma), e.g. from gaussian_gradient_ascent.
    Contours sit 0.25, 0.5, 1 and 1.5 nats below the maximum (the whole default window is
    within about 2 nats: the peak is flat); each is labelled with that distance
    (``contour_labels``), as the title says.
    """
    data = as_finite_array(x, "x")
    mus, sigmas, ll = loglik_surface(data, mu_range, sigma_range, resolution)
    mle = gaussian_mle(data)
    ll_max = gaussian_log_likelihood(data, *mle)
    fig, ax = _axes(ax, (6.4, 4.8))
    image = ax.imshow(
        ll,
        origin="lower",  # row 0 is the smallest sigma; "lower left" is not a valid origin
        extent=(mus[0], mus[-1], sigmas[0], sigmas[-1]),
        aspect="auto",
        cmap="viridis",
        gid="loglik-surface",
    )
    fig.colorbar(image, ax=ax, label="log-likelihood (nats)")
    levels = sorted(ll_max - np.array(SURFACE_NAT_LEVELS))
    contours = ax.contour(
        mus, sigmas, ll, levels=levels, colors="white", linewidths=0.8, linestyles="solid"
    )
    contours.set_gid("contours")
    # Placed by hand: matplotlib skips a contour whose pieces are shorter than its label (the
    # 1.5-nat one only clips the window's corners), and every level should say what it is.
    ax.clabel(contours, fmt=contour_labels(ll_max), fontsize=9,
              manual=_label_positions(contours.allsegs, mus, sigmas))
    if path is not None:
        steps = np.asarray(path, dtype=float)
        if steps.ndim != 2 or steps.shape[1] != 2:
            raise ValueError(f"path must have shape (k, 2) of (mu, sigma), got {steps.shape}")
        ax.plot(steps[:, 0], steps[:, 1], ".-", color="orange", ms=3, lw=1,
                label=f"gradient ascent ({len(steps) - 1} steps)", gid="ascent-path")
    # No numbers in the label: this figure comes before the exercise that computes them.
    ax.plot([mle.mu], [mle.sigma], "*", color="red", ms=14, ls="none", label="MLE", gid="mle")
    ax.set_xlabel("mu (g)")
    ax.set_ylabel("sigma (g)")
    ax.set_title("ln p(x | mu, sigma) for the three newborn weights\n"
                 "white contours: nats below the maximum", fontsize=11)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def plot_gaussian_density(
    x: Sequence[float] | np.ndarray,
    mu: float,
    sigma: float,
    samples: Sequence[float] | np.ndarray | None = None,
    x_range: Sequence[float] = DENSITY_X_RANGE,
    ylim: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The density N(mu, sigma) over the data: each data point's density is its likelihood.

    samples: optional draws from the model, shown as a rug. ylim: the top of the y axis
    (default: 1.3 x the peak); the widget fixes it so the axes never re-scale.
    """
    data = as_finite_array(x, "x")
    grid = np.linspace(*_range(x_range, "x_range"), 400)
    ylim = _top(ylim, "ylim")
    fig, ax = _axes(ax, (7.0, 3.6))
    density = np.exp(gaussian_log_pdf(grid, mu, sigma))
    at_data = np.exp(gaussian_log_pdf(data, mu, sigma))
    ax.plot(grid, density, color="C0", label="N(x | mu, sigma)", gid="density")
    ax.vlines(data, 0.0, at_data, colors="C3", lw=1.5, gid="data-stems")
    ax.plot(data, at_data, "o", color="C3", label="data: p(x_i | mu, sigma)", gid="data-density")
    if samples is not None:
        draws = as_finite_array(samples, "samples")
        ax.plot(draws, np.zeros_like(draws), "|", color="C2", ms=14, mew=1.5,
                label="samples from the model", gid="samples")
    ax.axvline(0.0, color="grey", lw=0.8, ls=":")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0.0, ylim if ylim is not None else 1.3 * density.max())
    ax.set_xlabel("weight (g)")
    ax.set_ylabel("density (1/g)")
    ax.set_title(f"mu = {mu:.1f}, sigma = {sigma:.1f}: " + gaussian_readout(data, mu, sigma),
                 fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def update_gaussian_density(
    ax: Axes, x: Sequence[float] | np.ndarray, mu: float, sigma: float
) -> None:
    """Move the curve, stems, points and title of a plot_gaussian_density axes in place."""
    data = as_finite_array(x, "x")
    curve = artist_by_gid(ax, "density")
    grid = curve.get_xdata()
    curve.set_ydata(np.exp(gaussian_log_pdf(grid, mu, sigma)))
    at_data = np.exp(gaussian_log_pdf(data, mu, sigma))
    artist_by_gid(ax, "data-density").set_data(data, at_data)
    artist_by_gid(ax, "data-stems").set_segments(
        [np.array([[xi, 0.0], [xi, yi]]) for xi, yi in zip(data, at_data, strict=True)]
    )
    ax.title.set_text(f"mu = {mu:.1f}, sigma = {sigma:.1f}: " + gaussian_readout(data, mu, sigma))


# ----------------------------------------------------------------------------- Poisson


@answers("2.3", "2.4", until_answered=True)
def plot_poisson(
    x: Sequence[int] | np.ndarray,
    lam: float,
    lam_range: Sequence[float] = POISSON_LAMBDA_RANGE,
    k_max: int = 12,
    level: float = 0.95,
    pmf_ylim: float | None = None,
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Left: Poisson(k | lam) vs the observed counts' frequencies. Right: ln p(x | lam).

    The right panel marks the MLE, the current lam and the likelihood-ratio interval
    at ``level`` (shaded, with its threshold l_max - chi2_1(level) / 2).
    """
    counts = as_counts(x, "x")
    lo, hi = _range(lam_range, "lam_range")
    pmf_ylim = _top(pmf_ylim, "pmf_ylim")
    if axes is None:
        fig, (ax_pmf, ax_ll) = plt.subplots(1, 2, figsize=(10.0, 3.8), layout="constrained")
    else:
        ax_pmf, ax_ll = _pair_of_axes(axes)
        fig = ax_pmf.get_figure(root=True)
    ks = np.arange(require_positive_int(k_max, "k_max") + 1)
    pmf = np.exp(poisson_log_pmf(ks, lam))
    values, freq = np.unique(counts, return_counts=True)
    ax_pmf.vlines(ks, 0.0, pmf, colors="C0", lw=3, gid="pmf-stems")
    ax_pmf.plot(ks, pmf, "o", color="C0", ms=4, label="Poisson(k | lambda)", gid="pmf")
    ax_pmf.plot(values, freq / counts.size, "x", color="C3", ms=10, mew=2,
                label="observed fraction", gid="observed")
    top = pmf_ylim if pmf_ylim is not None else 1.15 * max(pmf.max(), freq.max() / counts.size)
    ax_pmf.set_ylim(0.0, top)
    ax_pmf.set_xlabel("cars counted, k")
    ax_pmf.set_ylabel("probability")
    ax_pmf.set_title(f"lambda = {float(lam):.3f}", fontsize=10)
    ax_pmf.legend(loc="upper right", fontsize=8)

    grid = np.linspace(max(lo, 1e-3), hi, 400)
    lam_hat = poisson_mle(counts)
    ll_max = poisson_log_likelihood(counts, lam_hat)
    low, high = poisson_lr_interval(counts, level)
    threshold = ll_max - 0.5 * float(stats.chi2.ppf(level, df=1))
    ax_ll.plot(grid, poisson_log_likelihood(counts, grid), color="C0", gid="loglik-curve",
               label="ln p(x | lambda)")
    ax_ll.axvspan(low, high, color="C1", alpha=0.2, gid="lr-interval",
                  label=f"{level:.0%} LR interval [{low:.2f}, {high:.2f}]")
    ax_ll.axhline(threshold, color="C1", lw=0.8, ls="--", gid="lr-threshold")
    ax_ll.axvline(lam_hat, color="C3", lw=1, gid="mle", label=f"MLE {lam_hat:.4f}")
    ax_ll.plot([lam], [poisson_log_likelihood(counts, lam)], "o", color="k", gid="current",
               label="current lambda")
    ax_ll.set_ylim(ll_max - 12.0, ll_max + 1.5)
    ax_ll.set_xlim(grid[0], grid[-1])
    ax_ll.set_xlabel("lambda")
    ax_ll.set_ylabel("log-likelihood (nats)")
    ax_ll.set_title(poisson_readout(counts, lam), fontsize=10)
    ax_ll.legend(loc="lower right", fontsize=8)
    return fig


def update_poisson(axes: Sequence[Axes], x: Sequence[int] | np.ndarray, lam: float) -> None:
    """Move the pmf, the current-lambda point and the titles of a plot_poisson figure."""
    counts = as_counts(x, "x")
    ax_pmf, ax_ll = _pair_of_axes(axes)
    markers = artist_by_gid(ax_pmf, "pmf")
    ks = np.asarray(markers.get_xdata())
    pmf = np.exp(poisson_log_pmf(ks, lam))
    markers.set_ydata(pmf)
    artist_by_gid(ax_pmf, "pmf-stems").set_segments(
        [np.array([[k, 0.0], [k, p]]) for k, p in zip(ks, pmf, strict=True)]
    )
    ax_pmf.title.set_text(f"lambda = {float(lam):.3f}")
    artist_by_gid(ax_ll, "current").set_data([lam], [poisson_log_likelihood(counts, lam)])
    ax_ll.title.set_text(poisson_readout(counts, lam))
