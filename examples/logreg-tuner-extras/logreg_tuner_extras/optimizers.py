"""Adagrad: per-coordinate step sizes that shrink with the accumulated squared gradients."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from tuner import Float, Optimizer, ProxFn

__all__ = ["AdagradOptimizer"]


class AdagradOptimizer(Optimizer):
    """:class:`torch.optim.Adagrad` over the trainer's two parameter groups.

    ``prox_mode = "after_step"``: after every ``step()`` the trainer applies the penalty's
    prox with the step size ``lr`` (what :meth:`Optimizer.step_size` returns), so L1-type
    penalties still give exact zeros.
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

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        return torch.optim.Adagrad(
            list(param_groups),
            lr=float(params["lr"]),
            lr_decay=float(params["lr_decay"]),
            initial_accumulator_value=float(params["initial_accumulator_value"]),
        )
