"""Trials side by side: K logistic regressions trained by one tensor program.

The weights of K trials are one leaf with a leading trial axis, ``(K, n_features, n_outputs)``
(stored feature-major, so the product with the data is one ``(n, p) @ (p, K * n_outputs)``
product without a copy); per-trial hyperparameters are ``(K, 1, 1)`` tensors (the plugin
contract in :mod:`tuner._plugin_api`). One pass over the data serves every trial, and each
trial keeps its own stopping rule, learning-rate drops, divergence check and callbacks: a
trial that stops, is pruned or diverges is frozen (its column no longer changes) and the others
go on. A pair of plugins that does not declare ``supports_batch`` trains one trial at a time
with the single-trial shapes.

Per-epoch, not per-step, overhead: the rows are permuted once an epoch and mini-batches are
contiguous slices of the permuted copy; losses accumulate on the device, and the host reads
them once an epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tuner._plugin_api import Optimizer, Penalty, compatibility_reason
from tuner.errors import ConfigError, IncompatiblePluginsError, PluginError, TrainingDivergedError
from tuner.train._device import Placement, csr_rows, csr_slice, matmul

__all__ = ["fit_many", "batchable", "auto_batch_size", "rows_per_step", "stack_params"]

DIVERGENCE_FACTOR = 1e3
"""Training diverged when its objective exceeds this multiple of the objective at zero weights
(a convex loss that a working optimizer starts from can only go down from there)."""

PLATEAU_FACTOR = 0.1
PLATEAU_DROPS = 2
"""When the training objective of a mini-batch optimizer stalls for ``patience`` epochs, its
learning rate is multiplied by ``PLATEAU_FACTOR`` (up to ``PLATEAU_DROPS`` times) before
training counts as converged: a stall at a large rate is the rate's noise floor (on a9a the
default SGD stopped 1-15% above the optimum; with the drops, within 0.1%)."""

MIN_STEPS_PER_EPOCH = 32
"""The automatic mini-batch size gives an epoch at least this many steps (small data) ..."""
MAX_AUTO_BATCH = {"cpu": 256, "cuda": 4096}
"""... and at most this many rows a step, by device: on a GPU a step costs a launch whatever
its size, so large batches keep the device busy; on a CPU, 256 rows a step is what the
stochastic optimizers' default learning rates were tuned for."""
MIN_AUTO_BATCH = 16


