"""Figures for notebook 04: digits, training curves, reconstructions, samples, the latent plane.

Every ``plot_*`` returns its Figure. Images are (n, 784) tensors or arrays of pixel
values in [0, 1]. The numbers come from vaelab.training and vaelab.latent_space;
nothing is computed here beyond arranging pixels. ``plot_latent_explorer`` draws
into a given (pyplot-free) Figure for the widget; ``update_latent_explorer`` moves
its two artists (marker and decoded image, ``gid`` "z-marker" and "decoded").
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from vaelab.validation import (
    as_array,
    require_int,
    require_positive,
    require_positive_int,
)

SIDE = 28  # MNIST images are 28 x 28


def _np(images: torch.Tensor | np.ndarray) -> np.ndarray:
    return as_array(images, "images", finite=False).astype(np.float32)


def _pixels(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Images as float32 (n, 28, 28) in [0, 1]: what the figures draw (gray, 0 white, 1 black)."""
    arr = _np(images)
    if arr.size % (SIDE * SIDE):
        raise ValueError(f"images must be (n, 784) or (n, 28, 28), got shape {arr.shape}")
    # 0..255 pixels would all be drawn black (the colour scale stops at 1), NaN white.
    if arr.size and not (arr.min() >= 0.0 and arr.max() <= 1.0):
        raise ValueError(f"pixel values must lie in [0, 1], got {arr.min():g} to {arr.max():g}; "
                         "scale uint8 images with vaelab.mnist.to_unit_float")
    return arr.reshape(-1, SIDE, SIDE)


def tile(images: torch.Tensor | np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """(n, 784) images -> one 2-D array, ncols per row, pad pixels of 0 (drawn white) between."""
    arr = _pixels(images)
    n = arr.shape[0]
    ncols = require_positive_int(ncols, "ncols")
    pad = require_int(pad, "pad", 0)
    if n == 0:
        raise ValueError(f"tile needs at least one image and ncols >= 1, got {n} and {ncols}")
    nrows = -(-n // ncols)
    step = SIDE + pad
    out = np.zeros((nrows * step - pad, ncols * step - pad), dtype=np.float32)
    for i, img in enumerate(arr):
        r, c = divmod(i, ncols)
        out[r * step : r * step + SIDE, c * step : c * step + SIDE] = img
    return out


def _show(ax, picture: np.ndarray, title: str = "") -> None:
    ax.imshow(picture, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)


def plot_digit_rows(rows: Sequence[torch.Tensor | np.ndarray], titles: Sequence[str],
                    width: float = 9.0) -> Figure:
    """One panel per row of digits, stacked: inputs over reconstructions, means over draws."""
    if len(rows) != len(titles) or not rows:
        raise ValueError("give one title per row of images, and at least one row")
    ncols = max(_np(r).reshape(-1, SIDE * SIDE).shape[0] for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, 1.15 * len(rows) * width / ncols + 0.4),
                             layout="constrained", squeeze=False)
    for ax, images, title in zip(axes[:, 0], rows, titles, strict=True):
        _show(ax, tile(images, ncols), title)
    return fig


def plot_training_curves(history: Sequence[dict], test: dict | None = None) -> Figure:
    """Per-epoch negative ELBO (left) and its two terms, reconstruction and KL (right)."""
    if not history:
        raise ValueError("history is empty: train for at least one epoch")
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    left.plot(epochs, [h["loss"] for h in history], "o-", label="train (during the epoch)")
    if test is not None:
        left.axhline(test["neg_elbo"], color="C3", ls="--", label="test, after training")
    left.set(xlabel="epoch", ylabel="nats per image", title="negative ELBO")
    left.legend()
    right.plot(epochs, [h["recon"] for h in history], "o-", color="C1", label="reconstruction")
    right.set(xlabel="epoch", ylabel="reconstruction (nats)", title="the two terms")
    twin = right.twinx()
    twin.plot(epochs, [h["kl"] for h in history], "s-", color="C2", label="KL(q || prior)")
    twin.set_ylabel("KL (nats)")
    right.legend(handles=right.get_lines() + twin.get_lines(), loc="center right")
    return fig


def plot_epoch_snapshots(inputs: torch.Tensor, history: Sequence[dict],
                         epochs: Sequence[int]) -> Figure:
    """Reconstructions of the same test digits after chosen epochs (record["snapshot"])."""
    by_epoch = {h["epoch"]: h for h in history}
    missing = [e for e in epochs if "snapshot" not in by_epoch.get(e, {})]
    if missing:
        raise ValueError(f"no snapshot recorded for epochs {missing}")
    rows = [inputs] + [by_epoch[e]["snapshot"] for e in epochs]
    return plot_digit_rows(rows, ["input"] + [f"after epoch {e}" for e in epochs])


def plot_latent_scatter(means: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                        ax=None) -> Figure:
    """Means of q(z|x) of a 2-D latent model, one point per image, coloured by digit."""
    z, y = _np(means), np.asarray(labels)
    if z.ndim != 2 or z.shape[1] != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"need means (N, 2) and labels (N,), got {z.shape} and {y.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5.2), layout="constrained")
    else:
        fig = ax.get_figure(root=True)
    points = ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", vmin=-0.5, vmax=9.5, s=3,
                        alpha=0.6, rasterized=True)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title="test images: means of q(z|x)")
    return fig


