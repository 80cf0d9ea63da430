"""Notebook 03's explorer: sliders for q's mean and log-std against the exact posterior.

The figure is ``vaelab.plots.elbo.plot_q_explorer`` in a pyplot-free Figure; a slider
change moves its artists' data (``update_q_explorer``), renders a PNG into an
``ipywidgets.Image`` and sets the readout text (``vaelab.plots.elbo.elbo_readout``).
The ELBO and KL curves along q's mean depend on the log-std only, so they are cached per
log-std value: moving the mean slider recomputes one q, not the whole curve. Rendering
follows the same split: the artists that follow q's mean (q's density, the current gap
and ELBO point, the title) are blitted over a cached background (``BlitRenderer``). The
right panel's y-limits are fixed (``decomposition_ylim``), so its axes, ticks and legend
are drawn once: a log-std change pastes that static bitmap, draws the curves, band and
panel title on it, pastes the legend back on top and keeps the result as the background.

Stable identities for browser tests: sliders have the descriptions "q mean" and
"q log-std" and the CSS classes ``vaelab-q-mean``, ``vaelab-q-log-std``; the readout is a
``Label`` with the class ``vaelab-readout``; the picture has ``vaelab-figure``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from vaelab.elbo import Decomposition, decomposition_along_means
from vaelab.plots.elbo import (
    decomposition_ylim,
    elbo_readout,
    explorer_means,
    plot_q_explorer,
    update_q_explorer,
)
from vaelab.plots.likelihood import artist_by_gid
from vaelab.validation import require_finite, require_positive
from vaelab.widgets.likelihood import BlitRenderer

MEAN_RANGE = (-3.0, 3.0)
LOG_STD_RANGE = (-3.0, 1.0)
_LOG_STD_STEP = 0.05
_DPI = 80  # low resolution keeps one render to a few tens of ms


def _slider(description: str, css: str, value: float, low: float, high: float,
            step: float) -> widgets.FloatSlider:
    slider = widgets.FloatSlider(
        value=value, min=low, max=high, step=step, description=description,
        readout_format=".2f", continuous_update=True, layout=widgets.Layout(width="520px"),
        style={"description_width": "80px"},
    )
    slider.add_class(css)
    return slider


@dataclass
class ElboExplorer:
    """The q(z|x) explorer; display ``widget``. ``update`` runs on every slider change."""

    model: Any
    x: Any
    figure: Figure
    mean_slider: widgets.FloatSlider
    log_std_slider: widgets.FloatSlider
    readout: widgets.Label
    image: widgets.Image
    widget: widgets.VBox
    renderer: BlitRenderer
    _curves: dict[float, Decomposition] = field(default_factory=dict)
    _background_log_std: float | None = None
    _ylim: tuple[float, float] | None = None  # the right panel's fixed y-limits
    _curve_artists: list[Any] = field(default_factory=list)  # drawn on a log-std change
    _static: Any = None  # the figure's bitmap without the curves' or the renderer's artists
    _legend: Any = None  # the right panel's legend pixels, from ``_static``

    def curve(self, log_std: float) -> Decomposition:
        """The decomposition along the figure's q means at this log-std (cached)."""
        key = round(float(log_std), 6)
        if key not in self._curves:
            self._curves[key] = decomposition_along_means(
                self.model, self.x, explorer_means(self.figure), key)
        return self._curves[key]

    def update(self, *_: object) -> None:
        """Redraw for the sliders' current values."""
        mean, log_std = float(self.mean_slider.value), float(self.log_std_slider.value)
        update_q_explorer(self.figure, self.model, self.x, mean, log_std, self.curve(log_std),
                          ylim=self._ylim)
        if log_std != self._background_log_std:
            self._draw_background()
            self._background_log_std = log_std
        # update_q_explorer titled the figure with elbo_readout's text for this q.
        self.readout.value = self.figure.get_suptitle()
        self.image.value = self.renderer.png()

    def _draw_background(self) -> None:
        """The background for the current log-std: static bitmap + the curves' artists."""
        canvas = self.renderer.canvas
        canvas.restore_region(self._static)
        for artist in self._curve_artists:
            self.figure.draw_artist(artist)
        # The legend sits over the curves in a full draw: paste its cached pixels back.
        canvas.restore_region(self._legend)
        self.renderer.background = canvas.copy_from_bbox(self.figure.bbox)


