"""Training, evaluation (ELBO terms, importance-sampled log-likelihood) and checkpoints for the VAE.

The data set lives in memory as one uint8 tensor (N, D). An epoch is a seeded
permutation; each batch is gathered from it, binarized afresh (dynamic binarization)
and pushed through the model, whose gradients are written out by hand
(vaelab.vae_gradients, checked against autograd). No per-image Python work, no
DataLoader, and no host-device synchronisation inside an epoch: the metrics are
summed on the device and read once per epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.optim import LayerwiseAdam
from vaelab.progress import progress_bar
from vaelab.vae import VAE, vae_loss
from vaelab.vae_gradients import backward_groups, gradient_step
from vaelab.validation import require_positive, require_positive_int

# Notebook 04's default model and how it trains: one copy, read by the notebook (through
# train_or_load) and by `make bench`. Measured on 784-400-20 with dynamic binarization (test
# -ELBO / IS NLL with k = 1000, `make bench`'s targets 100 / 94): a constant lr 1e-3 gives
# -ELBO 100.0 after 20 epochs; lr 3e-3 decayed to 0 along a cosine gives 98.5 / 93.7 after
# 18 epochs, 98.1 / 93.5 after 20, 97.8 / 93.1 after 24 and 97.2 / 92.6 after 30, at about
# 0.8-1 s an epoch on the 2-core machine. 24 keeps most of a nat of margin on the NLL in
# about 20 s. Batch 256 makes epochs ~20% cheaper but needs ~20% more of them.
NOTEBOOK_MODEL = {"latent_dim": 20, "hidden": [400], "input_dim": 784, "activation": "relu"}
NOTEBOOK_TRAINING = {
    "epochs": 24,
    "batch_size": 128,
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "init_output_bias": True,
    "seed": 0,
}

# Batches gathered and binarized in one go: at batch 128, buffers of 1.6 MB of bytes and
# 6.4 MB of floats; measured in a copy of this loop, 110-125 us of preparation a step instead
# of 165 (the epoch gains less than that: the batch is no longer hot in cache when used).
BATCHES_PER_DRAW = 16

FloatOrSchedule = float | Callable[[int], float]
IntOrSchedule = int | Callable[[int], int]


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the epoch and a remedy."""


def pick_device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_images(
    images: torch.Tensor, input_dim: int, name: str = "images", allow_uint8: bool = True
) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 2 or images.shape[1] != input_dim or images.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (N, {input_dim}) with N >= 1, got {tuple(images.shape)}"
        )
    if not images.is_floating_point() and not (allow_uint8 and images.dtype == torch.uint8):
        kinds = "uint8 (0..255) or float in [0, 1]" if allow_uint8 else "float in {0, 1}"
        raise ValueError(
            f"{name} must be {kinds}, got {images.dtype}"
            + ("" if allow_uint8 else ": use vaelab.mnist.binarized_test_set or binarize")
        )
    if images.is_floating_point() and not bool(((images >= 0) & (images <= 1)).all()):
        raise ValueError(
            f"float {name} must be probabilities in [0, 1] (NaN not allowed): "
            "divide uint8 images by 255 with vaelab.mnist.to_unit_float"
        )


def _binarize_into(out: torch.Tensor, batch: torch.Tensor, generator: torch.Generator) -> None:
    """Dynamic binarization: out <- Bernoulli(pixel intensity), a fresh draw per call.

    For uint8 pixels v, u ~ U[0, 1) gives P(255 u < v) = v / 255 with no float copy of the
    images; torch.bernoulli is several times slower on the CPU.
    """
    torch.rand(out.shape, generator=generator, device=out.device, out=out)
    if batch.dtype == torch.uint8:
        out.mul_(255.0)
    torch.lt(out, batch, out=out)  # writes 1.0 / 0.0 into the float buffer in place


