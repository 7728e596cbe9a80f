"""MLflow tracking: a parent run per study, a child run per trial, the best model registered.

The only module that imports MLflow. :class:`MlflowObserver` implements the search loop's
:class:`~tuner.study._observer.StudyObserver` hooks with an explicit ``MlflowClient`` (never the
process-global ``mlflow.start_run`` state), so several studies or workers in one process do
not cross wires.

Layout in MLflow:

* one experiment per study, named after it;
* one parent run per study (tags ``tuner.study=NAME``, ``tuner.role=study``), found again on
  resume and shared by every worker; it holds the study spec, the best-value curve and the
  study plots (optimization history, parameter importances, the best model's coefficients
  and ROC curve or confusion matrix);
* one child run per trial (``trial-0007``): parameters (namespaced, plugin names), tags
  (study, trial number, state, plugin distributions and versions, data fingerprint, device,
  library versions), per-epoch metrics under ``epoch/`` (step = epoch), final metrics
  (``val_*``, ``test_*``, ``n_nonzero_weights``, ``fit_seconds``, ``epochs_run``) and the
  trial's weights (``weights.safetensors``). Pruned trials end ``KILLED``, failed ones
  ``FAILED``, the reason in ``tuner.reason``;
* the best model as an MLflow ``python_function`` model (see :mod:`tuner.model._pyfunc`; nothing
  pickled, requirements given explicitly), logged on the best trial's run and registered
  under the study name; alias ``champion`` moves only when a new best beats its value.

Speed: a trial's tracking work (run creation, one ``log_batch`` with parameters, metrics
and tags, the weights file, termination) runs on one background thread per observer,
overlapping the next trial's training; the trial loop only waits for the run id. MLflow's
requirement inference (seconds per model) is never triggered.

Failures: an unreachable server at the start raises :class:`TrackingError` before any trial
runs. Lost mid-study, trials go on: the affected trials get ``mlflow_logged=False`` (or are
listed in the study attribute ``mlflow_unlogged_trials``), and :func:`sync_study` logs what
is missing later (``tuner study sync-mlflow NAME``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tuner.errors import ConfigError, TrackingError
from tuner.study._observer import StudyInfo, StudyObserver, TrialInfo
from tuner.train._trainer import Callback

__all__ = [
    "MlflowObserver",
    "default_tracking_uri",
    "sync_study",
    "save_pyfunc_model",
    "download_model",
    "load_logistic_model",
    "DEFAULT_DB_FILE",
    "DEFAULT_ARTIFACTS_DIR",
    "CHAMPION_ALIAS",
]

_log = logging.getLogger(__name__)

DEFAULT_DB_FILE = "mlflow.db"
DEFAULT_ARTIFACTS_DIR = "mlartifacts"
CHAMPION_ALIAS = "champion"
MODEL_NAME = "model"
WEIGHTS_ARTIFACT = "weights.safetensors"
EPOCH_PREFIX = "epoch/"
BUNDLE_PACKAGE = "logreg_tuner_model"
# module -> the file it is bundled as; their imports of each other become relative in the copy
_BUNDLE_MODULES = {"tuner.errors": "errors.py", "tuner.data._features": "_features.py",
                   "tuner.model._model": "_model.py", "tuner.model._pyfunc": "_pyfunc.py"}

TAG_STUDY = "tuner.study"
TAG_ROLE = "tuner.role"
TAG_TRIAL = "tuner.trial"
TAG_STATE = "tuner.state"
TAG_REASON = "tuner.reason"
TAG_LOGGED = "tuner.logged"
TAG_VALUE = "tuner.value"
ATTR_PARENT = "mlflow_parent_run_id"
ATTR_EXPERIMENT = "mlflow_experiment_id"
ATTR_RUN = "mlflow_run_id"
ATTR_LOGGED = "mlflow_logged"
ATTR_UNLOGGED = "mlflow_unlogged_trials"

_RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
CHECK_TIMEOUT_S = 5
OFFLINE_RETRY_S = 30.0
_HTTP_ENV_DEFAULTS = {  # bounded waits on a lost server (MLflow's defaults retry for minutes)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # set_terminated would print run URLs into --json output
}


def default_tracking_uri() -> str:
    """``sqlite:///<cwd>/mlflow.db`` (artifacts go to ``<cwd>/mlartifacts``)."""
    return f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def _scheme(uri: str) -> str:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", uri)
    return m.group(1).lower() if m else ""


def _is_http(uri: str) -> bool:
    return _scheme(uri) in ("http", "https")


def _redact(uri: str, *urls: str) -> str:
    """``uri`` (or any text) with passwords hidden: the one helper, :func:`tuner.study._storage.redact`."""
    from tuner.study._storage import redact

    return redact(uri, *urls)


_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def _store_uri(uri: str) -> str:
    """A database store's URI with an installed driver (TrackingError naming the pip command otherwise)."""
    if _scheme(uri).split("+")[0] not in _DB_SCHEMES:
        return uri
    from tuner.study._storage import memory_sqlite, resolve_url

    if memory_sqlite(uri):
        raise TrackingError(f"The MLflow tracking store {uri} is an in-memory SQLite database, which forgets every "
                            "run when the command ends; give a file (e.g. sqlite:///mlflow.db).")
    return resolve_url(uri, "MLflow tracking store", TrackingError)


def _sqlite_file(uri: str) -> Path | None:
    if _scheme(uri) != "sqlite":
        return None
    from tuner.study._storage import sqlite_path

    try:
        return sqlite_path(uri)
    except Exception:
        return None


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "study"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _to_float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f


def _better(new: float, old: float, direction: str) -> bool:
    if not math.isfinite(old):
        return math.isfinite(new)
    return new < old if direction == "minimize" else new > old


def _short(text: str, n: int = 4000) -> str:
    return text if len(text) <= n else text[: n - 15] + " ...(truncated)"


class _Offline(TrackingError):
    """Raised without trying while the server is considered lost (for a while after a failure)."""


# --------------------------------------------------------------------------------------------
# Per-trial state and the trainer callback that buffers epoch metrics.


@dataclass
class _TrialRun:
    study: str
    number: int
    create: Future
    metrics: list[Any] = field(default_factory=list)
    last_epoch: int = 0
    last_flush: float = field(default_factory=time.monotonic)


class _EpochLogger(Callback):
    """Buffers ``train_loss``, ``val_loss`` and ``val_<metric>`` per epoch (step = epoch).

    Everything is sent in one ``log_batch`` when the trial ends; a long trial also sends
    what it has every ``flush_interval`` seconds, so the UI shows it live.
    """

    def __init__(self, observer: MlflowObserver, rec: _TrialRun) -> None:
        self.observer, self.rec = observer, rec

    def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
        from mlflow.entities import Metric

        ts, step = _now_ms(), int(logs["epoch"] if "epoch" in logs else state.epoch)
        self.rec.last_epoch = step
        for key, value in logs.items():
            if key != "epoch" and not (key == "val_log_loss" and logs.get("val_loss") == value):  # no duplicate
                v = _to_float(value)
                if v is not None:
                    self.rec.metrics.append(Metric(EPOCH_PREFIX + key, v, ts, step))
        interval = self.observer.flush_interval
        if interval is not None and time.monotonic() - self.rec.last_flush >= interval:
            self.observer._flush_epochs(self.rec)


