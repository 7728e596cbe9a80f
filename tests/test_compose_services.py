"""The compose deployment, run natively: PostgreSQL with password authentication, ``mlflow
server`` with MLflow's basic-auth app, one study service and a worker, each started with the
command and environment that docker-compose.yml gives it (``.env`` = ``.env.example``); only
host names, ports and container paths are mapped to this machine.

This is what ``docker compose up --scale worker=1`` does, minus the containers.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _compose import ROOT, compose, example_env
from _mlflow_fixtures import free_port, mlflow_exe, stop_process
from _postgres import postgres_server
from mlflow import MlflowClient
from sqlalchemy.engine import make_url

from tuner.cli._serve import wait_http

pytestmark = pytest.mark.timeout(600)
N_TRIALS = 6


def _request(url: str, host: str | None = None, auth: tuple[str, str] | None = None) -> int:
    req = urllib.request.Request(url, data=json.dumps({"max_results": 1}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if host:
        req.add_header("Host", host)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Deployment:
    """The compose services' settings mapped onto local processes."""

    def __init__(self, root: Path, pg_port: int) -> None:
        self.root = root
        self.env_file = example_env()
        self.config = compose(self.env_file)
        self.pg_port = pg_port
        self.mlflow_port = free_port()
        self.mlflow_url = f"http://127.0.0.1:{self.mlflow_port}"
        self.data = root / "data"
        self.data.mkdir()
        self.paths = {"/mlartifacts": root / "mlartifacts", "/mlauth": root / "mlauth", "/data": self.data}
        for p in self.paths.values():
            p.mkdir(exist_ok=True)
        ini = (ROOT / "docker" / "mlflow-auth.ini").read_text().replace("/mlauth", str(self.paths["/mlauth"]))
        self.paths["/app/docker/mlflow-auth.ini"] = root / "mlflow-auth.ini"
        self.paths["/app/docker/mlflow-auth.ini"].write_text(ini)

    def _map(self, value: str) -> str:
        value = value.replace("@db:5432/", f"@127.0.0.1:{self.pg_port}/")
        value = value.replace("http://mlflow:5000", self.mlflow_url)
        for container_path, local in self.paths.items():
            if value == container_path or value.startswith(container_path + "/") or value.endswith("=" + container_path):
                value = value.replace(container_path, str(local))
        return value

    def env(self, service: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TUNER_", "PG"))}
        env.update({k: self._map(str(v)) for k, v in self.config["services"][service]["environment"].items()})
        env.update(extra)
        return env

    def command(self, service: str) -> list[str]:
        svc = self.config["services"][service]
        words = list(svc.get("entrypoint") or ["tuner"]) + list(svc["command"])
        words = [self._map(w) for w in words]
        exe = mlflow_exe() if words[0] == "mlflow" else str(Path(sys.executable).with_name("tuner"))
        return [exe] + words[1:]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, subprocess.Popen]]:
    env_file = example_env()
    with postgres_server(("studies", "mlflow"), user=env_file["POSTGRES_USER"], password=env_file["POSTGRES_PASSWORD"],
                         host_auth="scram-sha-256") as urls:
        dep = Deployment(tmp_path_factory.mktemp("compose"), make_url(urls["studies"]).port)
        cmd = dep.command("mlflow")
        cmd = [w for w in cmd if not w.startswith(("--host=", "--port="))]
        cmd += ["--host=127.0.0.1", f"--port={dep.mlflow_port}", "--workers=1"]
        log = dep.root / "mlflow.log"
        env = dep.env("mlflow", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env["MLFLOW_SERVER_ALLOWED_HOSTS"] += f",127.0.0.1:{dep.mlflow_port}"
        with log.open("w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=dep.root,
                                    start_new_session=True)
        try:
            wait_http(f"{dep.mlflow_url}/health", proc, log, "the compose MLflow server", 240)
            yield dep, proc
        finally:
            stop_process(proc)


def test_the_tracking_server_demands_the_env_file_credentials(deployment: Any) -> None:
    dep, _ = deployment
    api = f"{dep.mlflow_url}/api/2.0/mlflow/experiments/search"
    user, password = dep.env_file["MLFLOW_TRACKING_USERNAME"], dep.env_file["MLFLOW_TRACKING_PASSWORD"]
    assert _request(api) == 401
    assert _request(api, auth=(user, "wrong-password")) == 401
    assert _request(api, auth=(user, password)) == 200
    # the workers call it by its service name; MLflow 3 refuses Host headers it does not know
    assert _request(api, host="mlflow:5000", auth=(user, password)) == 200
    assert _request(api, host="attacker.example:5000", auth=(user, password)) == 403


def test_the_study_service_and_a_worker_tune_one_study(deployment: Any) -> None:
    dep, _ = deployment
    study_cmd = dep.command("study")
    study_cmd[study_cmd.index("--trials") + 1] = str(N_TRIALS)
    study_cmd += ["--epochs", "20"]
    procs = [subprocess.Popen(study_cmd, env=dep.env("study"), cwd=dep.root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True),
             subprocess.Popen(dep.command("worker"), env=dep.env("worker"), cwd=dep.root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)]
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, f"{p.args[:3]} exited {p.returncode}:\n{out}\n{err[-3000:]}"
        for secret in (dep.env_file["POSTGRES_PASSWORD"], dep.env_file["MLFLOW_TRACKING_PASSWORD"]):
            assert secret not in out + err
    import optuna
    from optuna.trial import TrialState

    storage = dep.env("study")["TUNER_STORAGE"]
    os.environ["PGPASSWORD"] = dep.env_file["POSTGRES_PASSWORD"]
    try:
        study = optuna.load_study(study_name=dep.env("worker")["TUNER_STUDY"], storage=storage)
        finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    finally:
        del os.environ["PGPASSWORD"]
    assert len(finished) == N_TRIALS
    env = dep.env("study")
    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
    try:
        client = MlflowClient(dep.mlflow_url)
        exp = client.get_experiment_by_name(dep.env("worker")["TUNER_STUDY"])
        runs = client.search_runs([exp.experiment_id], max_results=100)
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k, None)
    trial_runs = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    assert len({r.data.tags.get("tuner.trial") for r in trial_runs}) >= N_TRIALS
    for r in runs:
        for secret in (dep.env_file["POSTGRES_PASSWORD"], dep.env_file["MLFLOW_TRACKING_PASSWORD"]):
            assert secret not in json.dumps({**r.data.tags, **r.data.params})


