"""NumPy scalars read as the Python numbers they hold.

A value taken from an array (``np.arange(1, 6)``, a ``GridSearchCV`` grid, ``df["n"].max()``)
is an ``np.int64`` or ``np.float32``, not an ``int`` or a ``float``: it must be taken like the
literal, and stored (JSON, SQL, MLflow) as one.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

__all__ = ["plain", "python_numbers", "is_count"]

F = TypeVar("F", bound=Callable[..., Any])


def plain(value: Any) -> Any:
    """``value`` as a Python ``int``/``float``/``bool`` when it is a NumPy scalar, a dict with its
    keys and values so (``class_weight={np.int64(1): np.float32(2)}``); else as it is."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def is_count(value: Any) -> bool:
    """Whether ``value`` is a whole number (Python's or NumPy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def python_numbers(func: F) -> F:
    """Decorate a function so that its NumPy-scalar keyword arguments arrive as Python numbers."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **{k: plain(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]
