"""MLflow calls outside the study loop: ``tuner predict models:/...`` and ``tuner study sync-mlflow``.

A dead tracking server (a port nothing listens on, or one that accepts the connection and
never answers) is one line within 15 s; a name, alias or version that does not exist lists
what does; reading a model never creates or alters a tracking store; a sync whose model
registration failed does not exit 0. Real processes, a real SQLite MLflow store, real sockets.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tuner.cli import cli

STUDY = "irisx"
LIMIT_S = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tuner(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for k in ("MLFLOW_TRACKING_URI", "TUNER_STORAGE"):
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-trial iris study logged to a SQLite MLflow store (its best model registered), and rows to predict."""
    root = tmp_path_factory.mktemp("tracked")
    storage, tracking = f"sqlite:///{root / 'studies.db'}", f"sqlite:///{root / 'mlflow.db'}"
    proc = tuner("tune", "--dataset", "iris", "--trials", "2", "--epochs", "5", "--study", STUDY,
                 "--storage", storage, "--tracking-uri", tracking, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "rows.csv").write_text("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
                                   "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    return {"root": root, "storage": storage, "tracking": tracking, "rows": root / "rows.csv"}


@pytest.fixture(params=["refused", "silent"])
def dead_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """http://user:secret@127.0.0.1:PORT where nothing listens, or where the kernel accepts and nobody answers."""
    port = _free_port()
    if request.param == "refused":
        yield f"http://user:s3cr3t@127.0.0.1:{port}"
        return
    with socket.socket() as s:  # listening but never accepting: connections complete, requests never answered
        s.bind(("127.0.0.1", port))
        s.listen(64)
        yield f"http://user:s3cr3t@127.0.0.1:{port}"


def assert_fails_fast_in_one_line(args: list[str], cwd: Path) -> str:
    start = time.monotonic()
    try:
        proc = tuner(*args, cwd=cwd, timeout=2 * LIMIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tuner {' '.join(args[:2])} was still waiting after {2 * LIMIT_S:.0f} s")
    elapsed = time.monotonic() - start
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines and lines[-1].startswith("Error: "), proc.stderr[-3000:]
    assert elapsed < LIMIT_S, f"took {elapsed:.1f} s"
    return lines[-1]


def test_predict_from_a_dead_tracking_server_fails_within_seconds(tracked: dict[str, Any], dead_server: str,
                                                                   tmp_path: Path) -> None:
    line = assert_fails_fast_in_one_line(
        ["predict", f"models:/{STUDY}@champion", str(tracked["rows"]), "--tracking-uri", dead_server], tmp_path)
    assert "127.0.0.1" in line and "s3cr3t" not in line and "Cannot reach" in line, line


def test_sync_mlflow_to_a_dead_tracking_server_fails_within_seconds(tracked: dict[str, Any], dead_server: str,
                                                                   tmp_path: Path) -> None:
    line = assert_fails_fast_in_one_line(
        ["study", "sync-mlflow", STUDY, "--storage", tracked["storage"], "--tracking-uri", dead_server], tmp_path)
    assert "127.0.0.1" in line and "s3cr3t" not in line and "Cannot reach" in line, line
    # the advice fits this command (sync-mlflow has no --no-tracking), and the reason is short
    assert "--no-tracking" not in line and "truncated" not in line and len(line) < 300, line


def _predict(uri: str, tracked: dict[str, Any], *extra: str) -> Any:
    return CliRunner().invoke(cli, ["predict", uri, str(tracked["rows"]), *extra])


def _one_line(result: Any) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("uri,expected", [
    ("models:/nosuch@champion", ["no registered model 'nosuch'", STUDY]),
    (f"models:/{STUDY}@best", ["no alias 'best'", "@champion (version 1)", "versions: 1"]),
    (f"models:/{STUDY}/7", ["no version 7", "@champion (version 1)", "versions: 1"]),
    (f"models:/{STUDY}/seven", ["no version seven", "versions: 1"]),
])
def test_a_model_name_alias_or_version_that_does_not_exist_lists_what_does(tracked: dict[str, Any], uri: str,
                                                                           expected: list[str]) -> None:
    assert _predict(f"models:/{STUDY}@champion", tracked, "--tracking-uri", tracked["tracking"]).exit_code == 0
    line = _one_line(_predict(uri, tracked, "--tracking-uri", tracked["tracking"]))
    for text in expected:
        assert text in line, line


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_predict_never_creates_or_alters_a_tracking_store(tracked: dict[str, Any], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # no --tracking-uri, and no mlflow.db in the working directory: say so, create nothing
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    line = _one_line(_predict(f"models:/{STUDY}@champion", tracked))
    assert "no MLflow tracking store" in line and "--tracking-uri" in line, line
    assert not (tmp_path / "mlflow.db").exists()
    # the study database given by mistake: MLflow must not add its tables to it
    studies = Path(tracked["storage"][len("sqlite:///"):])
    before = _tables(studies)
    line = _one_line(_predict(f"models:/{STUDY}@champion", tracked, "--tracking-uri", tracked["storage"]))
    assert "not an MLflow tracking store" in line, line
    assert _tables(studies) == before


def test_a_sync_whose_model_registration_failed_does_not_report_success(tracked: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    # a copy of the study database, synced to a new tracking store whose model folder cannot be written
    with sqlite3.connect(Path(tracked["storage"][len("sqlite:///"):])) as src, \
            sqlite3.connect(tmp_path / "studies.db") as dst:
        src.backup(dst)
    (tmp_path / "mlartifacts" / STUDY).mkdir(parents=True)
    (tmp_path / "mlartifacts" / STUDY / "models").write_text("a file where MLflow wants a folder")
    proc = tuner("study", "sync-mlflow", STUDY, "--storage", f"sqlite:///{tmp_path / 'studies.db'}",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, (proc.stdout, proc.stderr[-3000:])
    assert lines[-1].startswith("Error: ") and "registering the best model" in lines[-1], lines[-1]
    assert "registered the best model" not in proc.stdout


def test_a_damaged_registered_model_is_one_line_naming_the_model(tracked: dict[str, Any]) -> None:
    weights = sorted((tracked["root"] / "mlartifacts").rglob("logistic_model/weights.safetensors"))
    assert weights, "the study registered no model"
    saved = {p: p.read_bytes() for p in weights}
    try:
        for p in weights:
            p.write_bytes(saved[p][:64])  # truncated in the artifact store
        line = _one_line(_predict(f"models:/{STUDY}@champion", tracked, "--tracking-uri", tracked["tracking"]))
        assert f"models:/{STUDY}@champion" in line and "weights.safetensors" in line, line
        assert "tuner-model-" not in line, line  # not the temporary folder it was downloaded to
    finally:
        for p, blob in saved.items():
            p.write_bytes(blob)


def test_a_trial_run_without_a_model_points_to_the_champion(tracked: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracked["tracking"])
    exp = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`tuner.role` = 'trial'")
    outcomes = {r.info.run_id: _predict(f"runs:/{r.info.run_id}/model", tracked, "--tracking-uri", tracked["tracking"])
                for r in runs}
    assert sorted(o.exit_code for o in outcomes.values()) == [0, 1]  # the best trial's run holds the model
    line = _one_line(next(o for o in outcomes.values() if o.exit_code))
    assert "has no model" in line and f"models:/{STUDY}@champion" in line, line


def test_the_probe_counts_any_http_answer_as_reachable_and_never_prints_the_password() -> None:
    """A server behind a login (401) or a proxy (404, a redirect) is reachable: MLflow's client
    deals with credentials afterwards; only silence or a refusal is an error."""
    import http.server
    import threading

    from tuner.errors import TrackingError
    from tuner.tracking import probe_tracking_server

    class Answer(http.server.BaseHTTPRequestHandler):
        status = 401

        def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
            self.send_response(self.status)
            if self.status == 302:
                self.send_header("Location", "/login")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for status in (401, 404, 302, 200):
            Answer.status = status
            probe_tracking_server(f"http://user:s3cr3t@127.0.0.1:{server.server_port}/prefix/")
    finally:
        server.shutdown()
    probe_tracking_server("sqlite:///nowhere/mlflow.db")  # not a server: left to the store checks
    with pytest.raises(TrackingError, match="connection refused") as err:
        probe_tracking_server(f"http://user:s3cr3t@127.0.0.1:{_free_port()}")
    assert "s3cr3t" not in str(err.value) and "user:***@" in str(err.value)


@pytest.mark.parametrize("store", ["file", "folder"])
def test_a_file_store_is_refused_in_one_full_line(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow 3 refuses file stores; its reason was cut with '...(truncated)' before its remedy."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "mlruns").as_uri() if store == "file" else str(tmp_path / "mlruns")
    result = CliRunner().invoke(cli, ["tune", "--dataset", "iris", "--trials", "1", "--penalty", "l2", "--optimizer",
                                      "lbfgs", "--epochs", "5", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                                      "--tracking-uri", uri])
    line = _one_line(result)
    assert line == (f"Error: The MLflow tracking store {uri} is a file store, which MLflow no longer writes; use "
                    "sqlite:///mlflow.db (the default) or an http(s):// tracking server (--tracking-uri / "
                    "MLFLOW_TRACKING_URI)."), line


def test_a_hosted_workspace_uri_is_not_called_a_file_store_or_a_database_url(tmp_path: Path) -> None:
    """``databricks`` names a hosted workspace to MLflow, not a folder: the error is MLflow's own
    reason for not reaching it (no credentials here), not "a file store" or "not a database URL"."""
    study_db = tmp_path / "s.db"
    result = CliRunner().invoke(cli, ["tune", "--dataset", "iris", "--trials", "1", "--penalty", "l2", "--optimizer",
                                      "lbfgs", "--epochs", "5", "--storage", f"sqlite:///{study_db}",
                                      "--tracking-uri", "databricks"])
    line = _one_line(result)
    assert line.startswith("Error: Cannot open the MLflow tracking store databricks: "), line
    assert "Databricks" in line and "file store" not in line and "database URL" not in line, line
    assert not (tmp_path / "databricks").exists() and not (tmp_path / "mlflow.db").exists()
