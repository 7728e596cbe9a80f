"""Contract checks for trials side by side (``supports_batch = True``), run by :mod:`tuner.testing`.

A plugin that declares ``supports_batch`` promises the trial-axis convention of
:mod:`tuner._plugin_api`: K trials trained in one tensor program give what each trial gives
alone. These checks hold it to that promise through the real trainer
(:func:`tuner.train.fit_many`), pairing the plugin with built-in batched partners:

``batch_values`` (penalty)
    with weights ``(K, p, c)`` and ``(K, 1, 1)`` hyperparameters, ``smooth_value`` and
    ``nonsmooth_value`` return one value per trial (shape ``(K,)``) equal to each trial's own
    value, autograd gives each trial its own gradient, and ``prox`` (with a ``(K, 1, 1)`` step,
    a number, or per-weight steps for an ``elementwise_prox``) equals each trial's own prox;
``batch_fit`` (penalty and optimizer)
    K = 3 trials with different hyperparameters trained side by side equal each trial
    trained alone with the single-trial shapes (the weights within a tolerance, the same
    exact zeros), in float64 and float32, on dense (binary) and sparse (three-class) data;
    the trial at the defaults must train. "Alone" is the plugin with ``supports_batch`` off,
    so its side-by-side code is held to its one-trial code, not to itself with K = 1;
``batch_divergence`` (penalty and optimizer)
    a trial whose learning rate is huge leaves the other trials exactly as they are alone.

A plugin that does not declare ``supports_batch`` skips them: its trials run one at a time
(``fit_many`` refuses K > 1 for it).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from tuner._plugin_api import Optimizer, Penalty, compatibility_reason
from tuner._space import Categorical, Float, Int
from tuner.testing._base import Check, Fail, Skip, Subject, call, defaults, fmt
from tuner.train import FitResult, TrainConfig, fit_many, stack_params

__all__ = ["BATCH_PENALTY_CHECKS", "BATCH_OPTIMIZER_CHECKS", "trial_settings", "K_TRIALS"]

K_TRIALS = 3
HUGE_LR = 1e6
"""The learning rate of the trial that must diverge without disturbing its neighbours."""
TOLERANCE = {torch.float64: 1e-6, torch.float32: 2e-3}
"""How far (relative to the largest weight, at least 1) a trial side by side may be from the
same trial alone: float64 differs by rounding only; float32 by rounding carried over steps."""
FULL_BATCH_EPOCHS = 60
FULL_BATCH_TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-2}
"""A full-batch solver is compared where it stops (its own optimality test, or the stall of
its objective at a tolerance of 1e-12), not after a few epochs: its side-by-side code may take
other inner steps (a vectorised line search) to the same optimum. FISTA on the sparse
three-class problem, l1 at 1e-4: 0.027 apart after 3 epochs, 6e-8 where both stop. float64 is
the strict test; in float32 a solver's end point is fixed only as far as the objective's rounding
fixes it: along a flat direction (the three-class problem's weights shifted alike in every class,
held only by a weak L2 part) L-BFGS with an L1 part (OWL-QN) stopped 0.017 apart side by side and
alone, both within 2e-6 of the float64 optimum's objective."""
VALUE_RTOL = {torch.float64: 1e-9, torch.float32: 1e-5}
"""How far one trial's penalty value or prox side by side may be from its value alone (the same
arithmetic, perhaps summed in another order)."""


# ------------------------------------------------------------------------------------------
# What the checks train.


