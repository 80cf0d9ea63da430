"""Backpropagation through the MLP VAE written out by hand: the gradients autograd would give.

``vaelab.training.train`` uses this for its steps because it is faster on a CPU (no graph,
no per-operation bookkeeping, and the matrix products on the fastest kernel torch carries,
through vaelab.matmul); the loss it differentiates is ``vaelab.vae.vae_loss`` for the same
noise, and tests/test_vae_gradients.py checks every gradient against autograd's. Notation
for one batch of B images:

    h_0 = x (B, D)                                encoder layers: h_l = act(h_{l-1} W_l^T + b_l)
    [mu, logvar] = h_L W_s^T + b_s  (B, 2d)       z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)
    decoder layers from z, then logits (B, D)     p(x|z) = Bernoulli(sigmoid(logits))

    loss = mean_b [ r * recon_b + beta * kl_b ]   recon_b = sum_i softplus(l_bi) - x_bi l_bi
                                                  kl_b = 1/2 sum_j (mu^2 + e^logvar - 1 - logvar)

Backwards: d loss / d logits = r / B * (sigmoid(logits) - x); through each Linear layer
dW = g^T a, db = sum_b g, da = g W; through ReLU keep g where the output is > 0, through
tanh multiply by 1 - h^2; at the latent layer
    d mu     = dz + beta / B * mu
    d logvar = dz * eps * sigma / 2 + beta / B * (sigma^2 - 1) / 2.
With free bits the KL term is beta * sum_j max(mean_b kl_bj, free_bits): a latent dimension
whose batch-mean KL is below the floor gets no KL gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vaelab import matmul
from vaelab.vae import VAE, reparameterize, vae_loss

LayerCallback = Callable[[nn.Linear], None]

_ACTIVATION_BACKWARD = {
    # gradient through the activation, from its output h (what autograd saves for both)
    "relu": lambda g, h: torch.ops.aten.threshold_backward(g, h, 0),
    "tanh": lambda g, h: torch.ops.aten.tanh_backward(g, h),
}


def _linears(seq: nn.Sequential) -> list[nn.Linear]:
    return [m for m in seq if isinstance(m, nn.Linear)]


def backward_groups(model: VAE) -> list[list[nn.Linear]]:
    """The model's Linear layers in two groups, in the order loss_and_gradients finishes them.

    First the decoder's (output layer first), all done once the backward pass leaves the
    decoder; then the latent layer and the encoder's, done at the end. For
    vaelab.optim.LayerwiseAdam: one update per group, each as soon as the group is done.
    """
    decoder = [model.decoder[1], *reversed(_linears(model.decoder[0]))]
    return [decoder, [model.to_stats, *reversed(_linears(model.encoder))]]


def _forward(layers: list[nn.Linear], a: torch.Tensor, act: str, acts: list[torch.Tensor]
             ) -> torch.Tensor:
    """Hidden layers: append each layer's input to acts; return the last output."""
    for layer in layers:
        acts.append(a)
        a = matmul.linear(a, layer.weight, layer.bias, act)
    return a


def _weight_grads(layer: nn.Linear, g: torch.Tensor, a: torch.Tensor) -> None:
    """layer.grad <- gradients for output gradient g (B, n_out) and input a (B, n_in)."""
    layer.weight.grad = matmul.weight_grad(g, a)
    layer.bias.grad = g.sum(dim=0)


def _backward(layers: list[nn.Linear], g: torch.Tensor, outputs: list[torch.Tensor],
              inputs: list[torch.Tensor], act: str, need_input_grad: bool,
              on_layer_done: LayerCallback) -> torch.Tensor | None:
    """Back through hidden layers (last first); g is the gradient w.r.t. the last output."""
    for i in range(len(layers) - 1, -1, -1):
        g = _ACTIVATION_BACKWARD[act](g, outputs[i])
        _weight_grads(layers[i], g, inputs[i])
        if i > 0 or need_input_grad:
            g = matmul.input_grad(g, layers[i].weight)
        on_layer_done(layers[i])
    return g if need_input_grad or not layers else None


def _nothing(layer: nn.Linear) -> None:
    pass


