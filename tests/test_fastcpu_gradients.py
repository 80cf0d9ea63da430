"""vaelab.fastcpu.gradients: the hand-written backward pass gives autograd's gradients."""

import pytest
import torch

from vaelab.fastcpu import gradients as vae_gradients
from vaelab.fastcpu import matmul
from vaelab.fastcpu.gradients import loss_and_gradients
from vaelab.vae import VAE, vae_loss


def autograd_reference(model: VAE, x, eps, **loss_kwargs):
    """Gradients of vae_loss(...).loss by autograd, and the summed terms, for noise eps."""
    model.zero_grad(set_to_none=True)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    terms = vae_loss(model.decode(z), x, mu, logvar, **loss_kwargs)
    terms.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads, terms.recon.sum().item(), terms.kl.sum().item()


def case(hidden, activation, latent=3, d_in=10, b=7, seed=0, binary=True):
    torch.manual_seed(seed)
    model = VAE(latent_dim=latent, hidden=hidden, input_dim=d_in, activation=activation).double()
    x = torch.rand(b, d_in, dtype=torch.float64)
    if binary:
        x = (x < 0.4).double()
    eps = torch.randn(b, latent, dtype=torch.float64)
    return model, x, eps


@pytest.mark.parametrize("hidden", [(), (8,), (8, 5)])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("loss_kwargs", [
    {},
    {"kl_weight": 0.3},
    {"recon_weight": 0.0},
    {"kl_weight": 0.0, "recon_weight": 2.0},
])
def test_gradients_and_terms_equal_autograd(hidden, activation, loss_kwargs):
    model, x, eps = case(hidden, activation)
    expected, recon, kl = autograd_reference(model, x, eps, **loss_kwargs)
    recon_sum, kl_sum = loss_and_gradients(model, x, eps, **loss_kwargs)
    assert recon_sum.item() == pytest.approx(recon, rel=1e-12)
    assert kl_sum.item() == pytest.approx(kl, rel=1e-12)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-10, atol=1e-12, msg=name)


def test_grey_pixel_probabilities_give_autograd_gradients_too():
    model, x, eps = case((8,), "relu", binary=False)
    expected, recon, _ = autograd_reference(model, x, eps)
    recon_sum, _ = loss_and_gradients(model, x, eps)
    assert recon_sum.item() == pytest.approx(recon, rel=1e-12)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-10, atol=1e-12, msg=name)


def test_free_bits_cut_the_kl_gradient_of_dimensions_below_the_floor():
    model, x, eps = case((8,), "relu", latent=4, b=32)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        per_dim = (0.5 * (mu**2 + logvar.exp() - 1 - logvar)).mean(0)
    # a floor between the dimensions' KLs: some dimensions are floored, some are not
    low, high = per_dim.sort().values[1:3].tolist()
    floor = (low + high) / 2
    assert (per_dim < floor).any() and (per_dim > floor).any()
    expected, _, kl = autograd_reference(model, x, eps, kl_weight=0.5, free_bits=floor)
    _, kl_sum = loss_and_gradients(model, x, eps, kl_weight=0.5, free_bits=floor)
    assert kl_sum.item() == pytest.approx(kl, rel=1e-12)  # the true KL, not the floored one
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-10, atol=1e-12, msg=name)


def test_float32_at_the_notebook_shapes_matches_autograd_to_float_precision():
    torch.manual_seed(0)
    model = VAE()  # 784-400-20, ReLU: notebook 04's network
    x = (torch.rand(128, 784) < 0.13).float()
    eps = torch.randn(128, 20)
    expected, recon, kl = autograd_reference(model, x, eps)
    recon_sum, kl_sum = loss_and_gradients(model, x, eps)
    assert recon_sum.item() == pytest.approx(recon, rel=1e-5)
    assert kl_sum.item() == pytest.approx(kl, rel=1e-5)
    for name, p in model.named_parameters():
        scale = expected[name].abs().max().item()
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-5 * scale,
                                   msg=name)


def test_gradients_overwrite_stale_ones_and_leave_the_weights_alone():
    model, x, eps = case((8,), "tanh")
    expected, _, _ = autograd_reference(model, x, eps)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.full_like(p, 123.0)
    loss_and_gradients(model, x, eps)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-10, atol=1e-12, msg=name)
        assert torch.equal(p.detach(), before[name])


