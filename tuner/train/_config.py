"""How to train: :class:`TrainConfig`, the one owner of every training default.

The CLI, the public API and the study read their defaults from here (``TrainConfig()`` or
:meth:`TrainConfig.defaults`); nothing else states them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tuner._numbers import is_count, plain
from tuner.errors import ConfigError

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """How to train: budget, stopping rule, batching, schedule, placement and seed.

    By default (``monitor="objective"``) training stops when the **training objective** (loss
    plus penalty) has not improved by ``tol`` (relative) for ``patience`` epochs: the convex
    optimum, not the validation loss. A mini-batch optimizer first lowers its learning rate
    (up to twice, see :mod:`tuner.train._stopping`) before such a stall counts as converged.
    With ``monitor="val"`` and validation data, training stops on the validation log loss
    instead and the best epoch's parameters are kept. Training always stops after ``epochs``
    epochs, and a trial whose objective becomes NaN, infinite or far above its start diverged.
    """

    epochs: int = 100
    """Maximum number of epochs (passes over the training rows)."""
    batch_size: int | None = None
    """Rows a mini-batch step; ``None``: scaled with the data (:func:`tuner.train.auto_batch_size`).
    Full-batch optimizers (``full_batch``) always read every row."""
    patience: int = 5
    """Epochs without an improvement of ``tol`` before stopping (or lowering the rate)."""
    tol: float = 1e-4
    """Relative improvement of the monitored value that counts."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning-rate schedule of mini-batch optimizers over ``epochs``."""
    monitor: Literal["val", "objective"] = "objective"
    """What early stopping watches: the training objective (the default: train to the convex
    optimum; the validation split then only compares trials), or the validation loss (the best
    epoch's weights are restored; with a small validation split this tends to fit it by chance)."""
    class_weight: str | Mapping[Any, float] | None = None
    """``"balanced"``, a mapping class label -> weight, or ``None`` (every class weighs 1)."""
    device: str = "auto"
    """``"auto"`` (a GPU when the problem is large enough to pay), ``"cpu"`` or ``"cuda[:N]"``."""
    dtype: Literal["float32", "float64"] = "float32"
    """Floating-point type of the weights and the data on the device."""
    seed: int = 0
    """Seed of the row shuffling (and of torch's generator) during training."""

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option's default, by name (what a CLI or API shows and fills in)."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    def exact(self) -> TrainConfig:
        """This configuration tightened to reach the optimum to many digits (a reference solve):
        float64, a tolerance of 1e-8, patience 2, at most 200 epochs, stopping on the objective."""
        return dataclasses.replace(self, dtype="float64", tol=1e-8, patience=2, epochs=200, monitor="objective")

    def check(self) -> None:
        """Raise :class:`ConfigError`, naming the parameter, for a value out of its range (NumPy
        numbers are taken, and stored as the Python numbers they hold)."""
        for name in ("epochs", "batch_size", "patience", "tol", "seed"):
            setattr(self, name, plain(getattr(self, name)))
        if not is_count(self.epochs) or self.epochs < 1:
            raise ConfigError(f"The 'epochs' parameter must be an integer >= 1; got {self.epochs!r} instead.")
        if self.batch_size is not None and (not is_count(self.batch_size) or self.batch_size < 1):
            raise ConfigError(f"The 'batch_size' parameter must be an integer >= 1 (or None: scaled with the data); "
                              f"got {self.batch_size!r} instead.")
        if not is_count(self.patience) or self.patience < 1:
            raise ConfigError(f"The 'patience' parameter must be an integer >= 1; got {self.patience!r} instead.")
        if not (isinstance(self.tol, (int, float)) and not isinstance(self.tol, bool) and 0 <= self.tol < math.inf):
            raise ConfigError(f"The 'tol' parameter must be a finite number >= 0; got {self.tol!r} instead.")
        if self.monitor not in ("val", "objective"):
            raise ConfigError(f"The 'monitor' parameter must be 'val' or 'objective'; got {self.monitor!r} instead.")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"The 'schedule' parameter must be 'cosine' or 'constant'; got {self.schedule!r} instead.")
