"""Dynamic binarization of a training batch: a fresh Bernoulli draw of every pixel, each step.

A grey pixel v in 0..255 becomes 1 with probability v / 255 (Salakhutdinov and Murray 2008's
dynamically binarized MNIST). For uint8 images the draw compares the pixels with random
levels uniform on 0..254, made from raw random bytes: P(level < v) = v / 255 exactly, with no
float copy of the images and far cheaper than a float uniform per pixel (torch.bernoulli is
several times slower on the CPU). Both training steps get their batches from here.
"""

from __future__ import annotations

import numpy as np
import torch


def uniform_levels(n: int, d: int, rng: np.random.Generator) -> torch.Tensor:
    """uint8 (n, d), each entry uniform on 0..254 and independent: level < v is Bernoulli(v / 255).

    Random bytes are uniform on 0..255; each 255 (1 in 256) is replaced by a fresh uniform
    draw on 0..254, which makes every entry exactly uniform on 0..254.
    """
    size = n * d
    # Raw 64-bit words seen as bytes: each byte uniform on 0..255 (several times faster
    # than Generator.bytes or a bounded integers draw).
    raw = rng.bit_generator.random_raw(-(-size // 8)).view(np.uint8)[:size]
    high = np.flatnonzero(raw == 255)
    raw[high] = rng.integers(0, 255, size=high.size, dtype=np.uint8)
    return torch.from_numpy(raw).reshape(n, d)


def binarize_batch(batch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A fresh binary draw of a batch (B, D): uint8 pixel v -> 1 with probability v / 255,
    float pixel p in [0, 1] -> 1 with probability p. Returns float32 0.0 / 1.0, on batch's device.
    """
    n, d = batch.shape
    if batch.dtype == torch.uint8:
        return (uniform_levels(n, d, rng).to(batch.device) < batch).float()
    uniform = torch.from_numpy(rng.random((n, d), dtype=np.float32)).to(batch.device)
    return (uniform < batch).float()
