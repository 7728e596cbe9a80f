"""L-BFGS with an L1 part: OWL-QN (Andrew & Gao, 2007), for K trials side by side or one alone.

An elastic net's L1 term ``a ||W||_1`` is not differentiable at zero, so plain L-BFGS cannot
minimise it (it leaves tiny weights instead of zeros). Orthant-wise L-BFGS keeps L-BFGS's
curvature pairs (of the smooth part's gradients) and, per trial with ``a > 0``:

* steers by the *pseudo-gradient* of the whole objective: the smooth gradient plus ``a sign(w)``
  where ``w != 0``; at ``w = 0`` the one-sided derivative that descends, or 0 when neither does
  (zero is optimal for that weight);
* zeroes the quasi-Newton direction where it disagrees in sign with the negative
  pseudo-gradient;
* searches along the direction projected onto the orthant of the start (a weight that would
  cross zero stops at zero: the exact zeros) for a step that meets Armijo's test on the whole
  objective with the pseudo-gradient and the curvature test on its derivative along that path
  (a weak-Wolfe search, :meth:`BatchedOWLQN._search`).

FISTA reaches the same optimum, but converges at a rate set by the problem's conditioning;
OWL-QN follows the curvature, so on ill-conditioned data (kddcup99's near-copied one-hot
columns) it needs fewer passes: a quarter of FISTA's time there (``benchmarks/RESULTS.md``, tenth
round). In float32 its end point is limited by the rounding of the gradient along such
directions (kddcup99: 4e-4 above FISTA's objective); in float64 it reaches the optimum.

Trials whose L1 weight is zero (an L2 or unpenalized trial in the same group) take the same
steps with the projections off: L-BFGS with that search. A group in which no trial has
an L1 part takes :class:`BatchedLBFGS`'s own steps (its Wolfe line search), unchanged.

The L1 weights come from ``closure.l1_weights()`` (:mod:`tuner._plugin_api`), one per trial;
only the weights (the ``penalized`` parameter group) carry them, never the intercepts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ._batched_solvers import BatchedLBFGS, Closure, _next_trial_step, _per_trial

__all__ = ["BatchedOWLQN", "OneTrialOWLQN", "STALL"]

STALL = 3
"""A trial stops for the rest of a ``step()`` call after this many iterations in a row that did not
lower its whole objective by more than ``tolerance_change``: its rounding floor. In float32 the
objective stops resolving the last steps well before the pseudo-gradient meets its tolerance, and
each further iteration then spent up to ``max_ls`` evaluations on a line search whose Armijo test
no longer tells steps apart (kddcup99, l1 at 7.5e-5: still training after 7 minutes, against 3
minutes in all with this stop). A single such iteration is no
sign of it: near the optimum one iteration often lowers the objective by less than its rounding
and the next by a rounding step again."""


class BatchedOWLQN(BatchedLBFGS):
    """:class:`BatchedLBFGS` that minimises an elastic net's L1 part by OWL-QN (module docstring).

    ``step(closure)`` returns the per-trial smooth objective at the final iterates, as
    :class:`BatchedLBFGS` does; ``converged()`` marks the trials whose pseudo-gradient met
    ``tolerance_grad`` or whose whole call did not lower their objective. ``l1=False`` (the
    penalty has no non-smooth part) takes :class:`BatchedLBFGS`'s steps without asking the closure
    for L1 weights."""

    def __init__(self, params: Iterable[Any], lr: Any = 1.0, max_iter: int = 100, history_size: Any = 20,
                 tolerance_grad: float | None = None, tolerance_change: float | None = None,
                 c1: float = 1e-4, c2: float = 0.9, max_ls: int = 25, l1: bool = True) -> None:
        super().__init__(params, lr=lr, max_iter=max_iter, history_size=history_size,
                         tolerance_grad=tolerance_grad, tolerance_change=tolerance_change, c1=c1, c2=c2, max_ls=max_ls)
        self._penalized = [bool(g.get("penalized", False)) for g in self.param_groups for _ in g["params"]]
        self._l1 = l1  # False: the penalty has no non-smooth part (no prox was given), so plain L-BFGS

    def _l1_layout(self, closure: Closure, x: torch.Tensor) -> torch.Tensor | None:
        """Each trial's L1 weight on each of its flat parameters, ``(K, P)`` (0 on intercepts), or
        None when no trial has an L1 part."""
        read = getattr(closure, "l1_weights", None)
        weights = read() if callable(read) else None
        if weights is None:
            raise ValueError("L-BFGS minimises a non-smooth part only when every trial's penalty is an elastic net "
                             "(Penalty.elastic_net); this closure offers no closure.l1_weights(). Choose a proximal "
                             "solver (fista).")
        k = x.shape[0]
        lam = _per_trial(weights, k, x, "l1_weights")
        if not bool((lam > 0).any()):
            return None
        parts = [(lam if penalized else torch.zeros_like(lam))[:, None].expand(k, self._size(p))
                 for p, penalized in zip(self._params, self._penalized)]
        return torch.cat(parts, 1)

    @staticmethod
    def _size(p: torch.Tensor) -> int:
        """How many numbers of ``p`` belong to one trial."""
        return p[0].numel()

    @torch.no_grad()
    def step(self, closure: Closure) -> torch.Tensor:  # type: ignore[override]
        x = self._flat([p.detach() for p in self._params])
        lam = self._l1_layout(closure, x) if self._l1 else None
        if lam is None:
            return super().step(closure)
        return self._orthant_step(closure, x, lam)

    def _orthant_step(self, closure: Closure, x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        group, st = self.param_groups[0], self._state
        k = x.shape[0]
        if not st:
            self._init_state(x)
        lr = _per_trial(group["lr"], k, x, "lr")
        tol_grad, tol_change = self._tolerances()
        sparse = lam > 0
        f, g = self._eval(closure)
        F = f + (lam * x.abs()).sum(1)
        F_start = F.clone()
        pg = _pseudo_gradient(x, g, lam)
        done = self._frozen_mask(k, x.device) | ~torch.isfinite(F) | (pg.abs().amax(1) <= tol_grad)
        if bool(done.all()):
            self._converged = done.clone()
            return f
        stalled = torch.zeros(k, dtype=torch.long, device=x.device)
        for _ in range(int(group["max_iter"])):
            st["n_iter"] += 1
            d = self._direction(pg)
            d = torch.where(sparse & (d * pg >= 0), torch.zeros_like(d), d)  # against the pseudo-gradient only
            slope = (pg * d).sum(1)
            uphill = ~(slope < 0)  # the two-loop direction went uphill once projected: steepest descent instead
            d = torch.where(uphill[:, None], -pg, d)
            slope = torch.where(uphill, -(pg * pg).sum(1), slope)
            done |= ~(slope <= -tol_change)
            orthant = torch.where(x != 0, torch.sign(x), torch.sign(-pg))
            t = torch.clamp(1.0 / pg.abs().sum(1), max=1.0) * lr if st["n_iter"] == 1 else lr
            x_new, f_new, g_new, F_new, moved = self._search(closure, x, F, pg, d, orthant, lam, t, ~done)
            s = x_new - x
            self._remember(s, g_new - g, moved)
            lowered = moved & (F - F_new > tol_change)
            stalled = torch.where(lowered, torch.zeros_like(stalled), stalled + 1)
            x = torch.where(moved[:, None], x_new, x)
            f, F = torch.where(moved, f_new, f), torch.where(moved, F_new, F)
            g = torch.where(moved[:, None], g_new, g)
            pg = _pseudo_gradient(x, g, lam)
            done |= ~moved | (pg.abs().amax(1) <= tol_grad) | (s.abs().amax(1) <= tol_change) | (stalled >= STALL)
            if self._all_done(done):
                break
        self._set_flat(x)
        self._converged = (pg.abs().amax(1) <= tol_grad) | ~(F < F_start)
        return f

    def _search(self, closure: Closure, x: torch.Tensor, F0: torch.Tensor, pg: torch.Tensor, d: torch.Tensor,
                orthant: torch.Tensor, lam: torch.Tensor, t: torch.Tensor, searching: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-trial weak-Wolfe search along ``d`` projected onto ``orthant``: Armijo's test on the
        whole objective with the pseudo-gradient, and the curvature test on its one-sided derivative
        along the path. Returns the new points, their smooth objectives and gradients, their whole
        objectives, and which trials found a step.

        The curvature test matters in float32: near the optimum a step changes the objective by less
        than its rounding, so Armijo's test alone accepts any step that does not raise it and the
        iterates wander; the derivative still tells a step that goes on descending from one that
        has gone far enough. Steps are chosen as :class:`BatchedLBFGS`'s search chooses them."""
        c1, c2 = self._c1, self._c2
        sparse = lam > 0
        slope = (pg * d).sum(1)
        inf = torch.full_like(F0, math.inf)
        lo, F_lo, dd_lo, hi, F_hi = torch.zeros_like(F0), F0.clone(), slope.clone(), inf.clone(), inf.clone()
        best = [x.clone(), torch.zeros_like(F0), torch.zeros_like(x), F0.clone()]  # accepted: point, f, g, F
        short_best = [x.clone(), torch.zeros_like(F0), torch.zeros_like(x), F0.clone()]  # the last short step's
        accepted = torch.zeros_like(searching)
        for _ in range(self._max_ls):
            cand = x + t[:, None] * d
            cand = torch.where(sparse & (torch.sign(cand) != orthant), torch.zeros_like(cand), cand)
            cand = torch.where(searching[:, None], cand, x)
            self._set_flat(cand)
            f, g = self._eval(closure)
            F = f + (lam * cand.abs()).sum(1)
            # the derivative along the projected path: a weight held at zero by the projection stays there
            moving = ~sparse | (cand != 0)
            dd = ((g + lam * torch.sign(cand)) * d * moving).sum(1)
            armijo = F <= F0 + c1 * (pg * (cand - x)).sum(1)  # False for NaN
            acc = searching & armijo & (dd >= c2 * slope)
            short = searching & armijo & ~acc
            far = searching & ~armijo
            for kept, where in ((best, acc), (short_best, short)):
                for i, value in enumerate((cand, f, g, F)):
                    kept[i] = torch.where(where[:, None] if value.dim() == 2 else where, value, kept[i])
            accepted |= acc
            t_next = _next_trial_step(t, lo, F_lo, dd_lo, hi, F_hi, F, dd, short)
            lo, F_lo, dd_lo = torch.where(short, t, lo), torch.where(short, F, F_lo), torch.where(short, dd, dd_lo)
            hi, F_hi = torch.where(far, t, hi), torch.where(far, F, F_hi)
            searching = short | far
            t = torch.where(searching, t_next, t)
            if not bool(searching.any()):
                break
        fallback = searching & (lo > 0)  # out of rounds: the last step that passed Armijo's test
        for i in range(4):
            where = fallback[:, None] if best[i].dim() == 2 else fallback
            best[i] = torch.where(where, short_best[i], best[i])
        return best[0], best[1], best[2], best[3], accepted | fallback


