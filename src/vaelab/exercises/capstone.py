"""Checks for notebook 06's exercise 6.1 (your own VAE and its training plan), one per tier.

``check_tier(factory, plan, level)`` grades the submission (``vaelab.capstone.grade``: rules,
cost, training, score) and says whether it reached tier ``level``. The grade is kept
(``vaelab.capstone.grade_submission``), so the checks of the next tiers, and the notebook's
cells after them, reuse it: a notebook trains the model once. Practice mode trains with
seed 0, so a rerun gives the same model; a graded check draws a new seed each time it
grades. The score images are the same for every grade (``capstone.SCORE_BINARIZATION``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from vaelab import capstone
from vaelab.exercises.core import fail, passed, practice_mode

EXERCISE = "6.1"
_HINTS = {
    1: "the notebook's section on the rules shows what a model and a plan need",
    2: "within the same budget the model must learn more per unit of work: compare the cost "
       "and the score of a few designs on a short plan first (a cheaper step buys more "
       "epochs; convolutions share their weights across the image)",
    3: "spend the budget where it helps most: compare your model's cost per epoch, negative "
       "ELBO and NLL with the MLP's",
}


def check_tier(factory: Callable[[], nn.Module], plan: Mapping[str, Any], level: int) -> None:
    """Pass if the submission reaches tier ``level`` (1, 2 or 3), else say why not."""
    tiers = {t.level: t for t in capstone.TIERS}
    if level not in tiers:
        raise ValueError(f"level must be one of {sorted(tiers)}, got {level!r}")
    tier = tiers[level]
    result = capstone.grade_submission(factory, plan, graded=not practice_mode())
    what = f"tier {level} ({tier.name})"
    if result.tier >= level:
        passed(EXERCISE, f"{what} reached.")
        return
    if result.tier == 0:
        fail(EXERCISE, f"{what} not reached: {result.problem}", _HINTS[1])
    fail(EXERCISE, f"{what} not reached: the NLL {result.nll:.2f} nats is not below "
         f"{tier.nll_below:g}", _HINTS[level])
