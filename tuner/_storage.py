"""Study storage: the only place that builds SQLAlchemy URLs and engines.

SQLite (the default, a file in the working directory) is opened in WAL mode with a busy
timeout; every engine uses ``pool_pre_ping``. Errors become :class:`StorageError` with what
to do about them.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path
from typing import Any

from .errors import StorageError

__all__ = ["DEFAULT_STORAGE_FILE", "default_storage_url", "open_storage", "sqlite_path", "same_database"]

DEFAULT_STORAGE_FILE = "tuner-studies.db"


def _heartbeat() -> dict[str, int]:
    """Workers beat every ``TUNER_HEARTBEAT_INTERVAL`` s; a trial silent for ``TUNER_HEARTBEAT_GRACE``
    s (a killed worker's) is marked failed when the next trial starts."""
    return {"heartbeat_interval": int(os.environ.get("TUNER_HEARTBEAT_INTERVAL", "10")),
            "grace_period": int(os.environ.get("TUNER_HEARTBEAT_GRACE", "30"))}


def default_storage_url() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_STORAGE_FILE}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, or None for other databases (or in-memory SQLite)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        raise StorageError(f"{url!r} is not a database URL (e.g. sqlite:///studies.db or postgresql://user@host/db).") from None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def same_database(url_a: str, url_b: str) -> bool:
    """Whether two URLs name one database (used to keep Optuna and MLflow apart)."""
    from sqlalchemy.engine import make_url

    try:
        a, b = make_url(url_a), make_url(url_b)
    except Exception:
        return False
    pa, pb = sqlite_path(url_a), sqlite_path(url_b)
    if pa is not None and pb is not None:
        return pa.resolve() == pb.resolve()
    return a.set(password=None).render_as_string() == b.set(password=None).render_as_string()


def _prepare_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sqlite3.connect(path, timeout=30) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise StorageError(f"Cannot open the SQLite study database {path}: {exc}.") from None


def open_storage(url: str, *, heartbeat: bool = True) -> Any:
    """An ``optuna.storages.RDBStorage`` for ``url`` with our engine settings."""
    import optuna
    import sqlalchemy.exc

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    path = sqlite_path(url)
    if path is not None:
        _prepare_sqlite(path)
        engine_kwargs["connect_args"] = {"timeout": 30}
    kwargs: dict[str, Any] = _heartbeat() if heartbeat else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except RuntimeError as exc:  # Optuna's schema-version check
        raise StorageError(f"The study database {url} has an incompatible schema: {exc}") from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        raise StorageError(
            f"Cannot reach the study database {_redact(url)}: {exc.orig if getattr(exc, 'orig', None) else exc}. "
            "Check that the server is running and the URL (--storage / TUNER_STORAGE) is right."
        ) from None
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise StorageError(f"Cannot use the study database URL {_redact(url)}: {exc}.") from None


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
