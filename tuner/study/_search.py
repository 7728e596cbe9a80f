"""The search loop: create or resume a study, run trials until its budget, refit and test the best.

:func:`run_study` checks everything it can before a new study is stored (data, split,
training options, observers), so a refused start leaves nothing behind. Then each process
loops: wait for room in the budget -> ask a batch of trials -> train and tell them
(:class:`~tuner.study._objective.Objective`) -> after each trial, fail the trials of dead
workers and report progress. At the end the best configuration is refit (unless this process
trained it) and the observers register it. SIGINT/SIGTERM stop the loop at a safe point.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from tuner._numbers import is_count
from tuner._registry import full_batch_optimizers, penalties
from tuner.errors import ConfigError, StorageError, TunerError
from tuner.study._configure import TrainOutcome, train_one
from tuner.study._default_plugins import default_plugins
from tuner.study._default_ranges import strength_ceiling
from tuner.study._naming import public_params
from tuner.study._objective import Objective
from tuner.study._observer import StudyInfo, StudyObserver, TrialInfo
from tuner.study._result import StudyResult, best_trial, trial_counts
from tuner.study._resume import (
    StudyAppeared,
    existing_study,
    missing_study,
    note_plugin_changes,
    open_or_create_study,
)
from tuner.study._runs import (
    FAIL_STREAK,
    GAVE_UP,
    Budget,
    LostTrials,
    budget_warnings,
    failure_streak,
    finished_trials,
    given_up,
    none_completed,
    raise_if_failing,
    seeded_sampler,
)
from tuner.study._search_space import (
    LEARNING_SAMPLERS,
    SearchSpace,
    build_space,
    make_pruner,
    make_sampler,
    params_of,
    unsearched,
)
from tuner.study._signals import Interrupted, StopCallback, StopRequest, deferred_signals
from tuner.study._spec import StudySpec
from tuner.study._storage import open_storage, require_database
from tuner.study._study_data import check_data, check_training, load_dataset_for, train_config
from tuner.study._trial_batches import Pending, batch_size_for, check_batch_trials
from tuner.study._variant import VARIANT, split_variant
from tuner.train import METRICS, TrainConfig, work_size

__all__ = ["run_study"]

_log = logging.getLogger("tuner.study")

Progress = Callable[[dict[str, Any]], None]
"""Called after each trial with ``done``, ``total``, ``best``, ``elapsed``, ``last_state``,
``number`` and ``reason`` (a failed trial's, None otherwise)."""


def run_study(spec: StudySpec | None, study_name: str, storage_url: str, *,
              observers: Sequence[StudyObserver] = (), progress: Progress | None = None,
              resume_only: bool = False, refit_best: bool = True, n_trials: int | None = None,
              timeout: float | None = None, changes: Mapping[str, Any] | None = None,
              new_only: bool = False, batch_trials: int | str | None = None,
              preloaded: tuple[Any, Any] | None = None,
              chosen_plugins: Collection[str] | None = None) -> StudyResult:
    """Create or resume ``study_name`` and run trials until its budget; refit and test the best.

    ``batch_trials``: trials asked at once and trained side by side where their plugins allow
    (an int, ``"auto"``, or None for one at a time); see :mod:`tuner.study._trial_batches`.
    ``preloaded``: the data already read for ``spec`` (see :func:`load_dataset_for`).

    ``n_trials`` given here replaces the stored budget (the budget counts the study's complete
    and pruned trials, whichever process ran them). ``timeout`` limits this call only, as in
    Optuna's ``Study.optimize``: it is never stored, so a short timeout given once does not
    stop every later resume and worker before its first trial. ``changes`` are the
    options the user gave explicitly (see :func:`~tuner.study._resume.resume_spec`); where they
    name no penalties or optimizers, a new study leaves out the plugins that fail their
    contract checks and the mini-batch optimizers (with a notice each, see
    :mod:`tuner.study._default_plugins`). Data, split, training options and observers
    (tracking) are checked before a new study is stored, so a refused start leaves nothing
    behind. ``new_only`` refuses an existing study (see :func:`open_or_create_study`).
    ``chosen_plugins``: which of ``"penalties"``/``"optimizers"`` the caller chose itself, when
    ``changes`` is None (every option compared on resume); the others are narrowed as above.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported in one line each, below
    started = time.time()
    _check_budget(n_trials, timeout)
    check_batch_trials(batch_trials)
    asked = spec
    if resume_only or spec is None:  # nothing to create: a mistyped path must not become an empty database
        require_database(storage_url)
    storage = open_storage(storage_url)
    study: Any = None
    found = existing_study(storage, study_name, storage_url, spec, changes, new_only)
    if found is not None:
        study, spec = found
    elif resume_only or spec is None:
        raise missing_study(study_name, storage_url)
    spec = _with_budget(spec, n_trials)
    data = load_dataset_for(spec, preloaded)
    # the split holds what is needed; a large matrix is not kept twice (rows given in memory, not
    # in a file, are kept for a start over: see StudyAppeared below)
    in_memory = preloaded if study is None and not (spec.data.path or spec.data.dataset) else None
    del preloaded
    check_data(spec, data)
    chosen = changes if changes is not None else chosen_plugins
    notices: list[str] = []
    narrowed: list[str] = []
    if study is None and chosen is not None:  # a new study: what the user left open, narrowed for the data
        narrowed = default_plugins(spec, data, chosen)
        notices = narrowed + strength_ceiling(spec, data)
    try:
        space = build_space(spec)
    except ConfigError as exc:
        if not narrowed:
            raise
        # a --param for a plugin that the default search left out: say why it is not in play
        raise ConfigError(f"{exc} Without a plugin list given, {'; '.join(narrowed)}.") from None
    notices += unsearched(space, spec)
    config = train_config(spec)
    check_training(config)
    for obs in observers:
        obs.check()
    created = study is None
    if study is None:
        try:
            study, spec, warnings = open_or_create_study(spec, study_name, storage_url, changes=changes,
                                                         new_only=new_only, storage=storage, join=False)
        except StudyAppeared:
            # Another process stored the study while this one read the data and checked its options:
            # start over as a resume, from the stored spec (search space, training options, budget).
            del data
            assert asked is not None  # a study is only created from a spec
            retry = StudySpec.from_json(asked.to_json())  # as asked, with the data's fingerprints now known
            retry.data.fingerprint, retry.data.test_fingerprint = spec.data.fingerprint, spec.data.test_fingerprint
            return run_study(retry, study_name, storage_url, observers=observers, progress=progress,
                             resume_only=True, refit_best=refit_best, n_trials=n_trials, timeout=timeout,
                             changes=changes, new_only=new_only, batch_trials=batch_trials,
                             preloaded=in_memory, chosen_plugins=chosen_plugins)
    else:
        warnings = note_plugin_changes(study, spec)
    stored = _spec_stored_now(study)
    stored_before = stored.n_trials if stored is not None else None
    spec = _with_stored_budget(study, spec, n_trials, stored)
    if n_trials is not None and spec.n_trials is not None and spec.n_trials > n_trials:
        budget = (f"its budget is now {spec.n_trials} (it was {stored_before})"
                  if stored_before is not None and stored_before != spec.n_trials else f"its budget stays {spec.n_trials}")
        warnings = [*warnings, f"the study already has {spec.n_trials} finished trials, more than the {n_trials} "
                               "asked for (the 'trials' parameter counts the study's trials, not this run's); "
                               + budget]
    if study.user_attrs.get("spec") != spec.to_json():
        study.set_user_attr("spec", spec.to_json())  # workers joining later see the new budget
    spec.timeout = timeout  # this process's own limit, never stored
    stop = StopRequest()
    with deferred_signals(stop):  # from the moment the study is stored, a signal waits for a safe point
        run = _StudyRun(study, storage, storage_url, spec, space, data, config, observers, progress, stop, started,
                        created)
        return run.execute(refit_best, notices + warnings + data.notes, batch_trials)


def _spec_stored_now(study: Any) -> StudySpec | None:
    """The spec stored with the study now (None without a readable one)."""
    try:
        return StudySpec.from_json(study.user_attrs["spec"])
    except (KeyError, TypeError, ValueError):
        return None


def _with_stored_budget(study: Any, spec: StudySpec, n_trials: int | None, now: StudySpec | None) -> StudySpec:
    """``spec`` with the trial budget stored now (``now``, the stored spec) where this call gave none:
    another process may have changed it while this one read its data, and every running process
    follows what is stored."""
    if now is None:
        return spec
    out = StudySpec.from_json(spec.to_json())
    # a budget given below the finished trials is stored as them: the stored budget never reads less than
    # the trials the study holds ('budget 3 trials' beside 6 complete, kept by every later run)
    out.n_trials = now.n_trials if n_trials is None else max(n_trials, finished_trials(study))
    return out


def keep_apart_failing_side_by_side(penalty_names: Sequence[str], optimizer_names: Sequence[str]) -> list[str]:
    """Send the searched plugins that declare ``supports_batch`` but fail the quick side-by-side
    check to train one at a time (their trials would change each other's results); one notice each.

    logreg-tuner's own plugins are left out: its test suite holds them to the full side-by-side
    checks (``batch_fit``, ``batch_divergence``), and the quick one would cost a study on a9a a
    tenth of its time."""
    from tuner._registry import OWN_DISTRIBUTION, optimizers, penalties
    from tuner.testing import side_by_side_failures
    from tuner.train import train_alone

    notices = []
    for kind, registry, names in (("penalty", penalties, penalty_names), ("optimizer", optimizers, optimizer_names)):
        others = {i.name for i in registry.infos() if i.ok and i.distribution != OWN_DISTRIBUTION}
        for name, why in side_by_side_failures(kind, [n for n in names if n in others]).items():
            train_alone(registry.get(name))
            notices.append(f"the {kind} plugin {name!r} declares that its trials train side by side but {why}; its "
                           f"trials train one at a time (run `tuner plugins check {name}`)")
    return notices


def constant_model_note(study: Any) -> str:
    """What the summary says when the best model has no non-zero weight: it gives every row the
    same probabilities (the classes' frequencies), however good its validation score looks next
    to the other trials'."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    unconverged = sum("not converged" in str(t.user_attrs.get("prune_reason", "")) for t in trials)
    searched = {str(t.user_attrs.get("penalty", "")) for t in trials} & set(penalties.names())
    solvers = full_batch_optimizers([penalties.get(name) for name in sorted(searched)] or None)
    why = (f"; {unconverged} of the {len(trials)} trials were pruned as not converged: search the full-batch solvers"
           f"{solvers}, or give the others more epochs" if unconverged else
           "; its penalty is strong enough to zero every weight: lower the strength range (--param)")
    return ("the best trial's model has no non-zero weight: it predicts the same probabilities for every row (the "
            "classes' frequencies)" + why)


def _check_budget(n_trials: int | None, timeout: float | None) -> None:
    if n_trials is not None and (not is_count(n_trials) or n_trials < 0):
        raise ConfigError(f"The 'trials' parameter of tune must be an integer >= 0; got {n_trials!r} instead.")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"The 'timeout' parameter of tune must be a number of seconds > 0; got {timeout!r} instead.")


def _with_budget(spec: StudySpec, n_trials: int | None) -> StudySpec:
    """A copy of ``spec`` with the trial budget given now and no timeout (one process's limit,
    which a study stored before kept for every later run); the caller's spec is left as it is."""
    out = StudySpec.from_json(spec.to_json())
    if n_trials is not None:
        out.n_trials = n_trials
    out.timeout = None
    return out


class _StudyRun:
    """One process's run of a stored study: the loop, then the end (see the module docstring)."""

    def __init__(self, study: Any, storage: Any, storage_url: str, spec: StudySpec, space: SearchSpace, data: Any,
                 config: TrainConfig, observers: Sequence[StudyObserver], progress: Progress | None,
                 stop: StopRequest, started: float, created: bool = False) -> None:
        self.study, self.spec, self.space, self.data, self.config = study, spec, space, data, config
        self.created = created  # this process stored the study (a refused start takes it back)
        self.observers, self.progress, self.stop, self.started = observers, progress, stop, started
        self.storage = storage
        self.notes: list[str] = []  # what the summary says about how the search ended
        self.info = StudyInfo(study.study_name, storage_url, json.loads(spec.to_json()),
                              METRICS[spec.metric], spec.metric, dict(study.user_attrs), data=data)
        self.mine: dict[int, tuple[str, str | None]] = {}  # this process's trials: number -> (state, fail reason)
        self.lost = LostTrials(study, storage, self._budget_spent, self._on_lost)
        self.budget = Budget(study, spec.n_trials, None, stop.check, self.lost.check)  # the deadline: see execute
        self.objective = Objective(study, storage, spec, space, data, config, observers, self.info, stop,
                                   self._after_trial)

    def execute(self, refit_best: bool, warnings: list[str], batch_trials: int | str | None) -> StudyResult:
        """Run trials until the budget is spent or a signal arrives; refit and register the best.

        Whatever stops it, the observers hear how it ended (their parent run never stays open):
        KILLED on an interrupt, FAILED with the reason on any error, a bug's included."""
        best, outcome, interrupted, ended = None, None, None, False
        try:
            self._start()
            if self.spec.timeout is not None:
                # the timeout counts from here, the observers started and the data ready: a setup slower
                # than a short timeout (reading data, a far tracking server) ran no trial and exited 0
                self.budget.deadline = time.time() + self.spec.timeout
            interrupted = self._search(batch_trials)
            best = best_trial(self.study)
            if interrupted is None:
                raise_if_failing(self.study.study_name, self.mine)
                if best is not None and refit_best:
                    outcome, interrupted = self._refit_and_end(best)
                    ended = outcome is not None
        except BaseException as exc:
            from optuna.exceptions import StorageInternalError

            # a bare KeyError from the next read, or a failed commit when the delete came between a
            # write's read and its UPDATE (SQLAlchemy's StaleDataError: 0 rows matched)
            if isinstance(exc, (KeyError, StorageInternalError)) and self._deleted():
                exc = StorageError(f"Study {self.study.study_name!r} was deleted from {self.info.storage_url} while "
                                   "this process ran its trials (`tuner study delete --force`); no more trials were "
                                   "run.")
                self._stopped("FAILED", str(exc))
                raise exc from None
            if isinstance(exc, (KeyboardInterrupt, Interrupted)):
                self._stopped("KILLED", f"interrupted by {exc or 'SIGINT'}")
            else:
                self._stopped("FAILED", str(exc) if isinstance(exc, TunerError) else f"{type(exc).__name__}: {exc}")
            raise
        if not ended:
            self._stopped("KILLED" if interrupted else "FINISHED",
                          f"interrupted by {interrupted}" if interrupted else None)
        done = self.budget.done()
        if not interrupted and self.mine and self.budget.timed_out() and self.spec.n_trials is not None \
                and done < self.spec.n_trials:
            self.notes.append(f"the timeout ({self.spec.timeout:g} s) ended this run with {done} of the budget's "
                              f"{self.spec.n_trials} trials done; resuming the study (the same command, or a worker) "
                              "runs the rest")
        if self.objective.not_started:
            self.notes.append(f"the timeout ran out before {self.objective.not_started} asked trial(s) could start: "
                              "they are failed as given up and not counted against the budget, and queued again with "
                              "the same parameters for the next run or worker")
        if outcome is not None and outcome.result.n_nonzero == 0:
            self.notes.append(constant_model_note(self.study))
        return self._result(best, outcome, interrupted, warnings + self.objective.warnings + self.notes)

    def _take_back(self) -> None:
        """Delete the study this process stored, unless another process has put trials in it since."""
        try:
            study_id = self.storage.get_study_id_from_name(self.study.study_name)
            if not self.storage.get_all_trials(study_id, deepcopy=False):
                self.storage.delete_study(study_id)
        except Exception as exc:  # noqa: BLE001 - the refusal is what the user needs to see
            _log.warning("Could not delete the study %r after its start was refused: %s", self.study.study_name,
                         (str(exc).strip().splitlines() or [type(exc).__name__])[0])

    def _deleted(self) -> bool:
        """Whether the study is no longer in its storage (Optuna then raises a bare KeyError, or a
        StorageInternalError from a write that found its row gone)."""
        try:
            self.storage.get_study_id_from_name(self.study.study_name)
        except KeyError:
            return True
        except Exception:  # noqa: BLE001 - an unreachable storage: not known to be deleted
            return False
        return False

    def _start(self) -> None:
        """The observers start (their study attributes stored); the sampler and pruner are set.

        An observer that refuses the start of a study this process has just stored (a deleted MLflow
        experiment, a name MLflow refuses) takes the study back with it: a refused start stores
        nothing, and the corrected command works under the same name."""
        try:
            for obs in self.observers:
                for k, v in obs.on_study_start(self.info).items():
                    self.study.set_user_attr(k, v)
                    self.info.user_attrs[k] = v
        except BaseException:
            if self.created:
                self._take_back()
            raise
        spec = self.spec
        self.study.sampler = seeded_sampler(lambda s: make_sampler(spec.sampler, s, self.space), spec.seed)
        self.study.pruner = make_pruner(spec.pruner, self.config.epochs, spec.cv)

    def _search(self, batch_trials: int | str | None) -> str | None:
        """Batches until the budget is spent or a trial says stop; the signal's name when interrupted."""
        if self.spec.cv or batch_size_for(batch_trials, None, work_size(self.data.X_train)) > 1:
            self.objective.warnings += keep_apart_failing_side_by_side(self.spec.penalties, self.spec.optimizers)
        try:
            self.lost.check()
            while self.budget.wait_for_room():
                grid = self._grid_points_left()
                if grid == 0:
                    self._grid_spent()
                    break
                asked, keep = self._ask(batch_trials, grid)
                if asked and not self.objective.run(asked, self.budget.timed_out):
                    break
                if not keep:  # trials kept failing before they could train
                    break
        except Interrupted as exc:
            return str(exc)
        except KeyboardInterrupt:
            return "SIGINT"
        return self.stop.signal_name  # stopped between trials

    def _ask(self, batch_trials: int | str | None, grid: int | None = None) -> tuple[list[Pending], bool]:
        """Up to ``batch_trials`` new trials (fewer when the budget has less room), prepared, and
        whether the study goes on. A signal (or an error) while asking fails the trials asked so
        far: none is left RUNNING."""
        asked: list[Pending] = []
        try:
            room = self.budget.room()
            if grid is not None:  # a grid point asked twice at once would be evaluated twice
                room = grid if room is None else min(room, grid)
            for _ in range(self._batch_size(batch_trials, room)):
                self.stop.check()
                trial = self.objective.ask()
                try:  # its "worker" attribute is written with its variant (prepare) or its end (give_up)
                    claimed = self.budget.claim(trial.number)
                except BaseException as exc:  # not yet among the asked: abandon below would leave it RUNNING
                    self.objective.fail_asked(trial, exc)
                    raise
                if not claimed:
                    self.objective.give_up(trial, GAVE_UP + " (started with other workers; not counted)")
                    break
                pend, keep = self.objective.prepare(trial)
                if pend is not None:
                    asked.append(pend)
                if not keep:
                    return asked, False
                self.objective.keep_alive(asked)
        except BaseException as exc:
            self.objective.abandon(asked, exc)
            raise
        return asked, True

    def _batch_size(self, batch_trials: int | str | None, room: int | None) -> int:
        """Trials to ask now (see :func:`~tuner.study._trial_batches.batch_size_for`)."""
        if batch_trials != "auto":
            return batch_size_for(batch_trials, room)
        learns = self.spec.sampler in LEARNING_SAMPLERS
        return batch_size_for(batch_trials, room, work_size(self.data.X_train),
                              finished_trials(self.study) if learns else None, self._largest_group)

    @functools.cached_property
    def _largest_group(self) -> int:
        """The most trials one group of this search trains side by side here."""
        return max(self.objective.runner.group_limit(o) for o in self.spec.optimizers)

    def _grid_points_left(self) -> int | None:
        """With ``--sampler grid``, the grid points no trial has taken yet (None for other samplers)."""
        left = getattr(self.study.sampler, "grid_points_left", None)
        return left(self.study) if callable(left) else None

    def _grid_spent(self) -> None:
        """The grid is spent before the budget: say so in the summary (once)."""
        total = self.budget.n_trials
        if total is not None and self.budget.done() < total and not self.notes:
            self.notes.append(f"every point of the grid has been evaluated; the study stops short of its budget "
                              f"of {total} trials (--sampler grid)")

    def _after_trial(self, trial: Any) -> bool:
        """After each trial: fail lost trials, report progress; False when the study should stop."""
        self.lost.check()  # before the next trial starts, as Optuna would (but with the reason)
        if not given_up(trial):  # a given-up trial is no failure of this process's and changes nothing
            reason = trial.user_attrs.get("fail_reason") if trial.state.name == "FAIL" else None
            self.mine[trial.number] = (trial.state.name, reason)
            if self.progress is not None:
                self._report(trial, reason)
        # (the budget is checked before the next batch: the rest of this one is already running)
        return not (self.stop.signum is not None or len(failure_streak(self.mine)) >= FAIL_STREAK)

    def _report(self, trial: Any, reason: str | None) -> None:
        assert self.progress is not None
        try:
            best = self.study.best_value
        except ValueError:
            best = None
        quiet = (reason or "").startswith((GAVE_UP, "interrupted"))  # not failures of the trial itself
        self.progress({"done": self.budget.done(), "total": self.budget.n_trials, "best": best,
                       "elapsed": time.time() - self.started, "last_state": trial.state.name,
                       "number": trial.number, "reason": None if quiet else reason})

    def _budget_spent(self) -> bool:
        total = self.budget.n_trials
        return total is not None and self.budget.done() >= total

    def _on_lost(self, number: int, reason: str) -> None:
        for obs in self.observers:
            obs.on_trial_lost(self.info, number, reason)

    def _stopped(self, status: str, reason: str | None) -> None:
        """Tell every observer how the run ended; one that fails does not keep the others from hearing."""
        for obs in self.observers:
            try:
                for k, v in (obs.on_study_stop(self.info, status, reason) or {}).items():
                    self.study.set_user_attr(k, v)  # e.g. the trials MLflow did not record, as at a normal end
            except Exception as exc:  # noqa: BLE001 - the study's own outcome (or error) is what to report
                _log.warning("An observer failed to record the end of study %r: %s", self.info.name, exc)

    def _refit_and_end(self, best: Any) -> tuple[TrainOutcome | None, str | None]:
        """Refit the best configuration (unless this process trained it) and let the observers
        register it.

        A signal during the refit stops it (nothing is registered); one during the end of the
        study (registration) waits until that is done, so the champion stays consistent.
        Returns the outcome (None when interrupted) and the signal's name, if any.
        """
        pn, on = split_variant(best.params[VARIANT])
        pp, op = params_of(self.space, best)
        try:
            self.stop.check()
            outcome = self.objective.outcome_of(best.number) or \
                train_one(self.data, pn, on, pp, op, self.config, [StopCallback(self.stop)])
        except Interrupted as exc:
            return None, str(exc)
        history = [{"number": t.number, "state": t.state.name, "value": t.value,
                    "params": public_params(t.params, self.space), "given_up": given_up(t)}
                   for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()]
        binfo = TrialInfo(best.number, pn, on, dict(best.params), pp, op, dict(best.user_attrs), best.value)
        self.stop.critical = True
        try:
            self.study.set_user_attr("best_test_metrics", outcome.test_metrics)
            for obs in self.observers:
                for k, v in obs.on_study_end(self.info, binfo, outcome, history).items():
                    self.study.set_user_attr(k, v)
        finally:
            self.stop.critical = False
        return outcome, self.stop.signal_name

    def _result(self, best: Any, outcome: TrainOutcome | None, interrupted: str | None,
                warnings: list[str]) -> StudyResult:
        study = self.study
        counts = trial_counts(study)
        # a process that ran no trial still has no answer to give when the study's trials all ended pruned
        # (exit 0 would say there is one); while other processes' trials run, one may yet complete
        settled = bool(self.mine) or not counts["running"]
        no_result = none_completed(study) if best is None and settled and not interrupted else None
        if best is None and not self.mine and not interrupted and self.budget.timed_out():
            # exit code 0 would say there is an answer
            no_result = (f"No trial of study {study.study_name!r} ran: the 'timeout' parameter ({self.spec.timeout:g} s) "
                         "ran out before the first one started; give a longer one")
        budget = self.budget.n_trials  # as stored now: another process may have changed it
        return StudyResult(study.study_name, self.info.storage_url, self.spec.metric, self.info.direction,
                           counts, best.number if best else None, best.value if best else None,
                           public_params(best.params, self.space) if best else {}, outcome, interrupted,
                           warnings + budget_warnings(self.budget, self.spec, self.mine) + self._budget_changed(budget),
                           time.time() - self.started, no_result=no_result, budget=budget, cv=self.spec.cv)

    def _budget_changed(self, now: int | None) -> list[str]:
        """What the summary says when another process stored another budget (``now``) while this one
        ran (every process follows the stored one: this run may have stopped sooner or later than asked)."""
        if now == self.spec.n_trials:
            return []
        return [f"another process changed the study's budget from {self.spec.n_trials} to {now} trials while this run "
                f"went on (a resume's 'trials' parameter sets it for every process); this run followed it and stopped "
                f"with {self.budget.done()} finished trials"]
