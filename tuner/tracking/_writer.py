"""Writing to MLflow: one client per observer, batched run data, artifacts, the tracking thread.

:class:`RunWriter` is the only thing that sends run data (``log_batch``, artifacts);
:class:`TrackingQueue` runs that work on one background thread (or at once) and remembers
which trials could not be logged, going "offline" for a while after a server failure so a
lost server costs one wait, not one per trial.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

from tuner.errors import TrackingError
from tuner.tracking._store import explicit_client, first_line, get_repo, is_http, local_dir, store_uri

__all__ = [
    "RunWriter",
    "TrackingQueue",
    "Offline",
    "OFFLINE_RETRY_S",
    "metric_list",
    "quote",
    "to_float",
    "better",
    "now_ms",
    "library_versions",
]

_log = logging.getLogger("tuner.tracking")

OFFLINE_RETRY_S = 30.0
_LIBRARIES = ("logreg-tuner", "torch", "optuna", "mlflow", "numpy", "scikit-learn")


def now_ms() -> int:
    """Wall-clock time in milliseconds (MLflow's timestamps)."""
    return int(time.time() * 1000)


def to_float(v: Any) -> float | None:
    """``float(v)``, or None when ``v`` is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def better(new: float, old: float, direction: str) -> bool:
    """Whether ``new`` beats ``old`` in ``direction`` (anything finite beats NaN)."""
    if not math.isfinite(old):
        return math.isfinite(new)
    return new < old if direction == "minimize" else new > old


def quote(text: str) -> str:
    """``text`` escaped for a single-quoted string of an MLflow filter."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def metric_list(values: Mapping[str, Any], ts: int, step: int = 0) -> list[Any]:
    """MLflow ``Metric`` entities of the numeric ``values`` (others are left out)."""
    from mlflow.entities import Metric

    out = []
    for k, v in values.items():
        f = to_float(v)
        if f is not None:
            out.append(Metric(k, f, ts, step))
    return out


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


_VERSIONS: dict[str, str] = {}


def library_versions() -> dict[str, str]:
    """``tuner.version.<dist>`` tags of the libraries a result depends on (read once per process)."""
    if not _VERSIONS:
        _VERSIONS.update({f"tuner.version.{d}": _version(d) for d in _LIBRARIES})
    return dict(_VERSIONS)


def _param_value(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


class RunWriter:
    """The MLflow client of one tracking URI and the writes made through it."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` (made on first use: bounded HTTP retries and timeouts)."""
        if self._client is None:
            self._client = explicit_client(store_uri(self.tracking_uri))
        return self._client

    def log_batch(self, run_id: str, *, metrics: Sequence[Any] = (), params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Metrics, parameters and tags of a run in one synchronous ``log_batch``."""
        from mlflow.entities import Param, RunTag

        self.client.log_batch(run_id, metrics=list(metrics),
                              params=[Param(k, _param_value(v)) for k, v in (params or {}).items()],
                              tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()], synchronous=True)

    def repo(self, artifact_uri: str) -> Any:
        """The artifact repository of a run's ``artifact_uri``."""
        return get_repo(artifact_uri, self.tracking_uri)

    def write_artifact(self, artifact_uri: str, name: str, payload: bytes) -> None:
        """``payload`` as the artifact ``name`` of a run (written in place for a local store)."""
        local = local_dir(artifact_uri)
        if local is not None:  # a local store: write in place instead of writing a copy and copying it
            local.mkdir(parents=True, exist_ok=True)
            tmp = local / (name + ".tmp")
            tmp.write_bytes(payload)
            tmp.replace(local / name)
            return
        with tempfile.TemporaryDirectory() as tmp_dir:
            p = Path(tmp_dir) / name
            p.write_bytes(payload)
            self.repo(artifact_uri).log_artifact(str(p))

    def search_all(self, experiment_id: str, filter_string: str) -> list[Any]:
        """Every run of an experiment matching ``filter_string`` (all pages)."""
        out: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs([experiment_id], filter_string=filter_string, max_results=1000,
                                           page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out


class Offline(TrackingError):
    """Raised without trying while the server is considered lost (for a while after a failure)."""


class TrackingQueue:
    """Runs tracking work on one background thread (or synchronously), trial by trial.

    A job that fails marks its trial unlogged and, for a server, makes the queue skip work
    for :data:`OFFLINE_RETRY_S` seconds (each skipped job fails with :class:`Offline`).
    """

    def __init__(self, tracking_uri: str, *, background: bool = True) -> None:
        self.tracking_uri = tracking_uri
        self.background = background
        self.last_error: str | None = None
        self._offline_until = 0.0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._unlogged: dict[str, set[int]] = {}

    @property
    def offline(self) -> bool:
        """Whether work is being skipped after a recent failure."""
        return time.monotonic() < self._offline_until

    def unlogged(self, study: str) -> list[int]:
        """The trial numbers of ``study`` whose logging failed."""
        return sorted(self._unlogged.get(study, ()))

    def mark_unlogged(self, study: str, number: int) -> None:
        """Note trial ``number`` of ``study`` as not (completely) logged."""
        self._unlogged.setdefault(study, set()).add(number)

    def submit(self, study: str, number: int | None, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` on the tracking thread (or now); a failure marks trial ``number`` unlogged."""

        def job() -> Any:
            try:
                if self.offline:
                    raise Offline(f"MLflow unavailable ({self.last_error})")
                return fn(*args)
            except Exception as exc:
                if not isinstance(exc, Offline):
                    self.went_offline(exc)
                if number is not None:
                    self.mark_unlogged(study, number)
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

    def went_offline(self, exc: BaseException) -> None:
        """Note a failure (one warning per outage); a server is then left alone for a while."""
        msg = first_line(exc)
        if self.last_error is None or not self.offline:
            _log.warning("MLflow logging failed (%s); trials go on and are marked mlflow_logged=False. "
                         "Run `tuner study sync-mlflow NAME` later to log what is missing.", msg)
        self.last_error = msg
        if is_http(self.tracking_uri):
            self._offline_until = time.monotonic() + OFFLINE_RETRY_S

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the queued work is done; False when ``timeout`` ran out."""
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
