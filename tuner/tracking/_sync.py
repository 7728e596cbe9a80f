"""Logging what is missing from MLflow, from the study storage (``tuner study sync-mlflow``).

Reads the study through :mod:`tuner.study`'s Optuna-free queries and drives a synchronous
:class:`MlflowObserver` through its public parts only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tuner.errors import ConfigError, TrackingError
from tuner.study import (
    VARIANT,
    StudyInfo,
    StudySpec,
    TrialInfo,
    TrialRecord,
    best_record,
    build_space,
    given_up,
    load_dataset_for,
    params_of,
    set_study_attrs,
    split_variant,
    study_record,
    train_config,
    train_one,
    trial_records,
)
from tuner.tracking._names import ATTR_RUN, ATTR_STUDY_LOGGED, ATTR_UNLOGGED, check_model_name
from tuner.tracking._observer import MlflowObserver
from tuner.tracking._store import check_server, default_tracking_uri, first_line, redact
from tuner.tracking._stored import StoredTrials, run_of
from tuner.tracking._study_run import StudyRun

__all__ = ["sync_study"]


def sync_study(storage_url: str, study_name: str, tracking_uri: str | None = None, *,
               register_model: bool = True) -> dict[str, Any]:
    """Log to MLflow every finished trial of ``study_name`` that is not (completely) there yet.

    A trial counts as logged when its run carries ``tuner.logged=true``; an incomplete run is
    finished in place (same run id, so every pointer to it holds). What the study storage keeps is logged: parameters, plugins, state and reason,
    the per-epoch study metric (Optuna's intermediate values), validation metrics, weights
    counts and times. With ``register_model``, when the registry's champion is not the study's
    best trial (or worse), the best configuration is refit and registered as at the end of a
    study. Returns what was done; raises :class:`TrackingError` (one line) when MLflow cannot
    be reached or fails on the way, so a partial sync never looks like a complete one.
    """
    uri = tracking_uri or default_tracking_uri()
    if register_model:
        check_model_name(study_name, "sync without registering it (--no-model, register_model=False)")
    check_server(uri)
    info = _study_info(storage_url, study_name)
    obs = MlflowObserver(uri, background=False, register_model=register_model)
    try:
        return _Sync(obs, info).run(register_model)
    except Exception as exc:
        if isinstance(exc, TrackingError) or not _mlflow_failure(exc):
            raise
        raise TrackingError(f"MLflow at {redact(uri)} failed while syncing study {study_name!r}: "
                            f"{first_line(exc, uri)}. What was logged is kept; run `tuner study sync-mlflow "
                            f"{study_name}` again.") from None
    finally:
        obs.close()


def _mlflow_failure(exc: BaseException) -> bool:
    """An error of MLflow, of the HTTP stack under it, or of the file system it writes artifacts to."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, (MlflowException, OSError)) or type(exc).__module__.split(".")[0] in ("requests", "urllib3")


def _study_info(storage_url: str, study_name: str) -> StudyInfo:
    record = study_record(storage_url, study_name)
    if not record.has_spec:
        raise ConfigError(f"Study {study_name!r} was not created by tuner (it has no spec).")
    spec = dict(record.spec)
    return StudyInfo(study_name, storage_url, spec, record.direction, spec.get("metric", "log_loss"),
                     dict(record.user_attrs))


class _Sync:
    """One sync of one study through ``obs``."""

    def __init__(self, obs: MlflowObserver, info: StudyInfo) -> None:
        self.obs, self.info = obs, info
        self.storage_url, self.name = info.storage_url, info.name
        self.stored = StoredTrials(obs.trials, info)

    def run(self, register_model: bool) -> dict[str, Any]:
        set_study_attrs(self.storage_url, self.name, self.obs.on_study_start(self.info))
        run = self.obs.study_run(self.name)
        trials = trial_records(self.storage_url, self.name)
        synced, already = self._log_missing(run, trials)
        history = [{"number": t.number, "state": t.state, "value": t.value, "params": t.params,
                    "given_up": given_up(t)}
                   for t in trials if t.finished]
        result: dict[str, Any] = {"study": self.name, "tracking_uri": redact(self.obs.tracking_uri),
                                  "parent_run_id": run.parent_run_id, "synced_trials": synced,
                                  "already_logged": already}
        best = best_record(self.storage_url, self.name) if register_model else None
        if best is not None and best.value is not None and \
                self.obs.champions.outdated(self.name, best.number, best.value, self.info.direction,
                                            self.info.uid):
            result["model"] = self._register(run, best, history, len(synced))
        else:
            self.obs.studies.log_summary(run, history)
            if self.obs.plots:
                self.obs.studies.log_plots(run, history)
            if not any(t.state == "RUNNING" for t in trials):
                self.obs.studies.end(run, "FINISHED")
        if self.info.user_attrs.get(ATTR_UNLOGGED):
            set_study_attrs(self.storage_url, self.name, {ATTR_UNLOGGED: []})
        return result

    def _log_missing(self, run: StudyRun, trials: list[TrialRecord]) -> tuple[list[int], int]:
        """Log every finished trial without a complete run: an incomplete run is finished in place
        (its id is what the trial's ``mlflow_run_id``, the parent's ``tuner.best_run_id`` and a
        registered version point to); other incomplete runs of the same trial are deleted."""
        existing = self.obs.child_runs(self.name)
        synced, already = [], 0
        for t in trials:
            if not t.finished:
                continue
            if self.stored.log_missing(run, t, existing.get(t.number, [])):
                synced.append(t.number)
            else:
                already += 1
        return synced, already

    def _register(self, run: StudyRun, best: TrialRecord, history: list[dict[str, Any]], n_synced: int
                  ) -> dict[str, Any]:
        """Refit the best configuration and end the study as the search loop does (registering it)."""
        binfo, outcome = _refit(run.spec, best)
        keep = run_of(best, self.obs.child_runs(self.name).get(best.number, []))
        binfo.user_attrs = {ATTR_RUN: keep.info.run_id} if keep is not None else {}
        attrs = self.obs.on_study_end(self.info, binfo, outcome, history)
        if attrs.get(ATTR_STUDY_LOGGED) is False or attrs.get(ATTR_UNLOGGED):
            # on_study_end keeps a study going on any MLflow failure; a sync must not report success
            raise TrackingError(f"MLflow at {redact(self.obs.tracking_uri)} failed while registering the best "
                                f"model of study {self.name!r} ({self.obs.last_error}); the {n_synced} missing "
                                f"trial(s) were logged. Fix the cause and run `tuner study sync-mlflow {self.name}` "
                                "again.")
        set_study_attrs(self.storage_url, self.name, attrs)
        return attrs


def _refit(spec: Mapping[str, Any], best: TrialRecord) -> tuple[TrialInfo, Any]:
    """Train the best trial's configuration again (for registering it after the fact)."""
    s = StudySpec.from_json(json.dumps(dict(spec)))
    space = build_space(s)
    pn, on = split_variant(best.params[VARIANT])
    pp, op = params_of(space, best)
    outcome = train_one(load_dataset_for(s), pn, on, pp, op, train_config(s))
    return TrialInfo(best.number, pn, on, dict(best.params), pp, op, value=best.value), outcome