@dataclass
class _StudyCtx:
    name: str
    experiment_id: str
    parent_run_id: str
    direction: str
    metric: str
    spec: dict[str, Any]
    base_tags: dict[str, str]


# --------------------------------------------------------------------------------------------


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
        self._client: Any = None
        self._checked = False
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._studies: dict[str, _StudyCtx] = {}
        self._trials: dict[tuple[str, int], _TrialRun] = {}
        self._unlogged: dict[str, set[int]] = {}
        self._offline_until = 0.0
        self._last_error: str | None = None
        self._versions: dict[str, str] | None = None
        self._plugin_tags: dict[tuple[str, str], dict[str, str]] = {}

    # ---- connection ---------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:  # _explicit_client bounds HTTP retries and timeouts (bound_http_requests)
            self._client = _explicit_client(_store_uri(self.tracking_uri))
        return self._client

    def check(self) -> None:
        """Raise :class:`TrackingError` unless the tracking store answers (quickly)."""
        if self._checked:
            return
        if _is_http(self.tracking_uri):
            check_server(self.tracking_uri, advice="start it (mlflow server ...), fix --tracking-uri / "
                                                   "MLFLOW_TRACKING_URI, or run with --no-tracking")
        else:
            self._open_store()
        self._checked = True

    def _open_store(self) -> None:
        """Open (on a first start: create) a database or file store; one process at a time creates it."""
        from tuner.study._storage import check_reachable, retry_races, schema_lock, sqlite_writable

        uri, what = self.tracking_uri, "MLflow tracking store"
        store_uri = _store_uri(uri)
        db = _sqlite_file(uri)
        if db is None and _scheme(uri).split("+")[0] in _DB_SCHEMES:
            check_reachable(store_uri, what, TrackingError)
        if db is not None and not sqlite_writable(db):
            raise TrackingError(f"The {what} {db} is read-only (file or folder not writable); give a writable one "
                                "(--tracking-uri / MLFLOW_TRACKING_URI) or run with --no-tracking.")
        try:
            with schema_lock(store_uri, what, TrackingError):
                if db is not None:
                    if not db.exists() or db.stat().st_size == 0:
                        _create_sqlite_store(db)
                    _prepare_sqlite(db)
                retry_races(self.client.search_experiments, max_results=1)
                retry_races(self.client.search_registered_models, max_results=1)
        except TrackingError:
            raise
        except Exception as exc:
            where = db if db is not None else _redact(uri)
            reason = _first_line(exc, uri)
            if "out-of-date database schema" in reason:
                reason = (f"its schema is from another MLflow version ({reason.split('(', 1)[-1].split(')')[0]}); "
                          f"back it up, then run: mlflow db upgrade '{_redact(uri)}'")
            raise TrackingError(f"Cannot open the {what} {where}: {reason}.") from None

    def _artifact_location(self, study_name: str) -> str | None:
        root = self.artifact_root
        if root is None:
            db = _sqlite_file(self.tracking_uri)
            if db is None:
                return None  # a server (or a database store) decides
            root = db.resolve().parent / DEFAULT_ARTIFACTS_DIR
        if isinstance(root, str) and len(_scheme(root)) > 1:  # a URI (a Windows drive letter is not one)
            return f"{root.rstrip('/')}/{_slug(study_name)}"
        return (Path(root).resolve() / _slug(study_name)).as_uri()

    # ---- background work ----------------------------------------------------------------
    def _submit(self, study: str, number: int | None, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn`` on the tracking thread (or now); failures mark the trial unlogged."""

        def job() -> Any:
            try:
                if time.monotonic() < self._offline_until:
                    raise _Offline(f"MLflow unavailable ({self._last_error})")
                return fn(*args)
            except Exception as exc:
                if not isinstance(exc, _Offline):
                    self._went_offline(exc)
                if number is not None:
                    self._unlogged.setdefault(study, set()).add(number)
                raise

        if not self.background:
            fut: Future = Future()
            try:
                fut.set_result(job())
            except Exception as exc:
                fut.set_exception(exc)
            return fut
        with self._lock:
            if self._executor is None:
                # Its worker finishes the queued work before the interpreter exits.
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuner-mlflow")
            return self._executor.submit(job)

    def _went_offline(self, exc: Exception) -> None:
        msg = _first_line(exc)
        if self._last_error is None or time.monotonic() >= self._offline_until:
            _log.warning("MLflow logging failed (%s); trials go on and are marked mlflow_logged=False. "
                         "Run `tuner study sync-mlflow NAME` later to log what is missing.", msg)
        self._last_error = msg
        if _is_http(self.tracking_uri):
            self._offline_until = time.monotonic() + OFFLINE_RETRY_S

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the queued tracking work is done; False when ``timeout`` ran out."""
        ex = self._executor
        if ex is None:
            return True
        try:
            ex.submit(lambda: None).result(timeout=timeout)
            return True
        except Exception:
            return False

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued work and stop the tracking thread."""
        self.flush(timeout)
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=timeout is None)

    # ---- study --------------------------------------------------------------------------
    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        self.check()
        try:
            ctx = self._open_study(study)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow at {_redact(self.tracking_uri)} failed while opening study "
                                f"{study.name!r}: {_first_line(exc)}") from None
        self._studies[study.name] = ctx
        return {ATTR_PARENT: ctx.parent_run_id, ATTR_EXPERIMENT: ctx.experiment_id}

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                # experimentKind: the UI opens the training-runs view (MLflow 3 guesses GenAI otherwise).
                return client.create_experiment(name, artifact_location=self._artifact_location(name),
                                                tags={TAG_STUDY: name, "mlflow.experimentKind": "custom_model_development"})
            except MlflowException as exc:
                if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                    raise
                exp = client.get_experiment_by_name(name)  # another worker created it just now
        if exp.lifecycle_stage != "active":
            raise TrackingError(
                f"The MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore "
                f"--experiment-id {exp.experiment_id}) or remove it for good (mlflow gc) first."
            )
        return exp.experiment_id

    def _parents(self, experiment_id: str, name: str) -> list[Any]:
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{TAG_STUDY}` = '{_q(name)}' and tags.`{TAG_ROLE}` = 'study'",
            max_results=100)
        return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))

    def _open_study(self, study: StudyInfo) -> _StudyCtx:
        client = self.client
        exp_id = self._experiment_id(study.name)
        parent_id = None
        stored = study.user_attrs.get(ATTR_PARENT)
        if stored:
            try:
                run = client.get_run(stored)
                if run.info.lifecycle_stage == "active" and run.info.experiment_id == exp_id:
                    parent_id = run.info.run_id
            except Exception:
                parent_id = None
        if parent_id is None:
            found = self._parents(exp_id, study.name)
            if found:
                parent_id = found[0].info.run_id
            else:
                parent_id = self._create_parent(study, exp_id)
                found = self._parents(exp_id, study.name)  # two workers may have raced: keep the oldest
                if found and found[0].info.run_id != parent_id:
                    client.delete_run(parent_id)
                    parent_id = found[0].info.run_id
        run = client.get_run(parent_id)
        if run.info.status != "RUNNING":
            client.update_run(parent_id, status="RUNNING")
        fp = str(study.spec.get("data", {}).get("fingerprint", ""))
        base = {TAG_STUDY: study.name, "tuner.data.fingerprint": fp, **self.versions()}
        ctx = _StudyCtx(study.name, exp_id, parent_id, study.direction, study.metric, dict(study.spec), base)
        budget = {"tuner.n_trials": str(study.spec.get("n_trials")), "tuner.timeout": str(study.spec.get("timeout"))}
        self._log_batch(parent_id, tags=budget)
        return ctx

    def _create_parent(self, study: StudyInfo, exp_id: str) -> str:
        spec = study.spec
        data = spec.get("data", {})
        tags = {
            TAG_STUDY: study.name, TAG_ROLE: "study", "tuner.metric": study.metric, "tuner.direction": study.direction,
            "tuner.storage": _redact(study.storage_url), "tuner.data.fingerprint": str(data.get("fingerprint", "")),
            "mlflow.note.content": (
                f"Optuna study `{study.name}` ({study.direction} validation {study.metric}); every trial is a "
                f"child run. Study storage: `{_redact(study.storage_url)}`."),
            **self.versions(),
        }
        run = self.client.create_run(exp_id, tags=tags, run_name=study.name)
        params = {"metric": study.metric, "direction": study.direction, "sampler": spec.get("sampler"),
                  "pruner": spec.get("pruner"), "seed": spec.get("seed"),
                  "penalties": ",".join(spec.get("penalties", [])), "optimizers": ",".join(spec.get("optimizers", [])),
                  "data.source": data.get("path") or data.get("dataset"), "data.val_size": data.get("val_size"),
                  "data.test_size": data.get("test_size"), "data.seed": data.get("seed")}
        params.update({f"search.{k}": v for k, v in sorted(spec.get("params", {}).items())})
        params.update({f"train.{k}": v for k, v in sorted(spec.get("train", {}).items())})
        self._log_batch(run.info.run_id, params={k: v for k, v in params.items() if v is not None})
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "study_spec.json"
            p.write_text(json.dumps(spec, indent=2, sort_keys=True))
            self._repo(run.info.artifact_uri).log_artifact(str(p))
        return run.info.run_id

    def versions(self) -> dict[str, str]:
        if self._versions is None:
            self._versions = {f"tuner.version.{d}": _version(d)
                              for d in ("logreg-tuner", "torch", "optuna", "mlflow", "numpy", "scikit-learn")}
        return self._versions

    def _plugin(self, kind: str, name: str) -> dict[str, str]:
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

    def _ctx(self, study: StudyInfo) -> _StudyCtx:
        ctx = self._studies.get(study.name)
        if ctx is None:
            raise TrackingError(f"on_study_start was not called for study {study.name!r}.")
        return ctx

    # ---- trials -------------------------------------------------------------------------
    def _trial_tags(self, ctx: _StudyCtx, trial: TrialInfo) -> dict[str, str]:
        return {
            "mlflow.parentRunId": ctx.parent_run_id, TAG_ROLE: "trial", TAG_TRIAL: str(trial.number),
            TAG_STATE: "RUNNING", "optuna.study_name": ctx.name, "optuna.trial_number": str(trial.number),
            **ctx.base_tags, **self._plugin("penalty", trial.penalty), **self._plugin("optimizer", trial.optimizer),
            "tuner.device": str(ctx.spec.get("train", {}).get("device", "auto")),
        }

    def _create_trial_run(self, ctx: _StudyCtx, trial: TrialInfo, start_ms: int) -> Any:
        return self.client.create_run(ctx.experiment_id, start_time=start_ms, tags=self._trial_tags(ctx, trial),
                                      run_name=f"trial-{trial.number:04d}")

    def on_trial_start(self, study: StudyInfo, trial: TrialInfo) -> tuple[Sequence[Callback], dict[str, Any]]:
        ctx = self._ctx(study)
        fut = self._submit(ctx.name, trial.number, self._create_trial_run, ctx, trial, _now_ms())
        rec = _TrialRun(ctx.name, trial.number, fut)
        self._trials[(ctx.name, trial.number)] = rec
        return [_EpochLogger(self, rec)], {}

    def _flush_epochs(self, rec: _TrialRun) -> None:
        metrics, rec.metrics = rec.metrics, []
        rec.last_flush = time.monotonic()
        if metrics:
            self._submit(rec.study, rec.number, lambda: self._log_batch(rec.create.result().info.run_id,
                                                                       metrics=metrics))

    def on_trial_end(self, study: StudyInfo, trial: TrialInfo, state: str, value: float | None,
                     outcome: Any, reason: str | None) -> dict[str, Any]:
        ctx = self._ctx(study)
        rec = self._trials.pop((ctx.name, trial.number), None)
        if rec is None:  # on_trial_start was not called (or failed): create the run now
            rec = _TrialRun(ctx.name, trial.number,
                            self._submit(ctx.name, trial.number, self._create_trial_run, ctx, trial, _now_ms()))
        metrics, rec.metrics = rec.metrics, []
        params, finals, tags = self._trial_payload(trial, state, value, outcome, reason, rec.last_epoch)
        weights = _weights_blob(outcome) if outcome is not None else None
        status = "KILLED" if reason and "interrupted" in reason else _RUN_STATUS.get(state, "FAILED")
        end_ms = _now_ms()

        def finish() -> None:
            run = rec.create.result()
            if weights is not None:
                self._write_artifact(run.info.artifact_uri, WEIGHTS_ARTIFACT, weights)
            # One batch for everything (each log_batch costs several store transactions);
            # tuner.logged=true in it marks the run complete for sync_study.
            self._log_batch(run.info.run_id, metrics=list(metrics) + _metric_list(finals, end_ms), params=params,
                            tags={**tags, TAG_LOGGED: "true"})
            self.client.set_terminated(run.info.run_id, status, end_time=end_ms)

        self._submit(ctx.name, trial.number, finish)
        attrs: dict[str, Any] = {}
        try:
            attrs[ATTR_RUN] = rec.create.result(timeout=None if self.background else 0).info.run_id
        except Exception:
            attrs[ATTR_LOGGED] = False
        if time.monotonic() < self._offline_until:
            attrs[ATTR_LOGGED] = False
        return attrs

    def _trial_payload(self, trial: TrialInfo, state: str, value: float | None, outcome: Any, reason: str | None,
                       epochs_seen: int) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
        params: dict[str, Any] = {f"penalty.{k}": v for k, v in trial.penalty_params.items()}
        params.update({f"optimizer.{k}": v for k, v in trial.optimizer_params.items()})
        params.update(trial.params)
        params.update({"penalty": trial.penalty, "optimizer": trial.optimizer})
        tags = {TAG_STATE: state}
        if reason:
            tags[TAG_REASON] = _short(reason)
        finals: dict[str, float] = {}
        if outcome is not None:
            r = outcome.result
            finals.update({f"val_{k}": v for k, v in outcome.val_metrics.items()})
            finals.update({f"test_{k}": v for k, v in outcome.test_metrics.items()})
            finals.update(n_nonzero_weights=r.n_nonzero, n_weights=int(r.weight.size), fit_seconds=r.fit_seconds,
                          epochs_run=r.epochs_run, best_epoch=r.best_epoch, train_objective=r.objective)
            if outcome.optimality_gap is not None:
                finals["optimality_gap"] = outcome.optimality_gap
            tags["tuner.device"] = str(r.device)
            tags["tuner.stop_reason"] = str(r.stop_reason)
        elif epochs_seen:
            finals["epochs_run"] = epochs_seen
        if value is not None:
            tags[TAG_VALUE] = repr(float(value))
        return params, finals, tags

    # ---- end of study -------------------------------------------------------------------
    def on_study_end(self, study: StudyInfo, best: TrialInfo | None, best_outcome: Any,
                     history: list[dict[str, Any]]) -> dict[str, Any]:
        ctx = self._ctx(study)
        self.flush()
        attrs: dict[str, Any] = {}
        try:
            attrs.update(self._finish_study(ctx, best, best_outcome, history))
        except Exception as exc:
            self._went_offline(exc)
            attrs["mlflow_study_logged"] = False
        unlogged = sorted(self._unlogged.get(ctx.name, ()))
        if unlogged:
            attrs[ATTR_UNLOGGED] = unlogged
        return attrs

    def _finish_study(self, ctx: _StudyCtx, best: TrialInfo | None, best_outcome: Any,
                      history: list[dict[str, Any]]) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        self._log_study_summary(ctx, history)
        data = None
        if best_outcome is not None and (self.plots or self.register_model):
            data = _reload_data(ctx.spec)
        if self.plots:
            self._log_plots(ctx, history, best_outcome, data)
        if best is not None and best_outcome is not None:
            value = best_outcome.val_metrics.get(ctx.metric, math.nan)
            self._log_batch(ctx.parent_run_id, tags={"tuner.best_trial": str(best.number),
                                                     "tuner.best_value": repr(float(value))})
            if self.register_model:
                attrs.update(self._register_champion(ctx, best, best_outcome, data))
        self.client.set_terminated(ctx.parent_run_id, "FINISHED")
        return attrs

    def _log_study_summary(self, ctx: _StudyCtx, history: list[dict[str, Any]]) -> None:
        ts = _now_ms()
        states = [h.get("state") for h in history]
        finals = {"n_trials_complete": states.count("COMPLETE"), "n_trials_pruned": states.count("PRUNED"),
                  "n_trials_failed": states.count("FAIL")}
        metrics = _metric_list(finals, ts)
        from mlflow.entities import Metric

        key = f"best_{ctx.metric}"
        logged = {m.step for m in self.client.get_metric_history(ctx.parent_run_id, key)}  # resumed studies
        best = math.nan
        for h in sorted(history, key=lambda h: h["number"]):
            v = _to_float(h.get("value"))
            if h.get("state") == "COMPLETE" and v is not None and math.isfinite(v) and _better(v, best, ctx.direction):
                best = v
                if int(h["number"]) not in logged:
                    metrics.append(Metric(key, v, ts, int(h["number"])))
        self._log_batch(ctx.parent_run_id, metrics=metrics)

    def _log_plots(self, ctx: _StudyCtx, history: list[dict[str, Any]], outcome: Any, data: Any) -> None:
        from tuner.tracking import _plots

        parent = self.client.get_run(ctx.parent_run_id)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "plots"
            out.mkdir()
            _try(lambda: _plots.optimization_history(history, ctx.direction, ctx.metric,
                                                     out / "optimization_history.png"), "optimization history")

            def importances() -> None:
                imp = _plots.compute_importances(history, ctx.direction)
                if imp:
                    _plots.param_importances(imp, out / "param_importances.png", ctx.metric)
                    self._log_batch(ctx.parent_run_id, metrics=_metric_list(
                        {f"importance.{k}": v for k, v in imp.items()}, _now_ms()))

            _try(importances, "parameter importances")
            if outcome is not None:
                model = outcome.model
                _try(lambda: _plots.coefficients(model.pipeline.feature_names, model.coef_, model.classes_,
                                                 out / "coefficients.png"), "coefficients")
                if data is not None and len(data.y_test):
                    proba = model.predict_proba_features(data.X_test)
                    if len(model.classes_) == 2:
                        _try(lambda: _plots.roc_curve(data.y_test, proba[:, 1], model.classes_[1],
                                                      out / "roc_curve.png"), "ROC curve")
                    else:
                        _try(lambda: _plots.confusion_matrix(data.y_test, proba.argmax(axis=1), model.classes_,
                                                             out / "confusion_matrix.png"), "confusion matrix")
            (Path(tmp) / "study_spec.json").write_text(json.dumps(ctx.spec, indent=2, sort_keys=True))
            repo = self._repo(parent.info.artifact_uri)
            repo.log_artifact(str(Path(tmp) / "study_spec.json"))
            repo.log_artifacts(str(out), "plots")

    # ---- the best model -----------------------------------------------------------------
    def _champion(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, CHAMPION_ALIAS)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "INVALID_PARAMETER_VALUE" in str(exc.error_code):
                return None
            raise

    def _trial_run_id(self, ctx: _StudyCtx, best: TrialInfo) -> str:
        rid = best.user_attrs.get(ATTR_RUN)
        if rid:
            return str(rid)
        runs = self.client.search_runs(
            [ctx.experiment_id], filter_string=f"tags.`{TAG_STUDY}` = '{_q(ctx.name)}' and "
                                              f"tags.`{TAG_TRIAL}` = '{best.number}' and tags.`{TAG_ROLE}` = 'trial'",
            max_results=10)
        return runs[0].info.run_id if runs else ctx.parent_run_id

    def _register_champion(self, ctx: _StudyCtx, best: TrialInfo, outcome: Any, data: Any) -> dict[str, Any]:
        """Log and register the best model unless the champion is at least as good."""
        from mlflow.entities import LoggedModelOutput
        from mlflow.exceptions import MlflowException
        from mlflow.models import Model

        client = self.client
        value = float(outcome.val_metrics.get(ctx.metric, math.nan))
        current = self._champion(ctx.name)
        if current is not None:
            old = _to_float(current.tags.get(TAG_VALUE))
            if old is not None and not _better(value, old, ctx.direction):
                return {"mlflow_champion_version": str(current.version)}
        source_run = self._trial_run_id(ctx, best)
        summary = outcome.summary()
        lm = client.create_logged_model(
            ctx.experiment_id, name=MODEL_NAME, source_run_id=source_run, model_type="logistic-regression",
            params={k: str(v) for k, v in {**{f"penalty.{k}": v for k, v in outcome.penalty_params.items()},
                                           **{f"optimizer.{k}": v for k, v in outcome.optimizer_params.items()},
                                           "penalty": summary["penalty"], "optimizer": summary["optimizer"]}.items()},
            tags={TAG_STUDY: ctx.name, TAG_TRIAL: str(best.number)})
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "model"
                mlflow_model = Model(artifact_path=lm.artifact_location, model_uuid=lm.model_id, run_id=source_run,
                                     model_id=lm.model_id)
                save_pyfunc_model(outcome.model, local, input_example=_input_example(outcome.model, data),
                                  mlflow_model=mlflow_model,
                                  metadata={"study": ctx.name, "trial": best.number, "metric": ctx.metric,
                                            "value": value})
                client.log_model_artifacts(lm.model_id, str(local))
        except Exception:
            client.finalize_logged_model(lm.model_id, "FAILED")
            raise
        client.finalize_logged_model(lm.model_id, "READY")
        client.log_outputs(source_run, [LoggedModelOutput(lm.model_id, step=best.number)])
        try:
            client.create_registered_model(ctx.name, tags={TAG_STUDY: ctx.name},
                                           description=f"Best logistic regression of study {ctx.name}.")
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        mv_tags = {TAG_STUDY: ctx.name, TAG_TRIAL: str(best.number), TAG_VALUE: repr(value),
                   "tuner.metric": ctx.metric, "tuner.direction": ctx.direction}
        mv_tags.update({f"tuner.test_{k}": repr(float(v)) for k, v in outcome.test_metrics.items()})
        # The source is the storage location, not models:/<id>: a SQL registry store resolves the
        # latter with the process-global tracking URI (a stray ./mlflow.db otherwise).
        mv = client.create_model_version(ctx.name, source=lm.artifact_location, run_id=source_run,
                                         tags=mv_tags, model_id=lm.model_id)
        # Re-read just before moving: another worker may have registered a better model meanwhile.
        current = self._champion(ctx.name)
        old = _to_float(current.tags.get(TAG_VALUE)) if current is not None else None
        if current is None or old is None or _better(value, old, ctx.direction):
            client.set_registered_model_alias(ctx.name, CHAMPION_ALIAS, mv.version)
            self._log_batch(ctx.parent_run_id, tags={"tuner.champion": f"models:/{ctx.name}/{mv.version}"})
        return {"mlflow_model_version": str(mv.version), "mlflow_model_uri": f"models:/{ctx.name}/{mv.version}",
                "mlflow_champion_version": str(self._champion(ctx.name).version)}

    # ---- runs left open by a dead worker or a stopped study (study-runs engineer) -------
    def on_trial_lost(self, study: StudyInfo, number: int, reason: str) -> None:
        """Close the run of a trial whose worker died as FAILED, with the reason."""
        ctx = self._ctx(study)

        def close() -> None:
            runs = self.client.search_runs(
                [ctx.experiment_id], filter_string=f"tags.`{TAG_STUDY}` = '{_q(ctx.name)}' and "
                f"tags.`{TAG_TRIAL}` = '{number}' and tags.`{TAG_ROLE}` = 'trial' and attributes.status = 'RUNNING'",
                max_results=10)
            for run in runs:
                self._log_batch(run.info.run_id, tags={TAG_STATE: "FAIL", TAG_REASON: _short(reason),
                                                       TAG_LOGGED: "true"})
                self.client.set_terminated(run.info.run_id, "FAILED")

        self._submit(ctx.name, None, close)

    def on_study_stop(self, study: StudyInfo, status: str, reason: str | None) -> None:
        """End the parent run (after the queued trial logging) when the study stops without a refit."""
        ctx = self._studies.get(study.name)
        if ctx is None:
            return
        self.flush()
        try:
            if reason:
                self._log_batch(ctx.parent_run_id, tags={TAG_REASON: _short(reason)})
            self.client.set_terminated(ctx.parent_run_id, status)
        except Exception as exc:
            self._went_offline(exc)

    # ---- helpers ------------------------------------------------------------------------
    def _log_batch(self, run_id: str, *, metrics: Sequence[Any] = (), params: Mapping[str, Any] | None = None,
                   tags: Mapping[str, str] | None = None) -> None:
        from mlflow.entities import Param, RunTag

        self.client.log_batch(run_id, metrics=list(metrics),
                              params=[Param(k, _param_value(v)) for k, v in (params or {}).items()],
                              tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()], synchronous=True)

    def _write_artifact(self, artifact_uri: str, name: str, payload: bytes) -> None:
        local = _local_dir(artifact_uri)
        if local is not None:  # a local store: write in place instead of writing a copy and copying it
            local.mkdir(parents=True, exist_ok=True)
            tmp = local / (name + ".tmp")
            tmp.write_bytes(payload)
            tmp.replace(local / name)
            return
        with tempfile.TemporaryDirectory() as tmp_dir:
            p = Path(tmp_dir) / name
            p.write_bytes(payload)
            self._repo(artifact_uri).log_artifact(str(p))

    def _repo(self, artifact_uri: str) -> Any:
        return get_repo(artifact_uri, self.tracking_uri)

    def child_runs(self, study_name: str) -> dict[int, list[Any]]:
        """The study's trial runs in MLflow by trial number (after :meth:`on_study_start`)."""
        ctx = self._studies[study_name]
        out: dict[int, list[Any]] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [ctx.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{ctx.parent_run_id}'",
                max_results=1000, page_token=token)
            for r in page:
                n = r.data.tags.get(TAG_TRIAL)
                if n is not None and n.isdigit():
                    out.setdefault(int(n), []).append(r)
            token = page.token
            if not token:
                return out


def _local_dir(artifact_uri: str) -> Path | None:
    if _scheme(artifact_uri) != "file":
        return None
    from urllib.parse import unquote, urlparse

    parsed = urlparse(artifact_uri)
    return Path(unquote(parsed.path)) if parsed.netloc in ("", "localhost") else None


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _first_line(exc: Any, *urls: str) -> str:
    text = str(exc).strip() or type(exc).__name__
    return _short(_redact(text.splitlines()[0], *urls), 300)


def _param_value(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _metric_list(values: Mapping[str, Any], ts: int, step: int = 0) -> list[Any]:
    from mlflow.entities import Metric

    out = []
    for k, v in values.items():
        f = _to_float(v)
        if f is not None:
            out.append(Metric(k, f, ts, step))
    return out


def _try(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except Exception as exc:  # a plot must never fail a study
        _log.warning("Could not draw the %s plot: %s", what, _first_line(exc))


def _prepare_sqlite(path: Path) -> None:
    """Create the folder, and put a new database in WAL mode (concurrent readers, fewer fsyncs)."""
    from tuner.study._storage import prepare_sqlite

    prepare_sqlite(path, "MLflow database", TrackingError)


def _create_sqlite_store(db: Path) -> None:
    """Make a new MLflow SQLite store whole or not at all: its schema is built in a file beside it
    (rollback journal: every commit is in the file), which is then renamed into place, so a
    process killed while creating it leaves no half-migrated store behind."""
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in db.parent.glob(f".{db.name}.*.new*"):  # left by a killed process (we hold the lock)
        stale.unlink(missing_ok=True)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.new")
    try:
        client = _explicit_client(f"sqlite:///{tmp}")
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
        with contextlib.suppress(AttributeError):  # close the pools (MLflow's private attributes)
            for store in (client._tracking_client.store, client._get_registry_client().store):
                store.engine.dispose()
        os.replace(tmp, db)
    finally:
        for path in (tmp, Path(f"{tmp}-journal")):
            path.unlink(missing_ok=True)


def _weights_blob(outcome: Any) -> bytes:
    """A trial's weights as safetensors bytes (coef, intercept; classes and plugins in metadata)."""
    from safetensors.numpy import save

    model = outcome.model
    meta = {"classes": json.dumps(list(model.classes_), default=str), "penalty": str(model.info.get("penalty")),
            "optimizer": str(model.info.get("optimizer")), "n_features": str(model.coef_.shape[0]),
            "format": "logreg-tuner trial weights: coef (n_features, k), intercept (k)"}
    return save({"coef": np.ascontiguousarray(model.coef_, dtype=np.float64),
                 "intercept": np.ascontiguousarray(model.intercept_, dtype=np.float64)}, metadata=meta)


def _reload_data(spec: Mapping[str, Any]) -> Any:
    """The study's data, split as in the study (for the test-split plots and the input example)."""
    from tuner.study._search import load_dataset_for
    from tuner.study._spec import StudySpec

    try:
        return load_dataset_for(StudySpec.from_json(json.dumps(dict(spec))))
    except Exception as exc:
        _log.warning("Could not reload the study data for the test plots: %s", _first_line(exc))
        return None


# --------------------------------------------------------------------------------------------
# The pyfunc model: writing, finding and loading.


def _pip_requirements() -> list[str]:
    return [f"{d}=={_version(d)}" for d in ("mlflow", "numpy", "scipy", "pandas", "scikit-learn", "safetensors")]


def _input_example(model: Any, data: Any, n: int = 5) -> Any:
    """Raw rows: real ones from the test (or training) split when available, else synthetic."""
    import pandas as pd

    pipe = model.pipeline
    if data is not None:
        raw = data.raw
        rows = raw.take(np.arange(min(n, len(raw))))
        if pipe.kind == "table":
            cols = ([pipe.text_column] if pipe.text_column else []) + list(pipe.numeric_columns)
            return rows[cols].reset_index(drop=True)
        dense = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows, dtype=np.float64)
        return pd.DataFrame(dense, columns=list(pipe.input_feature_names))
    if pipe.kind == "table":
        frame: dict[str, Any] = {}
        if pipe.text_column:
            terms = [t for t in pipe.vocabulary if " " not in t][:12] or ["text"]
            frame[pipe.text_column] = [" ".join(terms[i::2][:6]) for i in range(2)]
        for j, c in enumerate(pipe.numeric_columns):
            frame[c] = [float(pipe.center[j])] * 2
        return pd.DataFrame(frame)
    center = pipe.center if pipe.center is not None else np.zeros(pipe.n_input_features)
    return pd.DataFrame([center, center], columns=list(pipe.input_feature_names))


def _bundle(dst: Path) -> Path:
    """The package ``logreg_tuner_model``: the modules a loaded model needs, copied verbatim."""
    root = Path(__file__).resolve().parent.parent
    pkg = dst / BUNDLE_PACKAGE
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""logreg-tuner model runtime (copied from the tuner package)."""\n')
    for module, name in _BUNDLE_MODULES.items():
        text = (root.parent / (module.replace(".", "/") + ".py")).read_text()
        for other, other_name in _BUNDLE_MODULES.items():
            text = text.replace(f"from {other} import", f"from .{other_name[:-3]} import")
        if "from tuner" in text or "import tuner" in text:
            raise RuntimeError(f"{module} imports tuner beyond the bundled modules; the model bundle would not load")
        (pkg / name).write_text(text)
    return pkg


def save_pyfunc_model(model: Any, path: str | Path, *, input_example: Any = None, mlflow_model: Any = None,
                      metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (a :class:`LogisticModel`) as an MLflow pyfunc model folder at ``path``.

    Loader-module flavour: the LogisticModel folder is the model's data, the runtime is the
    bundled ``logreg_tuner_model`` package (no pickles, no logreg-tuner or torch needed to
    serve); signature and input example are raw rows; requirements are explicit.
    """
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from tuner.model._pyfunc import PROBA_PARAM, LogisticPyfunc

    path = Path(path)
    if input_example is None:
        input_example = _input_example(model, None)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = model.save(Path(tmp) / "logistic_model")
        pkg = _bundle(Path(tmp) / "code")
        sig = infer_signature(input_example, LogisticPyfunc(model).predict(input_example))
        sig.params = ParamSchema([ParamSpec(PROBA_PARAM, "boolean", False)])
        mlflow.pyfunc.save_model(
            str(path), loader_module=f"{BUNDLE_PACKAGE}._pyfunc", data_path=str(data_dir), code_paths=[str(pkg)],
            signature=sig, input_example=input_example, pip_requirements=_pip_requirements(),
            mlflow_model=mlflow_model, metadata=dict(metadata or {}))
    return path


def download_model(model_uri: str, dst: str | Path, tracking_uri: str | None = None) -> Path:
    """Fetch ``models:/NAME@alias``, ``models:/NAME/3``, ``models:/m-ID``, ``runs:/ID/model`` ... into ``dst``.

    ``models:/`` and ``runs:/`` URIs are resolved here with an explicit client: MLflow's own
    resolution of ``models:/`` consults the process-global tracking and registry URIs. A
    server is asked once, quickly, before anything else (a dead one fails within seconds);
    a local database store must exist and be an MLflow one (it is never created or upgraded
    here); a name, alias or version that does not exist is an error listing those that do.
    """
    from mlflow.exceptions import MlflowException

    uri = tracking_uri or default_tracking_uri()
    check_server(uri)
    _check_store_exists(uri)
    client = _explicit_client(_store_uri(uri))
    try:
        location = _storage_location(client, model_uri)
        Path(dst).mkdir(parents=True, exist_ok=True)
        return Path(get_repo(location, uri).download_artifacts("", dst_path=str(dst)))
    except (MlflowException, OSError, ValueError) as exc:
        raise TrackingError(f"Cannot fetch the model {model_uri} from {_redact(uri)}: "
                            f"{_first_line(exc, uri)}") from None
    except Exception as exc:  # requests' errors from an artifact server that went away
        if type(exc).__module__.split(".")[0] not in ("requests", "urllib3"):
            raise
        raise TrackingError(f"Cannot fetch the model {model_uri} from {_redact(uri)}: {_why(exc)}.") from None


def bound_http_requests() -> None:
    """Bounded retries and timeouts for every MLflow HTTP request of this process.

    The one place that sets them, before any client is made (:func:`_explicit_client`, used by
    the observer and the model functions alike); values the user set in the environment win.
    """
    for k, v in _HTTP_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)


def _explicit_client(uri: str) -> Any:
    bound_http_requests()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_server(uri: str, advice: str = "start it (mlflow server ...) or fix --tracking-uri / MLFLOW_TRACKING_URI"
                 ) -> None:
    """For an HTTP(S) tracking URI: one quick request without retries, or TrackingError in one line
    ending with ``advice`` when nothing answers."""
    if not _is_http(uri):
        return
    bound_http_requests()
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    where = _redact(uri)
    try:
        resp = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/experiments/search", "POST",
                            json={"max_results": 1}, max_retries=0, backoff_factor=0, timeout=CHECK_TIMEOUT_S,
                            raise_on_status=False)
    except Exception as exc:
        raise TrackingError(f"Cannot reach the MLflow tracking server at {where} ({_why(exc)}); {advice}.") from None
    if resp.status_code != 200:
        raise TrackingError(f"The MLflow tracking server at {where} refused a request (HTTP {resp.status_code}); "
                            "check the URI and credentials (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN).")


