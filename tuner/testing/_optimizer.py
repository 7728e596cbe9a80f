"""The optimizer checks: a valid prox mode, a build the trainer can drive, a lower loss, and a
proximal step that matches the step the optimizer takes (per coordinate for Adam-like methods)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import torch

from tuner._plugin_api import PROX_MODES, Optimizer
from tuner.testing._base import Check, Fail, Skip, Subject, call, defaults, fmt, unused_hyperparameters
from tuner.train._penalties import soft_threshold

__all__ = ["OPTIMIZER_ONLY_CHECKS", "QUICK_OPTIMIZER_CHECKS"]


def check_prox_mode(s: Subject) -> str:
    opt: Optimizer = s.plugin
    if opt.prox_mode not in PROX_MODES:
        raise Fail(f"prox_mode must be one of {', '.join(map(repr, PROX_MODES))}; got {opt.prox_mode!r}")
    if not isinstance(opt.full_batch, bool):
        raise Fail(f"full_batch must be a bool; got {opt.full_batch!r}")
    if getattr(opt, "uses_hessian", False) and not opt.full_batch:
        raise Fail("uses_hessian is for full-batch optimizers: the trainer offers closure.hessian() only to them")
    if getattr(opt, "hessian_products", False) and not opt.full_batch:
        raise Fail("hessian_products is for full-batch optimizers: the trainer offers closure.hessian_product() only "
                   "to them")
    if getattr(opt, "quasi_newton", False) and not opt.full_batch:
        raise Fail("quasi_newton is for full-batch optimizers: a default study prefers them as exact solvers")
    if opt.full_batch and opt.prox_mode == "after_step":
        # The trainer applies the after-step prox in its mini-batch loop only: a full-batch
        # optimizer would silently leave the non-smooth part of a penalty unminimised.
        raise Fail("a full_batch optimizer must handle non-smooth penalties itself (prox_mode 'internal') or "
                    "refuse them ('unsupported'); the trainer applies 'after_step' proxes in mini-batch training only")
    return f"prox_mode {opt.prox_mode!r}, {'full-batch' if opt.full_batch else 'mini-batch'}"


class _Toy:
    """A small binary logistic problem, float32 like the trainer's default.

    ``scale`` multiplies the features: the gradient at zero weights scales with it, while the
    best intercept (the log-odds of the labels) does not."""

    def __init__(self, seed: int, n: int = 96, p: int = 5, dtype: torch.dtype = torch.float32,
                 scale: float = 1.0) -> None:
        g = torch.Generator().manual_seed(seed * 7919 + 11)
        X = torch.randn(n, p, generator=g)
        w = torch.randn(p, 1, generator=g) * 1.5
        probs = torch.sigmoid(X @ w + 0.3)[:, 0]
        self.y = (torch.rand(n, generator=g) < probs).to(dtype)
        self.X = (X * scale).to(dtype)
        self.n, self.p, self.dtype = n, p, dtype
        self.l2 = 1e-2

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(self.p, 1, dtype=self.dtype, requires_grad=True),
                torch.zeros(1, dtype=self.dtype, requires_grad=True))

    def smooth(self, W: torch.Tensor, b: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        X, y = (self.X, self.y) if rows is None else (self.X[rows], self.y[rows])
        logits = (X @ W + b)[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        return loss + self.l2 * 0.5 * W.pow(2).sum()

    def gradient_at_zero(self) -> float:
        """The largest ``|d smooth / d W|`` at ``W = 0`` with the intercept anywhere between 0 and
        its best value: an L1 strength above it makes zero weights the optimum."""
        W, _ = self.params()
        largest = 0.0
        mean = float(self.y.double().mean().clamp(1e-3, 1 - 1e-3))
        for intercept in (0.0, math.log(mean / (1 - mean))):
            (grad,) = torch.autograd.grad(self.smooth(W, torch.full((1,), intercept, dtype=self.dtype)), W)
            largest = max(largest, float(grad.abs().max()))
        return largest


def _build(s: Subject, toy: _Toy, params: Mapping[str, Any], where: str, prox: Any = None
           ) -> tuple[torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    """``build`` with the two parameter groups the trainer passes; fails unless it owns both."""
    W, b = toy.params()
    built = call(s.plugin.build, f"build {where}",
                 [{"params": [W], "penalized": True}, {"params": [b], "penalized": False}], dict(params), prox)
    if not isinstance(built, torch.optim.Optimizer):
        raise Fail(f"build {where} returned {type(built).__name__}, not a torch.optim.Optimizer")
    owned = [p for group in built.param_groups for p in group["params"]]
    for tensor, label in ((W, "weights"), (b, "intercept")):
        if not any(p is tensor for p in owned):
            raise Fail(f"the optimizer built {where} does not optimise the {label} it was given")
    return built, W, b


def _prox_step(s: Subject, built: torch.optim.Optimizer, W: torch.Tensor, where: str) -> Any:
    """The step the trainer gives an elementwise prox after ``step()``: the optimizer's
    ``coordinate_step_size`` when it has one, else its ``step_size``."""
    opt: Optimizer = s.plugin
    coordinate = call(opt.coordinate_step_size, f"coordinate_step_size {where}", built, W)
    if coordinate is None:
        return call(opt.step_size, f"step_size {where}", built)
    if not isinstance(coordinate, torch.Tensor) or coordinate.shape != W.shape or coordinate.dtype != W.dtype:
        got = (f"{tuple(coordinate.shape)} {coordinate.dtype}" if isinstance(coordinate, torch.Tensor)
               else type(coordinate).__name__)
        raise Fail(f"coordinate_step_size {where} returned {got}, not a tensor shaped like the weights "
                   f"{tuple(W.shape)} {W.dtype} (or None)")
    if not bool(torch.isfinite(coordinate).all()) or bool((coordinate < 0).any()):
        raise Fail(f"coordinate_step_size {where} returned negative or non-finite steps")
    return coordinate


def _run(s: Subject, toy: _Toy, params: Mapping[str, Any], where: str, *, l1: float = 0.0,
         steps: int = 30, full_batch_steps: int = 3, all_rows: bool = False,
         set_lr: float | None = None) -> tuple[float, float, torch.Tensor]:
    """Drive the optimizer as the trainer does (a closure for a full-batch one; an after-step prox
    with the per-coordinate step when it gives one); return the objective before and after, and W.
    ``all_rows`` gives a mini-batch optimizer every row at every step (no sampling noise)."""
    opt: Optimizer = s.plugin

    def prox(weight: torch.Tensor, step: float | torch.Tensor) -> torch.Tensor:
        return soft_threshold(weight, step * l1)

    use_prox = l1 > 0
    built, W, b = _build(s, toy, params, where, prox if use_prox else None)
    if set_lr is not None:  # as the trainer's schedule and plateau drops do, between steps
        for group in built.param_groups:
            group["lr"] = set_lr

    def objective() -> float:
        with torch.no_grad():
            return float(toy.smooth(W, b)) + l1 * float(W.abs().sum())

    before = objective()
    g = s.generator(4)
    for _ in range(full_batch_steps if opt.full_batch else steps):
        if opt.full_batch:
            def closure() -> torch.Tensor:
                built.zero_grad()
                loss = toy.smooth(W, b)
                loss.backward()
                return loss

            _offer_curvature(closure, toy, W, b, l1)
            call(built.step, f"step(closure) {where}", closure)
        else:
            rows = None if all_rows else torch.randperm(toy.n, generator=g)[:32]
            built.zero_grad()
            toy.smooth(W, b, rows).backward()
            call(built.step, f"step() {where}")
            if use_prox and opt.prox_mode == "after_step":
                t = _prox_step(s, built, W, where)
                with torch.no_grad():
                    W.copy_(prox(W, t))
    if not (bool(torch.isfinite(W).all()) and bool(torch.isfinite(b).all())):
        raise Fail(f"the parameters are not finite after stepping {where}")
    return before, objective(), W.detach().clone()


def _offer_curvature(closure: Any, toy: _Toy, W: torch.Tensor, b: torch.Tensor, l1: float) -> None:
    """What the trainer's closure offers besides gradients (:mod:`tuner._plugin_api`, "Curvature"):
    ``value_only()``, ``hessian(trials)`` (one trial: ``(1, P, P)`` float64, weights then intercept),
    ``hessian_product(trials)`` (``V -> H V``, ``(1, P)`` in the weights' dtype), ``nonsmooth()`` and
    ``l1_weights()`` (the toy's penalty is ``l1 ||W||_1``)."""

    def value_only() -> torch.Tensor:
        with torch.no_grad():
            return toy.smooth(W, b)

    def hessian(trials: torch.Tensor | None = None) -> torch.Tensor:
        def flat_objective(theta: torch.Tensor) -> torch.Tensor:
            return toy.smooth(theta[:W.numel()].view_as(W), theta[W.numel():].view_as(b))

        theta = torch.cat([W.detach().reshape(-1), b.detach().reshape(-1)])
        return torch.autograd.functional.hessian(flat_objective, theta).double().unsqueeze(0)

    def hessian_product(trials: torch.Tensor | None = None) -> Any:
        H = hessian(trials)[0]
        return lambda V: (V.double() @ H).to(W.dtype)  # H is symmetric: V H = (H V^T)^T

    def nonsmooth() -> torch.Tensor:
        with torch.no_grad():
            return (l1 * W.abs().sum()).reshape(1)

    def l1_weights() -> torch.Tensor:
        return torch.tensor([l1], dtype=W.dtype)

    closure.value_only, closure.hessian, closure.nonsmooth = value_only, hessian, nonsmooth
    closure.l1_weights, closure.hessian_product = l1_weights, hessian_product


def check_build(s: Subject) -> str:
    opt: Optimizer = s.plugin
    for label, params in s.settings:
        _run(s, _Toy(s.seed), params, f"at {label} {fmt(params)}", steps=1, full_batch_steps=1)
    _run(s, _Toy(s.seed, dtype=torch.float64), s.settings[0][1], "at defaults on float64 parameters", steps=1,
         full_batch_steps=1)
    if opt.prox_mode == "after_step" and not opt.full_batch:
        built, _, _ = _build(s, _Toy(s.seed), s.settings[0][1], "at defaults")
        t = call(opt.step_size, "step_size at defaults", built)
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or t <= 0:
            raise Fail(f"step_size() at defaults must be a positive float (the prox step); got {t!r}")
    return f"builds and takes a finite step at {len(s.settings)} hyperparameter setting(s), float32 and float64"


def check_decreases_loss(s: Subject) -> str:
    opt: Optimizer = s.plugin
    toy = _Toy(s.seed)
    params = s.settings[0][1]
    before, after, _ = _run(s, toy, params, "at defaults on the smooth toy problem")
    if not after < before - 1e-3 * abs(before):
        raise Fail(f"the smooth toy objective went from {before:.6g} to {after:.6g} at the default hyperparameters "
                   f"{fmt(params)}; it should decrease")
    done = f"smooth objective {before:.4g} -> {after:.4g}"
    if opt.prox_mode == "unsupported":
        return done
    before, after, _ = _run(s, toy, params, "at defaults with an L1 penalty", l1=0.02)
    if not after < before - 1e-3 * abs(before):
        raise Fail(f"the L1-penalized toy objective went from {before:.6g} to {after:.6g} at the default "
                   f"hyperparameters {fmt(params)} with prox_mode {opt.prox_mode!r}; it should decrease")
    done += f"; L1 objective {before:.4g} -> {after:.4g}"
    if opt.prox_mode == "internal":
        _, _, W = _run(s, toy, params, "at defaults with a large L1 penalty", l1=10.0)
        if bool((W != 0).any()):
            raise Fail("with an L1 penalty large enough to make every weight zero, the weights are not exactly "
                       "zero: a prox_mode 'internal' optimizer must apply the prox it receives in build()")
        return done + "; exact zeros under a large L1 penalty"
    return done + "; " + _after_step_zeros(s, params)


ZERO_GRADIENT = 0.1
"""The largest gradient at zero weights of the toy problem the exact-zeros check scales to."""


def _after_step_zeros(s: Subject, params: Mapping[str, Any]) -> str:
    """An L1 strength three times the largest gradient at zero (so zero is the optimum) yet below
    1: an optimizer that moves each weight about ``lr`` per step (Adam normalises its gradients)
    stays at zero only when the prox shrinks by its own per-coordinate step."""
    toy = _Toy(s.seed)
    toy = _Toy(s.seed, scale=ZERO_GRADIENT / toy.gradient_at_zero())
    l1 = 3 * toy.gradient_at_zero()
    _, _, W = _run(s, toy, params, f"at defaults with an L1 penalty of {l1:.3g}", l1=l1, steps=60, all_rows=True)
    if bool((W != 0).any()):
        coordinate = type(s.plugin).coordinate_step_size is not Optimizer.coordinate_step_size
        raise Fail(f"with an L1 strength ({l1:.3g}) three times the largest gradient at zero weights, so that zero "
                   f"weights are the optimum, {int((W != 0).sum())} of {W.numel()} weights are not exactly zero "
                   f"after 60 full-data steps with the trainer's after-step prox: "
                   + ("does coordinate_step_size() return the step each weight takes?" if coordinate else
                      "an optimizer whose steps differ by coordinate (Adam-like) must implement "
                      "coordinate_step_size() (docs/plugins.md)"))
    return "exact zeros where an L1 penalty makes zero the optimum"


CONSTANT_GRADIENT_STEPS = 100
"""How many steps of one constant gradient the ``prox_step`` check takes before it measures a step
at the defaults."""
SETTLING_STEPS = 1000
"""The same at the other hyperparameter settings, whose bounds may settle slowly (momentum 0.99
keeps 0.99^1000 = 4e-5 of its start; 0.99^100 = 37% would read as a wrong step)."""
STEP_RTOL = 0.05


def check_prox_step(s: Subject) -> str:
    """After ``step()`` the trainer applies an ``after_step`` prox with ``step_size()`` (or, for an
    elementwise prox, ``coordinate_step_size()``): that step must be how far a weight moves per
    unit gradient, or the penalty acts with the wrong strength (Adam without per-coordinate steps
    leaves no exact zeros). Measured after many steps of one constant gradient whose size differs
    by coordinate (momentum settles; Adam's step becomes ``lr / |g|``)."""
    opt: Optimizer = s.plugin
    if opt.prox_mode != "after_step" or opt.full_batch:
        raise Skip(f"prox_mode {opt.prox_mode!r}{' (full-batch)' if opt.full_batch else ''}: the trainer applies no "
                   "after-step prox")
    # every setting (a study searches them all: a step right at the default momentum only says
    # nothing of the others), the defaults alone in quick mode
    for (label, params), dtype in itertools.product(s.settings[:1] if s.quick else s.settings,
                                                   (torch.float64, torch.float32)):
        where = f"at {label} {fmt(params)} ({dtype})"
        built, W, b = _build(s, _Toy(s.seed, p=12, dtype=dtype), params, where)
        signs = torch.tensor([1.0, -1.0], dtype=dtype).repeat(6).view(12, 1)
        grad = torch.logspace(-2, 1, 12, dtype=dtype).view(12, 1) * signs
        before = W.detach().clone()
        steps = CONSTANT_GRADIENT_STEPS if label == "defaults" else SETTLING_STEPS
        for _ in range(steps):
            before = W.detach().clone()
            W.grad, b.grad = grad.clone(), torch.full_like(b, 0.1)
            call(built.step, f"step() {where}")
        moved = (before - W.detach()) / grad
        step = _prox_step(s, built, W, where)
        used = torch.as_tensor(step, dtype=dtype).expand_as(W)
        if not bool(torch.isfinite(moved).all()) or not bool(torch.isfinite(used).all()):
            raise Fail(f"the step per unit gradient {where} is not finite")
        err = float(((used - moved).abs() / moved.abs().clamp(min=1e-30)).max())
        if err <= STEP_RTOL:
            continue
        lo, hi = float(moved.min()), float(moved.max())
        if type(opt).coordinate_step_size is Optimizer.coordinate_step_size and hi > lo * (1 + 2 * STEP_RTOL):
            raise Fail(f"its steps differ by coordinate (after {steps} steps of one constant "
                       f"gradient it moves the weights by {lo:.3g} to {hi:.3g} per unit gradient {where}) but it has "
                       "no coordinate_step_size(): the trainer would apply an L1 prox with the one step "
                       f"step_size() = {float(used.mean()):.3g}, so the penalty acts with the wrong strength (Adam-like "
                       "methods then leave no exact zeros); return each weight's step from coordinate_step_size() "
                       "(docs/plugins.md)")
        which = "coordinate_step_size()" if type(opt).coordinate_step_size is not Optimizer.coordinate_step_size \
            else "step_size()"
        raise Fail(f"the proximal step {which} gives ({float(used.min()):.3g} to {float(used.max()):.3g}) is not the "
                   f"step it takes ({lo:.3g} to {hi:.3g} per unit gradient after {steps} steps of one "
                   f"constant gradient {where}, off by up to {err:.0%}): the penalty would act with the wrong strength")
    return ("the after-step prox step equals the step taken per unit gradient"
            + (", per coordinate" if type(opt).coordinate_step_size is not Optimizer.coordinate_step_size else "")
            + f" at {1 if s.quick else len(s.settings)} hyperparameter setting(s) (float64, float32)")


def check_hyperparameters_used(s: Subject) -> str:
    """Each hyperparameter changes the steps taken: three mini-batch steps (one full-batch step)
    on the smooth toy problem from the same start and rows, at each of its bounds or choices
    against the defaults. An optimizer whose ``build`` ignores ``lr`` trains every trial alike."""
    opt: Optimizer = s.plugin
    if not opt.search_space:
        raise Skip("no hyperparameters")
    toy = _Toy(s.seed)

    def weights_after(params: dict[str, Any]) -> torch.Tensor:
        return _run(s, toy, params, f"at {fmt(params)}", steps=3, full_batch_steps=1)[2]

    unused = unused_hyperparameters(opt.search_space, weights_after)
    if unused:
        raise Fail(f"{', '.join(map(repr, unused))} changed nothing: the weights after "
                   f"{'one full-batch step' if opt.full_batch else 'three steps'} are the same at every bound or "
                   "choice as at the defaults; does build() pass every hyperparameter it declares to the optimizer?")
    return f"each of {', '.join(opt.search_space)} changes the steps taken"


def check_follows_lr(s: Subject) -> str:
    """A mini-batch optimizer reads its learning rate from ``param_groups`` at every step: the
    trainer's cosine schedule, plateau drops and divergence drops write it there. Built at the
    default ``lr`` and then set to half of it, three steps must equal three steps of one built at
    half. An optimizer that keeps the ``lr`` it was built with never lowers its rate, and its
    after-step prox (which reads ``param_groups``) no longer matches its steps."""
    opt: Optimizer = s.plugin
    if opt.full_batch:
        raise Skip("a full-batch optimizer: the trainer schedules no learning rate for it")
    if "lr" not in opt.search_space:
        raise Skip("no 'lr' hyperparameter")
    toy = _Toy(s.seed, dtype=torch.float64)
    params = defaults(opt)
    half = float(params["lr"]) / 2
    where = f"at {fmt(params)}"
    _, _, rewritten = _run(s, toy, params, f"{where}, param_groups lr then set to {half:g}", steps=3, set_lr=half)
    _, _, built_half = _run(s, toy, {**params, "lr": half}, f"built at lr={half:g}", steps=3)
    if not torch.allclose(rewritten, built_half, rtol=1e-9, atol=1e-12):
        err = float((rewritten - built_half).abs().max())
        raise Fail(f"built {where} and then given lr {half:g} in param_groups, three steps end up to {err:.3g} away "
                   f"from three steps of an optimizer built at lr={half:g}: step() must read group['lr'] at every "
                   "step (the trainer lowers it there: schedule, plateaus, divergence)")
    return f"steps follow param_groups' lr (set to {half:g} after build)"


OPTIMIZER_ONLY_CHECKS: list[Check] = [
    ("prox_mode", check_prox_mode, ("interface",)),
    ("build", check_build, ("search_space", "prox_mode")),
    ("decreases_loss", check_decreases_loss, ("build",)),
    ("prox_step", check_prox_step, ("build",)),
    ("hyperparameters_used", check_hyperparameters_used, ("build",)),
    ("follows_lr", check_follows_lr, ("build",)),
]
"""The single-trial optimizer checks, after the common ones."""
QUICK_OPTIMIZER_CHECKS = ("interface", "search_space", "prox_mode", "build", "prox_step")
"""What :func:`tuner.testing.failing_plugins` runs (at the defaults only): the paths a study takes
(trials side by side: :data:`tuner.testing.QUICK_SIDE_BY_SIDE`)."""
