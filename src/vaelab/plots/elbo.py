"""Figures for notebook 03: ln p(x) = ELBO + KL as q moves, the IW bound, the ring, SGA.

Every ``plot_*`` returns its Figure and accepts existing axes, so the widget can draw
into a pyplot-free Figure. Artists that change with q carry a ``gid``;
``update_q_explorer`` moves their data in place (no new artists), which keeps a
slider step cheap. The numbers come from ``vaelab.elbo``; nothing is computed here
that is not computed there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from vaelab.distributions import Gaussian
from vaelab.elbo import Decomposition, Estimate, decomposition_along_means
from vaelab.plots.likelihood import artist_by_gid
from vaelab.validation import InputTypeError, require_finite, require_positive_int

#: q's mean axis for the decomposition figures and the widget.
Q_MEAN_RANGE = (-3.0, 3.0)
Z_RANGE = (-4.0, 4.0)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.get_figure(root=True), ax


def elbo_readout(model: Any, x: Any, mean: float, log_std: float) -> str:
    """The readout: ELBO, ln p(x) and the gap KL(q || p(z|x)) at q = N(mean, e^(2 log_std))."""
    return _readout_text(decomposition_along_means(model, x, [mean], log_std))


def _readout_text(d: Decomposition) -> str:
    return (f"ELBO = {d.elbo[0]:.3f}   ln p(x) = {d.log_marginal:.3f}   "
            f"gap = KL(q || p(z|x)) = {d.kl_posterior[0]:.3f}")


def _posterior_density(model: Any, x: Any, grid: np.ndarray) -> np.ndarray:
    return np.exp(np.asarray(model.log_posterior(x, grid[:, None]), dtype=np.float64))


def decomposition_ylim(log_marginal: float,
                       elbo: Sequence[float] | np.ndarray | None = None) -> tuple[float, float]:
    """The decomposition panel's y-limits: ln p(x) + 1 down to the ELBO curve's minimum.

    The view goes at most 12 nats below ln p(x) (a wide q's ELBO plunges). elbo: the
    curve (shape (n,)); None gives the widest limits any curve can get, which the widget
    keeps fixed so that a slider step never redraws the axes.
    """
    lm = require_finite(log_marginal, "log_marginal")
    low = lm - 12.0 if elbo is None else max(float(np.min(elbo)), lm - 12.0)
    if not np.isfinite(low):  # a NaN ELBO would make the limits NaN
        raise ValueError("elbo contains NaN or infinity; the y-limits need finite values")
    return low - 0.5, lm + 1.0


def plot_decomposition(model: Any, x: Any, log_std: float,
                       means: Sequence[float] | np.ndarray | None = None,
                       current: float | None = None, ax: Axes | None = None) -> Figure:
    """ELBO(m) and ELBO(m) + KL(q || p(z|x)) = ln p(x) as q = N(m, e^(2 log_std)) slides along m.

    The band between the ELBO curve and the flat ln p(x) line is the KL to the posterior:
    its height is the gap at each m. ``current`` marks one q (the widget moves it).
    """
    ms = np.linspace(*Q_MEAN_RANGE, 61) if means is None else np.asarray(means, dtype=float)
    d = decomposition_along_means(model, x, ms, log_std)
    fig, ax = _axes(ax, (6.0, 3.8))
    ax.plot(ms, d.elbo, color="C0", lw=2, label="ELBO", gid="elbo-curve")
    ax.fill_between(ms, d.elbo, d.elbo + d.kl_posterior, color="C1", alpha=0.35,
                    label="KL(q || p(z|x))", gid="kl-band")
    ax.plot(ms, d.elbo + d.kl_posterior, color="k", lw=1.5, ls="--",
            label="ELBO + KL = ln p(x)", gid="sum-curve")
    if current is not None:
        cur = decomposition_along_means(model, x, [current], log_std)
        ax.vlines([current], [cur.elbo[0]], [cur.log_marginal], color="C3", lw=3,
                  label="gap at the current q", gid="current-gap")
        ax.plot([current], [cur.elbo[0]], "o", color="C3", gid="current-elbo")
    ax.set_ylim(*decomposition_ylim(d.log_marginal, d.elbo))
    ax.set_xlim(ms[0], ms[-1])
    ax.set_xlabel("mean of q(z|x)")
    ax.set_ylabel("nats")
    ax.set_title(f"ln p(x) = ELBO + KL as q moves (log-std of q = {log_std:.2f})", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def densities_top(posterior_peak: float, q_peak: float | None = None) -> float:
    """The top of the density axis: 1.1 x the taller curve, or (q_peak None) a fixed
    1.6 x the posterior's peak (at least 0.4), which a widget keeps while q moves."""
    if q_peak is None:
        return 1.6 * max(posterior_peak, 0.4)
    return 1.1 * max(posterior_peak, q_peak)


def plot_densities(model: Any, x: Any, mean: float, log_std: float,
                   ax: Axes | None = None, fit_q: bool = True) -> Figure:
    """The posterior p(z|x) and q(z|x) = N(mean, e^(2 log_std)) over z (1-D latent).

    fit_q: the y axis shows both whole curves (``densities_top``); False fixes it at the
    posterior's scale, as the widget needs (a narrow q then runs off the top).
    """
    grid = np.linspace(*Z_RANGE, 400)
    fig, ax = _axes(ax, (5.0, 3.8))
    post = _posterior_density(model, x, grid)
    q = np.exp(Gaussian.diagonal([mean], [np.exp(log_std)]).log_prob(grid[:, None]))
    ax.plot(grid, post, color="k", lw=2, label="posterior p(z|x)", gid="posterior")
    ax.plot(grid, q, color="C3", lw=2, label="q(z|x)", gid="q-density")
    ax.fill_between(grid, 0.0, post, color="k", alpha=0.08)
    # The widget fixes the height: the tallest q its log-std range allows would dwarf the
    # posterior, and a rescale on every slider step would redraw the axes.
    ax.set_ylim(0.0, densities_top(float(post.max()), float(q.max()) if fit_q else None))
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("z")
    ax.set_ylabel("density")
    ax.set_title("q(z|x) against the exact posterior", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_q_explorer(model: Any, x: Any, mean: float, log_std: float,
                    axes: Sequence[Axes] | None = None) -> Figure:
    """The widget's figure: densities (left), the decomposition along q's mean (right)."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 3.8), layout="constrained")
    fig = axes[0].get_figure(root=True)
    plot_densities(model, x, mean, log_std, ax=axes[0], fit_q=False)
    plot_decomposition(model, x, log_std, current=mean, ax=axes[1])
    fig.suptitle(elbo_readout(model, x, mean, log_std), fontsize=10)
    return fig


def explorer_means(fig: Figure) -> np.ndarray:
    """The q means along which a ``plot_q_explorer`` figure draws its decomposition curves."""
    return np.asarray(artist_by_gid(fig.axes[1], "elbo-curve").get_xdata())


def update_q_explorer(fig: Figure, model: Any, x: Any, mean: float, log_std: float,
                      curve: Decomposition | None = None,
                      ylim: tuple[float, float] | None = None) -> None:
    """Move q's curve, the ELBO/KL curves and the current-q marker in place.

    curve: the decomposition along ``explorer_means(fig)`` at this log_std, if the caller
    has it already (it depends on log_std only, so a widget caches it).
    ylim: the decomposition panel's y-limits; None fits them to this curve
    (``decomposition_ylim``).
    """
    ax_d, ax_c = fig.axes[:2]
    q_line = artist_by_gid(ax_d, "q-density")
    grid = np.asarray(q_line.get_xdata())
    q_line.set_ydata(np.exp(Gaussian.diagonal([mean], [np.exp(log_std)]).log_prob(grid[:, None])))
    elbo_line = artist_by_gid(ax_c, "elbo-curve")
    ms = np.asarray(elbo_line.get_xdata())
    d = decomposition_along_means(model, x, ms, log_std) if curve is None else curve
    if d.elbo.shape != ms.shape:
        raise ValueError(f"curve must have {ms.size} points (explorer_means(fig)), "
                         f"got {d.elbo.size}")
    elbo_line.set_ydata(d.elbo)
    artist_by_gid(ax_c, "sum-curve").set_ydata(d.elbo + d.kl_posterior)
    band = artist_by_gid(ax_c, "kl-band")
    top = np.column_stack([ms, d.elbo + d.kl_posterior])
    bottom = np.column_stack([ms, d.elbo])
    band.set_verts([np.vstack([bottom, top[::-1]])])
    cur = decomposition_along_means(model, x, [mean], log_std)
    elbo_now = float(cur.elbo[0])
    artist_by_gid(ax_c, "current-gap").set_segments(
        [np.array([[mean, elbo_now], [mean, cur.log_marginal]])])
    artist_by_gid(ax_c, "current-elbo").set_data([mean], [elbo_now])
    ax_c.set_ylim(decomposition_ylim(d.log_marginal, d.elbo) if ylim is None else ylim)
    ax_c.title.set_text(f"ln p(x) = ELBO + KL as q moves (log-std of q = {log_std:.2f})")
    fig.suptitle(_readout_text(cur), fontsize=10)


def plot_iw_bound(ks: Sequence[int], estimates: Sequence[Estimate], log_marginal: float,
                  elbo: float, ax: Axes | None = None) -> Figure:
    """L_k (± 2 standard errors) against k on a log axis, with ln p(x) and the ELBO."""
    k = np.array([require_positive_int(v, "each k") for v in ks], dtype=float)  # log axis
    if not all(isinstance(e, Estimate) for e in estimates):
        raise InputTypeError("estimates must be Estimates (iw_bound_curve returns them)")
    mean = np.array([e.mean for e in estimates])
    se = np.array([e.std_error for e in estimates])
    if k.shape != mean.shape:
        raise ValueError(f"ks and estimates must have the same length, got {k.size} and "
                         f"{mean.size}")
    log_marginal = require_finite(log_marginal, "log_marginal")
    elbo = require_finite(elbo, "elbo")
    fig, ax = _axes(ax, (6.0, 3.8))
    ax.errorbar(k, mean, yerr=2 * se, fmt="o-", color="C0", capsize=3, label="L_k (± 2 SE)",
                gid="iw-bound")
    ax.axhline(log_marginal, color="k", ls="--", label="ln p(x) (exact)", gid="log-marginal")
    ax.axhline(elbo, color="C1", ls=":", label="ELBO = L_1 (exact)", gid="elbo")
    ax.set_xscale("log")
    ax.set_xlabel("number of importance samples k")
    ax.set_ylabel("nats")
    ax.set_title("The importance-weighted bound climbs to ln p(x)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_ring(z: np.ndarray, x: np.ndarray, axes: Sequence[Axes] | None = None) -> Figure:
    """Left: samples z ~ N(0, I). Right: the same points through f(z) = z/10 + z/||z||."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.3), layout="constrained")
    if isinstance(axes, Axes) or len(axes) != 2:
        raise ValueError(f"axes must be two matplotlib Axes (left, right), got {axes!r}")
    fig = axes[0].get_figure(root=True)
    for ax, pts, title in ((axes[0], z, "z ~ N(0, I)"), (axes[1], x, "x = z/10 + z/||z||")):
        pts = np.asarray(pts, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points must be (n, 2), got {pts.shape}")
        ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.4, color="C0")
        ax.set_aspect("equal")
        ax.set_xlim(-3.2, 3.2)
        ax.set_ylim(-3.2, 3.2)
        ax.set_title(title, fontsize=10)
    return fig


def plot_sga_trace(trace: np.ndarray, log_marginal: float, final_elbo: float,
                   window: int = 50, ax: Axes | None = None) -> Figure:
    """Per-step ELBO estimates during SGA, their running mean, ln p(x) and the final exact ELBO."""
    t = np.asarray(trace, dtype=float)
    window = require_positive_int(window, "window")
    if t.ndim != 1 or t.size < window:
        raise ValueError(f"trace must be 1-D with at least window = {window} steps")
    if not np.all(np.isfinite(t)):
        raise ValueError("trace contains NaN or infinity: the fit diverged")
    log_marginal = require_finite(log_marginal, "log_marginal")
    final_elbo = require_finite(final_elbo, "final_elbo")
    fig, ax = _axes(ax, (6.0, 3.6))
    steps = np.arange(1, t.size + 1)
    smooth = np.convolve(t, np.ones(window) / window, mode="valid")
    ax.plot(steps, t, color="C0", alpha=0.25, lw=0.8, label="ELBO estimate per step")
    ax.plot(steps[window - 1:], smooth, color="C0", lw=2, label=f"running mean ({window} steps)")
    ax.axhline(log_marginal, color="k", ls="--", label="ln p(x) (exact)")
    ax.axhline(final_elbo, color="C3", ls=":", label="exact ELBO of the final q")
    ax.set_ylim(log_marginal - 4.0, log_marginal + 1.0)
    ax.set_xlabel("SGA step")
    ax.set_ylabel("nats")
    ax.legend(loc="lower right", fontsize=8)
    return fig