def _why(exc: BaseException) -> str:
    """A short reason for a failed HTTP request: refused, no answer in time, or the first line."""
    text = " ".join(str(e) for e in _chain(exc))
    if "timed out" in text or "Timeout" in text:
        return f"no answer within {CHECK_TIMEOUT_S} s"
    if "Connection refused" in text:
        return "connection refused"
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return m.group(1).strip() if m else _first_line(exc)


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _check_store_exists(uri: str) -> None:
    """A SQLite tracking store to read a model from must exist and hold MLflow's tables.

    MLflow would otherwise create an empty store (or add its tables to another database,
    such as the study database) and then report that the model is not found.
    """
    import sqlite3

    db = _sqlite_file(uri)
    if db is None:
        return
    hint = "pass --tracking-uri (or set MLFLOW_TRACKING_URI) to the store the study logged to"
    if not db.is_file():
        raise ConfigError(f"There is no MLflow tracking store at {db} (no such file); {hint}.")
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise ConfigError(f"Cannot read the MLflow tracking store {db}: {exc}; {hint}.") from None
    if not {"experiments", "registered_models"} <= tables:
        raise ConfigError(f"{db} is not an MLflow tracking store (it has no MLflow tables); {hint}.")


def get_repo(artifact_uri: str, tracking_uri: str) -> Any:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)


