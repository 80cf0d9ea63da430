"""vaelab.schedules: cosine and linear decays, the KL warm-up, and set_lr."""

import math

import pytest
import torch

from vaelab.schedules import cosine, kl_warmup, linear, set_lr


def test_cosine_starts_at_start_passes_the_midpoint_halfway_and_ends_at_end():
    lr = cosine(3e-3, 1e-4, 100)
    assert lr(0) == pytest.approx(3e-3)
    assert lr(50) == pytest.approx((3e-3 + 1e-4) / 2)
    assert lr(100) == pytest.approx(1e-4) and lr(500) == pytest.approx(1e-4)
    values = [lr(t) for t in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # never rises


def test_linear_falls_by_equal_steps():
    lr = linear(0.05, 0.0, 4)
    assert [lr(t) for t in range(6)] == pytest.approx([0.05, 0.0375, 0.025, 0.0125, 0.0, 0.0])


def test_warmup_rises_linearly_to_the_final_weight():
    w = kl_warmup(4, final_weight=30.0)
    assert [w(e) for e in range(1, 8)] == [0.0, 7.5, 15.0, 22.5, 30.0, 30.0, 30.0]
    assert kl_warmup(1)(1) == 0.0 and kl_warmup(1)(2) == 1.0


def test_set_lr_sets_every_group():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    set_lr(opt, 0.02)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.02]


@pytest.mark.parametrize("call, match", [
    (lambda: cosine(1.0, 0.0, 0), "steps"),
    (lambda: linear(math.nan, 0.0, 3), "start"),
    (lambda: linear(1.0, math.inf, 3), "end"),
    (lambda: kl_warmup(0), "warmup_epochs"),
    (lambda: kl_warmup(3, final_weight=-1), "final_weight"),
    (lambda: kl_warmup(3)(0), "epoch"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
