"""Small synthetic data and models shared by the training, evaluation and accelerator tests."""

import torch
from torch import nn

from vaelab.decoder_likelihoods import Bernoulli
from vaelab.vae import VAE

D = 16


def synthetic_images(n: int = 256, seed: int = 0) -> torch.Tensor:
    """uint8 (n, D): two 'digits' (left half bright, right half bright) with grey noise."""
    gen = torch.Generator().manual_seed(seed)
    proto = torch.zeros(2, D)
    proto[0, : D // 2], proto[1, D // 2 :] = 220, 220
    which = torch.randint(0, 2, (n,), generator=gen)
    noise = torch.randint(0, 35, (n, D), generator=gen)
    return (proto[which] + noise).clamp(0, 255).to(torch.uint8)


def binary(n: int = 64, seed: int = 1) -> torch.Tensor:
    """Binary float images (n, D) drawn from synthetic_images."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=gen) * 255 < synthetic_images(n, seed)).float()


def small_model(seed: int = 0, **kwargs) -> VAE:
    torch.manual_seed(seed)
    return VAE(**{"latent_dim": 2, "hidden": (12,), "input_dim": D, **kwargs})


class ConvVAE(nn.Module):
    """A small convolutional VAE written the way a student would: not a vaelab.vae.VAE.

    Images of 4 x 4 pixels (D = 16) flattened; encode, decode and a likelihood are all it has.
    """

    def __init__(self, latent_dim: int = 2) -> None:
        super().__init__()
        self.likelihood = Bernoulli()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 16, 2 * latent_dim))
        self.deconv = nn.Sequential(nn.Linear(latent_dim, 4 * 16), nn.ReLU(),
                                    nn.Unflatten(1, (4, 4, 4)), nn.Conv2d(4, 1, 3, padding=1),
                                    nn.Flatten())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.conv(x.view(-1, 1, 4, 4)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(z)
