"""Contract checks for penalty and optimizer plugins, to call from a plugin's own tests.

scikit-learn's ``check_estimator`` is the model: one call runs every check of the plugin
contract and raises :class:`ContractError` (an ``AssertionError``, so pytest shows it as a
test failure) naming the plugin and the first check it fails::

    from tuner.testing import check_installed, check_plugin

    def test_contract():
        check_plugin(MyPenalty)                      # the class or an instance

    def test_entry_point():
        check_installed("my_penalty", group="penalty")   # what the registry loads

:func:`run_checks` runs the same checks and returns one :class:`CheckResult` per check
(passed, failed or skipped, with the reason) instead of raising; ``tuner plugins check NAME``
prints them. The checks:

``interface``
    a subclass (or instance) of :class:`tuner.Penalty` / :class:`tuner.Optimizer` that
    builds with no arguments, implements the required methods and declares its class
    attributes with the right types;
``name`` / ``description``
    a non-empty identifier-like name (equal to the entry-point name when checked through
    the registry) and a one-line description;
``search_space``
    a valid declarative space (:func:`tuner._space.validate_space`);
``value_finite`` (penalty)
    ``smooth_value`` and ``nonsmooth_value`` are finite scalars in the weight's dtype on
    random, large and zero weights, for hyperparameters at their defaults and at the bounds
    of the search space; a penalty without a prox has a zero non-smooth part;
``gradient`` (penalty)
    autograd's gradient of ``smooth_value`` is finite and agrees with finite differences;
``tensor_hyperparameters`` (penalty)
    hyperparameters given as 0-dim tensors give the same values and prox as Python numbers;
``prox_identity``, ``prox_shrinks``, ``prox_minimises`` (penalty with ``has_prox``)
    the prox returns its input for step 0 (and strength 0), never moves away from zero
    (``||prox(v)|| <= ||v||``), and solves its defining problem: ``prox(v, t)`` minimises
    ``1/(2t) ||x - v||^2 + nonsmooth(x)``, tried against ``v``, ``0`` and random
    perturbations at several scales;
``prox_mode`` (optimizer)
    ``prox_mode`` is ``after_step``, ``internal`` or ``unsupported``; ``full_batch`` a bool;
    a ``full_batch`` optimizer is not ``after_step`` (the trainer applies that prox in
    mini-batch training only);
``build`` (optimizer)
    ``build`` returns a ``torch.optim.Optimizer`` over the two parameter groups the trainer
    passes (weights ``penalized``, intercept not) at every hyperparameter setting, and one
    step there leaves finite parameters; ``step_size`` is a positive number;
``decreases_loss`` (optimizer)
    on a toy logistic problem, the optimizer driven as the trainer drives it (a closure for
    ``full_batch`` optimizers; the prox after each step for ``after_step``; the prox handed
    to ``build`` for ``internal``) lowers the smooth objective and, when it supports one, an
    L1-penalized objective; an ``internal`` optimizer must leave exact zeros where a large
    L1 penalty forces them.
``batch_values`` (penalty), ``batch_fit``, ``batch_divergence`` (both; only for a plugin that
declares ``supports_batch``, skipped otherwise)
    trials side by side (:mod:`tuner.testing._batch`): one value, gradient and prox per trial;
    K = 3 trials trained together by ``fit_many`` with built-in partners equal each trial
    alone (float64 and float32, dense and sparse, the same exact zeros); a trial with a huge
    learning rate leaves its neighbours unchanged.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tuner._plugin_api import Optimizer, Penalty
from tuner._registry import NAME_PATTERN
from tuner._space import Categorical, Float, Int, validate_space
from tuner.errors import PluginError
from tuner.testing._batch import BATCH_OPTIMIZER_CHECKS, BATCH_PENALTY_CHECKS

__all__ = [
    "ContractError",
    "CheckResult",
    "PluginReport",
    "PENALTY_CHECKS",
    "OPTIMIZER_CHECKS",
    "run_checks",
    "check_plugin",
    "check_penalty",
    "check_optimizer",
    "check_installed",
    "run_installed_checks",
    "hyperparameter_settings",
    "NAME_PATTERN",
]

PASS, FAIL, SKIP = "pass", "fail", "skip"

_PROX_MODES = ("after_step", "internal", "unsupported")


class ContractError(AssertionError):
    """A plugin fails a contract check; says which plugin, which check and why."""

    def __init__(self, kind: str, plugin: str, check: str, reason: str, others: Sequence[str] = ()) -> None:
        self.kind, self.plugin, self.check, self.reason = kind, plugin, check, reason
        self.others = list(others)
        message = f"{kind} plugin {plugin} fails the contract check '{check}': {reason}"
        if self.others:
            message += f" (also failed: {', '.join(self.others)})"
        super().__init__(message)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check: ``status`` is ``"pass"``, ``"fail"`` or ``"skip"``."""

    check: str
    status: str
    reason: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "reason": self.reason, "seconds": round(self.seconds, 4)}


