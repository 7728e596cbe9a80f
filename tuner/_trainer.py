"""The training loop: plain PyTorch, nothing else.

:func:`fit` minimises ``(1/n) sum_i s_i loss_i + penalty(W)`` for binary (sigmoid, one
output column) or multinomial (softmax, one column per class) logistic regression, over
dense or sparse CSR inputs, full-batch or in mini-batches. Callbacks see every epoch; that
is how search (report and prune) and tracking (log metrics) hook in without this module
knowing about them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._device import Placement, csr_rows, matmul
from ._plugin_api import Optimizer, Penalty, compatibility_reason
from .errors import ConfigError, IncompatiblePluginsError, TrainingDivergedError

__all__ = ["TrainConfig", "Callback", "TrainingState", "FitResult", "fit", "class_weights"]


@dataclass
class TrainConfig:
    """How to train: budget, stopping rule, batching, schedule, placement and seed."""

    epochs: int = 100
    batch_size: int = 256
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
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"The 'batch_size' parameter must be an integer >= 1; got {self.batch_size!r} instead.")
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

    def on_train_begin(self, state: "TrainingState") -> None:
        pass

    def on_epoch_end(self, state: "TrainingState", logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, state: "TrainingState", result: "FitResult") -> None:
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

    @torch.no_grad()
    def val_proba(self) -> np.ndarray | None:
        """Class probabilities on the validation set for the current parameters."""
        if self.X_val is None:
            return None
        return _proba(_logits(self.X_val, self.weight, self.intercept), self.n_classes).cpu().double().numpy()


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


def _data_loss(logits: torch.Tensor, y: torch.Tensor, s: torch.Tensor, n: int, n_classes: int) -> torch.Tensor:
    """``(1/n) sum_i s_i loss_i``, computed stably on logits.

    Written with softplus / logsumexp rather than ``F.binary_cross_entropy_with_logits``:
    the fused kernels are no faster here and, on small batches, their intra-op threading
    costs milliseconds per call on a busy 2-core machine.
    """
    if n_classes == 2:
        z = logits[:, 0]
        per = F.softplus(z) - y.to(z.dtype) * z
    else:
        per = torch.logsumexp(logits, dim=1) - logits.gather(1, y[:, None])[:, 0]
    return (per * s).sum() / n


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
) -> FitResult:
    """Train one logistic regression.

    ``X`` is a dense array or scipy sparse matrix (already preprocessed), ``y`` integer class
    indices in ``[0, n_classes)``. With validation data, training stops when the validation
    log loss has not improved by ``tol`` (relative) for ``patience`` epochs and the best
    epoch's parameters are returned; without, it stops when the training objective stops
    improving. Raises :class:`TrainingDivergedError` when the loss becomes NaN or infinite.
    """
    config = config or TrainConfig()
    config.check()
    threads = torch.get_num_threads()
    if work_size(X) < SMALL_WORK:
        torch.set_num_threads(1)
    try:
        return _fit(X, y, n_classes, penalty, penalty_params, optimizer, optimizer_params, config, X_val=X_val,
                    y_val=y_val, sample_weight=sample_weight, callbacks=callbacks, classes=classes)
    finally:
        torch.set_num_threads(threads)


DIVERGENCE_FACTOR = 1e3
"""Training diverged when its objective exceeds this multiple of the objective at zero weights
(a convex loss that a working optimizer starts from can only go down from there)."""

PLATEAU_FACTOR = 0.1
PLATEAU_DROPS = 2
"""When the training objective of a mini-batch optimizer stalls for ``patience`` epochs, its
learning rate is multiplied by ``PLATEAU_FACTOR`` (up to ``PLATEAU_DROPS`` times) before
training counts as converged: a stall at a large rate is the rate's noise floor (on a9a the
default SGD stopped 1-15% above the optimum; with the drops, within 0.1%)."""

SMALL_WORK = 2_000_000
"""Below this many stored feature values, one thread is faster: on a small machine the
intra-op thread pool costs more (milliseconds per op when other processes are busy) than
the arithmetic it shares out."""


def _prox_step(penalty: Penalty, optimizer: Optimizer, opt: torch.optim.Optimizer, W: torch.Tensor) -> Any:
    """The step of the proximal update after an optimizer step.

    ``optimizer.step_size(opt)`` (a number) in general; a tensor of per-weight steps when the
    optimizer's steps differ by coordinate (``coordinate_step_size``: Adam, RMSprop) and the
    penalty's prox is elementwise (``elementwise_prox``), which is the exact proximal step in
    the optimizer's own metric.
    """
    steps = optimizer.coordinate_step_size(opt, W) if penalty.elementwise_prox else None
    return optimizer.step_size(opt) if steps is None else steps


def work_size(X: Any) -> int:
    """Stored feature values: non-zeros of a sparse matrix, every entry of a dense one."""
    import scipy.sparse as sp

    return int(X.nnz) if sp.issparse(X) else int(np.prod(np.shape(X)))


def _fit(
    X: Any,
    y: np.ndarray,
    n_classes: int,
    penalty: Penalty,
    penalty_params: Mapping[str, Any],
    optimizer: Optimizer,
    optimizer_params: Mapping[str, Any],
    config: TrainConfig,
    *,
    X_val: Any,
    y_val: np.ndarray | None,
    sample_weight: np.ndarray | None,
    callbacks: Sequence[Callback],
    classes: Sequence[Any] | None,
) -> FitResult:
    reason = compatibility_reason(penalty, optimizer)
    if reason:
        raise IncompatiblePluginsError(f"Cannot train with penalty '{penalty.name}' and optimizer '{optimizer.name}': {reason}.")
    if n_classes < 2:
        raise ConfigError("Logistic regression needs at least two classes.")
    place = Placement.resolve(config.device, config.dtype)
    torch.manual_seed(config.seed)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    started = time.perf_counter()

    Xt = place.features(X)
    n, p = Xt.shape
    y = np.asarray(y, dtype=np.int64)
    yt = place.vector(y, torch.long)
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    s = s * class_weights(y, n_classes, config.class_weight, classes)[y]
    st = place.vector(s)
    has_val = X_val is not None and y_val is not None and len(y_val) > 0
    Xv = place.features(X_val) if has_val else None
    yv = place.vector(np.asarray(y_val, dtype=np.int64), torch.long) if has_val else None
    sv = torch.ones(len(y_val), dtype=place.dtype, device=place.device) if has_val else None

    k = 1 if n_classes == 2 else n_classes
    W = torch.zeros(p, k, dtype=place.dtype, device=place.device, requires_grad=True)
    b = torch.zeros(k, dtype=place.dtype, device=place.device, requires_grad=True)

    def prox(weight: torch.Tensor, step: float) -> torch.Tensor:
        return penalty.prox(weight, step, penalty_params)

    opt = optimizer.build(
        [{"params": [W], "penalized": True}, {"params": [b], "penalized": False}],
        optimizer_params,
        prox if penalty.has_prox else None,
    )
    scheduler = None
    if not optimizer.full_batch and config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)

    sparse = Xt.layout == torch.sparse_csr
    XT = place.features(X.T.tocsr()) if sparse and optimizer.full_batch else None

    def objective_smooth(Xb: torch.Tensor, yb: torch.Tensor, sb: torch.Tensor, nb: int,
                         XbT: torch.Tensor | None = None) -> torch.Tensor:
        return _data_loss(_logits(Xb, W, b, XbT), yb, sb, nb, n_classes) + penalty.smooth_value(W, penalty_params)

    @torch.no_grad()
    def full_objective() -> float:
        value = objective_smooth(Xt, yt, st, n) + penalty.nonsmooth_value(W, penalty_params)
        return float(value)

    state = TrainingState(W, b, n_classes, Xv, None if y_val is None else np.asarray(y_val))
    for cb in callbacks:
        cb.on_train_begin(state)

    start_obj = full_objective()  # at W = 0, b = 0: the weighted mean of log(K)
    blowup = DIVERGENCE_FACTOR * max(start_obj, 1e-3)
    history: list[dict[str, float]] = []
    best_value, best_epoch, bad_epochs, lr_drops = math.inf, 0, 0, 0
    best_params: tuple[torch.Tensor, torch.Tensor] | None = None
    stop_reason = "max_epochs"
    batch = n if optimizer.full_batch else min(config.batch_size, n)

    for epoch in range(1, config.epochs + 1):
        if optimizer.full_batch:
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = objective_smooth(Xt, yt, st, n, XT)
                loss.backward()
                return loss

            @torch.no_grad()
            def value_only() -> torch.Tensor:
                return objective_smooth(Xt, yt, st, n, XT)

            closure.value_only = value_only  # type: ignore[attr-defined]
            opt.step(closure)
            if penalty.has_prox and optimizer.prox_mode == "after_step":
                with torch.no_grad():
                    W.copy_(penalty.prox(W, _prox_step(penalty, optimizer, opt, W), penalty_params))
            train_obj = full_objective()
        else:
            order = torch.randperm(n, generator=gen).to(place.device)
            total = 0.0
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                Xb = csr_rows(Xt, rows) if sparse else Xt[rows]
                opt.zero_grad()
                loss = objective_smooth(Xb, yt[rows], st[rows], len(rows))
                loss.backward()
                opt.step()
                if penalty.has_prox and optimizer.prox_mode == "after_step":
                    with torch.no_grad():
                        W.copy_(penalty.prox(W, _prox_step(penalty, optimizer, opt, W), penalty_params))
                total += float(loss.detach()) * len(rows)
            train_obj = total / n + float(penalty.nonsmooth_value(W.detach(), penalty_params))
            if scheduler is not None:
                scheduler.step()
        if not math.isfinite(train_obj) or not bool(torch.isfinite(W).all()) or train_obj > blowup:
            raise TrainingDivergedError(
                f"The training loss became {train_obj:.6g} at epoch {epoch} (it was {start_obj:.6g} at the start) "
                f"with optimizer '{optimizer.name}' ({dict(optimizer_params)}); lower the learning rate."
            )
        logs: dict[str, float] = {"epoch": epoch, "train_loss": train_obj}
        if has_val:
            with torch.no_grad():
                logs["val_loss"] = float(_data_loss(_logits(Xv, W, b), yv, sv, len(y_val), n_classes))
        history.append(logs)
        state.epoch = epoch
        for cb in callbacks:
            cb.on_epoch_end(state, logs)

        watch_val = has_val and config.monitor == "val"
        monitored = logs["val_loss"] if watch_val else train_obj
        improved = not math.isfinite(best_value) or monitored < best_value - config.tol * abs(best_value)
        if improved:
            best_value, best_epoch, bad_epochs = monitored, epoch, 0
            if watch_val:
                best_params = (W.detach().clone(), b.detach().clone())
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                if not optimizer.full_batch and not watch_val and lr_drops < PLATEAU_DROPS:
                    # A mini-batch optimizer whose objective stalls sits on the noise floor of its
                    # learning rate, not at the optimum: lower the rate and go on. (Early stopping
                    # on the validation loss stops at once, as asked.)
                    lr_drops, bad_epochs = lr_drops + 1, 0
                    for group in opt.param_groups:
                        group["lr"] *= PLATEAU_FACTOR
                    if scheduler is not None:
                        scheduler.base_lrs = [lr * PLATEAU_FACTOR for lr in scheduler.base_lrs]
                    continue
                stop_reason = "early_stopping" if watch_val else "converged"
                break

    if best_params is not None:
        with torch.no_grad():
            W.copy_(best_params[0])
            b.copy_(best_params[1])
    result = FitResult(
        weight=W.detach().cpu().double().numpy().copy(),
        intercept=b.detach().cpu().double().numpy().copy(),
        objective=full_objective(),
        history=history,
        epochs_run=len(history),
        best_epoch=best_epoch,
        fit_seconds=time.perf_counter() - started,
        stop_reason=stop_reason,
        device=str(place.device),
    )
    for cb in callbacks:
        cb.on_train_end(state, result)
    return result
