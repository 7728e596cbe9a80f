"""Trials side by side: K logistic regressions trained by one tensor program (fit -> epoch -> step).

The weights of K trials are one leaf with a leading trial axis, ``(K, n_features, n_outputs)``
(stored feature-major, so the product with the data is one ``(n, p) @ (p, K * n_outputs)``
product without a copy); per-trial hyperparameters are ``(K, 1, 1)`` tensors (the plugin
contract in :mod:`tuner._plugin_api`). One pass over the data serves every trial, and each
trial keeps its own stopping rule (:class:`~tuner.train._stopping.Stopping`: tolerance,
patience, learning-rate drops, divergence) and callbacks: a trial that stops, is pruned or
diverges is frozen (its column no longer changes) and the others go on. A pair of plugins that
does not declare ``supports_batch`` trains one trial at a time with the single-trial shapes.

The parts: :func:`fit_many` checks the arguments, sets the threads and names a plugin that
raised; :class:`_Run` is the fit (epochs until every trial stopped, then the results);
:class:`~tuner.train._epochs.Epochs` one epoch and its steps;
:mod:`tuner.train._objective` the data, the weights and the losses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from tuner._finite import check_finite_matrix
from tuner._plugin_api import Optimizer, Penalty, blame_plugin, compatibility_reason
from tuner.errors import ConfigError, DataError, IncompatiblePluginsError, PluginError, TrainingDivergedError
from tuner.train._config import TrainConfig
from tuner.train._device import Placement
from tuner.train._epochs import Epochs
from tuner.train._objective import Leaves, Objective, PlacedData, shown_params
from tuner.train._penalties import PenaltyGroups, stack_params
from tuner.train._sizing import HESSIAN_MAX_PARAMS, batchable, n_params, one_thread_pays, work_size
from tuner.train._state import Callback, FitResult, TrainingState
from tuner.train._stopping import Stopping

__all__ = ["fit_many"]


def fit_many(
    X: Any,
    y: np.ndarray,
    n_classes: int,
    penalty: Penalty | Sequence[Penalty],
    penalty_params: Sequence[Mapping[str, Any]],
    optimizer: Optimizer,
    optimizer_params: Sequence[Mapping[str, Any]],
    config: TrainConfig,
    *,
    X_val: Any = None,
    y_val: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    column_weight: np.ndarray | None = None,
    val_column_weight: np.ndarray | None = None,
    callbacks: Sequence[Sequence[Callback]] | None = None,
    classes: Sequence[Any] | None = None,
    init: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> list[FitResult | BaseException]:
    """Train ``K = len(penalty_params)`` logistic regressions of one penalty/optimizer pair at once.

    Each trial k minimises ``(1/n_k) sum_i s_i m_ik loss_ik(W_k, b_k) + penalty(W_k)``, where
    ``m = column_weight`` (``(n, K)``, default ones; cross-validation folds are 0/1 columns)
    and ``n_k = sum_i m_ik``. ``val_column_weight`` (``(n_val, K)``) weights the validation rows
    per trial likewise. ``callbacks[k]`` are trial k's callbacks; ``init[k]`` optional starting
    weights ``(W (p, c), b (c,))``. ``penalty`` is one plugin or one per trial. Each trial stops
    as :class:`TrainConfig` says (by default when its training objective stalls).

    Returns, per trial, a :class:`FitResult`, or the exception that stopped that trial (a
    callback's, e.g. a pruner's, or :class:`TrainingDivergedError`). An exception raised inside
    a plugin's code is raised as a :class:`PluginError` naming the plugin. A ``KeyboardInterrupt``
    raised by a callback (a study's stop request) is the result of every trial still training,
    while those already finished keep theirs; raised anywhere else, it propagates.
    """
    pens = _check(penalty, penalty_params, optimizer, optimizer_params, n_classes)
    _check_rows(X, y, n_classes, "y", sample_weight)
    if y_val is not None:
        _check_rows(X_val, y_val, n_classes, "y_val")
    _check_init(init, int(np.shape(X)[1]), 1 if n_classes == 2 else n_classes)
    penalty_params = [with_defaults(pen, params) for pen, params in zip(pens, penalty_params)]
    optimizer_params = [with_defaults(optimizer, params) for params in optimizer_params]
    batched = all(batchable(pen, optimizer) for pen in pens)
    cbs = [list(c) for c in callbacks] if callbacks else [[] for _ in pens]
    threads = torch.get_num_threads()
    if one_thread_pays(X, len(pens), optimizer, config):
        torch.set_num_threads(1)
    run: _Run | None = None
    try:
        run = _Run.start(X, y, n_classes, pens, penalty_params, optimizer, optimizer_params, config, batched,
                         X_val=X_val, y_val=y_val, sample_weight=sample_weight, column_weight=column_weight,
                         val_column_weight=val_column_weight, callbacks=cbs, classes=classes, init=init)
        return run.fit()
    except Exception as exc:
        made = [(run.epochs.opt, optimizer)] if run is not None else []
        blamed = blame_plugin(exc, [*pens, optimizer], made)  # None for a TunerError or an error outside plugin code
        if blamed is None:
            raise
        raise blamed from exc
    finally:
        torch.set_num_threads(threads)


def _check(penalty: Penalty | Sequence[Penalty], penalty_params: Sequence[Mapping[str, Any]], optimizer: Optimizer,
           optimizer_params: Sequence[Mapping[str, Any]], n_classes: int) -> list[Penalty]:
    """The penalty of each trial, once the arguments are known to fit together."""
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
    if k_trials > 1 and not all(batchable(pen, optimizer) for pen in pens):
        names = ", ".join(sorted({f"{pen.name}:{optimizer.name}" for pen in pens if not batchable(pen, optimizer)}))
        raise ConfigError(f"The pair {names} does not support trials side by side (supports_batch); train its "
                          "trials one at a time.")
    return pens


def _check_rows(X: Any, y: Any, n_classes: int, name: str, sample_weight: Any = None) -> None:
    """Labels that are class indices ``0 .. n_classes - 1``, one a row of ``X``; sample weights
    one a row, finite and >= 0. Anything else would train silently on wrong weights (a label
    -1 indexes the last class weight and makes the loss unbounded below)."""
    labels = np.asarray(y)
    rows = int(np.shape(X)[0]) if X is not None else len(labels)
    if X is not None and (len(np.shape(X)) != 2 or np.shape(X)[1] == 0):
        raise DataError(f"The feature matrix must have rows and at least one column; got shape {np.shape(X)}.")
    if X is not None:  # a NaN or infinite value would make every trial's loss NaN: a divergence no hyperparameter mends
        check_finite_matrix(X, f" in the {'training' if name == 'y' else 'validation'} rows")
    if labels.ndim != 1 or len(labels) != rows:
        raise DataError(f"'{name}' must hold one label a row: {rows} rows, got shape {labels.shape}.")
    if labels.dtype == np.bool_:
        labels = labels.astype(np.int64)  # False/True: classes 0 and 1
    if len(labels) and (not np.issubdtype(labels.dtype, np.number) or not np.all(np.isfinite(labels))
                        or np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() >= n_classes):
        shown = np.unique(labels)[:5].tolist()
        raise DataError(f"'{name}' must hold class indices 0 to {n_classes - 1} (n_classes={n_classes}); got values "
                        f"such as {shown}. Encode the labels first (tuner.LogisticRegression and the CLI do).")
    if sample_weight is None:
        return
    sw = np.asarray(sample_weight)
    if sw.shape != (rows,):
        raise DataError(f"'sample_weight' must hold one weight a row: shape ({rows},), got {sw.shape}.")
    if not np.issubdtype(sw.dtype, np.number) or not np.all(np.isfinite(sw)) or np.any(sw < 0) or not sw.sum() > 0:
        raise DataError("'sample_weight' must be finite numbers >= 0, not all zero.")


def _check_init(init: Sequence[tuple[np.ndarray, np.ndarray] | None] | None, p: int, c: int) -> None:
    """Warm starts in the trainer's layout: weights ``(p, c)`` (or ``(p,)`` when ``c == 1``),
    intercepts ``(c,)``; scikit-learn's ``coef_`` ``(c, p)`` would otherwise be reshaped into
    scrambled weights."""
    for k, start in enumerate(init or []):
        if start is None:
            continue
        w, b = np.shape(start[0]), np.shape(start[1])
        if w not in {(p, c), *([(p,)] if c == 1 else [])} or b not in {(c,), *([()] if c == 1 else [])}:
            raise ConfigError(f"Warm start {k}: the weights must have shape ({p}, {c}) and the intercept ({c},); got "
                              f"{w} and {b} (scikit-learn's coef_ is transposed: pass coef_.T).")


def with_defaults(plugin: Penalty | Optimizer, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every hyperparameter ``plugin`` declares and ``params`` leaves out set to
    its declared default; a name the plugin does not declare is a :class:`ConfigError` (never
    silently ignored)."""
    space = plugin.search_space
    unknown = sorted(set(params) - set(space))
    if unknown:
        kind = "penalty" if isinstance(plugin, Penalty) else "optimizer"
        verb = "is not a hyperparameter" if len(unknown) == 1 else "are not hyperparameters"
        raise ConfigError(f"{', '.join(map(repr, unknown))} {verb} of the {kind} {plugin.name!r} "
                          f"(it declares: {', '.join(space) or 'none'}).")
    return {name: params[name] if name in params else hp.default for name, hp in space.items()}


@dataclass
class _Trial:
    """One trial's bookkeeping inside a run."""

    stopping: Stopping
    state: TrainingState
    callbacks: list[Callback]
    history: list[dict[str, float]] = field(default_factory=list)
    best_params: tuple[torch.Tensor, torch.Tensor] | None = None
    done: bool = False
    error: BaseException | None = None
    seconds: float = 0.0


class _Run:
    """One fit of K trials: epochs until every trial has stopped, then each trial's result."""

    def __init__(self, objective: Objective, epochs: Epochs, trials: list[_Trial], optimizer: Optimizer,
                 oparams: Mapping[str, Any], config: TrainConfig, batched: bool, device: torch.device,
                 started: float) -> None:
        self.objective, self.epochs, self.trials = objective, epochs, trials
        self.leaves = objective.leaves
        self.optimizer, self.oparams, self.config, self.batched = optimizer, oparams, config, batched
        self.device, self.started = device, started

    @classmethod
    def start(cls, X: Any, y: np.ndarray, n_classes: int, pens: list[Penalty],
              penalty_params: Sequence[Mapping[str, Any]], optimizer: Optimizer,
              optimizer_params: Sequence[Mapping[str, Any]], config: TrainConfig, batched: bool, *,
              X_val: Any, y_val: np.ndarray | None, sample_weight: np.ndarray | None,
              column_weight: np.ndarray | None, val_column_weight: np.ndarray | None,
              callbacks: Sequence[Sequence[Callback]], classes: Sequence[Any] | None,
              init: Sequence[tuple[np.ndarray, np.ndarray] | None] | None) -> _Run:
        """Place the data, make the weights, build the optimizer: everything but the epochs."""
        K = len(penalty_params)
        place = Placement.resolve(config.device, config.dtype, work=work_size(X), sparse=sp.issparse(X))
        torch.manual_seed(config.seed)
        started = time.perf_counter()
        y = np.asarray(y, dtype=np.int64)
        data = PlacedData.place(place, X, y, n_classes, K, config, full_batch=optimizer.full_batch,
                                sample_weight=sample_weight, column_weight=column_weight, classes=classes,
                                X_val=X_val, y_val=y_val, val_column_weight=val_column_weight)
        leaves = Leaves(K, int(data.X.shape[1]), 1 if n_classes == 2 else n_classes, batched, place.dtype,
                        place.device, init)
        if getattr(optimizer, "uses_hessian", False) and n_params(leaves.p, leaves.c) > HESSIAN_MAX_PARAMS:
            raise ConfigError(
                f"The optimizer '{optimizer.name}' uses the Hessian, which the trainer offers for models of at most "
                f"{HESSIAN_MAX_PARAMS:,} parameters; this one has {n_params(leaves.p, leaves.c):,} ((features + 1) x "
                "outputs). Choose a first-order full-batch solver (lbfgs, fista) or a mini-batch optimizer.")
        oparams = MappingProxyType(stack_params(optimizer_params, place.dtype, place.device,  # read-only, as a penalty's
                                                f"optimizer '{optimizer.name}' hyperparameter")
                                   if batched else dict(optimizer_params[0]))
        penalty = PenaltyGroups(pens, penalty_params, batched, place.dtype, place.device)

        def prox(weight: torch.Tensor, step: Any) -> torch.Tensor:
            return penalty.prox(weight, step)

        opt = optimizer.build([{"params": [leaves.W], "penalized": True}, {"params": [leaves.b], "penalized": False}],
                              oparams, prox if penalty.has_prox else None)
        missing = [attr for attr in ("param_groups", "step", "zero_grad") if not hasattr(opt, attr)]
        if missing:
            raise PluginError(f"Optimizer '{optimizer.name}' build() must return a torch optimizer; got "
                              f"{type(opt).__name__}, without {', '.join(missing)}. Run `tuner plugins check "
                              f"{optimizer.name}`.")
        objective = Objective(data, leaves, penalty, n_classes)
        epochs = Epochs(optimizer, opt, objective, penalty, config, batched, place.device)
        trials = cls._trials(data, leaves, objective, n_classes, config, optimizer, y_val, callbacks,
                             warm=[start is not None for start in (init or [])])
        return cls(objective, epochs, trials, optimizer, oparams, config, batched, place.device, started)

    @staticmethod
    def _trials(data: PlacedData, leaves: Leaves, objective: Objective, n_classes: int, config: TrainConfig,
                optimizer: Optimizer, y_val: np.ndarray | None, callbacks: Sequence[Sequence[Callback]],
                warm: Sequence[bool] = ()) -> list[_Trial]:
        """Each trial's stopping rule, callbacks and the state they see (only its own validation rows).

        A trial's divergence test is measured from its objective at zero weights, or at its warm
        start when that is higher (a start fitted with a weaker penalty can lie far above zero's
        objective: its first, lower epoch is no divergence)."""
        y_val_np = None if y_val is None else np.asarray(y_val)
        starts = objective.at_zero()
        if any(warm):
            at_init = objective.full().tolist()
            starts = [max(s, f) if w and math.isfinite(f) else s
                      for s, f, w in zip(starts, at_init, [*warm, *[False] * len(starts)])]
        trials = []
        for k, start in enumerate(starts):
            scored = data.scores_val(k)
            state = TrainingState(leaves.W3[k], leaves.b3[k, 0], n_classes, data.X_val if scored else None,
                                  y_val_np if scored else None)
            if scored and data.val_columns is not None and y_val_np is not None:
                rows = np.flatnonzero(data.val_columns[:, k] > 0)
                state.y_val, state.val_rows = y_val_np[rows], torch.as_tensor(rows, device=leaves.W.device)
            stopping = Stopping.for_trial(config, start, has_val=scored, full_batch=optimizer.full_batch)
            trials.append(_Trial(stopping, state, list(callbacks[k])))
        return trials

    def fit(self) -> list[FitResult | BaseException]:
        """Every epoch until all trials stopped (or ``config.epochs``), then the results."""
        self._begin()
        for epoch in range(1, self.config.epochs + 1):
            if all(t.done for t in self.trials):
                break
            self._epoch(epoch)
        for k, t in enumerate(self.trials):
            if not t.done:
                self._freeze(k)
        return self._results()

    def _begin(self) -> None:
        for k, t in enumerate(self.trials):
            for cb in t.callbacks:
                try:
                    cb.on_train_begin(t.state)
                except Exception as exc:  # noqa: BLE001 - the trial's own failure, reported as its result
                    self._freeze(k, exc)
                    break

    def _epoch(self, epoch: int) -> None:
        """One epoch of every trial, then each trial's stopping rule on it."""
        train_obj = self.epochs.run().tolist()
        finite = self.leaves.finite()
        vals = self.objective.val_losses() if self.objective.data.X_val is not None else None
        solved = self._solved()
        for k, t in enumerate(self.trials):
            if not t.done:
                self._judge(k, epoch, train_obj[k], finite[k],
                            vals[k] if vals is not None and t.state.X_val is not None else None)
            if not t.done and solved[k]:  # the solver met its own optimality test: nothing left to gain
                # monitor='val' keeps its best validation epoch: the converged weights only if that is this one
                kept_earlier = t.stopping.watch_val and t.stopping.best_epoch != epoch
                t.stopping.reason = "early_stopping" if kept_earlier else "converged"
                self._freeze(k)
        self.epochs.schedule(epoch)

    def _solved(self) -> list[bool]:
        """Per trial: whether the optimizer says its last step met its optimality test (``converged()``)."""
        converged = getattr(self.epochs.opt, "converged", None)
        mask = converged() if callable(converged) else None
        if mask is None:
            return [False] * len(self.trials)
        return [bool(v) for v in torch.as_tensor(mask).reshape(-1).tolist()]

    @torch.no_grad()
    def _penalty_not_finite(self, k: int) -> PluginError | None:
        """Why trial ``k`` diverged when its penalty's own value is NaN at finite weights (its
        weights, or zero weights where they are no longer finite): the penalty's code, which no
        learning rate mends. None otherwise (an infinite value may be the overflow of weights
        that a too large step sent far)."""
        W = self.leaves.W3
        if not bool(torch.isfinite(W[k]).all()):  # a NaN gradient sent the weights there: ask at zero weights
            W = torch.zeros_like(W)
        pen = self.objective.penalty
        for method, value in (("smooth_value", pen.smooth(W)), ("nonsmooth_value", pen.nonsmooth(W))):
            if math.isnan(float(value[k])):
                name = next(p.name for p, idx, _ in pen.groups if idx is None or bool((idx == k).any()))
                return PluginError(f"The penalty '{name}' gave {method} = nan at finite weights, so training "
                                   f"stopped (no learning rate mends that); run `tuner plugins check {name}`.")
        return None

    def _judge(self, k: int, epoch: int, obj: float, finite: bool, val: float | None) -> None:
        """Trial k after an epoch: diverged, failed in a callback, improved, waiting, slowed or stopped."""
        t = self.trials[k]
        if t.stopping.diverged(obj, finite):
            blame = self._penalty_not_finite(k)
            self._freeze(k, blame or TrainingDivergedError(
                f"The training loss became {obj:.6g} at epoch {epoch} (it was {t.stopping.start:.6g} at the start) "
                f"with optimizer '{self.optimizer.name}' ({shown_params(self.oparams, k, self.optimizer.search_space)}); "
                + ("lower the learning rate." if "lr" in self.optimizer.search_space else
                   "it has no learning rate to lower: check the features' scale, or choose another optimizer.")),
                zero=True)
            return
        logs: dict[str, float] = {"epoch": epoch, "train_loss": obj}
        if val is not None:
            logs["val_loss"] = val
        t.history.append(logs)
        t.state.epoch = epoch
        try:
            for cb in t.callbacks:
                cb.on_epoch_end(t.state, logs)
        except Exception as exc:  # noqa: BLE001 - e.g. a pruner: this trial stops, the others go on
            self._freeze(k, exc)
            return
        except KeyboardInterrupt as exc:
            # A stop request (a study's SIGINT/SIGTERM): every trial still training stops with it as
            # its result, and those already finished keep theirs (raising it lost them all)
            for j, other in enumerate(self.trials):
                if not other.done:
                    self._freeze(j, exc)
            return
        verdict = t.stopping.judge(epoch, logs["val_loss"] if t.stopping.watch_val else obj)
        if verdict == "improved" and t.stopping.watch_val:
            t.best_params = self.leaves.snapshot(k)
        elif verdict == "drop_lr":
            self.epochs.drop_lr(k)
        elif verdict == "stop":
            self._freeze(k)

    def _freeze(self, k: int, error: BaseException | None = None, zero: bool = False) -> None:
        """Trial k stops: its parameters (zeros, its best, or as they are) no longer change."""
        t = self.trials[k]
        t.done, t.error, t.seconds = True, error, time.perf_counter() - self.started
        self.leaves.freeze(k, t.best_params, zero)
        if self.batched and hasattr(self.epochs.opt, "freeze"):  # the optimizer stops moving (and searching for) it
            mask = torch.zeros(len(self.trials), dtype=torch.bool, device=self.device)
            mask[k] = True
            self.epochs.opt.freeze(mask)

    def _results(self) -> list[FitResult | BaseException]:
        objectives = self.objective.full().tolist()
        results: list[FitResult | BaseException] = []
        for k, t in enumerate(self.trials):
            if t.error is not None:
                results.append(t.error)
                continue
            weight, intercept = self.leaves.arrays(k)
            result = FitResult(weight=weight, intercept=intercept, objective=objectives[k], history=t.history,
                               epochs_run=len(t.history), best_epoch=t.stopping.best_epoch, fit_seconds=t.seconds,
                               stop_reason=t.stopping.reason, device=str(self.device))
            try:
                for cb in t.callbacks:
                    cb.on_train_end(t.state, result)
            except Exception as exc:  # noqa: BLE001
                results.append(exc)
                continue
            results.append(result)
        return results
