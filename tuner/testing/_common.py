"""The checks both kinds of plugin share: interface, name, description, search space."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from tuner._plugin_api import Optimizer, Penalty
from tuner._registry import NAME_PATTERN, declaration_problem
from tuner._space import validate_space
from tuner.testing._base import Check, Fail, Subject, hyperparameter_settings

__all__ = ["COMMON_CHECKS"]


def check_interface(s: Subject) -> str:
    base: type = Penalty if s.kind == "penalty" else Optimizer
    obj = s.obj
    instance: Any
    if inspect.isclass(obj):
        if not issubclass(obj, base):
            raise Fail(f"{obj.__module__}.{obj.__qualname__} is not a subclass of tuner.{base.__name__}")
        try:
            instance = obj()
        except Exception as exc:
            raise Fail(f"instantiating it with no arguments failed: {type(exc).__name__}: {exc}") from None
    elif isinstance(obj, base):
        instance = obj
    else:
        raise Fail(f"{obj!r} is neither a tuner.{base.__name__} subclass nor an instance of one")
    s.plugin, s.cls = instance, type(instance)
    cls: Any = type(instance)
    for attr in ("name", "description"):
        if not isinstance(getattr(instance, attr, None), str):
            raise Fail(f"its {attr!r} attribute must be a str; got {getattr(instance, attr, None)!r}")
    if not isinstance(instance.search_space, Mapping):
        raise Fail(f"search_space must be a mapping; got {type(instance.search_space).__name__}")
    problem = declaration_problem(instance)
    if problem:
        raise Fail(problem)
    if s.kind == "penalty":
        if cls.smooth_value is Penalty.smooth_value:
            raise Fail("it does not implement smooth_value()")
        if instance.has_prox and (cls.prox is Penalty.prox or cls.nonsmooth_value is Penalty.nonsmooth_value):
            raise Fail("has_prox is True but prox() or nonsmooth_value() is not implemented")
        done = "smooth_value" + (", nonsmooth_value and prox implemented" if instance.has_prox else " implemented")
    else:
        if cls.build is Optimizer.build:
            raise Fail("it does not implement build()")
        done = "build implemented"
    return f"a tuner.{base.__name__}; {done}"


def check_name(s: Subject) -> str:
    name = s.plugin.name
    if not name:
        raise Fail("its name is empty")
    if not NAME_PATTERN.match(name):
        raise Fail(f"its name {name!r} must be identifier-like (letters, digits, '_' or '-', not starting with a digit)")
    if s.entry_point_name is not None and name != s.entry_point_name:
        raise Fail(f"its name attribute {name!r} differs from its entry-point name {s.entry_point_name!r}")
    return f"{name!r}" + (" equals its entry-point name" if s.entry_point_name is not None else "")


def check_description(s: Subject) -> str:
    text = s.plugin.description
    if not text.strip():
        raise Fail("it has no description (a one-line string)")
    if "\n" in text.strip():
        raise Fail("its description must be one line")
    return "one line"


def check_search_space(s: Subject) -> str:
    try:
        space = validate_space(s.plugin.search_space)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    except Exception as exc:  # a malformed declaration (e.g. choices that are not a list)
        raise Fail(f"{type(exc).__name__}: {exc}") from None
    s.settings = hyperparameter_settings(space)[:1] if s.quick else hyperparameter_settings(space)
    return f"{len(space)} hyperparameter(s): {', '.join(space) or 'none'}"


COMMON_CHECKS: list[Check] = [
    ("interface", check_interface, ()),
    ("name", check_name, ("interface",)),
    ("description", check_description, ("interface",)),
    ("search_space", check_search_space, ("interface",)),
]
