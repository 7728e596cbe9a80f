"""Built-in penalties: none, l1, l2 and elastic net.

All follow the convention ``strength * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_2^2)``
(``strength = 1 / (C * n_train)`` against scikit-learn's ``C``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from tuner import Float, Penalty, half_squared_norm, soft_threshold

__all__ = ["NoPenalty", "L1Penalty", "L2Penalty", "ElasticNetPenalty", "soft_threshold"]

STRENGTH = Float(1e-7, 10.0, default=1e-4, log=True, description="overall penalty weight, 1 / (C * n_train)",
                 domain=(0.0, 1e6))


def _per_trial(value: Any) -> Any:
    """A ``(K, 1, 1)`` hyperparameter as ``(K,)``, to scale per-trial sums; numbers as they are."""
    return value.reshape(value.shape[:-2]) if isinstance(value, torch.Tensor) and value.dim() > 2 else value


class NoPenalty(Penalty):
    name = "none"
    description = "Plain (unpenalized) logistic regression."
    search_space = {}

    supports_batch = True

    def smooth_value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        return weight.new_zeros(weight.shape[:-2])  # one zero per trial

    def elastic_net(self, params: Mapping[str, Any]) -> tuple[float, float]:
        return 0.0, 0.0


class _ElasticNetFamily(Penalty):
    """strength * (l1_ratio * ||W||_1 + (1 - l1_ratio)/2 * ||W||^2) with a fixed or searched l1_ratio."""

    fixed_l1_ratio: float | None = None
    elementwise_prox = True  # soft thresholding acts on each weight alone
    supports_batch = True  # values reduce over the last two dimensions: one per trial

    def _l1_ratio(self, params: Mapping[str, Any]) -> Any:
        return self.fixed_l1_ratio if self.fixed_l1_ratio is not None else params["l1_ratio"]

    def smooth_value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        if self.fixed_l1_ratio == 1.0:  # L1: no smooth part (a pass over the weights saved per evaluation)
            return weight.new_zeros(weight.shape[:-2])
        scale = _per_trial(params["strength"] * (1.0 - self._l1_ratio(params)))
        return scale * half_squared_norm(weight)

    def elastic_net(self, params: Mapping[str, Any]) -> tuple[float, float]:
        l1_ratio = float(self._l1_ratio(params))
        return float(params["strength"]) * l1_ratio, float(params["strength"]) * (1.0 - l1_ratio)

    def nonsmooth_value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        if self.fixed_l1_ratio == 0.0:  # L2: no non-smooth part
            return weight.new_zeros(weight.shape[:-2])
        return (params["strength"] * self._l1_ratio(params) * weight.abs()).sum(dim=(-2, -1))

    def prox(self, weight: torch.Tensor, step: float | torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        l1_ratio = self._l1_ratio(params)
        if self.has_prox:
            return soft_threshold(weight, step * (params["strength"] * l1_ratio))  # one pass over a per-weight step
        return weight


class L1Penalty(_ElasticNetFamily):
    name = "l1"
    description = "Lasso: strength * ||W||_1, exact zeros through soft-thresholding."
    search_space = {"strength": STRENGTH}
    has_prox = True
    fixed_l1_ratio = 1.0


class L2Penalty(_ElasticNetFamily):
    name = "l2"
    description = "Ridge: strength / 2 * ||W||_2^2."
    search_space = {"strength": STRENGTH}
    fixed_l1_ratio = 0.0


class ElasticNetPenalty(_ElasticNetFamily):
    name = "elasticnet"
    description = "Elastic net: strength * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_2^2)."
    search_space = {
        "strength": STRENGTH,
        "l1_ratio": Float(0.0, 1.0, default=0.5, description="share of the L1 part"),
    }
    has_prox = True