def trial_settings(space: Mapping[str, Any], k: int = K_TRIALS) -> list[dict[str, Any]]:
    """``k`` different hyperparameter settings inside the search space: the defaults, then each
    number moved a quarter of the way (on its scale) toward its low and high bounds in turn;
    numeric choices cycle; string choices stay at their default (side by side, a string must be
    the same for every trial)."""
    out = []
    for i in range(k):
        toward = 0.0 if i == 0 else (-1) ** i * 0.25 * ((i + 1) // 2)
        out.append({name: _moved(hp, toward, i) for name, hp in space.items()})
    return out


def _moved(hp: Any, toward: float, i: int) -> Any:
    if isinstance(hp, Categorical):
        numeric = all(isinstance(c, (bool, int, float)) for c in hp.choices)
        return hp.choices[(list(hp.choices).index(hp.default) + i) % len(hp.choices)] if numeric else hp.default
    if not isinstance(hp, (Float, Int)) or toward == 0.0:
        return hp.default
    end = hp.high if toward > 0 else hp.low
    frac = min(abs(toward), 1.0)
    if getattr(hp, "log", False) and hp.default > 0:
        value = math.exp(math.log(hp.default) + frac * (math.log(end) - math.log(hp.default)))
    else:
        value = hp.default + frac * (end - hp.default)
    return int(round(value)) if isinstance(hp, Int) else float(value)


class _Data:
    """Small problems: dense binary and sparse three-class, standardised-ish features."""

    def __init__(self, seed: int, sparse: bool) -> None:
        import scipy.sparse as sp

        rng = np.random.default_rng(seed * 7907 + (17 if sparse else 5))
        n, p = 120, 8
        X = rng.standard_normal((n, p))
        self.n_classes = 3 if sparse else 2
        logits = X @ rng.standard_normal((p, self.n_classes)) * 1.5
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        self.y = np.array([rng.choice(self.n_classes, p=row) for row in probs])
        if sparse:
            X = sp.csr_matrix(np.where(rng.random((n, p)) < 0.5, X, 0.0))
        self.X = X
        self.label = "sparse three-class" if sparse else "dense binary"


def _config(optimizer: Optimizer, dtype: torch.dtype, seed: int) -> TrainConfig:
    name: Literal["float32", "float64"] = "float64" if dtype == torch.float64 else "float32"
    if optimizer.full_batch:
        return TrainConfig(epochs=FULL_BATCH_EPOCHS, tol=1e-12, patience=2, dtype=name, device="cpu", seed=seed)
    return TrainConfig(epochs=4, batch_size=32, patience=2, dtype=name, device="cpu", seed=seed)


def _train(data: _Data, pens: Sequence[Penalty], pps: Sequence[Mapping[str, Any]], opt: Optimizer,
           ops: Sequence[Mapping[str, Any]], config: Any, where: str) -> list[Any]:
    """Side by side when ``len(pps) > 1``; one result (or the exception that stopped it) per trial."""
    with torch.random.fork_rng(devices=[]):  # fit_many seeds torch's global generator: keep the caller's
        return call(fit_many, f"fit_many {where}", data.X, data.y, data.n_classes, list(pens), list(pps), opt,
                     list(ops), config)


def _one_at_a_time(plugin: Any) -> Any:
    """A copy of ``plugin`` with ``supports_batch`` off: ``fit_many`` trains it with the
    single-trial shapes (2-D weights, plain-number hyperparameters), as a study does when its
    trials run one by one. With ``supports_batch`` on, K = 1 would take the side-by-side path and
    compare that code with itself."""
    clone = copy.copy(plugin)
    try:
        clone.supports_batch = False
    except AttributeError:  # a read-only property: a subclass that says False
        cls = type(plugin)
        clone.__class__ = type(cls.__name__, (cls,), {"supports_batch": False})
    return clone


def _alone(data: _Data, pen: Penalty, pp: Mapping[str, Any], opt: Optimizer, op: Mapping[str, Any], config: Any,
           k: int, where: str) -> Any:
    """Trial ``k`` trained by itself with the single-trial shapes; the trial at the defaults (k = 0)
    must train, or a path where every trial fails would compare equal to itself."""
    alone = _train(data, [_one_at_a_time(pen)], [pp], _one_at_a_time(opt), [op], config,
                   f"for trial {k} alone {where}")[0]
    if k == 0 and isinstance(alone, BaseException):
        raise Fail(f"trial 0 (the defaults: {fmt({**pp, **op})}) did not train alone {where}: "
                   f"{_outcome(alone)}")
    return alone


def _outcome(result: Any) -> str:
    """How a trial ended, in words."""
    return f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else "a fitted model"


FLAT_OBJECTIVE_RTOL = 1e-13
"""How close (relative) the float64 objectives of a full-batch trial side by side and alone must be
for their end points to count as one optimum whatever their weights: a non-convex penalty flat in
places (MCP beyond ``gamma * strength``) with a three-class softmax (unchanged by one shift of
every class) has many optimal weights, and FISTA stopped at two of them 0.003 apart, their
objectives equal to 1e-16. Rounding-level only: near an optimum the objective moves with the
square of a step, so trials pulled 5e-5 toward each other's weights were 1e-9 apart."""


def _same_optimum(together: FitResult, alone: FitResult, dtype: torch.dtype) -> bool:
    """Whether two float64 full-batch fits that stopped on their own (not at the epoch bound)
    reached objectives equal up to rounding (:data:`FLAT_OBJECTIVE_RTOL`): their weights then lie
    on one flat set of optima. (float32's weight tolerance already allows for its rounding.)"""
    if dtype != torch.float64 or "max_epochs" in (together.stop_reason, alone.stop_reason):
        return False
    a, b = float(together.objective), float(alone.objective)
    return math.isfinite(a) and abs(a - b) <= FLAT_OBJECTIVE_RTOL * max(abs(b), 1e-12)


def _compare(together: Any, alone: Any, k: int, has_prox: bool, dtype: torch.dtype, where: str,
             full_batch: bool = False) -> None:
    """Trial ``k`` side by side must equal it alone: same outcome, weights within the tolerance,
    and (for a prox penalty) the same exact zeros."""
    if isinstance(alone, BaseException) or isinstance(together, BaseException):
        if type(alone) is not type(together):
            raise Fail(f"trial {k} {where} ended differently side by side ({_outcome(together)}) and alone "
                        f"({_outcome(alone)})")
        return
    if not isinstance(together, FitResult) or not isinstance(alone, FitResult):
        raise Fail(f"fit_many {where} returned {type(together).__name__} for trial {k}, not a FitResult")
    flat = full_batch and _same_optimum(together, alone, dtype)
    tol = (FULL_BATCH_TOLERANCE if full_batch else TOLERANCE)[dtype] * max(1.0, float(np.abs(alone.weight).max(initial=0.0)))
    for label, a, b in (("weights", together.weight, alone.weight), ("intercept", together.intercept, alone.intercept)):
        err = float(np.abs(a - b).max(initial=0.0)) if np.isfinite(a).all() else math.inf
        if not err <= tol and not flat:
            raise Fail(f"trial {k}'s {label} {where} differ by up to {err:.3g} between side by side and alone "
                        f"(tolerance {tol:.3g}): do the trials share a reduction, a step or a state?")
    if has_prox:
        zero_a, zero_b = together.weight == 0, alone.weight == 0
        exact = dtype == torch.float64
        odd = (zero_a != zero_b) if exact else ((zero_a & (np.abs(alone.weight) > tol)) |
                                                 (zero_b & (np.abs(together.weight) > tol)))
        if odd.any():
            raise Fail(f"trial {k} {where} has {int(zero_a.sum())} exact zeros side by side but {int(zero_b.sum())} "
                        f"alone ({int(odd.sum())} weights differ in being zero)")


def _side_by_side_equals_alone(pens: Sequence[Penalty], pps: Sequence[Mapping[str, Any]], opt: Optimizer,
                               ops: Sequence[Mapping[str, Any]], seed: int, where: str) -> int:
    """Train the trials together and one by one in every dtype and layout; return the fits compared."""
    n = 0
    for sparse in (False, True):
        data = _Data(seed, sparse)
        for dtype_name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
            n += _equal_in_one_layout(pens, pps, opt, ops, data, dtype, _config(opt, dtype, seed),
                                      f"{where}, {data.label} data, {dtype_name}")
    return n


def _equal_in_one_layout(pens: Sequence[Penalty], pps: Sequence[Mapping[str, Any]], opt: Optimizer,
                         ops: Sequence[Mapping[str, Any]], data: _Data, dtype: torch.dtype, config: TrainConfig,
                         here: str) -> int:
    """Train the trials together and one by one on ``data`` with ``config``; return the fits compared."""
    together = _train(data, pens, pps, opt, ops, config, f"side by side {here}")
    if not isinstance(together, list) or len(together) != len(pps):
        raise Fail(f"fit_many {here} returned {together!r}, not one result per trial")
    has_prox = any(p.has_prox for p in pens)
    for k in range(len(pps)):
        alone = _alone(data, pens[k], pps[k], opt, ops[k], config, k, here)
        _compare(together[k], alone, k, has_prox, dtype, here, opt.full_batch)
    return len(pps)


def _isolated(pens: Sequence[Penalty], pps: Sequence[Mapping[str, Any]], opt: Optimizer,
              ops: Sequence[Mapping[str, Any]], seed: int, where: str) -> str:
    """Trial 1 has a huge learning rate; trials 0 and 2 must be what they are alone."""
    from tuner.errors import TrainingDivergedError

    data = _Data(seed, sparse=False)
    outcome = "trained"
    for dtype_name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        config = _config(opt, dtype, seed)
        here = f"{where}, {data.label} data, {dtype_name}"
        together = _train(data, pens, pps, opt, ops, config, f"side by side {here}")
        if isinstance(together[1], TrainingDivergedError):
            outcome = "diverged"
        for k in (0, 2):
            alone = _alone(data, pens[k], pps[k], opt, ops[k], config, k, here)
            _compare(together[k], alone, k, any(p.has_prox for p in pens), dtype, f"next to a trial with lr "
                     f"{HUGE_LR:g} {here}", opt.full_batch)
    return f"a trial with lr {HUGE_LR:g} {outcome}; its neighbours equal their runs alone (float64, float32)"


# ------------------------------------------------------------------------------------------
# Partners and declarations.


def _needs_batch(s: Subject) -> None:
    flag = getattr(s.plugin, "supports_batch", False)
    if not isinstance(flag, bool):
        raise Fail(f"supports_batch must be a bool; got {flag!r}")
    if not flag:
        raise Skip("supports_batch is False: its trials run one at a time (fit_many refuses K > 1 for it)")


def _builtin(kind: str, name: str) -> Any:
    from tuner._registry import optimizers, penalties

    registry = penalties if kind == "penalty" else optimizers
    try:
        return registry.get(name)
    except Exception as exc:  # noqa: BLE001 - a broken install: unchecked is not passed
        raise Fail(f"the built-in {kind} '{name}' this check trains with is not available ({exc}); "
                   "reinstall logreg-tuner") from None


def _partner_optimizers(pen: Penalty) -> list[Optimizer]:
    """Built-in batched optimizers that exercise each way a penalty is used: SGD (after-step prox,
    one step per trial), Adam (per-weight steps, for an elementwise prox), and a full-batch
    solver (FISTA's internal prox, or L-BFGS for a smooth penalty)."""
    names = ["sgd"] + (["adam"] if pen.has_prox and pen.elementwise_prox else [])
    names.append("fista" if pen.has_prox else "lbfgs")
    chosen = [_builtin("optimizer", n) for n in names]
    return [o for o in chosen if o.supports_batch and compatibility_reason(pen, o) is None]


def _partner_penalties(opt: Optimizer) -> list[tuple[Penalty, list[dict[str, Any]]]]:
    """Built-in penalties with three strengths: L2 always; elastic net (a prox) when the
    optimizer can minimise a non-smooth part."""
    out = [(_builtin("penalty", "l2"), [{"strength": s} for s in (1e-3, 1e-2, 1e-4)])]
    if opt.prox_mode != "unsupported":
        out.append((_builtin("penalty", "elasticnet"),
                    [{"strength": s, "l1_ratio": r} for s, r in ((2e-2, 0.5), (5e-2, 0.9), (1e-3, 0.2))]))
    return [(p, pps) for p, pps in out if p.supports_batch and compatibility_reason(p, opt) is None]




# ------------------------------------------------------------------------------------------
# Penalty checks.


def _random_weights(s: Subject, dtype: torch.dtype) -> torch.Tensor:
    """``(K, p, c)``: one random trial, one large, one zero."""
    g = s.generator(5)
    W = torch.randn(K_TRIALS, 5, 3, generator=g, dtype=torch.float64)
    W[1] *= 1e3
    W[2] = 0.0
    return W.to(dtype)


def _stacked(settings: Sequence[Mapping[str, Any]], dtype: torch.dtype, name: str) -> dict[str, Any]:
    try:
        return stack_params(settings, dtype, torch.device("cpu"), f"penalty '{name}' hyperparameter")
    except Exception as exc:  # noqa: BLE001
        raise Fail(f"its hyperparameters cannot be stacked per trial: {exc}") from None


def _per_trial_value(pen: Penalty, method: str, W: torch.Tensor, params: Mapping[str, Any],
                     settings: Sequence[Mapping[str, Any]], where: str) -> torch.Tensor:
    value = call(getattr(pen, method), f"{method} {where}", W, params)
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != (K_TRIALS,):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise Fail(f"{method} {where} returned {shape}, not one value per trial (shape ({K_TRIALS},)): reduce over "
                    "the last two dimensions only")
    if value.dtype != W.dtype:
        raise Fail(f"{method} {where} returned dtype {value.dtype} for {W.dtype} weights")
    for k, single in enumerate(settings):
        alone = float(call(getattr(pen, method), f"{method} for trial {k} alone {where}", W[k].detach(), single))
        got = float(value[k].detach())
        if not math.isclose(got, alone, rel_tol=VALUE_RTOL[W.dtype], abs_tol=1e-12):
            raise Fail(f"{method} {where} gives trial {k} the value {got:.10g} side by side but {alone:.10g} alone "
                        f"at {fmt(single)}: does it reduce over the trial axis?")
    return value


def _check_prox_per_trial(pen: Penalty, W: torch.Tensor, params: Mapping[str, Any],
                          settings: Sequence[Mapping[str, Any]], where: str) -> None:
    steps = torch.tensor([0.3, 1.0, 0.01], dtype=W.dtype).view(-1, 1, 1)
    cases: list[tuple[str, Any, Any]] = [("a (K, 1, 1) step", steps, lambda k: float(steps[k])),
                                          ("the step 0.5 for all", 0.5, lambda k: 0.5)]
    if pen.elementwise_prox:
        per_weight = torch.rand(W.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(W.dtype)
        cases.append(("per-weight steps", per_weight, lambda k: per_weight[k]))
    for label, step, step_of in cases:
        out = call(pen.prox, f"prox with {label} {where}", W.clone(), step, params)
        if not isinstance(out, torch.Tensor) or out.shape != W.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise Fail(f"prox with {label} {where} returned {shape} for weights of shape {tuple(W.shape)}")
        for k, single in enumerate(settings):
            alone = call(pen.prox, f"prox for trial {k} alone {where}", W[k].clone(), step_of(k), single)
            if not torch.allclose(out[k], torch.as_tensor(alone, dtype=W.dtype), rtol=VALUE_RTOL[W.dtype], atol=1e-12):
                err = float((out[k] - alone).abs().max())
                raise Fail(f"prox with {label} {where} moves trial {k} by up to {err:.3g} away from its prox alone "
                            f"at {fmt(single)}: each trial needs its own step and hyperparameters")


def check_batch_values(s: Subject) -> str:
    """Per-trial values, gradients and proxes with the trial axis (module docstring)."""
    _needs_batch(s)
    pen: Penalty = s.plugin
    settings = trial_settings(pen.search_space)
    for dtype in (torch.float64, torch.float32):
        params = _stacked(settings, dtype, pen.name)
        where = f"for {K_TRIALS} trials at {[fmt(p) for p in settings]} ({dtype})"
        W = _random_weights(s, dtype).requires_grad_(True)
        value = _per_trial_value(pen, "smooth_value", W, params, settings, where)
        _per_trial_value(pen, "nonsmooth_value", W.detach(), params, settings, where)
        if dtype == torch.float64 and value.requires_grad:
            (grad,) = torch.autograd.grad(value.sum(), W, allow_unused=True)
            grad = torch.zeros_like(W) if grad is None else grad
            for k, single in enumerate(settings):
                wk = W[k].detach().clone().requires_grad_(True)
                alone = call(pen.smooth_value, f"smooth_value for trial {k} alone {where}", wk, single)
                (gk,) = torch.autograd.grad(alone, wk, allow_unused=True) if alone.requires_grad else (None,)
                gk = torch.zeros_like(wk) if gk is None else gk
                if not torch.allclose(grad[k], gk, rtol=1e-8, atol=1e-12):
                    raise Fail(f"the gradient of the summed smooth_value {where} differs for trial {k} from its "
                                "gradient alone: one trial's value must not depend on another's weights")
        if pen.has_prox:
            _check_prox_per_trial(pen, W.detach(), params, settings, where)
    return (f"one value per trial, each trial's own gradient{' and prox' if pen.has_prox else ''} "
            f"at {K_TRIALS} settings, float64 and float32")


def check_batch_penalty_fit(s: Subject) -> str:
    """K trials of this penalty side by side under built-in optimizers equal each alone."""
    _needs_batch(s)
    pen: Penalty = s.plugin
    partners = _partner_optimizers(pen)
    if not partners:
        raise Skip("no built-in batched optimizer accepts this penalty")
    settings = trial_settings(pen.search_space)
    n = 0
    for opt in partners:
        ops = [defaults(opt)] * K_TRIALS
        n += _side_by_side_equals_alone([pen] * K_TRIALS, settings, opt, ops, s.seed,
                                        f"with optimizer '{opt.name}'")
    return f"{n} trials side by side equal to alone, with {', '.join(o.name for o in partners)}"


def check_batch_penalty_divergence(s: Subject) -> str:
    """A diverging SGD trial (huge lr) next to two trials of this penalty leaves them unchanged."""
    _needs_batch(s)
    pen: Penalty = s.plugin
    opt = _builtin("optimizer", "sgd")
    if not opt.supports_batch or compatibility_reason(pen, opt) is not None:
        raise Skip("the built-in optimizer 'sgd' cannot train this penalty side by side")
    ops = [defaults(opt) for _ in range(K_TRIALS)]
    ops[1] = {**ops[1], "lr": HUGE_LR}
    return _isolated([pen] * K_TRIALS, trial_settings(pen.search_space), opt, ops, s.seed, "with optimizer 'sgd'")


# ------------------------------------------------------------------------------------------
# Optimizer checks.


def check_batch_optimizer_fit(s: Subject) -> str:
    """K trials with different hyperparameters of this optimizer under built-in penalties equal each alone."""
    _needs_batch(s)
    opt: Optimizer = s.plugin
    partners = _partner_penalties(opt)
    if not partners:
        raise Skip("no built-in batched penalty works with this optimizer")
    settings = trial_settings(opt.search_space)
    n = 0
    for pen, pps in partners:
        n += _side_by_side_equals_alone([pen] * K_TRIALS, pps, opt, settings, s.seed, f"with penalty '{pen.name}'")
    return f"{n} trials side by side equal to alone, with {', '.join(p.name for p, _ in partners)}"


def check_batch_step(s: Subject) -> str:
    """The quick form of ``batch_fit``, which a study runs: K trials with different
    hyperparameters of this optimizer under L2, one epoch on dense float64 data, equal each alone."""
    _needs_batch(s)
    opt: Optimizer = s.plugin
    partners = [(pen, pps) for pen, pps in _partner_penalties(opt) if pen.name == "l2"]
    if not partners:
        raise Skip("the built-in 'l2' penalty does not work with this optimizer side by side")
    pen, pps = partners[0]
    data = _Data(s.seed, sparse=False)
    config = dataclasses.replace(_config(opt, torch.float64, s.seed), epochs=1, tol=1e-3)
    n = _equal_in_one_layout([pen] * K_TRIALS, pps, opt, trial_settings(opt.search_space), data, torch.float64,
                             config, f"with penalty 'l2', {data.label} data, float64, {config.epochs} epoch(s)")
    return f"{n} trials side by side equal to alone after {config.epochs} epoch(s)"


def check_batch_optimizer_divergence(s: Subject) -> str:
    """A trial with a huge learning rate leaves its two neighbours unchanged."""
    _needs_batch(s)
    opt: Optimizer = s.plugin
    if "lr" not in opt.search_space:
        raise Skip("no 'lr' hyperparameter to make a trial diverge")
    partners = _partner_penalties(opt)
    if not partners:
        raise Skip("no built-in batched penalty works with this optimizer")
    pen, pps = partners[-1]
    settings = [dict(p) for p in trial_settings(opt.search_space)]
    settings[1]["lr"] = HUGE_LR
    return _isolated([pen] * K_TRIALS, pps, opt, settings, s.seed, f"with penalty '{pen.name}'")


BATCH_PENALTY_CHECKS: list[Check] = [
    ("batch_values", check_batch_values, ("search_space", "value_finite")),
    ("batch_fit", check_batch_penalty_fit, ("search_space", "value_finite")),
    ("batch_divergence", check_batch_penalty_divergence, ("search_space", "value_finite")),
]
"""``(name, check, prerequisites)`` rows that :mod:`tuner.testing` appends to its penalty checks."""
BATCH_OPTIMIZER_CHECKS: list[Check] = [
    ("batch_step", check_batch_step, ("build",)),
    ("batch_fit", check_batch_optimizer_fit, ("build",)),
    ("batch_divergence", check_batch_optimizer_divergence, ("build",)),
]
"""... and to its optimizer checks."""