def plot_manifold(grid: torch.Tensor | np.ndarray, span: float) -> Figure:
    """The decoded manifold: grid (n, n, 784) of images over [-span, span]^2 of the plane."""
    arr = _np(grid)
    span = require_positive(span, "span")
    if arr.ndim != 3 or arr.shape[0] != arr.shape[1] or arr.shape[2] != SIDE * SIDE:
        raise ValueError(f"grid must be (n, n, 784) decoded images, got shape {arr.shape}")
    n = arr.shape[0]
    picture = tile(arr.reshape(n * n, -1), n, pad=0)
    fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
    ax.imshow(picture, cmap="gray_r", vmin=0, vmax=1, extent=(-span, span, -span, span))
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title="decoder means over a grid of the latent plane")
    return fig


def plot_iw_curve(curve: dict[int, float], elbo: float) -> Figure:
    """Importance-weighted bound against k (log scale) with the ELBO; the gap is their distance."""
    ks = sorted(curve)
    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    ax.semilogx(ks, [curve[k] for k in ks], "o-", label="importance-weighted bound $L_k$")
    ax.axhline(elbo, color="C3", ls="--", label="ELBO (one sample, many images)")
    ax.annotate("", xy=(ks[-1], curve[ks[-1]]), xytext=(ks[-1], elbo),
                arrowprops={"arrowstyle": "<->", "color": "0.3"})
    ax.text(ks[-1], (curve[ks[-1]] + elbo) / 2, f" gap {curve[ks[-1]] - elbo:.1f} nats ",
            ha="right", va="center")
    ax.set(xlabel="k (importance samples)", ylabel="nats per image",
           title="ln p(x) estimates rise with k towards the log-likelihood")
    ax.legend(loc="lower right")
    return fig


def plot_latent_explorer(means: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                         decoded: torch.Tensor | np.ndarray, z: tuple[float, float],
                         fig: Figure | None = None) -> Figure:
    """Left: the latent scatter with a marker at z; right: the image decoded at z."""
    if fig is None:
        fig = plt.figure(figsize=(8.5, 4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.4, 1])
    plot_latent_scatter(means, labels, ax=left)
    left.plot([z[0]], [z[1]], "k*", ms=16, mec="w", gid="z-marker")
    right.imshow(_np(decoded).reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=1,
                 gid="decoded")
    right.set_axis_off()
    right.set_title("decoded at the star")
    return fig


def update_latent_explorer(fig: Figure, z: tuple[float, float],
                           decoded: torch.Tensor | np.ndarray) -> None:
    """Move the marker to z and show the new decoded image (set_data: no new artists)."""
    marker, image = explorer_artists(fig)
    marker.set_data([z[0]], [z[1]])
    image.set_data(_np(decoded).reshape(SIDE, SIDE))


def explorer_artists(fig: Figure) -> tuple:
    """The two moving artists of plot_latent_explorer: (marker Line2D, decoded AxesImage)."""
    lines = [a for ax in fig.axes for a in ax.lines if a.get_gid() == "z-marker"]
    images = [a for ax in fig.axes for a in ax.images if a.get_gid() == "decoded"]
    if len(lines) != 1 or len(images) != 1:
        raise ValueError("this figure was not drawn by plot_latent_explorer")
    return lines[0], images[0]
