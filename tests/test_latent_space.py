"""vaelab.latent_space: shapes, ranges and the geometry of grids and interpolations."""

import numpy as np
import pytest
import torch

from vaelab.latent_space import (
    decode_grid,
    decode_point,
    encode_means,
    interpolate,
    latent_grid,
    reconstruct,
    sample_prior,
)
from vaelab.vae import VAE


def model(latent_dim=2):
    torch.manual_seed(0)
    return VAE(latent_dim=latent_dim, hidden=(8,), input_dim=784).eval()


def test_reconstruct_decodes_the_mean():
    m, x = model(), (torch.rand(5, 784) < 0.5).float()
    mu, _ = m.encode(x)
    assert torch.allclose(reconstruct(m, x), torch.sigmoid(m.decode(mu)))


def test_encode_means_in_batches_equals_one_pass():
    m, x = model(), torch.rand(7, 784)
    assert torch.allclose(encode_means(m, x, batch_size=3), m.encode(x)[0], atol=1e-6)


def test_sample_prior_gives_probabilities_and_binary_draws():
    means, draws = sample_prior(model(3), 6, seed=1)
    assert means.shape == draws.shape == (6, 784)
    assert ((means > 0) & (means < 1)).all()
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    again, _ = sample_prior(model(3), 6, seed=1)
    assert torch.equal(means, again)
    numpy_seed, _ = sample_prior(model(3), np.int64(6), seed=np.int64(1))
    assert torch.equal(means, numpy_seed)


def test_latent_grid_layout():
    grid = latent_grid(3, span=2.0)
    assert grid.shape == (9, 2)
    assert grid[0].tolist() == [-2.0, 2.0]  # top-left: z1 low, z2 high
    assert grid[-1].tolist() == [2.0, -2.0]


def test_decode_grid_and_point_agree():
    m = model()
    grid = decode_grid(m, n=3, span=2.0)
    assert grid.shape == (3, 3, 784)
    assert torch.allclose(grid[0, 2], decode_point(m, (2.0, 2.0)), atol=1e-6)


def test_interpolation_starts_and_ends_at_the_two_images():
    m, x = model(), torch.rand(2, 784)
    path = interpolate(m, x[0], x[1], steps=5)
    assert path.shape == (5, 784)
    assert torch.allclose(path[0], reconstruct(m, x[:1])[0], atol=1e-6)
    assert torch.allclose(path[-1], reconstruct(m, x[1:])[0], atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="latent_dim 2"):
        decode_grid(model(3))
    with pytest.raises(ValueError, match="2 finite numbers"):
        decode_point(model(), (0.0, float("nan")))
    with pytest.raises(ValueError, match="2 finite numbers"):
        decode_point(model(), (0.0,))
    with pytest.raises(ValueError, match="n"):
        latent_grid(0)
    with pytest.raises(ValueError, match="steps"):
        interpolate(model(), torch.rand(784), torch.rand(784), steps=0)
