"""Schedules: a value that changes as training goes on, as a plain function of the step or epoch.

- ``cosine(start, end, steps)``: the learning rate of ``train(lr_schedule="cosine")``, from
  ``start`` down to ``end`` along half a cosine over ``steps`` optimizer steps;
- ``linear(start, end, steps)``: the same along a straight line (notebook 03's stochastic
  gradient ascent);
- ``kl_warmup(warmup_epochs, final_weight)``: a KL weight for ``train(kl_weight=...)`` that
  rises from 0 (notebook 05's remedy for posterior collapse);
- ``set_lr(optimizer, lr)``: how a schedule's value reaches the optimizer, step by step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vaelab.validation import require_finite, require_positive, require_positive_int

Schedule = Callable[[int], float]


def _endpoints(start: float, end: float, steps: int) -> tuple[float, float, int]:
    return (require_finite(start, "start"), require_finite(end, "end"),
            require_positive_int(steps, "steps"))


def cosine(start: float, end: float, steps: int) -> Schedule:
    """Step t (0, 1, ...) -> end + (start - end) * (1 + cos(pi * t / steps)) / 2.

    ``start`` at the first step, ``end`` once ``steps`` steps are done.
    """
    start, end, steps = _endpoints(start, end, steps)

    def value(t: int) -> float:
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * min(t, steps) / steps))

    return value


def linear(start: float, end: float, steps: int) -> Schedule:
    """Step t (0, 1, ...) -> start + (end - start) * t / steps: ``start`` first, then ``end``."""
    start, end, steps = _endpoints(start, end, steps)

    def value(t: int) -> float:
        return start + (end - start) * min(t, steps) / steps

    return value


def kl_warmup(warmup_epochs: int, final_weight: float = 1.0) -> Schedule:
    """A linear KL warm-up: epoch e (1-based) -> final_weight * min(1, (e - 1) / warmup_epochs).

    The first epoch trains the reconstruction alone (weight 0); the weight then rises
    linearly and reaches final_weight at epoch warmup_epochs + 1.
    """
    n = require_positive_int(warmup_epochs, "warmup_epochs")
    final = require_positive(final_weight, "final_weight")

    def weight(epoch: int) -> float:
        epoch = require_positive_int(epoch, "epoch")
        return final * min(1.0, (epoch - 1) / n)

    return weight


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group of ``optimizer`` the learning rate ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