def test_a_wrong_gradient_would_be_caught():
    # The comparison above can fail: a wrong KL weight changes the mu gradients.
    model, x, eps = case((8,), "relu")
    expected, _, _ = autograd_reference(model, x, eps, kl_weight=3.0)
    loss_and_gradients(model, x, eps, kl_weight=1.0)
    assert not torch.allclose(model.encoder[-1].weight.grad, expected["encoder.2.weight"])


@pytest.mark.parametrize("hidden", [(), (8,), (8, 5)])
def test_each_layer_is_handed_over_once_with_its_final_gradient(hidden):
    model, x, eps = case(hidden, "relu")
    expected, _, _ = autograd_reference(model, x, eps)
    names = {id(m): name for name, m in model.named_modules()}
    handed = []

    def update(layer):
        # the gradient is final when the layer is handed over ...
        torch.testing.assert_close(layer.weight.grad, expected[names[id(layer)] + ".weight"],
                                   rtol=1e-10, atol=1e-12)
        handed.append(names[id(layer)])
        # ... and changing the weights now does not change any other gradient
        with torch.no_grad():
            layer.weight.add_(1.0)

    loss_and_gradients(model, x, eps, on_layer_done=update)
    linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(handed) == sorted(linears)
    assert handed[0] == [n for n in linears if n.startswith("decoder")][-1]  # output layer first
    # backward_groups lists the layers in the order they are handed over
    groups = vae_gradients.backward_groups(model)
    assert [names[id(m)] for group in groups for m in group] == handed
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-10, atol=1e-12, msg=name)


def test_the_packaged_autograd_reference_and_the_difference_measure():
    model, x, eps = case((8,), "tanh")
    expected, _, _ = autograd_reference(model, x, eps, kl_weight=0.7)
    for p in model.parameters():
        p.grad = torch.full_like(p, 5.0)
    by_autograd = vae_gradients.autograd_gradients(model, x, eps, kl_weight=0.7)
    assert all(torch.equal(p.grad, torch.full_like(p, 5.0)) for p in model.parameters())
    for name, g in by_autograd.items():
        torch.testing.assert_close(g, expected[name], rtol=1e-12, atol=0.0)
    loss_and_gradients(model, x, eps, kl_weight=0.7)
    by_hand = {name: p.grad for name, p in model.named_parameters()}
    assert vae_gradients.largest_relative_difference(by_hand, by_autograd) < 1e-10
    off = dict(by_hand, **{"encoder.2.bias": by_hand["encoder.2.bias"] * 1.01})
    assert vae_gradients.largest_relative_difference(off, by_autograd) == pytest.approx(
        0.01, rel=0.5)
    with pytest.raises(ValueError, match="different parameters"):
        vae_gradients.largest_relative_difference({"a": by_hand["encoder.2.bias"]}, by_autograd)


@pytest.mark.parametrize("hidden", [(), (8,), (8, 5)])
def test_a_prepared_step_follows_the_weights_and_the_batch_size(hidden):
    # gradient_step prepares once; each call must still see the current weights, whatever
    # the batch size (the last batch of an epoch is smaller), and give autograd's gradients.
    model, x, eps = case(hidden, "tanh", b=9)
    step = vae_gradients.gradient_step(model)
    for rows in (9, 4, 9):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.1)  # what the optimizer does between steps: in place
        expected, recon, kl = autograd_reference(model, x[:rows], eps[:rows], kl_weight=0.6)
        recon_sum, kl_sum = step(x[:rows], eps[:rows], kl_weight=0.6)
        assert recon_sum.item() == pytest.approx(recon, rel=1e-12)
        assert kl_sum.item() == pytest.approx(kl, rel=1e-12)
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.grad, expected[name], rtol=1e-10, atol=1e-12, msg=name)


def test_a_prepared_step_is_loss_and_gradients_bit_for_bit_and_follows_the_kernel_switch():
    torch.manual_seed(0)
    model = VAE()  # the notebook's shapes, where the large products take oneDNN
    x, eps = (torch.rand(128, 784) < 0.13).float(), torch.randn(128, 20)
    step = vae_gradients.gradient_step(model)
    by_kernel = {}
    for onednn in (True, False, True):
        with matmul.onednn_enabled(onednn):
            loss_and_gradients(model, x, eps)
            once = {name: p.grad for name, p in model.named_parameters()}
            step(x, eps)
            assert all(torch.equal(p.grad, once[name]) for name, p in model.named_parameters())
        by_kernel[onednn] = once["encoder.0.weight"]
    if matmul.uses_onednn(x):  # the two kernels sum in different orders: the switch was obeyed
        assert not torch.equal(by_kernel[True], by_kernel[False])
