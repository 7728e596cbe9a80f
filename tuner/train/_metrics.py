"""Evaluation metrics (scikit-learn's), and which direction each one is optimised in."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["evaluate", "METRICS", "direction"]

METRICS = {"log_loss": "minimize", "accuracy": "maximize", "roc_auc": "maximize", "f1": "maximize"}


def direction(metric: str) -> str:
    return METRICS[metric]


def evaluate(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """log_loss, accuracy, and roc_auc (binary) or f1 (macro F1, multiclass)."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    if len(y) == 0:
        return {}
    labels = list(range(n_classes))
    out: dict[str, Any] = {
        # clipped (a saturated probability costs at most log(1e15)), then renormalized: scikit-learn
        # warns about rows that do not sum to one
        "log_loss": float(log_loss(y, _clip(proba), labels=labels)),
        "accuracy": float(accuracy_score(y, proba.argmax(axis=1))),
    }
    if n_classes == 2:
        out["roc_auc"] = float(roc_auc_score(y, proba[:, 1])) if len(np.unique(y)) == 2 else float("nan")
        out["f1"] = float(f1_score(y, proba.argmax(axis=1), labels=labels, average="macro", zero_division=0))
    else:
        out["f1"] = float(f1_score(y, proba.argmax(axis=1), labels=labels, average="macro", zero_division=0))
    return out


def _clip(proba: np.ndarray, low: float = 1e-15) -> np.ndarray:
    clipped = np.clip(proba, low, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)
