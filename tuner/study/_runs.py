"""Several processes on one study: exact budgets, lost trials, failures, per-process seeds.

Part of the search stage (it imports Optuna). Optuna's ``MaxTrialsCallback`` counts finished
trials only, and a sampler seeded alike in processes started together repeats their samples;
this module is what :func:`tuner.study._search.run_study` uses instead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from tuner.errors import TunerError
from tuner.study._spec import StudySpec
from tuner.study._storage import heartbeat_settings, trial_states

_log = logging.getLogger("tuner.study")

__all__ = ["WORKER", "GAVE_UP", "given_up", "queue_copy", "LOST", "FAIL_STREAK", "TRIAL_OUTCOME_ATTRS", "Budget", "GaveUp", "seeded_sampler",
           "LostTrials", "own_stale_check", "stale_trial_ids", "fail_stale_trials", "failure_streak", "raise_if_failing", "none_completed", "budget_warnings",
           "finished_trials", "set_trial_attrs"]


WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""Which process ran a trial (the ``worker`` user attribute)."""
BUDGET_POLL_S = 0.5
TRIAL_OUTCOME_ATTRS = ("fail_reason", "prune_reason", "val_metrics", "n_nonzero_weights", "epochs_run",
                       "fit_seconds", "optimality_gap", "mlflow_run_id", "mlflow_logged")
FAIL_STREAK = 3
"""A process stops after this many failed trials in a row (a plugin that always raises, a broken setup)."""
GAVE_UP = "budget already spent"
"""How the reason of a trial given up before it trained begins (a budget or a timeout ran out): it
fails, and is not counted against the budget."""
LOST = "lost: its worker sent no heartbeat"
"""How the reason of a trial failed for its dead worker begins (the stale-trial check writes it)."""


def seeded_sampler(make_sampler: Callable[[int], Any], seed: int) -> Any:
    """A sampler seeded with ``seed`` plus the number of the first trial this process runs.

    Trial numbers are unique in a study, so processes that start together never share a
    seed (and never repeat each other's samples), while one process on a fresh study is
    seeded with ``seed`` itself, as reproducible as before.
    """
    from optuna.samplers import BaseSampler

    class _PerProcessSeed(BaseSampler):
        def __init__(self) -> None:
            self.inner: Any = None
            self.reads: dict[str, Any] | None = None

        def before_trial(self, study: Any, trial: Any) -> None:
            if self.inner is None:
                self.inner = _own_seed(make_sampler, seed, seed + trial.number)
                self.reads = _TrialsReadOnce.wanted(self.inner)
            self.inner.before_trial(study, trial)

        def _study(self, study: Any, trial: Any) -> Any:
            return _TrialsReadOnce(study, self.reads, trial.number) if self.reads is not None else study

        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            return self.inner.infer_relative_search_space(self._study(study, trial), trial)

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            return self.inner.sample_relative(self._study(study, trial), trial, search_space)

        def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
            return self.inner.sample_independent(self._study(study, trial), trial, param_name, param_distribution)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            if self.inner is not None:
                # Optuna's grid sampler calls study.stop() once its grid is spent, which raises outside
                # Study.optimize (this runner asks and tells): the study stops on grid_points_left instead
                self.inner.after_trial(_NoStop(study), trial, state, values)

        def reseed_rng(self) -> None:
            if self.inner is not None:
                self.inner.reseed_rng()

        def grid_points_left(self, study: Any) -> int | None:
            """For a grid sampler, the grid points no trial has evaluated or is evaluating (None for
            any other sampler): asking more would evaluate a point twice."""
            return grid_points_left(probe, study)

    probe = make_sampler(seed)  # a bad name fails now, not at the first trial
    return _PerProcessSeed()


def _own_seed(make_sampler: Callable[[int], Any], study_seed: int, own: int) -> Any:
    """The sampler of one process, seeded with ``own``. A grid sampler is the exception: Optuna's
    ``GridSampler`` shuffles its grid with its seed, and a trial's ``grid_id`` indexes that
    shuffled grid, so every process must shuffle with the study's seed (one seed per process made
    a resumed or second process read the ids of earlier trials as other points: one point run
    twice, another never). Only its choice among the points left is the process's own."""
    from optuna.samplers import GridSampler

    sampler = make_sampler(own)
    if isinstance(sampler, GridSampler):
        sampler = make_sampler(study_seed)
        sampler._rng.rng.seed(own % 2**32)  # Optuna's LazyRandomState: the grid above is already shuffled
    return sampler