def test_a_client_without_the_credentials_gets_one_line(deployment: Any) -> None:
    dep, _ = deployment
    env = dep.env("study")
    env.pop("MLFLOW_TRACKING_PASSWORD")
    res = subprocess.run([str(Path(sys.executable).with_name("tuner")), "tune", "--dataset", "iris", "--study",
                          "no-credentials", "--trials", "1"], env=env, cwd=dep.root, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "401" in res.stderr or "credentials" in res.stderr.lower(), res.stderr


def test_the_init_script_creates_the_mlflow_database_for_the_configured_user() -> None:
    """docker/initdb.sql said OWNER tuner while .env sets POSTGRES_USER: with any other user the
    image's init stopped on 'role "tuner" does not exist', and `docker compose up` with it."""
    from _postgres import _bin_dir

    with postgres_server(databases=("studies",), user="reviewer") as urls:
        port = str(make_url(urls["studies"]).port)
        psql = [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        run = subprocess.run(psql + ["-d", "studies", "-f", str(ROOT / "docker" / "initdb.sql")], capture_output=True,
                             text=True, env={**os.environ, "POSTGRES_USER": "reviewer"}, timeout=60)
        assert run.returncode == 0, run.stderr
        owner = subprocess.run(psql + ["-d", "studies", "-tAc", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                                              "WHERE datname = 'mlflow'"],
                               capture_output=True, text=True, timeout=60)
        assert owner.stdout.strip() == "reviewer", (owner.stdout, owner.stderr)
