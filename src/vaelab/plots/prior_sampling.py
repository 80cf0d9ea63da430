"""Figure for notebook 04's "Why not sample z from the prior?": ln p(x) estimates against k.

The numbers come from ``vaelab.prior_sampling``; nothing is computed here beyond arranging them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_estimates_against_k(curves: Mapping[str, tuple[Sequence[int], np.ndarray]],
                             titles: Sequence[str]) -> Figure:
    """One panel per image: each sampler's ln p(x) estimate against k (log axis).

    curves: sampler name -> (ks, estimates (N, len(ks))), one row per image; titles: N.
    """
    n = len(titles)
    if n == 0 or any(np.shape(est) != (n, len(ks)) for ks, est in curves.values()):
        raise ValueError("each sampler needs estimates (N, len(ks)) for the N titles")
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), layout="constrained", squeeze=False)
    for i, ax in enumerate(axes[0]):
        for name, (ks, est) in curves.items():
            ax.plot(ks, np.asarray(est)[i], marker="o", ms=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("k (samples of z)")
        ax.set_title(titles[i], fontsize=10)
    axes[0, 0].set_ylabel("estimate of ln p(x) (nats)")
    axes[0, 0].legend(fontsize=8)
    return fig