class _TrialsReadOnce:
    """A study whose trials are read from the storage once per trial being sampled (everything
    else is the study's).

    Optuna's TPE with ``constant_liar`` reads every trial from the storage afresh for each group
    of parameters it samples and for each parameter it samples alone, so that it sees the trials
    other workers are running; a trial of a default study made 3.4 such reads, 5.4 ms each on
    SQLite (a tenth of a ``bc50`` trial's bookkeeping). The trials cannot change meanwhile but
    for the one being sampled (which TPE leaves out) and other workers' starts and ends in the
    same few milliseconds, so one read at the trial's first question serves the rest: the same
    samples in one process, and at most a few milliseconds staler with several (what Optuna's own
    per-trial cache allows its samplers without a liar)."""

    def __init__(self, study: Any, reads: dict[str, Any], number: int) -> None:
        self._study, self._reads, self._number = study, reads, number

    @staticmethod
    def wanted(sampler: Any) -> dict[str, Any] | None:
        """A fresh cache for ``sampler`` when it is Optuna's TPE with a liar (None otherwise: other
        samplers keep Optuna's own reads, a grid sampler's to avoid taking a point twice)."""
        from optuna.samplers import TPESampler

        return {} if isinstance(sampler, TPESampler) and getattr(sampler, "_constant_liar", False) else None

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[Any]:
        import copy

        if self._reads.get("number") != self._number:
            self._reads.update(number=self._number, trials=self._study._storage.get_all_trials(
                self._study._study_id, deepcopy=False))
        trials = self._reads["trials"]
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return self._get_trials(deepcopy, states)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class _NoStop:
    """A study whose ``stop()`` does nothing (everything else is the study's)."""

    def __init__(self, study: Any) -> None:
        self._study = study

    def stop(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


def grid_points_left(sampler: Any, study: Any) -> int | None:
    """The grid points of Optuna's ``GridSampler`` that no trial of ``study`` has finished or is
    running (the ``grid_id`` system attribute it gives each trial); None for another sampler."""
    from optuna.samplers import GridSampler
    from optuna.trial import TrialState

    if not isinstance(sampler, GridSampler):
        return None
    # a trial of another grid (a study made by an older version: its ids index another list) takes no point
    trials = [t for t in study.get_trials(deepcopy=False)
              if "grid_id" in t.system_attrs and sampler._same_search_space(t.system_attrs.get("search_space", {}))]
    taken = {t.system_attrs["grid_id"] for t in trials if t.state.is_finished() or t.state == TrialState.RUNNING}
    # a queued retry of a lost trial re-evaluates its point (the lost trial, FAIL, took it)
    retries = sum(t.state == TrialState.WAITING for t in trials)
    return len(set(range(sampler._n_min_trials)) - taken) + retries


def finished_trials(study: Any) -> int:
    """The study's complete and pruned trials, every process's: what a trial budget counts."""
    from optuna.trial import TrialState

    return sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for _, s in trial_states(study))


