"""What a trained VAE's latent space gives back: reconstructions, prior samples, grids, paths.

Plain tensor functions behind notebook 04's figures and its latent explorer widget
(vaelab.widgets.vae), tested directly. What a decoder "gives back" at z is the mean of
p(x|z) (``model.likelihood.mean``): pixel probabilities for a Bernoulli decoder, the
Gaussian's mean for real-valued data.
"""

from __future__ import annotations

import torch

from vaelab.evaluation import device_and_dtype
from vaelab.vae import VAE, check_model, mode_kept
from vaelab.validation import require_int, require_positive, require_positive_int


def _inputs(model: VAE, t: torch.Tensor) -> torch.Tensor:
    """Images or latent points as the model takes them: on its device, in its dtype."""
    device, dtype = device_and_dtype(model)
    return torch.as_tensor(t).to(device, dtype)


@torch.inference_mode()
def reconstruct(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """The mean of p(x|z) (B, D) at z = the mean of q(z|x), for images x (B, D)."""
    x = _inputs(model, x)
    check_model(model, x)
    with mode_kept(model):
        mu, _ = model.eval().encode(x)
        return model.likelihood.mean(model.decode(mu))


@torch.inference_mode()
def encode_means(model: VAE, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """The means of q(z|x), (N, d), for images x (N, D), in batches."""
    batch_size = require_positive_int(batch_size, "batch_size")
    check_model(model, _inputs(model, x[:2]))
    with mode_kept(model):
        return torch.cat([model.eval().encode(_inputs(model, x[i : i + batch_size]))[0]
                          for i in range(0, x.shape[0], batch_size)])


@torch.inference_mode()
def sample_prior(
    model: VAE, n: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws z ~ N(0, I) decoded: (means of p(x|z) (n, D), draws x ~ p(x|z) (n, D)).

    The mean is what the decoder believes (pixel probabilities for a Bernoulli decoder);
    the draw is a sample of x itself (binary pixels for a Bernoulli decoder).
    """
    n = require_positive_int(n, "n")
    gen = torch.Generator().manual_seed(require_int(seed, "seed", 0))
    z = torch.randn(n, model.latent_dim, generator=gen)
    with mode_kept(model):
        params = model.eval().decode(_inputs(model, z)).cpu()
    return model.likelihood.mean(params), model.likelihood.sample(params, generator=gen)


def latent_grid(n: int, span: float = 3.0) -> torch.Tensor:
    """(n * n, 2) points of a regular grid on [-span, span]^2, rows from top (z2 high) down."""
    n = require_positive_int(n, "n")
    span = require_positive(span, "span")
    ticks = torch.linspace(-span, span, n)
    z2, z1 = torch.meshgrid(ticks.flip(0), ticks, indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


@torch.inference_mode()
def decode_grid(model: VAE, n: int = 15, span: float = 3.0) -> torch.Tensor:
    """The decoded manifold of a 2-D latent model: probabilities (n, n, D) over latent_grid."""
    if model.latent_dim != 2:
        raise ValueError(f"the manifold needs a model with latent_dim 2, got {model.latent_dim}")
    with mode_kept(model):
        params = model.eval().decode(_inputs(model, latent_grid(n, span)))
    return model.likelihood.mean(params).reshape(n, n, -1)


@torch.inference_mode()
def decode_point(model: VAE, z: tuple[float, ...] | list[float]) -> torch.Tensor:
    """Pixel probabilities (D,) decoded at one latent point z (d numbers): the widget's update."""
    point = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
    if point.shape[1] != model.latent_dim or not torch.isfinite(point).all():
        raise ValueError(f"z must be {model.latent_dim} finite numbers, got {z!r}")
    with mode_kept(model):
        return model.likelihood.mean(model.eval().decode(_inputs(model, point)))[0]


@torch.inference_mode()
def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10
                ) -> torch.Tensor:
    """Decode (steps, D) along the straight line between the means of q(z|x_a) and q(z|x_b)."""
    steps = require_positive_int(steps, "steps")
    ends = encode_means(model, torch.stack([x_a.reshape(-1), x_b.reshape(-1)]))
    t = _inputs(model, torch.linspace(0, 1, steps)[:, None])
    with mode_kept(model):
        return model.likelihood.mean(model.eval().decode((1 - t) * ends[0] + t * ends[1]))
