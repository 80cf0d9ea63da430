"""Training, once: one readable loop for any VAE, and notebook 04's cached recipe.

The data set lives in memory as one tensor (N, D). An epoch is a seeded permutation; each
batch is gathered from it, binarized afresh for a binary likelihood (dynamic binarization,
``vaelab.binarization``), and trained on with the plain PyTorch step: the loss, ``zero_grad``,
``backward``, ``optimizer.step()``. Every model is trained exactly as written: its own
encoder, decoder and likelihood, its own layers (dropout and batch norm in training mode).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaelab import runtime, schedules
from vaelab.binarization import binarize
from vaelab.checkpoints import (
    CheckpointError,
    config_key,
    data_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from vaelab.devices import choose_device
from vaelab.files import OutputPathError, check_output_dir
from vaelab.progress import progress_bar
from vaelab.vae import (
    VAE,
    NonFiniteError,
    check_loss_weights,
    check_model,
    check_vae_interface,
    has_batch_norm,
    mode_kept,
    model_loss,
)
from vaelab.validation import require_finite, require_int, require_positive, require_positive_int

# Notebook 04's default model and how it trains: one copy, read by the notebook (through
# train_or_load) and by `make bench`. Measured on 784-400-20 with dynamic binarization (test
# -ELBO / IS NLL with k = 1000, `make bench`'s targets 100 / 94): a constant lr 1e-3 gives
# -ELBO 100.0 after 20 epochs; lr 3e-3 decayed to 0 along a cosine gives 98.5 / 93.7 after
# 18 epochs, 98.1 / 93.5 after 20, 97.8 / 93.1 after 24 and 97.2 / 92.6 after 30.
NOTEBOOK_MODEL = {"latent_dim": 20, "hidden": [400], "input_dim": 784, "activation": "relu"}
NOTEBOOK_TRAINING = {
    "epochs": 24,
    "batch_size": 128,
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "init_output_bias": True,
    "seed": 0,
}

FloatOrSchedule = float | Callable[[int], float]
IntOrSchedule = int | Callable[[int], int]


class NonFiniteLossError(NonFiniteError):
    """Training produced a NaN or infinite loss; the message names the epoch and a remedy."""


def default_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam over the model's parameters: the fused kernel where this torch has it for the
    device (one pass over all parameters instead of several), else the standard one."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):  # an older torch, or a device without fused Adam
        return torch.optim.Adam(model.parameters(), lr=lr)


def train(
    model: nn.Module,
    images: torch.Tensor,
    *,
    epochs: int,
    batch_size: IntOrSchedule = 128,
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    lr_final: float = 0.0,
    kl_weight: FloatOrSchedule = 1.0,
    free_bits: float = 0.0,
    recon_weight: float = 1.0,
    init_output_bias: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
    drop_last: bool = False,
    seed: int = 0,
    device: torch.device | str | None = None,
    on_epoch: Callable[[nn.Module, dict], None] | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train ``model`` (anything with encode, decode and a likelihood) on ``images`` (N, D).

    Binary likelihoods take uint8 (0..255) or [0, 1] images and binarize every batch afresh.
    batch_size and kl_weight may be functions of the epoch (1-based); lr_schedule="cosine"
    decays the learning rate per step to lr_final. optimizer: yours (default: Adam(lr)).
    The random draws (shuffling, binarization, the model's noise) come from ``seed``; torch's
    global random state is the same afterwards as before. The model trains in train() mode,
    on_epoch(model, record) sees it in eval() mode, and it is returned in the mode it came in.
    Returns a dict per epoch: epoch, loss, recon, kl (means per image), seconds, lr,
    batch_size, kl_weight. Raises NonFiniteLossError if the loss becomes NaN or infinite.
    What the model returns is checked once, on the first images, before any step
    (``vaelab.vae.check_model``).
    """
    epochs, lr, seed = _check_training_args(model, images, epochs, lr, lr_schedule, lr_final,
                                            kl_weight, free_bits, recon_weight,
                                            init_output_bias, optimizer, seed)
    device, n = choose_device(device), images.shape[0]
    batches = _batch_starts(batch_size, epochs, n, drop_last, has_batch_norm(model))
    data = images.to(device)  # the whole data set, one tensor in memory
    dtype = next(model.parameters()).dtype
    model.to(device)
    _check_first_batch(model, data, dtype)
    if init_output_bias:
        model.init_output_bias(data.float().mean(dim=0) / (255 if data.dtype == torch.uint8 else 1))
    optimizer = optimizer or default_optimizer(model, lr)
    total_steps = sum(len(starts) for starts in batches)
    lr_at = schedules.cosine(lr, lr_final, total_steps) if lr_schedule == "cosine" else None
    history, steps_done = [], 0
    bar = progress_bar(range(1, epochs + 1), enabled=progress, desc="training", unit="epoch")
    with _own_random_state(seed, device), flush_denormals(), mode_kept(model):
        shuffle = torch.Generator().manual_seed(seed)
        pixel_noise = torch.Generator(device=device).manual_seed(seed + 1)
        for epoch in bar:
            runtime.share_cores()  # fewer threads while other programs use these cores
            model.train()
            start, beta = time.perf_counter(), _kl_weight_at(kl_weight, epoch)
            starts = batches[epoch - 1]
            bsz = starts.step
            order = torch.randperm(n, generator=shuffle).to(device)  # a seeded permutation
            sums = []  # (recon, kl) summed over each batch's images
            for first in starts:
                x = data[order[first : first + bsz]]
                if model.likelihood.binary:
                    x = binarize(x, pixel_noise)  # dynamic binarization
                if lr_at is not None:
                    schedules.set_lr(optimizer, lr_at(steps_done))
                terms = model_loss(model, x.to(dtype), beta, free_bits, recon_weight)
                optimizer.zero_grad(set_to_none=True)
                terms.loss.backward()
                optimizer.step()
                sums.append(torch.stack((terms.recon.detach().sum(), terms.kl.detach().sum())))
                steps_done += 1
            seen = sum(min(bsz, n - first) for first in starts)
            recon, kl = (torch.stack(sums).sum(dim=0) / seen).tolist()  # the epoch's one sync
            if not math.isfinite(recon + kl):
                bar.close()
                raise NonFiniteLossError(_non_finite_message(epoch, epochs, recon, kl, lr))
            history.append({"epoch": epoch, "loss": recon + kl, "recon": recon, "kl": kl,
                            "seconds": time.perf_counter() - start, "batch_size": bsz,
                            "lr": optimizer.param_groups[0]["lr"], "kl_weight": beta})
            bar.set_postfix(loss=f"{recon + kl:.2f}", kl=f"{kl:.2f}")
            if on_epoch is not None:
                model.eval()
                on_epoch(model, history[-1])
    return history