class Budget:
    """Exact trial budgets when several processes share a study.

    Optuna's ``MaxTrialsCallback`` counts finished trials only, so processes that start a
    trial together overshoot. Here a process waits while running trials hold the rest of the
    budget (one of them may fail or be lost), and a trial claims its slot after it is created:
    the finished trials plus the running ones created before it must leave room for it.
    """

    def __init__(self, study: Any, n_trials: int | None, deadline: float | None, check: Callable[[], None],
                 fail_stale: Callable[[], None]) -> None:
        """``check`` raises to stop waiting (a signal); ``fail_stale`` fails the trials of dead workers.
        ``n_trials``: the budget this process started with; the stored spec's, re-read at each
        decision, replaces it (a resume with another ``--trials`` changes it for every process)."""
        self.study, self.started_with, self.deadline, self.check, self.fail_stale = \
            study, n_trials, deadline, check, fail_stale

    @property
    def n_trials(self) -> int | None:
        """The study's trial budget as stored now (the one this process started with when the
        stored spec cannot be read)."""
        try:
            return StudySpec.from_json(self.study.user_attrs["spec"]).n_trials
        except (KeyError, TypeError, ValueError):
            return self.started_with

    def _states(self) -> list[Any]:
        return trial_states(self.study)

    def done(self) -> int:
        return finished_trials(self.study)

    def wait_for_room(self) -> bool:
        """Before a trial: True when one may start, False when the budget is spent (or time is up)."""
        from optuna.trial import TrialState

        said = False
        while True:
            total = self.n_trials
            if total is None:
                return not self.timed_out()
            self.check()
            numbered = self._states()
            states = [s for _, s in numbered]
            done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
            if done >= total or self.timed_out():
                return False
            waiting = states.count(TrialState.WAITING)  # enqueued or retried trials go first
            if waiting or done + states.count(TrialState.RUNNING) + waiting < total:
                return True
            if not said:  # a silent wait of up to the heartbeat grace period looked like a hang
                running = [f"#{n}" for n, s in numbered if s == TrialState.RUNNING]
                _log.warning("Waiting for trial(s) %s, which hold the rest of the budget: they run in another process, "
                             "or a lost worker left them (failed and retried once its heartbeat is %s s old).",
                             ", ".join(running), heartbeat_settings()["grace_period"])
                said = True
            time.sleep(BUDGET_POLL_S)
            self.fail_stale()

    def room(self) -> int | None:
        """Trials that may start now (None: no trial budget): the budget less the finished and
        running trials of every process."""
        from optuna.trial import TrialState

        total = self.n_trials
        if total is None:
            return None
        states = [s for _, s in self._states()]
        taken = sum(s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) for s in states)
        return max(1, total - taken)

    def claim(self, number: int) -> bool:
        """After trial ``number`` was created: whether it fits in the budget."""
        from optuna.trial import TrialState

        total = self.n_trials
        if total is None:
            return True
        states = self._states()
        done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for _, s in states)
        ahead = sum(s == TrialState.RUNNING and n < number for n, s in states)
        return done + ahead < total

    def timed_out(self) -> bool:
        """Whether this process's timeout has run out."""
        return self.deadline is not None and time.time() >= self.deadline


def set_trial_attrs(trial: Any, attrs: Mapping[str, Any]) -> None:
    """Set several user attributes of the running Optuna ``trial`` in one database transaction.

    ``Trial.set_user_attr`` commits each attribute on its own: a trial's outcome (its metrics,
    epochs, fit time, optimality gap, reason) was five to seven transactions, each a session,
    a lookup of the trial and a commit. On a relational storage this writes them together, with
    Optuna's own per-attribute statement and its check that the trial is still running; on any
    other storage (or an Optuna without those internals) one ``set_user_attr`` per attribute."""
    if not attrs:
        return
    backend = getattr(trial.storage, "_backend", trial.storage)  # _CachedStorage wraps RDBStorage
    try:
        from optuna.storages import RDBStorage
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        write = backend._set_trial_attr_without_commit
        trial_id, cached = trial._trial_id, trial._cached_frozen_trial.user_attrs
    except (ImportError, AttributeError):
        write = None
    if write is None or not isinstance(backend, RDBStorage) or len(attrs) == 1:
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        return
    with _create_scoped_session(backend.scoped_session, True) as session:
        for k, v in attrs.items():
            write(session, models.TrialUserAttributeModel, trial_id, k, v)
    cached.update(attrs)  # what Trial.set_user_attr keeps for trial.user_attrs


def given_up(trial: Any) -> bool:
    """Whether a trial (Optuna's frozen trial or a :class:`~tuner.study.TrialRecord`) failed as given
    up before it trained (:data:`GAVE_UP`)."""
    return getattr(trial.state, "name", trial.state) == "FAIL" and str(trial.user_attrs.get("fail_reason", "")).startswith(GAVE_UP)


class GaveUp(Exception):
    """A trial created past the budget by a race; failed with :data:`GAVE_UP`, not counted."""


def own_stale_check(storage: Any) -> Callable[[int], list[int]] | None:
    """Take the check for trials of dead workers over from Optuna, and return it.

    Optuna fails such a trial at the start of the next one, without a reason; here the
    process fails it itself (:func:`fail_stale_trials`), saying why, at the same moments.
    None when the storage has no heartbeat.
    """
    find = getattr(storage, "_get_stale_trial_ids", None)
    if find is None or getattr(storage, "heartbeat_interval", None) is None:
        return None
    storage._get_stale_trial_ids = lambda study_id: []  # Optuna's own check finds nothing left to fail
    return lambda study_id: stale_trial_ids(storage, study_id, find)


