"""A new MLflow SQLite store is a copy of an empty, migrated template kept in the user's cache
(MLflow's migrations take ~2 s a store): the copy opens as a store MLflow made itself would,
with its own Default experiment, and a damaged template is rebuilt, never copied."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tuner.tracking._prebuild import SCHEMA_CACHE_ENV
from tuner.tracking._store import explicit_client, open_store, schema_template


def _open(db: Path):
    uri = f"sqlite:///{db}"
    made = {}
    open_store(uri, lambda: made.setdefault("client", explicit_client(uri)))
    return made["client"]


def test_new_stores_are_copies_of_one_template_and_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    first = _open(tmp_path / "a" / "mlflow.db")
    template = schema_template()
    assert template is not None and template.parent == tmp_path / "cache"
    with sqlite3.connect(template) as con:
        assert con.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == 0
    second = _open(tmp_path / "b" / "mlflow.db")
    for client in (first, second):
        (default,) = client.search_experiments()
        assert default.name == "Default" and default.artifact_location == str(tmp_path / "mlruns" / "0")
    with second._tracking_client.store.engine.connect() as con:  # MLflow's engine (its private attribute)
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: no fsync per commit
    with sqlite3.connect(template) as con:  # built without syncs, but left in SQLite's default mode
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    exp = second.create_experiment("x")
    run = second.create_run(exp)
    second.log_metric(run.info.run_id, "m", 1.0)
    assert second.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert first.search_experiments(filter_string="name = 'x'") == []  # separate files


def test_a_damaged_template_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(tmp_path / "cache"))
    template = schema_template()
    assert template is not None
    template.write_bytes(b"not a database")
    rebuilt = schema_template()
    assert rebuilt == template
    with sqlite3.connect(rebuilt) as con:
        assert con.execute("SELECT COUNT(*) FROM alembic_version").fetchone()[0] == 1
    client = _open(tmp_path / "c" / "mlflow.db")
    assert [e.name for e in client.search_experiments()] == ["Default"]


def test_the_end_of_a_study_uses_the_data_the_study_already_read(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The plots and the registered model's input example come from the study's own split: reading
    the files again cost a9a ~1.5 s at the end of every study."""
    import tuner
    import tuner.tracking._observer as observer

    def read_again(spec: object) -> None:
        raise AssertionError("the study's data was read again")

    monkeypatch.setattr(observer, "_reload_data", read_again)
    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(tmp_path / "cache"))
    result = tuner.tune(dataset="breast_cancer", trials=3, seed=1, tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    assert result.model_uri is not None and result.registered_model_version is not None


@pytest.fixture
def no_children(monkeypatch: pytest.MonkeyPatch):
    """The prebuild module's children of this test alone (stopped at its end)."""
    from tuner.tracking import _prebuild

    children: list = []
    monkeypatch.setattr(_prebuild, "_children", children)
    yield children
    while children:
        _prebuild._stop(*children.pop())


def test_a_first_runs_template_is_built_by_a_child_process_while_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_children: list) -> None:
    """The child builds the template; the run's own process, which waits for it when it opens its
    store, never runs MLflow's migrations itself (they are refused here), and its store works."""
    from tuner.tracking import _store
    from tuner.tracking._prebuild import prebuild_schema_template

    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(tmp_path / "cache"))
    uri = f"sqlite:///{tmp_path / 'run' / 'mlflow.db'}"
    assert prebuild_schema_template(uri)
    (child, _), = no_children
    assert not prebuild_schema_template(uri)  # one child a process

    def refused(path: Path, **kwargs: object) -> None:
        raise AssertionError("this process ran MLflow's migrations itself")

    monkeypatch.setattr(_store, "_build_schema", refused)
    template = schema_template()
    assert template is not None and template.parent == tmp_path / "cache"
    assert child.returncode == 0 and not no_children
    client = _open(tmp_path / "run" / "mlflow.db")
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [template.name]  # nothing half-built left


def test_no_child_is_started_where_no_template_is_to_be_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              no_children: list) -> None:
    from tuner.tracking._prebuild import prebuild_schema_template

    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(tmp_path / "cache"))
    existing = tmp_path / "old.db"
    existing.write_bytes(b"x")  # a store that exists: opened, not created
    for uri in (None, "http://127.0.0.1:5000", f"file://{tmp_path / 'mlruns'}", f"sqlite:///{existing}", "sqlite://",
                "sqlite:///:memory:", f"postgresql://u@127.0.0.1/{tmp_path.name}"):
        assert not prebuild_schema_template(uri), uri
    assert schema_template() is not None  # the template is there now
    assert not prebuild_schema_template(f"sqlite:///{tmp_path / 'new.db'}")
    assert not no_children


def test_a_child_still_building_when_the_process_ends_is_stopped_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_children: list) -> None:
    from tuner.tracking._prebuild import _stop_children, prebuild_schema_template

    monkeypatch.setenv(SCHEMA_CACHE_ENV, str(tmp_path / "cache"))
    assert prebuild_schema_template(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (child, _), = no_children
    cache = tmp_path / "cache"
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline and not list(cache.glob(".*.new*")):
        time.sleep(0.005)  # until the child has begun writing its file
    assert child.poll() is None, "the child ended before it began writing: nothing to stop"
    _stop_children()  # what atexit runs
    assert child.poll() is not None and not no_children
    assert list(cache.iterdir()) == []  # its unfinished file removed, no template
