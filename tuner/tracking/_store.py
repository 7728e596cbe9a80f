"""The MLflow tracking store: its URI, an explicit client, reachability, SQLite preparation.

Every MLflow client of the package is made by :func:`explicit_client` (bounded HTTP retries,
never the process-global ``mlflow.set_tracking_uri`` state); a server is asked once, quickly,
by :func:`check_server` before anything else talks to it; a new SQLite store is created whole
or not at all (:func:`open_store`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tuner._logs import quiet_logger
from tuner.errors import ConfigError, TrackingError
from tuner.tracking._prebuild import is_template, template_path, wait_for_prebuild

__all__ = [
    "DEFAULT_DB_FILE",
    "DEFAULT_ARTIFACTS_DIR",
    "CHECK_TIMEOUT_S",
    "default_tracking_uri",
    "bound_http_requests",
    "explicit_client",
    "check_server",
    "check_store_exists",
    "open_store",
    "store_uri",
    "sqlite_file",
    "artifact_location",
    "get_repo",
    "local_dir",
    "is_http",
    "scheme",
    "redact",
    "first_line",
    "short",
    "reason_of",
]

DEFAULT_DB_FILE = "mlflow.db"
DEFAULT_ARTIFACTS_DIR = "mlartifacts"
CHECK_TIMEOUT_S = 5
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_HTTP_ENV_DEFAULTS = {  # bounded waits on a lost server (MLflow's defaults retry for minutes)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # set_terminated would print run URLs into --json output
}


def default_tracking_uri() -> str:
    """``sqlite:///<cwd>/mlflow.db`` (artifacts go to ``<cwd>/mlartifacts``)."""
    return f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def scheme(uri: str) -> str:
    """The URI's scheme, lower case (``""`` for a plain path)."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", uri)
    return m.group(1).lower() if m else ""


def is_http(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (``http(s)://``)."""
    return scheme(uri) in ("http", "https")


def redact(uri: str, *urls: str) -> str:
    """``uri`` (or any text) with passwords hidden: the one helper, :func:`tuner.study.redact`."""
    from tuner.study import redact as _redact

    return _redact(uri, *urls)


def short(text: str, n: int = 4000) -> str:
    """``text`` cut to ``n`` characters (MLflow limits tag values)."""
    return text if len(text) <= n else text[: n - 15] + " ...(truncated)"


def first_line(exc: Any, *urls: str) -> str:
    """The first line of an error, passwords of ``urls`` hidden, at most 300 characters."""
    text = str(exc).strip() or type(exc).__name__
    return short(redact(text.splitlines()[0], *urls), 300)


def store_uri(uri: str) -> str:
    """A database store's URI with an installed driver (TrackingError naming the pip command otherwise);
    a file store is refused in one line (MLflow's own refusal was cut before its remedy)."""
    _refuse_file_store(uri)
    if scheme(uri).split("+")[0] not in _DB_SCHEMES:
        return uri
    from tuner.study import memory_sqlite, resolve_url
    from tuner.study._storage import refuse_sqlite_folder

    if memory_sqlite(uri):
        raise TrackingError(f"The MLflow tracking store {uri} is an in-memory SQLite database, which forgets every "
                            "run when the command ends; give a file (e.g. sqlite:///mlflow.db).")
    refuse_sqlite_folder(uri, "MLflow tracking store", "mlflow.db", TrackingError)
    return resolve_url(uri, "MLflow tracking store", TrackingError)


_WORKSPACE_URIS = ("databricks", "databricks-uc", "uc")
"""Tracking URIs with no ``:`` that MLflow reads as a hosted workspace, not as a folder."""


def _refuse_file_store(uri: str) -> None:
    """A ``file:`` URI or a plain folder is a file store, which MLflow refuses (unless a ``file:``
    URI comes with MLflow's own opt-out, ``MLFLOW_ALLOW_FILE_STORE=true``)."""
    if uri.strip().lower() in _WORKSPACE_URIS:
        return
    kind = scheme(uri)
    opted_out = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("1", "true")
    if len(kind) <= 1 or (kind == "file" and not opted_out):  # "": a path; one letter: a Windows drive
        raise TrackingError(f"The MLflow tracking store {redact(uri)} is a file store, which MLflow no longer "
                            "writes; use sqlite:///mlflow.db (the default) or an http(s):// tracking server "
                            "(--tracking-uri / MLFLOW_TRACKING_URI).")


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other store)."""
    if scheme(uri) != "sqlite":
        return None
    from tuner.study import sqlite_path

    try:
        return sqlite_path(uri)
    except Exception:
        return None


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "study"


def artifact_location(tracking_uri: str, artifact_root: str | Path | None, study_name: str) -> str | None:
    """Where a new experiment of ``study_name`` keeps artifacts (None: the server or database decides)."""
    root = artifact_root
    if root is None:
        db = sqlite_file(tracking_uri)
        if db is None:
            return None
        root = db.resolve().parent / DEFAULT_ARTIFACTS_DIR
    if isinstance(root, str) and len(scheme(root)) > 1:  # a URI (a Windows drive letter is not one)
        return f"{root.rstrip('/')}/{_slug(study_name)}"
    return (Path(root).resolve() / _slug(study_name)).as_uri()


def local_dir(artifact_uri: str) -> Path | None:
    """The local folder of a ``file:`` artifact URI (None for a remote one)."""
    if scheme(artifact_uri) != "file":
        return None
    from urllib.parse import unquote, urlparse

    parsed = urlparse(artifact_uri)
    return Path(unquote(parsed.path)) if parsed.netloc in ("", "localhost") else None


def get_repo(artifact_uri: str, tracking_uri: str) -> Any:
    """MLflow's artifact repository for ``artifact_uri`` (resolved against ``tracking_uri``)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)


