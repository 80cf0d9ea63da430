"""Slider explorers for notebooks 01 (mu, sigma) and 02 (lambda).

No ``%matplotlib`` backend is involved: each explorer owns a pyplot-free Figure,
moves its artists' data on a slider change (vaelab.plots.likelihood.update_*),
renders it to PNG and hands the bytes to an ``ipywidgets.Image``. The readout is a
``Label`` whose value is the text of vaelab.plots.likelihood's readout functions.

Stable identities for browser tests: sliders have the descriptions "mu", "sigma",
"lambda" and the CSS classes ``vaelab-mu``, ``vaelab-sigma``, ``vaelab-lambda``; the
readout has the class ``vaelab-readout``; the picture ``vaelab-figure``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

from vaelab.mle import gaussian_mle, poisson_mle
from vaelab.plots.likelihood import (
    POISSON_LAMBDA_RANGE,
    artist_by_gid,
    gaussian_readout,
    plot_gaussian_density,
    plot_poisson,
    poisson_readout,
    update_gaussian_density,
    update_poisson,
)
from vaelab.references import answers
from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G
from vaelab.validation import (
    as_counts,
    as_finite_array,
    require_finite,
    require_positive,
    require_range,
)

GAUSSIAN_MU_RANGE = (2000.0, 5000.0)
GAUSSIAN_SIGMA_RANGE = (300.0, 2000.0)

# Low resolution keeps a PNG render (the cost of one slider step) to tens of ms.
_DPI = 80


class BlitRenderer:
    """Renders a figure to PNG by redrawing only the artists that move.

    The first draw lays the figure out (then the layout is frozen) and keeps the
    static part (axes, ticks, legend, surfaces) as a bitmap; each ``png()`` call
    pastes that bitmap and draws just ``artists`` on top. Text drawing dominates
    a full matplotlib draw, so this is what makes a slider step cheap.
    """

    def __init__(self, fig: Figure, artists: Sequence[Artist]) -> None:
        self.figure = fig
        self.artists = list(artists)
        self.canvas = FigureCanvasAgg(fig)
        fig.draw_without_rendering()  # constrained layout runs here, once
        fig.set_layout_engine("none")
        for artist in self.artists:
            artist.set_animated(True)  # left out of the full draw below
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def png(self) -> bytes:
        """PNG bytes of the figure as it is now."""
        self.canvas.restore_region(self.background)
        for artist in self.artists:
            self.figure.draw_artist(artist)
        pixels = np.asarray(self.canvas.buffer_rgba())
        buffer = io.BytesIO()
        # Light compression: encoding time matters more than bytes on a local kernel.
        PILImage.fromarray(pixels).save(buffer, format="png", compress_level=1)
        return buffer.getvalue()


def _new_figure(figsize: tuple[float, float]) -> Figure:
    return Figure(figsize=figsize, dpi=_DPI, layout="constrained")


def _slider(description: str, value: float, low: float, high: float, step: float,
            fmt: str) -> widgets.FloatSlider:
    slider = widgets.FloatSlider(
        value=value, min=low, max=high, step=step, description=description,
        readout_format=fmt, continuous_update=True,
        layout=widgets.Layout(width="520px"),
    )
    slider.add_class(f"vaelab-{description}")
    return slider


def _starts_on_slider(value: float, slider_range: tuple[float, float], name: str,
                      positive: bool = False) -> None:
    """A start outside the slider's range: the slider would clamp it and show another value
    than the figure (say so instead)."""
    low, high = require_range(slider_range, f"{name}_range")
    if positive and low <= 0:
        raise ValueError(f"{name}_range must lie above 0 ({name} > 0), got {slider_range!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} = {value:g} lies outside the slider's range {slider_range}; "
                         f"start inside it or pass a wider {name}_range")


def _readout(text: str) -> widgets.Label:
    label = widgets.Label(value=text)
    label.add_class("vaelab-readout")
    return label


def _image(renderer: BlitRenderer) -> widgets.Image:
    image = widgets.Image(value=renderer.png(), format="png")
    image.add_class("vaelab-figure")
    return image


@dataclass
class GaussianExplorer:
    """Sliders for mu and sigma over the density of the data; ``widget`` is what to display."""

    data: np.ndarray
    figure: Figure
    renderer: BlitRenderer
    mu_slider: widgets.FloatSlider
    sigma_slider: widgets.FloatSlider
    readout: widgets.Label
    image: widgets.Image
    widget: widgets.VBox

    def update(self, *_: object) -> None:
        """Redraw for the sliders' current values (called on every slider change)."""
        mu, sigma = float(self.mu_slider.value), float(self.sigma_slider.value)
        update_gaussian_density(self.figure.axes[0], self.data, mu, sigma)
        self.readout.value = gaussian_readout(self.data, mu, sigma)
        self.image.value = self.renderer.png()


def _gaussian_setup(
    x: Sequence[float] | np.ndarray, mu: float | None, sigma: float | None,
    sigma_range: tuple[float, float],
) -> tuple[np.ndarray, float, float, float]:
    data = as_finite_array(x, "x")
    mle = gaussian_mle(data)
    mu0 = mle.mu if mu is None else require_finite(mu, "mu")
    sigma0 = mle.sigma if sigma is None else require_positive(sigma, "sigma")
    _starts_on_slider(sigma0, sigma_range, "sigma", positive=True)
    # Fixed y axis (peak density at the smallest sigma) so a slider never rescales it.
    top = 1.05 / (np.sqrt(2 * np.pi) * sigma_range[0])
    return data, mu0, sigma0, top


