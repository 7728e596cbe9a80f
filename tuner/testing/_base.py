"""What every contract check shares: the plugin under test, outcomes, and small helpers."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from tuner._space import Categorical, Float, Int

__all__ = [
    "PASS", "FAIL", "SKIP", "ContractError", "CheckResult", "Fail", "Skip", "Subject", "Check",
    "hyperparameter_settings", "as_tensors", "fmt", "scalar", "weights", "call", "defaults",
]

PASS, FAIL, SKIP = "pass", "fail", "skip"


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


class Fail(Exception):
    """Raised inside a check with the reason it failed."""


class Skip(Exception):
    """Raised inside a check that does not apply to this plugin."""


@dataclass
class Subject:
    """The plugin under test, as the checks see it."""

    obj: Any
    kind: str  # "penalty" or "optimizer"
    entry_point_name: str | None
    seed: int
    quick: bool = False
    """Only the defaults, not every hyperparameter setting (:func:`tuner.testing.failing_plugins`)."""
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


Check = tuple[str, Callable[[Subject], str], tuple[str, ...]]
"""``(name, check, prerequisites)``: a check returns what it verified or raises :class:`Fail` / :class:`Skip`."""


def hyperparameter_settings(space: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Labelled hyperparameter mappings to try: the defaults, each bound (or choice) of each
    hyperparameter with the others at their defaults, and all at their lows / highs."""
    base = {k: hp.default for k, hp in space.items()}
    out: list[tuple[str, dict[str, Any]]] = [("defaults", dict(base))]
    seen = [base]

    def add(label: str, values: dict[str, Any]) -> None:
        if values not in seen:
            seen.append(values)
            out.append((label, values))

    for k, hp in space.items():
        options = list(hp.choices) if isinstance(hp, Categorical) else [hp.low, hp.high]
        for v in options:
            add(f"{k}={v!r}", {**base, k: v})
    for end in ("low", "high"):
        values = {k: getattr(hp, end) if isinstance(hp, (Float, Int)) else hp.default for k, hp in space.items()}
        add(f"all at {end}", values)
    return out


def unused_hyperparameters(space: Mapping[str, Any], outcome: Callable[[dict[str, Any]], torch.Tensor]) -> list[str]:
    """The hyperparameters of ``space`` that leave ``outcome(params)`` bitwise unchanged at every
    bound (or choice) they take, the others at their defaults: searched for nothing, and reported
    by a study as if they had mattered."""
    base = {k: hp.default for k, hp in space.items()}
    reference = outcome(dict(base))
    unused = []
    for name, hp in space.items():
        options = [v for v in (list(hp.choices) if isinstance(hp, Categorical) else [hp.low, hp.high]) if v != base[name]]
        if options and all(torch.equal(outcome({**base, name: v}), reference) for v in options):
            unused.append(name)
    return unused


def defaults(plugin: Any) -> dict[str, Any]:
    """A plugin's hyperparameters at their declared defaults."""
    return {k: hp.default for k, hp in plugin.search_space.items()}


def as_tensors(params: Mapping[str, Any], space: Mapping[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """The float hyperparameters of ``params`` as 0-dim tensors."""
    return {k: torch.tensor(float(v), dtype=dtype) if isinstance(space.get(k), Float) else v for k, v in params.items()}


def fmt(params: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + "}"


def scalar(value: Any, what: str, dtype: torch.dtype) -> float:
    """``value`` as a float, failing unless it is a finite 0-dim tensor of ``dtype``."""
    if not isinstance(value, torch.Tensor):
        raise Fail(f"{what} returned {type(value).__name__}, not a torch.Tensor")
    if value.numel() != 1 or value.dim() != 0:
        raise Fail(f"{what} returned a tensor of shape {tuple(value.shape)}, not a 0-dim tensor")
    if value.dtype != dtype:
        raise Fail(f"{what} returned dtype {value.dtype} for {dtype} weights")
    x = float(value.detach())
    if not math.isfinite(x):
        raise Fail(f"{what} is {x}, not finite")
    return x


def weights(subject: Subject, dtype: torch.dtype = torch.float64) -> list[tuple[str, torch.Tensor]]:
    """Labelled weight matrices to try: random, large and zero."""
    g = subject.generator(1)
    return [
        ("random (6x1)", torch.randn(6, 1, generator=g).to(dtype)),
        ("random (5x3)", torch.randn(5, 3, generator=g).to(dtype)),
        ("large (4x2)", (1e3 * torch.randn(4, 2, generator=g)).to(dtype)),
        ("zero (3x2)", torch.zeros(3, 2, dtype=dtype)),
    ]


def call(fn: Callable[..., Any], what: str, *args: Any) -> Any:
    """Call plugin code; an exception it raises fails the check, saying what was called.

    A hyperparameter mapping goes in read-only, as training passes it (a plugin that wrote to it
    passed every check, then failed every trial)."""
    args = tuple(MappingProxyType(a) if isinstance(a, dict) else a for a in args)
    try:
        return fn(*args)
    except (Fail, Skip):
        raise
    except Exception as exc:
        hint = (" (the hyperparameters are read-only, in training too: copy them, dict(params), to change "
                "them)" if isinstance(exc, (TypeError, AttributeError)) and "mappingproxy" in str(exc) else "")
        raise Fail(f"{what} raised {type(exc).__name__}: {exc}{hint}") from None
