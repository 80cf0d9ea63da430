"""One call at the top of every notebook: seeds fixed; the thread count stays the user's."""

from __future__ import annotations

import random

import numpy as np
import torch

from vaelab import runtime
from vaelab.validation import require_int, require_positive_int


def seed_everything(seed: int = 0, threads: int | None = None) -> np.random.Generator:
    """Seed Python, NumPy and torch, return a NumPy generator seeded the same.

    A rerun of a notebook in a fresh kernel then reproduces every printed value. torch's CPU
    thread count is left as it is (``vaelab.runtime`` chose it when the package was imported,
    unless you did); ``threads`` sets it explicitly.
    """
    seed = require_int(seed, "seed", 0)
    if seed >= 2**64:  # torch.manual_seed's limit
        raise ValueError(f"seed must be below 2**64, got {seed}; use a smaller seed")
    if threads is not None:  # checked before anything changes
        threads = require_positive_int(threads, "threads")
    # Python ints, not NumPy's: random.seed refuses np.int64, set_num_threads refuses bool.
    random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        runtime.set_threads(threads)
    return np.random.default_rng(seed)
