"""How big a step is: rows a step reads, the automatic mini-batch size, whether trials can
share a step, and how many threads a step is worth. No torch at import."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner.train._busy import others_busy  # imported with the trainer: the first fit's load is measured since then

if TYPE_CHECKING:
    from tuner._plugin_api import Optimizer, Penalty
    from tuner.train._config import TrainConfig

__all__ = ["auto_batch_size", "rows_per_step", "batchable", "train_alone", "work_size", "one_thread_pays", "SMALL_WORK",
           "MIN_STEPS_PER_EPOCH", "MAX_STEPS_PER_EPOCH", "MAX_AUTO_BATCH", "MIN_AUTO_BATCH", "HESSIAN_MAX_PARAMS", "HESSIAN_WORK",
           "n_params"]

MIN_STEPS_PER_EPOCH = 32
"""The automatic mini-batch size gives an epoch at least this many steps (small data) ..."""
MAX_AUTO_BATCH = {"cpu": 256, "cuda": 4096}
"""... and at most this many rows a step, by device: on a GPU a step costs a launch whatever
its size, so large batches keep the device busy; on a CPU, 256 rows a step is what the
stochastic optimizers' default learning rates were tuned for ..."""
MAX_STEPS_PER_EPOCH = 256
"""... up to this many steps an epoch: larger data gets larger batches (a power of two) so that
an epoch stays within it. A step's cost on a CPU is mostly fixed (framework dispatch, ~0.6 ms
on this project's 2-core machine), so at 256 rows an epoch of a large table was mostly overhead:
kddcup99's 395,216 training rows (118 dense features, 23 classes), Adam, 100 epochs: 138 s at 256
rows a step, 41 s at 2,048 (lr scaled by ~sqrt(8), objective 2.8% higher); SGD 119 s against
40 s (0.5% higher). The learning rates a study searches adapt to the batch size; a9a and SST-2
(26,048 and 53,879 training rows) keep 256."""
MIN_AUTO_BATCH = 16

SMALL_WORK = 100_000
"""Below this many stored feature values read by one step (times the trials side by side), one
thread is as fast as two: the ops are too small for the intra-op pool to share out (a mini-batch
step of 256 rows). Above it, on a quiet machine, two threads win: on the 2-core machine a9a's
FISTA (365,000 values a step) 2.24 s with one thread and 1.68 s with two, eight trials side by
side 4.82 s and 3.33 s, SST-2's (824,000 values, two trials) 12.8 s and 8.2 s. On a busy machine
(:func:`tuner.train._busy.others_busy`) one thread always: the pool's threads then wait for
cores, and the same eight a9a trials took 21.7 s with two threads against 4.7 s with one."""


HESSIAN_MAX_PARAMS = 2048
"""The most parameters a trial may have for the trainer to offer its Hessian (``(p + 1) * c``):
K trials keep K ``P x P`` float64 matrices (32 trials at 2,048 parameters: 1 GiB)."""

HESSIAN_WORK = 4_000_000_000
"""``rows x parameters^2`` up to which a default study searches the solvers that use the Hessian:
one Hessian costs about that many multiply-adds (a9a: 32,561 rows x 124^2 = 5e8, ~15 ms a trial
on one core; at this bound ~0.1 s a trial, a few per fit)."""


def n_params(p: int, c: int) -> int:
    """Parameters of one trial: ``(p + 1) * c`` (weights and intercept)."""
    return (p + 1) * c


def auto_batch_size(n_rows: int, device: str = "cpu") -> int:
    """The mini-batch size when none is given: a power of two, at most ``MAX_AUTO_BATCH`` for
    the device, and small enough for ``MIN_STEPS_PER_EPOCH`` steps an epoch (341 rows: 16);
    past ``MAX_AUTO_BATCH x MAX_STEPS_PER_EPOCH`` rows, large enough for at most
    ``MAX_STEPS_PER_EPOCH`` steps (395,216 rows on a CPU: 2,048)."""
    cap = MAX_AUTO_BATCH["cuda" if device.startswith("cuda") else "cpu"]
    want = max(MIN_AUTO_BATCH, n_rows // MIN_STEPS_PER_EPOCH)
    size = min(cap, 2 ** int(math.floor(math.log2(want))))
    if n_rows > size * MAX_STEPS_PER_EPOCH:
        size = 2 ** int(math.ceil(math.log2(math.ceil(n_rows / MAX_STEPS_PER_EPOCH))))
    return int(size)


def rows_per_step(n_rows: int, optimizer: Optimizer, config: TrainConfig, device: str = "cpu") -> int:
    """Rows one step of ``optimizer`` reads: every row (full batch), else the configured or
    automatic mini-batch size."""
    if optimizer.full_batch:
        return n_rows
    return min(config.batch_size or auto_batch_size(n_rows, device), n_rows)


_ALONE: dict[int, object] = {}
"""id -> plugin (kept alive so that its id stays its own): plugins whose trials train one at a
time in this process, whatever they declare (:func:`train_alone`)."""


def train_alone(plugin: object) -> None:
    """From now on in this process, train ``plugin``'s trials one at a time: it declares
    ``supports_batch`` but failed a side-by-side check (its trials would change each other)."""
    _ALONE[id(plugin)] = plugin


def batchable(penalty: Penalty, optimizer: Optimizer) -> bool:
    """Whether trials of this pair can be trained side by side (both plugins declare it, and
    neither was sent to train alone by :func:`train_alone`)."""
    return bool(getattr(penalty, "supports_batch", False) and getattr(optimizer, "supports_batch", False)
                and id(penalty) not in _ALONE and id(optimizer) not in _ALONE)


def work_size(X: Any) -> int:
    """Stored feature values: non-zeros of a sparse matrix, every entry of a dense one."""
    import scipy.sparse as sp

    return int(X.nnz) if sp.issparse(X) else int(np.prod(np.shape(X)))


def one_thread_pays(X: Any, k_trials: int, optimizer: Optimizer, config: TrainConfig) -> bool:
    """Whether a step of ``k_trials`` trials on ``X`` reads fewer than :data:`SMALL_WORK` values, or
    other processes keep the machine busy."""
    n_rows = max(int(np.shape(X)[0]), 1)
    small = work_size(X) * k_trials * rows_per_step(n_rows, optimizer, config) / n_rows < SMALL_WORK
    return small or others_busy()
