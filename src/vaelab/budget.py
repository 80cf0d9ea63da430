"""A training budget that means the same on every machine: epochs of notebook 04's MLP.

Seconds of training depend on the processor and on what else runs on it (a grading server
runs submissions side by side), so a budget in seconds would grade the machine, not the
model. Here a plan's cost is measured against a yardstick timed on the same processor in
the same minute: one epoch of notebook 04's MLP (``training.NOTEBOOK_MODEL`` on the 60 000
training images in batches of 128: 469 steps).

    cost (MLP epochs) = plan's optimizer steps * seconds per step of the model
                        / seconds per epoch of the MLP

Both step times come from ``probe``: a few steps of a fresh model trained by the real loop
(``vaelab.training.train``), the MLP's and the model's in alternation, on the CPU whatever
device trains afterwards. Each round trains two epochs of a few batches and times the second
(the first pays for one-off work: memory, kernel choice); the fastest of the rounds counts,
because other programs can only ever add time. The plan is then trained exactly as declared,
so its result does not depend on any timing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vaelab import runtime
from vaelab.training import NOTEBOOK_MODEL, NOTEBOOK_TRAINING, init_model, train
from vaelab.validation import require_positive_int

TRAINING_IMAGES = 60_000  # MNIST's training split: what an epoch of a plan means
MLP_BATCH_SIZE = NOTEBOOK_TRAINING["batch_size"]
# Settings of train() that change what a step computes; the rest (learning rate, its
# schedule, init_output_bias, ...) cost the same for every value.
COST_SETTINGS = ("batch_size", "kl_weight", "free_bits", "recon_weight")


@dataclass(frozen=True)
class PlanCost:
    """What a training plan costs on this CPU.

    mlp_epochs: the cost in epochs of notebook 04's MLP; steps: the plan's optimizer steps;
    step_seconds: one step of the model at the plan's batch size; mlp_epoch_seconds: one
    epoch of the MLP (469 steps of 128 images), both from the fastest probe round.
    """

    mlp_epochs: float
    steps: int
    step_seconds: float
    mlp_epoch_seconds: float

    @property
    def seconds(self) -> float:
        """The plan's training time on this CPU, at the probe's speed."""
        return self.steps * self.step_seconds


def steps_per_epoch(batch_size: int, drop_last: bool = False,
                    images: int = TRAINING_IMAGES) -> int:
    """Optimizer steps in one epoch over ``images`` images (the last short batch included
    unless drop_last)."""
    batch_size = require_positive_int(batch_size, "batch_size")
    return images // batch_size if drop_last else math.ceil(images / batch_size)


def mlp() -> nn.Module:
    """Notebook 04's model (``training.NOTEBOOK_MODEL``), freshly initialised: the yardstick."""
    return init_model(NOTEBOOK_MODEL)


def probe(factory: Callable[[], nn.Module], images: torch.Tensor, *, batch_size: int,
          steps: int = 20, rounds: int = 3, mlp_steps: int = 20,
          settings: Mapping[str, Any] | None = None,
          enough: Callable[[float, float], bool] | None = None) -> tuple[float, float]:
    """(seconds per step of ``factory()``'s model, seconds per step of the MLP), on the CPU.

    ``images``: at least max(steps * batch_size, mlp_steps * 128) training rows (uint8).
    settings: the plan's other train() settings that change a step (kl_weight, free_bits,
    recon_weight). Each of ``rounds`` rounds trains a fresh MLP and a fresh model for two
    epochs of ``mlp_steps`` and ``steps`` batches and times the second epoch; the fastest
    round of each counts. enough(model's, MLP's seconds so far) -> True ends the rounds early
    (a model far over budget need not be timed three times).
    """
    steps = require_positive_int(steps, "steps")
    mlp_steps = require_positive_int(mlp_steps, "mlp_steps")
    rounds = require_positive_int(rounds, "rounds")
    batch_size = require_positive_int(batch_size, "batch_size")
    need = max(steps * batch_size, mlp_steps * MLP_BATCH_SIZE)
    if images.shape[0] < need:
        raise ValueError(f"the probe needs at least {need} training images, got "
                         f"{images.shape[0]}: pass more, or fewer steps")
    extra = {k: v for k, v in (settings or {}).items() if k in COST_SETTINGS[1:]}
    best_model = best_mlp = math.inf
    with runtime.fixed_threads(1):
        for _ in range(rounds):
            best_mlp = min(best_mlp, _second_epoch_seconds(
                mlp(), images[: mlp_steps * MLP_BATCH_SIZE], MLP_BATCH_SIZE, {}) / mlp_steps)
            best_model = min(best_model, _second_epoch_seconds(
                factory(), images[: steps * batch_size], batch_size, extra) / steps)
            if enough is not None and enough(best_model, best_mlp):
                break
    return best_model, best_mlp


def _second_epoch_seconds(model: nn.Module, images: torch.Tensor, batch_size: int,
                          settings: Mapping[str, Any]) -> float:
    """CPU seconds of the second of two training epochs (one thread: CPU time is the work
    done, which other programs on the machine do not lengthen the way they do wall time)."""
    stamps = []
    train(model, images, epochs=2, batch_size=batch_size, device="cpu", progress=False,
          on_epoch=lambda model, record: stamps.append(time.process_time()), **settings)
    return stamps[1] - stamps[0]


def plan_cost(factory: Callable[[], nn.Module], plan: Mapping[str, Any], images: torch.Tensor,
              *, steps: int = 20, rounds: int = 3, stop_above: float | None = None) -> PlanCost:
    """The cost of training ``factory()``'s model with ``plan`` (train()'s settings: epochs,
    batch_size, ...) on the full training set, measured by ``probe`` on this CPU.

    stop_above: once a round measures the plan above this many MLP epochs, the rest of the
    rounds are skipped (they could only lower it) and that measurement is returned.
    """
    epochs = require_positive_int(plan.get("epochs"), "epochs")
    batch_size = plan.get("batch_size", 128)
    total = epochs * steps_per_epoch(batch_size, bool(plan.get("drop_last", False)))
    mlp_steps = steps_per_epoch(MLP_BATCH_SIZE)

    def over(step_s: float, mlp_step_s: float) -> bool:
        return stop_above is not None and total * step_s / (mlp_step_s * mlp_steps) > stop_above

    step_s, mlp_step_s = probe(factory, images, batch_size=batch_size, steps=steps,
                               rounds=rounds, settings=plan, enough=over)
    mlp_epoch_s = mlp_step_s * mlp_steps
    return PlanCost(total * step_s / mlp_epoch_s, total, step_s, mlp_epoch_s)
