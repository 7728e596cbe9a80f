"""Running a study's trials in batches: ask several, train them side by side, tell each.

A batch is asked from Optuna one trial after another (TPE's constant liar counts the running
ones as bad, so the batch spreads out), grouped by optimizer (trials that differ only in
penalty or in numeric hyperparameters share one pass over the data), trained with
:func:`tuner.study._configure.train_many`, and told one by one: each trial keeps its own Optuna
trial, pruning, observers (MLflow run) and reason. Plugins that do not support trials side by
side run one at a time. Only :mod:`tuner.study._objective` uses this module (it imports Optuna).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner._numbers import is_count
from tuner._registry import optimizers, penalties
from tuner.errors import ConfigError, TrainingDivergedError
from tuner.study._configure import MAX_OPTIMALITY_GAP, TrainOutcome, train_many
from tuner.study._observer import StudyInfo, StudyObserver, TrialInfo
from tuner.study._runs import WORKER, set_trial_attrs
from tuner.study._search_space import STARTUP_TRIALS
from tuner.study._variant import split_variant
from tuner.train import Callback, TrainConfig, batchable

__all__ = ["Pending", "TrialBatches", "AUTO_BATCH_TRIALS", "batch_size_for", "check_batch_trials"]

AUTO_BATCH_TRIALS = 32
"""``--batch-trials auto``: trials asked at once (then grouped by optimizer). Large enough that
each optimizer's group holds several trials (a group costs about one trial's passes whatever
its size), small enough that TPE learns between batches. a9a, 100 trials, no tracking, on 2
busy cores: 58.0 s in batches of 16, 48.9 s in batches of 32, best validation log loss 0.33423
and 0.33424."""


AUTO_MIN_WORK = 250_000
"""``--batch-trials auto`` trains one trial at a time below this many stored training values: on
data that small a step costs its Python overhead whatever the number of trials, a group runs as
long as its slowest trial, and Optuna's pruner has no finished trial to compare with inside the
first batch (breast_cancer, 50 trials: 25 s one at a time, 61 s in batches of 16)."""


BATCH_MEMORY = 2 << 30
"""Bytes a group of trials side by side may take for its weights and optimizer state (float64
counted): on 2^20 features one L-BFGS trial keeps ~200 vectors of curvature pairs (1.6 GiB),
so its trials train one at a time there, while SGD-like ones go 32 at a time."""


STEP_OVERHEAD_VALUES = 50_000
"""A step's fixed cost (Python, dispatch, launches) counted in stored values read: what the trials
of a group share besides the data."""


def paying_group_size(X: Any, n_weights: int, opt: Any, config: TrainConfig) -> int:
    """The largest group whose shared step still pays: a step reads its rows' stored values and
    pays its fixed cost once for the whole group, but updates every trial's weights densely
    (``batch_state_floats`` numbers a weight). Wide sparse text (SST-2: ~5,000 values a step
    against 10^5 weights a trial) gains nothing from a second trial on a mini-batch step; a9a
    (3,600 values, 123 weights) gains up to ~100.

    Deliberately small on wide data: a group runs until its longest trial ends (a stopped trial's
    columns keep costing), and the pruner compares with finished trials only. Groups sized to the
    faster steps of 0e1e2cb (12 Adam, 17 FISTA trials on SST-2) won 18% with every trial running 10
    epochs, but lost 37% in a pruned 64-trial study (benchmarks/RESULTS.md, "Sixth round")."""
    from tuner.train import rows_per_step, work_size

    n = max(int(X.shape[0]), 1)
    shared = STEP_OVERHEAD_VALUES + work_size(X) * rows_per_step(n, opt, config) / n
    own = n_weights * max(1, int(getattr(opt, "batch_state_floats", 8)))
    return max(1, int(2 * shared / max(own, 1)))


def check_batch_trials(requested: Any) -> None:
    """Refuse a ``batch_trials`` that is not an integer >= 1, ``"auto"`` or None."""
    if requested is None or requested == "auto" or (is_count(requested) and requested >= 1):
        return
    raise ConfigError(f"The 'batch_trials' parameter must be an integer >= 1, 'auto' or None (one trial at a time); "
                      f"got {requested!r} instead.")


def batch_size_for(requested: int | str | None, room: int | None, work: int = AUTO_MIN_WORK,
                   finished: int | None = None, largest_group: int | None = None) -> int:
    """How many trials to ask now: ``requested`` (an int, ``"auto"`` or None = 1), within ``room``;
    ``work``: the training data's stored values (``auto`` is 1 on small data); ``finished``: the
    study's finished trials when its sampler learns from them (None: it does not);
    ``largest_group``: the most trials one group of the search trains side by side
    (:meth:`TrialBatches.group_limit`; ``auto`` is 1 where that is 1: trials asked together would
    only train one after the other, each sampled without the others' results; SST-2's L-BFGS
    trials, one a group: 110 s for 64 trials asked 32 at a time, against 91 s one at a time).

    A trial asked beside K others is sampled with guesses for their results (TPE's constant liar),
    and before any trial finishes, at random. So, where the sampler learns, ``auto`` asks at most
    the largest of: half the budget left, the trials finished, and TPE's random start (10). One
    batch of 32 made a study of 32 trials or fewer a random search; a 30-trial study now asks 15
    (random), then 15 (TPE on 15 results). The first batch stays large enough that its full-batch
    trials finish before its mini-batch ones train, so the median pruner can already stop those
    (batches of at most the finished trials, 10 at first, let SST-2's first RMSprop trials run
    100 epochs)."""
    if requested == "auto":
        want = AUTO_BATCH_TRIALS if work >= AUTO_MIN_WORK and largest_group != 1 else 1
        if finished is not None:
            half = AUTO_BATCH_TRIALS if room is None else math.ceil(room / 2)
            want = min(want, max(STARTUP_TRIALS, finished, half))
    else:
        want = int(requested or 1)
    return max(1, want if room is None else min(want, room))


def _stuck_at_start(result: Any, start: tuple[Any, Any] | None) -> bool:
    """Whether a warm-started trial ended where it started: "converged" after one pass with its
    weights unmoved. A warm start has no curvature yet, so near the neighbour's optimum the
    first gradient step can lower the objective by less than float32 shows, and the solver
    stops there, up to a fraction of a percent above the trial's own optimum."""
    if start is None or isinstance(result, BaseException) or result.result.epochs_run > 1:
        return False
    w0 = np.asarray(start[0], dtype=np.float64)
    w = np.asarray(result.result.weight, dtype=np.float64).reshape(w0.shape)
    return bool(np.abs(w - w0).max(initial=0.0) <= 1e-6 * max(1.0, float(np.abs(w0).max(initial=0.0))))


def _epochs_run(result: Any) -> int:
    return 0 if isinstance(result, BaseException) else int(result.result.epochs_run)


class _AfterEpochs(Callback):
    """A trial's callback for its retry: what the first attempt already told it (training began,
    its first ``epochs`` epochs) is not told again; the end is."""

    def __init__(self, inner: Callback, epochs: int) -> None:
        self.inner, self.epochs = inner, epochs

    def on_train_begin(self, state: Any) -> None:
        pass

    def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
        if state.epoch > self.epochs:
            self.inner.on_epoch_end(state, logs)

    def on_train_end(self, state: Any, result: Any) -> None:
        self.inner.on_train_end(state, result)


@dataclass
class Pending:
    """One asked trial on its way through a batch."""

    trial: Any
    variant: str
    penalty: str
    optimizer: str
    penalty_params: dict[str, Any]
    optimizer_params: dict[str, Any]
    values: dict[str, Any]
    info: TrialInfo
    callbacks: list[Callback] = field(default_factory=list)
    group: dict[str, Any] | None = None  # which trials it trained with and how long: written with its end


class TrialBatches:
    """Prepare, train and conclude the trials of one batch (see the module docstring)."""

    def __init__(self, space: Any, data: Any, config: TrainConfig, observers: Sequence[StudyObserver],
                 info: StudyInfo, metric: str, make_callbacks: Callable[[Any], list[Callback]],
                 variant_key: str, direction: str = "minimize", folds: list[np.ndarray] | None = None,
                 prune_on_folds: Callable[[Any, list[float]], int | None] | None = None) -> None:
        """``make_callbacks(trial)``: the search's own callbacks for a trial (metric, pruning, stop).

        ``folds``: cross-validation (held-out masks of the training rows); ``prune_on_folds(trial,
        scores)`` reports each fold's score and returns the fold at which the pruner stops the
        trial, or None."""
        self.folds, self.prune_on_folds = folds, prune_on_folds
        self.space, self.data, self.config, self.observers = space, data, config, observers
        self.info, self.metric, self.make_callbacks, self.variant_key = info, metric, make_callbacks, variant_key
        self.sign = 1.0 if direction == "minimize" else -1.0
        self.best: tuple[int, float, TrainOutcome] | None = None  # this process's best complete trial
        self.finished: dict[str, list[tuple[np.ndarray, Any, Any]]] = {}  # variant -> (key, W, b): warm starts

    def prepare(self, trial: Any) -> Pending:
        """Sample the trial's variant and hyperparameters; start its observers (MLflow run)."""
        variant = trial.suggest_categorical(self.variant_key, self.space.variants)
        pn, on = split_variant(variant)
        slots = self.space.slots[variant]
        values = {s.name: s.suggest(trial) for s in slots}
        pp = {s.hp: values[s.name] for s in slots if s.kind == "penalty"}
        op = {s.hp: values[s.name] for s in slots if s.kind == "optimizer"}
        attrs: dict[str, Any] = {"worker": WORKER, "penalty": pn, "optimizer": on}
        tinfo = TrialInfo(trial.number, pn, on, dict(trial.params), pp, op)
        pend = Pending(trial, variant, pn, on, pp, op, values, tinfo)
        callbacks = self.make_callbacks(trial)
        own: list[Callback] = []
        started: list[StudyObserver] = []
        try:
            for obs in self.observers:
                cbs, more = obs.on_trial_start(self.info, tinfo)
                started.append(obs)
                own.extend(cbs)
                attrs.update(more)
            set_trial_attrs(trial, attrs)  # with the observers' (an MLflow run id): one transaction, not three
        except BaseException as exc:  # the trial fails: the observers that started it hear so (no run left open)
            try:
                set_trial_attrs(trial, attrs)
            except Exception:  # noqa: BLE001, S110 - the first error is the one to report
                pass
            for obs in started:
                try:
                    obs.on_trial_end(self.info, tinfo, "FAIL", None, None, f"{type(exc).__name__}: {exc}")
                except Exception:  # noqa: BLE001, S110 - the first error is the one to report
                    pass
            raise
        # the metric first (observers log it), then the observers, then pruning and stop
        pend.callbacks = callbacks[:1] + own + callbacks[1:]
        return pend

    def groups(self, batch: Sequence[Pending]) -> list[list[Pending]]:
        """Trials that can share a pass: same optimizer, plugins that support it, same non-numeric
        values; every other trial alone. Full-batch optimizers' groups come first."""
        out: dict[Any, list[Pending]] = {}
        for i, pend in enumerate(batch):
            pen, opt = penalties.get(pend.penalty), optimizers.get(pend.optimizer)
            if not batchable(pen, opt):
                out[("alone", i)] = [pend]
                continue
            # the plugin's kind in the key: a penalty and an optimizer may both name a hyperparameter 'mode'
            labels = tuple(sorted((kind, k, repr(v))
                                  for kind, params in (("penalty", pend.penalty_params),
                                                       ("optimizer", pend.optimizer_params))
                                  for k, v in params.items() if not isinstance(v, (bool, int, float))))
            out.setdefault((pend.optimizer, labels), []).append(pend)
        # Full-batch groups first: they finish in a few passes, and their completed trials give the
        # pruner something to compare the mini-batch trials with from the first batch on.
        ordered = sorted(out.values(), key=lambda g: not optimizers.get(g[0].optimizer).full_batch)
        return [part for g in ordered for part in self._fit_in_memory(g)]

    def _fit_in_memory(self, group: list[Pending]) -> list[list[Pending]]:
        """``group`` in parts of at most :meth:`group_limit` trials."""
        size = self.group_limit(group[0].optimizer)
        return [group[i:i + size] for i in range(0, len(group), size)]

    def group_limit(self, optimizer: str) -> int:
        """The most trials of ``optimizer`` one group trains here: their weights and optimizer
        state fit in ``BATCH_MEMORY`` bytes, and sharing a step pays for them
        (:func:`paying_group_size`); a cross-validated trial counts as its model's and folds'
        weight columns. 1 for an optimizer that does not declare ``supports_batch``."""
        opt = optimizers.get(optimizer)
        if not getattr(opt, "supports_batch", False):
            return 1
        columns = 1 + len(self.folds or ())  # with cross-validation a trial trains its model and each fold
        n_weights = int(self.data.X_train.shape[1]) * (1 if self.data.n_classes == 2 else self.data.n_classes) * columns
        per_trial = n_weights * 8 * max(1, int(getattr(opt, "batch_state_floats", 8)))
        return max(1, min(BATCH_MEMORY // max(per_trial, 1), paying_group_size(self.data.X_train, n_weights, opt,
                                                                                   self.config)))

    def train(self, group: Sequence[Pending]) -> list[TrainOutcome | BaseException]:
        """Train one group side by side (the caller keeps the trials' heartbeats); each trial's
        ``group`` attribute then says which trials it trained with and how long that took
        (``{"trials": [numbers], "seconds": s}``: the training share of a study's time)."""
        started = time.perf_counter()
        init = self._warm_starts(group)
        results = train_many(self.data, group[0].optimizer,
                             [(p.penalty, p.penalty_params, p.optimizer_params) for p in group], self.config,
                             [p.callbacks for p in group], init, self.folds)
        stuck = [i for i, r in enumerate(results) if init is not None and _stuck_at_start(r, init[i])]
        if stuck:  # a warm start its solver could not leave: the same trials from zero weights
            # their callbacks heard the first attempt's pass (Optuna keeps that report, MLflow logged it):
            # the retry tells them its later passes only, so each epoch is reported once, alike in both
            told = [[_AfterEpochs(cb, _epochs_run(results[i])) for cb in group[i].callbacks] for i in stuck]
            again = train_many(self.data, group[0].optimizer,
                               [(group[i].penalty, group[i].penalty_params, group[i].optimizer_params)
                                for i in stuck], self.config, told, None, self.folds)
            for i, r in zip(stuck, again):
                results[i] = r
        mark = {"trials": [p.trial.number for p in group], "seconds": round(time.perf_counter() - started, 4)}
        for pend in group:
            pend.group = mark
        return results

    def conclude(self, pend: Pending, result: TrainOutcome | BaseException,
                 pruned: type[Exception]) -> float:
        """The trial's value, after its observers heard how it ended; raises ``pruned`` (Optuna's
        ``TrialPruned``) for a pruned, diverged or unconverged trial and re-raises a failure."""
        if isinstance(result, pruned):
            self.finish(pend, "PRUNED", None, None, str(result))
            raise result
        if isinstance(result, TrainingDivergedError):
            self.finish(pend, "PRUNED", None, None, f"diverged: {result}")
            raise pruned(f"diverged: {result}")
        if isinstance(result, KeyboardInterrupt):  # stopped by a signal while it trained
            self.finish(pend, "FAIL", None, None, f"interrupted by {result or 'SIGINT'}")
            raise result
        if isinstance(result, BaseException):
            self.finish(pend, "FAIL", None, None, f"{type(result).__name__}: {result}")
            raise result
        outcome = result
        trial = pend.trial
        value = outcome.value(self.metric)
        attrs: dict[str, Any] = {}  # the outcome's user attributes, written with its end (finish)
        if outcome.cv_metrics is not None:  # the mean over folds; each fold's score goes to the pruner
            scores = [m.get(self.metric, math.nan) for m in outcome.cv_metrics]
            attrs["cv_values"] = scores
            stopped = self.prune_on_folds(trial, scores) if self.prune_on_folds else None
            # The folds trained side by side, so a verdict now saves nothing: it only marks a trial,
            # and never one whose mean over folds beats every complete trial (the pruner compares
            # single folds, and one bad fold must not discard the study's best).
            if stopped is not None and not self._beats_the_best(trial, value):
                reason = f"pruned at fold {stopped + 1} of {len(scores)} (val_{self.metric}={scores[stopped]:.6g})"
                self.finish(pend, "PRUNED", None, outcome, reason, attrs)
                raise pruned(reason)
        attrs.update(val_metrics=outcome.val_metrics, n_nonzero_weights=outcome.result.n_nonzero,
                     epochs_run=outcome.result.epochs_run, fit_seconds=round(outcome.result.fit_seconds, 4))
        if not math.isfinite(value):
            self.finish(pend, "PRUNED", None, outcome, f"non-finite validation {self.metric}: {value}", attrs)
            raise pruned(f"non-finite validation {self.metric}")
        if outcome.optimality_gap is not None:
            attrs["optimality_gap"] = outcome.optimality_gap
            if outcome.optimality_gap > MAX_OPTIMALITY_GAP:
                # Such a model is one draw of the optimizer's noise, not the penalty's solution:
                # on a small validation split it can win by chance and then fail on the test split.
                reason = (f"not converged: stopped {outcome.optimality_gap:.1%} above the optimum of its objective "
                          f"({outcome.gap_solver}); too few mini-batch steps on data this small")
                self.finish(pend, "PRUNED", None, outcome, reason, attrs)
                raise pruned(reason)
        self.finish(pend, "COMPLETE", value, outcome, None, attrs)
        self._remember(pend, outcome)
        if self.best is None or self.sign * value < self.sign * self.best[1]:
            self.best = (trial.number, float(value), outcome)
        return float(value)

    def _beats_the_best(self, trial: Any, value: float) -> bool:
        """Whether ``value`` is better than the study's best complete trial (or there is none)."""
        try:
            best = float(trial.study.best_value)
        except ValueError:  # no complete trial yet
            return True
        return math.isfinite(value) and self.sign * value < self.sign * best

    def outcome_of(self, number: int) -> TrainOutcome | None:
        """The outcome of trial ``number`` when it is the best this process trained (no refit needed)."""
        return self.best[2] if self.best is not None and self.best[0] == number else None

    def finish(self, pend: Pending, state: str, value: float | None, outcome: TrainOutcome | None,
               reason: str | None, attrs: dict[str, Any] | None = None) -> None:
        """Record the trial's outcome ``attrs`` and why it ended (one transaction), then let the
        observers close its run and record what they add."""
        attrs = dict(attrs or {})
        if pend.group is not None:
            attrs["group"] = pend.group
        if reason:
            attrs["fail_reason" if state == "FAIL" else "prune_reason"] = reason
        set_trial_attrs(pend.trial, attrs)
        for obs in self.observers:
            set_trial_attrs(pend.trial, obs.on_trial_end(self.info, pend.info, state, value, outcome, reason))

    # -- warm starts: a full-batch trial starts from the nearest finished trial of its variant

    def _key(self, pend: Pending) -> np.ndarray:
        out = []
        for s in self.space.slots[pend.variant]:
            v = pend.values[s.name]
            if s.is_fixed or s.low is None or isinstance(v, bool):
                continue
            lo, hi, x = float(s.low), float(s.high), float(v)
            if s.log and lo > 0:
                lo, hi, x = math.log(lo), math.log(hi), math.log(max(x, 1e-300))
            out.append((x - lo) / (hi - lo) if hi > lo else 0.0)
        return np.asarray(out)

    def _remember(self, pend: Pending, outcome: TrainOutcome) -> None:
        if optimizers.get(pend.optimizer).full_batch:
            self.finished.setdefault(pend.variant, []).append(
                (self._key(pend), outcome.result.weight, outcome.result.intercept))

    def _warm_starts(self, group: Sequence[Pending]) -> list[Any] | None:
        if not optimizers.get(group[0].optimizer).full_batch:
            return None
        init: list[Any] = []
        for pend in group:
            done = self.finished.get(pend.variant)
            if not done:
                init.append(None)
                continue
            key = self._key(pend)
            nearest = min(done, key=lambda d: float(np.sum((d[0] - key) ** 2)) if len(key) else 0.0)
            init.append((nearest[1], nearest[2]))
        return init if any(i is not None for i in init) else None
