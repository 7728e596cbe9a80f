"""The study objective: asked trials -> trained (side by side where the plugins allow) -> told.

:class:`Objective` is what ``study.optimize`` would call, for a batch: it samples each asked
trial (starting its observers), trains the batch group by group
(:class:`~tuner.study._trial_batches.TrialBatches`), and tells Optuna how each trial ended:
COMPLETE with its validation metric, PRUNED (by the pruner, diverged, not converged) or FAIL
with a one-line reason. The pruner is asked through :class:`PruneJudge`, epoch by epoch
(:class:`PruningCallback`) or fold by fold with cross-validation.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tuner.errors import TunerError
from tuner.study._configure import TrainOutcome, cv_folds
from tuner.study._observer import StudyInfo, StudyObserver
from tuner.study._runs import GAVE_UP, LOST, WORKER, GaveUp, queue_copy, set_trial_attrs
from tuner.study._search_space import SearchSpace
from tuner.study._signals import Interrupted, StopCallback, StopRequest
from tuner.study._spec import StudySpec
from tuner.study._trial_batches import Pending, TrialBatches
from tuner.study._variant import VARIANT
from tuner.train import Callback, TrainConfig, TrainingState, evaluate

__all__ = ["Objective", "MetricCallback", "PruningCallback", "PruneJudge", "held_values", "fail_reason", "CAUGHT"]

_log = logging.getLogger(__name__)

CAUGHT = (TunerError, RuntimeError, ValueError, ArithmeticError, GaveUp)
"""Errors that fail one trial and let the study go on; any other (an interrupt, a bug) fails
the trial and then stops the study, as in ``Study.optimize``."""


class MetricCallback(Callback):
    """Adds ``val_<metric>`` to the epoch logs (from the validation probabilities)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if self.metric == "log_loss":
            if "val_loss" in logs:  # no validation rows (cross-validation without a split): nothing to score
                logs["val_log_loss"] = logs["val_loss"]
            return
        proba = state.val_proba()
        if state.y_val is None or proba is None:  # no validation rows: nothing to score
            return
        logs[f"val_{self.metric}"] = evaluate(state.y_val, proba, state.n_classes, (self.metric,))[self.metric]


class PruningCallback(Callback):
    """Reports the study metric each epoch and raises ``optuna.TrialPruned`` when told to."""

    def __init__(self, trial: Any, metric: str, judge: PruneJudge | None = None) -> None:
        self.trial, self.metric, self.judge = trial, metric, judge
        self.values: dict[int, float] = {}

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        import optuna

        value = logs[f"val_{self.metric}"]
        if not math.isfinite(value):
            return
        step = int(logs["epoch"])
        self.trial.report(value, step)
        self.values[step] = value
        if self.judge.should_prune(self.trial, self.values, over_epochs=True) if self.judge else self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {step} (val_{self.metric}={value:.6g})")


