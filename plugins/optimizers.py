"""Built-in optimizers: sgd, adam, rmsprop, lbfgs, fista and newton."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from tuner import Categorical, Float, Int, Optimizer, ProxFn

from ._batched_optim import BatchedAdam, BatchedRMSprop, BatchedSGD, coordinate_step
from ._batched_solvers import BatchedFISTA
from ._fista import FISTA
from ._light import LightLBFGS
from ._newton import BatchedNewton
from ._newton_cg import BatchedNewtonCG
from ._owlqn import BatchedOWLQN, OneTrialOWLQN

LR_DOMAIN = (1e-12, 1e6)  # what a user may fix or search explicitly; the default search range is narrower

__all__ = ["SGDOptimizer", "AdamOptimizer", "RMSpropOptimizer", "LBFGSOptimizer", "FISTAOptimizer", "NewtonOptimizer",
           "NewtonCGOptimizer"]


class SGDOptimizer(Optimizer):
    """Mini-batch SGD with (Nesterov) momentum.

    The proximal step after each update uses ``lr / (1 - momentum)``: at a fixed point the
    momentum buffer holds ``grad / (1 - momentum)``, so each update moves the weights by that
    step times the gradient, and the prox must shrink by the same step. With ``lr`` alone the
    penalty would act ``1 / (1 - momentum)`` times too weakly (10 times at momentum 0.9): fewer
    zeros and the optimum of another objective.
    """

    name = "sgd"
    description = "Mini-batch SGD with (Nesterov) momentum; proximal step for L1 parts."
    search_space = {
        "lr": Float(1e-4, 10.0, default=0.5, log=True, description="learning rate", domain=LR_DOMAIN),
        "momentum": Float(0.0, 0.99, default=0.9),
        "nesterov": Categorical([True, False], default=True),
    }

    supports_batch = True

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        return BatchedSGD(list(param_groups), lr=params["lr"], momentum=params["momentum"], nesterov=params["nesterov"])

    def step_size(self, optimizer: torch.optim.Optimizer) -> Any:
        return _momentum_step(optimizer.param_groups[0])


def _momentum_step(group: Mapping[str, Any]) -> Any:
    """``lr / (1 - momentum)``: how far a momentum method moves per unit gradient at a fixed point
    (per trial: ``(K, 1, 1)`` when the hyperparameters are tensors)."""
    return group["lr"] / (1.0 - group["momentum"])


def _group_of(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict[str, Any]:
    return next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))


class AdamOptimizer(Optimizer):
    """Adam; the proximal step is Adam's own per-coordinate step where the penalty allows it.

    Adam moves coordinate ``j`` by ``lr / (sqrt(v_hat_j) + eps)`` times the (averaged) gradient,
    so the matching proximal step (proximal Adam) is that same per-coordinate step
    (:meth:`coordinate_step_size`). A single ``lr`` would shrink by far less than Adam moves
    (Adam normalises gradients to about 1): the L1 part would be almost ignored and no
    weight would stay at zero. Penalties whose prox is not elementwise get ``lr``.
    """

    name = "adam"
    description = "Adam (mini-batch); proximal step for L1 parts."
    search_space = {
        "lr": Float(1e-5, 1.0, default=0.01, log=True, description="learning rate", domain=LR_DOMAIN),
        "beta1": Float(0.0, 0.999, default=0.9),
        "beta2": Float(0.9, 0.9999, default=0.999),
    }

    supports_batch = True

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        return BatchedAdam(list(param_groups), lr=params["lr"], beta1=params["beta1"], beta2=params["beta2"])

    def coordinate_step_size(self, optimizer: torch.optim.Optimizer, param: torch.Tensor) -> torch.Tensor | None:
        """``lr / (sqrt(v_hat) + eps)`` for ``param`` (``None`` before the first step)."""
        state = optimizer.state.get(param, {})
        if "exp_avg_sq" not in state:
            return None
        return coordinate_step(state, _group_of(optimizer, param))


class RMSpropOptimizer(Optimizer):
    """RMSprop; like Adam, the proximal step is its per-coordinate step where the penalty allows it:
    ``lr / ((sqrt(square_avg) + eps) * (1 - momentum))``."""

    name = "rmsprop"
    description = "RMSprop (mini-batch); proximal step for L1 parts."
    search_space = {
        "lr": Float(1e-5, 1.0, default=0.003, log=True, description="learning rate", domain=LR_DOMAIN),
        "alpha": Float(0.8, 0.999, default=0.99, description="smoothing constant"),
        "momentum": Float(0.0, 0.99, default=0.0),
    }

    supports_batch = True

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        return BatchedRMSprop(list(param_groups), lr=params["lr"], alpha=params["alpha"], momentum=params["momentum"])

    def step_size(self, optimizer: torch.optim.Optimizer) -> Any:
        return _momentum_step(optimizer.param_groups[0])

    def coordinate_step_size(self, optimizer: torch.optim.Optimizer, param: torch.Tensor) -> torch.Tensor | None:
        """``lr / ((sqrt(square_avg) + eps) * (1 - momentum))`` for ``param`` (``None`` before the first step)."""
        state = optimizer.state.get(param, {})
        if "denominator" not in state:
            return None
        return _momentum_step(_group_of(optimizer, param)) / state["denominator"]


class LBFGSOptimizer(Optimizer):
    """Full-batch L-BFGS; with an elastic net's L1 part, OWL-QN (``plugins/_owlqn.py``): L-BFGS steered
    by the pseudo-gradient and kept in the orthant of each step's start, so weights reach exact zeros."""

    name = "lbfgs"
    description = "Full-batch L-BFGS with Wolfe line search; OWL-QN (exact zeros) for L1 and elastic-net penalties."
    # Both change how L-BFGS gets to the optimum, not where it is: a study holds them at their defaults
    # (SST-2, L1 at 9.26e-7: 2.70 s at lr 0.112, 1.63 s at 1, 4.58 s with history 80, for the same model).
    search_space = {
        "lr": Float(0.1, 1.0, default=1.0, log=True, description="initial step length", domain=LR_DOMAIN,
                    searched=False),
        "history_size": Int(3, 100, default=20, description="curvature pairs kept", searched=False),
    }
    full_batch = True
    prox_mode = "internal"
    l1_only = True  # OWL-QN reads the L1 weight (closure.l1_weights()), not a prox
    quasi_newton = True
    supports_batch = True
    batch_state_floats = 2 * 100 + 8  # the curvature pairs of the largest history_size, and the rest

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        groups = list(param_groups)
        flat = [p for g in groups for p in g["params"]]
        precise = flat[0].dtype == torch.float64
        tol_grad, tol_change = (1e-10, 1e-15) if precise else (1e-6, 1e-9)
        if flat[0].dim() == 3:  # trials side by side (OWL-QN where a trial has an L1 part)
            return BatchedOWLQN(groups, lr=params["lr"], max_iter=100, history_size=params["history_size"],
                                l1=prox is not None, tolerance_grad=tol_grad, tolerance_change=tol_change)
        if prox is not None:  # one trial with a non-smooth part: OWL-QN as a batch of one
            return OneTrialOWLQN(groups, lr=float(params["lr"]), max_iter=100, history_size=int(params["history_size"]),
                                 tolerance_grad=tol_grad, tolerance_change=tol_change)
        return LightLBFGS(flat, lr=float(params["lr"]), max_iter=100, history_size=int(params["history_size"]),
                          line_search_fn="strong_wolfe", tolerance_grad=tol_grad, tolerance_change=tol_change)


