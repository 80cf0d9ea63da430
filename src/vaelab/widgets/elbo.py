"""Notebook 03's explorer: sliders for q's mean and log-std against the exact posterior.

The figure is ``vaelab.plots.elbo.plot_q_explorer`` in a pyplot-free Figure; a slider
change moves its artists' data (``update_q_explorer``), renders a PNG into an
``ipywidgets.Image`` and sets the readout text (``vaelab.plots.elbo.elbo_readout``).
The ELBO and KL curves along q's mean depend on the log-std only, so they are cached per
log-std value: moving the mean slider recomputes one q, not the whole curve. Rendering
follows the same split: the artists that follow q's mean (q's density, the current gap
and ELBO point, the title) are blitted over a cached background (``BlitRenderer``), and
the background (curves, band, axes) is redrawn only when the log-std changes.

Stable identities for browser tests: sliders have the descriptions "q mean" and
"q log-std" and the CSS classes ``vaelab-q-mean``, ``vaelab-q-log-std``; the readout is a
``Label`` with the class ``vaelab-readout``; the picture has ``vaelab-figure``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from vaelab.elbo import Decomposition, decomposition_along_means
from vaelab.plots.elbo import elbo_readout, explorer_means, plot_q_explorer, update_q_explorer
from vaelab.plots.likelihood import artist_by_gid
from vaelab.validation import require_finite
from vaelab.widgets.likelihood import BlitRenderer

MEAN_RANGE = (-3.0, 3.0)
LOG_STD_RANGE = (-3.0, 1.0)
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
    _without_right: Any = None  # the figure's bitmap with the right panel left out

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
        update_q_explorer(self.figure, self.model, self.x, mean, log_std, self.curve(log_std))
        if log_std != self._background_log_std:
            # Curves, band, y-limits and title of the right panel moved: redraw that panel
            # (not the static left one) and keep the result as the new background.
            canvas, right = self.renderer.canvas, self.figure.axes[1]
            canvas.restore_region(self._without_right)
            self.figure.draw_artist(right)
            self.renderer.background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_log_std = log_std
        self.readout.value = elbo_readout(self.model, self.x, mean, log_std)
        self.image.value = self.renderer.png()


def elbo_explorer(model: Any, x: Any, mean: float = 0.0, log_std: float = 0.0) -> ElboExplorer:
    """The explorer for a model with a 1-D latent z, starting at q = N(mean, e^(2 log_std))."""
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
    moving = [artist_by_gid(ax_d, "q-density"), artist_by_gid(ax_c, "current-gap"),
              artist_by_gid(ax_c, "current-elbo"),
              fig.suptitle(fig.get_suptitle(), fontsize=10)]  # (returns the title's Text)
    # Lays the figure out once, freezes that layout, caches everything but ``moving``.
    renderer = BlitRenderer(fig, moving)
    ax_c.set_visible(False)
    renderer.canvas.draw()
    without_right = renderer.canvas.copy_from_bbox(fig.bbox)
    ax_c.set_visible(True)
    mean_slider = _slider("q mean", "vaelab-q-mean", mean0, *MEAN_RANGE, step=0.05)
    log_std_slider = _slider("q log-std", "vaelab-q-log-std", log_std0, *LOG_STD_RANGE, step=0.05)
    readout = widgets.Label(value=elbo_readout(model, x, mean0, log_std0))
    readout.add_class("vaelab-readout")
    image = widgets.Image(value=renderer.png(), format="png")
    image.add_class("vaelab-figure")
    box = widgets.VBox([mean_slider, log_std_slider, readout, image])
    explorer = ElboExplorer(model, x, fig, mean_slider, log_std_slider, readout, image, box,
                            renderer, _background_log_std=log_std0,
                            _without_right=without_right)
    mean_slider.observe(explorer.update, names="value")
    log_std_slider.observe(explorer.update, names="value")
    return explorer