@contextlib.contextmanager
def _own_random_state(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global generators seeded with ``seed`` inside the block (the model's own noise:
    the reparameterization, dropout) and restored afterwards, so training changes no random
    draw the caller makes later."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def _batch_starts(batch_size: IntOrSchedule, epochs: int, n: int, drop_last: bool,
                  batch_norm: bool = False) -> list[range]:
    """Each epoch's batch starts (the last incomplete batch dropped if drop_last)."""
    sizes = [require_positive_int(_value_at(batch_size, e), "batch_size")
             for e in range(1, epochs + 1)]
    starts = [range(0, n - n % b if drop_last else n, b) for b in sizes]
    if not all(starts):
        raise ValueError(f"batch_size {max(sizes)} with drop_last=True leaves no batch of "
                         f"the {n} images: lower the batch size")
    lone = [(e, b) for e, (b, s) in enumerate(zip(sizes, starts, strict=True), 1) if n - s[-1] == 1]
    if batch_norm and lone:
        epoch, b = lone[0]
        raise ValueError(f"batch_size {b} leaves a last batch of one image in epoch {epoch} "
                         f"({n} images), and the model's batch norm cannot normalize a single "
                         "image in training: pass drop_last=True (or another batch_size)")
    return starts


def _check_first_batch(model: nn.Module, data: torch.Tensor, dtype: torch.dtype) -> None:
    """check_model on the first two images as the loop feeds them (binarized, in the model's
    dtype), with a generator of its own: the training draws stay as they were."""
    x = data[:2]
    if model.likelihood.binary:
        x = binarize(x, torch.Generator(device=data.device).manual_seed(0))
    check_model(model, x.to(dtype))


def _non_finite_message(epoch: int, epochs: int, recon: float, kl: float, lr: float) -> str:
    return (f"training stopped at epoch {epoch} of {epochs}: the loss became non-finite "
            f"(recon={recon}, kl={kl}); the model's weights are now unusable. Lower the "
            f"learning rate (lr={lr:g}; try {lr / 10:g}), and check that the images are uint8 "
            "in 0..255, probabilities in [0, 1], or finite real values.")


def _value_at(schedule: Any, epoch: int) -> Any:
    return schedule(epoch) if callable(schedule) else schedule


def _kl_weight_at(kl_weight: FloatOrSchedule, epoch: int) -> float:
    beta = _value_at(kl_weight, epoch)
    check_loss_weights(beta, 0.0, 1.0)  # a schedule's value too
    return float(beta)


