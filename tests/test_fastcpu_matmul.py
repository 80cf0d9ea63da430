"""vaelab.fastcpu.matmul: the training step's products equal float64 ones, through either kernel."""

import pytest
import torch

from vaelab.fastcpu import matmul

# x86-64 with oneDNN in torch: its path is tested on every such CPU, Intel's included, where
# the default rule prefers MKL (see the vendor test below).
ONEDNN_HERE = matmul._ONEDNN_BUILT and torch.backends.mkldnn.enabled
needs_onednn = pytest.mark.skipif(not ONEDNN_HERE, reason="torch has no oneDNN on this machine")


@pytest.fixture(autouse=True)
def onednn_wherever_built(monkeypatch):
    monkeypatch.setattr(matmul, "_ONEDNN_FASTER", matmul._ONEDNN_BUILT)


def test_intel_cpus_keep_mkl_by_default(monkeypatch):
    monkeypatch.setattr(matmul, "_ONEDNN_FASTER", False)  # what GenuineIntel gets
    assert not matmul.uses_onednn(torch.empty(0, dtype=torch.float32), 10**9)
    assert matmul.backend(torch.empty(0)) == "torch"
    assert isinstance(matmul.cpu_vendor(), str)


def operands(b: int, n_in: int, n_out: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(b, n_in, generator=gen)
    w = torch.randn(n_out, n_in, generator=gen) / n_in**0.5
    bias = torch.randn(n_out, generator=gen)
    g = torch.randn(b, n_out, generator=gen)
    return a, w, bias, g


def close_to_float64(result: torch.Tensor, expected: torch.Tensor) -> None:
    # float32 rounding of sums of a few hundred terms: well inside 1e-5 of the largest entry
    assert result.dtype == torch.float32 and result.shape == expected.shape
    assert result.is_contiguous()
    err = (result.double() - expected).abs().max().item()
    assert err <= 1e-5 * max(expected.abs().max().item(), 1.0), err


# (batch, n_in, n_out): the notebook's four layers, a partial last batch, one image
SHAPES = [(128, 784, 400), (128, 400, 40), (128, 20, 400), (128, 400, 784), (96, 784, 400),
          (1, 400, 784)]
KERNELS = [pytest.param(True, id="onednn", marks=needs_onednn), pytest.param(False, id="torch")]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("onednn", KERNELS)
@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
def test_linear_is_the_activation_of_a_w_transpose_plus_b(shape, onednn, activation):
    a, w, bias, _ = operands(*shape)
    expected = a.double() @ w.double().T + bias.double()
    expected = {"relu": expected.relu(), "tanh": expected.tanh()}.get(activation, expected)
    with matmul.onednn_enabled(onednn):
        close_to_float64(matmul.linear(a, w, bias, activation), expected)
        close_to_float64(matmul.linear(a, w), a.double() @ w.double().T)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("onednn", KERNELS)
def test_input_and_weight_gradients(shape, onednn):
    a, w, _, g = operands(*shape)
    with matmul.onednn_enabled(onednn):
        close_to_float64(matmul.input_grad(g, w), g.double() @ w.double())
        close_to_float64(matmul.weight_grad(g, a), g.double().T @ a.double())


@needs_onednn
def test_large_float32_products_go_to_onednn_and_everything_else_to_torch():
    big = 128 * 784 * 400
    f32, f64 = torch.empty(0), torch.empty(0, dtype=torch.float64)
    assert matmul.uses_onednn(f32, big) and matmul.backend(f32) == "onednn"
    assert matmul.uses_onednn(f32, 128 * 400 * 40)  # the latent layer's products
    assert not matmul.uses_onednn(f32, 128 * 20 * 400)  # the decoder's first: MKL is faster
    assert not matmul.uses_onednn(f64, big)  # float64, as in the gradient tests
    with matmul.onednn_enabled(False):  # torch's own switch is obeyed
        assert not matmul.uses_onednn(f32, big) and matmul.backend(f32) == "torch"


@needs_onednn
def test_which_products_of_the_notebook_model_take_onednn(monkeypatch):
    calls = []
    real = matmul.onednn_linear
    monkeypatch.setattr(matmul, "onednn_linear", lambda *args: calls.append(1) or real(*args))

    def takes_onednn(product) -> bool:
        calls.clear()
        product()
        return bool(calls)

    a, w, bias, g = operands(128, 400, 40)  # the latent layer (2 million multiply-adds)
    assert takes_onednn(lambda: matmul.linear(a, w, bias))
    assert takes_onednn(lambda: matmul.input_grad(g, w))
    assert not takes_onednn(lambda: matmul.weight_grad(g, a))  # MKL reads g^T in place
    a, w, bias, g = operands(128, 784, 400)
    assert all(takes_onednn(p) for p in (lambda: matmul.linear(a, w, bias, "relu"),
                                         lambda: matmul.input_grad(g, w),
                                         lambda: matmul.weight_grad(g, a)))
    a, w, bias, g = operands(128, 20, 400)  # the decoder's first layer: MKL throughout
    assert not any(takes_onednn(p) for p in (lambda: matmul.linear(a, w, bias, "relu"),
                                             lambda: matmul.input_grad(g, w),
                                             lambda: matmul.weight_grad(g, a)))


@needs_onednn
def test_the_two_kernels_agree_and_each_is_deterministic():
    a, w, bias, g = operands(128, 400, 784)
    results = {}
    for onednn in (True, False):
        with matmul.onednn_enabled(onednn):
            first = [matmul.linear(a, w, bias, "relu"), matmul.input_grad(g, w),
                     matmul.weight_grad(g, a)]
            again = [matmul.linear(a, w, bias, "relu"), matmul.input_grad(g, w),
                     matmul.weight_grad(g, a)]
        assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
        results[onednn] = first
    for x, y in zip(results[True], results[False], strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("onednn", KERNELS)
def test_strided_operands_give_the_same_products(onednn):
    a, w, bias, g = operands(128, 400, 784)
    w_strided = torch.randn(400, 784).t()  # a (784, 400) view of transposed memory
    w_strided.copy_(w)
    g_strided = torch.randn(784, 128).t()
    g_strided.copy_(g)
    with matmul.onednn_enabled(onednn):
        torch.testing.assert_close(matmul.linear(a, w_strided, bias), matmul.linear(a, w, bias))
        torch.testing.assert_close(matmul.input_grad(g_strided, w), matmul.input_grad(g, w))
        torch.testing.assert_close(matmul.weight_grad(g_strided, a), matmul.weight_grad(g, a))


@pytest.mark.parametrize("shape", [(128, 784), (96, 400), (7, 5), (32, 1), (1, 9)])
def test_transposed_is_the_transpose_laid_out_contiguously(shape):
    t = torch.randn(shape)
    out = matmul.transposed(t)
    assert out.is_contiguous() and torch.equal(out, t.t())
    strided = torch.randn(shape[1], shape[0]).t()  # not contiguous: the plain copy is used
    assert torch.equal(matmul.transposed(strided), strided.t())


def test_unknown_activation_is_refused():
    a, w, bias, _ = operands(4, 3, 2)
    with pytest.raises(ValueError, match="activation must be None or one of"):
        matmul.linear(a, w, bias, "sigmoid")


@pytest.mark.parametrize("product, args, match", [
    (matmul.linear, ((128, 784), (400, 700)), "linear needs a"),
    (matmul.linear, ((784,), (400, 784)), "linear needs a"),
    (matmul.input_grad, ((128, 784), (700, 400)), "input_grad needs g"),
    (matmul.weight_grad, ((128, 784), (100, 400)), "weight_grad needs g"),
])
def test_mismatched_shapes_are_refused_with_both_shapes_named(product, args, match):
    tensors = [torch.zeros(shape) for shape in args]
    with pytest.raises(ValueError, match=match) as err:
        product(*tensors)
    assert all(str(tuple(shape)) in str(err.value) for shape in args)


def test_onednn_switch_is_set_for_the_block_and_a_users_false_is_kept():
    before = torch.backends.mkldnn.enabled
    try:
        with matmul.onednn_enabled(False):
            assert not torch.backends.mkldnn.enabled
        assert torch.backends.mkldnn.enabled == before
        torch.backends.mkldnn.enabled = False  # the user turned oneDNN off
        with matmul.onednn_enabled(True):
            assert not torch.backends.mkldnn.enabled
        assert not torch.backends.mkldnn.enabled
    finally:
        torch.backends.mkldnn.enabled = before


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("onednn", KERNELS)
@pytest.mark.parametrize("activation", [None, "relu"])
def test_prepared_layer_products_are_the_checked_ones_and_see_weight_updates(
        shape, onednn, activation):
    a, w, bias, g = operands(*shape)
    with matmul.onednn_enabled(onednn):
        products = matmul.layer_products(w, bias, activation, batch=shape[0])
        for _ in range(2):
            assert torch.equal(products.forward(a), matmul.linear(a, w, bias, activation))
            assert torch.equal(products.input_grad(g), matmul.input_grad(g, w))
            assert torch.equal(products.weight_grad(g, a), matmul.weight_grad(g, a))
            with torch.no_grad():
                w.mul_(-0.5)  # an optimizer step, in place
                bias.add_(1.0)


def test_prepared_layer_products_keep_the_kernels_chosen_when_prepared(monkeypatch):
    calls = []
    real = matmul.onednn_linear
    monkeypatch.setattr(matmul, "onednn_linear", lambda *args: calls.append(1) or real(*args))
    a, w, bias, g = operands(128, 784, 400)
    with matmul.onednn_enabled(False):
        products = matmul.layer_products(w, bias, "relu", batch=128)
    products.forward(a), products.input_grad(g), products.weight_grad(g, a)
    assert not calls  # prepared with oneDNN off: torch's products, whatever the switch says now
    with pytest.raises(ValueError, match="activation must be None or one of"):
        matmul.layer_products(w, bias, "sigmoid")
