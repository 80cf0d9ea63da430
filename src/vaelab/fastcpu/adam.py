"""Adam stepped one layer at a time, inside backpropagation (the accelerator's optimizer).

Adam's update of a parameter reads only that parameter, its gradient and its own two moment
estimates. So updating a layer as soon as backpropagation is done with it (its gradient is
complete and its weights have been used for the gradient of its input) is exactly the
update one optimizer step after the whole backward pass would make. Done layer by layer,
each layer's weights and gradient are updated while they are still in the CPU's cache,
instead of streaming every weight, gradient and moment through memory once more at the end
of the step (which also evicts what the next step's matrix products need). The arithmetic
is PyTorch's own fused Adam kernel (``torch._fused_adam_``, what ``torch.optim.Adam(fused=True)``
runs on CPU and CUDA), called directly: the functional wrapper around it re-groups the
tensors by device and adds 1 to every parameter's step counter one tensor at a time (about
45 us a call here, against about 160 us for the update of a whole group); here a group
shares one step counter. Layers can be grouped so that one call updates several (training groups the
decoder's layers and the encoder's, two calls a step instead of four);
tests/test_fastcpu_adam.py checks the result against ``torch.optim.Adam`` step by step (bit for bit
against its fused kernel).

The moment estimates of weights that rarely get a gradient (an input pixel that is almost
never on) decay geometrically into denormal floats (below 1.2e-38), and arithmetic on those
takes the CPU's slow path: with 7% of them denormal, Adam's update ran twice as slow here.
PyTorch can switch on flush-to-zero only for the calling thread, not for its worker threads,
so every ``flush_every`` updates the moments at or below the smallest normal float are set to
zero: what flush-to-zero would have done, and far below anything that moves a weight. Few new
ones appear between flushes (measured in training: about 500 of 650,000 moments in 64
steps), so a flush every 64 updates keeps them away at a small cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from vaelab.validation import require_positive, require_positive_int


class LayerwiseAdam:
    """Adam over groups of layers; a group is updated once ``step`` has been told of all its layers.

    groups: each item is a layer, or a sequence of layers updated together in one call (fewer
    calls, less per-call overhead; the update is the same). Call ``step(layer)`` once per
    layer per training step, after the layer's .grad is final. ``lr`` is a plain attribute:
    assign it between steps for a schedule. Defaults are torch.optim.Adam's.
    """

    def __init__(self, groups: Iterable[nn.Module | Sequence[nn.Module]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 flush_every: int = 64) -> None:
        self.lr = require_positive(lr, "lr")
        self.flush_every = require_positive_int(flush_every, "flush_every")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.betas, self.eps = (float(betas[0]), float(betas[1])), require_positive(eps, "eps")
        self._layers: list[tuple[nn.Module, ...]] = []
        self._state: list[tuple[list[torch.Tensor], ...]] = []
        self._steps: list[torch.Tensor] = []
        self._group_of: dict[nn.Module, int] = {}
        for group in groups:
            layers = (group,) if isinstance(group, nn.Module) else tuple(group)
            params = []
            for layer in layers:
                own = [p for p in layer.parameters() if p.requires_grad]
                if not own:
                    raise ValueError(f"layer {layer} has no trainable parameters")
                if layer in self._group_of:
                    raise ValueError(f"layer {layer} is listed twice")
                self._group_of[layer] = len(self._layers)
                params += own
            self._layers.append(layers)
            self._state.append((params, [torch.zeros_like(p) for p in params],
                                [torch.zeros_like(p) for p in params]))
            # the group's step count, read by the fused kernel for the bias corrections
            self._steps.append(torch.zeros((), dtype=torch.float32, device=params[0].device))
        seen = [id(p) for params, *_ in self._state for p in params]
        if len(seen) != len(set(seen)):
            raise ValueError("a parameter belongs to two layers: each must be stepped once")
        self._pending = [set(layers) for layers in self._layers]
        self._updates = [0] * len(self._layers)

    def step(self, layer: nn.Module) -> None:
        """Record that ``layer``'s .grad is final; update its group once all of it is."""
        if layer not in self._group_of:
            raise ValueError(f"layer {layer} was not given to this LayerwiseAdam")
        g = self._group_of[layer]
        if layer not in self._pending[g]:
            raise ValueError(f"layer {layer} was handed over twice before its group's update")
        self._pending[g].discard(layer)
        if not self._pending[g]:
            self._pending[g] = set(self._layers[g])
            self._update(g)

    def _update(self, g: int) -> None:
        params, exp_avgs, exp_avg_sqs = self._state[g]
        grads = [p.grad for p in params]
        if any(grad is None for grad in grads):
            raise ValueError(f"a parameter of {self._layers[g]} has no gradient: set .grad first")
        self._updates[g] += 1
        step = self._steps[g]
        with torch.no_grad():
            step.fill_(self._updates[g])
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], [step] * len(params),
                               lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                               weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)
            if self._updates[g] % self.flush_every == 0:
                for moment in (*exp_avgs, *exp_avg_sqs):
                    # hardshrink: 0 where |m| <= tiny, else m; one in-place pass (10 us for
                    # a 400 x 784 moment here, against 270 us for masked_fill_ with a mask)
                    torch.ops.aten.hardshrink.out(moment, torch.finfo(moment.dtype).tiny,
                                                  out=moment)
