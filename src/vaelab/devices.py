"""Which device computes: the one choice every trainer and evaluator makes the same way."""

from __future__ import annotations

import torch


def choose_device(device: torch.device | str | None = None) -> torch.device:
    """``device`` checked against what this machine has; None: the GPU when present, else the CPU.

    A device that is not there (``"cuda"`` without a GPU, a misspelt name) is a ValueError that
    says what to pass instead, before any work starts.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or None (the GPU when "
                         f"present), got {device!r}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r} was asked for, but torch sees no GPU here: "
                             "pass device='cpu' or None (the GPU when present)")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r} does not exist: this machine has {count} "
                             f"GPU(s), cuda:0 to cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} is not available here: pass 'cpu' or None")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} is not supported: pass 'cpu', 'cuda' or None")
    return dev
