"""Notebook 04's latent explorer: two sliders pick a point of a 2-D latent plane, live decoded.

The figure is vaelab.plots.vae.plot_latent_explorer in a pyplot-free Figure. A slider
change decodes one point (vaelab.latent_space.decode_point, one small matrix product),
moves the marker and sets the image's data (update_latent_explorer), then re-renders
only those two artists over a cached background (BlitRenderer) into an
``ipywidgets.Image``. The scatter of 10000 points is drawn once.

Stable identities for browser tests: sliders have the descriptions "z1" and "z2" and
the CSS classes ``vaelab-z1``, ``vaelab-z2``; the readout is a ``Label`` with the
class ``vaelab-readout``; the picture has ``vaelab-figure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from vaelab.latent_space import decode_point
from vaelab.plots.vae import explorer_artists, plot_latent_explorer, update_latent_explorer
from vaelab.vae import VAE
from vaelab.validation import InputTypeError, require_finite
from vaelab.widgets.likelihood import BlitRenderer

Z_RANGE = (-3.0, 3.0)
_DPI = 80  # low resolution keeps one render to a few tens of ms


def readout(z: tuple[float, float]) -> str:
    """The label under the sliders."""
    return f"decoding z = ({z[0]:+.2f}, {z[1]:+.2f})"


@dataclass
class LatentExplorer:
    """Sliders z1, z2 over a 2-D VAE's latent plane; display ``widget``."""

    model: VAE
    figure: Figure
    renderer: BlitRenderer
    z1: widgets.FloatSlider
    z2: widgets.FloatSlider
    readout: widgets.Label
    image: widgets.Image
    widget: widgets.VBox

    def update(self, *_: object) -> None:
        """Decode the sliders' point and redraw (runs on every slider change)."""
        z = (float(self.z1.value), float(self.z2.value))
        update_latent_explorer(self.figure, z, decode_point(self.model, z))
        self.readout.value = readout(z)
        self.image.value = self.renderer.png()


def _slider(name: str, value: float) -> widgets.FloatSlider:
    slider = widgets.FloatSlider(
        value=value, min=Z_RANGE[0], max=Z_RANGE[1], step=0.05, description=name,
        readout_format=".2f", continuous_update=True, layout=widgets.Layout(width="420px"),
    )
    slider.add_class(f"vaelab-{name}")
    return slider


def latent_explorer(model: VAE, means: torch.Tensor, labels: torch.Tensor,
                    z: tuple[float, float] = (0.0, 0.0)) -> LatentExplorer:
    """The explorer for a model with latent_dim 2; means, labels: the scatter (N, 2), (N,)."""
    if not isinstance(model, VAE):
        raise InputTypeError(f"model must be a vaelab.vae.VAE, got {type(model).__name__}")
    if model.latent_dim != 2:
        raise ValueError(f"the explorer needs a model with latent_dim 2, got {model.latent_dim}")
    if isinstance(z, str) or not isinstance(z, Sequence) or len(z) != 2:
        raise ValueError(f"z must be a pair (z1, z2), got {z!r}")
    z0 = (require_finite(z[0], "z1"), require_finite(z[1], "z2"))
    if not all(Z_RANGE[0] <= v <= Z_RANGE[1] for v in z0):
        raise ValueError(f"z1 and z2 must lie in {Z_RANGE}, got {z0}")
    fig = Figure(figsize=(8.5, 4), dpi=_DPI, layout="constrained")
    plot_latent_explorer(means, labels, decode_point(model, z0), z0, fig=fig)
    renderer = BlitRenderer(fig, explorer_artists(fig))
    z1, z2 = _slider("z1", z0[0]), _slider("z2", z0[1])
    label = widgets.Label(value=readout(z0))
    label.add_class("vaelab-readout")
    image = widgets.Image(value=renderer.png(), format="png")
    image.add_class("vaelab-figure")
    box = widgets.VBox([z1, z2, label, image])
    explorer = LatentExplorer(model, fig, renderer, z1, z2, label, image, box)
    z1.observe(explorer.update, names="value")
    z2.observe(explorer.update, names="value")
    return explorer
