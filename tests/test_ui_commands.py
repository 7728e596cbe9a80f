"""`tuner ui` and `tuner dashboard`: each starts its server on a free loopback port, answers HTTP
200 there, prints its URL, and stops its server when stopped itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _mlflow_fixtures import free_port, stop_process
from click.testing import CliRunner

from tuner.cli import cli

STUDY = "ui-study"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-trial study logged to a SQLite MLflow store in a fresh folder."""
    import tuner

    root = tmp_path_factory.mktemp("ui")
    storage, tracking = f"sqlite:///{root / 'studies.db'}", f"sqlite:///{root / 'mlflow.db'}"
    result = tuner.tune(dataset="breast_cancer", study_name=STUDY, storage=storage, tracking_uri=tracking, trials=2,
                        penalty="l2", optimizer="lbfgs", epochs=20)
    assert result.experiment_id is not None
    return {"root": root, "storage": storage, "tracking": tracking, "experiment_id": result.experiment_id}


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tuner.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _serve_and_stop(args: list[str], url: str, cwd: Path) -> str:
    """Start the command, read its first line (printed once its server answers), check that ``url``
    answers 200, SIGTERM the command (not its server): return its output, after checking that
    its server went with it."""
    proc = _start(args, cwd)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the command waits for its server (or exits) before printing
        assert first, f"{args[0]} exited with {proc.wait()}: {proc.stderr.read() if proc.stderr else ''}"
        assert _answers(url)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        out, err = proc.stdout.read(), proc.stderr.read() if proc.stderr else ""  # not communicate(): it
    finally:  # reads the pipe itself, and readline() may have buffered the next lines already
        stop_process(proc)
    assert proc.returncode == 0, err
    assert not _answers(url), f"{args[0]} left its server running at {url}"
    return first + out


def test_tuner_ui_serves_the_store_and_prints_the_study_link(tracked: dict[str, Any]) -> None:
    port = free_port()
    out = _serve_and_stop(["ui", "--port", str(port), "--tracking-uri", tracked["tracking"], "--study", STUDY,
                           "--storage", tracked["storage"]], f"http://127.0.0.1:{port}/health", tracked["root"])
    assert f"MLflow UI: http://127.0.0.1:{port}" in out
    study_line = next(line for line in out.splitlines() if line.startswith(f"Study {STUDY}: "))
    assert study_line.split(": ", 1)[1].startswith(f"http://127.0.0.1:{port}/#/experiments/{tracked['experiment_id']}/")