@torch.no_grad()
def loss_and_gradients(
    model: VAE,
    x: torch.Tensor,
    eps: torch.Tensor,
    kl_weight: float = 1.0,
    recon_weight: float = 1.0,
    free_bits: float = 0.0,
    on_layer_done: LayerCallback | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set every parameter's .grad to d loss / d parameter; return (recon_sum, kl_sum).

    x: (B, D) float in {0, 1} (or [0, 1]); eps: (B, d) standard normal noise. The loss is
    ``vae_loss(logits, x, mu, logvar, kl_weight, free_bits, recon_weight).loss`` at
    z = mu + exp(logvar / 2) * eps. recon_sum and kl_sum are 0-dim tensors: the two terms
    of the negative ELBO summed over the batch (the true KL, never floored). Shapes are
    not checked here (the training loop checks its data once).

    on_layer_done(layer) is called once per Linear layer, as soon as the backward pass is done
    with it: its .grad is final and its weights will not be read again in this call, so the
    callback may update them (vaelab.optim.LayerwiseAdam.step does). Without it the model's
    weights are left unchanged.
    """
    on_layer_done = on_layer_done or _nothing
    b, d, act = x.shape[0], model.latent_dim, model.activation
    enc, dec = _linears(model.encoder), _linears(model.decoder[0])
    out_layer, stats_layer = model.decoder[1], model.to_stats

    # forward
    enc_in: list[torch.Tensor] = []
    h = _forward(enc, x, act, enc_in)
    enc_out = enc_in[1:] + [h]
    stats = matmul.linear(h, stats_layer.weight, stats_layer.bias)
    mu, logvar = stats[:, :d], stats[:, d:]
    std = torch.exp(0.5 * logvar)
    noise = std * eps  # sigma * eps, reused by the backward pass
    z = mu + noise
    dec_in: list[torch.Tensor] = []
    h_dec = _forward(dec, z, act, dec_in)
    dec_out = dec_in[1:] + [h_dec]
    logits = matmul.linear(h_dec, out_layer.weight, out_layer.bias)

    var = std * std
    # KL per latent dimension, 1/2 (mu^2 + sigma^2 - 1 - logvar), as (B, d)
    kl_elem = torch.addcmul(var - logvar, mu, mu).sub_(1.0).mul_(0.5)
    kl_sum = kl_elem.sum()
    # sum_i softplus(l) - x l: the BCE-with-logits of every pixel, summed
    recon_sum = F.softplus(logits).sum() - torch.dot(x.reshape(-1), logits.reshape(-1))

    # backward: decoder
    g = torch.sigmoid(logits).sub_(x).mul_(recon_weight / b)  # d loss / d logits
    _weight_grads(out_layer, g, h_dec)
    g = matmul.input_grad(g, out_layer.weight)  # d loss / d h_dec
    on_layer_done(out_layer)
    dz = _backward(dec, g, dec_out, dec_in, act, need_input_grad=True,
                   on_layer_done=on_layer_done)
    # latent layer: reparameterization and the analytic KL
    c = kl_weight / b
    if free_bits > 0:
        keep = kl_elem.mean(dim=0) >= free_bits  # clamp(min=free_bits) passes these
        c = c * keep.to(x.dtype)
    # c is a number, or with free bits a (d,) vector: one weight per latent dimension
    g_mu = torch.addcmul(dz, c, mu) if free_bits > 0 else torch.add(dz, mu, alpha=c)
    # d logvar = (dz * eps * sigma + c * (sigma^2 - 1)) / 2
    g_logvar = torch.addcmul((var - 1.0).mul_(0.5 * c), dz, noise, value=0.5)
    g_stats = torch.cat((g_mu, g_logvar), dim=1)
    _weight_grads(stats_layer, g_stats, h)
    g = matmul.input_grad(g_stats, stats_layer.weight) if enc else None
    on_layer_done(stats_layer)
    if enc:
        _backward(enc, g, enc_out, enc_in, act, need_input_grad=False,
                  on_layer_done=on_layer_done)
    return recon_sum, kl_sum


def autograd_gradients(model: VAE, x: torch.Tensor, eps: torch.Tensor,
                       **loss_kwargs: float) -> dict[str, torch.Tensor]:
    """The same gradients the slow, sure way: autograd on vae_loss, by parameter name.

    Same arguments as loss_and_gradients (loss_kwargs: kl_weight, recon_weight, free_bits).
    The model's .grad fields are left as they were.
    """
    with torch.enable_grad():  # autograd.grad returns the gradients and leaves .grad alone
        mu, logvar = model.encode(x)
        loss = vae_loss(model.decode(reparameterize(mu, logvar, eps)), x, mu, logvar,
                        **loss_kwargs).loss
        grads = torch.autograd.grad(loss, [p for _, p in model.named_parameters()])
    return {name: g for (name, _), g in zip(model.named_parameters(), grads, strict=True)}


def largest_relative_difference(grads: dict[str, torch.Tensor],
                                reference: dict[str, torch.Tensor]) -> float:
    """max over parameters of max |grad - reference| / max |reference| (same names in both)."""
    if set(grads) != set(reference):
        raise ValueError(f"the two sets of gradients name different parameters: "
                         f"{sorted(set(grads) ^ set(reference))}")
    return max(((grads[k] - reference[k]).abs().max() / reference[k].abs().max().clamp(
        min=torch.finfo(reference[k].dtype).tiny)).item() for k in reference)