def _check_training_args(model, images, epochs, lr, lr_schedule, lr_final, kl_weight,
                         free_bits, recon_weight, init_output_bias, optimizer, seed
                         ) -> tuple[int, float, int]:
    """Every argument checked before any work starts, each error saying what to pass.
    Returns epochs, lr and seed as Python numbers (NumPy's are accepted)."""
    check_vae_interface(model)
    if next(iter(model.parameters()), None) is None:
        raise ValueError(f"{type(model).__name__} has no parameters to train: build its "
                         "encoder and decoder from nn.Module layers in __init__")
    epochs = require_positive_int(epochs, "epochs")
    lr = require_positive(lr, "lr")
    seed = require_int(seed, "seed", 0)
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    try:
        lr_final_ok = 0 <= require_finite(lr_final, "lr_final") <= lr
    except ValueError:  # InputTypeError too: one wording
        lr_final_ok = False
    if not lr_final_ok:
        raise ValueError(f"lr_final (the cosine schedule's last learning rate) must be a number "
                         f"from 0 to lr = {lr:g}, got {lr_final!r}")
    check_loss_weights(1.0 if callable(kl_weight) else kl_weight, free_bits, recon_weight)
    if init_output_bias and not callable(getattr(model, "init_output_bias", None)):
        raise ValueError("init_output_bias=True needs a model with an init_output_bias("
                         "mean_image) method, as vaelab.vae.VAE has; "
                         f"{type(model).__name__} has none: leave init_output_bias off (False)")
    if optimizer is not None:
        _check_optimizer(model, optimizer)
    check_training_data(model, images)
    return epochs, lr, seed


def _check_optimizer(model: nn.Module, optimizer: object) -> None:
    """An optimizer of this model's parameters (one built for another model steps nothing)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {optimizer!r}")
    own = {id(p) for p in model.parameters()}
    held = [p for group in optimizer.param_groups for p in group["params"]]
    foreign = sum(id(p) not in own for p in held)
    if foreign:
        raise ValueError(f"{foreign} of the optimizer's {len(held)} parameters are not this "
                         f"{type(model).__name__}'s (an optimizer built for another model steps "
                         "that model, not this one): build it from this model, e.g. "
                         "torch.optim.Adam(model.parameters(), lr=1e-3)")


def check_training_data(model: nn.Module, images: torch.Tensor, name: str = "images") -> None:
    """ValueError unless ``images`` (N, D) suit the model's likelihood, saying what to pass."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (N, D), got {type(images).__name__}")
    width = getattr(model, "input_dim", images.shape[-1] if images.ndim else -1)
    if images.ndim != 2 or images.shape[1] != width or images.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, {width}) with N >= 1, "
                         f"got {tuple(images.shape)}: flatten images to rows")
    if model.likelihood.binary:
        if images.dtype == torch.uint8:
            return
        if not images.is_floating_point() or not bool(((images >= 0) & (images <= 1)).all()):
            raise ValueError(f"{name} must be uint8 (0..255) or float probabilities in [0, 1] "
                             "for a binary likelihood (NaN not allowed): divide uint8 images "
                             "by 255 with vaelab.mnist.to_unit_float, or pass them as uint8")
    else:
        model.likelihood.check_data(images, name)


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


# ---------------------------------------------------------------- notebook recipe, cached

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
    on_epoch: Callable[[nn.Module, dict], None] | None = None,
) -> tuple[VAE, list[dict], bool]:
    """Train init_model(model_config, seed) with train(**train_config), or reuse a checkpoint.

    The checkpoint is keyed by both configurations, the model's architecture (its layers, as
    printed) and a fingerprint of the exact images; it is reused only when all match and
    VAELAB_TRAIN_FRESH is not set. A cache folder that cannot be written is reported (a
    warning) before training, and the trained model is returned all the same. Returns (model
    on the CPU, in evaluation mode; history; reused).
    """
    model = init_model(model_config, seed=train_config.get("seed", 0))
    config = {"model": model_config, "architecture": repr(model), "train": train_config,
              "data": data_fingerprint(images)}
    folder = Path(cache_dir or default_checkpoint_dir())
    path = folder / f"vae-{config_key(config)}.pt"
    if not fresh_training_required() and path.is_file():
        try:
            state = load_checkpoint(path, config)
            model.load_state_dict(state["state_dict"])
            return model.eval(), list(state["history"]), True
        except (CheckpointError, RuntimeError):
            pass  # an unusable cached file is simply trained again and overwritten
    try:
        check_output_dir(folder, "point VAELAB_CHECKPOINT_DIR (or cache_dir) at a writable folder")
        writable = True
    except OutputPathError as err:
        warnings.warn(f"cannot cache checkpoints: {err}; training anyway, the model will not "
                      "be cached", stacklevel=2)
        writable = False
    history = train(model, images, progress=progress, on_epoch=on_epoch, **train_config)
    model.cpu().eval()
    if writable:
        try:
            save_checkpoint(path, config, {"state_dict": model.state_dict(), "history": history})
        except CheckpointError as err:
            warnings.warn(f"{err}; the trained model is returned but not cached", stacklevel=2)
    return model, history, False