def _storage_location(client: Any, model_uri: str) -> str:
    """Where the files of ``model_uri`` are (an artifact URI that needs no registry lookup)."""
    scheme = _scheme(model_uri)
    if scheme == "models":
        body = model_uri[len("models:"):].lstrip("/")
        if body.startswith("m-") and "/" not in body:
            return client.get_logged_model(body).artifact_location
        if "@" in body:
            name, alias = body.rsplit("@", 1)
            mv = _model_version(client, name, alias=alias)
        else:
            name, _, version = body.rpartition("/")
            if not name:
                raise ValueError(f"{model_uri} is not models:/NAME@ALIAS, models:/NAME/VERSION or models:/MODEL_ID")
            mv = _model_version(client, name, version=version)
        source = mv.source
        if _scheme(source) == "models":
            return _storage_location(client, source)
        if _scheme(source) == "runs":
            return _storage_location(client, source)
        return source
    if scheme == "runs":
        body = model_uri[len("runs:"):].lstrip("/")
        run_id, _, path = body.partition("/")
        run = client.get_run(run_id)
        if path and get_repo(run.info.artifact_uri, client.tracking_uri).list_artifacts(path):
            return f"{run.info.artifact_uri.rstrip('/')}/{path}"
        name, _, rest = path.partition("/")
        models = [m for m in client.search_logged_models([run.info.experiment_id], filter_string=f"name = '{_q(name)}'")
                  if m.source_run_id == run_id]
        if not models:
            study = run.data.tags.get(TAG_STUDY)
            hint = f"; the best model of study {study} is models:/{study}@{CHAMPION_ALIAS}" if study else ""
            raise ConfigError(f"The run {run_id} has no model at {path!r} (a study logs the model of its best "
                              f"trial only){hint}.")
        latest = max(models, key=lambda m: m.creation_timestamp)
        return latest.artifact_location.rstrip("/") + (f"/{rest}" if rest else "")
    return model_uri


