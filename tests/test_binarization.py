"""vaelab.binarization: dynamic binarization, exactly Bernoulli(v / 255) or Bernoulli(p)."""

import numpy as np
import pytest
import torch

from vaelab.binarization import binarize


def test_uint8_pixels_become_bernoulli_of_v_over_255():
    pixels = torch.tensor([[0, 1, 64, 128, 254, 255]], dtype=torch.uint8).repeat(100_000, 1)
    out = binarize(pixels, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and set(out.unique().tolist()) <= {0.0, 1.0}
    assert out[:, 0].sum() == 0 and out[:, 5].sum() == out.shape[0]
    assert torch.allclose(out.mean(dim=0), pixels[0].float() / 255, atol=0.005)


def test_the_byte_levels_are_uniform_on_0_to_254_so_the_comparison_is_exact():
    # Level v = 255 - j is on exactly when the random byte level is below it: P = v / 255.
    # Over all 256 grey values, the on-rate of v must be v / 255, including 254 (not 1).
    pixels = torch.arange(256, dtype=torch.uint8).repeat(20_000, 1)
    rate = binarize(pixels, torch.Generator().manual_seed(1)).mean(dim=0).double()
    expected = torch.arange(256, dtype=torch.float64) / 255
    sd = (expected * (1 - expected) / 20_000).sqrt().clamp(min=1e-12)
    assert float(((rate - expected) / sd).abs().max()) < 5
    assert rate[0] == 0 and rate[255] == 1


def test_float_probabilities_become_bernoulli_of_p():
    probs = torch.tensor([[0.0, 0.3, 1.0]]).repeat(100_000, 1)
    out = binarize(probs, torch.Generator().manual_seed(0))
    assert out[:, 0].sum() == 0 and out[:, 2].sum() == out.shape[0]
    assert torch.allclose(out.mean(dim=0), probs[0], atol=0.005)
    edges = binarize(torch.tensor([[0.0, 1.0, 0.0, 1.0]], dtype=torch.float64))
    assert edges.dtype == torch.float32 and edges.tolist() == [[0.0, 1.0, 0.0, 1.0]]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_each_call_draws_afresh_and_a_generator_repeats_a_draw(dtype):
    images = torch.full((200, 784), 77, dtype=torch.uint8)
    images = images if dtype == torch.uint8 else images.float() / 255
    assert not torch.equal(binarize(images), binarize(images))
    a = binarize(images, generator=torch.Generator().manual_seed(5))
    b = binarize(images, generator=torch.Generator().manual_seed(5))
    c = binarize(images, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.zeros(2, 784, dtype=torch.int64), "uint8 images"),
        (torch.zeros(784), r"shape \(B, D\)"),
        (torch.full((1, 4), 1.5), "in \\[0, 1\\]"),
        (torch.full((1, 4), -0.1), "in \\[0, 1\\]"),
        (torch.tensor([[0.5, float("nan")]]), "in \\[0, 1\\]"),
        (np.zeros((1, 4)), "torch tensor"),
    ],
)
def test_bad_input_is_refused(images, match):
    with pytest.raises(ValueError, match=match):
        binarize(images)


def test_a_bad_generator_is_refused():
    with pytest.raises(ValueError, match="torch.Generator"):
        binarize(torch.zeros(1, 4), generator=0)
