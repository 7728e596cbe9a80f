"""Proximal Newton for K trials side by side: the exact optimum in a few passes when the model is small.

Each iteration takes the gradient from the closure and the Hessian from ``closure.hessian()``
(the trainer offers it for models of up to a few thousand parameters), and moves each trial to
the minimiser of the quadratic model of its smooth part plus its non-smooth part::

    d = argmin_d  g^T d + 1/2 d^T H d + h(theta + d)

then backtracks along ``d`` until the whole objective ``F = f + h`` decreases enough (Armijo,
``F(theta + t d) <= F(theta) + sigma t (g^T d + h(theta + d) - h(theta))``; Lee, Sun and Saunders,
"Proximal Newton-type methods", 2014). Without a non-smooth part (no penalty, L2, or an elastic
net trial at ``l1_ratio`` 0) the model's minimiser is one Cholesky solve; with one (L1, elastic
net), rounds of an accelerated proximal gradient method find the model's support, each followed
by an active-set solve on it, started from the smooth Newton point passed through the prox; a round
that does not cut a trial's gap by a tenth ends that trial's rounds (:data:`STALLED_ROUND`). The
linear algebra runs in float64 on ``(K, P, P)`` matrices.

A trial stops once its proximal gradient residual ``max |theta - prox(theta - g)|`` is at most
``tolerance_grad`` (or when no step along its direction decreases the objective: the precision
floor); :meth:`BatchedNewton.converged` tells the trainer which trials did, so they end at once.
The test is not trusted at the start of a fit: one Newton step is always taken from it (a warm
start at a neighbour's optimum can pass it while above its own optimum). Frozen trials
(``freeze``) and trials whose objective is not finite stop moving.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._batched_solvers import _Freezable
from ._light import LightOptimizer

__all__ = ["BatchedNewton"]

INNER_ROUNDS = 8
FIRST_ROUND = 8
"""Rounds of FISTA (8, 16, 32, ... iterations, within ``inner_max_iter``), each followed by a Newton
polish on its support, solve the model when the penalty has a non-smooth part."""
ACTIVE_SET_PASSES = 16
"""Support solves in one polish at most (each pass but the last holds one more weight at zero)."""
STALLED_ROUND = 0.9
"""A trial's model is left once a round of FISTA and polish shrinks its gap by less than this
factor: the outer line search and the next Hessian make more progress than FISTA crawling
along a nearly flat direction (a9a at strength 1e-7: 1,000 iterations an outer step, each round
cutting the gap by a few percent)."""
POLISH_HALVINGS = 8
ARMIJO = 1e-4
"""The sufficient-decrease fraction of the line search."""
MAX_HALVINGS = 40


class BatchedNewton(_Freezable, LightOptimizer):
    """Proximal Newton over the trainer's two parameter groups (weights, then intercept).

    ``params``: the groups the trainer passes (the weights flagged ``penalized``); with trials side
    by side the weights are ``(K, p, c)`` and the intercept ``(K, 1, c)``, one trial alone
    ``(p, c)`` and ``(c,)``. ``prox(W, step)`` is the penalty's proximal operator (``None`` for a
    smooth penalty). The closure must offer ``hessian(mask)`` and, with a prox, ``nonsmooth()``
    (the trainer's does; :mod:`tuner._plugin_api`)."""

    def __init__(self, params: Iterable[Any], prox: Callable[..., torch.Tensor] | None = None, max_iter: int = 20,
                 tolerance_grad: float | None = None, inner_max_iter: int = 1000) -> None:
        super().__init__(params, dict(max_iter=max_iter, tolerance_grad=tolerance_grad,
                                      inner_max_iter=inner_max_iter))
        self._prox = prox
        self._converged: torch.Tensor | None = None
        W = self.param_groups[0]["params"][0]
        self._single = W.dim() == 2
        self._dev = W.device
        self._shape = (1, *W.shape) if self._single else tuple(W.shape)

    # -- the parameters of every trial as one (K, P) matrix: the weights row-major, then the intercept

    def _leaves(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.param_groups[0]["params"][0], self.param_groups[1]["params"][0]

    def _theta(self) -> torch.Tensor:
        W, b = self._leaves()
        k = self._shape[0]
        return torch.cat([W.detach().reshape(k, -1), b.detach().reshape(k, -1)], dim=1).double()

    def _grad(self) -> torch.Tensor:
        W, b = self._leaves()
        k = self._shape[0]
        gw = W.grad if W.grad is not None else torch.zeros_like(W)
        gb = b.grad if b.grad is not None else torch.zeros_like(b)
        return torch.cat([gw.reshape(k, -1), gb.reshape(k, -1)], dim=1).double()

    def _put(self, theta: torch.Tensor, where: torch.Tensor) -> None:
        """Set the trials in ``where`` (a ``(K,)`` mask) to ``theta``; the others keep theirs."""
        W, b = self._leaves()
        k, pc = self._shape[0], self._shape[1] * self._shape[2]
        with torch.no_grad():
            new_w = theta[:, :pc].to(W.dtype).reshape(W.shape)
            new_b = theta[:, pc:].to(b.dtype).reshape(b.shape)
            if self._single:
                if bool(where[0]):
                    W.copy_(new_w)
                    b.copy_(new_b)
                return
            W.copy_(torch.where(where.view(k, 1, 1), new_w, W))
            b.copy_(torch.where(where.view(k, 1, 1), new_b, b))

    def _prox_theta(self, theta: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """The penalty's prox with a per-trial step applied to the weights' part of ``theta``."""
        if self._prox is None:
            return theta
        W, _ = self._leaves()
        k, p, c = self._shape
        wpart = theta[:, :p * c].to(W.dtype)
        if self._single:
            out = self._prox(wpart.reshape(p, c), float(step[0])).reshape(1, p * c)
        else:
            out = self._prox(wpart.reshape(k, p, c), step.to(W.dtype).view(k, 1, 1)).reshape(k, p * c)
        return torch.cat([out.double(), theta[:, p * c:]], dim=1)

    # -- the closure's values

    def _smooth(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        with torch.enable_grad():
            f = closure()
        return f.detach().reshape(-1).double()

    def _value(self, closure: Any) -> torch.Tensor:
        """The whole objective ``f + h`` per trial at the current parameters (no gradients)."""
        value_only = getattr(closure, "value_only", None)
        with torch.no_grad():
            f = (value_only() if value_only is not None else closure()).detach().reshape(-1).double()
        return f + self._nonsmooth(closure)

    def _nonsmooth(self, closure: Any) -> torch.Tensor:
        if self._prox is None:
            return torch.zeros(self._shape[0], dtype=torch.float64, device=self._dev)
        with torch.no_grad():
            return closure.nonsmooth().detach().reshape(-1).double()

    def converged(self) -> torch.Tensor | None:
        """``(K,)`` bool: the trials whose last :meth:`step` met the optimality test (None before any)."""
        return self._converged

    @torch.no_grad()
    def step(self, closure: Any) -> torch.Tensor:  # type: ignore[override]
        group = self.param_groups[0]
        self._check_closure(closure)
        W, _ = self._leaves()
        k = self._shape[0]
        tol = group["tolerance_grad"]
        if tol is None:
            tol = 1e-9 if W.dtype == torch.float64 else 1e-6
        self._tol, self._eps = float(tol), float(torch.finfo(W.dtype).eps)
        active = ~self._frozen_mask(k, W.device)
        first_call = self._converged is None
        if self._converged is None:
            self._converged = torch.zeros(k, dtype=torch.bool, device=W.device)
        for it in range(int(group["max_iter"])):
            f = self._smooth(closure)
            active &= torch.isfinite(f)
            theta, g = self._theta(), self._grad()
            residual = (theta - self._prox_theta(theta - g, torch.ones(k, dtype=torch.float64, device=self._dev))).abs().amax(dim=1)
            # the residual is computed through the prox in the weights' dtype: it cannot go below its rounding
            done = residual <= torch.clamp(4.0 * self._eps * theta.abs().amax(dim=1), min=tol)
            if first_call and it == 0:
                # The start may be a neighbour's optimum (a study's warm start): there the gradient is
                # the change of penalty times the weights, small in every coordinate while the
                # objective is still well above its optimum (SST-2, L2 from 4.9e-7 to 6.05e-7: max |g|
                # under 1e-6, 0.65% above). One Newton step from it before the test is trusted; at a
                # true optimum that step finds no decrease and the trial ends converged all the same.
                done = torch.zeros_like(done)
            self._converged = torch.where(active | done, done, self._converged)
            active &= ~done
            if not bool(active.any()):
                break
            h0 = self._h_at(theta, closure)  # the non-smooth part where this iteration starts
            d = self._step_direction(closure, g, theta, h0, residual, active)
            if self._shape[2] > 1:
                # Softmax outputs: adding one number to every intercept changes nothing, so the
                # Hessian is singular along it; keep the step off that direction (no drift from
                # rounding, and the same intercepts whatever the other trials do).
                pc = self._shape[1] * self._shape[2]
                d[:, pc:] -= d[:, pc:].mean(dim=1, keepdim=True)
            stalled = self._line_search(closure, theta, g, d, f, h0, active)
            self._converged |= stalled
            active &= ~stalled
        return (self._value(closure) - self._nonsmooth(closure)).to(W.dtype)

    def _check_closure(self, closure: Any) -> None:
        if getattr(closure, "hessian", None) is None or (self._prox is not None and getattr(closure, "nonsmooth", None) is None):
            raise RuntimeError("newton needs a closure that offers hessian() (and nonsmooth() with a non-smooth "
                               "penalty), as the trainer's does; it cannot run from a plain closure")

    def _step_direction(self, closure: Any, g: torch.Tensor, theta: torch.Tensor, h0: torch.Tensor,
                        residual: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Each active trial's step (zero for the others), from its Hessian."""
        k = theta.shape[0]
        H = torch.zeros(k, theta.shape[1], theta.shape[1], dtype=torch.float64, device=self._dev)
        H[active] = closure.hessian(active).to(device=self._dev, dtype=torch.float64)
        return self._direction(H, g, theta, h0, residual, active, closure)

    def _direction(self, H: torch.Tensor, g: torch.Tensor, theta: torch.Tensor, h0: torch.Tensor,
                   residual: torch.Tensor, active: torch.Tensor, closure: Any) -> torch.Tensor:
        """Each active trial's step ``d`` (zero for the others)."""
        # The model is regularised by the squared residual (Levenberg-Marquardt; Ueda and
        # Yamashita, 2010, for proximal Newton): H is singular along the directions the data
        # leave flat (a9a's one-hot groups beside the intercept, repeated columns), where the
        # quadratic plus the L1 slope has no minimiser, so the support solves shot off and each
        # outer step crept 1e-5 along (4% above the optimum, "converged", once a column of ~500
        # stretched H). The term vanishes faster than the residual, which keeps the fast local
        # convergence (the residual itself as the term damped the flat directions of a weak
        # penalty enough to stop float32 fits a few 1e-6 above their optimum).
        eye = torch.eye(H.shape[1], dtype=H.dtype, device=H.device)
        H = H + residual.clamp(max=1.0).square()[:, None, None] * eye
        newton = _solve(H, g, active)
        if self._prox is None:
            return newton
        return self._model_minimiser(H, g, theta, h0, newton, residual, active, closure)

    def _model_minimiser(self, H: torch.Tensor, g: torch.Tensor, theta: torch.Tensor, h0: torch.Tensor,
                         newton: torch.Tensor, residual: torch.Tensor, active: torch.Tensor,
                         closure: Any) -> torch.Tensor:
        """``argmin_z g^T (z - theta) + 1/2 (z - theta)^T H (z - theta) + h(z)``; returns ``z - theta``.

        Rounds of FISTA with restart (from the smooth Newton point through the prox), each followed
        by a Newton polish on the support FISTA found (:meth:`_polish`): with the zero weights held at
        zero and the non-smooth part's gradient on the others read off the last proximal step, the
        model is a quadratic on the support, solved exactly within the weights' orthant. A polished
        point is kept only where it lowers the model, so any prox is safe; for L1 it ends the search
        once the support is right (FISTA alone needs thousands of iterations on ill-conditioned data
        and on the flat directions of one-hot columns)."""
        group = self.param_groups[0]
        lipschitz = torch.linalg.eigvalsh(H).amax(dim=1).clamp(min=1e-12)
        step = 1.0 / lipschitz

        def model_grad(z: torch.Tensor) -> torch.Tensor:
            return g + torch.bmm(H, (z - theta).unsqueeze(2)).squeeze(2)

        def model(z: torch.Tensor) -> torch.Tensor:
            dz = z - theta
            return (g * dz).sum(1) + 0.5 * (dz * (model_grad(z) - g)).sum(1) + self._h_at(z, closure)

        # Start from the smooth Newton point through the prox, or from theta where that is worse
        # (a nearly singular Hessian sends the smooth step far away).
        z = self._prox_theta(theta + newton, step)
        z = torch.where((model(z) < h0)[:, None], z, theta)
        # Superlinear outer convergence asks the model's residual to shrink faster than the outer
        # one, down to the tolerance and to what the prox's rounding can tell apart.
        rounding = 4.0 * self._eps * z.abs().amax(dim=1) * lipschitz
        inner_tol = torch.maximum(torch.clamp(0.1 * residual * residual.clamp(max=1.0), min=self._tol), rounding)
        going = active.clone()
        budget = int(group["inner_max_iter"])
        last_gap: torch.Tensor | None = None
        for r in range(INNER_ROUNDS):
            iters = min(budget, FIRST_ROUND << r)
            budget -= iters
            z = self._fista(z, H, g, theta, step, lipschitz, inner_tol, going, iters)
            u = z - step[:, None] * model_grad(z)
            slope = (u - self._prox_theta(u, step)) / step[:, None]  # the non-smooth part's gradient where z != 0
            z = self._polish(H, g, theta, z, slope, model, going)
            gap = (self._prox_theta(z - step[:, None] * model_grad(z), step) - z).abs().amax(dim=1) * lipschitz
            going &= ~(gap <= inner_tol)
            if last_gap is not None:  # a round that did not cut the gap by a tenth: no better to be had cheaply
                going &= ~(gap > STALLED_ROUND * last_gap)
            last_gap = gap
            if not bool(going.any()) or budget <= 0:
                break
        # A descent direction is guaranteed only when the model went below its value at d = 0;
        # otherwise take the proximal gradient step on the model, which always does.
        fallback = self._prox_theta(theta - step[:, None] * g, step)
        z = torch.where((model(z) < h0)[:, None], z, fallback)
        return torch.where(active[:, None], z - theta, torch.zeros_like(z))

    def _fista(self, z: torch.Tensor, H: torch.Tensor, g: torch.Tensor, theta: torch.Tensor, step: torch.Tensor,
               lipschitz: torch.Tensor, tol: torch.Tensor, going: torch.Tensor, iters: int) -> torch.Tensor:
        """At most ``iters`` iterations of FISTA with gradient restart on the model ``g^T dz + 1/2
        dz^T H dz + h`` from ``z``, for the trials in ``going``; returns the last iterate.

        The model's gradient (the ``K x P^2`` product, nearly all of an iteration) is taken only
        for the trials still going: side by side, trials converge after very different numbers
        of iterations, and the group runs as long as its slowest."""
        k = z.shape[0]
        y, t = z.clone(), torch.ones(k, dtype=torch.float64, device=self._dev)
        going = going.clone()
        rows, H_rows = None, H
        for _ in range(iters):
            if rows is None:  # the going trials changed: their Hessians, gathered once
                rows = going.nonzero().squeeze(1)
                H_rows = H if len(rows) == k else H[rows]
            grad = g.clone()
            grad[rows] += torch.bmm(H_rows, (y[rows] - theta[rows]).unsqueeze(2)).squeeze(2)
            u = y - step[:, None] * grad
            z_new = self._prox_theta(u, step)
            gap = (z_new - y).abs().amax(dim=1) * lipschitz
            uphill = ((y - z_new) * (z_new - z)).sum(dim=1) > 0
            t = torch.where(uphill, torch.ones_like(t), t)
            t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
            y_next = z_new + ((t - 1.0) / t_next)[:, None] * (z_new - z)
            z = torch.where(going[:, None], z_new, z)
            y = torch.where(going[:, None], y_next, y)
            t = torch.where(going, t_next, t)
            ended = going & (gap <= tol)
            if bool(ended.any()):
                going &= ~ended
                rows = None
                if not bool(going.any()):
                    break
        return z

    def _polish(self, H: torch.Tensor, g: torch.Tensor, theta: torch.Tensor, z: torch.Tensor, slope: torch.Tensor,
                model: Callable[[torch.Tensor], torch.Tensor], going: torch.Tensor) -> torch.Tensor:
        """``z`` moved toward the model's minimiser within its orthant: the zeros held at zero and the
        non-smooth part linear with gradient ``slope`` on the rest, an active-set method. Each pass
        solves the quadratic on the free coordinates and goes toward that point as far as no weight
        changes sign (the first to reach zero is then held there, and the next pass solves again); it
        ends where the whole step fits. This also settles directions the data leave flat (one-hot
        groups beside the intercept), where only the non-smooth part decides and proximal gradient
        steps crawl. A pass is kept only where it lowers the model; where the first does not, the
        steps 1, 1/2, 1/4, ... toward the first target with crossing weights set to zero are tried."""
        pc = self._shape[1] * self._shape[2]
        free = z != 0
        free[:, pc:] = True  # the intercept is never penalized
        best, best_value = z, model(z)
        at_z = best_value
        searching, moved = going.clone(), torch.zeros_like(going)
        first: torch.Tensor | None = None
        for _ in range(ACTIVE_SET_PASSES):
            rows = searching.nonzero().squeeze(1)  # solve only for the trials still searching
            target = best.clone()
            target[rows] = self._support_minimiser(H[rows], g[rows], theta[rows], slope[rows], free[rows])
            if first is None:
                first = target
            d = target - best  # the first weight to reach zero on the way stops the pass there
            crossing = free & (best * d < 0) & (d.abs() >= best.abs())
            crossing[:, pc:] = False
            ratios = torch.where(crossing, -best / torch.where(crossing, d, torch.ones_like(d)),
                                 torch.full_like(d, 2.0))
            alpha = ratios.amin(dim=1).clamp(max=1.0)
            blocked = crossing & (ratios <= alpha[:, None])
            cand = torch.where(blocked, torch.zeros_like(best), best + alpha[:, None] * d)
            value = model(cand)
            take = searching & (value < best_value)
            best = torch.where(take[:, None], cand, best)
            best_value = torch.where(take, value, best_value)
            free = torch.where(take[:, None], free & ~blocked, free)
            moved |= take
            searching &= take & (alpha < 1.0)
            if not bool(searching.any()):
                break
        stuck = going & ~moved
        if first is None or not bool(stuck.any()):
            return best
        return torch.where(stuck[:, None], self._halvings(z, at_z, first, model, stuck), best)

    def _support_minimiser(self, H: torch.Tensor, g: torch.Tensor, theta: torch.Tensor, slope: torch.Tensor,
                           free: torch.Tensor) -> torch.Tensor:
        """The minimiser of the model with the coordinates outside ``free`` held at zero and the
        non-smooth part replaced by its slope on the free ones (damped where singular)."""
        dz = torch.where(free, torch.zeros_like(theta), -theta)  # the held coordinates go to zero
        Hm = H * (free[:, :, None] & free[:, None, :]) + torch.diag_embed((~free).to(H.dtype))
        rhs = torch.where(free, -(g + slope * free + torch.bmm(H, dz.unsqueeze(2)).squeeze(2)), dz)
        return torch.where(free, theta + _solve_system(Hm, rhs), torch.zeros_like(theta))  # held: exactly zero

    def _halvings(self, z: torch.Tensor, at_z: torch.Tensor, target: torch.Tensor,
                  model: Callable[[torch.Tensor], torch.Tensor], going: torch.Tensor) -> torch.Tensor:
        """The longest of the steps 1, 1/2, 1/4, ... from ``z`` (where the model is ``at_z``) toward
        ``target`` that lowers the model, with coordinates whose sign would flip set to zero; ``z``
        where none does."""
        pc = self._shape[1] * self._shape[2]
        best, best_value = z, at_z
        searching = going.clone()
        for halving in range(POLISH_HALVINGS):
            alpha = 0.5 ** halving
            cand = z + alpha * (target - z)
            flipped = (z != 0) & (torch.sign(cand) != torch.sign(z))
            flipped[:, pc:] = False
            cand = torch.where(flipped, torch.zeros_like(cand), cand)
            value = model(cand)
            take = searching & (value < best_value)
            best = torch.where(take[:, None], cand, best)
            best_value = torch.where(take, value, best_value)
            searching &= ~take
            if not bool(searching.any()):
                break
        return best

    def _h_at(self, theta: torch.Tensor, closure: Any) -> torch.Tensor:
        """The non-smooth part at ``theta`` (moves the parameters there and back)."""
        if self._prox is None:
            return torch.zeros(theta.shape[0], dtype=torch.float64, device=self._dev)
        saved = self._theta()
        every = torch.ones(theta.shape[0], dtype=torch.bool, device=self._dev)
        self._put(theta, every)
        h = self._nonsmooth(closure)
        self._put(saved, every)
        return h

    def _line_search(self, closure: Any, theta: torch.Tensor, g: torch.Tensor, d: torch.Tensor, f: torch.Tensor,
                     h0: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Backtrack along ``d`` per trial and leave each active trial at its accepted point; returns
        the trials for which no step decreased the objective (they stay where they were)."""
        k = theta.shape[0]
        F0 = f + h0
        decrease = (g * d).sum(dim=1) + self._h_at(theta + d, closure) - h0
        t = torch.ones(k, dtype=torch.float64, device=self._dev)
        # A predicted decrease below the objective's rounding: the trial is at its precision floor.
        floor = 10.0 * self._eps * F0.abs()
        searching = active & (decrease < -floor)
        accepted = torch.zeros_like(active)
        for _ in range(MAX_HALVINGS):
            self._put(theta + t[:, None] * d, searching)
            F = self._value(closure)
            # strictly lower: once ARMIJO t decrease is below F0's rounding, the bound rounds to F0
            # and would accept a step that changes nothing (float32 trials side by side then spent
            # every epoch's 20 iterations there until the patience rule ended them, 50-80x slower)
            ok = searching & torch.isfinite(F) & (F <= F0 + ARMIJO * t * decrease) & (F < F0)
            accepted |= ok
            searching &= ~ok
            t = torch.where(searching, t * 0.5, t)
            searching &= t * decrease.abs() > floor  # a shorter step's gain would be below rounding
            if not bool(searching.any()):
                break
        stalled = active & ~accepted
        self._put(theta, stalled)
        return stalled

def _solve_system(A: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``A^-1 rhs`` per trial for symmetric positive semi-definite ``A`` (damped where singular)."""
    every = torch.ones(A.shape[0], dtype=torch.bool, device=A.device)
    return _solve(A, -rhs, every)


def _solve(H: torch.Tensor, g: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """``-(H + mu I)^-1 g`` per active trial by Cholesky, with the smallest damping ``mu`` that makes
    the factorisation succeed (a singular Hessian: no penalty on separable data, the intercepts of a
    multinomial model)."""
    k, P = g.shape
    eye = torch.eye(P, dtype=torch.float64, device=g.device)
    scale = H.diagonal(dim1=1, dim2=2).abs().amax(dim=1).clamp(min=1e-30)
    mu = 1e-10 * scale
    d = torch.zeros_like(g)
    todo = active.clone()
    for _ in range(12):
        L, info = torch.linalg.cholesky_ex(H + mu[:, None, None] * eye)
        ok = todo & (info == 0)
        if bool(ok.any()):
            sol = torch.cholesky_solve(-g.unsqueeze(2), L).squeeze(2)
            d = torch.where(ok[:, None], sol, d)
        todo &= ~ok
        if not bool(todo.any()):
            break
        mu = torch.where(todo, mu * 100.0, mu)
    return d