class FISTAOptimizer(Optimizer):
    name = "fista"
    description = "Full-batch FISTA with backtracking and restart: exact optimum and exact zeros for L1/elastic net."
    search_space = {
        "lr": Float(1e-3, 1e3, default=1.0, log=True, description="initial step (adapted by backtracking)", domain=LR_DOMAIN),
    }
    full_batch = True
    prox_mode = "internal"
    supports_batch = True

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        groups = list(param_groups)
        precise = groups[0]["params"][0].dtype == torch.float64
        if groups[0]["params"][0].dim() == 3:  # trials side by side
            return BatchedFISTA(groups, prox=prox, lr=params["lr"], max_iter=50, tolerance_grad=1e-9 if precise else 1e-6)
        return FISTA(groups, prox=prox, lr=float(params["lr"]), max_iter=50, tolerance_grad=1e-9 if precise else 1e-6)


class NewtonOptimizer(Optimizer):
    """Proximal Newton (``plugins/_newton.py``): the exact optimum of every built-in penalty in a few
    passes over the data, for models small enough that the trainer offers their Hessian
    (``uses_hessian``). No hyperparameters: the step is Newton's, with a line search."""

    name = "newton"
    description = "Full-batch proximal Newton with line search: exact optimum and zeros in a few passes (small models)."
    search_space = {}
    full_batch = True
    prox_mode = "internal"
    supports_batch = True
    uses_hessian = True

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        groups = list(param_groups)
        precise = groups[0]["params"][0].dtype == torch.float64
        return BatchedNewton(groups, prox=prox, max_iter=20, tolerance_grad=1e-9 if precise else 1e-6)


class NewtonCGOptimizer(Optimizer):
    """Truncated Newton (``plugins/_newton_cg.py``): Newton steps solved by conjugate gradients on
    Hessian-vector products, so the model may have any size. For smooth penalties (L2, none) on
    wide data it reaches the optimum in a few Newton iterations, a fraction of L-BFGS's passes.
    No hyperparameters: the step is Newton's, with a line search."""

    name = "newton_cg"
    description = "Full-batch truncated Newton (conjugate gradients on Hessian products): L2 or no penalty, any model size."
    search_space = {}
    full_batch = True
    prox_mode = "unsupported"
    supports_batch = True
    hessian_products = True
    batch_state_floats = 16  # float64 (two floats each): the point, gradient, step, CG's residual, direction, product

    def build(self, param_groups: Iterable[dict[str, Any]], params: Mapping[str, Any], prox: ProxFn | None = None):
        groups = list(param_groups)
        precise = groups[0]["params"][0].dtype == torch.float64
        return BatchedNewtonCG(groups, max_iter=20, tolerance_grad=1e-9 if precise else 1e-6)
