"""vaelab.exercises.capstone: notebook 06's tier checks, and the one grade they share."""

import pytest
import torch
from helpers import TinyVAE, mnist_like

from vaelab import budget, capstone
from vaelab.exercises import capstone as checks
from vaelab.exercises.core import ExerciseError

PLAN = {"epochs": 1, "batch_size": 100}


@pytest.fixture(autouse=True)
def small_world(monkeypatch):
    """Synthetic data instead of MNIST, a fixed measured cost, and no grade kept from
    another test. Records the seeds that grade() was called with."""
    seeds = []

    def load_data():
        score = (torch.rand(30, 784, generator=torch.Generator().manual_seed(0)) * 255
                 < mnist_like(30, seed=2)).float()
        return mnist_like(2000), score

    real_grade = capstone.grade

    def grade(*args, seed=0, **kwargs):
        seeds.append(seed)
        return real_grade(*args, seed=seed, **kwargs)

    def cost(factory, plan, images, **kwargs):
        steps = plan["epochs"] * budget.steps_per_epoch(plan.get("batch_size", 128))
        return budget.PlanCost(steps / 469, steps, 1.0, 469.0)

    monkeypatch.setattr(capstone, "load_data", load_data)
    monkeypatch.setattr(capstone, "grade", grade)
    monkeypatch.setattr(budget, "plan_cost", cost)
    monkeypatch.setattr(capstone, "_kept", None)
    monkeypatch.delenv("VAELAB_GRADING", raising=False)
    return seeds


def counting(calls: list) -> type:
    class Counted(TinyVAE):
        def __init__(self) -> None:
            calls.append(1)
            super().__init__()

    return Counted


def test_the_tiers_share_one_grade_and_one_training(capsys):
    calls = []
    factory = counting(calls)
    checks.check_tier(factory, PLAN, 1)
    built = len(calls)  # the rules' two instances, the probe's, and the one trained
    with pytest.raises(ExerciseError, match=r"tier 3 .*not reached: the NLL .* not below"):
        checks.check_tier(factory, PLAN, 3)
    assert len(calls) == built  # graded once
    assert "Exercise 6.1: correct. tier 1 (trains within the budget" in capsys.readouterr().out
    again = capstone.grade_submission(factory, PLAN)
    assert again.model is capstone.grade_submission(factory, PLAN).model  # the same training


def test_changing_the_grade_handed_back_changes_no_later_check():
    capstone.grade_submission(TinyVAE, PLAN).tier = 3
    with pytest.raises(ExerciseError, match=r"tier 3 .*not reached: the NLL"):
        checks.check_tier(TinyVAE, PLAN, 3)


def test_another_plan_or_another_class_is_graded_afresh():
    first = capstone.grade_submission(TinyVAE, PLAN).model
    assert capstone.grade_submission(TinyVAE, {**PLAN, "lr": 2e-3}).model is not first
    assert capstone.grade_submission(counting([]), PLAN).model is not first


def test_a_refused_submission_fails_tier_1_with_the_reason_and_a_hint():
    with pytest.raises(ExerciseError, match=r"tier 1 .* not reached: the plan holds \['seed'\]"
                       r"(.|\n)*Hint: the notebook's section on the rules"):
        checks.check_tier(TinyVAE, {**PLAN, "seed": 1}, 1)


def test_practice_uses_seed_0_and_a_graded_check_draws_a_seed_of_its_own(small_world,
                                                                          monkeypatch):
    # The draws are fixed here: TinyVAE's 20 steps on synthetic data learn nothing under
    # about 1 seed in 20, which would fail tier 1 by chance.
    draws, bounds = iter([7, 8]), []
    monkeypatch.setattr(capstone.secrets, "randbelow",
                        lambda bound: bounds.append(bound) or next(draws))
    practice = capstone.grade_submission(TinyVAE, PLAN)
    assert practice.seed == 0 and small_world == [0] and bounds == []
    monkeypatch.setenv("VAELAB_GRADING", "1")
    checks.check_tier(TinyVAE, PLAN, 1)  # graded: a practice grade is not reused
    graded = capstone.grade_submission(TinyVAE, PLAN, graded=True)
    assert graded.model is not practice.model and small_world[-1] == graded.seed
    assert capstone.grade_submission(TinyVAE, PLAN).model is graded.model  # later cells reuse it
    monkeypatch.setattr(capstone, "_kept", None)
    again = capstone.grade_submission(TinyVAE, PLAN, graded=True)
    assert (graded.seed, again.seed) == (7, 8) and bounds == [2**31, 2**31]  # drawn each time


def test_check_tier_refuses_a_level_that_is_no_tier():
    with pytest.raises(ValueError, match=r"level must be one of \[1, 2, 3\], got 4"):
        checks.check_tier(TinyVAE, PLAN, 4)
