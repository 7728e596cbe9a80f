"""One child run per trial: created when the trial starts, filled and ended when it ends.

A run holds the trial's parameters (the public names: ``penalty``, ``optimizer``,
``penalty.NAME``, ``optimizer.NAME``), tags (study, trial number, state, plugin distributions
and versions, data fingerprint, device, library versions), per-epoch metrics under ``epoch/``
(step = epoch), final metrics (``val_*``, ``test_*``, ``n_nonzero_weights``, ``fit_seconds``,
``epochs_run``) and the trial's weights (``weights.safetensors``). Only a COMPLETE trial logs
the ranking metrics (``val_*``, ``test_*``): a pruned or failed one logs its last values as
``pruned_at_val_*`` / ``failed_at_val_*`` (its epochs stay under ``epoch/``), so it never
sorts above a finished trial. Pruned trials end ``KILLED``, failed ones ``FAILED``, the reason
in ``tuner.reason``. The work runs on the :class:`TrackingQueue`, overlapping the next
trial's training; the trial loop only waits for the run id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner.study import TrialInfo
from tuner.tracking._names import (
    ATTR_LOGGED,
    ATTR_RUN,
    EPOCH_PREFIX,
    RUN_STATUS,
    TAG_LOGGED,
    TAG_REASON,
    TAG_ROLE,
    TAG_STATE,
    TAG_STUDY_UID,
    TAG_TRIAL,
    TAG_VALUE,
    WEIGHTS_ARTIFACT,
    cv_finals,
)
from tuner.tracking._store import short
from tuner.tracking._study_run import StudyRun
from tuner.tracking._writer import RunWriter, TrackingQueue, metric_list, now_ms, to_float
from tuner.train import Callback

__all__ = ["TrialRuns", "TrialPayload", "EpochLogger", "epoch_key", "weights_blob", "RANKED_PREFIXES"]

# final metrics a reviewer ranks trials by: logged under these names only for COMPLETE trials
RANKED_PREFIXES = ("val_", "test_", "cv_")


@dataclass
class _Pending:
    """A trial whose run is being created, with the epoch metrics not sent yet."""

    study: str
    number: int
    create: Future
    metrics: list[Any] = field(default_factory=list)
    last_epoch: int = 0
    last_values: dict[str, float] = field(default_factory=dict)  # the latest epoch's val_* values
    last_flush: float = field(default_factory=time.monotonic)
    params: dict[str, Any] | None = None
    """The trial's parameters, until a batch has carried them (the first epochs sent, or the end)."""


@dataclass
class TrialPayload:
    """What a finished trial's run receives: parameters, final metrics and tags."""

    params: dict[str, Any]
    finals: dict[str, float]
    tags: dict[str, str]
    state: str = "COMPLETE"

    def metrics(self) -> dict[str, float]:
        """The final metrics under the names they are logged with: a trial that did not complete
        keeps its last ``val_*`` / ``test_*`` / ``cv_*`` values as ``pruned_at_*`` / ``failed_at_*``, so that
        they never compete with finished trials in the ranking columns."""
        if self.state == "COMPLETE":
            return dict(self.finals)
        prefix = "pruned_at_" if self.state == "PRUNED" else "failed_at_"
        return {(prefix + k if k.startswith(RANKED_PREFIXES) else k): v for k, v in self.finals.items()}


def epoch_key(metric: str) -> str:
    """The per-epoch metric (under ``epoch/``) a trial run holds the study metric in: ``val_loss``
    for ``log_loss`` (the trainer's validation loss, which :class:`EpochLogger` does not log twice),
    else ``val_<metric>``."""
    return "val_loss" if metric == "log_loss" else f"val_{metric}"


class EpochLogger(Callback):
    """Buffers ``train_loss``, ``val_loss`` and ``val_<metric>`` per epoch (step = epoch).

    Everything is sent in one ``log_batch`` when the trial ends; a long trial also sends
    what it has every ``flush_interval`` seconds, so the UI shows it live.
    """

    def __init__(self, runs: TrialRuns, pending: _Pending) -> None:
        self.runs, self.pending = runs, pending

    def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
        from mlflow.entities import Metric

        rec = self.pending
        ts, step = now_ms(), int(logs["epoch"] if "epoch" in logs else state.epoch)
        rec.last_epoch = step
        for key, value in logs.items():
            if key.startswith("val_") and to_float(value) is not None:
                rec.last_values[key] = float(value)
            if key != "epoch" and not (key == "val_log_loss" and logs.get("val_loss") == value):  # no duplicate
                v = to_float(value)
                if v is not None:
                    rec.metrics.append(Metric(EPOCH_PREFIX + key, v, ts, step))
        interval = self.runs.flush_interval
        if interval is not None and time.monotonic() - rec.last_flush >= interval:
            self.runs.flush_epochs(rec)


