"""vaelab.fastcpu.adam.LayerwiseAdam: layer-by-layer steps are torch.optim.Adam's steps."""

import pytest
import torch
from torch import nn

from vaelab.fastcpu.adam import LayerwiseAdam


def two_layer_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def set_grads(net: nn.Module, step: int) -> None:
    gen = torch.Generator().manual_seed(100 + step)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=gen)


def step_both(ours, theirs, adam, reference, steps, new_lr_at=None, new_lr=None):
    """Take the same steps with LayerwiseAdam (backward order) and a torch.optim.Adam."""
    for step in range(steps):
        if step == new_lr_at:  # a schedule changes the learning rate between steps
            adam.lr = new_lr
            for group in reference.param_groups:
                group["lr"] = new_lr
        set_grads(ours, step)
        set_grads(theirs, step)
        adam.step(ours[2])
        adam.step(ours[0])
        reference.step()


@pytest.mark.parametrize("lr", [1e-3, 0.1])
def test_layerwise_steps_equal_torch_adam_steps(lr):
    ours, theirs = two_layer_net(), two_layer_net()
    adam = LayerwiseAdam([ours[2], ours[0]], lr=lr)  # any order, as backpropagation goes
    reference = torch.optim.Adam(theirs.parameters(), lr=lr)
    step_both(ours, theirs, adam, reference, 25, new_lr_at=10, new_lr=lr / 3)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    # and the comparison can fail: the parameters did move
    assert not torch.allclose(ours[0].weight, two_layer_net()[0].weight)


def test_grouped_steps_are_fused_torch_adam_bit_for_bit():
    # the same kernel as torch.optim.Adam(fused=True), with one step counter per group
    ours, theirs = two_layer_net(), two_layer_net()
    adam = LayerwiseAdam([[ours[2], ours[0]]], lr=0.01)
    reference = torch.optim.Adam(theirs.parameters(), lr=0.01, fused=True)
    step_both(ours, theirs, adam, reference, 30, new_lr_at=12, new_lr=0.004)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(ours[0].weight, two_layer_net()[0].weight)


def test_a_step_touches_only_its_layer():
    net = two_layer_net()
    adam = LayerwiseAdam([net[0], net[2]], lr=0.1)
    set_grads(net, 0)
    before = [p.detach().clone() for p in net.parameters()]
    adam.step(net[2])
    after = list(net.parameters())
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])
    assert not torch.equal(after[2], before[2])


def test_bad_arguments_are_refused():
    net = two_layer_net()
    with pytest.raises(ValueError, match="lr"):
        LayerwiseAdam([net[0]], lr=0.0)
    with pytest.raises(ValueError, match="betas"):
        LayerwiseAdam([net[0]], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="no trainable parameters"):
        LayerwiseAdam([net[1]])
    with pytest.raises(ValueError, match="two layers"):
        LayerwiseAdam([net, net[0]])
    with pytest.raises(ValueError, match="listed twice"):
        LayerwiseAdam([[net[0], net[0]]])
    adam = LayerwiseAdam([net[0]])
    with pytest.raises(ValueError, match="not given"):
        adam.step(net[2])
    with pytest.raises(ValueError, match="no gradient"):
        adam.step(net[0])
    grouped = LayerwiseAdam([[net[0], net[2]]])
    set_grads(net, 0)
    grouped.step(net[0])
    with pytest.raises(ValueError, match="twice"):
        grouped.step(net[0])


def test_a_group_is_updated_once_all_its_layers_are_handed_over():
    ours, theirs = two_layer_net(), two_layer_net()
    adam = LayerwiseAdam([[ours[2], ours[0]]], lr=0.05)
    reference = torch.optim.Adam(theirs.parameters(), lr=0.05)
    for step in range(5):
        set_grads(ours, step)
        set_grads(theirs, step)
        before = [p.detach().clone() for p in ours.parameters()]
        adam.step(ours[0])
        assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), before, strict=True))
        adam.step(ours[2])
        reference.step()
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


def test_denormal_moments_are_flushed_to_zero_every_few_steps():
    net = two_layer_net()
    adam = LayerwiseAdam([net[0]], lr=0.1, flush_every=4)
    set_grads(net, 0)
    adam.step(net[0])
    exp_avg, exp_avg_sq = adam._state[0][1][0], adam._state[0][2][0]
    tiny = torch.finfo(torch.float32).tiny
    with torch.no_grad():
        exp_avg[0, 0] = tiny / 1000  # a denormal, as a decayed moment becomes
        exp_avg[0, 1] = tiny * 1000  # a small normal number: kept
        exp_avg[0, 2] = -tiny / 1000  # negative denormal
        exp_avg[0, 3] = -tiny * 1000  # negative small normal: kept
        exp_avg_sq[0, 0] = tiny / 10  # the second moment decays 100x slower, but also does
        exp_avg_sq[0, 1] = tiny * 10
    for p in net[0].parameters():
        p.grad.zero_()  # no new gradient: the moments only decay
    adam.step(net[0])
    adam.step(net[0])
    assert exp_avg[0, 0] > 0 and exp_avg[0, 2] < 0 and exp_avg_sq[0, 0] > 0  # three steps
    adam.step(net[0])
    # the fourth step flushed the denormals and left the normal numbers alone
    assert exp_avg[0, 0] == 0 and exp_avg[0, 2] == 0 and exp_avg_sq[0, 0] == 0
    assert exp_avg[0, 1] > 0 and exp_avg[0, 3] < 0 and exp_avg_sq[0, 1] > 0
