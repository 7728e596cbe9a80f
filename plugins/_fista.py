"""FISTA with backtracking and adaptive restart, as a ``torch.optim.Optimizer``.

Beck & Teboulle (2009) accelerated proximal gradient, with the step found by backtracking on
the quadratic upper bound (and allowed to grow again by a small factor each iteration), and
O'Donoghue & Candes (2015) gradient-based restart, which restores linear convergence on the
strongly convex problems that penalized logistic regression usually is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from tuner import ProxFn

from ._light import LightOptimizer


class FISTA(LightOptimizer):
    """Full-batch accelerated proximal gradient.

    ``step(closure)`` runs up to ``max_iter`` iterations; ``closure`` must zero the gradients,
    compute the *smooth* objective, call ``backward()`` and return the objective. It may offer
    ``closure.value_only()``, the objective without gradients, which the backtracking test then
    uses. ``prox`` is applied to every parameter group flagged ``penalized``.

    Each iteration takes the gradient at the extrapolated point ``y``, finds the step by
    backtracking, and moves to ``x = prox(y - step * grad)``. Iterations stop early once the
    gradient mapping ``(y - x) / step`` (the gradient of the smooth part plus a subgradient of
    the non-smooth part: zero exactly at the optimum) is at most ``tolerance_grad`` in every
    coordinate; later calls then cost one gradient evaluation.
    """

    def __init__(
        self,
        params: Iterable[Any],
        prox: ProxFn | None = None,
        lr: float = 1.0,
        max_iter: int = 50,
        grow: float = 1.1,
        shrink: float = 0.5,
        tolerance_grad: float = 1e-9,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0; got {lr}")
        if not 0 < shrink < 1 or grow < 1:
            raise ValueError(f"need 0 < shrink < 1 <= grow; got shrink={shrink}, grow={grow}")
        super().__init__(params, dict(lr=lr, max_iter=max_iter, grow=grow, shrink=shrink,
                                      tolerance_grad=tolerance_grad))
        self._prox = prox
        self._global: dict[str, Any] = {}

    def _params(self) -> list[tuple[torch.Tensor, bool]]:
        return [(p, bool(g.get("penalized", False))) for g in self.param_groups for p in g["params"]]

    def _take(self, y: list[torch.Tensor], grads: list[torch.Tensor], step: float) -> None:
        for (p, penalized), yi, gi in zip(self._params(), y, grads):
            cand = yi - step * gi
            if penalized and self._prox is not None:
                cand = self._prox(cand, step)
            p.copy_(cand)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        group = self.param_groups[0]
        st = self._global
        params = [p for p, _ in self._params()]
        if not st:
            st.update(t=1.0, step=float(group["lr"]), x_prev=[p.detach().clone() for p in params], y=None)
        if st["y"] is not None:  # resume from the extrapolated point of the last call
            for p, yi in zip(params, st["y"]):
                p.copy_(yi)

        def evaluate() -> float:
            with torch.enable_grad():
                return float(closure().detach())

        # A closure may offer ``value_only()``: the objective without gradients, which is all the
        # backtracking test needs (the trainer's closures do; any other closure works too).
        value_only = getattr(closure, "value_only", None)

        def value() -> float:
            return float(value_only()) if value_only is not None else evaluate()

        # Rounding in f(x) - f(y): below this, the backtracking test cannot tell steps apart.
        eps = 10.0 * torch.finfo(params[0].dtype).eps
        f_x = math.nan
        for _ in range(int(group["max_iter"])):
            # The parameters hold y here: the extrapolated point whose gradient FISTA steps from.
            f_y = evaluate()
            grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
            y = [p.detach().clone() for p in params]
            slack = eps * abs(f_y)
            step = st["step"] * (group["grow"] if st.get("grow_ok", True) else 1.0)
            for _attempt in range(60):
                self._take(y, grads, step)
                f_x = value()
                lin = sum(float((g * (p - yi)).sum()) for g, p, yi in zip(grads, params, y))
                sq = sum(float((p - yi).pow(2).sum()) for p, yi in zip(params, y))
                if f_x <= f_y + lin + sq / (2.0 * step) + slack:
                    break
                step *= group["shrink"]
            st["step"] = step
            # Grow the step again only while the test above is meaningful: once the quadratic
            # term is below rounding, every step would pass it, and the iterates would oscillate.
            st["grow_ok"] = sq / (2.0 * step) > slack
            x_new = [p.detach().clone() for p in params]
            mapping = max(float((yi - xn).abs().max()) for yi, xn in zip(y, x_new)) / step
            # Gradient restart: the momentum points uphill, so drop it.
            uphill = sum(float(((yi - xn) * (xn - xp)).sum()) for yi, xn, xp in zip(y, x_new, st["x_prev"]))
            if uphill > 0:
                st["t"] = 1.0
            t = st["t"]
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = (t - 1.0) / t_next
            st["y"] = [xn + beta * (xn - xp) for xn, xp in zip(x_new, st["x_prev"])]
            st["x_prev"], st["t"] = x_new, t_next
            if mapping <= group["tolerance_grad"]:
                st["y"] = [xn.clone() for xn in x_new]  # converged: resume without momentum
                break
            for p, yi in zip(params, st["y"]):  # the next gradient is taken at y, not at x
                p.copy_(yi)
        for p, xn in zip(params, st["x_prev"]):  # leave the parameters at the iterate, not at y
            p.copy_(xn)
        return torch.tensor(f_x)
