"""Study storage: the only place that builds SQLAlchemy URLs and engines.

SQLite (the default, a file in the working directory) is opened in WAL mode with a busy
timeout and commits with ``synchronous=NORMAL`` (:func:`watch_engines`); every engine uses
``pool_pre_ping`` and a connect timeout. The first start of a store is serialised
(:func:`schema_lock`: a file lock next to a SQLite file, an advisory lock on PostgreSQL), so
many processes can start on one new database. A store that is only read (``tuner study
list/show``) is opened read-only and never created. Errors become :class:`StorageError` with
what to do about them, passwords hidden (:func:`redact`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from tuner.errors import ConfigError, StorageError, TunerError
from tuner.study._connections import (  # the storage layer's names, re-exported
    _sqlite_read_url,
    prepare_sqlite,
    scratch_sqlite,
    sqlite_writable,
    watch_engines,
)

__all__ = [
    "DEFAULT_STORAGE_FILE",
    "MissingStudyError",
    "CONNECT_TIMEOUT_S",
    "default_storage_url",
    "open_storage",
    "sqlite_path",
    "same_database",
    "absolute_url",
    "redact",
    "resolve_url",
    "prepare_sqlite",
    "schema_lock",
    "check_reachable",
    "memory_sqlite",
    "retry_races",
    "sqlite_writable",
    "scratch_sqlite",
    "table_names",
    "trial_states",
    "database_failure",
]

DEFAULT_STORAGE_FILE = "tuner-studies.db"
CONNECT_TIMEOUT_S = 10
_PG_LOCK_KEY = 0x74756E6572  # "tuner": one advisory lock per database, held while a schema is created
_RETRIES = 5
_DRIVER_PACKAGES = {  # DBAPI module -> what to pip install
    "psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pg8000": "pg8000", "asyncpg": "asyncpg",
    "MySQLdb": "mysqlclient", "pymysql": "PyMySQL", "mysql": "mysql-connector-python", "pyodbc": "pyodbc",
    "oracledb": "oracledb",
}
_URL_NETLOC = re.compile(r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/\s?#]*)")
_DSN_PASSWORD = re.compile(r"(?i)\b(password\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s,;)]+)")


def heartbeat_settings() -> dict[str, int]:
    """Workers beat every ``TUNER_HEARTBEAT_INTERVAL`` s; a trial silent for ``TUNER_HEARTBEAT_GRACE``
    s (a killed worker's) is marked failed when the next trial starts."""
    interval, grace = _seconds_env("TUNER_HEARTBEAT_INTERVAL", 10), _seconds_env("TUNER_HEARTBEAT_GRACE", 30)
    if grace < 2 * interval:
        # a beat comes up to an interval after the last; a grace that short fails trials that are
        # training (interval 5, grace 1: 3 of 9 healthy trials failed as lost and ran again)
        raise ConfigError(f"TUNER_HEARTBEAT_GRACE ({grace} s) must be at least twice TUNER_HEARTBEAT_INTERVAL "
                          f"({interval} s): a worker beats once an interval, so a shorter grace period fails trials "
                          "that are still training as lost. Raise the grace period or shorten the interval.")
    return {"heartbeat_interval": interval, "grace_period": grace}


def _seconds_env(name: str, default: int) -> int:
    """A whole number of seconds >= 1 from the environment variable ``name`` (Optuna's heartbeat
    interval and grace period are integers), or a :class:`ConfigError` saying so."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of seconds, 1 or more (Optuna's heartbeat counts whole "
                          f"seconds); got {text!r} (unset, it is {default}).")
    return value


def default_storage_url() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_STORAGE_FILE}"


class MissingStudyError(ConfigError):
    """No study of that name in the storage: ``found`` says so, ``remedy`` how to create it (a
    command without data, ``tuner worker``, gives its own)."""

    def __init__(self, found: str, remedy: str) -> None:
        super().__init__(f"{found}; {remedy}")
        self.found = found


# ---- secrets ----------------------------------------------------------------------------------
BARE_SECRET_MIN = 8
"""Shorter passwords are hidden only in their URL forms: a bare ``p`` is a piece of every word
(``***ort 1 failed``, ``***assword authentication failed``)."""


def redact(text: Any, *urls: str) -> str:
    """``text`` with every password hidden: in URLs (``user:***@``), in libpq DSNs
    (``password=***``); for drivers' own messages, the URLs of ``urls`` also URL-encoded and
    their ``user:password@`` parts without a scheme, and their passwords verbatim when at
    least :data:`BARE_SECRET_MIN` characters long."""
    out = str(text)
    for url in urls:
        out = _hide_url_forms(out, str(url))
    out = _DSN_PASSWORD.sub(r"\1***", _URL_NETLOC.sub(_hide_password, out))
    secrets = {s for url in urls for s in _passwords(url) if len(s) >= BARE_SECRET_MIN}
    for secret in sorted(secrets, key=len, reverse=True):
        out = out.replace(secret, "***")
    return out


def _hide_url_forms(text: str, url: str) -> str:
    """``text`` without ``url``'s password in ``url`` URL-encoded or in its ``user:password@``."""
    m = _URL_NETLOC.search(url)
    parts = _userinfo(m.group("netloc")) if m else None
    if not parts or not parts[1]:
        return text
    hidden = _URL_NETLOC.sub(_hide_password, url)
    text = text.replace(quote(url, safe=""), quote(hidden, safe=""))
    for user in {parts[0], unquote(parts[0])}:
        for secret in _passwords(url):
            text = text.replace(f"{user}:{secret}@", f"{user}:***@")
    return text


def _userinfo(netloc: str) -> tuple[str, str | None, str] | None:
    """``(user, password, host)`` of a URL's ``user[:password]@host`` part, split as SQLAlchemy
    does: the host after the last ``@`` (a user may hold one: Azure's ``user@server``), the
    password after the user's first ``:``; None without userinfo."""
    if "@" not in netloc:
        return None
    info, host = netloc.rsplit("@", 1)
    user, sep, password = info.partition(":")
    return user, password if sep else None, host


def _hide_password(m: re.Match[str]) -> str:
    parts = _userinfo(m.group("netloc"))
    if parts is None or parts[1] is None:
        return m.group(0)
    return f"{m.group('scheme')}{parts[0]}:***@{parts[2]}"


def _passwords(url: str) -> set[str]:
    """The password of ``url`` as written, decoded and encoded."""
    m = _URL_NETLOC.search(str(url))
    parts = _userinfo(m.group("netloc")) if m else None
    raw = parts[1] if parts else None
    if not raw:
        return set()
    return {s for s in (raw, unquote(raw), quote(unquote(raw), safe="")) if s}


# ---- URLs -------------------------------------------------------------------------------------
def _parse(url: str) -> Any:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:
        raise StorageError(f"{redact(url)!r} is not a database URL (e.g. sqlite:///studies.db or "
                           "postgresql://user@host/db).") from None


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (also ``sqlite:///file:PATH?mode=ro&uri=true``), or None
    for other databases (or in-memory SQLite)."""
    parsed = _parse(url)
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or _is_memory(parsed):
        return None
    if db.startswith("file:"):
        db = unquote(db[5:].split("?")[0])
        if db.startswith("//"):  # file://host/path
            db = "/" + db[2:].partition("/")[2]
    return Path(db)


def _is_memory(parsed: Any) -> bool:
    db = parsed.database or ""
    return (not db or db in (":memory:", "file::memory:") or parsed.query.get("mode") == "memory"
            or (db.startswith("file:") and "mode=memory" in db))


def memory_sqlite(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (forgotten when the process ends)."""
    parsed = _parse(url)
    return parsed.get_backend_name() == "sqlite" and _is_memory(parsed)


def _read_only_url(parsed: Any) -> bool:
    return parsed.query.get("mode") == "ro" or parsed.query.get("immutable") == "1"


def absolute_url(url: str) -> str:
    """``url`` with a relative SQLite file made absolute (``sqlite:///s.db`` run in ``/a`` is
    ``sqlite:////a/s.db``): what a record kept elsewhere (an MLflow tag) must hold, since the same
    relative URL names another database in every folder. Other URLs as they are."""
    try:
        path = sqlite_path(url)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: kept as given
        return url
    if path is None or path.is_absolute() or str(_parse(url).database).startswith("file:"):
        return url
    parsed = _parse(url)
    return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)


def same_database(url_a: str, url_b: str) -> bool:
    """Whether two URLs name one database (used to keep Optuna and MLflow apart)."""
    from sqlalchemy.engine import make_url

    try:
        a, b = make_url(url_a), make_url(url_b)
        pa, pb = sqlite_path(url_a), sqlite_path(url_b)
    except Exception:
        return False
    if pa is not None and pb is not None:
        return pa.resolve() == pb.resolve()
    return a.set(password=None).render_as_string() == b.set(password=None).render_as_string()


def refuse_sqlite_folder(url: str, what: str, file_name: str, error: type[TunerError] = StorageError) -> None:
    """An ``error`` when the ``sqlite:///`` URL ``url`` names a folder (SQLite's own word is
    'unable to open database file'), suggesting ``file_name`` in it."""
    path = sqlite_path(url)
    if path is not None and (str(_parse(url).database).endswith(("/", "\\")) or path.is_dir()):
        raise error(f"The {what} URL {redact(url)} names a folder, {path}; name a database file in it "
                    f"(sqlite:///{path / file_name}).")


def resolve_url(url: str, what: str = "study database", error: type[TunerError] = StorageError) -> str:
    """``url`` with a driver that is installed, or ``error`` naming the pip command.

    A plain ``postgresql://`` means psycopg (3) to SQLAlchemy 2.1; with only psycopg2
    installed it is mapped to ``postgresql+psycopg2://``.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "postgresql" and "+" not in parsed.drivername and not _importable("psycopg") \
            and _importable("psycopg2"):
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    try:
        dialect = parsed.get_dialect()
    except Exception:
        raise error(f"The {what} URL {redact(url)} names an unknown database kind {parsed.drivername!r}; "
                    "use e.g. sqlite:///studies.db or postgresql://user:password@host/db.") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (getattr(exc, "name", None) or str(dialect.driver)).split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        hint = "pip install 'logreg-tuner[postgres]'" if package == "psycopg[binary]" else f"pip install '{package}'"
        raise error(f"The {what} URL {redact(url)} needs the database driver {module!r}, which is not installed: "
                    f"{hint}.") from None
    return url


def _importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


SQLITE_BUSY_TIMEOUT_S = 30
"""How long a SQLite connection waits for another one's write lock (a URL's ``?timeout=`` overrides it)."""


def _connect_args(url: str) -> dict[str, Any]:
    """A connect timeout for server databases, a busy timeout for SQLite (30 s), unless the URL sets
    one (``sqlite:///studies.db?timeout=120``)."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {} if "timeout" in parsed.query else {"timeout": SQLITE_BUSY_TIMEOUT_S}
    if backend in ("postgresql", "mysql", "mariadb") and "connect_timeout" not in parsed.query:
        return {"connect_timeout": CONNECT_TIMEOUT_S}
    return {}


def check_reachable(url: str, what: str, error: type[TunerError] = StorageError) -> None:
    """Connect once to a server database (within the connect timeout), or raise ``error``."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = resolve_url(url, what, error)
    if _parse(url).get_backend_name() == "sqlite":
        return
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=_connect_args(url))
    try:
        with engine.connect():
            pass
    except Exception as exc:
        raise error(f"Cannot reach the {what} {redact(url)}: {_first_line(exc, url)}. Check that the server "
                    "is running and the URL is right.") from None
    finally:
        engine.dispose()


@contextlib.contextmanager
def schema_lock(url: str, what: str = "study database", error: type[TunerError] = StorageError) -> Iterator[None]:
    """Serialise creating (or checking) a store's schema among processes starting together.

    SQLite: a file lock next to the database; a database that this block creates and fails to
    finish (an error, Ctrl-C) is removed, never left half-made. PostgreSQL: a session advisory
    lock. Other databases: nothing (the callers retry on "already exists").
    """
    path = sqlite_path(url)
    if path is not None:
        with _sqlite_lock(path, what, error):
            yield
    elif _parse(url).get_backend_name() == "postgresql":
        with _pg_lock(url, what, error):
            yield
    else:
        yield


@contextlib.contextmanager
def _sqlite_lock(path: Path, what: str, error: type[TunerError]) -> Iterator[None]:
    from filelock import FileLock, Timeout

    if not sqlite_writable(path):
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"Cannot create the folder of the {what} {path}: {exc}.") from None
    lock = FileLock(str(path.parent / f".{path.name}.lock"))
    try:  # filelock waits out a lock file it cannot create as one another process holds
        with open(lock.lock_file, "a"):
            pass
    except OSError as exc:
        raise error(f"Cannot create the lock file {lock.lock_file} beside the {what} {path}: "
                    f"{exc.strerror or exc}; give a --storage path in a folder this user can write.") from None
    try:
        lock.acquire(timeout=600)
    except Timeout:
        raise error(f"Another process has held the lock {lock.lock_file} for 10 minutes while creating the {what} "
                    f"{path}; remove the lock file if no tuner process is running.") from None
    fresh = not path.exists() or path.stat().st_size == 0
    try:
        yield
    except BaseException:
        if fresh:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise
    finally:
        lock.release()


@contextlib.contextmanager
def _pg_lock(url: str, what: str, error: type[TunerError]) -> Iterator[None]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = resolve_url(url, what, error)
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=_connect_args(url))
    try:
        con = engine.connect()
    except Exception as exc:
        engine.dispose()
        raise error(f"Cannot reach the {what} {redact(url)}: {_first_line(exc, url)}. Check that the server is "
                    "running and the URL is right.") from None
    try:
        con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        con.commit()
        yield
    finally:
        con.close()  # ends the session, which releases the lock
        engine.dispose()


def retry_races(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)``, again (a few times) when another process created the same table or row just now."""
    for attempt in range(_RETRIES):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            text = str(exc).lower()
            race = any(k in text for k in ("already exists", "duplicate key", "unique constraint", "uniqueviolation"))
            if not race or attempt == _RETRIES - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _sqlalchemy_error(exc: BaseException) -> BaseException:
    """The SQLAlchemy error under ``exc`` (Optuna wraps them), or ``exc``'s innermost cause."""
    while getattr(exc, "orig", None) is None and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


_DATABASE_HINTS = (
    ("database is locked", "another process held a write lock on the SQLite file longer than the busy timeout "
                           "(a long transaction, a database browser, a copy in progress); when it is done, run the "
                           "command again (a study resumes where it stopped), or wait longer with ?timeout=SECONDS "
                           "on the URL (default 30)"),
    ("malformed", "the SQLite file is damaged; restore it from a copy, or give another --storage"),
    ("file is not a database", "the file is not an SQLite database; check --storage"),
    ("no such table", "the database lacks tables that a study database has (half-created, or made by another "
                      "program); give another --storage"),
    ("no such column", "the database's tables are not a study database's; give another --storage"),
)


def database_failure(exc: BaseException) -> str | None:
    """One line for ``exc`` when it is, or wraps, an error of the database itself (a lock held too
    long, a damaged file, missing tables): the driver's words and what to do; None for any other
    error (Optuna wraps SQLAlchemy's errors, which wrap the driver's)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        inner = getattr(e, "orig", None)
        if isinstance(inner, BaseException) or isinstance(e, sqlite3.Error):
            text = _first_line(e)
            hint = next((h for key, h in _DATABASE_HINTS if key in text.lower()), None)
            return f"{text}: {hint}" if hint else text
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)  # `from None`: handled already
    return None


def _first_line(exc: Any, *urls: str) -> str:
    """The first line of the innermost error (the driver's own words), passwords hidden."""
    inner = _sqlalchemy_error(exc)
    inner = getattr(inner, "orig", None) or inner
    text = str(inner).strip() or type(inner).__name__
    return redact(text.splitlines()[0], *urls)[:300]


# ---- the study storage ------------------------------------------------------------------------
def _engine_url(url: str, writable: bool) -> str:
    """The URL to open: the driver checked, SQLite read-only where it has to be, never in memory."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return resolve_url(url)
    if _is_memory(parsed):
        raise StorageError(f"The study storage {url} is an in-memory SQLite database, which forgets every study "
                           "when the command ends; give a file (e.g. sqlite:///tuner-studies.db).")
    path = sqlite_path(url)
    assert path is not None
    if writable:
        if _read_only_url(parsed):
            raise StorageError(f"The study database {path} is opened read-only ({redact(url)}); running trials or "
                               "deleting a study needs a writable one.")
        if not sqlite_writable(path):
            raise StorageError(f"The study database {path} is read-only (file or folder not writable); "
                               "`tuner study list/show` can read it; copy it to a writable folder to run trials or "
                               "delete a study there.")
        return url
    require_database(url)
    return url if _read_only_url(parsed) else _sqlite_read_url(path, parsed.query.get("timeout"))


def require_database(url: str) -> None:
    """A :class:`StorageError` when ``url`` is a SQLite file that does not exist: a command that
    only reads, resumes or joins a study would otherwise create an empty database at a mistyped
    path (and then say that the study is not there, or wait for it)."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(f"There is no study database at {path}; check the 'storage' parameter / TUNER_STORAGE "
                           "(a study is created by `tuner tune`).")


def open_storage(url: str, *, heartbeat: bool = True, writable: bool = True) -> Any:
    """An ``optuna.storages.RDBStorage`` for ``url`` with our engine settings.

    ``writable=False`` opens a store only to read it (SQLite: read-only, never created), so a
    store on read-only media can be listed and shown.
    """
    import optuna

    watch_engines()
    engine_url = _engine_url(url, writable)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True, "connect_args": _connect_args(engine_url)}
    kwargs: dict[str, Any] = heartbeat_settings() if heartbeat else {}
    path = sqlite_path(url)
    where = str(path) if path is not None else redact(url)
    refuse_sqlite_folder(url, "study database", DEFAULT_STORAGE_FILE)

    def create() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(engine_url, engine_kwargs=engine_kwargs, skip_table_creation=not writable,
                                              **kwargs)

    def probed(storage: Any) -> Any:
        try:  # Optuna opens a foreign table named like one of its own: read a study name to be sure
            storage.get_study_id_from_name("tuner:probe")
        except KeyError:
            pass
        return storage

    try:
        if not writable:  # nothing is created: a read tells a foreign 'studies' table
            _refuse_foreign_studies_table(engine_url, engine_kwargs, where)
            return probed(create())
        with schema_lock(engine_url):
            if path is None or path.exists():  # before anything is written to it: WAL mode, Optuna's tables
                _refuse_foreign_studies_table(engine_url, engine_kwargs, where)
            if path is not None:
                prepare_sqlite(path)
            return retry_races(create)
    except TunerError:
        raise
    except RuntimeError as exc:  # Optuna's schema-version check
        raise StorageError(f"The study database {where} has an incompatible schema: {_first_line(exc, url)}") from None
    except ImportError as exc:
        raise StorageError(f"Cannot use the study database URL {redact(url)}: {_first_line(exc, url)}.") from None
    except Exception as exc:
        raise _storage_error(exc, url, where, path is not None) from None


