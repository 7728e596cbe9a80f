"""When one trial stops: tolerance on the monitored loss, patience, learning-rate drops on a
plateau, divergence. (Max epochs is the loop's bound: a trial never judged done stops there.)

One :class:`Stopping` per trial; the loop asks it after every epoch and acts on the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tuner.train._config import TrainConfig

__all__ = ["Stopping", "Verdict", "DIVERGENCE_FACTOR", "PLATEAU_FACTOR", "PLATEAU_DROPS"]

DIVERGENCE_FACTOR = 1e3
"""Training diverged when its objective exceeds this multiple of the objective at zero weights, or
at its warm start when that is higher (a convex loss that a working optimizer starts from can
only go down from there)."""

PLATEAU_FACTOR = 0.1
PLATEAU_DROPS = 2
"""When the training objective of a mini-batch optimizer stalls for ``patience`` epochs, its
learning rate is multiplied by ``PLATEAU_FACTOR`` (up to ``PLATEAU_DROPS`` times) before
training counts as converged: a stall at a large rate is the rate's noise floor (on a9a the
default SGD stopped 1-15% above the optimum; with the drops, within 0.1%)."""

Verdict = Literal["improved", "wait", "drop_lr", "stop"]
"""What an epoch means for a trial: a new best, no progress yet, lower the rate, or stop."""


@dataclass
class Stopping:
    """One trial's stopping rule and its bookkeeping.

    ``watch_val``: the validation loss is monitored (else the training objective);
    ``may_drop_lr``: a stall lowers the learning rate first (mini-batch optimizers watching the
    objective); ``start``: the objective at zero weights (or at the warm start, when higher),
    against which divergence is judged.
    """

    tol: float
    patience: int
    watch_val: bool
    may_drop_lr: bool
    start: float
    best_value: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    lr_drops: int = 0
    reason: str = "max_epochs"

    @classmethod
    def for_trial(cls, config: TrainConfig, start: float, *, has_val: bool, full_batch: bool) -> Stopping:
        """The rule ``config`` asks for, for a trial whose objective at its start (zero weights, or a
        higher warm start) is ``start``."""
        watch_val = has_val and config.monitor == "val"
        return cls(tol=config.tol, patience=config.patience, watch_val=watch_val,
                   may_drop_lr=not full_batch and not watch_val, start=start)

    @property
    def blowup(self) -> float:
        """The objective above which the trial diverged."""
        return DIVERGENCE_FACTOR * max(self.start, 1e-3)

    def diverged(self, objective: float, weights_finite: bool) -> bool:
        """Whether the epoch's objective (or a weight) is no longer finite, or far above the start."""
        return not math.isfinite(objective) or not weights_finite or objective > self.blowup

    def judge(self, epoch: int, monitored: float) -> Verdict:
        """The verdict on an epoch whose monitored value is ``monitored``."""
        best = self.best_value
        if not math.isfinite(best) or monitored < best - self.tol * abs(best):
            self.best_value, self.best_epoch, self.bad_epochs = monitored, epoch, 0
            return "improved"
        self.bad_epochs += 1
        if self.bad_epochs < self.patience:
            return "wait"
        if self.may_drop_lr and self.lr_drops < PLATEAU_DROPS:
            # A stall of a mini-batch optimizer is the noise floor of its learning rate, not the optimum.
            self.lr_drops, self.bad_epochs = self.lr_drops + 1, 0
            return "drop_lr"
        self.reason = "early_stopping" if self.watch_val else "converged"
        return "stop"