def _uniform_levels(n: int, d: int, rng: np.random.Generator) -> torch.Tensor:
    """uint8 (n, d), each entry uniform on 0..254 and independent: r < v is Bernoulli(v / 255).

    Random bytes are uniform on 0..255; each 255 (1 in 256) is replaced by a fresh uniform
    draw on 0..254, which makes every entry exactly uniform on 0..254. A batch costs one bulk
    byte draw, far cheaper than a float uniform per pixel.
    """
    size = n * d
    # Raw 64-bit words seen as bytes: each byte uniform on 0..255 (several times faster
    # than Generator.bytes or a bounded integers draw).
    raw = rng.bit_generator.random_raw(-(-size // 8)).view(np.uint8)[:size]
    high = np.flatnonzero(raw == 255)
    raw[high] = rng.integers(0, 255, size=high.size, dtype=np.uint8)
    return torch.from_numpy(raw).reshape(n, d)


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats (below 1.2e-38) as zero on the CPU inside the block.

    During training, Adam's moment estimates for weights that rarely get a gradient (pixels
    that are almost never on) decay by 0.9 a step into denormals, and arithmetic on those
    takes the slow path: the Adam update runs about twice as slow. Flushing them to zero
    changes no result that matters. Turned off again afterwards (PyTorch's default).
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


def _value_at(schedule: FloatOrSchedule | IntOrSchedule, epoch: int) -> Any:
    return schedule(epoch) if callable(schedule) else schedule


def train(
    model: VAE,
    images: torch.Tensor,
    *,
    epochs: int,
    batch_size: IntOrSchedule = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
    kl_weight: FloatOrSchedule = 1.0,
    progress: bool = True,
    free_bits: float = 0.0,
    lr_schedule: str = "constant",
    lr_final: float = 0.0,
    on_epoch: Callable[[VAE, dict], None] | None = None,
    init_output_bias: bool = False,
    recon_weight: float = 1.0,
) -> list[dict]:
    """Train ``model`` with Adam on ``images`` (uint8 (N, D), or float probabilities in [0, 1]).

    batch_size and kl_weight may be callables of the epoch (1-based). lr_schedule:
    "constant", or "cosine" (per step, from lr down to lr_final over all epochs).
    on_epoch(model, record) runs after each epoch (for figures). init_output_bias sets
    the decoder's output bias to the logit of the mean training image first. recon_weight
    scales the reconstruction term in the loss (0: train on the KL alone). Returns one dict per
    epoch: epoch, loss, recon, kl (means per image), seconds, lr (at the epoch's end),
    batch_size. Raises NonFiniteLossError if the loss becomes NaN or infinite.
    """
    epochs = require_positive_int(epochs, "epochs")
    lr = require_positive(lr, "lr")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    if free_bits < 0:
        raise ValueError(f"free_bits must be >= 0 nats per latent dimension, got {free_bits!r}")
    if not (isinstance(recon_weight, int | float) and math.isfinite(recon_weight)
            and recon_weight >= 0):
        raise ValueError(f"recon_weight must be a finite number >= 0, got {recon_weight!r}")
    _check_images(images, model.input_dim)
    device = torch.device(device) if device is not None else pick_device()
    model.to(device).train()
    data = images.to(device)
    if init_output_bias:
        mean = data.float().mean(dim=0)
        model.init_output_bias(mean / 255.0 if data.dtype == torch.uint8 else mean)
    n = data.shape[0]
    shuffle_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)  # float images only
    levels_rng = np.random.Generator(np.random.PCG64(seed + 1))  # uint8 images
    torch.manual_seed(seed)  # the reparameterization noise uses the global generator
    # Adam inside backpropagation (vaelab.optim): the decoder's layers are updated as soon as
    # the backward pass has left the decoder, the encoder's at the end of it.
    opt = LayerwiseAdam(backward_groups(model), lr=lr)
    # The gradients of vae_loss, backpropagated by hand (checked against autograd in
    # tests/test_vae_gradients.py): no graph to record and walk.
    backprop = gradient_step(model)
    sizes = [require_positive_int(_value_at(batch_size, e), "batch_size") for e in
             range(1, epochs + 1)]
    total_steps, step = sum(math.ceil(n / b) for b in sizes), 0
    d = model.latent_dim
    history: list[dict] = []
    bar = progress_bar(range(1, epochs + 1), enabled=progress, desc="training", unit="epoch")
    with flush_denormals():
        for epoch in bar:
            start = time.perf_counter()
            beta = float(_value_at(kl_weight, epoch))
            bsz = sizes[epoch - 1]
            order = torch.randperm(n, generator=shuffle_gen).to(device)
            # Batches are gathered and binarized BATCHES_PER_DRAW at a time into reused
            # buffers: a few calls for that many steps instead of a few per step (a whole
            # shuffled copy of the data set per epoch costs more).
            chunk = bsz * BATCHES_PER_DRAW
            rows = torch.empty(chunk, data.shape[1], dtype=data.dtype, device=device)
            buf = torch.empty(chunk, data.shape[1], device=device)
            terms: list[torch.Tensor] = []  # (recon, kl) summed over each batch's images
            for c in range(0, n, chunk):
                idx = order[c : c + chunk]
                batches = torch.index_select(data, 0, idx, out=rows[: idx.shape[0]])
                xs = buf[: idx.shape[0]]
                if data.dtype == torch.uint8:
                    levels = _uniform_levels(idx.shape[0], data.shape[1], levels_rng).to(device)
                    torch.lt(levels, batches, out=xs)  # Bernoulli(v / 255), in place
                else:
                    _binarize_into(xs, batches, noise_gen)
                noise = torch.randn(xs.shape[0], d, device=device)
                for i in range(0, xs.shape[0], bsz):
                    if lr_schedule == "cosine":
                        frac = step / max(total_steps - 1, 1)
                        opt.lr = lr_final + (lr - lr_final) * 0.5 * (1 + math.cos(math.pi * frac))
                    recon_sum, kl_sum = backprop(
                        xs[i : i + bsz], noise[i : i + bsz], kl_weight=beta,
                        recon_weight=recon_weight, free_bits=free_bits, on_layer_done=opt.step)
                    terms += (recon_sum, kl_sum)
                    step += 1
            # the epoch's one synchronisation
            recon, kl = (v / n for v in torch.stack(terms).view(-1, 2).sum(dim=0).tolist())
            loss = recon + kl
            if not all(math.isfinite(v) for v in (loss, recon, kl)):
                bar.close()
                raise NonFiniteLossError(
                    f"training stopped at epoch {epoch} of {epochs}: the loss became non-finite "
                    f"(loss={loss}, recon={recon}, kl={kl}); the model's weights are now unusable. "
                    f"Lower the learning rate (lr={lr:g}; try {lr / 10:g}), check that the images "
                    "are uint8 in 0..255 or probabilities in [0, 1], and that kl_weight is finite."
                )
            record = {
                "epoch": epoch,
                "loss": loss,
                "recon": recon,
                "kl": kl,
                "seconds": time.perf_counter() - start,
                "lr": opt.lr,
                "batch_size": bsz,
            }
            history.append(record)
            bar.set_postfix(loss=f"{loss:.2f}", recon=f"{recon:.2f}", kl=f"{kl:.2f}")
            if on_epoch is not None:
                model.eval()
                on_epoch(model, record)
                model.train()
    model.eval()
    return history


@torch.inference_mode()
def evaluate(
    model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Single-sample negative ELBO and its two terms, means per image, on binary x (N, D).

    Returns dict(neg_elbo=, recon=, kl=) in nats per image. seed fixes the one z per image.
    """
    _check_images(x, model.input_dim, "x", allow_uint8=False)
    batch_size = require_positive_int(batch_size, "batch_size")
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    recon_sum = kl_sum = 0.0
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size].to(device, torch.float32)
        mu, logvar = model.encode(xb)
        eps = torch.randn(mu.shape, generator=gen, device=device)
        z = mu + torch.exp(0.5 * logvar) * eps
        terms = vae_loss(model.decode(z), xb, mu, logvar)
        recon_sum += terms.recon.sum().item()
        kl_sum += terms.kl.sum().item()
    n = x.shape[0]
    return {"neg_elbo": (recon_sum + kl_sum) / n, "recon": recon_sum / n, "kl": kl_sum / n}


def _check_proposal(
    proposal: tuple[torch.Tensor, torch.Tensor] | None, n: int, latent_dim: int
) -> None:
    if proposal is None:
        return
    if not (isinstance(proposal, tuple | list) and len(proposal) == 2):
        raise ValueError("proposal must be a pair (mu, logvar) of tensors (N, d), or None")
    for t, name in zip(proposal, ("mu", "logvar"), strict=True):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (n, latent_dim):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"proposal {name} must be a tensor of shape ({n}, {latent_dim}), "
                             f"got {shape}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"proposal {name} contains non-finite values")


def _iw_log_weights(model: VAE, x: torch.Tensor, k: int, batch_size: int, seed: int,
                    max_rows: int, proposal: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Yield ln w = ln p(x|z) + ln p(z) - ln q(z|x), shape (b, k), one image batch at a time.

    proposal = (mu, logvar), each (N, d): draw z from these Gaussians, not the encoder's q.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (the number of importance samples) must be an integer >= 1, got {k!r}")
    _check_images(x, model.input_dim, "x", allow_uint8=False)
    batch_size = require_positive_int(batch_size, "batch_size")
    max_rows = require_positive_int(max_rows, "max_rows")
    _check_proposal(proposal, x.shape[0], model.latent_dim)
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size].to(device, torch.float32)
        b = xb.shape[0]
        if proposal is None:
            mu, logvar = model.encode(xb)
        else:
            mu, logvar = (t[i : i + batch_size].to(device, torch.float32) for t in proposal)
        eps = torch.randn((b, k, model.latent_dim), generator=gen, device=device)
        std = torch.exp(0.5 * logvar)
        log_w = torch.empty(b, k, device=device)
        per_pass = max(1, max_rows // b)  # samples per image in one decoder pass
        for j in range(0, k, per_pass):
            e = eps[:, j : j + per_pass]  # (b, kc, d)
            z = mu[:, None] + std[:, None] * e
            logits = model.decode(z.reshape(-1, model.latent_dim)).reshape(b, -1, model.input_dim)
            log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
                logits, xb[:, None].expand_as(logits), reduction="none"
            ).sum(-1)
            # ln p(z) - ln q(z|x): the 2 pi constants cancel; z - mu = std * e.
            log_pz = -0.5 * z.pow(2).sum(-1)
            log_qz = -0.5 * (e.pow(2) + logvar[:, None]).sum(-1)
            log_w[:, j : j + per_pass] = log_px_z + log_pz - log_qz
        yield log_w


@torch.inference_mode()
def iw_log_likelihood(
    model: VAE,
    x: torch.Tensor,
    k: int,
    batch_size: int = 100,
    seed: int = 0,
    max_rows: int = 16384,
    proposal: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Importance-sampled ln p(x) per image: log-mean-exp over k samples z ~ q(z|x).

    ln p(x) ~= ln (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x). x: binary float (N, D).
    Returns (N,) on the CPU. k = 1 is the single-sample ELBO; the estimate rises
    towards ln p(x) as k grows (notebook 03's importance-weighted bound). Memory stays
    bounded: batch_size images at a time (the random draws depend on it) and at most
    max_rows decoded samples per pass (the result does not depend on max_rows).
    proposal = (mu, logvar), each (N, d): sample z from these Gaussians instead of the
    encoder's q (notebook 05's per-image optimised q*).
    """
    return torch.cat([
        (torch.logsumexp(log_w, dim=1) - math.log(k)).cpu()
        for log_w in _iw_log_weights(model, x, k, batch_size, seed, max_rows, proposal)
    ])


@torch.inference_mode()
def iw_bound_curve(
    model: VAE, x: torch.Tensor, ks: list[int], batch_size: int = 100, seed: int = 0
) -> dict[int, float]:
    """Mean importance-weighted bound over images for each k in ks (nats per image).

    One set of max(ks) samples per image; the bound for k uses its first k (nested
    estimates, so the curve is smooth in k). k = 1 is a single-sample ELBO estimate.
    """
    if not ks:
        raise ValueError("ks must list at least one number of samples")
    k_max = max(ks)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"each k must be an integer >= 1, got {k!r}")
    sums = dict.fromkeys(ks, 0.0)
    for log_w in _iw_log_weights(model, x, k_max, batch_size, seed, 16384):
        for k in ks:
            sums[k] += (torch.logsumexp(log_w[:, :k], dim=1) - math.log(k)).sum().item()
    return {k: sums[k] / x.shape[0] for k in ks}


@torch.inference_mode()
def log_importance_weights(
    model: VAE,
    x: torch.Tensor,
    k: int,
    batch_size: int = 100,
    seed: int = 0,
    max_rows: int = 16384,
    proposal: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The log-weights behind iw_log_likelihood, (N, k) on the CPU (same draws, same seed).

    ln w_j = ln p(x|z_j) + ln p(z_j) - ln q(z_j|x): their mean is a Monte Carlo ELBO, their
    log-mean-exp the importance-sampled ln p(x). proposal = (mu, logvar), each (N, d):
    sample from these Gaussians instead of the encoder's q (notebook 05's per-image q*).
    Holds all N * k values in memory.
    """
    return torch.cat([
        log_w.cpu() for log_w in _iw_log_weights(model, x, k, batch_size, seed, max_rows, proposal)
    ])


# ---------------------------------------------------------------- checkpoints

def _model_config(model: VAE) -> dict:
    return {
        "latent_dim": model.latent_dim,
        "hidden": list(model.hidden),
        "input_dim": model.input_dim,
        "activation": model.activation,
    }


def _canonical(config: dict) -> str:
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict of JSON values, got {type(config).__name__}")
    try:
        return json.dumps(config, sort_keys=True)
    except TypeError as err:
        raise ValueError(
            f"config must hold only JSON values (numbers, strings, lists, dicts): {err}"
        ) from None


def save_checkpoint(
    model: VAE, path: str | Path, config: dict, history: list[dict] | None = None
) -> None:
    """Write the weights, the model's shape and ``config`` (JSON values) to ``path``."""
    payload = {
        "config": _canonical(config),
        "model": _model_config(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": list(history or []),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash never leaves half a checkpoint behind


def _read_checkpoint(path: str | Path, config: dict) -> dict:
    path, wanted = Path(path), _canonical(config)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}: train the model first (save_checkpoint)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        missing = {"config", "model", "state_dict", "history"} - set(payload)
        if missing:
            raise KeyError(f"missing entries {sorted(missing)}")
        stored = payload["config"]
    except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
        raise ValueError(
            f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); "
            "delete it and train again"
        ) from None
    if stored != wanted:
        raise ValueError(
            f"checkpoint {path} was saved for a different configuration:\n  saved:     "
            f"{stored}\n  requested: {wanted}\ntrain with this configuration or pass the "
            "matching one"
        )
    return payload


def load_checkpoint(path: str | Path, config: dict) -> VAE:
    """Rebuild the VAE saved at ``path``; ``config`` must equal the saved one exactly."""
    payload = _read_checkpoint(path, config)
    shape = payload["model"]
    model = VAE(shape["latent_dim"], tuple(shape["hidden"]), shape["input_dim"],
                shape["activation"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def fresh_training_required() -> bool:
    """True when env VAELAB_TRAIN_FRESH=1 (make test / make outputs): never reuse checkpoints."""
    return os.environ.get("VAELAB_TRAIN_FRESH", "") not in ("", "0")


def default_checkpoint_dir() -> Path:
    """env VAELAB_CHECKPOINT_DIR, else a per-user cache folder."""
    env = os.environ.get("VAELAB_CHECKPOINT_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vaelab" / "checkpoints"


def init_model(model_config: dict, seed: int = 0) -> VAE:
    """VAE(**model_config) with weights drawn from ``seed``, whatever the global RNG's state.

    The global generator is left as it was, so the same configuration always starts from the
    same weights: in a notebook (whatever ran before), in `make bench`, and for a checkpoint.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(**model_config)


def train_or_load(
    model_config: dict,
    train_config: dict,
    images: torch.Tensor,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    on_epoch: Callable[[VAE, dict], None] | None = None,
) -> tuple[VAE, list[dict], bool]:
    """Train init_model(model_config, seed) with train(**train_config), or reuse a checkpoint.

    The checkpoint is keyed by both configs (and the data's size); it is reused only
    when everything matches exactly and VAELAB_TRAIN_FRESH is not set. Returns
    (model on the CPU, in evaluation mode; history; reused).
    """
    config = {"model": model_config, "train": train_config, "n_images": int(images.shape[0])}
    key = hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_checkpoint_dir()) / f"vae-{key}.pt"
    if not fresh_training_required() and path.is_file():
        try:
            payload = _read_checkpoint(path, config)
            return load_checkpoint(path, config), list(payload["history"]), True
        except ValueError:
            pass  # an unusable cached file is simply trained again and overwritten
    model = init_model(model_config, seed=train_config.get("seed", 0))
    history = train(model, images, progress=progress, on_epoch=on_epoch, **train_config)
    save_checkpoint(model, path, config, history)
    return model.cpu(), history, False
