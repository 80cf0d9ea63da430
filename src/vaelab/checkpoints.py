"""Checkpoints, one format for the package: a dict of tensors and plain values, written atomically.

``save_checkpoint`` writes atomically (``vaelab.files``), so a crash, a full disk or Ctrl-C
never leaves half a checkpoint and never removes the previous good one before the new one is
complete. ``load_checkpoint`` reads with ``torch.load(weights_only=True)`` (no pickled
code runs) and checks that the file was written under the configuration asked for.
``config_key`` names a checkpoint by its configuration and ``data_fingerprint`` by the exact
training data, so a cache is reused only for the same model, recipe and images; the cache
itself (train, or load what was trained) is ``vaelab.training.train_or_load``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.files import OutputPathError, atomic_write, check_output_file

FORMAT_VERSION = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or used; the message names the file and a remedy."""


def canonical(config: dict) -> str:
    """The configuration as one JSON string (sorted keys): equal configs give equal strings."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict of JSON values, got {type(config).__name__}")
    try:
        return json.dumps(config, sort_keys=True, default=_python_number)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"config must hold only JSON values (numbers, strings, lists, dicts): {err}"
        ) from None


def _python_number(value: object) -> object:
    """A NumPy number as the Python number it holds (np.int64(0) is 0); else not JSON."""
    if isinstance(value, np.integer | np.floating):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def config_key(config: dict) -> str:
    """A short stable name for a configuration: 16 hex digits of its SHA-256."""
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:16]


def data_fingerprint(data: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes: the same images give the same string."""
    t = data.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def save_checkpoint(path: str | Path, config: dict, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) and ``config`` to ``path``.

    Atomic (``vaelab.files.atomic_write``). Raises CheckpointError (naming the file and why)
    if it cannot be written; the previous file at ``path``, if any, is then untouched.
    """
    path = Path(path)
    state = {"format_version": FORMAT_VERSION, "config": canonical(config), **payload}
    try:
        check_output_file(path)
        with atomic_write(path) as fh:
            torch.save(state, fh)
    except (OSError, OutputPathError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise CheckpointError(
            f"cannot save the checkpoint {path} ({why}); the previous file there, if any, is "
            "unchanged: free disk space or choose another folder"
        ) from None
    return path


def load_checkpoint(path: str | Path, config: dict, device: torch.device | str = "cpu"
                    ) -> dict[str, Any]:
    """The payload saved at ``path``, if it was saved under exactly ``config``.

    CheckpointError if there is no file, it is unreadable (truncated, not a checkpoint, holds
    pickled objects), or was saved under another configuration (both are shown).
    """
    path, wanted = Path(path), canonical(config)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train first")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
            raise KeyError("not a checkpoint of this version of vaelab")
    except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); "
            "delete it and train again"
        ) from None
    if state["config"] != wanted:
        raise CheckpointError(
            f"checkpoint {path} was saved for a different configuration:\n  saved:     "
            f"{state['config']}\n  requested: {wanted}\ntrain with this configuration, or "
            "use another folder"
        )
    return state
