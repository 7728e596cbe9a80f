"""Where a study's MLflow records live: the store it was first tracked in, stored with the study.

A resume, a worker, ``tuner study show`` and ``tuner ui --study`` started elsewhere would
otherwise fall back to ``./mlflow.db`` of their own folder: a new store, a second parent run,
and links to another study's experiment.
"""

from __future__ import annotations

import time
from pathlib import Path

from tuner.errors import ConfigError, TunerError
from tuner.tracking._names import ATTR_TRACKING
from tuner.tracking._store import redact, scheme

__all__ = ["study_tracking_uri", "settled_tracking_uri", "tracking_uri_for", "stored_or_default", "same_store", "check_same_store", "absolute_uri"]


def study_tracking_uri(storage: str, study_name: str) -> str | None:
    """The MLflow store ``study_name`` logs to (password hidden), or None: no such study or
    database, or never tracked."""
    from tuner.study import study_record

    try:
        return study_record(storage, study_name).user_attrs.get(ATTR_TRACKING)
    except TunerError:
        return None


STARTED_WITHIN_S = 30.0
"""How long a worker that found a study the instant it was created waits for its creator to
record where it logs (the MLflow store is stored just after the study, before its first trial)."""


def settled_tracking_uri(storage: str, study_name: str, within: float = STARTED_WITHIN_S) -> str | None:
    """:func:`study_tracking_uri` once the study's creator has started: the store is recorded,
    or a first trial exists (an untracked study), or ``within`` seconds passed. A worker that
    waited for a study read it between its creation and that record, took ``./mlflow.db``, and
    was refused as logging to another store."""
    from tuner.study import study_record

    deadline = time.monotonic() + within
    while True:
        try:
            record = study_record(storage, study_name)
        except TunerError:
            return None
        stored = record.user_attrs.get(ATTR_TRACKING)
        if stored is not None or any(record.counts.values()) or time.monotonic() > deadline:
            return stored
        time.sleep(0.2)


def absolute_uri(uri: str) -> str:
    """``uri`` with a relative SQLite file or local path made absolute (from the current folder),
    so that a process started elsewhere finds the same store."""
    kind = scheme(uri)
    if kind == "sqlite" and uri.lower().startswith("sqlite:///") and not uri[len("sqlite:///"):].startswith(("/", ":")):
        return "sqlite:///" + str(Path.cwd() / uri[len("sqlite:///"):])
    if kind == "" and not Path(uri).is_absolute():
        return str(Path.cwd() / uri)
    return uri


def tracking_uri_for(storage: str | None, study_name: str | None) -> str:
    """The store a command on ``study_name`` uses when none is given: the study's own when it has
    one (and no password was hidden from it), else ``./mlflow.db``."""
    from tuner.study import default_storage_url

    return stored_or_default(study_tracking_uri(storage or default_storage_url(), study_name) if study_name else None)


def stored_or_default(stored: object) -> str:
    """A study's stored ``mlflow_tracking_uri`` when it can be used (a string with no password
    hidden from it), else ``./mlflow.db``."""
    from tuner.tracking._store import default_tracking_uri

    return stored if isinstance(stored, str) and "***" not in stored else default_tracking_uri()


def same_store(a: str, b: str) -> bool:
    """Whether two tracking URIs name one store (SQLite files and local paths by their resolved
    path; anything else by its URI, passwords hidden, without a trailing slash)."""
    return _key(a) == _key(b)


def _key(uri: str) -> str:
    kind = scheme(uri)
    if kind == "sqlite" and uri.lower().startswith("sqlite:///"):
        return "sqlite:" + str(Path(uri[len("sqlite:///"):].split("?")[0]).resolve())
    if kind in ("", "file"):
        return "file:" + str(Path(uri[len("file://"):] if kind == "file" else uri).resolve())
    return redact(uri).rstrip("/")


def check_same_store(stored: str | None, given: str, study_name: str, *, reading: bool = False) -> None:
    """Refuse tracking ``study_name`` in another store than the one it logs to: its runs, parent
    run and registered model would be split between the two. ``reading``: the caller only shows
    the store (``tuner ui --study``), where the other store has none of the study's runs."""
    if stored is None or same_store(stored, given):
        return
    if reading:
        raise ConfigError(f"Study {study_name!r} logs to MLflow at {stored}; {redact(given)} is another store, which "
                          "holds none of its runs. Give that store (--tracking-uri), or leave it out.")
    raise ConfigError(f"Study {study_name!r} logs to MLflow at {stored}; {redact(given)} is another store, which "
                      "would split its runs between the two. Give that store (the 'tracking_uri' parameter), or "
                      "run without tracking.")