def _missing(exc: Exception) -> bool:
    return any(c in str(getattr(exc, "error_code", "")) for c in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"))


def _model_version(client: Any, name: str, *, alias: str | None = None, version: str | None = None) -> Any:
    """The registered model version of ``name`` at ``alias`` or ``version`` (``latest``: the newest).

    One that does not exist is a :class:`ConfigError` listing what does.
    """
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        if str(version).lower() == "latest":
            versions = client.search_model_versions(f"name='{_q(name)}'")
            if versions:
                return max(versions, key=lambda v: int(v.version))
        else:
            return client.get_model_version(name, version)
    except MlflowException as exc:
        if not _missing(exc):
            raise
    raise ConfigError(_what_exists(client, name, f"alias {alias!r}" if alias is not None else f"version {version}"))


def _what_exists(client: Any, name: str, wanted: str, limit: int = 20) -> str:
    """One line: the registered models there are, or the aliases and versions of ``name``."""
    from mlflow.exceptions import MlflowException

    store = _redact(client.tracking_uri)
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        names = sorted(m.name for m in client.search_registered_models(max_results=1000))
        listed = ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
        return (f"There is no registered model {name!r} in {store}; " + (
            f"the registered models are: {listed}." if names else
            "it has no registered models yet (a study registers its best model when it ends with tracking on)."))
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{_q(name)}'"))
    aliases = ", ".join(f"@{a} (version {v})" for a, v in sorted((registered.aliases or {}).items())) or "none"
    shown = ", ".join(map(str, versions[-limit:])) or "none"
    return (f"The registered model {name!r} has no {wanted}; its aliases: {aliases}; its versions: {shown}. "
            f"Use models:/{name}@ALIAS or models:/{name}/VERSION.")


def load_logistic_model(path: str | Path) -> Any:
    """A :class:`LogisticModel` from its own folder or from an MLflow model folder holding one.

    The MLmodel file's ``data`` path must lead (links resolved) to a folder inside the MLflow
    model folder: a downloaded model never reads files outside itself.
    """
    from tuner.errors import DataError
    from tuner.model._model import MODEL_JSON, LogisticModel

    folder = Path(path)
    if (folder / MODEL_JSON).is_file():
        return LogisticModel.load(folder)
    mlmodel = folder / "MLmodel"
    if mlmodel.is_file():
        return LogisticModel.load(_mlmodel_data(folder, mlmodel))
    raise DataError(f"{folder} is neither a saved model folder (model.json) nor an MLflow model (MLmodel).")


def _mlmodel_data(folder: Path, mlmodel: Path) -> Path:
    """The LogisticModel folder that an MLflow model's MLmodel file names (inside ``folder``)."""
    import yaml

    from tuner.errors import DataError

    try:
        conf = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{mlmodel} is not a readable MLmodel file ({_first_line(exc)}); download the model "
                        "again.") from None
    flavors = conf.get("flavors") if isinstance(conf, dict) else None
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    pyfunc = pyfunc if isinstance(pyfunc, dict) else {}
    data = pyfunc.get("data")
    if not isinstance(data, str) or not data or not str(pyfunc.get("loader_module", "")).endswith("._pyfunc"):
        raise DataError(f"{folder} is an MLflow model, but not one logged by logreg-tuner.")
    target = folder / data
    try:
        inside = target.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (OSError, RuntimeError):
        raise DataError(f"{mlmodel} names the model data {data!r}, which does not exist in {folder}; download "
                        "the model again.") from None
    if not inside:
        raise DataError(f"{mlmodel} names the model data {data!r}, which leads to {target.resolve()}, outside "
                        f"the model folder {folder}; a model folder must hold its own files.")
    return target