MLFLOW_TABLES = frozenset({"experiments", "runs", "metrics", "alembic_version"})
"""Tables every MLflow tracking database holds (and Optuna's never do)."""


def table_names(url: str) -> set[str]:
    """The tables of the database at SQLAlchemy ``url`` (another application's store is told by
    them before anything is written to it)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


OPTUNA_TABLES = frozenset({
    "alembic_version", "studies", "study_directions", "study_system_attributes", "study_user_attributes",
    "trial_heartbeats", "trial_intermediate_values", "trial_params", "trial_system_attributes", "trial_user_attributes",
    "trial_values", "trials", "version_info"})
"""The tables of an Optuna storage (schema v12, Optuna 3 and 4)."""


def _refuse_foreign_studies_table(engine_url: str, engine_kwargs: dict[str, Any], where: str) -> None:
    """Refuse, before Optuna adds its tables, a database that is another application's: one whose
    ``studies`` table is not Optuna's (other columns, or no primary key: Optuna would write into it
    and then fail), an MLflow tracking store, or a SQLite file holding tables that are not Optuna's
    (a half-created Optuna schema, with none of those, is completed)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(engine_url, **engine_kwargs)
    try:
        inspector = sqlalchemy.inspect(engine)
        tables = set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("studies")} if "studies" in tables else None
        key = inspector.get_pk_constraint("studies").get("constrained_columns") if columns is not None else None
    finally:
        engine.dispose()
    if tables and "version_info" not in tables:  # not (yet) Optuna's
        if MLFLOW_TABLES <= tables:
            raise StorageError(f"{where} is an MLflow tracking database, not a study database; give the studies "
                               "their own (the 'storage' parameter / TUNER_STORAGE; MLflow's is the 'tracking_uri' "
                               "parameter).")
        foreign = sorted(tables - OPTUNA_TABLES)
        if engine_url.startswith("sqlite") and foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            optuna_part = "not Optuna's version table" if tables & OPTUNA_TABLES else "none of Optuna's"
            raise StorageError(f"{where} is not a study database: it holds other tables ({shown}) and {optuna_part}; "
                               "check the 'storage' parameter / TUNER_STORAGE.")
    if columns is None:
        return
    if columns != {"study_id", "study_name"} or key != ["study_id"]:
        raise StorageError(f"{where} is not a study database: its 'studies' table is another application's "
                           f"(columns {sorted(columns)}, primary key {key or 'none'}); check the 'storage' parameter / "
                           "TUNER_STORAGE.")