class PruneJudge:
    """``trial.should_prune()`` without re-reading every running trial from the storage.

    Optuna's ``should_prune`` refreshes all unfinished trials (with their intermediate values)
    from the database on every call; with K trials side by side that is K reads per report and
    K squared per epoch (17 ms a report on a9a, a sixth of a study's time). A percentile
    (median) pruner needs only the completed trials and the trial's own values: those are
    kept here and the completed list is re-read after each trial this process tells, and at
    least every :data:`REFRESH_S` seconds for the trials other workers complete meanwhile (a
    worker judged on its own completions only kept trials that the study's median would have
    pruned). Other pruners (Hyperband keeps its own brackets in the study) go through
    ``should_prune``.

    A completed trial counts at each epoch with the worse of its value there and the value it
    ended with (:func:`held_values`): an unpenalized fit whose validation loss fell to 0.19 at
    epoch 9 and rose to 0.30 by its end had pruned, at epoch 9, a trial already at 0.21 and
    still falling, on SST-2 the best of its study.

    Epoch by epoch, a running trial is judged on the value it would end with if it stopped now
    (``keeps_last``: its last value, since its final weights are its model), not on its best so
    far as Optuna's pruner does; with ``monitor="val"`` training keeps the best epoch's weights,
    and the best so far is that value. On SST-2 an unpenalized RMSprop fit reached a good value
    early and kept it as its best while it overfit, to 0.46 at its 100th epoch: 30 s of a 110 s
    study.
    """

    REFRESH_S = 2.0

    def __init__(self, study: Any, keeps_last: bool = True, by_fold: bool = False) -> None:
        """``by_fold``: the reports are cross-validation's fold scores, judged fold by fold."""
        self.study, self.keeps_last, self.by_fold = study, keeps_last, by_fold
        self._completed: list[Any] | None = None
        self._read_at = 0.0

    def invalidate(self) -> None:
        self._completed = None

    @property
    def direction(self) -> Any:
        return self.study.direction

    def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[Any]:
        from optuna.trial import TrialState

        if states is not None and tuple(states) == (TrialState.COMPLETE,):
            if self._completed is None or time.monotonic() - self._read_at > self.REFRESH_S:
                completed = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                # folds have no order, and a trial's value is their mean: no fold is held to it
                self._completed = completed if self.by_fold else [held_values(t, self.study.direction)
                                                                  for t in completed]
                self._read_at = time.monotonic()
            return self._completed
        return self.study.get_trials(deepcopy=deepcopy, states=states)

    def should_prune(self, trial: Any, values: Mapping[int, float], over_epochs: bool = False) -> bool:
        """Whether the study's pruner stops ``trial``, whose reported ``values`` are these
        (``over_epochs``: one an epoch, judged as :attr:`keeps_last` says; else cross-validation's
        fold scores: the last fold against the complete trials' scores on the same fold, not the
        best fold so far, which let one lucky fold carry a trial past a bad one)."""
        import optuna
        from optuna.trial import FrozenTrial, TrialState

        pruner = self.study.pruner
        if isinstance(pruner, optuna.pruners.NopPruner):
            return False
        if not isinstance(pruner, optuna.pruners.PercentilePruner):
            return bool(trial.should_prune())
        shown = dict(values)
        if over_epochs and shown and self.keeps_last:
            shown = _held_at(shown, shown[max(shown)], self.direction)
        elif not over_epochs and shown:
            shown = {max(shown): shown[max(shown)]}
        view = FrozenTrial(number=trial.number, state=TrialState.RUNNING, value=None, datetime_start=None,
                           datetime_complete=None, params={}, distributions={}, user_attrs={}, system_attrs={},
                           intermediate_values=shown, trial_id=trial._trial_id)
        return bool(pruner.prune(self, view))  # type: ignore[arg-type]


def held_values(trial: Any, direction: Any) -> Any:
    """A copy of the completed ``trial`` whose value at each epoch is no better than the one it
    ended with: what it showed at epoch k counts only as far as it kept it."""
    import copy

    if trial.value is None or not trial.intermediate_values:
        return trial
    held = copy.copy(trial)
    held.intermediate_values = _held_at(trial.intermediate_values, trial.value, direction)
    return held


def _held_at(values: Mapping[int, float], kept: float, direction: Any) -> dict[int, float]:
    """``values`` (one an epoch) each no better than ``kept``, the value the trial keeps."""
    from optuna.study import StudyDirection

    worse = max if direction == StudyDirection.MINIMIZE else min
    return {step: worse(v, kept) for step, v in values.items()}