def slider_positions(low: float, high: float, step: float) -> np.ndarray:
    """The values a slider from low to high by step can take: shape (n,), rounded like
    ``ElboExplorer.curve``'s cache keys (6 decimals)."""
    low, high = require_finite(low, "low"), require_finite(high, "high")
    step = require_positive(step, "step")
    if high < low:
        raise ValueError(f"high must be >= low, got low={low} and high={high}")
    n = int(np.floor((high - low) / step + 1e-9)) + 1
    return np.round(low + step * np.arange(n), 6)


def elbo_explorer(model: Any, x: Any, mean: float = 0.0, log_std: float = 0.0,
                  precompute: bool = True) -> ElboExplorer:
    """The explorer for a model with a 1-D latent z, starting at q = N(mean, e^(2 log_std)).

    precompute: compute the ELBO/KL curves for every log-std slider position now (81 of
    them, ~25-45 ms each: a few seconds) so that no slider step waits for one; False
    computes each on its first visit instead.
    """
    mean0 = require_finite(mean, "mean")
    log_std0 = require_finite(log_std, "log_std")
    if getattr(model, "latent_dim", None) != 1:
        raise ValueError("the explorer needs a model with a one-dimensional latent z")
    in_range = MEAN_RANGE[0] <= mean0 <= MEAN_RANGE[1]
    if not (in_range and LOG_STD_RANGE[0] <= log_std0 <= LOG_STD_RANGE[1]):
        raise ValueError(f"mean must be in {MEAN_RANGE} and log_std in {LOG_STD_RANGE}")
    fig = Figure(figsize=(11.0, 3.8), dpi=_DPI, layout="constrained")
    plot_q_explorer(model, x, mean0, log_std0, axes=fig.subplots(1, 2))
    ax_d, ax_c = fig.axes[:2]
    ylim = decomposition_ylim(float(model.log_marginal(x)))
    ax_c.set_ylim(ylim)  # fixed: no slider step rescales (and so redraws) the axes
    curve_artists = [artist_by_gid(ax_c, g) for g in ("kl-band", "elbo-curve", "sum-curve")]
    curve_artists.append(ax_c.title)
    for artist in curve_artists:
        artist.set_animated(True)  # left out of the static bitmap
    moving = [artist_by_gid(ax_d, "q-density"), artist_by_gid(ax_c, "current-gap"),
              artist_by_gid(ax_c, "current-elbo"),
              fig.suptitle(fig.get_suptitle(), fontsize=10)]  # (returns the title's Text)
    # Lays the figure out once, freezes that layout, caches everything but the animated.
    renderer = BlitRenderer(fig, moving)
    static = renderer.background
    legend = renderer.canvas.copy_from_bbox(ax_c.get_legend().get_window_extent())
    mean_slider = _slider("q mean", "vaelab-q-mean", mean0, *MEAN_RANGE, step=0.05)
    log_std_slider = _slider("q log-std", "vaelab-q-log-std", log_std0, *LOG_STD_RANGE,
                             step=_LOG_STD_STEP)
    readout = widgets.Label(value=elbo_readout(model, x, mean0, log_std0))
    readout.add_class("vaelab-readout")
    image = widgets.Image(format="png")  # its picture follows, once the background exists
    image.add_class("vaelab-figure")
    box = widgets.VBox([mean_slider, log_std_slider, readout, image])
    explorer = ElboExplorer(model, x, fig, mean_slider, log_std_slider, readout, image, box,
                            renderer, _ylim=ylim, _curve_artists=curve_artists,
                            _static=static, _legend=legend)
    explorer._draw_background()
    explorer._background_log_std = log_std0
    image.value = renderer.png()
    if precompute:
        for value in slider_positions(*LOG_STD_RANGE, _LOG_STD_STEP):
            explorer.curve(float(value))
    mean_slider.observe(explorer.update, names="value")
    log_std_slider.observe(explorer.update, names="value")
    return explorer