class TrialRuns:
    """Creates, fills and ends trial runs through a :class:`RunWriter` on a :class:`TrackingQueue`."""

    def __init__(self, writer: RunWriter, queue: TrackingQueue, flush_interval: float | None = 15.0) -> None:
        self.writer, self.queue, self.flush_interval = writer, queue, flush_interval
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._plugin_tags: dict[tuple[str, str], dict[str, str]] = {}

    # ---- creating -------------------------------------------------------------------------
    def plugin_tags(self, kind: str, name: str) -> dict[str, str]:
        """``tuner.<kind>``, its distribution and version (``unknown`` for an unregistered name)."""
        key = (kind, name)
        if key not in self._plugin_tags:
            from tuner._registry import optimizers, penalties

            try:
                info = (penalties if kind == "penalty" else optimizers).info(name)
                dist, ver = info.distribution, info.version
            except Exception:
                dist, ver = "unknown", "unknown"
            self._plugin_tags[key] = {f"tuner.{kind}": name, f"tuner.{kind}.distribution": dist,
                                      f"tuner.{kind}.version": ver}
        return self._plugin_tags[key]

    def tags(self, run: StudyRun, trial: TrialInfo) -> dict[str, str]:
        """The tags a trial run starts with (state RUNNING), the study's identity among them."""
        uid = {TAG_STUDY_UID: run.uid} if run.uid else {}
        return {**uid,
            "mlflow.parentRunId": run.parent_run_id, TAG_ROLE: "trial", TAG_TRIAL: str(trial.number),
            TAG_STATE: "RUNNING", "optuna.study_name": run.name, "optuna.trial_number": str(trial.number),
            **run.base_tags, **self.plugin_tags("penalty", trial.penalty),
            **self.plugin_tags("optimizer", trial.optimizer),
            "tuner.device": str(run.spec.get("train", {}).get("device", "auto")),
        }

    def create(self, run: StudyRun, trial: TrialInfo, start_ms: int) -> Any:
        """A new child run of the study's parent run (now, on the calling thread). Its parameters
        go with the first batch sent to it: the first epochs of a long trial (every
        ``flush_interval`` seconds), else its end. A run of its own for them cost a store call a
        trial (0.4 s of a 50-trial breast_cancer study); a worker killed before its first batch
        leaves a run the next worker fills from the study storage."""
        return self.writer.client.create_run(run.experiment_id, start_time=start_ms, tags=self.tags(run, trial),
                                             run_name=f"trial-{trial.number:04d}")

    def start(self, run: StudyRun, trial: TrialInfo) -> list[Callback]:
        """Queue the run's creation; the trainer callbacks that log the trial's epochs."""
        fut = self.queue.submit(run.name, trial.number, self.create, run, trial, now_ms())
        rec = _Pending(run.name, trial.number, fut, params=dict(trial.public_params))
        self._pending[(run.name, trial.number)] = rec
        return [EpochLogger(self, rec)]

    def flush_epochs(self, rec: _Pending) -> None:
        """Send the epoch metrics buffered so far (on the tracking thread)."""
        metrics, rec.metrics = rec.metrics, []
        rec.last_flush = time.monotonic()
        if metrics:
            params, rec.params = rec.params or {}, None  # the first batch carries the parameters
            self.queue.submit(rec.study, rec.number,
                              lambda: self.writer.log_batch(rec.create.result().info.run_id, metrics=metrics,
                                                            params=params))

    # ---- ending ---------------------------------------------------------------------------
    def finish(self, run: StudyRun, trial: TrialInfo, state: str, value: float | None, outcome: Any,
               reason: str | None) -> dict[str, Any]:
        """Queue the run's final data and end; the trial attributes to store (run id or not logged)."""
        rec = self._pending.pop((run.name, trial.number), None)
        if rec is None:  # start was not called (or failed): create the run now
            rec = _Pending(run.name, trial.number,
                           self.queue.submit(run.name, trial.number, self.create, run, trial, now_ms()),
                           params=dict(trial.public_params))
        metrics, rec.metrics = rec.metrics, []
        payload = self.payload(trial, state, value, outcome, reason, rec.last_epoch)
        if outcome is not None and outcome.cv_metrics is not None:  # what the study ranks by, beside val_*
            payload.finals.update(cv_finals(run.metric, [m.get(run.metric) for m in outcome.cv_metrics]))
        if outcome is None and state != "COMPLETE":  # its last epoch's values, logged as pruned_at_* / failed_at_*
            last = dict(rec.last_values)
            if "val_loss" in last:
                last.setdefault("val_log_loss", last["val_loss"])
            payload.finals.update({k: v for k, v in last.items() if k != "val_loss"})
        weights = weights_blob(outcome) if outcome is not None else None
        params = payload.params if rec.params is not None else {}
        rec.params = None
        status = "KILLED" if reason and "interrupted" in reason else RUN_STATUS.get(state, "FAILED")
        end_ms = now_ms()

        def send() -> None:
            created = rec.create.result()
            if weights is not None:
                self.writer.write_artifact(created.info.artifact_uri, WEIGHTS_ARTIFACT, weights)
            # One batch for everything (each log_batch costs several store transactions);
            # tuner.logged=true in it marks the run complete for sync_study. The parameters
            # unless an earlier batch of epochs carried them.
            self.writer.log_batch(created.info.run_id, metrics=list(metrics) + metric_list(payload.metrics(), end_ms),
                                  params=params, tags={**payload.tags, TAG_LOGGED: "true"})
            self.writer.client.set_terminated(created.info.run_id, status, end_time=end_ms)

        self.queue.submit(run.name, trial.number, send)
        attrs: dict[str, Any] = {}
        try:
            attrs[ATTR_RUN] = rec.create.result(timeout=None if self.queue.background else 0).info.run_id
        except Exception:
            attrs[ATTR_LOGGED] = False
        if self.queue.offline:
            attrs[ATTR_LOGGED] = False
        return attrs

    def log_complete(self, run: StudyRun, trial: TrialInfo, state: str, payload: TrialPayload,
                     metrics: Sequence[Any], start_ms: int, end_ms: int) -> str:
        """A whole trial run at once (now): created, filled, marked logged and ended; its id."""
        created = self.create(run, trial, start_ms)
        run_id = str(created.info.run_id)
        self.writer.log_batch(run_id, metrics=list(metrics) + metric_list(payload.metrics(), end_ms),
                              params=payload.params, tags={**payload.tags, TAG_LOGGED: "true"})
        self.writer.client.set_terminated(run_id, RUN_STATUS.get(state, "FAILED"), end_time=end_ms)
        return run_id

    def finish_existing(self, existing: Any, state: str, payload: TrialPayload, metrics: Sequence[Any],
                        end_ms: int) -> str:
        """Fill and end an incomplete run of the trial in place (now); its id. Parameters and
        epoch points it already holds are not sent again (MLflow refuses a changed parameter)."""
        run_id = str(existing.info.run_id)
        params = {k: v for k, v in payload.params.items() if k not in existing.data.params}
        have = {key: {m.step for m in self.writer.client.get_metric_history(run_id, key)}
                for key in {m.key for m in metrics} & set(existing.data.metrics)}
        new = [m for m in metrics if m.step not in have.get(m.key, ())]
        self.writer.log_batch(run_id, metrics=new + metric_list(payload.metrics(), end_ms), params=params,
                              tags={**payload.tags, TAG_LOGGED: "true"})
        self.writer.client.set_terminated(run_id, RUN_STATUS.get(state, "FAILED"), end_time=end_ms)
        return run_id

    def close_lost(self, runs: Sequence[Any], reason: str) -> None:
        """End the given runs of a trial whose worker died as FAILED, with the reason (now), when
        the study storage could not fill them: not marked logged, so a sync fills them later."""
        for r in runs:
            self.writer.log_batch(r.info.run_id, tags={TAG_STATE: "FAIL", TAG_REASON: short(reason)})
            self.writer.client.set_terminated(r.info.run_id, "FAILED")

    @staticmethod
    def payload(trial: TrialInfo, state: str, value: float | None, outcome: Any, reason: str | None,
                epochs_seen: int = 0) -> TrialPayload:
        """Parameters, final metrics and tags of a finished trial."""
        params: dict[str, Any] = dict(trial.public_params)  # the public names only (see tuner.study)
        tags = {TAG_STATE: state}
        if reason:
            tags[TAG_REASON] = short(reason)
        finals: dict[str, float] = {}
        if outcome is not None:
            finals.update(_outcome_metrics(outcome))
            tags["tuner.device"] = str(outcome.result.device)
            tags["tuner.stop_reason"] = str(outcome.result.stop_reason)
        elif epochs_seen:
            finals["epochs_run"] = epochs_seen
        if value is not None:
            tags[TAG_VALUE] = repr(float(value))
        return TrialPayload(params, finals, tags, state)


