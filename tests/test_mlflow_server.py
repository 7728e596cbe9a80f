"""A study against a real ``mlflow server`` subprocess, then the champion served two ways.

`tuner predict models:/NAME@champion` (a separate process) and `mlflow models serve`
answering POST /invocations must give the in-process model's predictions. A TCP proxy in
front of the server, switched off mid-study, stands for a lost tracking server.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from _mlflow_fixtures import (
    N_TRIALS,
    Served,
    TcpProxy,
    free_port,
    mlflow_exe,
    served_study,
    stop_process,
    stop_served,
    wait_http,
)
from mlflow import MlflowClient

from tuner.data import load_data
from tuner.study import DataSpec, StudySpec, run_study
from tuner.tracking import CHAMPION_ALIAS, MlflowObserver, sync_study

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield served_study(tmp_path_factory)
    stop_served()


def _rows() -> tuple[pd.DataFrame, np.ndarray]:
    raw = load_data(dataset="breast_cancer")
    return pd.DataFrame(raw.X[100:140], columns=raw.feature_names), raw.X[100:140]


def _tuner_predict_cmd() -> list[str]:
    """`tuner predict` once the CLI registers it; the same click command run directly until then."""
    from tuner.cli import cli

    if "predict" in cli.commands:
        return [str(Path(sys.executable).with_name("tuner")), "predict"]
    return [sys.executable, "-c", "from tuner.cli._predict import predict; predict(prog_name='tuner predict')"]


def test_study_is_logged_to_the_server(served: Served) -> None:
    client = MlflowClient(served.server.url)
    exp = client.get_experiment_by_name(served.study)
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "study"]
    children = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    assert len(parents) == 1 and len(children) == N_TRIALS
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # the server decides where artifacts go
    plots = {f.path for f in client.list_artifacts(parents[0].info.run_id, "plots")}
    assert "plots/optimization_history.png" in plots and "plots/roc_curve.png" in plots
    assert (served.root / "artifacts").is_dir() and any((served.root / "artifacts").rglob("weights.safetensors"))
    mv = client.get_model_version_by_alias(served.study, CHAMPION_ALIAS)
    study = optuna.load_study(study_name=served.study, storage=served.storage)
    assert mv.tags["tuner.trial"] == str(study.best_trial.number)


def test_predict_cli_and_models_serve_match_the_in_process_model(served: Served, tmp_path: Path) -> None:
    rows, X = _rows()
    model = served.result.best_outcome.model
    expected, expected_proba = model.predict(X), model.predict_proba(X)
    expected = np.array(["malignant", "benign"])[expected.astype(int)]  # breast_cancer's target_names
    data = tmp_path / "data.csv"
    rows.to_csv(data, index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": served.server.url}

    proc = subprocess.run([*_tuner_predict_cmd(), f"models:/{served.study}@champion", str(data), "--proba"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = pd.read_csv(io.StringIO(proc.stdout))
    assert out["prediction"].tolist() == expected.tolist()
    np.testing.assert_allclose(out[["proba_malignant", "proba_benign"]].to_numpy(), expected_proba, rtol=1e-9)

    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as fh:
        serve = subprocess.Popen([mlflow_exe(), "models", "serve", "-m", f"models:/{served.study}@champion",
                                  "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"],
                                 stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", serve, log, "mlflow models serve", timeout=300)
        split = rows.to_dict(orient="split")
        body = {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
        assert _invoke(port, body)["predictions"] == expected.tolist()
        records = _invoke(port, {**body, "params": {"proba": True}})["predictions"]
        assert [r["prediction"] for r in records] == expected.tolist()
        np.testing.assert_allclose([[r["proba_malignant"], r["proba_benign"]] for r in records], expected_proba, rtol=1e-9)
    finally:
        stop_process(serve)


def _invoke(port: int, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_lost_server_mid_study_keeps_trials_going_and_sync_logs_them_later(
        served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast once the network is gone
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    proxy = TcpProxy(served.server.port).start()
    try:
        obs = MlflowObserver(proxy.url)
        storage = f"sqlite:///{tmp_path / 'studies.db'}"

        def progress(p: dict[str, Any]) -> None:
            if p["done"] == 2 and proxy.running:
                obs.flush()  # trials 0 and 1 are fully logged; then the server "goes away"
                proxy.stop()

        spec = StudySpec(DataSpec(dataset="iris", fingerprint=load_data(dataset="iris").fingerprint), ["l2"],
                         ["lbfgs"], metric="accuracy", sampler="random", pruner="none", n_trials=5,
                         train={"epochs": 5})
        result = run_study(spec, "lossy", storage, observers=[obs], progress=progress)
        assert result.counts["complete"] == 5 and result.best_outcome is not None  # the study went on
        study = optuna.load_study(study_name="lossy", storage=storage)
        attrs = [t.user_attrs for t in study.trials]
        assert [a.get("mlflow_logged", True) for a in attrs] == [True, True, False, False, False]
        assert all("mlflow_run_id" in a for a in attrs[:2])
        assert study.user_attrs["mlflow_unlogged_trials"] == [2, 3, 4]

        proxy.start()
        summary = sync_study(storage, "lossy", proxy.url)
        assert summary["synced_trials"] == [2, 3, 4] and summary["already_logged"] == 2
        client = MlflowClient(served.server.url)
        exp = client.get_experiment_by_name("lossy")
        runs = client.search_runs([exp.experiment_id], filter_string="tags.`tuner.role` = 'trial'")
        assert sorted(int(r.data.tags["tuner.trial"]) for r in runs) == [0, 1, 2, 3, 4]
        assert all(r.data.tags["tuner.logged"] == "true" and r.info.status == "FINISHED" for r in runs)
        mv = client.get_model_version_by_alias("lossy", CHAMPION_ALIAS)
        assert mv.tags["tuner.trial"] == str(study.best_trial.number)
    finally:
        proxy.stop()


def test_tune_says_what_mlflow_missed_and_how_to_log_it(served: Served, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The server went away mid-study: the study ended with exit code 0 and nothing said that its
    end (plots, the registered model) and some trials were not logged."""
    import tuner

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    proxy = TcpProxy(served.server.port).start()
    try:
        def progress(p: dict[str, Any]) -> None:
            if p["done"] == 2 and proxy.running:
                proxy.stop()

        result = tuner.tune(dataset="iris", study_name="said", storage=f"sqlite:///{tmp_path / 's.db'}",
                            tracking_uri=proxy.url, penalty="l2", optimizer="lbfgs", metric="accuracy",
                            sampler="random", pruner="none", trials=4, epochs=5, progress=progress)
    finally:
        proxy.stop()
    assert result.n_complete == 4 and result.model is not None  # the study went on
    (said,) = [w for w in result.warnings if w.startswith("MLflow did not record")]
    assert "the study's end" in said and "trial(s)" in said and "`tuner study sync-mlflow said`" in said
    assert said in result.summary()["warnings"]  # what `tuner tune --json` prints