def resolve_model(model_uri: str, workdir: str | Path, tracking_uri: str | None = None) -> Any:
    """``model_uri`` (local folder, ``models:/``, ``runs:/``, any artifact URI) -> LogisticModel."""
    local = Path(model_uri)
    if _scheme(model_uri) in ("", "file") or local.exists():
        if _scheme(model_uri) == "file":
            from urllib.parse import unquote, urlparse

            local = Path(unquote(urlparse(model_uri).path))
        return load_logistic_model(local)
    from tuner.errors import DataError

    try:
        return load_logistic_model(download_model(model_uri, workdir, tracking_uri))
    except DataError as exc:  # name the model, not the temporary folder it was downloaded to
        text = str(exc)
        for tmp in sorted({str(Path(workdir)), str(Path(workdir).resolve())}, key=len, reverse=True):
            text = text.replace(tmp + os.sep, model_uri + "/").replace(tmp, model_uri)
        raise DataError(f"The model {model_uri} is not usable: {text}") from None


# --------------------------------------------------------------------------------------------
# Logging what is missing, from the study storage.


def sync_study(storage_url: str, study_name: str, tracking_uri: str | None = None, *,
               register_model: bool = True) -> dict[str, Any]:
    """Log to MLflow every finished trial of ``study_name`` that is not (completely) there yet.

    A trial counts as logged when its run carries ``tuner.logged=true``; incomplete runs are
    replaced. What the study storage keeps is logged: parameters, plugins, state and reason,
    the per-epoch study metric (Optuna's intermediate values), validation metrics, weights
    counts and times. With ``register_model``, when the registry's champion is not the study's
    best trial (or worse), the best configuration is refit and registered as at the end of a
    study. Returns what was done; raises :class:`TrackingError` (one line) when MLflow cannot
    be reached or fails on the way, so a partial sync never looks like a complete one.
    """
    uri = tracking_uri or default_tracking_uri()
    check_server(uri)
    study, info = _study_to_sync(storage_url, study_name)
    obs = MlflowObserver(uri, background=False, register_model=register_model)
    try:
        return _sync(obs, study, info, register_model)
    except Exception as exc:
        if isinstance(exc, TrackingError) or not _mlflow_failure(exc):
            raise
        raise TrackingError(f"MLflow at {_redact(uri)} failed while syncing study {study_name!r}: "
                            f"{_first_line(exc, uri)}. What was logged is kept; run `tuner study sync-mlflow "
                            f"{study_name}` again.") from None
    finally:
        obs.close()


