"""The MLflow store template's place in the cache, and a first run's template built in a child
process while the study reads its data.

A new SQLite tracking store is a copy of a migrated template kept in the user's cache
(:func:`tuner.tracking._store.schema_template`). The first run of an MLflow release builds that
template: MLflow's migrations, ~1-2 s of one core, which the study otherwise waits for when it
opens the store, after its imports and its reading and preparing of the data, all on one core.
:func:`prebuild_schema_template` starts the build at once in a child process, on another core;
``schema_template`` then waits for the child and copies what it built. A child that fails or
builds nothing leaves ``schema_template`` to build the template itself, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["SCHEMA_CACHE_ENV", "is_template", "prebuild_schema_template", "template_path", "wait_for_prebuild"]

SCHEMA_CACHE_ENV = "TUNER_CACHE_DIR"

PREBUILD_WAIT_S = 120.0
"""How long :func:`wait_for_prebuild` waits for the child before building the template itself."""

_CHILD_CODE = "from tuner.tracking._store import schema_template; schema_template()"

_children: list[tuple[subprocess.Popen[bytes], Path]] = []


def template_path(mlflow_version: str) -> Path:
    """Where :func:`schema_template` keeps the template of this MLflow release."""
    base = os.environ.get(SCHEMA_CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "logreg-tuner")
    return Path(base) / f"mlflow-{mlflow_version}-sqlite-schema.db"


def is_template(path: Path) -> bool:
    """Whether ``path`` is a migrated MLflow store with no experiment (a usable template)."""
    import sqlite3

    if not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"experiments", "registered_models", "alembic_version"} <= tables:
                return False
            empty = con.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == 0
            versioned = con.execute("SELECT COUNT(*) FROM alembic_version").fetchone()[0] == 1
            return bool(empty and versioned)
    except sqlite3.Error:
        return False


def _installed_mlflow_version() -> str | None:
    """MLflow's version from its installed metadata, without importing it (~1 s); None when
    neither the full nor the skinny distribution is installed."""
    from importlib import metadata

    for dist in ("mlflow", "mlflow-skinny"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def prebuild_schema_template(tracking_uri: str | None) -> bool:
    """Start building this MLflow release's store template in a child process when
    ``tracking_uri`` is a SQLite store still to be created and the cache has no template yet
    (at most one child a process). Returns whether a child was started."""
    if tracking_uri is None or _children or tracking_uri.split(":", 1)[0].lower() != "sqlite":
        return False
    from tuner.study import sqlite_path

    try:
        db = sqlite_path(tracking_uri)
    except Exception:  # a malformed URL: opening the store says what is wrong with it
        return False
    if db is None or (db.exists() and db.stat().st_size > 0):  # in memory, or a store to open, not create
        return False
    version = _installed_mlflow_version()
    if version is None:
        return False
    template = template_path(version)
    if is_template(template):
        return False
    try:
        child = subprocess.Popen([sys.executable, "-c", _CHILD_CODE], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:  # no child: schema_template builds it when the store is opened
        return False
    if not _children:
        atexit.register(_stop_children)
    _children.append((child, template))
    return True


def wait_for_prebuild(timeout: float = PREBUILD_WAIT_S) -> None:
    """Wait until the child started by :func:`prebuild_schema_template` ended; one still running
    after ``timeout`` seconds is stopped (the caller then builds the template itself)."""
    while _children:
        child, template = _children[0]
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(child, template)
        _children.pop(0)


def _stop(child: subprocess.Popen[bytes], template: Path) -> None:
    """End the child and remove its unfinished file (``_beside`` names it after the child's pid)."""
    if child.poll() is None:
        child.kill()
        child.wait()
    for left in template.parent.glob(f".{template.name}.{child.pid}-*.new*"):
        left.unlink(missing_ok=True)


def _stop_children() -> None:
    """At exit: a child still building (the process ended before it opened its store) is stopped,
    so that nothing of this process runs on after it."""
    while _children:
        _stop(*_children.pop())