def stale_trial_ids(storage: Any, study_id: int, find: Callable[[int], list[int]] | None = None) -> list[int]:
    """The running trials of dead workers: Optuna's (a last heartbeat older than the grace period;
    ``find``, default the storage's own check) and those that never sent one (:func:`_never_beat`).
    [] for a storage without heartbeats."""
    if getattr(storage, "heartbeat_interval", None) is None:
        return []
    return [*(find or storage._get_stale_trial_ids)(study_id), *_never_beat(storage, study_id)]


def _grace(storage: Any) -> int:
    """Seconds without a heartbeat after which a running trial's worker counts as dead (Optuna's rule)."""
    return int(storage.grace_period or 2 * storage.heartbeat_interval)


def _never_beat(storage: Any, study_id: int) -> list[int]:
    """RUNNING trials that never recorded a heartbeat and started more than a grace period ago.

    A worker killed between Optuna's ``ask()`` and its first heartbeat (recorded at once after
    it) leaves such a trial. Optuna's check skips trials without a heartbeat, so it held a slot of
    the budget for good. The start time is written by the asking client's clock: Optuna 5 stores
    it as naive UTC (the ``_datetime_start_utc`` column), earlier versions as naive local time.
    """
    from datetime import datetime, timedelta, timezone

    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState

    trial: Any = models.TrialModel  # its columns, untyped (Optuna's models are not typed for comparisons)
    beat: Any = models.TrialHeartbeatModel
    utc = hasattr(trial, "_datetime_start_utc")
    started = trial._datetime_start_utc if utc else trial.datetime_start
    now = datetime.now(timezone.utc).replace(tzinfo=None) if utc else datetime.now()
    started_before = now - timedelta(seconds=_grace(storage))
    with _create_scoped_session(storage.scoped_session) as session:
        rows = (session.query(trial.trial_id)
                .outerjoin(beat, beat.trial_id == trial.trial_id)
                .filter(trial.study_id == study_id, trial.state == TrialState.RUNNING,
                        beat.trial_heartbeat_id.is_(None), started < started_before)
                .all())
    return [int(row[0]) for row in rows]


def fail_stale_trials(study: Any, storage: Any, find: Callable[[int], list[int]] | None,
                      queue_retry: Callable[[Any], int | None], on_lost: Callable[[Any], None]) -> None:
    """Fail the trials of dead workers (no heartbeat within the grace period), with a reason.

    The reason is written while the trial is still RUNNING (a finished trial cannot take
    attributes). Its retry is queued (``queue_retry``: the WAITING copy's id, or None) *before*
    the trial is failed, so that no other process ever sees its budget slot free and starts a
    new trial in it, which would leave the retry no room. The state change then decides which
    process handles the trial: that one calls ``on_lost``; the others withdraw their copies.
    """
    import optuna
    from optuna.trial import TrialState

    if find is None:
        return
    grace = _grace(storage)
    for trial_id in find(study._study_id):
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason",
                                        f"{LOST} for {grace} s (killed or cut off)")
            lost = storage.get_trial(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process failed it first
        queued = queue_retry(lost)
        try:
            won = storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            won = False
        if won:
            on_lost(storage.get_trial(trial_id))
        elif queued is not None:
            _withdraw(storage, queued)


def _withdraw(storage: Any, trial_id: int) -> None:
    """Fail a queued retry that another process made too (not counted, never run twice)."""
    import optuna
    from optuna.trial import TrialState

    try:
        # WAITING -> RUNNING is one conditional update (False when another process has started the
        # copy meanwhile): a check of the state and then a FAIL failed copies other workers were training
        if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
            storage.set_trial_user_attr(trial_id, "withdrawn", True)
            storage.set_trial_user_attr(trial_id, "fail_reason", GAVE_UP + " (another worker retries this trial)")
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


class LostTrials:
    """Fails the trials of dead workers with a reason (:func:`fail_stale_trials`) and queues
    one retry of each, while the budget has room for it.

    ``budget_spent()`` says whether the study's trial budget is used up; ``on_lost(number,
    reason)`` runs for each trial this process failed as lost.
    """

    def __init__(self, study: Any, storage: Any, budget_spent: Callable[[], bool],
                 on_lost: Callable[[int, str], None]) -> None:
        self.study, self.storage, self.budget_spent, self.on_lost = study, storage, budget_spent, on_lost
        self.find = own_stale_check(storage)

    def check(self) -> None:
        """Fail the trials whose worker stopped sending heartbeats (before a trial starts)."""
        fail_stale_trials(self.study, self.storage, self.find, self._queue_retry, self._lost)

    def _lost(self, trial: Any) -> None:
        self.on_lost(trial.number,
                     trial.user_attrs.get("fail_reason") or f"{LOST} (killed or cut off)")

    def _queue_retry(self, trial: Any) -> int | None:
        """A WAITING copy of a lost trial (same parameters), once: a retry is not retried again."""
        if "failed_trial" in trial.system_attrs or self.budget_spent():
            return None  # a retry is not retried; with the budget spent there is nothing to retry it for
        # what Optuna's RetryHeartbeatStaleTrialCallback queues: the system attributes too
        return queue_copy(self.study, self.storage, trial, {"retry_of": trial.number},
                          {"failed_trial": trial.number, "retry_history": [trial.number]})


def queue_copy(study: Any, storage: Any, trial: Any, user_attrs: Mapping[str, Any],
               system_attrs: Mapping[str, Any]) -> int:
    """Queue a WAITING trial with the parameters of the frozen ``trial``: the next ask of any process
    evaluates them. It keeps the trial's system attributes (a grid sampler's ``grid_id``: the copy
    evaluates the same grid point), and its user attributes except its outcome; returns its id."""
    import optuna
    from optuna.trial import TrialState

    user = {k: v for k, v in trial.user_attrs.items() if k not in TRIAL_OUTCOME_ATTRS} | dict(user_attrs)
    template = optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions, user_attrs=user,
        system_attrs={**trial.system_attrs, **system_attrs})
    return int(storage.create_new_trial(study._study_id, template_trial=template))