class Objective:
    """Prepare, train and tell the trials of a study, one batch at a time (see the module docstring).

    ``after_tell(frozen)`` runs after each trial is told (progress, lost trials) and returns
    whether the study goes on; ``warnings`` collects what the summary should say.
    """

    def __init__(self, study: Any, storage: Any, spec: StudySpec, space: SearchSpace, data: Any,
                 config: TrainConfig, observers: Sequence[StudyObserver], info: StudyInfo, stop: StopRequest,
                 after_tell: Callable[[Any], bool]) -> None:
        self.study, self.storage, self.stop, self.after_tell = study, storage, stop, after_tell
        self.metric, self.cv = spec.metric, spec.cv
        self.judge = PruneJudge(study, keeps_last=config.monitor != "val", by_fold=bool(spec.cv))
        self._last_beat: dict[int, float] = {}  # trial id -> when this process last beat for it (monotonic)
        self.warnings: list[str] = []
        self.not_started = 0  # asked trials failed unstarted when this process's timeout ran out (not counted)
        folds = cv_folds(data.y_train, spec.cv, spec.data.seed, data.groups_train) if spec.cv else None
        self.runner = TrialBatches(space, data, config, observers, info, spec.metric, self.callbacks, VARIANT,
                                   info.direction, folds, self.prune_on_folds)

    def callbacks(self, trial: Any) -> list[Callback]:
        """The search's own callbacks for a trial: the metric, pruning (unless by folds), stop."""
        if self.cv:  # the folds' scores go to the pruner once they are trained (prune_on_folds)
            return [MetricCallback(self.metric), StopCallback(self.stop)]
        return [MetricCallback(self.metric), PruningCallback(trial, self.metric, self.judge), StopCallback(self.stop)]

    def prune_on_folds(self, trial: Any, scores: list[float]) -> int | None:
        """Report each fold's score; the fold at which the pruner stops the trial, or None."""
        values: dict[int, float] = {}
        for fold, score in enumerate(scores):
            if not math.isfinite(score):
                continue
            trial.report(score, fold)
            values[fold] = score
            if self.judge.should_prune(trial, values):
                return fold
        return None

    def prepare(self, trial: Any) -> tuple[Pending | None, bool]:
        """The asked ``trial`` sampled and its observers started (None when that failed it), and
        whether the study goes on (not after :data:`FAIL_STREAK` failures in a row)."""
        try:
            return self.runner.prepare(trial), True
        except BaseException as exc:  # noqa: BLE001 - an observer or sampler failed this trial
            return None, self.tell(trial, _raiser(exc))

    def abandon(self, untold: Sequence[Pending], exc: BaseException) -> None:
        """Fail the asked trials not yet told with ``exc`` (an interrupt, or an error that stops the
        study): their observers hear why, none is left RUNNING."""
        for pend in list(untold):
            try:
                self.tell(pend.trial, self._failed_with(pend, exc))
            except BaseException:  # noqa: BLE001 - tell re-raises what is not CAUGHT: the next trial still fails
                pass

    def give_up(self, trial: Any, reason: str) -> None:
        """Fail a trial asked past the budget or the timeout (not counted)."""
        set_trial_attrs(trial, {"worker": WORKER, "fail_reason": reason})
        self.tell(trial, _raiser(GaveUp(GAVE_UP)))

    def run(self, asked: list[Pending], timed_out: Callable[[], bool] | None = None) -> bool:
        """Train the asked trials group by group and tell each; False when the study should stop.

        Every asked trial keeps its heartbeat from here until it is told, not only while its own
        group trains: the groups after the first wait their turn, and a trial without a recent
        heartbeat is failed as lost (by this very process, between two trials) once it has waited
        past the grace period.

        Once ``timed_out()`` (this process's timeout), the groups not started yet do not start:
        their trials fail as given up, not counted against the budget, and a WAITING copy of each
        is queued for the next run or worker (a grid point is not lost). As in ``Study.optimize``, a
        trial that is training when the time runs out finishes; a batch's later groups would
        otherwise have run on for as long as the whole batch takes (a large table: many minutes)."""
        import optuna

        keep = True
        untold = list(asked)
        oldest = min((self._last_beat.get(p.trial._trial_id, -math.inf) for p in asked), default=-math.inf)
        beats = _Heartbeats(self.storage, asked, oldest)
        try:
            for index, group in enumerate(self.runner.groups(asked)):
                if index > 0 and timed_out is not None and timed_out():
                    for pend in group:
                        untold.remove(pend)
                        self.tell(pend.trial, self._not_started(pend))
                        # its point is not lost: the next run or worker asks it first (a grid point too)
                        queue_copy(self.study, self.storage, self.storage.get_trial(pend.trial._trial_id),
                                   {"requeued_from": pend.trial.number}, {})
                        self.not_started += 1
                        beats.stop(pend)
                    continue
                try:
                    results = self.runner.train(group)
                except CAUGHT as exc:  # the group failed as a whole (a plugin's build): its trials fail, the study goes on
                    for pend in group:
                        untold.remove(pend)
                        keep = self.tell(pend.trial, self._failed_with(pend, exc)) and keep
                        beats.stop(pend)
                    continue
                error: BaseException | None = None
                for pend, result in zip(group, results):
                    untold.remove(pend)
                    try:
                        keep = self.tell(pend.trial, self._concluded(pend, result, optuna.TrialPruned)) and keep
                    except BaseException as exc:  # noqa: BLE001 - a bug (a callback's, an observer's) or an interrupt:
                        error = error or exc  # the group's other trained trials are still told, then it stops the study
                    beats.stop(pend)
                if error is not None:
                    raise error
        except BaseException as exc:  # an interrupt, or an error telling a trial: every trial not yet told fails
            self.abandon(untold, exc)
            raise
        finally:
            beats.stop_all()
        return keep

    def tell(self, trial: Any, compute: Callable[[], float]) -> bool:
        """Tell Optuna how ``trial`` ended (``compute()`` returns its value or raises, as an
        objective would); False when the study should stop. Errors outside :data:`CAUGHT`
        propagate after the trial is failed, as in ``Study.optimize``."""
        import optuna
        from optuna.trial import TrialState

        self._last_beat.pop(trial._trial_id, None)  # told: no more beats (a trial that never trained too)
        state, value, error = TrialState.COMPLETE, None, None
        try:
            value = compute()
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except BaseException as exc:  # noqa: BLE001 - the trial fails with its reason; see below
            state, error = TrialState.FAIL, exc
            try:
                if trial.user_attrs.get("fail_reason") is None:
                    trial.set_user_attr("fail_reason", fail_reason(exc))
            except optuna.exceptions.UpdateFinishedTrialError:
                pass
        try:
            frozen = self.study.tell(trial, value, state=state, skip_if_finished=True) \
                if state == TrialState.COMPLETE else self.study.tell(trial, state=state, skip_if_finished=True)
        except optuna.exceptions.UpdateFinishedTrialError:
            frozen = None  # failed elsewhere while this tell was under way
        if frozen is not None and frozen.state != state and \
                str(frozen.user_attrs.get("fail_reason", "")).startswith(LOST):
            frozen = None  # already failed as lost before this tell
        if frozen is None:
            # our heartbeat came late (a starved machine): another worker failed this process's
            # trial as lost and retries it; carry on with the next one
            self.warnings.append("a trial of this process was failed as lost by another worker (its heartbeat was "
                                 "late) and retried there; raise TUNER_HEARTBEAT_GRACE")
        if error is not None and not isinstance(error, CAUGHT):
            raise error
        self.judge.invalidate()  # the completed trials may have changed
        return True if frozen is None else self.after_tell(frozen)

    def ask(self) -> Any:
        """A new trial from the study, with its first heartbeat recorded at once (:meth:`run` keeps
        them up while it trains). Optuna never fails a RUNNING trial that has no heartbeat at all,
        so a worker killed between asking a batch and training it used to leave trials that held
        the budget for good (a resumed study then waited forever for their slots)."""
        from optuna.storages._heartbeat import is_heartbeat_enabled

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            trial = self.study.ask()
        try:
            if is_heartbeat_enabled(self.storage):
                self.storage.record_heartbeat(trial._trial_id)
                self._last_beat[trial._trial_id] = time.monotonic()
        except BaseException as exc:
            self.fail_asked(trial, exc)
            raise
        return trial

    def keep_alive(self, asked: Sequence[Pending]) -> None:
        """Record a heartbeat for each asked trial while the batch is still being prepared: its
        thread starts only when it trains, and preparing a large batch (an MLflow run a trial on a
        slow server) can outlast the grace period, after which other workers fail these trials as
        lost. At most one beat a trial a heartbeat interval (its ask's counts)."""
        from optuna.storages._heartbeat import is_heartbeat_enabled

        if not asked or not is_heartbeat_enabled(self.storage):
            return
        interval = float(self.storage.heartbeat_interval)
        for pend in asked:
            if time.monotonic() - self._last_beat.get(pend.trial._trial_id, -math.inf) >= interval:
                self.storage.record_heartbeat(pend.trial._trial_id)
                self._last_beat[pend.trial._trial_id] = time.monotonic()

    def fail_asked(self, trial: Any, exc: BaseException) -> None:
        """Fail ``trial``, asked but not yet prepared, with ``exc`` (a second Ctrl-C, a database
        error): a RUNNING trial without heartbeats would hold a slot of the budget for good."""
        try:
            self.tell(trial, _raiser(exc))
        except BaseException:  # noqa: BLE001 - tell re-raises what is not CAUGHT; the caller raises exc
            pass

    def outcome_of(self, number: int) -> TrainOutcome | None:
        """The outcome of trial ``number`` when it is the best this process trained (no refit needed)."""
        return self.runner.outcome_of(number)

    def _concluded(self, pend: Pending, result: TrainOutcome | BaseException,
                   pruned: type[Exception]) -> Callable[[], float]:
        """An objective for a trained trial: its value, or the pruning or failure it ended with."""
        return lambda: self.runner.conclude(pend, result, pruned)

    def _not_started(self, pend: Pending) -> Callable[[], float]:
        """An objective for a prepared trial that will not train (the timeout ran out): its
        observers close its run, then it fails as given up, not counted against the budget."""
        reason = GAVE_UP + " (the timeout ran out before the trial's group started; not counted)"

        def compute() -> float:
            self.runner.finish(pend, "FAIL", None, None, reason)
            raise GaveUp(reason)
        return compute

    def _failed_with(self, pend: Pending, exc: BaseException) -> Callable[[], float]:
        """An objective for a trial whose group failed or was interrupted as a whole: its observers
        hear why, then it fails with ``exc``."""
        def compute() -> float:
            self.runner.finish(pend, "FAIL", None, None, fail_reason(exc))
            raise exc
        return compute


