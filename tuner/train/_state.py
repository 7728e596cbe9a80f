"""What training shows the outside: the callbacks' hooks, the state they see, the result.

Importing this module loads no torch (a study or a tracker can subclass :class:`Callback`
without it); :meth:`TrainingState.val_proba` imports it when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["Callback", "TrainingState", "FitResult"]


class Callback:
    """Hooks into :func:`tuner.train.fit` and :func:`tuner.train.fit_many`; every method is a
    no-op by default.

    A callback may raise to stop its trial (a pruner raises ``optuna.TrialPruned``): :func:`fit`
    re-raises it unchanged, :func:`fit_many` returns it as that trial's result.
    """

    def on_train_begin(self, state: TrainingState) -> None:
        """Before the first epoch."""

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        """After every epoch; ``logs`` holds ``epoch``, ``train_loss`` and (with validation data) ``val_loss``."""

    def on_train_end(self, state: TrainingState, result: FitResult) -> None:
        """Once the trial has stopped, with its result."""


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

    def val_proba(self) -> np.ndarray | None:
        """Class probabilities on the validation set for the current parameters."""
        if self.X_val is None:
            return None
        import torch

        from tuner.train._device import csr_rows, matmul

        with torch.no_grad():
            X = self.X_val
            if self.val_rows is not None:
                X = csr_rows(X, self.val_rows) if X.layout == torch.sparse_csr else X[self.val_rows]
            # float64 from the logits on: in float32, 1 - sigmoid(z) is exactly 0 from z ~ 17, and
            # those saturated scores tie (AUC) or clip (log loss) unlike the final model's metrics
            logits = (matmul(X, self.weight) + self.intercept).double()
            if self.n_classes == 2:
                proba = torch.stack([torch.sigmoid(-logits[:, 0]), torch.sigmoid(logits[:, 0])], dim=1)
            else:
                proba = torch.softmax(logits, dim=1)
            return proba.cpu().numpy()


@dataclass
class FitResult:
    """Fitted parameters (on the CPU, float64) and how training went.

    ``stop_reason`` is ``"converged"`` (the training objective stalled), ``"early_stopping"``
    (``monitor="val"``: the validation loss stalled; the best epoch's parameters are kept) or
    ``"max_epochs"``.
    """

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
        """Non-zero weights (a sparse penalty's selected features, times the output columns)."""
        return int(np.count_nonzero(self.weight))
