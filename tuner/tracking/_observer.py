"""The study observer that logs to MLflow: a parent run per study, a child run per trial, the best
model registered.

:class:`MlflowObserver` implements the search loop's :class:`~tuner.study.StudyObserver` hooks
by composing small parts: a :class:`RunWriter` (the explicit ``MlflowClient``, never the
process-global ``mlflow.start_run`` state, so several studies or workers in one process do
not cross wires), a :class:`TrackingQueue` (trial logging on one background thread,
overlapping the next trial's training), :class:`StudyRuns` (parent runs), :class:`TrialRuns`
(child runs) and :class:`ChampionRegistry` (the registered model and its ``champion`` alias).

Failures: an unreachable server at the start raises :class:`TrackingError` before any trial
runs. Lost mid-study, trials go on: the affected trials get ``mlflow_logged=False`` (or are
listed in the study attribute ``mlflow_unlogged_trials``), and :func:`tuner.tracking.sync_study`
logs what is missing later (``tuner study sync-mlflow NAME``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner.errors import TrackingError, TunerError
from tuner.study import StudyInfo, StudyObserver, TrialInfo, trial_records
from tuner.tracking._champion import ChampionRegistry, trial_value
from tuner.tracking._home import absolute_uri
from tuner.tracking._names import (
    ATTR_EXPERIMENT,
    ATTR_PARENT,
    ATTR_RUN,
    ATTR_STUDY_LOGGED,
    ATTR_TRACKING,
    ATTR_UNLOGGED,
    check_model_name,
)
from tuner.tracking._store import check_server, default_tracking_uri, first_line, is_http, open_store, redact
from tuner.tracking._stored import StoredTrials, is_logged
from tuner.tracking._study_run import StudyRun, StudyRuns
from tuner.tracking._trial_runs import TrialRuns
from tuner.tracking._writer import RunWriter, TrackingQueue
from tuner.train import Callback

__all__ = ["MlflowObserver"]

_log = logging.getLogger("tuner.tracking")


class MlflowObserver(StudyObserver):
    """Logs studies to MLflow at ``tracking_uri`` (default :func:`default_tracking_uri`).

    Args:
        tracking_uri: ``sqlite:///path.db`` (artifacts next to it in ``mlartifacts/``),
            ``http(s)://server`` (artifacts where the server puts them), or any URI MLflow
            accepts.
        artifact_root: where experiments created here keep artifacts (database stores only).
        register_model: log the best model as a pyfunc model and register it (alias
            ``champion``) at the end of a study.
        plots: log the study plots at the end of a study.
        background: do a trial's logging on a background thread (default); ``False`` logs
            synchronously in the trial loop.
        flush_interval: seconds between intermediate epoch-metric flushes of a long trial
            (``None``: only at the end of the trial).

    The constructor only stores arguments; :meth:`check` (called by :meth:`on_study_start`)
    is the first thing that talks to MLflow.
    """

    def __init__(self, tracking_uri: str | None = None, *, artifact_root: str | Path | None = None,
                 register_model: bool = True, plots: bool = True, background: bool = True,
                 flush_interval: float | None = 15.0) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.artifact_root = artifact_root
        self.register_model = register_model
        self.plots = plots
        self.background = background
        self.flush_interval = flush_interval
        self.writer = RunWriter(self.tracking_uri)
        self.queue = TrackingQueue(self.tracking_uri, background=background)
        self.studies = StudyRuns(self.writer, artifact_root)
        self.trials = TrialRuns(self.writer, self.queue, flush_interval)
        self.champions = ChampionRegistry(self.writer)
        self._runs: dict[str, StudyRun] = {}
        self._unlogged_before: dict[str, list[int]] = {}
        self._trained: set[str] = set()  # the studies this process started a trial of
        self._checked = False

    @property
    def client(self) -> Any:
        """The explicit ``MlflowClient`` (bounded HTTP retries and timeouts)."""
        return self.writer.client

    @property
    def last_error(self) -> str | None:
        """The first line of the last MLflow failure (None when none happened)."""
        return self.queue.last_error

    def check(self) -> None:
        """Raise :class:`TrackingError` unless the tracking store answers (quickly)."""
        if self._checked:
            return
        if is_http(self.tracking_uri):
            check_server(self.tracking_uri, advice="start it (mlflow server ...), fix --tracking-uri / "
                                                   "MLFLOW_TRACKING_URI, or run with --no-tracking")
        else:
            open_store(self.tracking_uri, lambda: self.client)
        self._checked = True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the queued tracking work is done; False when ``timeout`` ran out."""
        return self.queue.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued work and stop the tracking thread."""
        self.queue.close(timeout)

    def study_run(self, study_name: str) -> StudyRun:
        """The study's experiment and parent run (after :meth:`on_study_start`)."""
        run = self._runs.get(study_name)
        if run is None:
            raise TrackingError(f"on_study_start was not called for study {study_name!r}.")
        return run

    def child_runs(self, study_name: str) -> dict[int, list[Any]]:
        """The study's trial runs in MLflow by trial number (after :meth:`on_study_start`)."""
        return self.studies.child_runs(self.study_run(study_name))

    # ---- the hooks --------------------------------------------------------------------------
    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        if self.register_model:  # the best model is registered under the study's name
            check_model_name(study.name, "create the MlflowObserver with register_model=False")
        self.check()
        try:
            run = self.studies.open(study)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow at {redact(self.tracking_uri)} failed while opening study "
                                f"{study.name!r}: {first_line(exc)}") from None
        self._runs[study.name] = run
        self._unlogged_before[study.name] = self._finished_without_run(study, run)
        return {ATTR_PARENT: run.parent_run_id, ATTR_EXPERIMENT: run.experiment_id, ATTR_TRACKING: redact(absolute_uri(self.tracking_uri))}

    def _finished_without_run(self, study: StudyInfo, run: StudyRun) -> list[int]:
        """The study's finished trials that have no complete run in this store as this process
        joins it: the store was replaced, or they ran with ``--no-tracking``. They are reported at
        the end as trials MLflow did not record (``tuner study sync-mlflow`` logs them), not left
        out of the MLflow UI without a word."""
        try:
            finished = [t.number for t in trial_records(study.storage_url, study.name) if t.finished]
        except TunerError:  # no study stored (an observer driven by hand): nothing ran before
            return []
        if not finished:
            return []
        logged = self.studies.child_runs(run)
        return [n for n in finished if not is_logged(logged.get(n, []))]

    def on_trial_start(self, study: StudyInfo, trial: TrialInfo) -> tuple[Sequence[Callback], dict[str, Any]]:
        self._trained.add(study.name)
        return self.trials.start(self.study_run(study.name), trial), {}

    def on_trial_end(self, study: StudyInfo, trial: TrialInfo, state: str, value: float | None,
                     outcome: Any, reason: str | None) -> dict[str, Any]:
        return self.trials.finish(self.study_run(study.name), trial, state, value, outcome, reason)

    def on_study_end(self, study: StudyInfo, best: TrialInfo | None, best_outcome: Any,
                     history: list[dict[str, Any]]) -> dict[str, Any]:
        run = self.study_run(study.name)
        self.flush()
        attrs: dict[str, Any] = {}
        try:
            attrs.update(self._finish_study(run, best, best_outcome, history, study.data))
        except Exception as exc:
            self.queue.went_offline(exc)
            attrs[ATTR_STUDY_LOGGED] = False
        unlogged = self._unlogged(study.name, run)
        if unlogged:
            attrs[ATTR_UNLOGGED] = unlogged
        return attrs

    def _unlogged(self, study_name: str, run: StudyRun) -> list[int]:
        """The trials MLflow did not record: those this process could not log, and those that had
        no run when it joined the study and still have none (a sync may have logged them since)."""
        before = self._unlogged_before.get(study_name, [])
        if before:
            logged = self.studies.child_runs(run)
            before = [n for n in before if not is_logged(logged.get(n, []))]
            self._unlogged_before[study_name] = before
        return sorted({*self.queue.unlogged(run.name), *before})

    def on_trial_lost(self, study: StudyInfo, number: int, reason: str) -> None:
        """Log the trial whose worker died from what the study storage kept (its parameters, the
        epochs it reported, the reason), finishing the run the worker left in place as FAILED."""
        run = self.study_run(study.name)
        self.queue.submit(run.name, number, self._log_lost, study, run, number, reason)

    def _log_lost(self, study: StudyInfo, run: StudyRun, number: int, reason: str) -> None:
        runs = self.studies.trial_runs(run, number)
        try:
            record = next(t for t in trial_records(study.storage_url, study.name) if t.number == number)
        except Exception as exc:  # noqa: BLE001 - the storage, not MLflow: close the run, sync fills it later
            _log.debug("Could not read lost trial %d of study %r: %s", number, study.name, first_line(exc))
            record = None
        if record is None or not record.finished:
            self.trials.close_lost([r for r in runs if r.info.status == "RUNNING"], reason)
            self.queue.mark_unlogged(run.name, number)
            return
        StoredTrials(self.trials, study).log_missing(run, record, runs)

    def on_study_stop(self, study: StudyInfo, status: str, reason: str | None) -> dict[str, Any]:
        """End the parent run (after the queued trial logging) when the study stops without a refit;
        the study attributes to store, as :meth:`on_study_end` (the trials MLflow did not record).
        A failed study has no summary to say so in: a warning names them."""
        run = self._runs.get(study.name)
        if run is None:
            return {}
        self.flush()
        attrs: dict[str, Any] = {}
        try:
            if study.name in self._trained or run.status_before is None:
                self.studies.end(run, status, reason)
            else:  # joined, ran no trial: how it stopped is not how the study did
                self.studies.put_back(run)
        except Exception as exc:
            self.queue.went_offline(exc)
            attrs[ATTR_STUDY_LOGGED] = False
        unlogged = self._unlogged(study.name, run)
        if unlogged:
            attrs[ATTR_UNLOGGED] = unlogged
        if status == "FAILED" and attrs:
            what = f"{len(unlogged)} trial(s) of study {study.name!r}" if unlogged else f"the end of study {study.name!r}"
            _log.warning("MLflow did not record %s; `tuner study sync-mlflow %s` logs what is missing once it is "
                         "reachable", what, study.name)
        return attrs

    # ---- end of study -----------------------------------------------------------------------
    def _finish_study(self, run: StudyRun, best: TrialInfo | None, best_outcome: Any,
                      history: list[dict[str, Any]], loaded: Any = None) -> dict[str, Any]:
        """Summary, plots, best run and registered model, then the parent run ends FINISHED;
        ``loaded``: the study's data when the study process has it (else it is read again, for
        the test plots and the input example). On an error the parent run ends FAILED with the
        reason (when MLflow still answers; a sync ends it later) and the error propagates."""
        step = "logging the study summary"
        try:
            attrs: dict[str, Any] = {}
            self.studies.log_summary(run, history)
            data = None
            if best_outcome is not None and (self.plots or self.register_model):
                data = loaded if loaded is not None else _reload_data(run.spec)
            if self.plots:
                step = "logging the study plots"
                self.studies.log_plots(run, history, best_outcome, data)
            if best is not None and best_outcome is not None:
                step = "marking the best trial"
                source = self._trial_run_id(run, best)
                self.studies.mark_best(run, best.number, trial_value(best, best_outcome, run.metric),
                                       None if source == run.parent_run_id else source)
                if self.register_model:
                    step = "registering the best model"
                    attrs.update(self.champions.register(run, best, best_outcome, data, source))
                    self.studies.mark_champion(run, attrs)
        except Exception as exc:
            try:
                self.studies.end(run, "FAILED", f"{step} failed: {first_line(exc)}")
            except Exception as second:  # noqa: BLE001 - the first error is the one to report
                _log.debug("Could not end the parent run: %s", first_line(second))
            raise
        self.studies.end(run, "FINISHED")
        return attrs

    def _trial_run_id(self, run: StudyRun, best: TrialInfo) -> str:
        rid = best.user_attrs.get(ATTR_RUN)
        if rid:
            return str(rid)
        runs = self.studies.trial_runs(run, best.number)
        return str(runs[0].info.run_id) if runs else run.parent_run_id


def _reload_data(spec: Mapping[str, Any]) -> Any:
    """The study's data, split as in the study (for the test-split plots and the input example)."""
    from tuner.study import StudySpec, load_dataset_for

    try:
        return load_dataset_for(StudySpec.from_json(json.dumps(dict(spec))))
    except Exception as exc:
        _log.warning("Could not reload the study data for the test plots: %s", first_line(exc))
        return None