def test_parent_and_trial_runs_are_what_a_reviewer_compares(served: Served) -> None:
    """Ranking metrics only on complete trials, public parameter names, the parent's summary tags."""
    from tuner.study import param_importances

    client = MlflowClient(served.server.url)
    exp = client.get_experiment_by_name(served.study)
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parent = [r for r in runs if r.data.tags.get("tuner.role") == "study"][0]
    trials = {int(r.data.tags["tuner.trial"]): r for r in runs if r.data.tags.get("tuner.role") == "trial"}
    study = optuna.load_study(study_name=served.study, storage=served.storage)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "the served study should prune some trials (median pruner)"
    for t in study.trials:
        data = trials[t.number].data
        assert data.tags["tuner.state"] == t.state.name
        assert not any(k.startswith(("optimizer.lbfgs.", "optimizer.fista.")) for k in data.params), data.params
        assert {"penalty", "optimizer", "penalty.strength", "optimizer.lr"} <= set(data.params)
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert data.metrics["val_log_loss"] == pytest.approx(t.value)
        else:  # its last value under another name, never in the ranking column
            assert not any(k.startswith(("val_", "test_")) for k in data.metrics), data.metrics
            last = t.intermediate_values[max(t.intermediate_values)]
            assert data.metrics["pruned_at_val_log_loss"] == pytest.approx(last, rel=1e-6)
    best = study.best_trial
    tags = parent.data.tags
    assert tags["tuner.best_trial"] == str(best.number)
    assert tags["tuner.best_run_id"] == trials[best.number].info.run_id
    mv = client.get_model_version_by_alias(served.study, CHAMPION_ALIAS)
    assert tags["tuner.champion_version"] == str(mv.version)
    assert tags["tuner.champion_alias_uri"] == f"models:/{served.study}@{CHAMPION_ALIAS}"
    expected = param_importances(served.storage, served.study)  # what `tuner study show` prints
    logged = {k.removeprefix("importance."): v for k, v in parent.data.metrics.items() if k.startswith("importance.")}
    assert expected and set(logged) == set(expected)
    assert logged == pytest.approx(expected)
