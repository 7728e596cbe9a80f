"""The training loop: plain PyTorch, nothing else.

:func:`fit` minimises ``(1/n) sum_i s_i loss_i + penalty(W)`` for binary (sigmoid, one
output column) or multinomial (softmax, one column per class) logistic regression, over
dense or sparse CSR inputs, full-batch or in mini-batches. Callbacks see every epoch; that
is how search (report and prune) and tracking (log metrics) hook in without this module
knowing about them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from tuner._plugin_api import Optimizer, Penalty
from tuner.errors import ConfigError
from tuner.train._device import csr_rows, matmul

__all__ = ["TrainConfig", "Callback", "TrainingState", "FitResult", "fit", "class_weights"]


@dataclass
class TrainConfig:
    """How to train: budget, stopping rule, batching, schedule, placement and seed."""

    epochs: int = 100
    batch_size: int | None = None
    """Rows a mini-batch step; ``None``: scaled with the data (``tuner.train._batched.auto_batch_size``)."""
    patience: int = 5
    tol: float = 1e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    monitor: Literal["val", "objective"] = "objective"
    """What early stopping watches: the training objective (train to the convex optimum; the
    validation split then only compares trials), or the validation loss (the best epoch's
    weights are restored; with a small validation split this tends to fit it by chance)."""
    class_weight: str | Mapping[Any, float] | None = None
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = 0

    def check(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"The 'epochs' parameter must be an integer >= 1; got {self.epochs!r} instead.")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ConfigError(f"The 'batch_size' parameter must be an integer >= 1 (or None: scaled with the data); got {self.batch_size!r} instead.")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ConfigError(f"The 'patience' parameter must be an integer >= 1; got {self.patience!r} instead.")
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ConfigError(f"The 'tol' parameter must be a number >= 0; got {self.tol!r} instead.")
        if self.monitor not in ("val", "objective"):
            raise ConfigError(f"The 'monitor' parameter must be 'val' or 'objective'; got {self.monitor!r} instead.")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"The 'schedule' parameter must be 'cosine' or 'constant'; got {self.schedule!r} instead.")


class Callback:
    """Hooks into :func:`fit`; every method is a no-op by default.

    A callback may raise to stop training (a pruner raises ``optuna.TrialPruned``); the
    exception propagates out of :func:`fit` unchanged.
    """

    def on_train_begin(self, state: TrainingState) -> None:
        pass

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, state: TrainingState, result: FitResult) -> None:
        pass


@dataclass
class TrainingState:
    """What callbacks can look at: the parameters being trained and the validation data."""

    weight: torch.Tensor
    intercept: torch.Tensor
    n_classes: int
    X_val: torch.Tensor | None = None
    y_val: np.ndarray | None = None
    epoch: int = 0
    val_rows: torch.Tensor | None = None
    """This trial's rows of ``X_val`` when trials side by side score different rows (``y_val``
    holds those rows' labels); None: every row."""

    @torch.no_grad()
    def val_proba(self) -> np.ndarray | None:
        """Class probabilities on the validation set for the current parameters."""
        if self.X_val is None:
            return None
        X = self.X_val
        if self.val_rows is not None:
            X = csr_rows(X, self.val_rows) if X.layout == torch.sparse_csr else X[self.val_rows]
        return _proba(_logits(X, self.weight, self.intercept), self.n_classes).cpu().double().numpy()


@dataclass
class FitResult:
    """Fitted parameters (on the CPU, float64) and how training went."""

    weight: np.ndarray
    intercept: np.ndarray
    objective: float
    history: list[dict[str, float]] = field(default_factory=list)
    epochs_run: int = 0
    best_epoch: int = 0
    fit_seconds: float = 0.0
    stop_reason: str = ""
    device: str = "cpu"

    @property
    def n_nonzero(self) -> int:
        return int(np.count_nonzero(self.weight))


def class_weights(y: np.ndarray, n_classes: int, spec: str | Mapping[Any, float] | None,
                  classes: Sequence[Any] | None = None) -> np.ndarray:
    """Per-class weights: ``balanced`` (n / (K * n_k), as scikit-learn), explicit, or ones."""
    if spec is None:
        return np.ones(n_classes)
    if isinstance(spec, str):
        if spec != "balanced":
            raise ConfigError(f"The 'class_weight' parameter must be 'balanced' or a mapping; got {spec!r} instead.")
        counts = np.bincount(y, minlength=n_classes).astype(float)
        return np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    labels = list(classes) if classes is not None else list(range(n_classes))
    out = np.ones(n_classes)
    for key, w in spec.items():
        matches = [i for i, c in enumerate(labels) if str(c) == str(key)]
        if not matches:
            raise ConfigError(f"The 'class_weight' parameter names class {key!r}, which is not one of {labels!r}.")
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ConfigError(f"The weight of class {key!r} must be a finite number >= 0; got {w!r} instead.")
        out[matches[0]] = float(w)
    return out


def _logits(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, XT: torch.Tensor | None = None) -> torch.Tensor:
    return matmul(X, W, XT) + b


def _proba(logits: torch.Tensor, n_classes: int) -> torch.Tensor:
    if n_classes == 2:
        p1 = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p1, p1], dim=1)
    return torch.softmax(logits, dim=1)


def fit(
    X: Any,
    y: np.ndarray,
    n_classes: int,
    penalty: Penalty,
    penalty_params: Mapping[str, Any],
    optimizer: Optimizer,
    optimizer_params: Mapping[str, Any],
    config: TrainConfig | None = None,
    *,
    X_val: Any = None,
    y_val: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    callbacks: Sequence[Callback] = (),
    classes: Sequence[Any] | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> FitResult:
    """Train one logistic regression (one trial of :func:`tuner.train._batched.fit_many`).

    ``X`` is a dense array or scipy sparse matrix (already preprocessed), ``y`` integer class
    indices in ``[0, n_classes)``. By default (``monitor="objective"``) training stops when the
    training objective has not improved by ``tol`` (relative) for ``patience`` epochs; with
    ``monitor="val"`` and validation data, when the validation log loss has not, and the best
    epoch's parameters are returned. ``init`` gives starting weights ``(W, b)`` (a warm start).
    Raises :class:`TrainingDivergedError` when the loss becomes NaN or infinite, and whatever a
    callback raised (a pruner's ``TrialPruned``).
    """
    from tuner.train._batched import fit_many

    config = config or TrainConfig()
    config.check()
    (out,) = fit_many(X, y, n_classes, penalty, [penalty_params], optimizer, [optimizer_params], config,
                      X_val=X_val, y_val=y_val, sample_weight=sample_weight, callbacks=[list(callbacks)],
                      classes=classes, init=[init])
    if isinstance(out, BaseException):
        raise out
    return out


SMALL_WORK = 16_000_000
"""Below this many stored feature values read by one step (times the trials side by side), one
thread is faster: on a small machine the intra-op thread pool costs more (milliseconds per op
when other processes are busy) than the arithmetic it shares out. Measured on the 2-core
machine: eight FISTA trials side by side on a9a (2.9M values a step) took 21.7 s with two
threads and 4.7 s with one (`benchmarks/RESULTS.md`, "Threads")."""


def work_size(X: Any) -> int:
    """Stored feature values: non-zeros of a sparse matrix, every entry of a dense one."""
    import scipy.sparse as sp

    return int(X.nnz) if sp.issparse(X) else int(np.prod(np.shape(X)))