def _pseudo_gradient(x: torch.Tensor, g: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """The steepest-descent direction's negative for ``f + sum(lam |x|)``: ``g + lam sign(x)`` off
    zero; at zero the one-sided derivative that descends, or 0 where neither side does."""
    right, left = g + lam, g - lam
    at_zero = torch.where(right < 0, right, torch.where(left > 0, left, torch.zeros_like(g)))
    return torch.where(x != 0, g + lam * torch.sign(x), at_zero)


class OneTrialOWLQN(BatchedOWLQN):
    """:class:`BatchedOWLQN` for one trial trained alone (the trainer's single-trial shapes: weights
    ``(p, c)``, intercept ``(c,)``, a closure returning one number): the trial is a batch of one."""

    def _check_trial_axis(self) -> None:
        return None

    @staticmethod
    def _size(p: torch.Tensor) -> int:
        return p.numel()

    def _flat(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(1, -1) for t in tensors], 1)

    def _set_flat(self, x: torch.Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(x[0, offset:offset + n].view_as(p))
            offset += n

    def _eval(self, closure: Closure) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            f = closure()
        grads = [p.grad.detach() if p.grad is not None else torch.zeros_like(p) for p in self._params]
        return f.detach().reshape(1), self._flat(grads)

    def step(self, closure: Closure) -> torch.Tensor:  # type: ignore[override]
        return super().step(closure).reshape(())
