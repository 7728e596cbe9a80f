"""The penalty checks: finite values, a true gradient, and a prox that is right on every path
the trainer takes (number, per-weight and per-trial steps; float64 and float32)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from tuner._plugin_api import Penalty
from tuner._space import Float
from tuner.testing._base import (
    Check,
    Fail,
    Skip,
    Subject,
    as_tensors,
    call,
    fmt,
    scalar,
    unused_hyperparameters,
    weights,
)

__all__ = ["PENALTY_ONLY_CHECKS", "QUICK_PENALTY_CHECKS"]


def check_value_finite(s: Subject) -> str:
    pen: Penalty = s.plugin
    n = 0
    for label, params in s.settings:
        for dtype in (torch.float64, torch.float32):
            for wlabel, w in weights(s, dtype):
                where = f"at {label} {fmt(params)}, {wlabel} {dtype} weights"
                scalar(call(pen.smooth_value, f"smooth_value {where}", w, params), f"smooth_value {where}", dtype)
                ns = scalar(call(pen.nonsmooth_value, f"nonsmooth_value {where}", w, params),
                             f"nonsmooth_value {where}", dtype)
                if not pen.has_prox and ns != 0.0:
                    raise Fail(f"has_prox is False but nonsmooth_value {where} is {ns}, not 0: the trainer never "
                                "minimises a non-smooth part without a prox")
                n += 1
    return f"finite scalars at {len(s.settings)} hyperparameter setting(s) x {n // max(len(s.settings), 1)} weights"


def check_gradient(s: Subject) -> str:
    pen: Penalty = s.plugin
    g = s.generator(2)
    for label, params in s.settings:
        for wlabel, w0 in weights(s, torch.float64):
            if wlabel.startswith("large"):
                continue
            where = f"at {label} {fmt(params)}, {wlabel} weights"
            w = w0.clone().requires_grad_(True)
            value = call(pen.smooth_value, f"smooth_value {where}", w, params)
            f0 = scalar(value, f"smooth_value {where}", torch.float64)
            if value.requires_grad:
                try:
                    (grad,) = torch.autograd.grad(value, w, allow_unused=True)
                except RuntimeError as exc:
                    raise Fail(f"autograd through smooth_value {where} failed: {exc}") from None
            else:
                grad = None
            grad = torch.zeros_like(w0) if grad is None else grad.detach()
            if not bool(torch.isfinite(grad).all()):
                raise Fail(f"the gradient of smooth_value {where} is not finite")
            d = torch.randn(w0.shape, generator=g, dtype=torch.float64)
            d /= d.norm()
            h = 1e-5 * max(1.0, float(w0.norm()))
            with torch.no_grad():
                fp = float(pen.smooth_value(w0 + h * d, params))
                fm = float(pen.smooth_value(w0 - h * d, params))
            fd, ad = (fp - fm) / (2 * h), float((grad * d).sum())
            # relative to the derivative, plus the rounding of fp - fm: a floor of 1 (or 1 / h) let a
            # gradient twice too large pass wherever strengths are small (1e-7 to 2e-5: 1 / (C n))
            if abs(fd - ad) > 1e-4 * max(abs(ad), abs(fd)) + 1e-12 * max(abs(f0), abs(fp), abs(fm)) / h:
                raise Fail(
                    f"the autograd directional derivative of smooth_value {where} is {ad:.6g} but finite differences "
                    f"give {fd:.6g}: is part of it detached or non-smooth?"
                )
        _no_kink_at_zero(s, params, f"at {label} {fmt(params)}", g)
    return "autograd gradient finite and equal to finite differences; no kink at zero weights"


def _no_kink_at_zero(s: Subject, params: Any, where: str, g: torch.Generator) -> None:
    """``smooth_value`` has no kink at zero weights: its second difference ``f(hd) + f(-hd) - 2 f(0)``
    shrinks like ``h^2`` (a kink, as ``|w|``, shrinks like ``h``). Central differences cannot see a
    symmetric kink in the gradient check, and a solver told the part is smooth (L-BFGS, no prox)
    then never reaches the exact zeros of an L1 part written there."""
    pen: Penalty = s.plugin
    zero = torch.zeros(weights(s, torch.float64)[0][1].shape, dtype=torch.float64)
    d = torch.randn(zero.shape, generator=g, dtype=torch.float64)
    d /= d.norm()
    with torch.no_grad():
        f0 = float(pen.smooth_value(zero, params))

        def second(h: float) -> float:
            return float(pen.smooth_value(h * d, params)) + float(pen.smooth_value(-h * d, params)) - 2 * f0

        coarse, fine = second(1e-2), second(1e-3)
    if fine > 1e-12 * (1.0 + abs(f0)) and coarse < 30.0 * fine:  # h^2 would give 100x; h gives 10x
        raise Fail(f"smooth_value {where} has a kink at zero weights (its second difference shrinks like h, not h^2: "
                   f"{coarse:.3g} at h=1e-2, {fine:.3g} at h=1e-3): a non-smooth part such as |w| belongs in "
                   "nonsmooth_value, with a prox (has_prox = True), so that solvers give its exact zeros")


def check_tensor_hyperparameters(s: Subject) -> str:
    pen: Penalty = s.plugin
    space = pen.search_space
    if not any(isinstance(hp, Float) for hp in space.values()):
        raise Skip("no float hyperparameters")
    for label, params in s.settings:
        tparams = as_tensors(params, space, torch.float64)
        for wlabel, w in weights(s, torch.float64)[:2]:
            where = f"at {label} {fmt(params)}, {wlabel} weights"
            for method in ("smooth_value", "nonsmooth_value"):
                a = float(call(getattr(pen, method), f"{method} {where}", w, params))
                b = call(getattr(pen, method), f"{method} with tensor hyperparameters {where}", w, tparams)
                b = scalar(b, f"{method} with tensor hyperparameters {where}", torch.float64)
                if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                    raise Fail(f"{method} {where} is {a} with numbers but {b} with 0-dim tensor hyperparameters")
            if pen.has_prox:
                a_x = call(pen.prox, f"prox {where}", w.clone(), 0.5, params)
                b_x = call(pen.prox, f"prox with tensor hyperparameters {where}", w.clone(), 0.5, tparams)
                if not torch.allclose(torch.as_tensor(a_x), torch.as_tensor(b_x), rtol=1e-9, atol=1e-12):
                    raise Fail(f"prox {where} differs between number and 0-dim tensor hyperparameters")
    return "same values with 0-dim tensor hyperparameters"


def _needs_prox(s: Subject) -> None:
    if not s.plugin.has_prox:
        raise Skip("has_prox is False: a smooth penalty's prox is never used")


def _prox(s: Subject, v: torch.Tensor, step: float | torch.Tensor, params: Mapping[str, Any], where: str) -> torch.Tensor:
    out = call(s.plugin.prox, f"prox {where}", v.clone(), step, params)
    if not isinstance(out, torch.Tensor):
        raise Fail(f"prox {where} returned {type(out).__name__}, not a torch.Tensor")
    if out.shape != v.shape or out.dtype != v.dtype:
        raise Fail(f"prox {where} returned shape {tuple(out.shape)} {out.dtype} for {tuple(v.shape)} {v.dtype} input")
    if not bool(torch.isfinite(out).all()):
        raise Fail(f"prox {where} returned non-finite values")
    return out.detach()


def check_prox_identity(s: Subject) -> str:
    _needs_prox(s)
    space = s.plugin.search_space
    done = "prox(v, step=0) == v"
    for label, params in s.settings:
        for wlabel, v in weights(s, torch.float64):
            cases = [(0.0, params, "step 0")]
            if "strength" in space:
                cases.append((1.0, {**params, "strength": 0.0}, "strength 0"))
            for step, p, what in cases:
                where = f"with {what} at {label} {fmt(p)}, {wlabel} weights"
                x = _prox(s, v, step, p, where)
                if not torch.allclose(x, v, rtol=1e-10, atol=1e-12):
                    err = float((x - v).abs().max())
                    raise Fail(f"prox {where} moved the input by up to {err:.3g}; a zero penalty must return it unchanged")
    if "strength" in space:
        done += " and prox(v, 1) == v for strength 0"
    return done


_STEPS = (1e-3, 0.1, 1.0, 10.0)


def check_prox_shrinks(s: Subject) -> str:
    _needs_prox(s)
    for label, params in s.settings:
        for step in _STEPS:
            for wlabel, v in weights(s, torch.float64):
                where = f"with step {step:g} at {label} {fmt(params)}, {wlabel} weights"
                x = _prox(s, v, step, params, where)
                nx, nv = float(x.norm()), float(v.norm())
                if nx > nv * (1 + 1e-9) + 1e-12:
                    raise Fail(f"||prox(v)|| = {nx:.6g} > ||v|| = {nv:.6g} {where}: a prox must shrink toward zero")
    return f"||prox(v)|| <= ||v|| for steps {', '.join(f'{t:g}' for t in _STEPS)}"


def check_prox_minimises(s: Subject) -> str:
    _needs_prox(s)
    pen: Penalty = s.plugin
    g = s.generator(3)
    n_tries = 0
    for label, params in s.settings:
        for step in _STEPS:
            for scale in (0.01, 1.0, 100.0):
                for shape in ((6, 1), (5, 3)):
                    v = scale * torch.randn(shape, generator=g, dtype=torch.float64)
                    where = f"with step {step:g} at {label} {fmt(params)}, v of scale {scale:g} and shape {shape}"
                    x = _prox(s, v, step, params, where)

                    def objective(z: torch.Tensor, v: torch.Tensor = v, step: float = step,
                                  params: Mapping[str, Any] = params, where: str = where) -> float:
                        ns = float(call(pen.nonsmooth_value, f"nonsmooth_value {where}", z, params))
                        return float((z - v).pow(2).sum()) / (2 * step) + ns

                    fx = objective(x)
                    tol = 1e-7 * (1.0 + abs(fx))
                    candidates = [("v itself", v), ("zero", torch.zeros_like(v))]
                    for eps in (1e-4, 1e-2, 1.0):
                        size = eps * max(float(v.abs().max()), 1e-12)
                        for _ in range(3):
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
                            raise Fail(
                                f"prox(v) does not minimise 1/(2 step)||x - v||^2 + nonsmooth(x) {where}: the objective "
                                f"is {fx:.10g} at prox(v) but {fz:.10g} at {what}"
                            )
    return f"prox(v) beat v, 0 and perturbations in {n_tries} comparisons"


PROX_RTOL = {torch.float64: 1e-9, torch.float32: 1e-5}
"""How far a prox with a tensor step may be from the same prox with each step as a number."""
_TENSOR_STEP_HINT = ("an elementwise_prox penalty gets a tensor of per-weight steps shaped like the weights from "
                     "optimizers with per-coordinate steps (Adam, RMSprop: coordinate_step_size), so prox must "
                     "compute with step as a tensor (no float(step), math.* or `if step ...`)")


def _per_weight_steps(s: Subject, w: torch.Tensor) -> tuple[torch.Tensor, tuple[float, ...]]:
    """Steps shaped like ``w`` drawn from a few values (as Adam's differ by coordinate)."""
    values = (0.05, 0.5, 2.0)
    pick = torch.randint(0, len(values), w.shape, generator=s.generator(6))
    return torch.tensor(values, dtype=w.dtype)[pick], values


def check_prox_steps(s: Subject) -> str:
    """The prox on the paths a study takes: float64 and float32 weights keep their dtype; an
    ``elementwise_prox`` penalty takes per-weight steps (what ``coordinate_step_size`` gives) and
    applies each weight's own step."""
    _needs_prox(s)
    pen: Penalty = s.plugin
    n = 0
    for label, params in s.settings:
        for dtype in (torch.float64, torch.float32):
            for wlabel, w in weights(s, dtype)[1:3]:
                where = f"at {label} {fmt(params)}, {wlabel} {dtype} weights"
                base = _prox(s, w, 0.5, params, f"with step 0.5 {where}")
                if not pen.elementwise_prox:
                    n += 1
                    continue
                steps, values = _per_weight_steps(s, w)
                try:
                    out = _prox(s, w, steps, params, f"with per-weight steps {where}")
                except Fail as exc:
                    raise Fail(f"{exc}: {_TENSOR_STEP_HINT}") from None
                uniform = _prox(s, w, torch.full_like(w, 0.5), params, f"with per-weight steps all 0.5 {where}")
                if not torch.allclose(uniform, base, rtol=PROX_RTOL[dtype], atol=1e-12):
                    raise Fail(f"prox with per-weight steps all equal to 0.5 {where} differs from prox with the step "
                               f"0.5 by up to {float((uniform - base).abs().max()):.3g}: {_TENSOR_STEP_HINT}")
                moved = w.clone()
                moved.view(-1)[0] += 1.0 + moved.view(-1)[0].abs()  # one weight changes: no other may follow it
                others = torch.ones_like(w, dtype=torch.bool)
                others.view(-1)[0] = False
                shifted = _prox(s, moved, 0.5, params, f"with step 0.5 {where}, one weight changed")
                if not torch.allclose(shifted[others], base[others], rtol=PROX_RTOL[dtype], atol=1e-12):
                    raise Fail(f"elementwise_prox is True, but changing one weight changes the prox of others (by up to "
                               f"{float((shifted[others] - base[others]).abs().max()):.3g}, step 0.5 {where}): the "
                               "prox couples weights (a group penalty), so per-weight steps would break it; declare "
                               "elementwise_prox = False")
                for t in values:
                    alone = _prox(s, w, t, params, f"with step {t:g} {where}")
                    mask = steps == t
                    if not torch.allclose(out[mask], alone[mask], rtol=PROX_RTOL[dtype], atol=1e-12):
                        err = float((out[mask] - alone[mask]).abs().max())
                        raise Fail(f"prox with per-weight steps {where} gives the weights whose step is {t:g} values up "
                                   f"to {err:.3g} away from prox with the step {t:g}: each weight must get its own step")
                n += 1
    done = f"prox keeps float64 and float32 at {len(s.settings)} setting(s)"
    if pen.elementwise_prox:
        done += "; per-weight steps give each weight its own prox, which depends on that weight alone (elementwise_prox)"
    return done


def check_elastic_net(s: Subject) -> str:
    """A penalty that says it is ``a ||W||_1 + b / 2 ||W||^2`` (``elastic_net``) has that value and,
    with an L1 part, soft-thresholding as its prox: the trainer uses the formula in its place."""
    pen: Penalty = s.plugin
    if type(pen).elastic_net is Penalty.elastic_net:
        raise Skip("elastic_net not declared (each plugin computes its own trials' penalty)")
    from tuner.train._penalties import _net_is_its_own, soft_threshold

    if not _net_is_its_own(type(pen)):
        raise Skip("elastic_net is inherited by a class that changes its values or prox: not used")
    declared = 0
    for label, params in s.settings:
        net = call(pen.elastic_net, f"elastic_net at {label} {fmt(params)}", params)
        if net is None:
            continue
        a, b = (float(x) for x in net)
        if not (math.isfinite(a) and math.isfinite(b) and a >= 0 and b >= 0):
            raise Fail(f"elastic_net at {label} {fmt(params)} returned {net!r}: both weights must be finite and >= 0")
        if a > 0 and not pen.has_prox:
            raise Fail(f"elastic_net at {label} {fmt(params)} has an L1 weight {a:g} but has_prox is False")
        declared += 1
        for wlabel, w in weights(s, torch.float64):
            where = f"at {label} {fmt(params)}, {wlabel} weights"
            got = scalar(call(pen.value, f"value {where}", w, params), f"value {where}", torch.float64)
            want = a * float(w.abs().sum()) + b / 2 * float((w * w).sum())
            if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
                raise Fail(f"elastic_net {where} says {a:g} ||W||_1 + {b:g}/2 ||W||^2 = {want:.10g}, but the value is "
                           f"{got:.10g}: the trainer would train trials side by side on the wrong penalty")
            if pen.has_prox:
                x = _prox(s, w, 0.5, params, where)
                expected = soft_threshold(w, 0.5 * a)
                if not torch.allclose(x, expected, rtol=1e-10, atol=1e-12):
                    raise Fail(f"prox with step 0.5 {where} is not soft-thresholding by 0.5 x {a:g}, which "
                               "elastic_net implies")
    if not declared:
        raise Skip("elastic_net returned None at every setting")
    return f"value and prox are the declared elastic net at {declared} setting(s)"


def check_hyperparameters_used(s: Subject) -> str:
    """Each hyperparameter changes the penalty: its value on random weights, or (with a prox) the
    prox with step 0.5, at each of its bounds or choices against the defaults."""
    pen: Penalty = s.plugin
    if not pen.search_space:
        raise Skip("no hyperparameters")
    w = torch.randn(6, 3, generator=s.generator(7), dtype=torch.float64)

    def what_it_does(params: dict[str, Any]) -> torch.Tensor:
        where = f"at {fmt(params)}"
        parts = [call(pen.smooth_value, f"smooth_value {where}", w, params),
                 call(pen.nonsmooth_value, f"nonsmooth_value {where}", w, params)]
        if pen.has_prox:
            parts.append(call(pen.prox, f"prox {where}", w, 0.5, params))
        return torch.cat([torch.as_tensor(p, dtype=torch.float64).reshape(-1) for p in parts])

    unused = unused_hyperparameters(pen.search_space, what_it_does)
    if unused:
        raise Fail(f"{', '.join(map(repr, unused))} changed nothing: the value{' and the prox' if pen.has_prox else ''} "
                   "on random weights are the same at every bound or choice as at the defaults; does the penalty "
                   "read every hyperparameter it declares?")
    return f"each of {', '.join(pen.search_space)} changes the penalty"


PENALTY_ONLY_CHECKS: list[Check] = [
    ("value_finite", check_value_finite, ("search_space",)),
    ("gradient", check_gradient, ("search_space",)),
    ("tensor_hyperparameters", check_tensor_hyperparameters, ("search_space",)),
    ("prox_identity", check_prox_identity, ("search_space",)),
    ("prox_shrinks", check_prox_shrinks, ("search_space",)),
    ("prox_minimises", check_prox_minimises, ("search_space", "value_finite")),
    ("prox_steps", check_prox_steps, ("search_space",)),
    ("elastic_net", check_elastic_net, ("search_space",)),
    ("hyperparameters_used", check_hyperparameters_used, ("search_space", "value_finite")),
]
"""The single-trial penalty checks, after the common ones."""
QUICK_PENALTY_CHECKS = ("interface", "search_space", "value_finite", "gradient", "tensor_hyperparameters",
                        "prox_identity", "prox_minimises", "prox_steps", "elastic_net")
"""What :func:`tuner.testing.failing_plugins` runs (at the defaults only): the paths a study takes
(trials side by side: :data:`tuner.testing.QUICK_SIDE_BY_SIDE`), and whether the gradient and the
prox are right (a prox thresholding twice too far won a default study), a few milliseconds more."""