def _outcome_metrics(outcome: Any) -> dict[str, float]:
    r = outcome.result
    finals: dict[str, float] = {f"val_{k}": v for k, v in outcome.val_metrics.items()}
    finals.update({f"test_{k}": v for k, v in outcome.test_metrics.items()})
    finals.update(n_nonzero_weights=r.n_nonzero, n_weights=int(r.weight.size), fit_seconds=r.fit_seconds,
                  epochs_run=r.epochs_run, best_epoch=r.best_epoch, train_objective=r.objective)
    if outcome.optimality_gap is not None:
        finals["optimality_gap"] = outcome.optimality_gap
    return finals


def weights_blob(outcome: Any) -> bytes:
    """A trial's weights as safetensors bytes (coef, intercept; classes and plugins in metadata)."""
    from safetensors.numpy import save

    model = outcome.model
    meta: Mapping[str, str] = {
        "classes": json.dumps(list(model.classes_), default=str), "penalty": str(model.info.get("penalty")),
        "optimizer": str(model.info.get("optimizer")), "n_features": str(model.coef_.shape[0]),
        "format": "logreg-tuner trial weights: coef (n_features, k), intercept (k)"}
    return bytes(save({"coef": np.ascontiguousarray(model.coef_, dtype=np.float64),
                       "intercept": np.ascontiguousarray(model.intercept_, dtype=np.float64)}, metadata=dict(meta)))
