"""docker-compose.yml is real: its services, images, commands and environment match the code.

There is no Docker engine here, so the same services run natively in other tests
(test_postgres.py, test_mlflow_server.py); this test keeps the compose file honest.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from tuner.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_images() -> None:
    c = compose()
    assert set(c["services"]) == {"db", "mlflow", "study", "worker"}
    assert c["services"]["db"]["image"].startswith("postgres:")
    for name in ("mlflow", "study", "worker"):
        assert c["services"][name]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tuner"]' in dockerfile and ".[postgres]" in dockerfile
    for volume in c["services"]["db"]["volumes"]:
        src = volume.split(":")[0]
        if src.startswith("./"):
            assert (ROOT / src).is_file(), src


def test_environment_names_are_the_ones_the_cli_reads() -> None:
    cli_source = (ROOT / "tuner" / "cli.py").read_text()
    c = compose()
    for name in ("study", "worker"):
        env = c["services"][name]["environment"]
        for var in env:
            assert f'envvar="{var}"' in cli_source, f"{name} sets {var}, which the CLI does not read"
        assert env["TUNER_STORAGE"].startswith("postgresql+psycopg2://")
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert c["services"]["worker"]["environment"]["TUNER_STUDY"] in c["services"]["study"]["command"]


def test_study_and_mlflow_use_different_databases_on_the_server() -> None:
    c = compose()
    db = c["services"]["db"]["environment"]
    studies = c["services"]["study"]["environment"]["TUNER_STORAGE"]
    mlflow_store = next(a for a in c["services"]["mlflow"]["command"] if a.startswith("--backend-store-uri="))
    assert studies.rsplit("/", 1)[1] == db["POSTGRES_DB"]
    assert mlflow_store.rsplit("/", 1)[1] == "mlflow" != db["POSTGRES_DB"]
    init = (ROOT / "docker" / "initdb.sql").read_text()
    assert re.search(r"CREATE DATABASE mlflow\b", init)
    user, password = db["POSTGRES_USER"], db["POSTGRES_PASSWORD"]
    assert f"{user}:{password}@db:5432/" in studies and f"{user}:{password}@db:5432/" in mlflow_store


def test_commands_parse_against_the_real_cli() -> None:
    c = compose()
    for name in ("study", "worker"):
        args = list(c["services"][name]["command"])
        # --help after the real arguments makes click parse every option and exit 0 without running
        res = CliRunner().invoke(cli, args + ["--help"])
        assert res.exit_code == 0, (name, res.output)
    mlflow_cmd = c["services"]["mlflow"]["command"]
    assert c["services"]["mlflow"]["entrypoint"] == ["mlflow"] and mlflow_cmd[0] == "server"
    import subprocess
    import sys

    help_text = subprocess.run([sys.executable, "-m", "mlflow", "server", "--help"], capture_output=True, text=True).stdout
    for arg in mlflow_cmd[1:]:
        assert arg.split("=")[0] in help_text, arg
