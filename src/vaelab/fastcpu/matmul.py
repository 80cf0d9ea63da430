"""The three matrix products of a Linear layer's training step, on the fastest kernel torch carries.

For a layer y = act(a W^T + b) with a (B, n_in), W (n_out, n_in), the training step needs
    linear:       y  = act(a W^T + b)     (B, n_out)     forward
    input_grad:   da = g W                (B, n_in)      backward, g = d loss / d (a W^T + b)
    weight_grad:  dW = g^T a              (n_out, n_in)  backward

``torch.addmm`` / ``torch.mm`` on a CPU call the BLAS torch was built with (MKL on x86-64),
which picks its kernels by CPU vendor and does not run its fastest ones on AMD processors
(pytorch/builder#504). The same torch build carries oneDNN, whose matrix kernels are chosen
by instruction set alone (here its AVX-512 brgemm, as ONEDNN_VERBOSE=1 shows);
``torch.ops.mkldnn._linear_pointwise`` (what torch.compile's CPU backend emits for Linear
layers) reaches it without a compiler. Measured on this project's 2-core AMD EPYC at the
training shapes: 1.9-2.3x faster than MKL for the five large products (`make bench` times
both, product by product; not measured on an Intel CPU, where MKL runs its best kernels). The
arithmetic is float32 throughout (oneDNN's default math mode is strict: no bfloat16 or TF32
inside); only the order of the sums differs, so results agree to float32 rounding, not bit
for bit. oneDNN also applies the activation while the output is still in cache.

oneDNN is used for float32 tensors on an x86-64 CPU that is not Intel's (where MKL runs its
fastest kernels and stays faster, see _ONEDNN_FASTER) when torch has it and it is enabled
(``torch.backends.mkldnn.enabled``; ``torch.backends.mkldnn.enabled = False`` turns it off),
for products of at least ONEDNN_MIN_MACS multiply-adds: a oneDNN call costs about
10 us more than an MKL call before any arithmetic, so MKL wins below that (measured at the
training shapes: MKL faster at 1 million multiply-adds, 128 x 20 x 400, oneDNN 10-30% faster
at 2 million, 128 x 400 x 40, and 1.5x faster at 5 million). The rule is fixed by the
shapes, never by a timing, so a run is reproducible bit for bit. Everything else (a GPU,
float64 as in the gradient tests, ARM machines) uses torch's own products.
Both agree to float32 precision (tests/test_fastcpu_matmul.py). No autograd here: these serve
vaelab.fastcpu.gradients' hand-written backward pass, which takes each layer's three products
from layer_products once per batch size instead of choosing the kernels on every call.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch

ACTIVATIONS = ("relu", "tanh")
ONEDNN_MIN_MACS = 1_500_000
# weight_grad first copies g^T into a contiguous block for oneDNN (5-10 us at the latent
# layer's 128 x 40), so there MKL, which reads g transposed in place, stays faster up to here:
ONEDNN_MIN_MACS_WEIGHT_GRAD = 4_000_000


def cpu_vendor() -> str:
    """The x86 CPU vendor string ("GenuineIntel", "AuthenticAMD", ...), or "" if unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "GenuineIntel" if "intel" in platform.processor().lower() else ""


# Fixed for the process: an x86-64 CPU and a torch built with oneDNN ...
_ONEDNN_BUILT = (platform.machine().lower() in ("x86_64", "amd64")
                 and torch.backends.mkldnn.is_available())
# ... and not an Intel CPU, where MKL runs its best kernels: measured with `make bench` on a
# 2-core Intel Xeon (AVX-512), an epoch took 2.2 s with every product through MKL and 3.0 s
# with the large ones through oneDNN (on the AMD EPYC above, 1.2 s against 0.77 s).
_ONEDNN_FASTER = _ONEDNN_BUILT and cpu_vendor() != "GenuineIntel"
_TORCH_ACTIVATION = {"relu": torch.Tensor.relu_, "tanh": torch.Tensor.tanh_}  # in place


def uses_onednn(t: torch.Tensor, macs: int = ONEDNN_MIN_MACS) -> bool:
    """Whether a product of ``macs`` multiply-adds on tensors like ``t`` goes to oneDNN."""
    # Cheapest tests first: the public products below ask on every call.
    return (macs >= ONEDNN_MIN_MACS and _ONEDNN_FASTER and t.dtype is torch.float32
            and t.is_cpu and torch._C._get_mkldnn_enabled())  # torch.backends.mkldnn.enabled


def backend(t: torch.Tensor) -> str:
    """'onednn' or 'torch': the kernel that the large products of tensors like ``t`` use."""
    return "onednn" if uses_onednn(t) else "torch"


