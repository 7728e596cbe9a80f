"""One logistic regression: :func:`fit`, a thin wrapper over :func:`tuner.train.fit_many` with K=1.

:func:`fit` minimises ``(1/n) sum_i s_i loss_i + penalty(W)`` for binary (sigmoid, one
output column) or multinomial (softmax, one column per class) logistic regression, over
dense or sparse CSR inputs, full-batch or in mini-batches. Callbacks see every epoch; that
is how search (report and prune) and tracking (log metrics) hook in without this module
knowing about them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tuner._plugin_api import Optimizer, Penalty
from tuner.train._config import TrainConfig
from tuner.train._loop import fit_many
from tuner.train._state import Callback, FitResult

__all__ = ["fit"]


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
    """Train one logistic regression (one trial of :func:`tuner.train.fit_many`).

    ``X`` is a dense array or scipy sparse matrix (already preprocessed), ``y`` integer class
    indices in ``[0, n_classes)``; ``penalty_params``/``optimizer_params`` hold the plugins'
    hyperparameters (one left out takes its declared default; an undeclared name is an error). By default
    (``TrainConfig(monitor="objective")``) training stops when the **training objective** has
    not improved by ``tol`` (relative) for ``patience`` epochs (a mini-batch optimizer first
    lowers its rate, up to twice), or after ``epochs`` epochs; with ``monitor="val"`` and
    validation data, when the validation log loss has not, and the best epoch's parameters are
    returned. ``init`` gives starting weights ``(W, b)`` (a warm start).

    Raises :class:`TrainingDivergedError` when the loss becomes NaN or infinite, a
    :class:`PluginError` naming the plugin when a plugin's code raised, and whatever a callback
    raised (a pruner's ``TrialPruned``).
    """
    config = config or TrainConfig()
    config.check()
    (out,) = fit_many(X, y, n_classes, penalty, [penalty_params], optimizer, [optimizer_params], config,
                      X_val=X_val, y_val=y_val, sample_weight=sample_weight, callbacks=[list(callbacks)],
                      classes=classes, init=[init])
    if isinstance(out, BaseException):
        raise out
    return out