# --------------------------------------------------------------------------------------------
# Clients and reachability.


def bound_http_requests() -> None:
    """Bounded retries and timeouts for every MLflow HTTP request of this process.

    The one place that sets them, before any client is made (:func:`explicit_client`, used by
    the observer and the model functions alike); values the user set in the environment win.
    """
    for k, v in _HTTP_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)


def explicit_client(uri: str) -> Any:
    """An ``MlflowClient`` for tracking and registry at ``uri`` (bounded HTTP requests)."""
    bound_http_requests()
    from mlflow import MlflowClient

    from tuner.study._storage import watch_engines

    watch_engines()  # a SQLite tracking store's connections are closed at the CLI's exit

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_server(uri: str, advice: str = "start it (mlflow server ...) or fix --tracking-uri / MLFLOW_TRACKING_URI"
                 ) -> None:
    """For an HTTP(S) tracking URI: one quick request without retries, or TrackingError in one line
    ending with ``advice`` when nothing answers."""
    if not is_http(uri):
        return
    bound_http_requests()
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    where = redact(uri)
    try:
        resp = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/experiments/search", "POST",
                            json={"max_results": 1}, max_retries=0, backoff_factor=0, timeout=CHECK_TIMEOUT_S,
                            raise_on_status=False)
    except Exception as exc:
        raise TrackingError(f"Cannot reach the MLflow tracking server at {where} ({reason_of(exc)}); "
                            f"{advice}.") from None
    if resp.status_code != 200:
        raise TrackingError(f"The MLflow tracking server at {where} refused a request (HTTP {resp.status_code}); "
                            "check the URI and credentials (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN).")


def reason_of(exc: BaseException) -> str:
    """A short reason for a failed HTTP request: refused, no answer in time, or the first line."""
    text = " ".join(str(e) for e in _chain(exc))
    if "timed out" in text or "Timeout" in text:
        return f"no answer within {CHECK_TIMEOUT_S} s"
    if "Connection refused" in text:
        return "connection refused"
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return m.group(1).strip() if m else first_line(exc)


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def check_store_exists(uri: str) -> None:
    """A SQLite tracking store to read a model from must exist and hold MLflow's tables.

    MLflow would otherwise create an empty store (or add its tables to another database,
    such as the study database) and then report that the model is not found.
    """
    import sqlite3

    db = sqlite_file(uri)
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


# --------------------------------------------------------------------------------------------
# Opening (on a first start: creating) a database or file store.


def open_store(uri: str, client: Callable[[], Any]) -> None:
    """Open (on a first start: create) the store at ``uri``; one process at a time creates it.

    ``client`` makes the MLflow client; it is called inside the schema lock, after the checks,
    because building a client on a new database store creates its tables.

    Raises :class:`TrackingError` in one line when it is unreachable, read-only or from
    another MLflow version.
    """
    from tuner.study import check_reachable, retry_races, schema_lock, sqlite_writable

    what = "MLflow tracking store"
    resolved = store_uri(uri)
    db = sqlite_file(uri)
    if db is None and scheme(uri).split("+")[0] in _DB_SCHEMES:
        check_reachable(resolved, what, TrackingError)
    if db is not None and not sqlite_writable(db):
        raise TrackingError(f"The {what} {db} is read-only (file or folder not writable); give a writable one "
                            "(--tracking-uri / MLFLOW_TRACKING_URI) or run with --no-tracking.")
    database = db is not None or scheme(uri).split("+")[0] in _DB_SCHEMES
    try:  # a server or workspace store creates its own schema
        with schema_lock(resolved, what, TrackingError) if database else contextlib.nullcontext():
            if db is not None:
                if not db.exists() or db.stat().st_size == 0:
                    _create_sqlite_store(db)
                _prepare_sqlite(db)
            if scheme(uri).split("+")[0] in _DB_SCHEMES:
                _refuse_foreign_database(resolved, str(db) if db is not None else redact(uri))
            with quiet_logger("mlflow.utils.databricks_utils", logging.ERROR):  # its warning repeats the error
                made = client()
                retry_races(made.search_experiments, max_results=1)
                retry_races(made.search_registered_models, max_results=1)
    except TrackingError:
        raise
    except Exception as exc:
        where = db if db is not None else redact(uri)
        reason = first_line(exc, uri)
        if "out-of-date database schema" in reason:
            reason = (f"its schema is from another MLflow version ({reason.split('(', 1)[-1].split(')')[0]}); "
                      f"back it up, then run: mlflow db upgrade '{redact(uri)}'")
        raise TrackingError(f"Cannot open the {what} {where}: {reason}.") from None


