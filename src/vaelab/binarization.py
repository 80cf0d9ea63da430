"""Dynamic binarization: a fresh Bernoulli draw of every pixel, each time an image is used.

A grey pixel v in 0..255 becomes 1 with probability v / 255 (the dynamically binarized MNIST of
Salakhutdinov and Murray 2008); a float pixel p in [0, 1] becomes 1 with probability p.
Training binarizes every batch afresh with this function, and the test set is binarized once
with it (``vaelab.mnist.binarized_test_set``).
"""

from __future__ import annotations

import torch


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh binary draw of images (B, D): float32 0.0 / 1.0, on the images' device.

    uint8 pixels v: 1 with probability v / 255, by comparing each with a random byte level
    uniform on 0..254 (P(level < v) = v / 255 exactly, and no float copy of the images).
    Float pixels p in [0, 1]: 1 with probability p. Pass a seeded ``torch.Generator`` (on the
    images' device) to repeat a draw.
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"binarize expects a torch tensor of images (B, 784), got "
                         f"{type(images).__name__}")
    if images.ndim != 2:
        raise ValueError(f"binarize expects shape (B, D) such as (B, 784), got "
                         f"{tuple(images.shape)}; reshape with x.reshape(-1, 784)")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {generator!r}")
    if images.dtype == torch.uint8:
        levels = torch.randint(0, 255, images.shape, dtype=torch.uint8, generator=generator,
                               device=images.device)
        return (levels < images).float()
    if not images.is_floating_point():
        raise ValueError(f"binarize expects uint8 images (0..255) or float probabilities in "
                         f"[0, 1], got dtype {images.dtype}")
    if images.numel():
        lo, hi = torch.aminmax(images.detach())
        if not (lo >= 0 and hi <= 1):  # also false for NaN
            raise ValueError(f"binarize expects probabilities in [0, 1], got values from "
                             f"{lo.item():.4g} to {hi.item():.4g}")
    uniform = torch.rand(images.shape, generator=generator, device=images.device)
    return (uniform < images).float()
