"""vaelab.plots.prior_sampling: one panel per image, one line per sampler."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from vaelab.plots.prior_sampling import plot_estimates_against_k


def test_one_panel_per_image_one_line_per_sampler():
    curves = {"prior": ([1, 10, 100], np.zeros((2, 3))), "q": ([1, 10], np.ones((2, 2)))}
    fig = plot_estimates_against_k(curves, ["a", "b"])
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    np.testing.assert_array_equal(fig.axes[1].lines[1].get_ydata(), [1.0, 1.0])
    plt.close(fig)


def test_shapes_must_match_titles():
    with pytest.raises(ValueError, match="N titles"):
        plot_estimates_against_k({"prior": ([1, 10], np.zeros((3, 2)))}, ["a", "b"])