def _refuse_foreign_database(url: str, where: str) -> None:
    """Refuse, before MLflow adds its tables and migrates them, a database that is another
    application's: a study database (Optuna's, whose ``alembic_version`` MLflow would then try to
    read as its own), or one holding other tables and none of MLflow's."""
    from tuner.study import table_names

    tables = table_names(url)
    if not tables or "experiments" in tables:
        return
    if {"version_info", "studies"} <= tables:
        raise TrackingError(f"{where} is a study database (Optuna's), not an MLflow tracking store; give MLflow its "
                            "own (--tracking-uri / MLFLOW_TRACKING_URI; the studies' is --storage).")
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise TrackingError(f"{where} is not an MLflow tracking store: it holds other tables ({shown}) and none of "
                        "MLflow's; give MLflow a database of its own (--tracking-uri / MLFLOW_TRACKING_URI).")


def _prepare_sqlite(path: Path) -> None:
    """Create the folder, and put a new database in WAL mode (concurrent readers, fewer fsyncs)."""
    from tuner.study import prepare_sqlite

    prepare_sqlite(path, "MLflow database", TrackingError)


def _create_sqlite_store(db: Path) -> None:
    """Make a new MLflow SQLite store whole or not at all: its schema is built in (or copied from
    :func:`schema_template` to) a file beside it (rollback journal: every commit is in the file),
    which is then renamed into place, so a process killed while creating it leaves no
    half-migrated store behind. Opening it then adds MLflow's Default experiment there."""
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in db.parent.glob(f".{db.name}.*.new*"):  # left by a killed process (we hold the lock)
        stale.unlink(missing_ok=True)
    with _beside(db) as tmp:
        template = schema_template()
        if template is not None:
            shutil.copyfile(template, tmp)
        else:
            _build_schema(tmp)
        for stale in (Path(f"{db}-wal"), Path(f"{db}-shm")):  # a deleted store's log would replay onto the new one
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _beside(path: Path) -> Iterator[Path]:
    """A new file name beside ``path`` to build an SQLite file in; renamed onto ``path`` when the
    block ends without an error (atomic: a reader sees the old file, the new one, or none), and
    removed with its rollback journal in any case. The name is unique per call: MLflow caches
    stores by URI."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.new")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for stale in (tmp, Path(f"{tmp}-journal")):
            stale.unlink(missing_ok=True)


def _build_schema(path: Path, *, without_default_experiment: bool = False) -> None:
    """Create MLflow's tables in the scratch SQLite file ``path`` (every migration of this MLflow
    release; no sync per commit, one at the end: :func:`tuner.study.scratch_sqlite`)."""
    from tuner.study import scratch_sqlite

    with scratch_sqlite(path):
        client = explicit_client(f"sqlite:///{path}")
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
        with contextlib.suppress(AttributeError):  # close the pools (MLflow's private attributes)
            for store in (client._tracking_client.store, client._get_registry_client().store):
                store.engine.dispose()
    if without_default_experiment:  # its artifact location names the folder it was made in
        import sqlite3

        with contextlib.closing(sqlite3.connect(path)) as con, con:
            con.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            con.execute("DELETE FROM experiments WHERE experiment_id = 0")


def schema_template() -> Path | None:
    """An empty, migrated MLflow SQLite store for this MLflow release, kept in the user's cache
    (``$TUNER_CACHE_DIR``, else ``$XDG_CACHE_HOME/logreg-tuner`` or ``~/.cache/logreg-tuner``) and
    built on first use; ``None`` when the cache cannot be written.

    Running MLflow's migrations on a new SQLite store takes ~2 s (a tenth of a 30-trial a9a study);
    a copy of the migrated file takes milliseconds. The template holds no experiment: MLflow adds
    its Default experiment, with the right artifact location, when the copy is first opened."""
    import mlflow

    path = template_path(mlflow.__version__)
    wait_for_prebuild()  # a child process this one started may be building it (prebuild_schema_template)
    if is_template(path):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _beside(path) as tmp:
            _build_schema(tmp, without_default_experiment=True)
    except OSError:
        return None
    return path if is_template(path) else None