class _Fail(Exception):
    """Raised inside a check with the reason it failed."""


class _Skip(Exception):
    """Raised inside a check that does not apply to this plugin."""


# ------------------------------------------------------------------------------------------
# The plugin under test.


@dataclass
class _Subject:
    obj: Any
    kind: str  # "penalty" or "optimizer"
    entry_point_name: str | None
    seed: int
    plugin: Any = None  # the instance, once the interface check built it
    cls: type | None = None
    settings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def label(self) -> str:
        cls = self.cls if self.cls is not None else (self.obj if inspect.isclass(self.obj) else type(self.obj))
        name = getattr(self.plugin if self.plugin is not None else cls, "name", "")
        where = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', '?')}"
        if isinstance(name, str) and name:
            return f"'{name}' ({where})"
        return where if self.entry_point_name is None else f"'{self.entry_point_name}' ({where})"

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1009 + salt)


def _kind_of(obj: Any) -> str | None:
    cls = obj if inspect.isclass(obj) else type(obj)
    if issubclass(cls, Penalty):
        return "penalty"
    if issubclass(cls, Optimizer):
        return "optimizer"
    return None


def hyperparameter_settings(space: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Labelled hyperparameter mappings to try: the defaults, each bound (or choice) of each
    hyperparameter with the others at their defaults, and all at their lows / highs."""
    defaults = {k: hp.default for k, hp in space.items()}
    out: list[tuple[str, dict[str, Any]]] = [("defaults", dict(defaults))]
    seen = [defaults]

    def add(label: str, values: dict[str, Any]) -> None:
        if values not in seen:
            seen.append(values)
            out.append((label, values))

    for k, hp in space.items():
        options = list(hp.choices) if isinstance(hp, Categorical) else [hp.low, hp.high]
        for v in options:
            add(f"{k}={v!r}", {**defaults, k: v})
    for end in ("low", "high"):
        values = {k: getattr(hp, end) if isinstance(hp, (Float, Int)) else hp.default for k, hp in space.items()}
        add(f"all at {end}", values)
    return out


def _as_tensors(params: Mapping[str, Any], space: Mapping[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    return {k: torch.tensor(float(v), dtype=dtype) if isinstance(space.get(k), Float) else v for k, v in params.items()}


def _fmt(params: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + "}"


def _scalar(value: Any, what: str, dtype: torch.dtype) -> float:
    if not isinstance(value, torch.Tensor):
        raise _Fail(f"{what} returned {type(value).__name__}, not a torch.Tensor")
    if value.numel() != 1 or value.dim() != 0:
        raise _Fail(f"{what} returned a tensor of shape {tuple(value.shape)}, not a 0-dim tensor")
    if value.dtype != dtype:
        raise _Fail(f"{what} returned dtype {value.dtype} for {dtype} weights")
    x = float(value.detach())
    if not math.isfinite(x):
        raise _Fail(f"{what} is {x}, not finite")
    return x


def _weights(subject: _Subject, dtype: torch.dtype = torch.float64) -> list[tuple[str, torch.Tensor]]:
    g = subject.generator(1)
    return [
        ("random (6x1)", torch.randn(6, 1, generator=g).to(dtype)),
        ("random (5x3)", torch.randn(5, 3, generator=g).to(dtype)),
        ("large (4x2)", (1e3 * torch.randn(4, 2, generator=g)).to(dtype)),
        ("zero (3x2)", torch.zeros(3, 2, dtype=dtype)),
    ]


# ------------------------------------------------------------------------------------------
# Checks shared by both kinds.


def _check_interface(s: _Subject) -> str:
    base = Penalty if s.kind == "penalty" else Optimizer
    obj = s.obj
    if inspect.isclass(obj):
        if not issubclass(obj, base):
            raise _Fail(f"{obj.__module__}.{obj.__qualname__} is not a subclass of tuner.{base.__name__}")
        try:
            instance = obj()
        except Exception as exc:
            raise _Fail(f"instantiating it with no arguments failed: {type(exc).__name__}: {exc}") from None
    elif isinstance(obj, base):
        instance = obj
    else:
        raise _Fail(f"{obj!r} is neither a tuner.{base.__name__} subclass nor an instance of one")
    s.plugin, s.cls = instance, type(instance)
    cls = type(instance)
    for attr, types in (("name", str), ("description", str)):
        if not isinstance(getattr(instance, attr, None), types):
            raise _Fail(f"its {attr!r} attribute must be a str; got {getattr(instance, attr, None)!r}")
    if not isinstance(instance.search_space, Mapping):
        raise _Fail(f"search_space must be a mapping; got {type(instance.search_space).__name__}")
    if s.kind == "penalty":
        if cls.smooth_value is Penalty.smooth_value:
            raise _Fail("it does not implement smooth_value()")
        if not isinstance(instance.has_prox, bool):
            raise _Fail(f"has_prox must be a bool; got {instance.has_prox!r}")
        if instance.has_prox and (cls.prox is Penalty.prox or cls.nonsmooth_value is Penalty.nonsmooth_value):
            raise _Fail("has_prox is True but prox() or nonsmooth_value() is not implemented")
        incompatible, attr = instance.incompatible_optimizers, "incompatible_optimizers"
        done = "smooth_value" + (", nonsmooth_value and prox implemented" if instance.has_prox else " implemented")
    else:
        if cls.build is Optimizer.build:
            raise _Fail("it does not implement build()")
        incompatible, attr = instance.incompatible_penalties, "incompatible_penalties"
        done = "build implemented"
    if isinstance(incompatible, str) or not isinstance(incompatible, Iterable) or not all(
        isinstance(n, str) for n in incompatible
    ):
        raise _Fail(f"{attr} must be a set of plugin names; got {incompatible!r}")
    return f"a tuner.{base.__name__}; {done}"


def _check_name(s: _Subject) -> str:
    name = s.plugin.name
    if not name:
        raise _Fail("its name is empty")
    if not NAME_PATTERN.match(name):
        raise _Fail(f"its name {name!r} must be identifier-like (letters, digits, '_' or '-', not starting with a digit)")
    if s.entry_point_name is not None and name != s.entry_point_name:
        raise _Fail(f"its name attribute {name!r} differs from its entry-point name {s.entry_point_name!r}")
    return f"{name!r}" + (" equals its entry-point name" if s.entry_point_name is not None else "")


def _check_description(s: _Subject) -> str:
    text = s.plugin.description
    if not text.strip():
        raise _Fail("it has no description (a one-line string)")
    if "\n" in text.strip():
        raise _Fail("its description must be one line")
    return "one line"


def _check_search_space(s: _Subject) -> str:
    try:
        space = validate_space(s.plugin.search_space)
    except ValueError as exc:
        raise _Fail(str(exc)) from None
    except Exception as exc:  # a malformed declaration (e.g. choices that are not a list)
        raise _Fail(f"{type(exc).__name__}: {exc}") from None
    s.settings = hyperparameter_settings(space)
    return f"{len(space)} hyperparameter(s): {', '.join(space) or 'none'}"


# ------------------------------------------------------------------------------------------
# Penalty checks.


def _call(fn: Callable[..., Any], what: str, *args: Any) -> Any:
    try:
        return fn(*args)
    except (_Fail, _Skip):
        raise
    except Exception as exc:
        raise _Fail(f"{what} raised {type(exc).__name__}: {exc}") from None


def _check_value_finite(s: _Subject) -> str:
    pen: Penalty = s.plugin
    n = 0
    for label, params in s.settings:
        for dtype in (torch.float64, torch.float32):
            for wlabel, w in _weights(s, dtype):
                where = f"at {label} {_fmt(params)}, {wlabel} {dtype} weights"
                _scalar(_call(pen.smooth_value, f"smooth_value {where}", w, params), f"smooth_value {where}", dtype)
                ns = _scalar(_call(pen.nonsmooth_value, f"nonsmooth_value {where}", w, params),
                             f"nonsmooth_value {where}", dtype)
                if not pen.has_prox and ns != 0.0:
                    raise _Fail(f"has_prox is False but nonsmooth_value {where} is {ns}, not 0: the trainer never "
                                "minimises a non-smooth part without a prox")
                n += 1
    return f"finite scalars at {len(s.settings)} hyperparameter setting(s) x {n // max(len(s.settings), 1)} weights"


def _check_gradient(s: _Subject) -> str:
    pen: Penalty = s.plugin
    g = s.generator(2)
    for label, params in s.settings:
        for wlabel, w0 in _weights(s, torch.float64):
            if wlabel.startswith("large"):
                continue
            where = f"at {label} {_fmt(params)}, {wlabel} weights"
            w = w0.clone().requires_grad_(True)
            value = _call(pen.smooth_value, f"smooth_value {where}", w, params)
            f0 = _scalar(value, f"smooth_value {where}", torch.float64)
            if value.requires_grad:
                try:
                    (grad,) = torch.autograd.grad(value, w, allow_unused=True)
                except RuntimeError as exc:
                    raise _Fail(f"autograd through smooth_value {where} failed: {exc}") from None
            else:
                grad = None
            grad = torch.zeros_like(w0) if grad is None else grad.detach()
            if not bool(torch.isfinite(grad).all()):
                raise _Fail(f"the gradient of smooth_value {where} is not finite")
            d = torch.randn(w0.shape, generator=g, dtype=torch.float64)
            d /= d.norm()
            h = 1e-5 * max(1.0, float(w0.norm()))
            with torch.no_grad():
                fp = float(pen.smooth_value(w0 + h * d, params))
                fm = float(pen.smooth_value(w0 - h * d, params))
            fd, ad = (fp - fm) / (2 * h), float((grad * d).sum())
            if abs(fd - ad) > 1e-4 * max(1.0, abs(ad), abs(fd)) + 1e-9 * (1.0 + abs(f0)) / h:
                raise _Fail(
                    f"the autograd directional derivative of smooth_value {where} is {ad:.6g} but finite differences "
                    f"give {fd:.6g}: is part of it detached or non-smooth?"
                )
    return "autograd gradient finite and equal to finite differences"


def _check_tensor_hyperparameters(s: _Subject) -> str:
    pen: Penalty = s.plugin
    space = pen.search_space
    if not any(isinstance(hp, Float) for hp in space.values()):
        raise _Skip("no float hyperparameters")
    for label, params in s.settings:
        tparams = _as_tensors(params, space, torch.float64)
        for wlabel, w in _weights(s, torch.float64)[:2]:
            where = f"at {label} {_fmt(params)}, {wlabel} weights"
            for method in ("smooth_value", "nonsmooth_value"):
                a = float(_call(getattr(pen, method), f"{method} {where}", w, params))
                b = _call(getattr(pen, method), f"{method} with tensor hyperparameters {where}", w, tparams)
                b = _scalar(b, f"{method} with tensor hyperparameters {where}", torch.float64)
                if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                    raise _Fail(f"{method} {where} is {a} with numbers but {b} with 0-dim tensor hyperparameters")
            if pen.has_prox:
                a_x = _call(pen.prox, f"prox {where}", w.clone(), 0.5, params)
                b_x = _call(pen.prox, f"prox with tensor hyperparameters {where}", w.clone(), 0.5, tparams)
                if not torch.allclose(torch.as_tensor(a_x), torch.as_tensor(b_x), rtol=1e-9, atol=1e-12):
                    raise _Fail(f"prox {where} differs between number and 0-dim tensor hyperparameters")
    return "same values with 0-dim tensor hyperparameters"


def _needs_prox(s: _Subject) -> None:
    if not s.plugin.has_prox:
        raise _Skip("has_prox is False: a smooth penalty's prox is never used")


def _prox(s: _Subject, v: torch.Tensor, step: float, params: Mapping[str, Any], where: str) -> torch.Tensor:
    out = _call(s.plugin.prox, f"prox {where}", v.clone(), step, params)
    if not isinstance(out, torch.Tensor):
        raise _Fail(f"prox {where} returned {type(out).__name__}, not a torch.Tensor")
    if out.shape != v.shape or out.dtype != v.dtype:
        raise _Fail(f"prox {where} returned shape {tuple(out.shape)} {out.dtype} for {tuple(v.shape)} {v.dtype} input")
    if not bool(torch.isfinite(out).all()):
        raise _Fail(f"prox {where} returned non-finite values")
    return out.detach()


def _check_prox_identity(s: _Subject) -> str:
    _needs_prox(s)
    space = s.plugin.search_space
    done = "prox(v, step=0) == v"
    for label, params in s.settings:
        for wlabel, v in _weights(s, torch.float64):
            cases = [(0.0, params, "step 0")]
            if "strength" in space:
                cases.append((1.0, {**params, "strength": 0.0}, "strength 0"))
            for step, p, what in cases:
                where = f"with {what} at {label} {_fmt(p)}, {wlabel} weights"
                x = _prox(s, v, step, p, where)
                if not torch.allclose(x, v, rtol=1e-10, atol=1e-12):
                    err = float((x - v).abs().max())
                    raise _Fail(f"prox {where} moved the input by up to {err:.3g}; a zero penalty must return it unchanged")
    if "strength" in space:
        done += " and prox(v, 1) == v for strength 0"
    return done


_STEPS = (1e-3, 0.1, 1.0, 10.0)


def _check_prox_shrinks(s: _Subject) -> str:
    _needs_prox(s)
    for label, params in s.settings:
        for step in _STEPS:
            for wlabel, v in _weights(s, torch.float64):
                where = f"with step {step:g} at {label} {_fmt(params)}, {wlabel} weights"
                x = _prox(s, v, step, params, where)
                nx, nv = float(x.norm()), float(v.norm())
                if nx > nv * (1 + 1e-9) + 1e-12:
                    raise _Fail(f"||prox(v)|| = {nx:.6g} > ||v|| = {nv:.6g} {where}: a prox must shrink toward zero")
    return f"||prox(v)|| <= ||v|| for steps {', '.join(f'{t:g}' for t in _STEPS)}"


def _check_prox_minimises(s: _Subject) -> str:
    _needs_prox(s)
    pen: Penalty = s.plugin
    g = s.generator(3)
    n_tries = 0
    for label, params in s.settings:
        for step in _STEPS:
            for scale in (0.01, 1.0, 100.0):
                for shape in ((6, 1), (5, 3)):
                    v = scale * torch.randn(shape, generator=g, dtype=torch.float64)
                    where = f"with step {step:g} at {label} {_fmt(params)}, v of scale {scale:g} and shape {shape}"
                    x = _prox(s, v, step, params, where)

                    def objective(z: torch.Tensor) -> float:
                        ns = float(_call(pen.nonsmooth_value, f"nonsmooth_value {where}", z, params))
                        return float((z - v).pow(2).sum()) / (2 * step) + ns

                    fx = objective(x)
                    tol = 1e-7 * (1.0 + abs(fx))
                    candidates = [("v itself", v), ("zero", torch.zeros_like(v))]
                    for eps in (1e-4, 1e-2, 1.0):
                        size = eps * max(float(v.abs().max()), 1e-12)
                        for i in range(3):
                            d = torch.randn(shape, generator=g, dtype=torch.float64)
                            candidates.append((f"a random perturbation of size {eps:g}*max|v|", x + size * d))
                        mask = (torch.rand(shape, generator=g) < 0.5).to(torch.float64)
                        candidates.append((f"a partial perturbation of size {eps:g}*max|v|", x + size * mask * d))
                        candidates.append((f"prox(v) scaled by {1 + eps:g}", x * (1 + eps)))
                        candidates.append((f"prox(v) scaled by {1 - eps:g}", x * (1 - eps)))
                    for what, z in candidates:
                        fz = objective(z)
                        n_tries += 1
                        if fz < fx - tol:
                            raise _Fail(
                                f"prox(v) does not minimise 1/(2 step)||x - v||^2 + nonsmooth(x) {where}: the objective "
                                f"is {fx:.10g} at prox(v) but {fz:.10g} at {what}"
                            )
    return f"prox(v) beat v, 0 and perturbations in {n_tries} comparisons"


# ------------------------------------------------------------------------------------------
# Optimizer checks.


def _check_prox_mode(s: _Subject) -> str:
    opt: Optimizer = s.plugin
    if opt.prox_mode not in _PROX_MODES:
        raise _Fail(f"prox_mode must be one of {', '.join(map(repr, _PROX_MODES))}; got {opt.prox_mode!r}")
    if not isinstance(opt.full_batch, bool):
        raise _Fail(f"full_batch must be a bool; got {opt.full_batch!r}")
    if opt.full_batch and opt.prox_mode == "after_step":
        # The trainer applies the after-step prox in its mini-batch loop only: a full-batch
        # optimizer would silently leave the non-smooth part of a penalty unminimised.
        raise _Fail("a full_batch optimizer must handle non-smooth penalties itself (prox_mode 'internal') or "
                    "refuse them ('unsupported'); the trainer applies 'after_step' proxes in mini-batch training only")
    return f"prox_mode {opt.prox_mode!r}, {'full-batch' if opt.full_batch else 'mini-batch'}"


class _Toy:
    """A small binary logistic problem, float32 like the trainer's default."""

    def __init__(self, seed: int, n: int = 96, p: int = 5) -> None:
        g = torch.Generator().manual_seed(seed * 7919 + 11)
        self.X = torch.randn(n, p, generator=g)
        w = torch.randn(p, 1, generator=g) * 1.5
        probs = torch.sigmoid(self.X @ w + 0.3)[:, 0]
        self.y = (torch.rand(n, generator=g) < probs).float()
        self.n, self.p = n, p
        self.l2 = 1e-2

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(self.p, 1, requires_grad=True), torch.zeros(1, requires_grad=True)

    def smooth(self, W: torch.Tensor, b: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        X, y = (self.X, self.y) if rows is None else (self.X[rows], self.y[rows])
        logits = (X @ W + b)[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        return loss + self.l2 * 0.5 * W.pow(2).sum()


def _soft_threshold(w: torch.Tensor, t: float) -> torch.Tensor:
    return torch.sign(w) * torch.clamp(w.abs() - t, min=0.0)


def _run(s: _Subject, toy: _Toy, params: Mapping[str, Any], where: str, *, l1: float = 0.0,
         steps: int = 30, full_batch_steps: int = 3) -> tuple[float, float, torch.Tensor]:
    """Drive the optimizer as the trainer does; return the objective before and after, and W."""
    opt: Optimizer = s.plugin
    W, b = toy.params()

    def prox(weight: torch.Tensor, step: float) -> torch.Tensor:
        return _soft_threshold(weight, step * l1)

    def objective() -> float:
        with torch.no_grad():
            return float(toy.smooth(W, b)) + l1 * float(W.abs().sum())

    use_prox = l1 > 0
    built = _call(opt.build, f"build {where}",
                  [{"params": [W], "penalized": True}, {"params": [b], "penalized": False}],
                  dict(params), prox if use_prox else None)
    if not isinstance(built, torch.optim.Optimizer):
        raise _Fail(f"build {where} returned {type(built).__name__}, not a torch.optim.Optimizer")
    owned = [p for group in built.param_groups for p in group["params"]]
    for tensor, label in ((W, "weights"), (b, "intercept")):
        if not any(p is tensor for p in owned):
            raise _Fail(f"the optimizer built {where} does not optimise the {label} it was given")
    before = objective()
    g = s.generator(4)
    for _ in range(full_batch_steps if opt.full_batch else steps):
        if opt.full_batch:
            def closure() -> torch.Tensor:
                built.zero_grad()
                loss = toy.smooth(W, b)
                loss.backward()
                return loss

            _call(built.step, f"step(closure) {where}", closure)
        else:
            rows = torch.randperm(toy.n, generator=g)[:32]
            built.zero_grad()
            toy.smooth(W, b, rows).backward()
            _call(built.step, f"step() {where}")
            if use_prox and opt.prox_mode == "after_step":
                t = _call(opt.step_size, f"step_size {where}", built)
                with torch.no_grad():
                    W.copy_(prox(W, t))
    if not (bool(torch.isfinite(W).all()) and bool(torch.isfinite(b).all())):
        raise _Fail(f"the parameters are not finite after stepping {where}")
    return before, objective(), W.detach().clone()


def _check_build(s: _Subject) -> str:
    opt: Optimizer = s.plugin
    toy = _Toy(s.seed)
    for label, params in s.settings:
        _run(s, toy, params, f"at {label} {_fmt(params)}", steps=1, full_batch_steps=1)
    if opt.prox_mode == "after_step" and not opt.full_batch:
        W, b = toy.params()
        built = _call(opt.build, "build at defaults",
                      [{"params": [W], "penalized": True}, {"params": [b], "penalized": False}],
                      dict(s.settings[0][1]), None)
        t = _call(opt.step_size, "step_size at defaults", built)
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or t <= 0:
            raise _Fail(f"step_size() at defaults must be a positive float (the prox step); got {t!r}")
    return f"builds and takes a finite step at {len(s.settings)} hyperparameter setting(s)"


def _check_decreases_loss(s: _Subject) -> str:
    opt: Optimizer = s.plugin
    toy = _Toy(s.seed)
    params = s.settings[0][1]
    before, after, _ = _run(s, toy, params, "at defaults on the smooth toy problem")
    if not after < before - 1e-3 * abs(before):
        raise _Fail(f"the smooth toy objective went from {before:.6g} to {after:.6g} at the default hyperparameters "
                    f"{_fmt(params)}; it should decrease")
    done = f"smooth objective {before:.4g} -> {after:.4g}"
    if opt.prox_mode != "unsupported":
        before, after, _ = _run(s, toy, params, "at defaults with an L1 penalty", l1=0.02)
        if not after < before - 1e-3 * abs(before):
            raise _Fail(f"the L1-penalized toy objective went from {before:.6g} to {after:.6g} at the default "
                        f"hyperparameters {_fmt(params)} with prox_mode {opt.prox_mode!r}; it should decrease")
        done += f"; L1 objective {before:.4g} -> {after:.4g}"
        if opt.prox_mode == "internal":
            _, _, W = _run(s, toy, params, "at defaults with a large L1 penalty", l1=10.0)
            if bool((W != 0).any()):
                raise _Fail("with an L1 penalty large enough to make every weight zero, the weights are not exactly "
                            "zero: a prox_mode 'internal' optimizer must apply the prox it receives in build()")
            done += "; exact zeros under a large L1 penalty"
    return done


# ------------------------------------------------------------------------------------------
# Running checks.

_Check = tuple[str, Callable[[_Subject], str], tuple[str, ...]]

_COMMON: list[_Check] = [
    ("interface", _check_interface, ()),
    ("name", _check_name, ("interface",)),
    ("description", _check_description, ("interface",)),
    ("search_space", _check_search_space, ("interface",)),
]
_PENALTY: list[_Check] = _COMMON + [
    ("value_finite", _check_value_finite, ("search_space",)),
    ("gradient", _check_gradient, ("search_space",)),
    ("tensor_hyperparameters", _check_tensor_hyperparameters, ("search_space",)),
    ("prox_identity", _check_prox_identity, ("search_space",)),
    ("prox_shrinks", _check_prox_shrinks, ("search_space",)),
    ("prox_minimises", _check_prox_minimises, ("search_space", "value_finite")),
] + BATCH_PENALTY_CHECKS
_OPTIMIZER: list[_Check] = _COMMON + [
    ("prox_mode", _check_prox_mode, ("interface",)),
    ("build", _check_build, ("search_space", "prox_mode")),
    ("decreases_loss", _check_decreases_loss, ("build",)),
] + BATCH_OPTIMIZER_CHECKS

PENALTY_CHECKS: tuple[str, ...] = tuple(name for name, _, _ in _PENALTY)
"""The names of the penalty checks, in the order they run."""
OPTIMIZER_CHECKS: tuple[str, ...] = tuple(name for name, _, _ in _OPTIMIZER)
"""The names of the optimizer checks, in the order they run."""


def run_checks(obj: Any, *, kind: str | None = None, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run every contract check on a plugin class or instance; never raises for a failed check.

    ``kind`` (``"penalty"`` or ``"optimizer"``) says which contract to hold it to; by default
    it follows the class. ``name`` is the entry-point name the plugin's ``name`` must equal.
    A check whose prerequisite failed is skipped, with the reason. The checks run with one
    torch thread (restored afterwards): their tensors are tiny.
    """
    kind = kind or _kind_of(obj)
    if kind is None:
        cls = obj if inspect.isclass(obj) else type(obj)
        return [CheckResult("interface", FAIL, f"{cls.__module__}.{cls.__qualname__} is not a subclass of "
                                               "tuner.Penalty or tuner.Optimizer")]
    if kind not in ("penalty", "optimizer"):
        raise ValueError(f"The 'kind' parameter of run_checks must be 'penalty' or 'optimizer'; got {kind!r} instead.")
    subject = _Subject(obj, kind, name, seed)
    results: dict[str, CheckResult] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the toy tensors are tiny: threads only add contention
    try:
        _run_all(subject, results)
    finally:
        torch.set_num_threads(threads)
    return list(results.values())


def _run_all(subject: _Subject, results: dict[str, CheckResult]) -> None:
    kind = subject.kind
    for check, fn, needs in _PENALTY if kind == "penalty" else _OPTIMIZER:
        blocked = [n for n in needs if not results[n].passed]
        if blocked:
            results[check] = CheckResult(check, SKIP, f"needs the '{blocked[0]}' check to pass")
            continue
        started = time.perf_counter()
        try:
            note = fn(subject)
            status = PASS
        except _Fail as exc:
            status, note = FAIL, str(exc)
        except _Skip as exc:
            status, note = SKIP, str(exc)
        except Exception as exc:  # a bug in the plugin that a check did not anticipate
            status, note = FAIL, f"unexpected {type(exc).__name__}: {exc}"
        results[check] = CheckResult(check, status, note, time.perf_counter() - started)


def _raise_on_failure(obj: Any, kind: str, results: list[CheckResult], name: str | None) -> None:
    failed = [r for r in results if r.failed]
    if not failed:
        return
    subject = _Subject(obj, kind, name, 0)
    raise ContractError(kind, subject.label, failed[0].check, failed[0].reason, [r.check for r in failed[1:]])


def check_penalty(penalty: Any, *, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run the penalty checks on a :class:`tuner.Penalty` class or instance.

    Raises :class:`ContractError` naming the plugin and the first failed check; returns the
    results (passed and skipped checks) otherwise.
    """
    results = run_checks(penalty, kind="penalty", name=name, seed=seed)
    _raise_on_failure(penalty, "penalty", results, name)
    return results


def check_optimizer(optimizer: Any, *, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run the optimizer checks on a :class:`tuner.Optimizer` class or instance (see :func:`check_penalty`)."""
    results = run_checks(optimizer, kind="optimizer", name=name, seed=seed)
    _raise_on_failure(optimizer, "optimizer", results, name)
    return results


def check_plugin(obj: Any, *, name: str | None = None, seed: int = 0) -> list[CheckResult]:
    """Run the checks of whichever contract ``obj`` (a class or instance) claims to follow."""
    kind = _kind_of(obj)
    if kind is None:
        cls = obj if inspect.isclass(obj) else type(obj)
        raise ContractError("plugin", f"{cls.__module__}.{cls.__qualname__}", "interface",
                            "it is not a subclass (or instance) of tuner.Penalty or tuner.Optimizer")
    return check_penalty(obj, name=name, seed=seed) if kind == "penalty" else check_optimizer(obj, name=name, seed=seed)


# ------------------------------------------------------------------------------------------
# Installed plugins (what the registry loads from entry points).


@dataclass
class PluginReport:
    """The checks of one installed plugin: its group, entry point and origin."""

    group: str  # "penalty" or "optimizer"
    name: str
    value: str
    distribution: str
    version: str
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "name": self.name, "entry_point": self.value, "distribution": self.distribution,
            "version": self.version, "ok": self.ok, "checks": [r.to_dict() for r in self.results],
        }


def run_installed_checks(name: str, group: str | None = None, *, seed: int = 0) -> list[PluginReport]:
    """Run the checks on the installed plugin ``name`` of ``group`` (``"penalty"``,
    ``"optimizer"``, or ``None`` for whichever groups have it).

    A broken entry point (one the registry could not load) gives a failed ``load`` check
    with the registry's reason. An unknown name raises :class:`tuner.PluginError` listing the
    usable plugins.
    """
    from tuner._registry import optimizers, penalties

    registries = {"penalty": penalties, "optimizer": optimizers}
    if group is not None and group not in registries:
        raise PluginError(f"The 'group' parameter must be 'penalty' or 'optimizer'; got {group!r} instead.")
    chosen = [registries[group]] if group else list(registries.values())
    found = []
    for registry in chosen:
        infos = {info.name: info for info in registry.infos()}
        if name in infos:
            found.append((registry, infos[name]))
    if not found:
        if group:
            registries[group].info(name)  # raises PluginError with the usable names
        raise PluginError(
            f"Unknown plugin {name!r}: no penalty or optimizer has that name. Usable penalties: "
            f"{', '.join(penalties.names()) or 'none'}; usable optimizers: {', '.join(optimizers.names()) or 'none'}."
        )
    reports = []
    for registry, info in found:
        if info.plugin is None:
            try:
                registry.get(name)
                reason = info.error or "it could not be loaded"
            except PluginError as exc:
                reason = str(exc)
            results = [CheckResult("load", FAIL, reason)]
        else:
            results = [CheckResult("load", PASS, f"{info.value} from {info.distribution} {info.version}")]
            results += run_checks(info.plugin, kind=registry.kind, name=name, seed=seed)
        reports.append(PluginReport(registry.kind, name, info.value, info.distribution, info.version, results))
    return reports


def check_installed(name: str, group: str | None = None, *, seed: int = 0) -> list[PluginReport]:
    """Like :func:`run_installed_checks` but raise :class:`ContractError` on the first failure.

    Use it in a plugin package's tests to check that the entry point is wired up: that the
    registry finds ``name``, loads it and that it passes every check.
    """
    reports = run_installed_checks(name, group, seed=seed)
    for report in reports:
        failed = [r for r in report.results if r.failed]
        if failed:
            raise ContractError(report.group, f"'{name}' ({report.value}, distribution {report.distribution!r})",
                                failed[0].check, failed[0].reason, [r.check for r in failed[1:]])
    return reports