def failure_streak(mine: Mapping[int, tuple[str, str | None]]) -> list[str]:
    """Reasons of this process's failed trials since its last finished one (interruptions aside)."""
    streak: list[str] = []
    for _, (state, reason) in sorted(mine.items()):
        if state in ("COMPLETE", "PRUNED"):
            streak = []
        elif state == "FAIL" and not (reason or "").startswith("interrupted"):
            streak.append(reason or "unknown error")
    return streak


def raise_if_failing(study_name: str, mine: Mapping[int, tuple[str, str | None]]) -> None:
    """Exit code 0 must mean trials ran: refuse a run whose trials all (or lately all) failed."""
    failed = [(n, r) for n, (st, r) in sorted(mine.items()) if st == "FAIL"]
    if not failed:
        return
    if not any(st in ("COMPLETE", "PRUNED") for st, _ in mine.values()):
        n, reason = failed[0]
        raise TunerError(f"Every trial of study {study_name!r} failed ({len(failed)} here); the first, #{n}: "
                         f"{reason or 'unknown error'}")
    streak = failure_streak(mine)
    if len(streak) >= FAIL_STREAK:
        raise TunerError(f"The last {len(streak)} trials of study {study_name!r} failed, so it stopped before its "
                         f"budget; the first of them: {streak[0]}")


def none_completed(study: Any) -> str | None:
    """Why there is no answer when every finished trial of the study was pruned (else None)."""
    from optuna.trial import TrialState

    pruned = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.PRUNED]
    if not pruned:
        return None
    first = pruned[0]
    return (f"No trial of study {study.study_name!r} completed: all {len(pruned)} finished ones were pruned; "
            f"the first, #{first.number}: {first.user_attrs.get('prune_reason', 'pruned')}")


def budget_warnings(budget: Budget, spec: StudySpec, mine: Mapping[int, Any]) -> list[str]:
    """What the summary says when this process ran no trial because the budget was spent."""
    if spec.n_trials is None or mine:
        return []
    done = budget.done()
    if done > spec.n_trials:
        return [f"the study already has {done} finished trials, more than its new budget of {spec.n_trials} "
                "(the 'trials' parameter); no trial was run"]
    if done == spec.n_trials and spec.n_trials > 0:
        return [f"the budget of {spec.n_trials} trials is already spent; no trial was run (raise the 'trials' "
                "parameter to run more)"]
    return []
