"""Adam stepped one layer at a time, inside backpropagation (used by vaelab.training.train).

Adam's update of a parameter reads only that parameter, its gradient and its own two moment
estimates. So updating a layer as soon as backpropagation is done with it (its gradient is
complete and its weights have been used for the gradient of its input) is exactly the
update one optimizer step after the whole backward pass would make. Done layer by layer,
each layer's weights and gradient are updated while they are still in the CPU's cache,
instead of streaming every weight, gradient and moment through memory once more at the end
of the step (which also evicts what the next step's matrix products need). The arithmetic
is PyTorch's own Adam (``torch.optim.adam.adam``, the fused kernel on CPU and CUDA);
tests/test_optim.py checks the result against ``torch.optim.Adam`` step by step.

The moment estimates of weights that rarely get a gradient (an input pixel that is almost
never on) decay geometrically into denormal floats (below 1.2e-38), and arithmetic on those
takes the CPU's slow path: with 7% of them denormal, Adam's update ran twice as slow here.
PyTorch can switch on flush-to-zero only for the calling thread, not for its worker threads,
so every ``flush_every`` steps the moments below the smallest normal float are set to zero:
what flush-to-zero would have done, and far below anything that moves a weight.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.adam import adam

from vaelab.validation import require_positive, require_positive_int


class LayerwiseAdam:
    """Adam over the parameters of ``layers``; ``step(layer)`` updates one layer's parameters.

    Call ``step`` once per layer per training step, after the layer's .grad is set. ``lr`` is
    a plain attribute: assign it between steps for a schedule. Defaults are torch.optim.Adam's.
    """

    def __init__(self, layers: Iterable[nn.Module], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 flush_every: int = 16) -> None:
        self.lr = require_positive(lr, "lr")
        self.flush_every = require_positive_int(flush_every, "flush_every")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.betas, self.eps = (float(betas[0]), float(betas[1])), require_positive(eps, "eps")
        self._state: dict[nn.Module, tuple[list[torch.Tensor], ...]] = {}
        for layer in layers:
            params = [p for p in layer.parameters() if p.requires_grad]
            if not params:
                raise ValueError(f"layer {layer} has no trainable parameters")
            steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]
            self._state[layer] = (params, [torch.zeros_like(p) for p in params],
                                  [torch.zeros_like(p) for p in params], steps)
        self._steps_taken = dict.fromkeys(self._state, 0)
        seen = [id(p) for params, *_ in self._state.values() for p in params]
        if len(seen) != len(set(seen)):
            raise ValueError("a parameter belongs to two layers: each must be stepped once")

    def step(self, layer: nn.Module) -> None:
        """Adam update of ``layer``'s parameters from their current .grad."""
        try:
            params, exp_avgs, exp_avg_sqs, steps = self._state[layer]
        except KeyError:
            raise ValueError(f"layer {layer} was not given to this LayerwiseAdam") from None
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            raise ValueError(f"layer {layer} has a parameter without a gradient: set .grad first")
        with torch.no_grad():
            adam(params, grads, exp_avgs, exp_avg_sqs, [], steps,
                 fused=params[0].device.type in ("cpu", "cuda"), amsgrad=False,
                 beta1=self.betas[0], beta2=self.betas[1], lr=self.lr, weight_decay=0.0,
                 eps=self.eps, maximize=False)
            self._steps_taken[layer] += 1
            if self._steps_taken[layer] % self.flush_every == 0:
                for moment in (*exp_avgs, *exp_avg_sqs):
                    moment.masked_fill_(moment.abs() < torch.finfo(moment.dtype).tiny, 0.0)