def _mlflow_failure(exc: BaseException) -> bool:
    """An error of MLflow, of the HTTP stack under it, or of the file system it writes artifacts to."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, (MlflowException, OSError)) or type(exc).__module__.split(".")[0] in ("requests", "urllib3")


def _study_to_sync(storage_url: str, study_name: str) -> tuple[Any, StudyInfo]:
    import optuna

    from tuner.study._storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url, heartbeat=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise ConfigError(f"No study named {study_name!r} in {storage_url}.") from None
    raw_spec = study.user_attrs.get("spec")
    if raw_spec is None:
        raise ConfigError(f"Study {study_name!r} was not created by tuner (it has no spec).")
    spec = json.loads(raw_spec) if isinstance(raw_spec, str) else dict(raw_spec)
    direction = study.direction.name.lower()
    info = StudyInfo(study_name, storage_url, spec, direction, spec.get("metric", "log_loss"), dict(study.user_attrs))
    return study, info


def _sync(obs: MlflowObserver, study: Any, info: StudyInfo, register_model: bool) -> dict[str, Any]:
    study_name, spec, direction = info.name, info.spec, info.direction
    for k, v in obs.on_study_start(info).items():
        study.set_user_attr(k, v)
    ctx = obs._studies[study_name]
    existing = obs.child_runs(study_name)
    synced, already = [], []
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if not t.state.is_finished():
            continue
        runs = existing.get(t.number, [])
        if any(r.data.tags.get(TAG_LOGGED) == "true" and r.info.status != "RUNNING" for r in runs):
            already.append(t.number)
            continue
        for r in runs:
            obs.client.delete_run(r.info.run_id)
        _log_frozen_trial(obs, ctx, t)
        synced.append(t.number)
    history = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
               for t in trials if t.state.is_finished()]
    result: dict[str, Any] = {"study": study_name, "tracking_uri": _redact(obs.tracking_uri),
                              "parent_run_id": ctx.parent_run_id, "synced_trials": synced,
                              "already_logged": len(already)}
    best = None
    try:
        best = study.best_trial
    except ValueError:
        pass
    needs_model = False
    if register_model and best is not None:
        champion = obs._champion(study_name)
        old = _to_float(champion.tags.get(TAG_VALUE)) if champion is not None else None
        needs_model = champion is None or old is None or (
            champion.tags.get(TAG_TRIAL) != str(best.number) and _better(float(best.value), old, direction))
    if needs_model:
        binfo, outcome = _refit(spec, best)
        binfo.user_attrs = {ATTR_RUN: _run_id_of(obs, ctx, best.number)}
        attrs = obs.on_study_end(info, binfo, outcome, history)
        if attrs.get("mlflow_study_logged") is False or attrs.get(ATTR_UNLOGGED):
            # on_study_end keeps a study going on any MLflow failure; a sync must not report success
            raise TrackingError(f"MLflow at {_redact(obs.tracking_uri)} failed while registering the best model of "
                                f"study {study_name!r} ({obs._last_error}); the {len(synced)} missing trial(s) "
                                f"were logged. Fix the cause and run `tuner study sync-mlflow {study_name}` again.")
        result["model"] = attrs
        for k, v in attrs.items():
            study.set_user_attr(k, v)
    else:
        obs._log_study_summary(ctx, history)
        if obs.plots:
            obs._log_plots(ctx, history, None, None)
        if not any(t.state.name == "RUNNING" for t in trials):
            obs.client.set_terminated(ctx.parent_run_id, "FINISHED")
    if study.user_attrs.get(ATTR_UNLOGGED):
        study.set_user_attr(ATTR_UNLOGGED, [])
    return result


def _run_id_of(obs: MlflowObserver, ctx: _StudyCtx, number: int) -> str | None:
    runs = obs.child_runs(ctx.name).get(number, [])
    return runs[0].info.run_id if runs else None


def _log_frozen_trial(obs: MlflowObserver, ctx: _StudyCtx, t: Any) -> str:
    """One child run from what Optuna stored about a finished trial."""
    variant = str(t.params.get("variant", ":"))
    pen = t.user_attrs.get("penalty") or variant.split(":")[0] or "unknown"
    opt = t.user_attrs.get("optimizer") or variant.split(":")[-1] or "unknown"
    pp = {k.split(".")[-1]: v for k, v in t.params.items() if k.startswith("penalty.")}
    op = {k.split(".")[-1]: v for k, v in t.params.items() if k.startswith("optimizer.")}
    trial = TrialInfo(t.number, pen, opt, dict(t.params), pp, op, dict(t.user_attrs))
    start = int(t.datetime_start.timestamp() * 1000) if t.datetime_start else _now_ms()
    end = int(t.datetime_complete.timestamp() * 1000) if t.datetime_complete else _now_ms()
    run = obs._create_trial_run(ctx, trial, start)
    reason = t.user_attrs.get("prune_reason") or t.user_attrs.get("fail_reason")
    params, finals, tags = obs._trial_payload(trial, t.state.name, t.value, None, reason,
                                              max(t.intermediate_values, default=0))
    for k, v in (t.user_attrs.get("val_metrics") or {}).items():
        finals[f"val_{k}"] = v
    for k in ("n_nonzero_weights", "epochs_run", "fit_seconds"):
        if k in t.user_attrs:
            finals[k] = t.user_attrs[k]
    from mlflow.entities import Metric

    metrics = [Metric(f"{EPOCH_PREFIX}val_{ctx.metric}", float(v), start, int(step))
               for step, v in sorted(t.intermediate_values.items()) if _to_float(v) is not None]
    tags.update({TAG_LOGGED: "true", "tuner.synced": "true"})
    obs._log_batch(run.info.run_id, metrics=metrics + _metric_list(finals, end), params=params, tags=tags)
    obs.client.set_terminated(run.info.run_id, _RUN_STATUS.get(t.state.name, "FAILED"), end_time=end)
    return run.info.run_id


def _refit(spec: Mapping[str, Any], best: Any) -> tuple[TrialInfo, Any]:
    """Train the best trial's configuration again (for registering it after the fact)."""
    from tuner.study._configure import train_one
    from tuner.study._search import VARIANT, _params_of, build_space, load_dataset_for, train_config
    from tuner.study._spec import StudySpec

    s = StudySpec.from_json(json.dumps(dict(spec)))
    space = build_space(s)
    pn, on = best.params[VARIANT].split(":")
    pp, op = _params_of(space, best)
    outcome = train_one(load_dataset_for(s), pn, on, pp, op, train_config(s))
    return TrialInfo(best.number, pn, on, dict(best.params), pp, op), outcome
