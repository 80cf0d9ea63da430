"""Backpropagation through the MLP VAE written out by hand: the gradients autograd would give.

The accelerator's step (``vaelab.fastcpu.make_step``) uses this because it is faster on a
CPU (no graph, no per-operation bookkeeping, and the matrix products on the fastest kernel
torch carries, through vaelab.fastcpu.matmul); the loss it differentiates is
``vaelab.vae.vae_loss`` for the same noise, and tests/test_fastcpu_gradients.py checks every
gradient against autograd's. It knows one layout only: ``vaelab.vae.VAE``'s default MLPs
(``encoder`` = hidden layers then the [mu, logvar] layer, ``decoder`` = hidden layers then
the logits layer) with a Bernoulli likelihood; ``vaelab.fastcpu.unsupported`` says when a
model is anything else. Notation for one batch of B images:

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

from vaelab.fastcpu import matmul
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
    vaelab.fastcpu.adam.LayerwiseAdam: one update per group, each as soon as the group is done.
    """
    return [list(reversed(_linears(model.decoder))), list(reversed(_linears(model.encoder)))]


StepFunction = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def gradient_step(model: VAE) -> StepFunction:
    """loss_and_gradients for this model, its layers looked up once: step(x, eps, **kwargs).

    step takes loss_and_gradients' arguments after ``model`` and does the same arithmetic (bit
    for bit). The training loop calls it hundreds of times an epoch; finding the layers through
    torch.nn.Module, checking the operands of every product and choosing its kernel on every
    call cost 3-4% of a step at the notebook's shapes (measured on the 2-core machine).
    Here the kernels are chosen once per batch size (vaelab.matmul.layer_products, following
    torch's oneDNN switch as it is then). Parameters are held by reference, so the step sees
    the weights as the optimizer updates them; prepare a new step after replacing a layer.
    """
    d, act = model.latent_dim, model.activation
    act_backward = _ACTIVATION_BACKWARD[act]
    *encoder, stats_layer = _linears(model.encoder)
    *hidden_decoder, out_layer = _linears(model.decoder)
    layers = [*encoder, stats_layer, *hidden_decoder, out_layer]
    activations = [act] * len(encoder) + [None] + [act] * len(hidden_decoder) + [None]
    n_enc, n_dec = len(encoder), len(hidden_decoder)
    params = [(layer.weight, layer.bias) for layer in layers]
    plans: dict[tuple[int, bool], list[matmul.LayerProducts]] = {}

    def products(b: int) -> list[matmul.LayerProducts]:
        key = (b, torch.backends.mkldnn.enabled)
        if key not in plans:
            plans[key] = [matmul.layer_products(w, bias, a, b)
                          for (w, bias), a in zip(params, activations, strict=True)]
        return plans[key]

    def backward_hidden(first: int, n: int, g: torch.Tensor, acts: list[torch.Tensor],
                        need_input_grad: bool, kernels: list[matmul.LayerProducts],
                        done: LayerCallback) -> torch.Tensor:
        """Back through the n hidden layers from layers[first] on (last first); acts[i] is the
        input of the i-th of them, acts[i + 1] its output; g: the gradient w.r.t. acts[n]."""
        for i in range(n - 1, -1, -1):
            w, bias = params[first + i]
            g = act_backward(g, acts[i + 1])
            w.grad, bias.grad = kernels[first + i].weight_grad(g, acts[i]), g.sum(dim=0)
            if i > 0 or need_input_grad:
                g = kernels[first + i].input_grad(g)
            done(layers[first + i])
        return g

    @torch.no_grad()
    def step(x: torch.Tensor, eps: torch.Tensor, kl_weight: float = 1.0,
             recon_weight: float = 1.0, free_bits: float = 0.0,
             on_layer_done: LayerCallback | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        done = on_layer_done or _nothing
        b = x.shape[0]
        kernels = products(b)
        stats_kernels, out_kernels = kernels[n_enc], kernels[-1]
        (w_stats, b_stats), (w_out, b_out) = params[n_enc], params[-1]
        # forward; acts[i] is the input of hidden layer i, acts[i + 1] its output
        enc_acts = [x]
        for kernel in kernels[:n_enc]:
            enc_acts.append(kernel.forward(enc_acts[-1]))
        h = enc_acts[-1]
        stats = stats_kernels.forward(h)
        mu, logvar = stats[:, :d], stats[:, d:]
        std = torch.exp(0.5 * logvar)
        noise = std * eps  # sigma * eps, reused by the backward pass
        z = mu + noise
        dec_acts = [z]
        for kernel in kernels[n_enc + 1 : -1]:
            dec_acts.append(kernel.forward(dec_acts[-1]))
        h_dec = dec_acts[-1]
        logits = out_kernels.forward(h_dec)

        var = std * std
        # KL per latent dimension, 1/2 (mu^2 + sigma^2 - 1 - logvar), as (B, d)
        kl_elem = torch.addcmul(var - logvar, mu, mu).sub_(1.0).mul_(0.5)
        kl_sum = kl_elem.sum()
        # sum_i softplus(l) - x l: the BCE-with-logits of every pixel, summed
        recon_sum = F.softplus(logits).sum() - torch.dot(x.reshape(-1), logits.reshape(-1))

        # backward: decoder
        g = torch.sigmoid(logits).sub_(x).mul_(recon_weight / b)  # d loss / d logits
        w_out.grad, b_out.grad = out_kernels.weight_grad(g, h_dec), g.sum(dim=0)
        g = out_kernels.input_grad(g)  # d loss / d h_dec
        done(out_layer)
        dz = backward_hidden(n_enc + 1, n_dec, g, dec_acts, True, kernels, done)
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
        w_stats.grad, b_stats.grad = stats_kernels.weight_grad(g_stats, h), g_stats.sum(dim=0)
        if n_enc:
            g = stats_kernels.input_grad(g_stats)
        done(stats_layer)
        if n_enc:
            backward_hidden(0, n_enc, g, enc_acts, False, kernels, done)
        return recon_sum, kl_sum

    return step


def _nothing(layer: nn.Linear) -> None:
    pass


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
    callback may update them (vaelab.fastcpu.adam.LayerwiseAdam.step does). Without it the model's
    weights are left unchanged. For many calls on one model, gradient_step(model) once.
    """
    return gradient_step(model)(x, eps, kl_weight=kl_weight, recon_weight=recon_weight,
                                free_bits=free_bits, on_layer_done=on_layer_done)


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
