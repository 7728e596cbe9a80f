"""Declarative hyperparameter search spaces.

A plugin declares each hyperparameter as a :class:`Float`, :class:`Int` or
:class:`Categorical` with a default. These are plain data: they validate values, list
themselves in ``tuner plugins list`` and turn into Optuna distributions only in the search
module (``to_optuna``), so loading a plugin never imports Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.errors import ConfigError

__all__ = ["Float", "Int", "Categorical", "Hyperparameter", "validate_space", "parse_value", "qualified"]


UNSEARCHED_NOTE = "; a study holds the default unless --param names it"
"""What a listing adds to a hyperparameter declared ``searched=False``."""


@dataclass(frozen=True)
class Float:
    """A real hyperparameter searched in ``[low, high]`` (on a log scale when ``log``).

    ``domain`` is the wider range of values a user may fix or search explicitly (for example
    a learning rate of 1e3 to see what divergence looks like); it defaults to ``[low, high]``.
    ``searched=False``: a study holds it at ``default`` unless the user names it (``--param``);
    for a setting that changes how an exact solver gets to the optimum, not the optimum.
    """

    low: float
    high: float
    default: float
    log: bool = False
    description: str = ""
    domain: tuple[float, float] | None = None
    searched: bool = True

    @property
    def bounds(self) -> tuple[float, float]:
        return self.domain if self.domain is not None else (self.low, self.high)

    def check(self) -> None:
        """Raise ``ValueError`` when the declaration itself is invalid."""
        for label, v in (("low", self.low), ("high", self.high), ("default", self.default)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{label} must be a finite number; got {v!r}")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0; got low={self.low}")
        if not self.low <= self.default <= self.high:
            raise ValueError(f"default {self.default} lies outside [{self.low}, {self.high}]")
        if self.domain is not None:
            lo, hi = self.domain
            if not (lo <= self.low and self.high <= hi):
                raise ValueError(f"domain {self.domain} does not contain the search range [{self.low}, {self.high}]")

    def validate(self, name: str, value: Any) -> float:
        """Return ``value`` as a float, or raise :class:`ConfigError` when outside the domain."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"The '{name}' hyperparameter must be a number; got {value!r} instead.") from None
        lo, hi = self.bounds
        if not math.isfinite(v) or not lo <= v <= hi:
            raise ConfigError(f"The '{name}' hyperparameter must be in [{lo:g}, {hi:g}]; got {value!r} instead.")
        return v

    def describe(self) -> str:
        return (f"float [{self.low:g}, {self.high:g}]{' log' if self.log else ''}, default {self.default:g}"
                + UNSEARCHED_NOTE * (not self.searched))

    def to_dict(self) -> dict[str, Any]:
        out = {"type": "float", "low": self.low, "high": self.high, "log": self.log, "default": self.default}
        if self.domain is not None:
            out["domain"] = list(self.domain)
        return _with_searched(out, self.searched)


@dataclass(frozen=True)
class Int:
    """An integer hyperparameter in ``[low, high]`` (``searched`` as for :class:`Float`)."""

    low: int
    high: int
    default: int
    log: bool = False
    description: str = ""
    searched: bool = True

    def check(self) -> None:
        for label, v in (("low", self.low), ("high", self.high), ("default", self.default)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{label} must be an integer; got {v!r}")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0; got low={self.low}")
        if not self.low <= self.default <= self.high:
            raise ValueError(f"default {self.default} lies outside [{self.low}, {self.high}]")

    def validate(self, name: str, value: Any) -> int:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"The '{name}' hyperparameter must be an integer; got {value!r} instead.") from None
        if not f.is_integer() or not self.low <= f <= self.high:
            raise ConfigError(
                f"The '{name}' hyperparameter must be an integer in [{self.low}, {self.high}]; got {value!r} instead."
            )
        return int(f)

    def describe(self) -> str:
        return (f"int [{self.low}, {self.high}]{' log' if self.log else ''}, default {self.default}"
                + UNSEARCHED_NOTE * (not self.searched))

    def to_dict(self) -> dict[str, Any]:
        return _with_searched({"type": "int", "low": self.low, "high": self.high, "log": self.log,
                               "default": self.default}, self.searched)


@dataclass(frozen=True)
class Categorical:
    """A choice among a fixed list of values (str, int, float or bool; ``searched`` as for :class:`Float`)."""

    choices: Sequence[Any]
    default: Any
    description: str = ""
    searched: bool = True

    def check(self) -> None:
        if len(self.choices) == 0:
            raise ValueError("choices must not be empty")
        if self.default not in self.choices:
            raise ValueError(f"default {self.default!r} is not one of {list(self.choices)!r}")
        for c in self.choices:
            if not isinstance(c, (str, int, float, bool)) and c is not None:
                raise ValueError(f"choice {c!r} is not a str, int, float, bool or None")

    def validate(self, name: str, value: Any) -> Any:
        for c in self.choices:
            if value == c or (isinstance(value, str) and str(c).lower() == value.lower()):
                return c
        raise ConfigError(
            f"The '{name}' hyperparameter must be one of {list(self.choices)!r}; got {value!r} instead."
        )

    def describe(self) -> str:
        return f"one of {list(self.choices)!r}, default {self.default!r}" + UNSEARCHED_NOTE * (not self.searched)

    def to_dict(self) -> dict[str, Any]:
        return _with_searched({"type": "categorical", "choices": list(self.choices), "default": self.default},
                              self.searched)


Hyperparameter = Float | Int | Categorical


def _with_searched(out: dict[str, Any], searched: bool) -> dict[str, Any]:
    """``out``, with ``"searched": False`` for a hyperparameter a study holds at its default."""
    if not searched:
        out["searched"] = False
    return out


def validate_space(space: Any) -> dict[str, Hyperparameter]:
    """Check a declared search space and return it as a plain dict; raise ``ValueError``."""
    if not isinstance(space, Mapping):
        raise ValueError(f"search_space must be a mapping of names to Float/Int/Categorical; got {type(space).__name__}")
    out: dict[str, Hyperparameter] = {}
    for name, hp in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"hyperparameter name {name!r} must be a Python identifier")
        if not isinstance(hp, (Float, Int, Categorical)):
            raise ValueError(f"hyperparameter {name!r} must be a Float, Int or Categorical; got {hp!r}")
        try:
            hp.check()
        except ValueError as exc:
            raise ValueError(f"hyperparameter {name!r}: {exc}") from None
        out[name] = hp
    return out


def parse_value(text: str) -> Any:
    """Parse a command-line value: bool, int, float, or the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip()



def qualified(key: str) -> bool:
    """Whether a hyperparameter's name names its plugin (``optimizer.sgd.lr``, not ``optimizer.lr``):
    such a value is applied after, so over, the value for every plugin."""
    return key.count(".") >= 2
