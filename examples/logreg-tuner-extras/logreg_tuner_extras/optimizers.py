"""Adagrad: per-coordinate step sizes that shrink with the accumulated squared gradients."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from tuner import Float, Optimizer, ProxFn

__all__ = ["AdagradOptimizer"]


class AdagradOptimizer(Optimizer):
    """:class:`torch.optim.Adagrad` over the trainer's two parameter groups.

    ``prox_mode = "after_step"``: after every ``step()`` the trainer applies the penalty's prox.
    Adagrad moves weight ``j`` by ``clr / (sqrt(G_j) + eps)`` times its gradient, where ``G_j``
    is the sum of its squared gradients and ``clr = lr / (1 + (t - 1) * lr_decay)`` at step
    ``t``; :meth:`coordinate_step_size` returns that per-coordinate step, which the trainer
    uses for an elementwise prox (L1, elastic net) so that the penalty acts with its own
    strength and leaves exact zeros. A prox that is not elementwise (the group lasso) gets
    :meth:`Optimizer.step_size`, ``lr``.
    """

    name = "adagrad"
    description = "Adagrad (mini-batch), per-coordinate step sizes; proximal step for non-smooth parts."
    search_space = {
        "lr": Float(1e-3, 1.0, default=0.1, log=True, description="learning rate"),
        "lr_decay": Float(0.0, 0.1, default=0.0, description="learning-rate decay per step"),
        "initial_accumulator_value": Float(0.0, 1.0, default=0.1, description="starting sum of squared gradients"),
    }
    full_batch = False
    prox_mode = "after_step"

    def build(
        self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None
    ) -> torch.optim.Optimizer:
        return torch.optim.Adagrad(
            list(param_groups),
            lr=float(params["lr"]),
            lr_decay=float(params["lr_decay"]),
            initial_accumulator_value=float(params["initial_accumulator_value"]),
        )

    def coordinate_step_size(self, optimizer: torch.optim.Optimizer, param: torch.Tensor) -> torch.Tensor | None:
        """``clr / (sqrt(G) + eps)`` for ``param``: the step of its last update (``None`` before the first)."""
        state = optimizer.state.get(param, {})
        if "sum" not in state or float(state.get("step", 0)) == 0:
            return None
        group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
        clr = group["lr"] / (1 + (float(state["step"]) - 1) * group["lr_decay"])
        return clr / (state["sum"].sqrt() + group["eps"])
