"""An optional accelerator: a faster training *step* for one model on the CPU.

``vaelab.training.train`` runs one readable loop (permutation, batches, binarization,
schedules, progress, the non-finite stop) and, for each batch, one *step*: the loss, its
gradients and the optimizer's update. The plain step is autograd and ``torch.optim.Adam``.
This subpackage offers another step for exactly one kind of model, ``vaelab.vae.VAE`` itself
with its default MLPs and a Bernoulli likelihood, in float32 on the CPU:

- ``gradients``: the loss's gradients backpropagated by hand (checked against autograd);
- ``matmul``: each layer's three matrix products on the faster of torch's two CPU kernels
  (oneDNN runs them 1.9-2.3x faster than MKL on the AMD CPU this project is measured on);
- ``adam``: Adam's update of each group of layers as soon as backpropagation has left it.

They use private torch operators (``torch.ops.mkldnn._linear_pointwise``,
``torch._fused_adam_``, ...). ``unsupported(model)`` gives the reason this step cannot train a
model (None when it can); ``train(backend="auto")`` uses it only then, and falls back to
the plain step otherwise, so nothing routes a model it does not understand here, and a torch
release that drops one of those operators only loses the speed-up. Measured on the 2-core
machine (``make bench``): an epoch of notebook 04's model in about 0.8 s here against about
1.3 s for the plain step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vaelab.decoder_likelihoods import Bernoulli
from vaelab.fastcpu.adam import LayerwiseAdam
from vaelab.fastcpu.gradients import backward_groups, gradient_step
from vaelab.vae import VAE

Step = Callable[..., torch.Tensor]

# The private operators the step calls: (where it is, how to reach it).
PRIVATE_OPS: dict[str, Callable[[], object]] = {
    "torch.ops.mkldnn._linear_pointwise": lambda: torch.ops.mkldnn._linear_pointwise,
    "torch._C._get_mkldnn_enabled": lambda: torch._C._get_mkldnn_enabled,
    "torch.ops.aten.threshold_backward": lambda: torch.ops.aten.threshold_backward,
    "torch.ops.aten.tanh_backward": lambda: torch.ops.aten.tanh_backward,
    "torch.ops.aten.hardshrink.out": lambda: torch.ops.aten.hardshrink.out,
    "torch._fused_adam_": lambda: torch._fused_adam_,
}


def missing_private_ops() -> list[str]:
    """The private torch operators this step needs that the installed torch lacks."""
    missing = []
    for name, reach in PRIVATE_OPS.items():
        try:
            reach()
        except (AttributeError, RuntimeError):
            missing.append(name)
    return missing


def unsupported(model: object) -> str | None:
    """Why this step cannot train ``model`` exactly as the plain step would; None if it can."""
    if type(model) is not VAE:
        return (f"it knows only vaelab.vae.VAE itself, not {type(model).__name__} (a subclass "
                "or another class may compute something else in encode or decode)")
    overridden = sorted(set(vars(model)) & {"encode", "decode", "forward"})
    if overridden:
        return f"the model's {', '.join(overridden)} was replaced on the instance"
    if not model.default_mlp:
        return "the model has its own encoder or decoder module (it knows only the default MLPs)"
    if type(model.likelihood) is not Bernoulli:
        return f"its gradients are written for a Bernoulli likelihood, not {model.likelihood!r}"
    layers = [m for net in (model.encoder, model.decoder) for m in net
              if isinstance(m, torch.nn.Linear)]
    known = {id(p) for layer in layers for p in (layer.weight, layer.bias)}
    params = list(model.parameters())
    if {id(p) for p in params} != known or any(layer.bias is None for layer in layers):
        return "the model has parameters outside its MLP layers (they would never be trained)"
    if any(not p.requires_grad for p in params):
        return "some parameters are frozen (requires_grad=False); it would update them anyway"
    if any(p.dtype != torch.float32 for p in params):
        return f"it runs in float32 only, the model is {params[0].dtype}"
    if any(p.device.type != "cpu" for p in params):
        return f"it runs on the CPU only, the model is on {params[0].device}"
    missing = missing_private_ops()
    if missing:
        return f"this torch ({torch.__version__}) lacks {', '.join(missing)}"
    return None


def make_step(model: VAE, optimizer: torch.optim.Optimizer) -> Step:
    """The accelerated step for ``model``: step(x, kl_weight, free_bits, recon_weight) -> (2,).

    Does what the plain step does for a batch x (B, D) of binary float32 images: one
    reparameterized z per image from torch's global generator (the same draws), the
    gradients of ``vaelab.vae.model_loss``, Adam's update (its moments kept here; the
    learning rate read from ``optimizer``'s first group at every step, so the loop's schedule
    applies). Returns the batch's summed (recon, kl) as a tensor. Raises ValueError with the
    reason for a model it does not support.
    """
    reason = unsupported(model)
    group = optimizer.param_groups[0]
    if reason is None and (type(optimizer) is not torch.optim.Adam
                           or len(optimizer.param_groups) != 1 or group["weight_decay"]
                           or group["amsgrad"] or group["maximize"]):
        reason = "it replaces a plain torch.optim.Adam with one parameter group only"
    if reason:
        raise ValueError(f"the fastcpu step cannot train this model: {reason}; "
                         "use backend='autograd' (or 'auto', which falls back by itself)")
    backprop = gradient_step(model)
    adam = LayerwiseAdam(backward_groups(model), lr=group["lr"], betas=group["betas"],
                         eps=group["eps"])
    latent_dim = model.latent_dim

    def step(x: torch.Tensor, kl_weight: float = 1.0, free_bits: float = 0.0,
             recon_weight: float = 1.0) -> torch.Tensor:
        adam.lr = group["lr"]
        eps = torch.randn(x.shape[0], latent_dim)
        recon, kl = backprop(x, eps, kl_weight=kl_weight, free_bits=free_bits,
                             recon_weight=recon_weight, on_layer_done=adam.step)
        return torch.stack((recon, kl))

    return step
