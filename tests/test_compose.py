"""docker-compose.yml is real: services, images, commands and environment match the code, and
it keeps its security promises (authentication, secrets only from .env, loopback ports, pinned
images, non-root containers, workers that find the data).

There is no Docker engine here, so the same services run natively in
``test_compose_services.py``; this module checks the file itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from _compose import ROOT, MissingVariable, compose, example_env, raw_compose
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from tuner.cli import cli

TUNER_SERVICES = ("mlflow", "study", "worker")
SECRETS = ("POSTGRES_PASSWORD", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")
# Environment variables the services set that libraries read rather than our CLI options:
# libpq (psycopg) reads PGPASSWORD, MLflow's client reads MLFLOW_TRACKING_USERNAME/PASSWORD.
LIBRARY_ENV = {"PGPASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_services_and_pinned_images() -> None:
    c = compose()
    assert set(c["services"]) == {"db", "mlflow", "study", "worker"}
    assert re.fullmatch(r"postgres:\d+\.\d+(-[a-z0-9]+)?", c["services"]["db"]["image"]), c["services"]["db"]["image"]
    for name in TUNER_SERVICES:
        service = c["services"][name]
        assert service["build"] == "."
        assert service["image"] == f"logreg-tuner:{_version()}", "one pinned tag for the image all three share"
    base = re.search(r"^FROM\s+(\S+)", _dockerfile(), re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+", base), f"base image {base} is not pinned to a release"
    assert re.search(r'pip install "torch==\d+\.\d+\.\d+"', _dockerfile()), "torch is not pinned in the Dockerfile"
    assert ".[postgres,server]" in _dockerfile(), "the image needs the PostgreSQL driver and MLflow's auth app"
    for volume in c["services"]["db"]["volumes"]:
        src = volume.split(":")[0]
        if src.startswith("./"):
            assert (ROOT / src).is_file(), src


def test_no_password_in_the_compose_file_or_on_a_command_line() -> None:
    env = example_env()
    secrets = [env[k] for k in SECRETS]
    assert all(len(s) >= 8 for s in secrets)
    text = (ROOT / "docker-compose.yml").read_text()
    for path in [ROOT / "docker-compose.yml", ROOT / "Dockerfile", *sorted((ROOT / "docker").iterdir())]:
        body = path.read_text()
        for secret in secrets:
            assert secret not in body, f"{path.name} holds a password"
    for setting in ("PASSWORD:", "SECRET_KEY:"):
        assert setting not in re.sub(r"\w*(PASSWORD|SECRET_KEY): \$\{\w+:\?[^}]*\}", "", text), \
            "every secret setting must be a ${VAR:?...} reference to .env"
    c = compose()
    for name, service in c["services"].items():
        words = list(service.get("command", [])) + list(service.get("entrypoint", []))
        for word in words:
            for secret in secrets:
                assert secret not in word, f"{name}'s command line shows a password"
        for key, value in service.get("environment", {}).items():
            if "://" in str(value) and str(value).split("://")[0].startswith("postgresql"):
                assert make_url(value).password is None, f"{name}.{key} carries a password in its URL"


def test_a_missing_password_stops_compose_instead_of_running_without_one() -> None:
    env = {k: v for k, v in example_env().items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        compose(env)


def test_mlflow_server_requires_authentication() -> None:
    c = compose()
    mlflow = c["services"]["mlflow"]
    assert mlflow["entrypoint"] == ["mlflow"] and mlflow["command"][0] == "server"
    assert "--app-name=basic-auth" in mlflow["command"]
    env = mlflow["environment"]
    ini = env["MLFLOW_AUTH_CONFIG_PATH"]
    assert ini == "/app/docker/mlflow-auth.ini" and "COPY docker/mlflow-auth.ini /app/docker/mlflow-auth.ini" in _dockerfile()
    config = (ROOT / "docker" / "mlflow-auth.ini").read_text()
    assert "admin_password" not in config and "database_uri = sqlite:////mlauth/" in config
    assert "/mlauth" in [v.split(":")[1] for v in mlflow["volumes"]], "the users database must live on a volume"
    # the admin is created from .env, and the clients log in with the same account
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == example_env()["MLFLOW_TRACKING_USERNAME"]
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == example_env()["MLFLOW_TRACKING_PASSWORD"]
    for name in ("study", "worker"):
        senv = c["services"][name]["environment"]
        assert senv["MLFLOW_TRACKING_USERNAME"] == env["MLFLOW_AUTH_ADMIN_USERNAME"]
        assert senv["MLFLOW_TRACKING_PASSWORD"] == env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    # MLflow 3 answers 403 to a Host header it does not know: the service name must be allowed
    assert "mlflow:5000" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")


def test_ports_are_published_on_loopback_only() -> None:
    c = compose()
    published = {name: s.get("ports", []) for name, s in c["services"].items()}
    assert published["mlflow"], "the MLflow UI is published for the reviewer"
    assert not published["db"] and not published["study"] and not published["worker"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_containers_run_as_non_root_users() -> None:
    users = re.findall(r"^USER\s+(\S+)", _dockerfile(), re.M)
    assert users and users[-1] not in ("root", "0"), "the tuner image must end as a non-root user"
    c = compose()
    assert c["services"]["db"]["user"] == "postgres"
    for name in TUNER_SERVICES:
        assert c["services"][name].get("user") in (None, users[-1]), f"{name} overrides the image's non-root user"


def test_study_and_workers_share_one_read_only_data_folder() -> None:
    c = compose()
    for name in ("study", "worker"):
        service = c["services"][name]
        mounts = [v for v in service["volumes"] if isinstance(v, dict) and v["target"] == "/data"]
        assert len(mounts) == 1 and mounts[0]["read_only"] is True, f"{name} must mount the data read-only at /data"
        assert mounts[0]["source"] == example_env()["DATA_DIR"]
        assert service["environment"]["TUNER_DATA_ROOT"] == "/data"
    sources = "\n".join(p.read_text() for p in (ROOT / "tuner").rglob("*.py"))
    assert "TUNER_DATA_ROOT" in sources, "the code must resolve study data paths against TUNER_DATA_ROOT"


def test_environment_names_are_the_ones_the_code_reads() -> None:
    cli_source = "\n".join(p.read_text() for p in (ROOT / "tuner").rglob("*.py"))
    c = compose()
    for name in ("study", "worker"):
        env = c["services"][name]["environment"]
        for var in env:
            if var in LIBRARY_ENV:
                continue
            assert f'envvar="{var}"' in cli_source or f'"{var}"' in cli_source, \
                f"{name} sets {var}, which the code does not read"
        url = make_url(env["TUNER_STORAGE"])
        assert url.drivername.startswith("postgresql") and url.host == "db"
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert c["services"]["worker"]["environment"]["TUNER_STUDY"] in c["services"]["study"]["command"]


def test_the_workers_join_the_study_named_in_env() -> None:
    """The workers' study was written into the file: a study submitted under another name (the
    README's `--study reviews`) ran in one container while the scaled workers waited on compose-demo."""
    for given, expected in ((None, "compose-demo"), ("reviews", "reviews")):
        env = {k: v for k, v in example_env().items() if k != "TUNER_STUDY"}
        if given is not None:
            env["TUNER_STUDY"] = given
        c = compose(env)
        assert c["services"]["worker"]["environment"]["TUNER_STUDY"] == expected
        command = c["services"]["study"]["command"]
        assert command[command.index("--study") + 1] == expected
    assert "TUNER_STUDY=reviews" in (ROOT / "README.md").read_text()