def test_a_sigterm_right_after_the_first_line_still_leaves_the_study_link(tracked: dict[str, Any]) -> None:
    """CI lost the study line once: `ui` printed its lines one at a time, and the SIGTERM sent on
    reading the first came before the second. Here every print is followed by a pause, so the
    SIGTERM always lands right after the first print."""
    port = free_port()
    code = ("import time, click\n"
            "echo = click.echo\n"
            "def slow_echo(*args, **kwargs):\n"
            "    echo(*args, **kwargs)\n"
            "    time.sleep(3)\n"
            "click.echo = slow_echo\n"
            "import sys\n"
            "from tuner.cli import main\n"
            f"sys.argv = ['tuner', 'ui', '--port', '{port}', '--tracking-uri', {tracked['tracking']!r}, "
            f"'--study', {STUDY!r}, '--storage', {tracked['storage']!r}]\n"
            "main()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tracked["root"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("MLflow UI: "), proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        out = first + proc.stdout.read()
    finally:
        stop_process(proc)
    assert proc.returncode == 0
    link = f"Study {STUDY}: http://127.0.0.1:{port}/#/experiments/"
    assert any(line.startswith(link) for line in out.splitlines()), out
    assert not _answers(f"http://127.0.0.1:{port}/health")

def test_ui_study_with_another_store_says_that_store_has_none_of_its_runs(tracked: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    """`ui` only reads: it said the other store 'would split its runs between the two' and offered
    to 'run without tracking'."""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = CliRunner().invoke(cli, ["ui", "--study", STUDY, "--storage", tracked["storage"], "--tracking-uri", other])
    assert result.exit_code == 1, result.output
    assert "is another store, which holds none of its runs. Give that store (--tracking-uri), or leave it out." \
        in result.output and "split" not in result.output
    assert not (tmp_path / "other.db").exists()


def test_tuner_dashboard_serves_the_study_storage(tracked: dict[str, Any]) -> None:
    port = free_port()
    out = _serve_and_stop(["dashboard", "--port", str(port), "--storage", tracked["storage"]],
                          f"http://127.0.0.1:{port}/", tracked["root"])
    assert f"optuna-dashboard: http://127.0.0.1:{port}" in out
    assert "studies.db" in out


def test_dashboard_missing_names_the_extra_to_install(tmp_path: Path) -> None:
    """optuna-dashboard not importable: one line naming the extra, exit 1, nothing started."""
    code = ("import sys\n"
            "sys.modules['optuna_dashboard'] = None  # what Python does for a module that cannot be imported\n"
            "from tuner.cli import main\n"
            "sys.argv = ['tuner', 'dashboard', '--storage', 'sqlite:///x.db']\n"
            "main()\n")
    from tuner.study import open_storage

    open_storage(f"sqlite:///{tmp_path / 'x.db'}", heartbeat=False)  # a study database, with no study yet
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: optuna-dashboard is not installed: pip install 'logreg-tuner[dashboard]'"


def test_dashboard_on_a_mistyped_storage_path_says_so_and_creates_nothing(tmp_path: Path) -> None:
    """It left a 0-byte file there and printed the dashboard's traceback lines."""
    result = CliRunner().invoke(cli, ["dashboard", "--storage", f"sqlite:///{tmp_path / 'typo.db'}"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: There is no study database at {tmp_path / 'typo.db'}; check --storage / TUNER_STORAGE (a study is "
        "created by `tuner tune`)."]
    assert list(tmp_path.iterdir()) == []


def test_ui_without_a_store_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ui", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 1
    assert "No MLflow store at" in result.output and "run `tuner tune` first" in result.output
    assert not (tmp_path / "none.db").exists()


def test_a_study_database_or_another_apps_is_never_taken_for_an_mlflow_store(tmp_path: Path) -> None:
    """`tune --tracking-uri` at a study database made MLflow add its tables to it ('Creating initial
    MLflow database tables'), then failed on Optuna's alembic revision; `ui` printed a server
    traceback. Both now refuse in one line and write nothing."""
    import sqlite3

    studies = tmp_path / "optuna.db"
    ok = CliRunner().invoke(cli, ["tune", "--dataset", "iris", "--trials", "1", "--study", "s",
                                  "--storage", f"sqlite:///{studies}", "--no-tracking"])
    assert ok.exit_code == 0, ok.output
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE orders (id INTEGER)")

    def tables(db: Path) -> set[str]:
        with sqlite3.connect(db) as con:
            return {r[0] for r in con.execute("SELECT name FROM sqlite_master")}

    before = {db: tables(db) for db in (studies, other)}
    for db, words in ((studies, "is a study database (Optuna's), not an MLflow tracking store"),
                      (other, "is not an MLflow tracking store: it holds other tables (orders)")):
        result = CliRunner().invoke(cli, ["tune", "--dataset", "iris", "--trials", "1", "--study", "t",
                                          "--storage", f"sqlite:///{tmp_path / 'new.db'}",
                                          "--tracking-uri", f"sqlite:///{db}"])
        assert result.exit_code == 1 and words in result.output, result.output
        served = CliRunner().invoke(cli, ["ui", "--tracking-uri", f"sqlite:///{db}"])
        assert served.exit_code == 1 and "is not an MLflow tracking store" in served.output, served.output
        assert len(served.output.strip().splitlines()) == 1
        assert tables(db) == before[db]


def test_ui_on_a_tracking_server_prints_its_links(tracked: dict[str, Any], tmp_path: Path) -> None:
    """A study tracked on a server: its links there, nothing to start, with or without --tracking-uri
    (the study knows its store); another store is refused (its experiment ids are another's)."""
    import shutil

    import optuna

    source = Path(tracked["storage"][len("sqlite:///"):])
    for part in source.parent.glob(source.name + "*"):  # the database with its WAL files
        shutil.copy(part, tmp_path / part.name)
    storage = f"sqlite:///{tmp_path / source.name}"
    server = "http://mlflow.example:5000"
    optuna.load_study(study_name=STUDY, storage=storage).set_user_attr("mlflow_tracking_uri", server)
    for given in (["--tracking-uri", server], []):
        result = CliRunner().invoke(cli, ["ui", *given, "--study", STUDY, "--storage", storage])
        assert result.exit_code == 0, result.output
        assert f"Study {STUDY}: {server}/#/experiments/{tracked['experiment_id']}/" in result.output
    result = CliRunner().invoke(cli, ["ui", "--tracking-uri", tracked["tracking"], "--study", STUDY,
                                      "--storage", storage])
    assert result.exit_code == 1 and f"Study {STUDY!r} logs to MLflow at {server}" in result.output, result.output


@pytest.mark.parametrize("command", ["ui", "dashboard"])
def test_a_busy_port_is_one_line_and_no_link(tracked: dict[str, Any], command: str) -> None:
    """Another server on the port answered the health check: the links printed were to it, then
    the new server failed to bind."""
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        store = ["--tracking-uri", tracked["tracking"]] if command == "ui" else ["--storage", tracked["storage"]]
        result = CliRunner().invoke(cli, [command, "--port", str(port), *store])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: Port {port} on 127.0.0.1 is in use (Address already in use): another server runs there; stop it "
        f"or give another --port for {'mlflow server' if command == 'ui' else 'optuna-dashboard'}."]
