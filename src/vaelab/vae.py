"""The variational autoencoder: an encoder for q(z|x), a decoder, a likelihood p(x|z), and its loss.

q(z|x) = N(mu(x), diag(exp(logvar(x))))     the encoder gives mu and logvar side by side
p(x|z) = the likelihood, with parameters decoder(z)     (Bernoulli logits by default)
p(z)   = N(0, I)
loss(x) = -ln p(x|z) at one reparameterized z (the reconstruction term)
          + KL(q(z|x) || N(0, I))            (analytic, from vaelab.kl)

Any ``nn.Module`` with ``encode(x) -> (mu, logvar)``, ``decode(z) -> likelihood parameters``
and a ``likelihood`` attribute trains (``vaelab.training.train``) and is scored
(``vaelab.evaluation``) like ``VAE`` itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch import nn

from vaelab.decoder_likelihoods import Bernoulli, Likelihood, check_likelihood
from vaelab.distributions import reparameterize
from vaelab.kl import gaussian_kl_standard_normal
from vaelab.references import answers
from vaelab.validation import require_finite, require_positive_int

__all__ = ["VAE", "LossTerms", "vae_loss", "model_loss", "reparameterize", "check_vae_interface",
           "check_model", "check_loss_weights", "mode_kept", "NonFiniteError"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _mlp(sizes: Sequence[int], activation: str) -> list[nn.Module]:
    """Linear layers between consecutive sizes, the activation after each one."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return layers


