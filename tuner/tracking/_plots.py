"""Study and model plots (PNG), drawn with Matplotlib's Agg canvas, from plain data.

The figures are built with the object-oriented API (``Figure`` + ``FigureCanvasAgg``), so
nothing here touches pyplot's global state or the process-wide backend. Each function
writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "optimization_history",
    "param_importances",
    "coefficients",
    "roc_curve",
    "confusion_matrix",
]

_DPI = 100


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def optimization_history(history: Sequence[Mapping[str, Any]], direction: str, metric: str,
                         path: str | Path) -> Path:
    """Every finished trial's value (complete: dots, best so far: line; pruned/failed: marks)."""
    fig = _figure(8, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    done = sorted((h for h in history if h.get("state") == "COMPLETE" and _finite(h.get("value"))),
                  key=lambda h: h["number"])
    if done:
        xs = [h["number"] for h in done]
        ys = [float(h["value"]) for h in done]
        ax.scatter(xs, ys, s=18, color="tab:blue", label=f"complete ({len(done)})", zorder=3)
        pick = np.minimum.accumulate if direction == "minimize" else np.maximum.accumulate
        ax.step(xs, pick(np.asarray(ys)), where="post", color="tab:red", label="best so far", zorder=2)
    for state, color in (("PRUNED", "tab:orange"), ("FAIL", "tab:gray")):
        marks = [h["number"] for h in history if h.get("state") == state]
        if marks:
            ax.scatter(marks, [ax.get_ylim()[0]] * len(marks) if done else [0] * len(marks), marker="|", s=80,
                       color=color, label=f"{state.lower()} ({len(marks)})", zorder=1)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"Optimization history ({direction})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def param_importances(importances: Mapping[str, float], path: str | Path, metric: str = "") -> Path:
    """Horizontal bars, most important parameter on top."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = _figure(7, 0.45 * len(items) + 1.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize="small")
    ax.set_xlabel("importance (fANOVA, normalized)")
    ax.set_title(f"Hyperparameter importances{' for ' + metric if metric else ''}")
    ax.set_xlim(0, max([v for _, v in items] + [0.0]) * 1.15 or 1)
    return _save(fig, path)


def coefficients(names: Sequence[str], coef: np.ndarray, classes: Sequence[Any], path: str | Path,
                 top: int = 15) -> Path:
    """The largest positive and negative weights with their feature names (terms for text).

    Binary: one panel (weights for class ``classes[1]``); multiclass: one panel per class
    (at most 12).
    """
    coef = np.asarray(coef, dtype=np.float64)
    if coef.ndim == 1:
        coef = coef[:, None]
    panels = [(f"class {classes[1]!s} vs {classes[0]!s}", coef[:, 0])] if coef.shape[1] == 1 else \
        [(f"class {c!s}", coef[:, j]) for j, c in enumerate(classes[:12])]
    per = top if len(panels) == 1 else max(4, top // 2)
    cols = 1 if len(panels) == 1 else min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(6.5 * cols, max(3.0, 0.22 * 2 * per + 1.2) * rows)
    for k, (title, w) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        nz = np.flatnonzero(w)
        pos = [i for i in nz[np.argsort(-w[nz])] if w[i] > 0][:per]
        neg = [i for i in nz[np.argsort(w[nz])] if w[i] < 0][:per]
        idx = sorted(set(pos) | set(neg), key=lambda i: w[i])
        ax.barh(range(len(idx)), [w[i] for i in idx], color=["tab:red" if w[i] < 0 else "tab:blue" for i in idx])
        ax.set_yticks(range(len(idx)))
        ax.set_yticklabels([_short(str(names[i])) for i in idx], fontsize="small")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{title}: {len(nz)} non-zero of {len(w)}", fontsize="medium")
        ax.set_xlabel("weight (standardized features)")
    return _save(fig, path)


def roc_curve(y_true: np.ndarray, score: np.ndarray, positive: Any, path: str | Path, split: str = "test") -> Path:
    """ROC curve of a binary model with its AUC."""
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc

    fig = _figure(5.5, 5)
    ax = fig.add_subplot(1, 1, 1)
    if len(np.unique(y_true)) == 2:
        fpr, tpr, _ = sk_roc(y_true, score)
        ax.plot(fpr, tpr, color="tab:blue", label=f"AUC = {roc_auc_score(y_true, score):.4f}")
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC on the {split} split (positive class {positive!s})")
    ax.legend(loc="lower right")
    return _save(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any], path: str | Path,
                     split: str = "test") -> Path:
    """Row-normalized confusion matrix with counts."""
    from sklearn.metrics import confusion_matrix as sk_cm

    k = len(classes)
    cm = sk_cm(y_true, y_pred, labels=list(range(k)))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(3 + 0.5 * k, 14)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046)
    labels = [_short(str(c), 12) for c in classes]
    ax.set_xticks(range(k))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(k))
    ax.set_yticklabels(labels, fontsize="small")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize="x-small",
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({split} split)")
    return _save(fig, path)


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