def _storage_error(exc: Exception, url: str, where: str, is_sqlite: bool) -> StorageError:
    """One line for a failure to open the study database."""
    import sqlalchemy.exc

    reason = _first_line(exc, url)
    if "readonly database" in reason or "no such table" in reason or "no such column" in reason or \
            (('relation "' in reason or 'column "' in reason) and "does not exist" in reason):
        return StorageError(f"{where} is not a study database (it holds no Optuna tables); check the 'storage' "
                            "parameter / TUNER_STORAGE.")
    if is_sqlite:
        return StorageError(f"Cannot open the SQLite study database {where}: {reason}.")
    if isinstance(_sqlalchemy_error(exc), (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
        return StorageError(f"Cannot reach the study database {where}: {reason}. Check that the server is running "
                            "and the URL (the 'storage' parameter / TUNER_STORAGE) is right.")
    return StorageError(f"Cannot use the study database {where}: {reason}.")


def trial_states(study: Any) -> list[tuple[int, Any]]:
    """``(number, TrialState)`` of every trial of ``study``, read from its storage.

    For an SQL storage this reads two columns of Optuna's ``trials`` table. ``study.get_trials``
    gives the same answer, but it loads every unfinished trial whole (parameters, attributes,
    intermediate values), and a batch of K running trials made each budget check O(K): about a
    second in a 64-trial a9a study. Any other storage goes through ``get_trials``.
    """
    from sqlalchemy import select

    backend = getattr(study._storage, "_backend", study._storage)
    try:
        from optuna.storages import RDBStorage
        from optuna.storages._rdb.models import TrialModel
    except ImportError:  # pragma: no cover - a future Optuna that moved its models
        return [(t.number, t.state) for t in study.get_trials(deepcopy=False)]
    if not isinstance(backend, RDBStorage):
        return [(t.number, t.state) for t in study.get_trials(deepcopy=False)]
    with backend.engine.connect() as conn:
        rows = conn.execute(
            select(TrialModel.number, TrialModel.state).where(TrialModel.study_id == study._study_id).order_by(TrialModel.number)
        ).all()
    return [(int(number), state) for number, state in rows]