class VAE(nn.Module):
    """A VAE for data flattened to (B, input_dim).

    By default the encoder and decoder are MLPs built from the sizes (hidden layers of
    ``hidden`` units, ``activation`` after each); pass ``encoder=`` / ``decoder=`` modules for
    other networks: encoder(x) must give (B, 2 * latent_dim) = [mu, logvar], decoder(z) the
    likelihood's parameters (B, params_per_dim * input_dim).
    """

    def __init__(
        self,
        latent_dim: int = 20,
        hidden: Sequence[int] = (400,),
        input_dim: int = 784,
        activation: str = "relu",
        likelihood: Likelihood | None = None,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim = require_positive_int(latent_dim, "latent_dim")
        self.input_dim = require_positive_int(input_dim, "input_dim")
        if isinstance(hidden, str) or not isinstance(hidden, Sequence):
            raise ValueError(f"hidden must be a sequence of layer sizes such as (400,) or "
                             f"(200, 200), got {hidden!r}")
        self.hidden = tuple(require_positive_int(h, "each hidden size") for h in hidden)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.likelihood = check_likelihood(Bernoulli() if likelihood is None else likelihood)
        for net, name in ((encoder, "encoder"), (decoder, "decoder")):
            if net is not None and not isinstance(net, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(net).__name__}")
        d, h = self.latent_dim, self.hidden
        # Built in this order (encoder, then decoder) so that a seed gives the same weights.
        if encoder is None:
            encoder = nn.Sequential(
                *_mlp((self.input_dim, *h), activation),
                nn.Linear(h[-1] if h else self.input_dim, 2 * d),  # [mu, logvar]: one product
            )
        if decoder is None:
            hidden_layers = _mlp((d, *h[::-1]), activation)
            out = nn.Linear(h[0] if h else d, self.likelihood.params_per_dim * self.input_dim)
            self.likelihood.init_output_layer(out)
            decoder = nn.Sequential(*hidden_layers, out)  # no activation on the parameters
        self.encoder, self.decoder = encoder, decoder

    def extra_repr(self) -> str:
        return f"likelihood={self.likelihood!r}"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, input_dim) float -> mu (B, d), logvar (B, d) of q(z|x)."""
        _check_batch(x, self.input_dim, "x")
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) -> the likelihood's parameters (B, params_per_dim * input_dim)."""
        _check_batch(z, self.latent_dim, "z")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, input_dim) -> (decoder output, mu (B, d), logvar (B, d)), one z each."""
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar)), mu, logvar

    @torch.no_grad()
    def init_output_bias(self, mean_image: torch.Tensor, eps: float = 1e-3) -> None:
        """Set the decoder's output bias to logit(mean_image) (clamped to [eps, 1 - eps]).

        The untrained decoder then already outputs the average image (IWAE paper's trick).
        Needs a Bernoulli likelihood and a decoder that ends in a Linear layer.
        """
        out = self.decoder[-1] if isinstance(self.decoder, nn.Sequential) else None
        if not isinstance(self.likelihood, Bernoulli) or not isinstance(out, nn.Linear):
            raise ValueError("init_output_bias needs a Bernoulli likelihood and a decoder ending "
                             "in an nn.Linear layer (the default MLP): leave it off for this model")
        mean_image = torch.as_tensor(mean_image, dtype=torch.float32).reshape(-1)
        if mean_image.numel() != self.input_dim:
            raise ValueError(
                f"mean_image must have {self.input_dim} values, got {mean_image.numel()}"
            )
        if not torch.all((mean_image >= 0) & (mean_image <= 1)):
            raise ValueError("mean_image must hold pixel probabilities in [0, 1]")
        out.bias.copy_(torch.logit(mean_image.clamp(eps, 1 - eps)).to(out.bias))


class LossTerms(NamedTuple):
    """loss: scalar to minimise; recon, kl: (B,) per-image terms in nats."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


@answers("4.2", "5.1")
def vae_loss(
    params: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_weight: float = 1.0,
    free_bits: float = 0.0,
    recon_weight: float = 1.0,
    likelihood: Likelihood | None = None,
    check: bool = True,
) -> LossTerms:
    """Negative ELBO per image = recon + KL; loss = batch mean of recon + kl_weight * KL.

    params: the decoder's output at one z per image (Bernoulli logits (B, D) by default; pass
    ``likelihood`` for another); x: (B, D); mu, logvar: (B, d). free_bits > 0 floors each latent
    dimension's batch-mean KL in the loss at that many nats (Kingma et al. 2016); the reported
    kl is always the true KL. recon_weight = 0 trains on the KL alone (notebook 05's "KL only"
    model). check=False skips the input checks (the training loop checks its data once).
    """
    likelihood = Bernoulli() if likelihood is None else likelihood
    if check:
        _check_loss_inputs(params, x, mu, logvar, kl_weight, free_bits, recon_weight, likelihood)
    # -ln p(x|z) summed over pixels: the likelihood of the whole image (a mean would shrink
    # it 784 times).
    recon = -likelihood.log_prob(x, params)
    if free_bits > 0:
        # Per-dimension KL (B, d): the package formula applied to one dimension at a time.
        kl_dims = gaussian_kl_standard_normal(mu.unsqueeze(-1), logvar.unsqueeze(-1))
        kl = kl_dims.sum(dim=-1)
        kl_term = kl_dims.mean(dim=0).clamp(min=free_bits).sum()
        loss = recon_weight * recon.mean() + kl_weight * kl_term
    else:
        kl = gaussian_kl_standard_normal(mu, logvar)
        loss = (recon_weight * recon + kl_weight * kl).mean()
    return LossTerms(loss, recon, kl)


def model_loss(
    model: nn.Module,
    x: torch.Tensor,
    kl_weight: float = 1.0,
    free_bits: float = 0.0,
    recon_weight: float = 1.0,
) -> LossTerms:
    """vae_loss of ``model`` on a batch x (B, D): encode, one reparameterized z, decode.

    What one training step minimises, for any model with the VAE interface. The values of x
    are not checked here (the training loop checks its data set once).
    """
    mu, logvar = model.encode(x)
    params = model.decode(reparameterize(mu, logvar))
    return vae_loss(params, x, mu, logvar, kl_weight, free_bits, recon_weight,
                    model.likelihood, check=False)


def check_vae_interface(model: object) -> nn.Module:
    """``model`` if it has what training and evaluation use, else a TypeError naming the gap."""
    missing = [name for name in ("encode", "decode") if not callable(getattr(model, name, None))]
    if not isinstance(model, nn.Module) or missing or not hasattr(model, "likelihood"):
        what = ", ".join(missing + ([] if hasattr(model, "likelihood") else ["likelihood"]))
        raise TypeError(
            f"model must be a torch.nn.Module with encode(x) -> (mu, logvar), decode(z) -> the "
            f"likelihood's parameters, and a likelihood attribute (such as "
            f"vaelab.decoder_likelihoods.Bernoulli()); {type(model).__name__} lacks "
            f"{what or 'nothing but is not an nn.Module'}"
        )
    check_likelihood(model.likelihood)
    return model


class NonFiniteError(RuntimeError):
    """A model's weights or results are NaN or infinite; the message says where and what to do."""


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
                nn.LazyBatchNorm1d, nn.LazyBatchNorm2d, nn.LazyBatchNorm3d)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` has a batch-norm layer (it needs two images per batch in training)."""
    return any(isinstance(module, _BATCH_NORMS) for module in model.modules())


def check_model(model: object, x: torch.Tensor) -> nn.Module:
    """``model`` if it can be trained or scored on data like ``x``, else one error saying why.

    Called once by every function that takes a model (training, evaluation, the analyses),
    never per batch. x: a batch (B, D) as the caller feeds it (on the model's device, in its
    dtype). Checks the interface (``check_vae_interface``); the parameters: one float dtype,
    not half precision, no NaN (``NonFiniteError``); then runs encode, one z, decode and the
    likelihood's log_prob on the first two rows of x, in eval mode without gradients, and
    checks what each returns against the likelihood and x: encode (mu, logvar) of equal shape
    (B, d), decode (B, params_per_dim * D), log_prob (B,), all finite floats. The model's mode
    and torch's random state are left as they were.
    """
    check_vae_interface(model)
    params = dict(model.named_parameters())
    dtypes = {p.dtype: name for name, p in params.items()}
    if len(dtypes) > 1:
        mixed = " and ".join(f"{dtype} ({name})" for dtype, name in dtypes.items())
        raise TypeError(f"the model's parameters mix {mixed}: put the whole model in one dtype "
                        "with model.float() (or model.double())")
    if dtypes.keys() & {torch.float16, torch.bfloat16}:
        raise TypeError(f"the model's parameters are {next(iter(dtypes))}: in half precision "
                        "training fails whatever the learning rate (Adam's eps of 1e-8 is 0 in "
                        "float16) and sums of hundreds of log-densities lose their decimals; "
                        "convert the model with model.float()")
    for name, p in params.items():
        if not bool(torch.isfinite(p).all()):
            raise NonFiniteError(f"the model's weights contain NaN or infinite values (in "
                                 f"{name}): a training run that diverged leaves them so; train "
                                 "it again with a lower learning rate, or load a saved model")
    xb = x[:2]
    with mode_kept(model), torch.no_grad(), torch.random.fork_rng(
            devices=[xb.device] if xb.device.type == "cuda" else []):
        model.eval()
        mu, logvar = _check_encoded(model.encode(xb), xb)
        decoded = model.decode(reparameterize(mu, logvar))
        _check_output(decoded, xb, f"decode(z) for data {tuple(xb.shape)}")
        per_dim = model.likelihood.params_per_dim
        width = per_dim * xb.shape[1]
        if decoded.shape != (xb.shape[0], width):
            raise ValueError(
                f"decode(z) returned shape {tuple(decoded.shape)} for data of shape "
                f"{tuple(xb.shape)}: {model.likelihood!r} needs (B, {width}), {per_dim} "
                f"number(s) per data dimension in one row per image; make the decoder end in "
                f"{width} outputs (a conv decoder's output flattened with nn.Flatten())")
        log_px = model.likelihood.log_prob(xb, decoded)
        _check_output(log_px, xb, f"{type(model.likelihood).__name__}.log_prob(x, params)")
        if log_px.shape != xb.shape[:1]:
            raise ValueError(
                f"{type(model.likelihood).__name__}.log_prob(x, params) must return one "
                f"log-density per image, shape ({xb.shape[0]},) for data of shape "
                f"{tuple(xb.shape)}; it returned {tuple(log_px.shape)}: sum over the data "
                "dimensions (.sum(dim=-1))")
        for t, what in ((mu, "encode's mu"), (logvar, "encode's logvar"), (decoded, "decode"),
                        (log_px, "log_prob")):
            if not bool(torch.isfinite(t).all()):
                raise NonFiniteError(f"{what} returned NaN or infinite values on finite data of "
                                     f"shape {tuple(xb.shape)}: check the model's layers")
    return model


def _check_output(t: object, x: torch.Tensor, what: str) -> None:
    """A model's output must be a float tensor (not half precision) of at least one dimension."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must return a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16) or t.ndim == 0:
        raise TypeError(f"{what} returned a {t.dtype} tensor of shape {tuple(t.shape)}; it "
                        f"must be a float tensor like the data ({x.dtype}) with a row per image")


def _check_encoded(encoded: object, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """encode(x)'s result as (mu, logvar) if it is two tensors of equal shape (B, d)."""
    contract = (f"encode(x) must return (mu, logvar), two tensors of equal shape (B, d); for data "
                f"of shape {tuple(x.shape)} it returned")
    if not isinstance(encoded, tuple | list) or len(encoded) != 2:
        what = (f"{len(encoded)} values" if isinstance(encoded, tuple | list)
                else f"a {type(encoded).__name__}")
        raise ValueError(f"{contract} {what}: split the encoder's output in two, "
                         "mu, logvar = h.chunk(2, dim=1)")
    mu, logvar = encoded
    for t, name in ((mu, "mu"), (logvar, "logvar")):
        _check_output(t, x, f"encode(x)'s {name}")
    if mu.ndim != 2 or mu.shape[0] != x.shape[0] or mu.shape != logvar.shape:
        raise ValueError(f"{contract} mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)}")
    return mu, logvar


@contextlib.contextmanager
def mode_kept(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block the caller may switch ``model`` between train() and eval(); afterwards
    every submodule is back in the mode it had (dropout, batch norm), even after an error."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def check_loss_weights(kl_weight: float, free_bits: float, recon_weight: float) -> None:
    """Loss weights: finite numbers >= 0 (a negative weight rewards the term it should cost).

    Python or NumPy numbers (np.float32(0.5) is 0.5); a bool or str is refused."""
    for value, name, what in ((kl_weight, "kl_weight", "the KL term's weight"),
                              (free_bits, "free_bits", "nats per latent dimension"),
                              (recon_weight, "recon_weight", "the reconstruction's weight")):
        try:
            ok = require_finite(value, name) >= 0
        except ValueError:  # InputTypeError too: one wording for every bad weight
            ok = False
        if not ok:
            raise ValueError(f"{name} ({what}) must be a finite number >= 0, got {value!r}")


def _check_loss_inputs(params: torch.Tensor, x: torch.Tensor, mu: torch.Tensor,
                       logvar: torch.Tensor, kl_weight: float, free_bits: float,
                       recon_weight: float, likelihood: Likelihood) -> None:
    check_likelihood(likelihood)
    check_loss_weights(kl_weight, free_bits, recon_weight)
    _check_batch(params, -1, "the decoder output")
    _check_batch(x, -1, "x")
    if params.shape != (x.shape[0], likelihood.params_per_dim * x.shape[1]):
        raise ValueError(
            f"the decoder output {tuple(params.shape)} does not fit x {tuple(x.shape)} under "
            f"{likelihood!r}: it needs {likelihood.params_per_dim} value(s) per dimension of x"
        )
    if mu.ndim != 2 or mu.shape[0] != x.shape[0] or mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must both be (B, d) with B = {x.shape[0]}, "
            f"got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    if likelihood.binary:
        lo, hi = torch.aminmax(x.detach()) if x.numel() else (torch.zeros(()), torch.zeros(()))
        if not (lo >= 0 and hi <= 1):  # also False for NaN
            raise ValueError(
                f"x must hold pixel values in [0, 1] for a Bernoulli likelihood, got values "
                f"from {lo.item():.4g} to {hi.item():.4g}: divide uint8 images by 255 "
                "(vaelab.mnist.to_unit_float) and binarize them; NaN is not allowed"
            )
    elif not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or infinite values: remove or replace them")


def _check_batch(t: torch.Tensor, width: int, name: str) -> None:
    """Raise ValueError unless t is a float tensor of shape (B, width)."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor, got {t.dtype}: convert uint8 images with "
            "vaelab.mnist.to_unit_float (and binarize them)"
        )
    if t.ndim != 2 or (width >= 0 and t.shape[1] != width):
        want = f"(B, {width})" if width >= 0 else "(B, D)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}: flatten images")
