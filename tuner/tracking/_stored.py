"""A trial's run made from what the study storage kept about it (sync, and a lost trial's run).

:class:`StoredTrials` logs a finished trial as its live run would hold it: parameters,
plugins, state and reason, the per-epoch study metric (Optuna's intermediate values),
validation metrics, weights counts and times. An incomplete run of the trial (a lost server,
a killed worker) is finished in place, so every pointer to it holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tuner.errors import ConfigError
from tuner.study import VARIANT, StudyInfo, StudySpec, TrialInfo, TrialRecord, build_space, params_of, split_variant
from tuner.tracking._names import ATTR_RUN, EPOCH_PREFIX, TAG_LOGGED, cv_finals
from tuner.tracking._study_run import StudyRun
from tuner.tracking._trial_runs import TrialRuns, epoch_key
from tuner.tracking._writer import now_ms, to_float

__all__ = ["StoredTrials", "run_of", "is_logged"]


def run_of(t: TrialRecord, runs: Sequence[Any]) -> Any:
    """The run of trial ``t`` to keep: the one its ``mlflow_run_id`` names, else the oldest (None: none)."""
    named = [r for r in runs if r.info.run_id == t.user_attrs.get(ATTR_RUN)]
    ordered = named + sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return ordered[0] if ordered else None


def is_logged(runs: Sequence[Any]) -> bool:
    """Whether one of a trial's runs is complete (``tuner.logged=true`` and ended)."""
    return any(r.data.tags.get(TAG_LOGGED) == "true" and r.info.status != "RUNNING" for r in runs)


def _plugins_of(t: TrialRecord) -> tuple[str, str]:
    """The trial's penalty and optimizer names (``unknown`` where the storage lost them)."""
    try:
        pen, opt = split_variant(str(t.params.get(VARIANT, "")))
    except ConfigError:
        pen = opt = "unknown"
    return str(t.user_attrs.get("penalty") or pen), str(t.user_attrs.get("optimizer") or opt)


class StoredTrials:
    """Logs the stored trials of one study (``info``) through ``trials``."""

    def __init__(self, trials: TrialRuns, info: StudyInfo) -> None:
        self.trials, self.info = trials, info
        self._space: Any = None

    def log_missing(self, run: StudyRun, t: TrialRecord, runs: Sequence[Any]) -> bool:
        """Log finished trial ``t`` unless one of its ``runs`` is complete; whether it was logged.
        The run to keep (:func:`run_of`) is finished in place; the trial's other incomplete runs
        are deleted."""
        if is_logged(runs):
            return False
        keep = run_of(t, runs)
        for r in runs:
            if r is not keep:
                self.trials.writer.client.delete_run(r.info.run_id)
        self.log(run, t, keep)
        return True

    def log(self, run: StudyRun, t: TrialRecord, existing: Any = None) -> str:
        """The child run of a finished trial from what the storage kept about it: ``existing``
        (an incomplete run of the trial) finished in place, or a new run; its id."""
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
        payload = self.trials.payload(trial, t.state, t.value if t.state == "COMPLETE" else None, None, reason,
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
            return self.trials.finish_existing(existing, t.state, payload, metrics, end)
        return self.trials.log_complete(run, trial, t.state, payload, metrics, start, end)

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
