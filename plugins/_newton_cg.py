"""Truncated Newton for K trials side by side: the optimum of a smooth objective on models of any size.

Each iteration solves the Newton system ``H d = -g`` of each trial approximately by conjugate
gradients on Hessian-vector products (``closure.hessian_product()``: two passes over the data a
product, never the ``P x P`` Hessian), then backtracks along ``d`` as :class:`BatchedNewton` does.
CG stops once a trial's residual is below ``min(1/2, sqrt(|g|)) |g|`` (the forcing sequence of
Eisenstat and Walker, 1994, that keeps Newton's superlinear convergence; scikit-learn's
``newton-cg`` and LIBLINEAR's trust-region Newton solve the same system the same way), at the
first direction without positive curvature, or after ``max_cg`` products (:data:`MAX_CG`).

On SST-2's TF-IDF matrix (53,879 rows, 79,049 features, 824k stored values) an L2 fit at
strength 1e-6 takes 8 Newton iterations and 130 Hessian products, 0.48 s, where L-BFGS takes
1.6 s and stops higher (``benchmarks/RESULTS.md``, eighteenth round). Smooth penalties only
(L2, none): a non-smooth one is refused (``prox_mode = "unsupported"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._newton import BatchedNewton

__all__ = ["BatchedNewtonCG", "conjugate_gradients", "MAX_CG"]

MAX_CG = 50
"""Hessian products a Newton step may take at most. Far from the optimum an exact Newton step is
not worth its products, and without a penalty on separable data (SST-2, no optimum) every step
would use them all: there 250 gave 3.5 s a fit against 1.0 s with 50 (L-BFGS: 1.6 s), while L2
at strength 1e-7 went from 1.2 s to 0.8 s at the same objective. Unpenalized a9a, float64,
still ends 2e-7 from scikit-learn's optimum (``tests/test_parity.py`` asks 1e-6)."""


class BatchedNewtonCG(BatchedNewton):
    """Newton's method with the step from conjugate gradients, over the trainer's two parameter
    groups (weights, then intercept), one trial alone or K side by side.

    The closure must offer ``hessian_product(mask)`` (the trainer's full-batch closures do;
    :mod:`tuner._plugin_api`). The outer loop, its optimality test (``max |g| <= tolerance_grad``),
    the damping of flat directions and the line search are :class:`BatchedNewton`'s."""

    def __init__(self, params: Iterable[Any], max_iter: int = 20, tolerance_grad: float | None = None,
                 max_cg: int = MAX_CG) -> None:
        super().__init__(params, prox=None, max_iter=max_iter, tolerance_grad=tolerance_grad)
        if max_cg < 1:
            raise ValueError(f"max_cg must be >= 1; got {max_cg}")
        self._max_cg = int(max_cg)

    def _check_closure(self, closure: Any) -> None:
        if getattr(closure, "hessian_product", None) is None:
            raise RuntimeError("newton_cg needs a closure that offers hessian_product(), as the trainer's does; it "
                               "cannot run from a plain closure")

    def _step_direction(self, closure: Any, g: torch.Tensor, theta: torch.Tensor, h0: torch.Tensor,
                        residual: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Each active trial's truncated Newton step (zero for the others), in float64."""
        W, _ = self._leaves()
        idx = active.nonzero().reshape(-1)
        product = closure.hessian_product(active)
        # the damping of BatchedNewton._direction: flat directions (no penalty, softmax intercepts)
        damping = residual[idx].clamp(max=1.0).square()[:, None]

        def hessian_times(V: torch.Tensor) -> torch.Tensor:
            return product(V.to(W.dtype)).to(torch.float64) + damping * V

        d = torch.zeros_like(g)
        d[idx] = conjugate_gradients(hessian_times, g[idx], self._max_cg)
        return d


def conjugate_gradients(hessian_times: Callable[[torch.Tensor], torch.Tensor], g: torch.Tensor,
                        max_iter: int) -> torch.Tensor:
    """``d`` with ``|H d + g| <= min(1/2, sqrt(|g|)) |g|`` per row of ``g`` ``(K, P)``, by conjugate
    gradients from ``d = 0``; ``hessian_times(V)`` is ``H V`` row by row. A row stops early at a
    direction of zero or negative curvature: with the steepest descent ``-g`` if that is its first
    one, else with the step so far (a descent direction either way)."""
    gnorm = g.norm(dim=1)
    tol = torch.clamp(gnorm.sqrt(), max=0.5) * gnorm
    d = torch.zeros_like(g)
    r = -g
    p = r.clone()
    rr = (r * r).sum(dim=1)
    going = rr.sqrt() > tol
    for i in range(max_iter):
        if not bool(going.any()):
            break
        Hp = hessian_times(p)
        curvature = (p * Hp).sum(dim=1)
        flat = going & ~(curvature > 0)
        if i == 0:
            d = torch.where(flat[:, None], r, d)
        stepping = going & ~flat
        alpha = torch.where(stepping, rr / torch.where(stepping, curvature, torch.ones_like(curvature)),
                            torch.zeros_like(rr))
        d = d + alpha[:, None] * p
        r = r - alpha[:, None] * Hp
        rr_next = (r * r).sum(dim=1)
        going = stepping & (rr_next.sqrt() > tol)
        beta = rr_next / torch.where(rr > 0, rr, torch.ones_like(rr))
        p = torch.where(going[:, None], r + beta[:, None] * p, p)
        rr = rr_next
    return d
