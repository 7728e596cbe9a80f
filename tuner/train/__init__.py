"""The trainer (fit -> epoch -> step), trials side by side, stopping rules, device placement, metrics.

Light to import: the configuration, the callback interface, the result type and the sizing
rules load no torch; the training functions and device helpers are resolved on first use
(PEP 562), so ``from tuner.train import TrainConfig`` costs no torch import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports
from tuner.train._config import TrainConfig
from tuner.train._metrics import METRICS, direction, evaluate
from tuner.train._sizing import (
    HESSIAN_MAX_PARAMS,
    HESSIAN_WORK,
    SMALL_WORK,
    auto_batch_size,
    batchable,
    n_params,
    rows_per_step,
    train_alone,
    work_size,
)
from tuner.train._state import Callback, FitResult, TrainingState
from tuner.train._stopping import Stopping
from tuner.train._weights import class_weights

if TYPE_CHECKING:
    from tuner.train._device import Placement, csr_rows, cuda_pays_off, matmul
    from tuner.train._loop import fit_many
    from tuner.train._penalties import half_squared_norm, soft_threshold, stack_params
    from tuner.train._trainer import fit

__all__ = [
    "TrainConfig", "Callback", "TrainingState", "FitResult", "fit", "fit_many", "Stopping",
    "auto_batch_size", "rows_per_step", "batchable", "train_alone", "work_size", "SMALL_WORK", "HESSIAN_MAX_PARAMS", "HESSIAN_WORK", "n_params", "stack_params", "half_squared_norm", "soft_threshold", "class_weights",
    "Placement", "matmul", "csr_rows", "cuda_pays_off", "evaluate", "METRICS", "direction",
]

_LAZY = {  # name -> module, imported on first use (these load torch)
    "fit": "tuner.train._trainer", "fit_many": "tuner.train._loop", "stack_params": "tuner.train._penalties", "half_squared_norm": "tuner.train._penalties",
    "soft_threshold": "tuner.train._penalties",
    "Placement": "tuner.train._device", "matmul": "tuner.train._device", "csr_rows": "tuner.train._device",
    "cuda_pays_off": "tuner.train._device",
}

__getattr__, __dir__ = lazy_exports("tuner.train", _LAZY, __all__)