def fail_reason(exc: BaseException) -> str:
    """The one-line reason a trial failed with ``exc``."""
    if isinstance(exc, Interrupted):
        return f"interrupted by {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by SIGINT"
    from tuner.study._storage import database_failure

    database = database_failure(exc)  # Optuna's own words for it guess at "invalid data in the commit"
    return f"database error: {database}" if database is not None else f"{type(exc).__name__}: {exc}"


def _raiser(exc: BaseException) -> Callable[[], float]:
    """An objective that fails with ``exc`` (a trial that failed before training)."""
    def compute() -> float:
        raise exc
    return compute


class _Heartbeats:
    """One thread that beats for a batch's trials until each is told (Optuna's ``Study.optimize``
    starts a thread a trial, which beats at once).

    Each trial was beaten when it was asked, and while its batch was prepared, so the first round
    comes an interval after the oldest of those beats, not at once: a trial shorter than the
    interval (every ``bc50`` trial) costs no second write and no thread of its own. A beat that
    fails (the database busy for a moment) is tried again a round later; should every round fail,
    other workers fail the trial as lost after the grace period, and its tell says so."""

    def __init__(self, storage: Any, asked: Sequence[Pending], last_beat: float) -> None:
        import threading

        from optuna.storages._heartbeat import is_heartbeat_enabled

        self.ids = {id(p): p.trial._trial_id for p in asked}
        self.lock, self.done = threading.Lock(), threading.Event()
        self.thread: Any = None
        if asked and is_heartbeat_enabled(storage):
            interval = float(storage.heartbeat_interval)
            first = min(interval, max(0.0, interval - (time.monotonic() - last_beat)))
            self.thread = threading.Thread(target=self._beat, args=(storage, first, interval), daemon=True,
                                           name="tuner-heartbeat")
            self.thread.start()

    def _beat(self, storage: Any, wait: float, interval: float) -> None:
        while not self.done.wait(wait):
            with self.lock:
                ids = list(self.ids.values())
            for trial_id in ids:
                try:
                    storage.record_heartbeat(trial_id)
                except Exception as exc:  # noqa: BLE001 - the next round tries again
                    _log.debug("Heartbeat of trial id %s not recorded: %s", trial_id, exc)
            wait = interval

    def stop(self, pend: Pending) -> None:
        with self.lock:
            self.ids.pop(id(pend), None)

    def stop_all(self) -> None:
        with self.lock:
            self.ids.clear()
        self.done.set()
        if self.thread is not None:
            self.thread.join()
