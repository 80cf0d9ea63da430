"""One call at the top of every notebook: seeds and CPU threads fixed."""

from __future__ import annotations

import random

import numpy as np
import torch

from vaelab.validation import require_int, require_positive_int

# Two threads: the laptop-sized machine the timings are quoted for. Fixing the
# count matters for reproducibility: float32 reductions depend on it.
DEFAULT_THREADS = 2


def seed_everything(seed: int = 0, threads: int = DEFAULT_THREADS) -> np.random.Generator:
    """Seed Python, NumPy and torch, fix torch's CPU threads, return a NumPy generator.

    A rerun of a notebook in a fresh kernel on the same machine then reproduces
    every printed value.
    """
    seed = require_int(seed, "seed", 0)
    if seed >= 2**64:  # torch.manual_seed's limit
        raise ValueError(f"seed must be below 2**64, got {seed}; use a smaller seed")
    # Python ints, not NumPy's: random.seed refuses np.int64, set_num_threads refuses bool.
    threads = require_positive_int(threads, "threads")
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return np.random.default_rng(seed)