@answers("1.2", until_answered=True)
def gaussian_explorer_figure(
    x: Sequence[float] | np.ndarray = NEWBORN_WEIGHTS_G,
    mu: float | None = None,
    sigma: float | None = None,
    sigma_range: tuple[float, float] = GAUSSIAN_SIGMA_RANGE,
) -> Figure:
    """The explorer's picture at its starting values, as a static (pyplot) figure."""
    data, mu0, sigma0, top = _gaussian_setup(x, mu, sigma, sigma_range)
    return plot_gaussian_density(data, mu0, sigma0, ylim=top)


@answers("1.2", until_answered=True)
def gaussian_explorer(
    x: Sequence[float] | np.ndarray = NEWBORN_WEIGHTS_G,
    mu: float | None = None,
    sigma: float | None = None,
    mu_range: tuple[float, float] = GAUSSIAN_MU_RANGE,
    sigma_range: tuple[float, float] = GAUSSIAN_SIGMA_RANGE,
) -> GaussianExplorer:
    """Build the notebook-01 explorer, starting at (mu, sigma) (default: the MLE)."""
    data, mu0, sigma0, top = _gaussian_setup(x, mu, sigma, sigma_range)
    _starts_on_slider(mu0, mu_range, "mu")
    fig = _new_figure((7.0, 3.6))
    ax = fig.subplots()
    plot_gaussian_density(data, mu0, sigma0, ylim=top, ax=ax)
    moving = [artist_by_gid(ax, g) for g in ("density", "data-stems", "data-density")]
    renderer = BlitRenderer(fig, [*moving, ax.title])
    mu_slider = _slider("mu", mu0, *mu_range, step=1.0, fmt=".0f")
    sigma_slider = _slider("sigma", sigma0, *sigma_range, step=1.0, fmt=".0f")
    readout = _readout(gaussian_readout(data, mu0, sigma0))
    image = _image(renderer)
    box = widgets.VBox([mu_slider, sigma_slider, readout, image])
    explorer = GaussianExplorer(data, fig, renderer, mu_slider, sigma_slider, readout, image, box)
    mu_slider.observe(explorer.update, names="value")
    sigma_slider.observe(explorer.update, names="value")
    return explorer


@dataclass
class PoissonExplorer:
    """A lambda slider over the pmf and the log-likelihood curve; display ``widget``."""

    data: np.ndarray
    figure: Figure
    renderer: BlitRenderer
    lam_slider: widgets.FloatSlider
    readout: widgets.Label
    image: widgets.Image
    widget: widgets.VBox

    def update(self, *_: object) -> None:
        """Redraw for the slider's current value (called on every slider change)."""
        lam = float(self.lam_slider.value)
        update_poisson(self.figure.axes[:2], self.data, lam)
        self.readout.value = poisson_readout(self.data, lam)
        self.image.value = self.renderer.png()


def _poisson_setup(
    x: Sequence[int] | np.ndarray, lam: float | None, lam_range: tuple[float, float]
) -> tuple[np.ndarray, float, float]:
    counts = as_counts(x, "x")
    lam0 = poisson_mle(counts) if lam is None else require_positive(lam, "lam")
    _starts_on_slider(lam0, lam_range, "lam", positive=True)
    # Fixed pmf axis: the tallest pmf bar over the slider's range is P(0) at its low end.
    top = 1.05 * max(float(np.exp(-lam_range[0])), 0.5)
    return counts, lam0, top


@answers("2.3", "2.4", until_answered=True)
def poisson_explorer_figure(
    x: Sequence[int] | np.ndarray = CAR_COUNTS,
    lam: float | None = None,
    lam_range: tuple[float, float] = POISSON_LAMBDA_RANGE,
) -> Figure:
    """The explorer's picture at its starting value, as a static (pyplot) figure."""
    counts, lam0, top = _poisson_setup(x, lam, lam_range)
    return plot_poisson(counts, lam0, lam_range=lam_range, pmf_ylim=top)


@answers("2.3", "2.4", until_answered=True)
def poisson_explorer(
    x: Sequence[int] | np.ndarray = CAR_COUNTS,
    lam: float | None = None,
    lam_range: tuple[float, float] = POISSON_LAMBDA_RANGE,
) -> PoissonExplorer:
    """Build the notebook-02 explorer, starting at ``lam`` (default: the MLE)."""
    counts, lam0, top = _poisson_setup(x, lam, lam_range)
    fig = _new_figure((10.0, 3.8))
    axes = fig.subplots(1, 2)
    plot_poisson(counts, lam0, lam_range=lam_range, pmf_ylim=top, axes=axes)
    moving = [artist_by_gid(axes[0], g) for g in ("pmf-stems", "pmf")]
    moving += [artist_by_gid(axes[1], "current"), axes[0].title, axes[1].title]
    renderer = BlitRenderer(fig, moving)
    lam_slider = _slider("lambda", lam0, *lam_range, step=0.01, fmt=".2f")
    readout = _readout(poisson_readout(counts, lam0))
    image = _image(renderer)
    box = widgets.VBox([lam_slider, readout, image])
    explorer = PoissonExplorer(counts, fig, renderer, lam_slider, readout, image, box)
    lam_slider.observe(explorer.update, names="value")
    return explorer