def auto_batch_size(n_rows: int, device: str = "cpu") -> int:
    """The mini-batch size when none is given: a power of two, at most ``MAX_AUTO_BATCH`` for
    the device, and small enough for ``MIN_STEPS_PER_EPOCH`` steps an epoch (341 rows: 16)."""
    cap = MAX_AUTO_BATCH["cuda" if device.startswith("cuda") else "cpu"]
    want = max(MIN_AUTO_BATCH, n_rows // MIN_STEPS_PER_EPOCH)
    return int(min(cap, 2 ** int(math.floor(math.log2(want)))))


def rows_per_step(n_rows: int, optimizer: Optimizer, config: Any, device: str = "cpu") -> int:
    """Rows one step of ``optimizer`` reads: every row (full batch), else the configured or
    automatic mini-batch size."""
    if optimizer.full_batch:
        return n_rows
    return min(config.batch_size or auto_batch_size(n_rows, device), n_rows)


def batchable(penalty: Penalty, optimizer: Optimizer) -> bool:
    """Whether trials of this pair can be trained side by side (both plugins declare it)."""
    return bool(getattr(penalty, "supports_batch", False) and getattr(optimizer, "supports_batch", False))


def stack_params(values: Sequence[Mapping[str, Any]], dtype: torch.dtype, device: torch.device,
                 what: str = "hyperparameter") -> dict[str, Any]:
    """K trials' hyperparameters as ``(K, 1, 1)`` tensors (numbers and booleans) or one shared
    value (anything else, which must then be equal in every trial)."""
    if not values:
        return {}
    out: dict[str, Any] = {}
    for name in values[0]:
        column = [v[name] for v in values]
        if all(isinstance(x, (bool, int, float, np.number, np.bool_)) for x in column):
            out[name] = torch.tensor([float(x) for x in column], dtype=dtype, device=device).view(-1, 1, 1)
        elif all(x == column[0] for x in column):
            out[name] = column[0]
        else:
            raise ConfigError(f"The {what} {name!r} differs between trials trained side by side ({column!r}) and is "
                              "not a number; group such trials by it.")
    return out


@dataclass
class _Trial:
    """One trial's bookkeeping inside :func:`fit_many`."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    lr_drops: int = 0
    best_params: tuple[torch.Tensor, torch.Tensor] | None = None
    stop_reason: str = "max_epochs"
    done: bool = False
    error: BaseException | None = None
    seconds: float = 0.0


class _Penalties:
    """The penalties of K trials side by side: each plugin applied to its own trials' columns.

    Trials of one optimizer may differ in penalty (l1, l2, elastic net, none): one product with
    the data still serves them all, and each penalty sees only the weights of its trials."""

    def __init__(self, per_trial: Sequence[Penalty], params: Sequence[Mapping[str, Any]], batched: bool,
                 dtype: torch.dtype, device: torch.device) -> None:
        self.k = len(per_trial)
        members: dict[str, tuple[Penalty, list[int]]] = {}
        for k, pen in enumerate(per_trial):
            members.setdefault(pen.name, (pen, []))[1].append(k)
        self.groups: list[tuple[Penalty, torch.Tensor | None, Any]] = []
        for pen, idx in members.values():
            chosen = [params[k] for k in idx]
            values = stack_params(chosen, dtype, device, f"penalty '{pen.name}' hyperparameter") if batched \
                else dict(chosen[0])
            whole = len(idx) == self.k
            self.groups.append((pen, None if whole else torch.tensor(idx, device=device), values))
        self.has_prox = any(pen.has_prox for pen, _, _ in self.groups)
        self.elementwise = any(pen.elementwise_prox and pen.has_prox for pen, _, _ in self.groups)

    def _values(self, W: torch.Tensor, method: str) -> torch.Tensor:
        out: torch.Tensor | None = None
        for pen, idx, values in self.groups:
            what = f"Penalty '{pen.name}' {method}"
            if idx is None:
                return _per_trial(getattr(pen, method)(W, values), self.k, what)
            part = _per_trial(getattr(pen, method)(W[idx], values), len(idx), what)
            out = (W.new_zeros(self.k) if out is None else out).index_add(0, idx, part)
        assert out is not None
        return out

    def smooth(self, W: torch.Tensor) -> torch.Tensor:
        """Per trial: the differentiable part of its penalty, shape ``(K,)``."""
        return self._values(W, "smooth_value")

    def nonsmooth(self, W: torch.Tensor) -> torch.Tensor:
        """Per trial: the non-smooth part's value, shape ``(K,)``."""
        return self._values(W, "nonsmooth_value")

    def prox(self, W: torch.Tensor, step: Any, coordinate_step: Any = None) -> torch.Tensor:
        """Each trial's proximal operator with its step: ``coordinate_step`` (shaped like ``W``)
        for an elementwise prox when the optimizer gives one, else ``step``."""
        out = None
        for pen, idx, values in self.groups:
            if not pen.has_prox:
                continue
            chosen = coordinate_step if (pen.elementwise_prox and coordinate_step is not None) else step
            if idx is None:
                return pen.prox(W, chosen, values)
            sub = chosen[idx] if isinstance(chosen, torch.Tensor) and chosen.dim() > 0 else chosen
            out = W.clone() if out is None else out
            out[idx] = pen.prox(W[idx], sub, values)
        return W if out is None else out


def _per_trial(value: Any, k: int, what: str) -> torch.Tensor:
    """A penalty's value as one number per trial."""
    if not isinstance(value, torch.Tensor):
        raise PluginError(f"{what} must return a tensor; got {type(value).__name__}.")
    if value.dim() == 0:
        if k != 1:
            raise PluginError(f"{what} returned one value for {k} trials side by side; reduce over the last two "
                              "dimensions only (shape (K,)).")
        return value.reshape(1)
    return value.reshape(k)


def fit_many(
    X: Any,
    y: np.ndarray,
    n_classes: int,
    penalty: Penalty | Sequence[Penalty],
    penalty_params: Sequence[Mapping[str, Any]],
    optimizer: Optimizer,
    optimizer_params: Sequence[Mapping[str, Any]],
    config: Any,
    *,
    X_val: Any = None,
    y_val: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    column_weight: np.ndarray | None = None,
    val_column_weight: np.ndarray | None = None,
    callbacks: Sequence[Sequence[Any]] | None = None,
    classes: Sequence[Any] | None = None,
    init: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> list[Any]:
    """Train ``K = len(penalty_params)`` logistic regressions of one penalty/optimizer pair at once.

    Each trial k minimises ``(1/n_k) sum_i s_i m_ik loss_ik(W_k, b_k) + penalty(W_k)``, where
    ``m = column_weight`` (``(n, K)``, default ones; cross-validation folds are 0/1 columns)
    and ``n_k = sum_i m_ik``. ``val_column_weight`` (``(n_val, K)``) weights the validation rows
    per trial likewise. ``callbacks[k]`` are trial k's callbacks; ``init[k]`` optional starting
    weights ``(W (p, c), b (c,))``. Returns, per trial, a :class:`~tuner.train._trainer.FitResult`,
    or the exception that stopped that trial (a callback's, e.g. a pruner's, or
    :class:`TrainingDivergedError`). A ``BaseException`` that is not an ``Exception`` (an
    interrupt) stops every trial and propagates.
    """
    k_trials = len(penalty_params)
    if k_trials < 1 or len(optimizer_params) != k_trials:
        raise ConfigError("fit_many needs as many optimizer as penalty parameter sets, at least one.")
    pens = [penalty] * k_trials if isinstance(penalty, Penalty) else list(penalty)
    if len(pens) != k_trials:
        raise ConfigError("fit_many needs one penalty (or one per trial).")
    for pen in {p.name: p for p in pens}.values():
        reason = compatibility_reason(pen, optimizer)
        if reason:
            raise IncompatiblePluginsError(
                f"Cannot train with penalty '{pen.name}' and optimizer '{optimizer.name}': {reason}.")
    if n_classes < 2:
        raise ConfigError("Logistic regression needs at least two classes.")
    batched = all(batchable(pen, optimizer) for pen in pens)
    if k_trials > 1 and not batched:
        names = ", ".join(sorted({f"{pen.name}:{optimizer.name}" for pen in pens if not batchable(pen, optimizer)}))
        raise ConfigError(f"The pair {names} does not support trials side by side (supports_batch); train its "
                          "trials one at a time.")
    callbacks = [list(c) for c in callbacks] if callbacks else [[] for _ in range(k_trials)]
    from tuner.train._trainer import SMALL_WORK, work_size

    threads = torch.get_num_threads()
    n_rows = max(int(np.shape(X)[0]), 1)
    work = work_size(X)
    if work * k_trials * rows_per_step(n_rows, optimizer, config) / n_rows < SMALL_WORK:  # a step's values, x K
        torch.set_num_threads(1)
    try:
        return _fit_many(X, y, n_classes, pens, penalty_params, optimizer, optimizer_params, config, batched, work,
                         X_val=X_val, y_val=y_val, sample_weight=sample_weight, column_weight=column_weight,
                         val_column_weight=val_column_weight, callbacks=callbacks, classes=classes, init=init)
    finally:
        torch.set_num_threads(threads)


def _fit_many(X: Any, y: np.ndarray, n_classes: int, pens: list[Penalty], penalty_params: Sequence[Mapping[str, Any]],
              optimizer: Optimizer, optimizer_params: Sequence[Mapping[str, Any]], config: Any, batched: bool,
              work: int, *,
              X_val: Any, y_val: np.ndarray | None, sample_weight: np.ndarray | None,
              column_weight: np.ndarray | None, val_column_weight: np.ndarray | None,
              callbacks: Sequence[Sequence[Any]], classes: Sequence[Any] | None,
              init: Sequence[tuple[np.ndarray, np.ndarray] | None] | None) -> list[Any]:
    """:func:`fit_many` once the arguments are checked and the thread count set."""
    from tuner.train._trainer import FitResult, TrainingState, class_weights

    k_trials = len(penalty_params)

    place = Placement.resolve(config.device, config.dtype, work=work * k_trials, rows=int(np.shape(X)[0]),
                              full_batch=optimizer.full_batch)
    torch.manual_seed(config.seed)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    started = time.perf_counter()

    Xt = place.features(X)
    n, p = Xt.shape
    c = 1 if n_classes == 2 else n_classes
    K = k_trials
    y = np.asarray(y, dtype=np.int64)
    yt = place.vector(y, torch.long)
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    s = s * class_weights(y, n_classes, config.class_weight, classes)[y]
    if column_weight is not None:
        m = np.asarray(column_weight, dtype=np.float64).reshape(n, K)
        counts = m.sum(axis=0)
        if (counts <= 0).any():
            raise ConfigError("A trial has no training rows (a column of column_weight is all zero).")
        w_np = s[:, None] * m * (n / counts)[None, :]
    else:
        w_np = s
    wt = place.vector(w_np)
    has_val = X_val is not None and y_val is not None and len(y_val) > 0
    Xv = place.features(X_val) if has_val else None
    yv = place.vector(np.asarray(y_val, dtype=np.int64), torch.long) if has_val else None
    if has_val:
        vw = np.ones((len(y_val), K)) if val_column_weight is None else \
            np.asarray(val_column_weight, dtype=np.float64).reshape(len(y_val), K)
        vwt = place.vector(vw / vw.sum(axis=0, keepdims=True).clip(min=1e-300))

    # The leaves. Batched: (K, p, c) stored feature-major, so W.permute(1, 0, 2) is contiguous.
    if batched:
        W = torch.zeros(p, K, c, dtype=place.dtype, device=place.device).permute(1, 0, 2).requires_grad_()
        b = torch.zeros(K, 1, c, dtype=place.dtype, device=place.device, requires_grad=True)
        W3, b3 = W, b
        oparams = stack_params(optimizer_params, place.dtype, place.device,
                               f"optimizer '{optimizer.name}' hyperparameter")
    else:
        W = torch.zeros(p, c, dtype=place.dtype, device=place.device, requires_grad=True)
        b = torch.zeros(c, dtype=place.dtype, device=place.device, requires_grad=True)
        W3, b3 = W.unsqueeze(0), b.view(1, 1, c)
        oparams = dict(optimizer_params[0])
    penalty = _Penalties(pens, penalty_params, batched, place.dtype, place.device)
    if init is not None:
        with torch.no_grad():
            for k, start in enumerate(init):
                if start is not None:
                    W3[k].copy_(torch.as_tensor(np.asarray(start[0]).reshape(p, c), dtype=place.dtype))
                    b3[k, 0].copy_(torch.as_tensor(np.asarray(start[1]).reshape(c), dtype=place.dtype))

    def prox(weight: torch.Tensor, step: Any) -> torch.Tensor:
        return penalty.prox(weight, step)

    opt = optimizer.build([{"params": [W], "penalized": True}, {"params": [b], "penalized": False}], oparams,
                          prox if penalty.has_prox else None)
    sparse = Xt.layout == torch.sparse_csr
    XT = place.features(X.T.tocsr()) if sparse and optimizer.full_batch else None

    def logits(Xb: torch.Tensor, XbT: torch.Tensor | None = None) -> torch.Tensor:
        flat = W3.permute(1, 0, 2).reshape(p, K * c)
        return (matmul(Xb, flat, XbT) + b3.reshape(1, K * c)).view(-1, K, c)

    def row_losses(z: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Each row's log loss for each trial, ``(nb, K)``, computed stably on the logits."""
        if c == 1:
            return F.softplus(z[..., 0]) - yb.to(z.dtype)[:, None] * z[..., 0]
        return torch.logsumexp(z, dim=2) - z.gather(2, yb.view(-1, 1, 1).expand(-1, K, 1))[..., 0]

    def data_loss(z: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor, nb: int) -> torch.Tensor:
        """Per trial: ``sum_i w_i loss_i / nb`` (``w``: ``(nb,)`` or ``(nb, K)``)."""
        weights = wb if wb.dim() == 2 else wb[:, None]
        return (row_losses(z, yb) * weights).sum(dim=0) / nb

    def smooth(Xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor, nb: int,
               XbT: torch.Tensor | None = None) -> torch.Tensor:
        return data_loss(logits(Xb, XbT), yb, wb, nb) + penalty.smooth(W)

    def nonsmooth() -> torch.Tensor:
        return penalty.nonsmooth(W.detach())

    @torch.no_grad()
    def full_objective() -> torch.Tensor:
        return smooth(Xt, yt, wt, n, XT) + nonsmooth()

    states = [TrainingState(W3[k], b3[k, 0], n_classes, Xv, None if y_val is None else np.asarray(y_val))
              for k in range(K)]
    if has_val and val_column_weight is not None:  # each trial's callbacks see only its own validation rows
        for k, state in enumerate(states):
            rows = np.flatnonzero(vw[:, k] > 0)
            state.y_val = np.asarray(y_val)[rows]
            state.val_rows = torch.as_tensor(rows, device=place.device)
    trials = [_Trial() for _ in range(K)]
    frozen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def freeze(k: int, error: BaseException | None = None, zero: bool = False) -> None:
        t = trials[k]
        t.done, t.error, t.seconds = True, error, time.perf_counter() - started
        with torch.no_grad():
            if zero:
                W3[k].zero_()
                b3[k].zero_()
            elif t.best_params is not None:
                W3[k].copy_(t.best_params[0])
                b3[k, 0].copy_(t.best_params[1])
            frozen[k] = (W3[k].detach().clone(), b3[k].detach().clone())
        if batched and hasattr(opt, "freeze"):  # the optimizer stops moving (and searching for) it
            mask = torch.zeros(K, dtype=torch.bool, device=place.device)
            mask[k] = True
            opt.freeze(mask)

    def restore_frozen() -> None:
        if frozen:
            with torch.no_grad():
                for k, (wk, bk) in frozen.items():
                    W3[k].copy_(wk)
                    b3[k].copy_(bk)

    for k in range(K):
        for cb in callbacks[k]:
            try:
                cb.on_train_begin(states[k])
            except Exception as exc:  # noqa: BLE001 - the trial's own failure, reported as its result
                freeze(k, exc)
                break

    zero_data = (math.log(2.0) if c == 1 else math.log(n_classes)) * (wt.sum(dim=0) / n)
    start_obj = (zero_data if zero_data.dim() else zero_data.expand(K)).tolist()
    blowup = [DIVERGENCE_FACTOR * max(v, 1e-3) for v in start_obj]
    groups_base = [g["lr"].clone() if isinstance(g.get("lr"), torch.Tensor) else g.get("lr") for g in opt.param_groups]
    lr_scale = torch.ones(K, 1, 1, dtype=place.dtype, device=place.device)
    batch = rows_per_step(n, optimizer, config, place.device.type)
    after_step_prox = penalty.has_prox and optimizer.prox_mode == "after_step"

    def apply_prox() -> None:
        with torch.no_grad():
            steps = optimizer.coordinate_step_size(opt, W) if penalty.elementwise else None
            W.copy_(penalty.prox(W, optimizer.step_size(opt), steps))

    def set_lrs(epoch_done: int) -> None:
        """Cosine decay over ``config.epochs`` (mini-batch optimizers), times each trial's drops."""
        if optimizer.full_batch:
            return
        factor = 0.5 * (1.0 + math.cos(math.pi * epoch_done / config.epochs)) if config.schedule == "cosine" else 1.0
        for g, base in zip(opt.param_groups, groups_base):
            if base is None:
                continue
            if isinstance(base, torch.Tensor):
                g["lr"] = base * lr_scale * factor
            else:
                g["lr"] = float(base) * float(lr_scale[0]) * factor

    def run_epoch() -> torch.Tensor:
        if optimizer.full_batch:
            def closure() -> torch.Tensor:
                opt.zero_grad()
                f = smooth(Xt, yt, wt, n, XT)
                f.sum().backward()
                return f.detach() if batched else f.sum()

            @torch.no_grad()
            def value_only() -> torch.Tensor:
                f = smooth(Xt, yt, wt, n, XT)
                return f if batched else f.sum()

            closure.value_only = value_only  # type: ignore[attr-defined]
            opt.step(closure)
            if after_step_prox:
                apply_prox()
            restore_frozen()
            return full_objective()
        perm = torch.randperm(n, generator=gen)
        perm_dev = perm.to(place.device)
        Xp = csr_rows(Xt, perm_dev) if sparse else Xt[perm_dev]
        yp, wp = yt[perm_dev], wt[perm_dev]
        bounds = list(range(0, n, batch)) + [n]
        ptr = Xp.crow_indices()[torch.tensor(bounds, device=place.device)].tolist() if sparse else None
        total = torch.zeros(K, dtype=place.dtype, device=place.device)
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            Xb = csr_slice(Xp, lo, hi, ptr[i], ptr[i + 1]) if sparse else Xp[lo:hi]
            opt.zero_grad()
            f = smooth(Xb, yp[lo:hi], wp[lo:hi], hi - lo)
            f.sum().backward()
            opt.step()
            if after_step_prox:
                apply_prox()
            total += f.detach() * (hi - lo)
        restore_frozen()
        with torch.no_grad():
            return total / n + nonsmooth()

    @torch.no_grad()
    def val_losses() -> list[float]:
        return (row_losses(logits(Xv), yv) * vwt).sum(dim=0).tolist()

    for epoch in range(1, config.epochs + 1):
        if all(t.done for t in trials):
            break
        train_obj = run_epoch().tolist()
        finite = torch.isfinite(W3.detach()).flatten(1).all(dim=1).tolist()
        vals = val_losses() if has_val else None
        watch_val = has_val and config.monitor == "val"
        for k, t in enumerate(trials):
            if t.done:
                continue
            obj = train_obj[k]
            if not math.isfinite(obj) or not finite[k] or obj > blowup[k]:
                shown = {kk: (float(v[k]) if isinstance(v, torch.Tensor) else v) for kk, v in oparams.items()}
                freeze(k, TrainingDivergedError(
                    f"The training loss became {obj:.6g} at epoch {epoch} (it was {start_obj[k]:.6g} at the start) "
                    f"with optimizer '{optimizer.name}' ({shown}); lower the learning rate."), zero=True)
                continue
            logs: dict[str, float] = {"epoch": epoch, "train_loss": obj}
            if vals is not None:
                logs["val_loss"] = vals[k]
            t.history.append(logs)
            states[k].epoch = epoch
            try:
                for cb in callbacks[k]:
                    cb.on_epoch_end(states[k], logs)
            except Exception as exc:  # noqa: BLE001 - e.g. a pruner: this trial stops, the others go on
                freeze(k, exc)
                continue
            monitored = logs["val_loss"] if watch_val else obj
            if not math.isfinite(t.best_value) or monitored < t.best_value - config.tol * abs(t.best_value):
                t.best_value, t.best_epoch, t.bad_epochs = monitored, epoch, 0
                if watch_val:
                    t.best_params = (W3[k].detach().clone(), b3[k, 0].detach().clone())
                continue
            t.bad_epochs += 1
            if t.bad_epochs < config.patience:
                continue
            if not optimizer.full_batch and not watch_val and t.lr_drops < PLATEAU_DROPS:
                # A stall of a mini-batch optimizer is the noise floor of its learning rate, not
                # the optimum: lower this trial's rate and go on.
                t.lr_drops, t.bad_epochs = t.lr_drops + 1, 0
                lr_scale[k] *= PLATEAU_FACTOR
                continue
            t.stop_reason = "early_stopping" if watch_val else "converged"
            freeze(k)
        set_lrs(epoch)

    for k, t in enumerate(trials):
        if not t.done:
            freeze(k)
    objectives = full_objective().tolist()
    results: list[Any] = []
    for k, t in enumerate(trials):
        if t.error is not None:
            results.append(t.error)
            continue
        result = FitResult(
            weight=W3[k].detach().cpu().double().numpy().copy(),
            intercept=b3[k, 0].detach().cpu().double().numpy().copy(),
            objective=objectives[k], history=t.history, epochs_run=len(t.history), best_epoch=t.best_epoch,
            fit_seconds=t.seconds, stop_reason=t.stop_reason, device=str(place.device),
        )
        try:
            for cb in callbacks[k]:
                cb.on_train_end(states[k], result)
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
            continue
        results.append(result)
    return results
