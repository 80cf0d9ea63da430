"""vaelab.budget: a plan's cost in epochs of notebook 04's MLP, measured on this CPU."""

import math

import pytest
import torch
from helpers import mnist_like

from vaelab import budget, runtime
from vaelab.vae import VAE

IMAGES = mnist_like(20 * budget.MLP_BATCH_SIZE)


def test_steps_per_epoch_counts_the_last_short_batch_unless_dropped():
    assert budget.steps_per_epoch(128) == 469  # the MLP's epoch: 60 000 / 128, rounded up
    assert budget.steps_per_epoch(128, drop_last=True) == 468
    assert budget.steps_per_epoch(100) == 600
    with pytest.raises(ValueError, match="batch_size"):
        budget.steps_per_epoch(0)


def test_the_yardstick_is_notebook_04s_model_freshly_initialised():
    a, b = budget.mlp(), budget.mlp()
    assert isinstance(a, VAE) and (a.hidden, a.latent_dim, a.input_dim) == ((400,), 20, 784)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_plan_cost_counts_the_plans_steps_against_the_mlp_epoch():
    plan = {"epochs": 3, "batch_size": 256}
    cost = budget.plan_cost(budget.mlp, plan, IMAGES, steps=4, rounds=1)
    assert cost.steps == 3 * math.ceil(60_000 / 256)
    assert cost.step_seconds > 0 and cost.mlp_epoch_seconds > 0
    assert math.isclose(cost.mlp_epochs,
                        cost.steps * cost.step_seconds / cost.mlp_epoch_seconds)
    assert math.isclose(cost.seconds, cost.steps * cost.step_seconds)


def test_a_model_doing_many_times_the_mlps_work_costs_more():
    # About 20 times the MLP's multiply-adds per image: the measured cost must show it
    # (a wide margin: this checks the measurement, it sets no speed target).
    def big() -> VAE:
        return VAE(latent_dim=20, hidden=(2000, 2000))

    plan = {"epochs": 1, "batch_size": 128}
    cheap = budget.plan_cost(budget.mlp, plan, IMAGES, steps=4, rounds=2)
    dear = budget.plan_cost(big, plan, IMAGES, steps=4, rounds=2)
    assert dear.mlp_epochs > 3 * cheap.mlp_epochs


def test_probe_leaves_threads_and_random_state_as_they_were():
    threads = torch.get_num_threads()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    budget.probe(budget.mlp, IMAGES, batch_size=64, steps=2, rounds=1, mlp_steps=2)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_fixed_threads_restores_the_thread_count_after_an_error():
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), runtime.fixed_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == threads


def test_probe_refuses_too_few_images_before_any_work():
    calls = []

    def factory() -> VAE:
        calls.append(1)
        return budget.mlp()

    with pytest.raises(ValueError, match=r"at least 2560 training images, got 100"):
        budget.probe(factory, mnist_like(100), batch_size=128)
    assert calls == []


def test_plan_cost_needs_a_number_of_epochs():
    with pytest.raises(ValueError, match="epochs"):
        budget.plan_cost(budget.mlp, {"batch_size": 128}, IMAGES)


def test_a_plan_far_over_the_limit_is_timed_once():
    rounds = []

    def factory() -> VAE:
        rounds.append(1)
        return budget.mlp()

    cost = budget.plan_cost(factory, {"epochs": 100}, IMAGES, steps=2, rounds=3, stop_above=10)
    assert cost.mlp_epochs > 10 and len(rounds) == 1
    rounds.clear()
    budget.plan_cost(factory, {"epochs": 1}, IMAGES, steps=2, rounds=3, stop_above=10)
    assert len(rounds) == 3  # under the limit: every round runs
