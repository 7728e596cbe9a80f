"""The group-lasso penalty: a whole row of ``W`` (one feature, every class) is zero or not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from tuner import Float, Penalty

__all__ = ["GroupLassoPenalty", "block_soft_threshold"]


def block_soft_threshold(weight: torch.Tensor, threshold: Any) -> torch.Tensor:
    """The proximal operator of ``threshold * sum_j ||W[j, :]||_2``.

    Each row is scaled by ``max(0, 1 - threshold / ||row||)``: rows shorter than the
    threshold become exactly zero, the others shrink toward zero along their own direction.
    """
    norms = weight.norm(dim=1, keepdim=True)
    scale = torch.clamp(norms - threshold, min=0.0) / torch.where(norms > 0, norms, torch.ones_like(norms))
    return weight * scale


class GroupLassoPenalty(Penalty):
    """``strength * (l1_ratio * sum_j ||W[j, :]||_2 + (1 - l1_ratio) / 2 * ||W||_2^2)``.

    The groups are the rows of ``W``: feature ``j``'s weights for every output column. With
    one output column (binary problems) this is the lasso; with several classes it selects
    features jointly, which the lasso cannot. ``l1_ratio`` mixes in a ridge part exactly as
    the built-in elastic net does, so strengths compare across penalties.
    """

    name = "group_lasso"
    description = "Group lasso over features (rows of W): a feature is dropped for every class at once."
    search_space = {
        # the built-in penalties' strength, so that a study searches one penalty.strength for all
        "strength": Float(1e-7, 10.0, default=1e-4, log=True, description="overall penalty weight, 1 / (C * n_train)",
                          domain=(0.0, 1e6)),
        "l1_ratio": Float(0.0, 1.0, default=1.0, description="share of the group-lasso part (the rest is ridge)"),
    }
    has_prox = True

    def smooth_value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        return params["strength"] * (1.0 - params["l1_ratio"]) * 0.5 * weight.pow(2).sum()

    def nonsmooth_value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        return params["strength"] * params["l1_ratio"] * weight.norm(dim=1).sum()

    def prox(self, weight: torch.Tensor, step: float | torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        return block_soft_threshold(weight, step * params["strength"] * params["l1_ratio"])
