"""Evaluation metrics (scikit-learn's definitions), and which direction each one is optimised in."""

from __future__ import annotations

import numpy as np

__all__ = ["evaluate", "METRICS", "direction"]

METRICS = {"log_loss": "minimize", "accuracy": "maximize", "roc_auc": "maximize", "f1": "maximize"}


def direction(metric: str) -> str:
    return METRICS[metric]


def evaluate(y: np.ndarray, proba: np.ndarray, n_classes: int,
             metrics: tuple[str, ...] | None = None) -> dict[str, float]:
    """log_loss, accuracy, roc_auc (two classes) and f1; ``metrics``: only those.

    The same numbers as scikit-learn's ``log_loss``, ``accuracy_score``, ``roc_auc_score`` and
    ``f1_score`` (``zero_division=0``) as its scorer ``"f1"`` computes it with two classes: the F1 of
    the second class (index 1, scikit-learn's ``pos_label=1``); with more, the macro average over
    classes (``"f1_macro"``). ``tests/test_metrics.py`` compares them. In
    numpy: scikit-learn's checks of its inputs took ~9 ms an evaluation, more than a9a's trials
    take to train when a batch of them shares its passes.
    """
    if len(y) == 0:
        return {}
    y = np.asarray(y, dtype=np.int64)
    wanted = set(METRICS if metrics is None else metrics)
    out: dict[str, float] = {}
    if "log_loss" in wanted:
        # clipped (a saturated probability costs at most log(1e15)), then renormalized
        out["log_loss"] = float(-np.log(_clip(proba)[np.arange(len(y)), y]).mean())
    predicted = proba.argmax(axis=1)
    if "accuracy" in wanted:
        out["accuracy"] = float((predicted == y).mean())
    if "roc_auc" in wanted and n_classes == 2:
        out["roc_auc"] = _binary_auc(y, proba[:, 1])
    if "f1" in wanted:
        per_class, present = _f1_per_class(y, predicted, n_classes)
        # macro: over the classes the rows hold or the model predicts, as scikit-learn's f1_score
        # (a class absent from a test file is no class the model got wrong)
        out["f1"] = float(per_class[1] if n_classes == 2 else per_class[present].mean())
    return out


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic, ties counted half (average ranks)."""
    from scipy.stats import rankdata

    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _f1_per_class(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each class's 2 TP / (2 TP + FP + FN) (0 for a class never seen nor predicted), and which
    classes were seen or predicted."""
    confusion = np.bincount(y * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)  # 2 TP + FP + FN
    present = denominator > 0
    return np.divide(2 * tp, denominator, out=np.zeros(n_classes), where=present), present


def _clip(proba: np.ndarray, low: float = 1e-15) -> np.ndarray:
    clipped = np.clip(proba, low, 1.0)
    return clipped / clipped.sum(axis=1, keepdims=True)
