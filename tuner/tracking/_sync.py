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
    load_dataset_for,
    params_of,
    set_study_attrs,
    split_variant,
    study_record,
    train_config,
    train_one,
    trial_records,
)
from tuner.tracking._names import (
    ATTR_RUN,
    ATTR_STUDY_LOGGED,
    ATTR_UNLOGGED,
    EPOCH_PREFIX,
    TAG_LOGGED,
    check_model_name,
    cv_finals,
)
from tuner.tracking._observer import MlflowObserver
from tuner.tracking._store import check_server, default_tracking_uri, first_line, redact
from tuner.tracking._study_run import StudyRun
from tuner.tracking._trial_runs import epoch_key
from tuner.tracking._writer import now_ms, to_float

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


def _plugins_of(t: TrialRecord) -> tuple[str, str]:
    """The trial's penalty and optimizer names (``unknown`` where the storage lost them)."""
    try:
        pen, opt = split_variant(str(t.params.get(VARIANT, "")))
    except ConfigError:
        pen = opt = "unknown"
    return str(t.user_attrs.get("penalty") or pen), str(t.user_attrs.get("optimizer") or opt)


class _Sync:
    """One sync of one study through ``obs``."""

    def __init__(self, obs: MlflowObserver, info: StudyInfo) -> None:
        self.obs, self.info = obs, info
        self.storage_url, self.name = info.storage_url, info.name
        self._space: Any = None

    def run(self, register_model: bool) -> dict[str, Any]:
        set_study_attrs(self.storage_url, self.name, self.obs.on_study_start(self.info))
        run = self.obs.study_run(self.name)
        trials = trial_records(self.storage_url, self.name)
        synced, already = self._log_missing(run, trials)
        history = [{"number": t.number, "state": t.state, "value": t.value, "params": t.params}
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
            runs = existing.get(t.number, [])
            if any(r.data.tags.get(TAG_LOGGED) == "true" and r.info.status != "RUNNING" for r in runs):
                already += 1
                continue
            keep = _run_of(t, runs)
            for r in runs:
                if r is not keep:
                    self.obs.client.delete_run(r.info.run_id)
            self._log_trial(run, t, keep)
            synced.append(t.number)
        return synced, already

    def _log_trial(self, run: StudyRun, t: TrialRecord, existing: Any = None) -> str:
        """The child run of a finished trial from what the storage kept about it: ``existing``
        (an incomplete run of the trial) finished in place, or a new run."""
        from mlflow.entities import Metric

        pen, opt = _plugins_of(t)
        pp, op = self._plugin_params(t)
        trial = TrialInfo(t.number, pen, opt, dict(t.params), pp, op, dict(t.user_attrs))
        start = int(t.datetime_start.timestamp() * 1000) if t.datetime_start else now_ms()
        end = int(t.datetime_complete.timestamp() * 1000) if t.datetime_complete else now_ms()
        reason = t.user_attrs.get("prune_reason") or t.user_attrs.get("fail_reason")
        # As a live run: the value (tuner.value) of a complete trial only (Optuna keeps a pruned
        # trial's last report as its value); with cross-validation the reports are the folds'
        # scores, not epochs, and the study keeps no epochs of its trials.
        cv = bool(self.info.spec.get("cv")) or "cv_values" in t.user_attrs
        epochs = {} if cv else t.intermediate_values
        payload = self.obs.trials.payload(trial, t.state, t.value if t.state == "COMPLETE" else None, None, reason,
                                          max(epochs, default=0))
        for k, v in (t.user_attrs.get("val_metrics") or {}).items():
            payload.finals[f"val_{k}"] = v
        if epochs and f"val_{run.metric}" not in payload.finals and t.state != "COMPLETE":
            # the last reported value of a pruned or failed trial (logged as pruned_at_val_* / failed_at_val_*)
            payload.finals[f"val_{run.metric}"] = float(epochs[max(epochs)])
        for k in ("n_nonzero_weights", "epochs_run", "fit_seconds"):
            if k in t.user_attrs:
                payload.finals[k] = t.user_attrs[k]
        if t.user_attrs.get("cv_values"):  # as a live run: the folds' scores and their mean
            payload.finals.update(cv_finals(run.metric, t.user_attrs["cv_values"]))
        payload.tags["tuner.synced"] = "true"
        metrics = [Metric(EPOCH_PREFIX + epoch_key(run.metric), float(v), start, int(step))
                   for step, v in sorted(epochs.items()) if to_float(v) is not None]
        if existing is not None:
            return self.obs.trials.finish_existing(existing, t.state, payload, metrics, end)
        return self.obs.trials.log_complete(run, trial, t.state, payload, metrics, start, end)

    def _plugin_params(self, t: TrialRecord) -> tuple[dict[str, Any], dict[str, Any]]:
        """The trial's penalty and optimizer hyperparameters by bare name, fixed ones included
        (as the search loop gives them; from the stored names alone when the space cannot be built)."""
        try:
            if self._space is None:
                self._space = build_space(StudySpec.from_json(json.dumps(dict(self.info.spec))))
            return params_of(self._space, t)
        except Exception:
            pp = {k.split(".")[-1]: v for k, v in t.params.items() if k.startswith("penalty.")}
            op = {k.split(".")[-1]: v for k, v in t.params.items() if k.startswith("optimizer.")}
            return pp, op

    def _register(self, run: StudyRun, best: TrialRecord, history: list[dict[str, Any]], n_synced: int
                  ) -> dict[str, Any]:
        """Refit the best configuration and end the study as the search loop does (registering it)."""
        binfo, outcome = _refit(run.spec, best)
        keep = _run_of(best, self.obs.child_runs(self.name).get(best.number, []))
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


def _run_of(t: TrialRecord, runs: list[Any]) -> Any:
    """The run of trial ``t`` to keep: the one its ``mlflow_run_id`` names, else the oldest (None: none)."""
    named = [r for r in runs if r.info.run_id == t.user_attrs.get(ATTR_RUN)]
    ordered = named + sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return ordered[0] if ordered else None


def _refit(spec: Mapping[str, Any], best: TrialRecord) -> tuple[TrialInfo, Any]:
    """Train the best trial's configuration again (for registering it after the fact)."""
    s = StudySpec.from_json(json.dumps(dict(spec)))
    space = build_space(s)
    pn, on = split_variant(best.params[VARIANT])
    pp, op = params_of(space, best)
    outcome = train_one(load_dataset_for(s), pn, on, pp, op, train_config(s))
    return TrialInfo(best.number, pn, on, dict(best.params), pp, op, value=best.value), outcome
