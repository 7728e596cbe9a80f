"""This process's database engines and SQLite files: closing the engines at exit, tuning each
new SQLite connection (``synchronous`` by file), preparing a SQLite file (WAL mode) and naming
it for a read-only open. Part of the storage layer (:mod:`tuner.study._storage`)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tuner.errors import StorageError, TunerError

__all__ = ["watch_engines", "close_engines", "scratch_sqlite", "prepare_sqlite", "sqlite_writable"]


# ---- closing at exit ---------------------------------------------------------------------------
_ENGINES: Any = None  # a WeakSet of every SQLAlchemy engine this process connected with, once watched


def watch_engines() -> None:
    """Remember every SQLAlchemy engine that connects from now on (Optuna's, MLflow's): the CLI
    ends with ``os._exit``, which closes no connection, so :func:`close_engines` must. Their new
    SQLite connections are tuned as they open (:func:`_tune_sqlite_connection`)."""
    global _ENGINES
    if _ENGINES is not None:
        return
    import weakref

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _ENGINES = weakref.WeakSet()
    event.listen(Engine, "engine_connect", lambda connection: _ENGINES.add(connection.engine))
    event.listen(Engine, "connect", _tune_sqlite_connection)


_SCRATCH_FILES: set[str] = set()  # SQLite files being built beside their final name (scratch_sqlite)
_WAL_FILES: set[str] = set()  # the study databases and MLflow stores this process prepared (prepare_sqlite)


def _names(path: Path) -> set[str]:
    """``path`` as SQLite may name it (``PRAGMA database_list``): absolute, links resolved or not."""
    return {os.path.abspath(path), os.path.realpath(path)}


def _tune_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    """Each new SQLite connection of an engine in this process: a study database or MLflow store
    that :func:`prepare_sqlite` put in WAL mode commits with ``synchronous=NORMAL``, SQLite's
    advice for WAL (a commit is written to the log without an fsync; a killed process loses
    nothing, a power cut can lose the last commits but never corrupts the file); with the default
    ``FULL`` every commit of a trial (its parameters, attributes, state, the MLflow run's rows)
    waited for the disk. A file under :func:`scratch_sqlite` commits without syncing at all.
    Other files (a program's own databases, beside the Python API) are left as they are."""
    if not isinstance(dbapi_connection, sqlite3.Connection) or not (_SCRATCH_FILES or _WAL_FILES):
        return
    try:
        rows = dbapi_connection.execute("PRAGMA database_list").fetchall()
        main = next((str(r[2]) for r in rows if r[1] == "main"), "")
        if main and main in _SCRATCH_FILES:
            dbapi_connection.execute("PRAGMA synchronous=OFF")
            dbapi_connection.execute("PRAGMA journal_mode=MEMORY")
        elif main and main in _WAL_FILES:  # set in WAL mode by prepare_sqlite: no query that could wait on a lock
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error:  # a busy or unusual file: keep SQLite's defaults
        pass


@contextlib.contextmanager
def scratch_sqlite(path: Path) -> Iterator[None]:
    """Build the SQLite file ``path`` without a sync per commit (a schema's hundred-odd DDL
    commits: MLflow's migrations took 3.4 s instead of 1.8 s on a busy disk), then sync it
    once. Only for a file that is renamed into place when whole and removed otherwise: a
    crash part-way leaves a broken scratch file, never a broken store."""
    watch_engines()
    keys = _names(path)
    _SCRATCH_FILES.update(keys)
    try:
        yield
    finally:
        _SCRATCH_FILES.difference_update(keys)
    if path.exists():
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


def close_engines() -> None:
    """Close the pooled connections of every watched engine. SQLite folds its write-ahead log
    (``-wal``) back into the database file when the last connection closes; a process that never
    closes them leaves a ``.db`` file that holds nothing without its ``-wal`` beside it."""
    # read-only ones first: a read-only connection closing last cannot fold the log
    for engine in sorted(_ENGINES or (), key=lambda e: "mode=ro" not in str(e.url)):
        with contextlib.suppress(Exception):
            engine.dispose()


# ---- SQLite files -----------------------------------------------------------------------------
def prepare_sqlite(path: Path, what: str = "SQLite study database", error: type[TunerError] = StorageError) -> None:
    """Create the folder, and put a new database in WAL mode (concurrent readers, fewer fsyncs);
    this process's engines then commit to it with ``synchronous=NORMAL`` (:func:`watch_engines`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as con:
            if str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                con.execute("PRAGMA journal_mode=WAL")
    except (OSError, sqlite3.Error) as exc:
        raise error(f"Cannot open the {what} {path}: {exc}.") from None
    watch_engines()
    _WAL_FILES.update(_names(path))


def sqlite_writable(path: Path) -> bool:
    """Whether this process can write the SQLite file ``path`` (and its folder: WAL needs both)."""
    folder = path.parent if path.parent.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def _sqlite_read_url(path: Path, timeout: str | None = None) -> str:
    """A read-only URL of ``path``; ``immutable`` where SQLite cannot create the WAL index (read-only
    media); ``timeout``: the busy timeout the user's URL gave (``?timeout=SECONDS``), kept."""
    query = "mode=ro&uri=true" + (f"&timeout={quote(str(timeout))}" if timeout is not None else "")
    if not os.access(path.parent, os.W_OK) and not Path(f"{path}-shm").exists():
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:  # immutable=1 would read the file without its log: old data
            raise StorageError(f"The study database {path} has a write-ahead log beside it ({wal.name}) that SQLite "
                               "cannot read in a read-only folder, and the file alone may lack the latest trials: "
                               "copy both files to a writable folder and read the copy (the first connection there "
                               "folds the log into the file).")
        query += "&immutable=1"
    return f"sqlite:///file:{quote(str(path.resolve()))}?{query}"
