"""SGD, Adam and RMSprop with per-trial hyperparameters (trials side by side).

The same update rules as ``torch.optim.SGD``, ``Adam`` and ``RMSprop`` (defaults, bias
correction and ``eps`` included), written so that every hyperparameter may be a ``(K, 1, 1)``
tensor that broadcasts against parameters with a leading trial axis: K trials with their own
learning rates and momenta take their steps in one set of tensor operations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._light import LightOptimizer

__all__ = ["BatchedSGD", "BatchedAdam", "BatchedRMSprop"]


class _Batched(LightOptimizer):
    """Shared ``step`` plumbing: closure, no-grad, parameters with a gradient."""

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, group, self.state[p])
        return loss


class BatchedSGD(_Batched):
    """SGD with momentum (heavy ball, or Nesterov where ``nesterov`` is 1), as ``torch.optim.SGD``."""

    def __init__(self, params: Iterable[Any], lr: Any, momentum: Any = 0.0, nesterov: Any = 0.0) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        mu, nesterov = group["momentum"], group["nesterov"]
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = grad.clone()
        else:
            buf.mul_(mu).add_(grad)
        direction = buf + nesterov * (grad + mu * buf - buf)  # Nesterov: grad + mu * buf; else buf
        p.sub_(group["lr"] * direction)


class BatchedAdam(_Batched):
    """Adam (Kingma & Ba), as ``torch.optim.Adam`` without weight decay or amsgrad."""

    def __init__(self, params: Iterable[Any], lr: Any, beta1: Any = 0.9, beta2: Any = 0.999, eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps))

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        b1, b2 = group["beta1"], group["beta2"]
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(grad), exp_avg_sq=torch.zeros_like(grad))
        state["step"] += 1
        state["exp_avg"].mul_(b1).add_((1 - b1) * grad)
        state["exp_avg_sq"].mul_(b2).add_((1 - b2) * grad * grad)
        step = coordinate_step(state, group)
        p.sub_(step / (1 - b1 ** state["step"]) * state["exp_avg"])


def coordinate_step(state: dict[str, Any], group: dict[str, Any]) -> torch.Tensor:
    """Adam's per-coordinate step ``lr / (sqrt(v_hat) + eps)``."""
    correction = 1 - group["beta2"] ** state["step"]
    return group["lr"] / ((state["exp_avg_sq"] / correction).sqrt() + group["eps"])


class BatchedRMSprop(_Batched):
    """RMSprop with optional momentum, as ``torch.optim.RMSprop`` (not centered)."""

    def __init__(self, params: Iterable[Any], lr: Any, alpha: Any = 0.99, momentum: Any = 0.0,
                 eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, momentum=momentum, eps=eps))

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not state:
            state.update(square_avg=torch.zeros_like(grad), momentum_buffer=torch.zeros_like(grad))
        alpha = group["alpha"]
        state["square_avg"].mul_(alpha).add_((1 - alpha) * grad * grad)
        scaled = grad / (state["square_avg"].sqrt() + group["eps"])
        buf = state["momentum_buffer"].mul_(group["momentum"]).add_(scaled)  # momentum 0: buf = scaled
        p.sub_(group["lr"] * buf)
