"""vaelab.batches: dynamic binarization, exactly Bernoulli(v / 255) or Bernoulli(p)."""

import numpy as np
import torch

from vaelab.batches import binarize_batch, uniform_levels


def test_uniform_levels_are_uniform_on_0_to_254_so_the_comparison_is_bernoulli():
    rng = np.random.Generator(np.random.PCG64(0))
    levels = uniform_levels(2000, 784, rng)
    assert levels.dtype == torch.uint8 and levels.shape == (2000, 784)
    assert int(levels.max()) == 254 and int(levels.min()) == 0  # never 255: P(r < 255) = 1
    counts = torch.bincount(levels.reshape(-1).long(), minlength=256).double()
    expected = levels.numel() / 255
    # chi-square over the 255 levels: mean 254, sd ~22.5; a 1/256 bias would add ~6000.
    assert float(((counts[:255] - expected) ** 2 / expected).sum()) < 400
    again = uniform_levels(2000, 784, np.random.Generator(np.random.PCG64(0)))
    assert torch.equal(levels, again)  # seeded: reproducible


def test_binarization_is_bernoulli_of_the_intensity():
    rng = np.random.default_rng(0)
    pixels = torch.tensor([[0, 1, 64, 128, 254, 255]], dtype=torch.uint8).repeat(100_000, 1)
    out = binarize_batch(pixels, rng)
    assert out.dtype == torch.float32 and set(out.unique().tolist()) <= {0.0, 1.0}
    assert out[:, 0].sum() == 0 and out[:, 5].sum() == out.shape[0]
    assert torch.allclose(out.mean(dim=0), pixels[0].float() / 255, atol=0.005)
    probs = torch.tensor([[0.0, 0.3, 1.0]]).repeat(100_000, 1)
    out = binarize_batch(probs, rng)
    assert out[:, 0].sum() == 0 and out[:, 2].sum() == out.shape[0]
    assert torch.allclose(out.mean(dim=0), probs[0], atol=0.005)
