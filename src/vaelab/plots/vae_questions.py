"""Figures for notebook 05: latent codes side by side, KL per dimension, inference gaps, toy data.

Every ``plot_*`` returns its Figure. The numbers come from ``vaelab.collapse``,
``vaelab.inference_gaps`` and ``vaelab.gaussian_vae``; nothing is computed here beyond
arranging them. Digit images reuse notebook 04's ``vaelab.plots.vae.tile``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from vaelab.collapse import LatentUsage
from vaelab.inference_gaps import InferenceGaps
from vaelab.plots.vae import tile

# Radius of the disc holding 99% of a 2-D standard normal: sqrt(-2 ln 0.01).
PRIOR_99_RADIUS = float(np.sqrt(-2.0 * np.log(0.01)))


def _np(a: torch.Tensor | np.ndarray) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def plot_codes_side_by_side(
    codes: Sequence[torch.Tensor | np.ndarray],
    labels: torch.Tensor | np.ndarray,
    titles: Sequence[str],
) -> Figure:
    """One scatter per model of 2-D codes (N, 2), coloured by digit, with the prior's 99% disc."""
    if len(codes) != len(titles) or not codes:
        raise ValueError("give one title per set of codes, and at least one set")
    y = _np(labels)
    fig, axes = plt.subplots(1, len(codes), figsize=(4.2 * len(codes), 4.2), layout="constrained",
                             squeeze=False)
    for ax, z, title in zip(axes[0], codes, titles, strict=True):
        z = _np(z)
        if z.ndim != 2 or z.shape[1] != 2 or z.shape[0] != y.shape[0]:
            raise ValueError(f"codes must be (N, 2) with N = {y.shape[0]}, got {z.shape}")
        points = ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", vmin=-0.5, vmax=9.5, s=3,
                            alpha=0.6, rasterized=True)
        ax.add_patch(Circle((0, 0), PRIOR_99_RADIUS, fill=False, color="k", ls="--", lw=1.2,
                            label="99% of the prior N(0, I)"))
        reach = max(1.15 * PRIOR_99_RADIUS, float(np.abs(z).max()) * 1.05)
        ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal", title=title,
               xlabel="$z_1$", ylabel="$z_2$")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.colorbar(points, ax=axes[0].tolist(), ticks=range(10), label="digit", shrink=0.8)
    return fig


def plot_image_panels(
    grids: Sequence[torch.Tensor | np.ndarray], titles: Sequence[str], ncols: int
) -> Figure:
    """Panels side by side, each a tile of images (n, 784) with ncols per row."""
    if len(grids) != len(titles) or not grids:
        raise ValueError("give one title per panel, and at least one panel")
    fig, axes = plt.subplots(1, len(grids), figsize=(3.6 * len(grids), 3.8), layout="constrained",
                             squeeze=False)
    for ax, images, title in zip(axes[0], grids, titles, strict=True):
        ax.imshow(tile(images, ncols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
    return fig


def plot_kl_per_dimension(usages: Mapping[str, LatentUsage]) -> Figure:
    """Bars of KL(q(z_j|x) || N(0,1)) per latent dimension (sorted), one panel per model."""
    if not usages:
        raise ValueError("give at least one model's LatentUsage")
    fig, axes = plt.subplots(1, len(usages), figsize=(3.3 * len(usages), 3.0), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, (name, u) in zip(axes[0], usages.items(), strict=True):
        order = torch.argsort(u.kl_per_dim, descending=True)
        kl, active = _np(u.kl_per_dim[order]), _np(u.active[order])
        ax.bar(np.arange(kl.size), kl, color=np.where(active, "C0", "C7"))
        ax.set(title=f"{name}\n{u.n_active} active, KL {u.kl:.0f} nats",
               xlabel="latent dimension (sorted)")
    axes[0, 0].set_ylabel("KL per dimension (nats)")
    return fig


def plot_inference_gaps(gaps: InferenceGaps, history: Sequence[float]) -> Figure:
    """Left: the mean ELBO during the per-image optimisation. Right: per-image gaps."""
    if not history:
        raise ValueError("history is empty: record the optimisation (history=[])")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    left.plot(-np.asarray(history), color="C0", label="per-image q, during optimisation")
    left.axhline(gaps.encoder_elbo.mean, color="C1", ls="--", label="encoder's q (amortized)")
    left.axhline(gaps.local_elbo.mean, color="C2", ls=":", label="per-image q* (final)")
    left.axhline(gaps.log_likelihood.mean, color="C3", label="ln p(x), importance-sampled")
    left.set(xlabel="optimisation step", ylabel="nats per image (mean)",
             title="ELBO of q vs optimisation steps")
    left.legend(fontsize=8)
    bins = np.linspace(0, max(gaps.per_image_amortization.max(),
                              gaps.per_image_approximation.max()) * 1.02, 30)
    right.hist(gaps.per_image_amortization, bins=bins, alpha=0.6, label="amortization gap")
    right.hist(gaps.per_image_approximation, bins=bins, alpha=0.6, label="approximation gap")
    right.set(xlabel="nats", ylabel="images", title="the two gaps, per image")
    right.legend(fontsize=8)
    return fig


def plot_toy_samples(
    rows: Mapping[str, Sequence[np.ndarray]], titles: Sequence[str]
) -> Figure:
    """A row per data set: held-out data, then samples of each model (arrays (n, 2))."""
    if not rows:
        raise ValueError("give at least one data set")
    ncols = len(titles)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(3.3 * ncols, 3.3 * len(rows)),
                             layout="constrained", squeeze=False)
    for r, (name, clouds) in enumerate(rows.items()):
        if len(clouds) != ncols:
            raise ValueError(f"{name}: give one point cloud per title ({ncols}), got {len(clouds)}")
        reach = 1.2 * float(np.abs(_np(clouds[0])).max())
        for c, (pts, title) in enumerate(zip(clouds, titles, strict=True)):
            pts = _np(pts)
            ax = axes[r, c]
            ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color=f"C{c}", rasterized=True)
            ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal",
                   title=f"{name}: {title}")
    return fig
