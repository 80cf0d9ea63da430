"""vaelab.plots.vae: figures hold the data they were given; the explorer updates in place."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaelab.plots import vae as vp  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_tile_places_images_in_rows():
    images = torch.zeros(3, 784)
    images[1] = 1.0
    picture = vp.tile(images, ncols=2, pad=1)
    assert picture.shape == (28 * 2 + 1, 28 * 2 + 1)
    assert picture[:28, 29:].min() == 1.0 and picture[:28, :28].max() == 0.0
    assert picture[:, 28].max() == 0.0  # the padding is blank (white under gray_r)
    with pytest.raises(ValueError, match="at least one image"):
        vp.tile(torch.zeros(0, 784), 2)


def test_digit_rows_one_panel_per_row():
    fig = vp.plot_digit_rows([torch.rand(4, 784), torch.rand(4, 784)], ["a", "b"])
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    with pytest.raises(ValueError, match="one title per row"):
        vp.plot_digit_rows([torch.rand(4, 784)], ["a", "b"])


HISTORY = [{"epoch": e, "loss": 110 - e, "recon": 90 - e, "kl": 20.0 + e / 10,
            "snapshot": torch.rand(3, 784)} for e in (1, 2, 3)]


def test_training_curves_plot_the_history():
    fig = vp.plot_training_curves(HISTORY, {"neg_elbo": 100.0})
    left = fig.axes[0]
    assert list(left.lines[0].get_ydata()) == [109, 108, 107]
    assert left.lines[1].get_ydata()[0] == 100.0
    kl_line = fig.axes[2].lines[0]
    assert list(kl_line.get_ydata()) == [20.1, 20.2, 20.3]
    with pytest.raises(ValueError, match="history is empty"):
        vp.plot_training_curves([])


def test_epoch_snapshots():
    fig = vp.plot_epoch_snapshots(torch.rand(3, 784), HISTORY, [1, 3])
    assert [ax.get_title() for ax in fig.axes] == ["input", "after epoch 1", "after epoch 3"]
    with pytest.raises(ValueError, match=r"\[5\]"):
        vp.plot_epoch_snapshots(torch.rand(3, 784), HISTORY, [1, 5])


def test_latent_scatter_and_manifold():
    means, labels = torch.randn(50, 2), torch.randint(0, 10, (50,))
    fig = vp.plot_latent_scatter(means, labels)
    offsets = fig.axes[0].collections[0].get_offsets()
    assert np.allclose(np.asarray(offsets), means.numpy())
    with pytest.raises(ValueError, match="means"):
        vp.plot_latent_scatter(torch.randn(5, 3), torch.zeros(5))
    fig = vp.plot_manifold(torch.rand(4, 4, 784), span=2.0)
    assert fig.axes[0].images[0].get_extent() == [-2.0, 2.0, -2.0, 2.0]


def test_iw_curve_and_gap_label():
    fig = vp.plot_iw_curve({1: -100.0, 10: -97.0, 100: -96.0}, elbo=-100.2)
    ax = fig.axes[0]
    assert list(ax.lines[0].get_ydata()) == [-100.0, -97.0, -96.0]
    assert any("gap 4.2 nats" in t.get_text() for t in ax.texts)


def test_explorer_updates_marker_and_image_in_place():
    fig = vp.plot_latent_explorer(torch.randn(30, 2), torch.randint(0, 10, (30,)),
                                  torch.zeros(784), (0.0, 0.0))
    marker, image = vp.explorer_artists(fig)
    n_artists = sum(len(ax.get_children()) for ax in fig.axes)
    vp.update_latent_explorer(fig, (1.0, -2.0), torch.ones(784))
    assert list(marker.get_xdata()) == [1.0] and list(marker.get_ydata()) == [-2.0]
    assert np.asarray(image.get_array()).min() == 1.0
    assert sum(len(ax.get_children()) for ax in fig.axes) == n_artists
    with pytest.raises(ValueError, match="plot_latent_explorer"):
        vp.explorer_artists(plt.figure())


# Before: 0..255 pixels were drawn all black and NaN white without a word, a float ncols or
# a wrong image size gave NumPy's errors, a negative span flipped the manifold's axes.
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: vp.tile(np.full((2, 784), 255.0), 2), ValueError,
         r"pixel values must lie in \[0, 1\], got 255 to 255; scale uint8"),
        (lambda: vp.tile(np.full((2, 784), np.nan), 2), ValueError, "pixel values"),
        (lambda: vp.tile(np.zeros((2, 700)), 2), ValueError, r"\(n, 784\) or \(n, 28, 28\)"),
        (lambda: vp.tile(np.zeros((2, 784)), 2.5), ValueError, "ncols must be an integer"),
        (lambda: vp.tile(np.zeros((2, 784)), 2, pad=-1), ValueError, "pad must be an integer >= 0"),
        (lambda: vp.tile(np.zeros((2, 784), dtype=bool), 2), TypeError, "images must be real"),
        (lambda: vp.plot_manifold(np.zeros((2, 2, 784)), -3.0), ValueError, "span must be"),
        (lambda: vp.plot_manifold(np.zeros((2, 3, 784)), 3.0), ValueError, r"\(n, n, 784\)"),
    ],
)
def test_images_and_sizes_are_checked_before_drawing(call, error, message):
    with pytest.raises(error, match=message):  # figures are closed by the module's fixture
        call()