def test_study_and_mlflow_use_different_databases_on_the_server() -> None:
    c = compose()
    db = c["services"]["db"]["environment"]
    studies = make_url(c["services"]["study"]["environment"]["TUNER_STORAGE"])
    mlflow_store = make_url(c["services"]["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert studies.database == db["POSTGRES_DB"]
    assert mlflow_store.database == "mlflow" != db["POSTGRES_DB"]
    assert re.search(r"CREATE DATABASE mlflow\b", (ROOT / "docker" / "initdb.sql").read_text())
    assert studies.username == mlflow_store.username == db["POSTGRES_USER"]
    assert studies.host == mlflow_store.host == "db"


def test_workers_start_after_healthy_services_and_wait_for_their_study() -> None:
    """The workers depended on the study service, so `docker compose up -d --scale worker=4 worker`
    for a study of one's own (the README's) also ran the demo's `tune --dataset breast_cancer`
    under that study's name, which failed on every start."""
    worker = compose()["services"]["worker"]
    deps = worker["depends_on"]
    assert deps["db"]["condition"] == "service_healthy"
    assert deps["mlflow"]["condition"] == "service_healthy"
    assert "study" not in deps
    command = worker["command"]
    assert command[0] == "worker" and float(command[command.index("--wait") + 1]) >= 60
    readme = (ROOT / "README.md").read_text()
    start, submit = readme.index("docker compose up -d --scale worker=4 worker"), readme.index("docker compose run --rm study tune")
    assert start < submit  # the workers first: they wait for the study the submit creates
    assert compose()["services"]["study"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "healthcheck" in compose()["services"]["mlflow"]


@pytest.mark.parametrize("service", ["study", "worker"])
def test_tuning_services_get_time_to_stop_at_an_epoch_end(service: str) -> None:
    """SIGTERM is acted on at the next epoch end; Compose's 10 s before SIGKILL is too short for that,
    and without an init process PID 1 (Python) would ignore SIGTERM outside a search."""
    svc = compose()["services"][service]
    assert svc.get("init") is True
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(svc.get("stop_grace_period", "")))
    assert m and m.group(0), svc.get("stop_grace_period")
    assert int(m.group(1) or 0) * 60 + int(m.group(2) or 0) >= 60


def test_env_file_is_never_committed_or_built_into_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == ""
    assert raw_compose()["services"]["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_commands_parse_against_the_real_cli() -> None:
    c = compose()
    for name in ("study", "worker"):
        args = list(c["services"][name]["command"])
        # --help after the real arguments makes click parse every option and exit 0 without running
        res = CliRunner().invoke(cli, args + ["--help"])
        assert res.exit_code == 0, (name, res.output)
    mlflow_cmd = c["services"]["mlflow"]["command"]
    help_text = subprocess.run([sys.executable, "-m", "mlflow", "server", "--help"], capture_output=True,
                               text=True).stdout
    for arg in mlflow_cmd[1:]:
        assert arg.split("=")[0] in help_text, arg
    assert Path(ROOT / "docker" / "mlflow-auth.ini").is_file()
