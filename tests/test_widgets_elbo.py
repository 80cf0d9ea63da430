"""vaelab.widgets.elbo: sliders drive the readout and the picture; stable names for e2e tests."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.latent_models import LinearGaussianModel
from vaelab.plots.elbo import elbo_readout
from vaelab.widgets.elbo import elbo_explorer, slider_positions

MODEL = LinearGaussianModel([[1.5]], [0.5], 0.8)
X = np.array([2.0])


def test_sliders_update_readout_and_image():
    e = elbo_explorer(MODEL, X, precompute=False)
    assert e.mean_slider.description == "q mean" and e.log_std_slider.description == "q log-std"
    assert "vaelab-readout" in e.readout._dom_classes
    assert e.readout.value == elbo_readout(MODEL, X, 0.0, 0.0)
    before = e.image.value
    e.mean_slider.value = 0.8
    e.log_std_slider.value = -0.75
    assert e.readout.value == elbo_readout(MODEL, X, 0.8, -0.75)
    assert e.image.value != before
    # Near the exact posterior N(0.7785, 0.4706^2) the gap nearly closes.
    gap = float(e.readout.value.rsplit("=", 1)[1])
    assert gap < 0.01


def test_curves_are_cached_per_log_std():
    e = elbo_explorer(MODEL, X, precompute=False)
    e.mean_slider.value = 1.0
    e.mean_slider.value = -1.0
    assert len(e._curves) == 1  # moving the mean never recomputes the curve
    e.log_std_slider.value = -1.0
    assert len(e._curves) == 2


def test_bad_input():
    with pytest.raises(ValueError, match="one-dimensional"):
        elbo_explorer(LinearGaussianModel(np.eye(2), [0.0, 0.0], 1.0), [0.0, 0.0])
    with pytest.raises(ValueError, match="mean must be in"):
        elbo_explorer(MODEL, X, mean=10.0)
    with pytest.raises(ValueError, match="finite"):
        elbo_explorer(MODEL, X, log_std=float("nan"))


def test_slider_positions_cover_the_range_on_the_step():
    pos = slider_positions(-3.0, 1.0, 0.05)
    assert pos.shape == (81,) and pos[0] == -3.0 and pos[-1] == 1.0
    assert np.allclose(np.diff(pos), 0.05)
    assert slider_positions(0.0, 0.12, 0.05).tolist() == [0.0, 0.05, 0.1]
    with pytest.raises(ValueError, match="high must be"):
        slider_positions(1.0, 0.0, 0.05)
    with pytest.raises(ValueError, match="step"):
        slider_positions(0.0, 1.0, 0.0)


def test_precompute_fills_the_cache_and_axes_stay_fixed():
    e = elbo_explorer(MODEL, X)  # precomputes by default
    assert len(e._curves) == 81
    ylim = e.figure.axes[1].get_ylim()
    e.log_std_slider.value = -2.0
    e.mean_slider.value = 2.0
    assert len(e._curves) == 81  # every slider position was already there
    assert e.figure.axes[1].get_ylim() == ylim  # no rescale, so no redraw of the axes
    assert e.readout.value == elbo_readout(MODEL, X, 2.0, -2.0)
