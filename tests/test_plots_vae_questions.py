"""vaelab.plots.vae_questions: each figure draws the numbers it is given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

from vaelab.collapse import LatentUsage  # noqa: E402
from vaelab.elbo import Estimate  # noqa: E402
from vaelab.inference_gaps import InferenceGaps  # noqa: E402
from vaelab.plots import vae_questions as P  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_prior_radius_holds_99_percent_of_a_2d_standard_normal():
    z = np.random.default_rng(0).standard_normal((200_000, 2))
    assert abs((np.linalg.norm(z, axis=1) < P.PRIOR_99_RADIUS).mean() - 0.99) < 0.001


def test_codes_panels_show_every_code_and_the_prior_disc():
    codes = [torch.randn(50, 2), 10 * torch.randn(50, 2)]
    fig = P.plot_codes_side_by_side(codes, torch.arange(50) % 10, ["a", "b"])
    panels = [ax for ax in fig.axes if ax.get_title() in ("a", "b")]
    assert len(panels) == 2
    for ax, z in zip(panels, codes, strict=True):
        np.testing.assert_allclose(ax.collections[0].get_offsets(), z.numpy())
        circle = next(p for p in ax.patches if isinstance(p, Circle))
        assert circle.get_radius() == pytest.approx(P.PRIOR_99_RADIUS)
        assert ax.get_xlim()[1] >= np.abs(z.numpy()).max()


def test_image_panels_tile_each_grid():
    grids = [torch.rand(16, 784), torch.rand(16, 784)]
    fig = P.plot_image_panels(grids, ["x", "y"], ncols=4)
    assert [ax.get_title() for ax in fig.axes] == ["x", "y"]
    assert fig.axes[0].images[0].get_array().shape == (4 * 29 - 1, 4 * 29 - 1)


def test_kl_bars_are_sorted_and_coloured_by_activity():
    kl = torch.tensor([0.0, 2.0, 0.5])
    u = LatentUsage(kl, torch.tensor([0.0, 1.0, 0.2]), torch.tensor([False, True, True]))
    fig = P.plot_kl_per_dimension({"m": u})
    heights = [b.get_height() for b in fig.axes[0].patches]
    assert heights == [2.0, 0.5, 0.0]
    assert "2 active" in fig.axes[0].get_title()


def test_gap_figure_draws_history_and_both_histograms():
    est = Estimate(-100.0, 0.1, 10)
    gaps = InferenceGaps(est, Estimate(-98.0, 0.1, 10), Estimate(-97.0, 0.1, 10),
                         Estimate(2.0, 0.1, 10), Estimate(1.0, 0.1, 10),
                         np.array([1.0, 3.0]), np.array([0.5, 1.5]))
    fig = P.plot_inference_gaps(gaps, [101.0, 99.0, 98.0])
    left, right = fig.axes
    np.testing.assert_allclose(left.lines[0].get_ydata(), [-101.0, -99.0, -98.0])
    assert sum(p.get_height() for p in right.patches) == 4


def test_toy_samples_one_panel_per_cloud():
    clouds = [np.zeros((5, 2)) + 1, np.zeros((7, 2))]
    fig = P.plot_toy_samples({"ring": clouds}, ["data", "model"])
    assert [ax.get_title() for ax in fig.axes] == ["ring: data", "ring: model"]
    assert len(fig.axes[1].collections[0].get_offsets()) == 7


@pytest.mark.parametrize("call, match", [
    (lambda: P.plot_codes_side_by_side([], [], []), "at least one"),
    (lambda: P.plot_codes_side_by_side([torch.zeros(3, 3)], torch.zeros(3), ["a"]), r"\(N, 2\)"),
    (lambda: P.plot_image_panels([torch.rand(4, 784)], ["a", "b"], 2), "one title per panel"),
    (lambda: P.plot_kl_per_dimension({}), "at least one"),
    (lambda: P.plot_toy_samples({"r": [np.zeros((2, 2))]}, ["a", "b"]), "one point cloud"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
