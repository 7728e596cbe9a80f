"""JSON that strict parsers read: a metric that is not a number (NaN: ROC AUC of a one-class
test file) is ``null``, never Python's ``NaN`` token, which JavaScript's ``JSON.parse``, Go and
Java refuse."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "plain"]


def plain(obj: Any) -> Any:
    """``obj`` with NumPy scalars and arrays as Python values and non-finite floats as None."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`plain` ``(obj)``; anything else JSON cannot hold is written as text."""
    return json.dumps(plain(obj), allow_nan=False, default=str, **kwargs)