@contextlib.contextmanager
def onednn_enabled(enabled: bool) -> Iterator[None]:
    """torch's switch for oneDNN (torch.backends.mkldnn.enabled) set inside the block only.

    enabled=False sends every product to torch.mm (what `make bench` compares against); True
    leaves the switch as it was, so a user's own False is kept.
    """
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled and before
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def onednn_linear(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None,
                  activation: str = "none") -> torch.Tensor:
    """act(a b^T + bias) by oneDNN, float32 on a CPU: a (M, K), b (N, K), bias (N,) -> (M, N).

    a is copied first unless contiguous; b may have any strides. activation: "none", "relu"
    or "tanh". Call it only where uses_onednn says yes (else torch raises its own error).
    """
    return torch.ops.mkldnn._linear_pointwise(a, b, bias, activation, [], "")


def _check(left: torch.Tensor, right: torch.Tensor, left_dim: int, right_dim: int,
           what: str) -> None:
    """Both operands 2-D with matching inner sizes, else a ValueError naming the shapes."""
    if left.ndim != 2 or right.ndim != 2 or left.shape[left_dim] != right.shape[right_dim]:
        raise ValueError(f"{what}: got shapes {tuple(left.shape)} and {tuple(right.shape)}")


class LayerProducts(NamedTuple):
    """The three products of one Linear layer (weight W (n_out, n_in), bias b) at one batch size.

    forward(a) = act(a W^T + b): (B, n_in) -> (B, n_out); input_grad(g) = g W: (B, n_out) ->
    (B, n_in); weight_grad(g, a) = g^T a -> (n_out, n_in).
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    input_grad: Callable[[torch.Tensor], torch.Tensor]
    weight_grad: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def layer_products(weight: torch.Tensor, bias: torch.Tensor | None = None,
                   activation: str | None = None, batch: int = 1) -> LayerProducts:
    """The products of the layer (weight, bias, activation) at ``batch`` rows, kernels chosen now.

    What linear, input_grad and weight_grad compute (with the same kernels: they call this, or
    for weight_grad the same choice), without their checks and kernel choice on every call: a
    training loop makes the same products thousands of times
    (vaelab.vae_gradients.gradient_step keeps one set per layer and batch size). The
    choice follows torch's oneDNN switch as it is now. weight and bias are held by reference,
    so their updates are seen; the operands are not checked.
    """
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None or one of {ACTIVATIONS}, got {activation!r}")
    macs = batch * weight.numel()
    if uses_onednn(weight, macs):
        act = activation or "none"

        def forward(a: torch.Tensor) -> torch.Tensor:
            return onednn_linear(a, weight, bias, act)

        def input_grad(g: torch.Tensor) -> torch.Tensor:
            return onednn_linear(g, weight.t())
    else:
        in_place = _TORCH_ACTIVATION[activation] if activation else None

        def forward(a: torch.Tensor) -> torch.Tensor:
            y = torch.addmm(bias, a, weight.t()) if bias is not None else a.mm(weight.t())
            return in_place(y) if in_place else y

        def input_grad(g: torch.Tensor) -> torch.Tensor:
            return g.mm(weight)
    return LayerProducts(forward, input_grad, _weight_grad_kernel(weight, macs))


def linear(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           activation: str | None = None) -> torch.Tensor:
    """act(a weight^T + bias): a (B, n_in), weight (n_out, n_in), bias (n_out,) -> (B, n_out).

    activation: None, "relu" or "tanh".
    """
    _check(a, weight, 1, 1, "linear needs a (B, n_in) and weight (n_out, n_in)")
    return layer_products(weight, bias, activation, a.shape[0]).forward(a)


def input_grad(g: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """g weight: g (B, n_out), weight (n_out, n_in) -> (B, n_in), the gradient of the input."""
    _check(g, weight, 1, 0, "input_grad needs g (B, n_out) and weight (n_out, n_in)")
    return layer_products(weight, batch=g.shape[0]).input_grad(g)


def weight_grad(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """g^T a: g (B, n_out), a (B, n_in) -> (n_out, n_in), the gradient of the weight."""
    _check(g, a, 0, 0, "weight_grad needs g (B, n_out) and a (B, n_in) with the same B")
    return _weight_grad_kernel(g, g.numel() * a.shape[1])(g, a)


def _weight_grad_onednn(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return onednn_linear(transposed(g), a.t())  # oneDNN wants its first operand contiguous


def _weight_grad_torch(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return g.t().mm(a)


def _weight_grad_kernel(like: torch.Tensor, macs: int
                        ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if macs >= ONEDNN_MIN_MACS_WEIGHT_GRAD and uses_onednn(like, macs):
        return _weight_grad_onednn
    return _weight_grad_torch


def transposed(t: torch.Tensor, block: int = 16) -> torch.Tensor:
    """t^T as a contiguous tensor: t (R, C) -> (C, R).

    Copied in blocks of ``block`` rows: torch's element-by-element transposing copy reads
    and writes across cache lines; viewing R as (R / block, block) lets each step move
    ``block`` neighbouring values (measured: 19 us instead of 37 for 128 x 784).
    """
    rows, cols = t.shape
    if rows % block or not t.is_contiguous():
        return t.t().contiguous()
    out = torch.empty((cols, rows), dtype=t.dtype, device=t.device)
    out.view(cols, rows // block, block).copy_(t.view(rows // block, block, cols).permute(2, 0, 1))
    return out
