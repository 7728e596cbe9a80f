"""How much each training and validation row counts: sample weights, class weights, and the
per-trial 0/1 columns of cross-validation folds. NumPy only."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tuner.errors import ConfigError

__all__ = ["class_weights", "row_weights", "val_row_weights"]


def class_weights(y: np.ndarray, n_classes: int, spec: str | Mapping[Any, float] | None,
                  classes: Sequence[Any] | None = None, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-class weights: ``balanced``, explicit, or ones.

    ``balanced`` is scikit-learn's: ``n / (K * n_k)`` with ``n_k`` the class's rows and ``K`` the
    classes present in ``y`` (a class missing from these rows neither weighs nor dilutes the
    others); with ``sample_weight``, rows are counted by their weights, as scikit-learn does."""
    if spec is None:
        return np.ones(n_classes)
    if isinstance(spec, str):
        if spec != "balanced":
            raise ConfigError(f"The 'class_weight' parameter must be 'balanced' or a mapping; got {spec!r} instead.")
        counts = np.bincount(y, weights=sample_weight, minlength=n_classes).astype(float)
        present = int((counts > 0).sum())
        return np.where(counts > 0, counts.sum() / (present * np.where(counts > 0, counts, 1.0)), 0.0)
    labels = list(classes) if classes is not None else list(range(n_classes))
    out = np.ones(n_classes)
    for key, w in spec.items():
        matches = [i for i, c in enumerate(labels) if _same_class(c, key)]
        if not matches:
            raise ConfigError(f"The 'class_weight' parameter names class {key!r}, which is not one of {labels!r}.")
        if not (isinstance(w, numbers.Real) and not isinstance(w, bool) and math.isfinite(w) and w >= 0):
            raise ConfigError(f"The weight of class {key!r} must be a finite number >= 0; got {w!r} instead.")
        out[matches[0]] = float(w)
    return out


def row_weights(y: np.ndarray, n_classes: int, k_trials: int, class_weight: str | Mapping[Any, float] | None, *,
                sample_weight: np.ndarray | None = None, column_weight: np.ndarray | None = None,
                classes: Sequence[Any] | None = None) -> np.ndarray:
    """Each training row's weight in the loss: ``(n,)``, or ``(n, K)`` with ``column_weight``.

    A trial's column is rescaled by ``n / n_k`` (``n_k`` its rows), so that its loss is the mean
    over its own rows."""
    n = len(y)
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    s = s * class_weights(y, n_classes, class_weight, classes, None if sample_weight is None else s)[y]
    if column_weight is None:
        return s
    m = np.asarray(column_weight, dtype=np.float64).reshape(n, k_trials)
    counts = m.sum(axis=0)
    if (counts <= 0).any():
        raise ConfigError("A trial has no training rows (a column of column_weight is all zero).")
    return s[:, None] * m * (n / counts)[None, :]


def val_row_weights(n_val: int, k_trials: int, val_column_weight: np.ndarray | None) -> np.ndarray:
    """Each validation row's raw weight per trial, ``(n_val, K)`` (ones by default)."""
    if val_column_weight is None:
        return np.ones((n_val, k_trials))
    return np.asarray(val_column_weight, dtype=np.float64).reshape(n_val, k_trials)


def _same_class(label: Any, key: Any) -> bool:
    """Whether a ``class_weight`` key names the class ``label``: as text, or as the same number
    (labels 1.0 are read as the class 1, so the key 1.0 names it too)."""
    if str(label) == str(key):
        return True
    numbers = (int, float, np.integer, np.floating)
    both = isinstance(label, numbers) and isinstance(key, numbers) and not isinstance(key, bool)
    return bool(both and float(label) == float(key))
