"""MLflow tracking against a real local store (SQLite + local artifacts), driven by real studies.

No mocks: the search loop (tuner.study.run_study) trains real models and the observer
logs them with a real MlflowClient. A failing optimizer plugin is injected into the
registry to get FAIL trials; SGD with a learning rate of 1e3 diverges to get PRUNED ones.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState
from safetensors.numpy import load_file

from tuner.cli import cli
from tuner.cli._predict import predict, sync_mlflow
from tuner.data import load_data, prepare
from tuner.errors import TrackingError
from tuner.model import save_pyfunc_model
from tuner.study import (
    DataSpec,
    StudyInfo,
    StudyObserver,
    StudySpec,
    TrialInfo,
    history_importances,
    open_or_create_study,
    run_study,
    train_one,
    trial_records,
)
from tuner.tracking import CHAMPION_ALIAS, EPOCH_PREFIX, MlflowObserver, _plots, download_model, sync_study
from tuner.train import TrainConfig

STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}




@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _data(dataset: str) -> DataSpec:
    """Like the CLI: the data spec carries the data's fingerprint from the start."""
    return DataSpec(dataset=dataset, fingerprint=load_data(dataset=dataset).fingerprint)


def _uris(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'studies.db'}"


def _client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _runs(client: MlflowClient, study: str) -> tuple[list[Any], list[Any]]:
    """(parent runs, child runs) of a study's experiment."""
    exp = client.get_experiment_by_name(study)
    assert exp is not None, f"no experiment named {study}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "study"]
    children = [r for r in runs if r.data.tags.get("tuner.role") == "trial"]
    return parents, children


def test_an_unconverged_mini_batch_trial_is_logged_as_killed_with_its_gap(tmp_path: Path) -> None:
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["adam"], params={"penalty.strength": "1e-3"},
                     sampler="random", pruner="none", seed=3, n_trials=1, train={"epochs": 3})
    result = run_study(spec, "gap", storage, observers=[MlflowObserver(uri)])
    assert result.counts["pruned"] == 1 and result.best_outcome is None
    trial = optuna.load_study(study_name="gap", storage=storage).trials[0]
    assert trial.state == TrialState.PRUNED and trial.user_attrs["optimality_gap"] > 0.01
    _, children = _runs(_client(uri), "gap")
    (run,) = children
    assert run.info.status == "KILLED" and run.data.tags["tuner.reason"].startswith("not converged: stopped ")
    assert run.data.metrics["optimality_gap"] == pytest.approx(trial.user_attrs["optimality_gap"])
    # what it reached is kept for the review, under a name that never ranks against finished trials
    assert "pruned_at_val_log_loss" in run.data.metrics and "val_log_loss" not in run.data.metrics
    assert not any(k.startswith(("val_", "test_")) for k in run.data.metrics)


def test_study_logs_a_parent_and_a_child_run_per_trial_and_resume_reuses_them(tmp_path: Path, boom: str) -> None:
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["sgd", "lbfgs", "boom"],
                     params={"optimizer.sgd.lr": "1e3", "penalty.strength": "1e-2..1e-1:log"},
                     sampler="random", pruner="none", seed=7, n_trials=3, train={"epochs": 8})
    study, _, _ = open_or_create_study(spec, "bc", storage)  # budget 3: the failed trial is not counted
    for variant in ("l2:lbfgs", "l2:sgd", "l2:boom", "l2:lbfgs"):  # complete, diverged (pruned), failed, complete
        study.enqueue_trial({"variant": variant})
    result = run_study(spec, "bc", storage, observers=[MlflowObserver(uri)])
    study = optuna.load_study(study_name="bc", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                               TrialState.COMPLETE]

    client = _client(uri)
    parents, children = _runs(client, "bc")
    assert len(parents) == 1
    parent = parents[0]
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
    assert parent.info.status == "FINISHED"
    assert len(children) == len(study.trials)
    by_number = {int(r.data.tags["tuner.trial"]): r for r in children}
    assert sorted(by_number) == [t.number for t in study.trials]
    fingerprint = json.loads(study.user_attrs["spec"])["data"]["fingerprint"]
    for t in study.trials:
        run = by_number[t.number]
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert run.info.run_name == f"trial-{t.number:04d}"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert t.user_attrs["mlflow_run_id"] == run.info.run_id
        assert "mlflow_logged" not in t.user_attrs
        assert run.info.status == STATUS[t.state.name]
        assert tags["tuner.state"] == t.state.name and tags["tuner.logged"] == "true"
        assert tags["optuna.study_name"] == "bc" and tags["tuner.study"] == "bc"
        assert tags["tuner.data.fingerprint"] == fingerprint
        assert tags["tuner.version.mlflow"] == mlflow.__version__ and tags["tuner.version.optuna"] == optuna.__version__
        assert f"{params['penalty']}:{params['optimizer']}" == t.params["variant"] and params["penalty"] == "l2"
        assert "variant" not in params and not any(k.count(".") > 1 for k in params), params  # the public names
        assert 1e-2 <= float(params["penalty.strength"]) <= 1e-1
        optimizer = t.params["variant"].split(":")[1]
        assert params["optimizer"] == optimizer and tags["tuner.optimizer"] == optimizer
        if optimizer == "boom":
            assert tags["tuner.optimizer.distribution"] == "tests-fixture"
        else:
            assert tags["tuner.optimizer.distribution"] == "logreg-tuner"
            assert tags["tuner.optimizer.version"] == tags["tuner.version.logreg-tuner"]
        if t.state == TrialState.FAIL:
            assert "boom" in tags["tuner.reason"] and optimizer == "boom"
        elif t.state == TrialState.PRUNED:
            assert "diverged" in tags["tuner.reason"] and optimizer == "sgd"
        else:
            assert optimizer == "lbfgs"
            assert math.isclose(metrics["val_log_loss"], t.value, rel_tol=1e-9)
            for key in ("test_log_loss", "test_accuracy", "test_roc_auc", "val_roc_auc", "n_nonzero_weights",
                        "fit_seconds", "epochs_run"):
                assert key in metrics, key
            history = client.get_metric_history(run.info.run_id, EPOCH_PREFIX + "val_loss")
            assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(1, int(metrics["epochs_run"]) + 1))
            assert len(client.get_metric_history(run.info.run_id, EPOCH_PREFIX + "train_loss")) == metrics["epochs_run"]
            weights = load_file(client.download_artifacts(run.info.run_id, "weights.safetensors", str(tmp_path / "w")))
            assert weights["coef"].shape == (30, 1) and weights["intercept"].shape == (1,)

    # Study-level artifacts on the parent run.
    names = {f.path for f in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/coefficients.png", "plots/roc_curve.png"} <= names
    spec_file = client.download_artifacts(parent.info.run_id, "study_spec.json", str(tmp_path / "s"))
    assert json.loads(Path(spec_file).read_text())["optimizers"] == ["sgd", "lbfgs", "boom"]
    best_curve = client.get_metric_history(parent.info.run_id, "best_log_loss")
    assert min(m.value for m in best_curve) == pytest.approx(study.best_value)

    # The champion: the best trial's model, registered under the study name; predicts raw rows.
    champion = client.get_model_version_by_alias("bc", CHAMPION_ALIAS)
    assert champion.tags["tuner.trial"] == str(study.best_trial.number)
    assert float(champion.tags["tuner.value"]) == pytest.approx(study.best_value)
    assert champion.run_id == by_number[study.best_trial.number].info.run_id
    local = download_model("models:/bc@champion", tmp_path / "champion", uri)
    pyfunc = mlflow.pyfunc.load_model(str(local))
    raw = load_data(dataset="breast_cancer")
    rows = pd.DataFrame(raw.X[:40], columns=raw.feature_names)
    # predictions are the training labels: breast_cancer's target_names, class 0 first
    expected = np.array(["malignant", "benign"])[result.best_outcome.model.predict(raw.X[:40]).astype(int)]
    assert list(pyfunc.predict(rows)) == list(expected)
    proba = pyfunc.predict(rows, params={"proba": True})
    assert list(proba.columns) == ["prediction", "proba_malignant", "proba_benign"]
    np.testing.assert_allclose(proba[["proba_malignant", "proba_benign"]].to_numpy(),
                               result.best_outcome.model.predict_proba(raw.X[:40]), rtol=1e-12)

    # `tuner predict` with the registry alias and with the run's model URI.
    csv_path = tmp_path / "rows.csv"
    rows.assign(target=raw.y[:40]).to_csv(csv_path, index=False)
    for model_uri in ("models:/bc@champion", f"runs:/{champion.run_id}/model"):
        res = CliRunner().invoke(predict, [model_uri, str(csv_path), "--tracking-uri", uri, "--proba"],
                                 catch_exceptions=False)
        assert res.exit_code == 0, res.output
        out = pd.read_csv(io.StringIO(res.stdout))
        assert list(out["prediction"]) == list(expected)
        assert np.allclose(out["proba_benign"], proba["proba_benign"])

    # Resume: same parent, one new child run per new trial; the champion moves only if the best improved.
    best_before, versions_before = study.best_trial.number, len(client.search_model_versions("name='bc'"))
    run_study(None, "bc", storage, observers=[MlflowObserver(uri)], resume_only=True, n_trials=7)
    study = optuna.load_study(study_name="bc", storage=storage)
    # the budget counts complete and pruned trials exactly (failed ones, e.g. boom's, are not counted)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == 7
    parents, children = _runs(client, "bc")
    assert [p.info.run_id for p in parents] == [parent.info.run_id]
    assert sorted(int(r.data.tags["tuner.trial"]) for r in children) == [t.number for t in study.trials]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    improved = study.best_trial.number != best_before
    versions = client.search_model_versions("name='bc'")
    assert len(versions) == versions_before + (1 if improved else 0)
    champion = client.get_model_version_by_alias("bc", CHAMPION_ALIAS)
    assert champion.tags["tuner.trial"] == str(study.best_trial.number)
    steps = [m.step for m in client.get_metric_history(parent.info.run_id, "best_log_loss")]
    assert len(steps) == len(set(steps)) and max(steps) == study.best_trial.number  # one point per improvement


def _outcome_with(outcome: Any, log_loss: float) -> Any:
    return dataclasses.replace(outcome, val_metrics={**outcome.val_metrics, "log_loss": log_loss})


def _registering_study(tmp_path: Path, name: str, cv: int = 0) -> tuple[str, Any, Any, MlflowObserver]:
    """An MLflow observer started on a breast_cancer study ``name``, and one trained outcome:
    (tracking URI, study info, outcome, observer)."""
    uri, storage = _uris(tmp_path)
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], cv=cv)
    ds = prepare(load_data(dataset="breast_cancer"))
    spec.data.fingerprint = ds.raw.fingerprint
    outcome = train_one(ds, "l2", "lbfgs", {"strength": 1e-3}, {}, TrainConfig(epochs=5))
    info = StudyInfo(name, storage, json.loads(spec.to_json()), "minimize", "log_loss")
    obs = MlflowObserver(uri, plots=False)
    obs.on_study_start(info)
    return uri, info, outcome, obs


def test_champion_alias_moves_only_when_the_new_best_beats_it(tmp_path: Path) -> None:
    uri, info, outcome, obs = _registering_study(tmp_path, "champ")
    client = _client(uri)

    def end(number: int, value: float) -> dict[str, Any]:
        best = TrialInfo(number, "l2", "lbfgs", {"variant": "l2:lbfgs"}, {"strength": 1e-3}, {})
        history = [{"number": number, "state": "COMPLETE", "value": value, "params": {"variant": "l2:lbfgs"}}]
        return obs.on_study_end(info, best, _outcome_with(outcome, value), history)

    first = end(1, 0.30)
    assert first["mlflow_model_version"] == "1"
    assert str(client.get_model_version_by_alias("champ", CHAMPION_ALIAS).version) == "1"
    worse = end(2, 0.50)  # a worse best (another worker's view, or a resumed study): nothing new
    assert "mlflow_model_version" not in worse and worse["mlflow_champion_version"] == "1"
    assert len(client.search_model_versions("name='champ'")) == 1
    better = end(3, 0.20)
    assert better["mlflow_model_version"] == "2"
    mv = client.get_model_version_by_alias("champ", CHAMPION_ALIAS)
    assert str(mv.version) == "2" and mv.tags["tuner.trial"] == "3" and float(mv.tags["tuner.value"]) == 0.20
    assert len(client.search_model_versions("name='champ'")) == 2


def test_the_champion_is_ranked_by_the_trials_value_not_the_refits_validation_score(tmp_path: Path) -> None:
    """With --cv a trial's value is the mean over folds, while the refitted model's validation
    score is another number: the alias and the tags follow the value the study ranked by."""
    uri, info, outcome, obs = _registering_study(tmp_path, "cvchamp", cv=3)

    def end(number: int, cv_mean: float, val_score: float) -> dict[str, Any]:
        best = TrialInfo(number, "l2", "lbfgs", {"variant": "l2:lbfgs"}, {"strength": 1e-3}, {}, value=cv_mean)
        history = [{"number": number, "state": "COMPLETE", "value": cv_mean, "params": {"variant": "l2:lbfgs"}}]
        return obs.on_study_end(info, best, _outcome_with(outcome, val_score), history)

    end(0, cv_mean=0.30, val_score=0.10)
    moved = end(1, cv_mean=0.20, val_score=0.50)  # better by the study's value, worse on the split
    assert moved["mlflow_champion_version"] == moved["mlflow_model_version"] == "2"
    mv = _client(uri).get_model_version_by_alias("cvchamp", CHAMPION_ALIAS)
    assert mv.tags["tuner.trial"] == "1" and float(mv.tags["tuner.value"]) == 0.20
    parent = _client(uri).get_run(obs.study_run("cvchamp").parent_run_id)
    assert float(parent.data.tags["tuner.best_value"]) == 0.20


def test_a_lost_trials_run_fails_with_its_reason_and_a_stopped_study_ends_its_parent(tmp_path: Path) -> None:
    uri, storage = _uris(tmp_path)
    spec = StudySpec(DataSpec(dataset="iris"), ["l2"], ["lbfgs"])
    info = StudyInfo("lost", storage, json.loads(spec.to_json()), "minimize", "log_loss")
    obs = MlflowObserver(uri, plots=False, register_model=False, background=False)
    attrs = obs.on_study_start(info)
    trial = TrialInfo(4, "l2", "lbfgs", {"variant": "l2:lbfgs"}, {"strength": 1e-3}, {})
    obs.on_trial_start(info, trial)  # the worker dies before on_trial_end
    obs.on_trial_lost(info, 4, "the worker stopped sending heartbeats")
    obs.on_study_stop(info, "KILLED", "SIGTERM")
    obs.close()
    client = _client(uri)
    parents, children = _runs(client, "lost")
    assert [p.info.run_id for p in parents] == [attrs["mlflow_parent_run_id"]]
    assert parents[0].info.status == "KILLED" and parents[0].data.tags["tuner.reason"] == "SIGTERM"
    (run,) = children
    assert run.info.status == "FAILED" and run.data.tags["tuner.trial"] == "4"
    assert run.data.tags["tuner.state"] == "FAIL"
    assert run.data.tags["tuner.reason"] == "the worker stopped sending heartbeats"
    # the study storage holds no such trial to fill the run from: not marked logged, so a sync fills it
    assert "tuner.logged" not in run.data.tags


_KILLED_WORKER = """
import os, sys
from tuner.study import StudyObserver, StudySpec, run_study
from tuner.tracking import MlflowObserver
from tuner.train import Callback

uri, storage, spec = sys.argv[1:4]
obs = MlflowObserver(uri, plots=False, register_model=False, flush_interval=0)  # epochs sent as they come

class Die(Callback):
    def on_epoch_end(self, state, logs):
        if state.epoch >= 4:
            obs.flush()  # the run and the epochs so far are in MLflow: the worker dies mid-trial
            os._exit(9)

class Killer(StudyObserver):
    def on_trial_start(self, study, trial):
        return [Die()], {}

run_study(StudySpec.from_json(spec), "killed", storage, observers=[obs, Killer()])
"""


def test_a_killed_workers_trial_run_holds_its_parameters_and_is_filled_from_the_study_storage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed mid-trial left a run with no parameters (sent only at the trial's end), which
    the next worker closed as FAILED and marked logged, so a sync never filled it."""
    env = {"TUNER_HEARTBEAT_INTERVAL": "1", "TUNER_HEARTBEAT_GRACE": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["sgd"], sampler="random", pruner="none", seed=0, n_trials=1,
                     train={"epochs": 40, "patience": 1000})
    proc = subprocess.run([sys.executable, "-c", _KILLED_WORKER, uri, storage, spec.to_json()],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr
    (lost,) = optuna.load_study(study_name="killed", storage=storage).trials
    assert lost.state == TrialState.RUNNING and lost.intermediate_values
    client = _client(uri)
    (left,) = _runs(client, "killed")[1]
    assert left.info.status == "RUNNING" and "tuner.logged" not in left.data.tags
    assert left.data.params["penalty"] == "l2" and "penalty.strength" in left.data.params  # with its first epochs

    time.sleep(3)  # past the grace period: the next worker fails the trial as lost, and retries it
    run_study(None, "killed", storage, observers=[MlflowObserver(uri, plots=False, register_model=False)],
              resume_only=True)
    (record,) = [t for t in trial_records(storage, "killed") if t.number == lost.number]
    assert record.state == "FAIL" and record.user_attrs["fail_reason"].startswith("lost: ")
    run = client.get_run(left.info.run_id)  # the same run, filled in place
    assert run.info.status == "FAILED" and run.data.tags["tuner.logged"] == "true"
    assert run.data.tags["tuner.reason"].startswith("lost: ")
    assert set(run.data.params) == set(record.public_params)
    for k, v in record.public_params.items():
        assert run.data.params[k] == (repr(v) if isinstance(v, float) else str(v)), k
    points = client.get_metric_history(run.info.run_id, EPOCH_PREFIX + "val_loss")
    steps = [m.step for m in points]
    assert len(steps) == len(set(steps)), steps  # the epochs the worker sent are not sent twice
    got = {m.step: m.value for m in points}
    assert set(record.intermediate_values) <= set(got)
    assert {k: got[k] for k in record.intermediate_values} == pytest.approx(record.intermediate_values)
    assert run.data.metrics["failed_at_val_log_loss"] == pytest.approx(
        record.intermediate_values[max(record.intermediate_values)])
    assert sync_study(storage, "killed", uri, register_model=False)["synced_trials"] == []  # nothing missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_before_any_trial(tmp_path: Path) -> None:
    _, storage = _uris(tmp_path)
    spec = StudySpec(DataSpec(dataset="iris"), ["l2"], ["lbfgs"], n_trials=3, train={"epochs": 3})
    started = time.monotonic()
    with pytest.raises(TrackingError, match=r"Cannot reach the MLflow tracking server at http://127\.0\.0\.1:\d+"):
        run_study(spec, "unreachable", storage, observers=[MlflowObserver(f"http://127.0.0.1:{_free_port()}")])
    assert time.monotonic() - started < 30
    # issue 9: checked before the study is stored, so a corrected retry starts afresh
    assert "unreachable" not in [s.study_name for s in optuna.get_all_study_summaries(storage)]


def test_sync_logs_pruned_trials_and_names_as_the_live_observer_does(tmp_path: Path) -> None:
    """The same parameter names, ranking metrics only for COMPLETE trials, and the UI's trials view."""
    from tuner.tracking import VIEW_KEY

    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["lbfgs", "fista"], sampler="random", pruner="median", seed=1,
                     n_trials=10, train={"epochs": 10})
    run_study(spec, "live", storage, observers=[MlflowObserver(uri, plots=False, register_model=False)])
    run_study(spec, "later", storage)
    assert sync_study(storage, "later", uri, register_model=False)["synced_trials"] == list(range(10))
    client = _client(uri)
    logged = {}
    for name in ("live", "later"):
        study = optuna.load_study(study_name=name, storage=storage)
        assert any(t.state == TrialState.PRUNED for t in study.trials)
        exp = client.get_experiment_by_name(name)
        view = json.loads(exp.tags[f"mlflow.sharedViewState.{VIEW_KEY}"])
        assert view["orderByKey"] == "metrics.`val_log_loss`" and view["orderByAsc"] is True
        assert "params.`optimizer.lr`" in view["selectedColumns"]
        for r in _runs(client, name)[1]:
            t = study.trials[int(r.data.tags["tuner.trial"])]
            logged[name, t.number] = set(r.data.params)
            if t.state == TrialState.COMPLETE:
                assert r.data.metrics["val_log_loss"] == pytest.approx(t.value)
            else:
                assert not any(k.startswith(("val_", "test_")) for k in r.data.metrics), r.data.metrics
                last = t.intermediate_values[max(t.intermediate_values)]
                assert r.data.metrics["pruned_at_val_log_loss"] == pytest.approx(last, rel=1e-6)
    for n in range(10):  # the same trial, the same names, live or synced (fixed slots included)
        assert logged["live", n] == logged["later", n]
        assert "variant" not in logged["live", n] and "optimizer.lr" in logged["live", n]


def test_a_study_run_without_mlflow_is_synced_later(tmp_path: Path) -> None:
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("wine"), ["l2"], ["lbfgs"], metric="f1", sampler="random", pruner="none",
                     n_trials=3, train={"epochs": 5})
    run_study(spec, "late", storage)  # tracking was off (or down)
    study = optuna.load_study(study_name="late", storage=storage)
    res = CliRunner().invoke(sync_mlflow, ["late", "--storage", storage, "--tracking-uri", uri, "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["synced_trials"] == [0, 1, 2] and summary["already_logged"] == 0
    client = _client(uri)
    parents, children = _runs(client, "late")
    assert len(parents) == 1 and len(children) == 3
    for r in children:
        t = study.trials[int(r.data.tags["tuner.trial"])]
        assert r.info.status == "FINISHED" and r.data.tags["tuner.synced"] == "true"
        assert r.data.metrics["val_f1"] == pytest.approx(t.value)
        assert r.info.start_time == int(t.datetime_start.timestamp() * 1000)
        history = client.get_metric_history(r.info.run_id, EPOCH_PREFIX + "val_f1")
        assert {m.step: m.value for m in history} == pytest.approx(t.intermediate_values)
    mv = client.get_model_version_by_alias("late", CHAMPION_ALIAS)  # the best trial was refit and registered
    assert mv.tags["tuner.trial"] == str(study.best_trial.number)
    assert mv.tags["tuner.metric"] == "f1" and float(mv.tags["tuner.value"]) == pytest.approx(study.best_value)
    parent_plots = {f.path for f in client.list_artifacts(summary["parent_run_id"], "plots")}
    assert "plots/confusion_matrix.png" in parent_plots and "plots/roc_curve.png" not in parent_plots  # 3 classes
    # Nothing left to do the second time.
    again = sync_study(storage, "late", uri)
    assert again["synced_trials"] == [] and again["already_logged"] == 3 and "model" not in again
    assert len(_runs(client, "late")[1]) == 3


def test_a_tracked_resume_says_which_earlier_trials_mlflow_does_not_hold(tmp_path: Path) -> None:
    """Trials run with --no-tracking (or logged to a store since lost) were left out of MLflow
    without a word when the study was resumed with tracking: the UI showed 2 of 5 trials."""
    import tuner

    uri, storage = _uris(tmp_path)
    common = dict(dataset="iris", study_name="gap", storage=storage, penalty="l2", optimizer="lbfgs",
                  sampler="random", pruner="none", epochs=5)
    tuner.tune(trials=3, **common)  # no tracking
    resumed = tuner.tune(trials=5, tracking_uri=uri, **common)
    (said,) = [w for w in resumed.warnings if w.startswith("MLflow did not record")]
    assert "3 trial(s)" in said and "`tuner study sync-mlflow gap`" in said
    assert optuna.load_study(study_name="gap", storage=storage).user_attrs["mlflow_unlogged_trials"] == [0, 1, 2]
    assert sync_study(storage, "gap", uri)["synced_trials"] == [0, 1, 2]
    again = tuner.tune(trials=6, tracking_uri=uri, **common)  # every earlier trial is in MLflow now
    assert not [w for w in again.warnings if w.startswith("MLflow did not record")], again.warnings
    assert len(_runs(_client(uri), "gap")[1]) == 6


def test_two_studies_in_one_process_do_not_cross_wires(tmp_path: Path) -> None:
    """Interleaved trials of two studies, each with its own observer, land in their own runs."""
    uri, storage = _uris(tmp_path)
    spec = {"data": {"fingerprint": "f"}, "metric": "accuracy", "train": {}}
    studies = [StudyInfo(n, storage, spec, "maximize", "accuracy") for n in ("alpha", "beta")]
    observers = [MlflowObserver(uri, plots=False, register_model=False) for _ in studies]
    parents = [o.on_study_start(s)["mlflow_parent_run_id"] for o, s in zip(observers, studies, strict=True)]
    assert parents[0] != parents[1]
    callbacks = []
    for n in range(3):
        for o, s in zip(observers, studies, strict=True):
            trial = TrialInfo(n, "l2", "lbfgs", {"variant": "l2:lbfgs", "study": s.name}, {}, {})
            cbs, _ = o.on_trial_start(s, trial)
            callbacks.append((o, s, trial, cbs))
    for k, (o, s, trial, cbs) in enumerate(reversed(callbacks)):
        for e in (1, 2):
            for cb in cbs:
                cb.on_epoch_end(None, {"epoch": e, "train_loss": float(k), "val_loss": float(k)})
        o.on_trial_end(s, trial, "PRUNED", None, None, f"pruned {s.name} {trial.number}")
    for o in observers:
        o.close()
    client = _client(uri)
    for s, parent in zip(studies, parents, strict=True):
        ps, children = _runs(client, s.name)
        assert [p.info.run_id for p in ps] == [parent]
        assert sorted(int(r.data.tags["tuner.trial"]) for r in children) == [0, 1, 2]
        for r in children:
            assert r.data.tags["tuner.study"] == s.name and r.data.tags["tuner.reason"].startswith(f"pruned {s.name}")
            assert "pruned_at_val_log_loss" in r.data.metrics and "val_log_loss" not in r.data.metrics
            assert r.info.status == "KILLED" and r.data.metrics["epochs_run"] == 2
            assert len(client.get_metric_history(r.info.run_id, EPOCH_PREFIX + "val_loss")) == 2


_BLOCKING_LOADER = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tuner", "torch", "optuna"):
                raise ImportError(f"{name} must not be needed to serve the model")
            return None
    sys.meta_path.insert(0, Block())
    import json, mlflow.pyfunc, pandas as pd
    model = mlflow.pyfunc.load_model(sys.argv[1])
    rows = pd.read_csv(sys.argv[2])
    out = model.predict(rows, params={"proba": True})
    print(json.dumps({"prediction": [str(v) for v in out["prediction"]], "proba": out.iloc[:, 1:].values.tolist(),
                      "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("tuner", "torch"))}))
""")


def test_pyfunc_text_model_needs_neither_tuner_nor_torch_to_serve(tmp_path: Path) -> None:
    texts = ["a great and moving film", "dull boring mess", "wonderful acting and a great story",
             "a boring plot and bad acting", "great fun", "bad and dull"] * 6
    labels = ["pos", "neg", "pos", "neg", "pos", "neg"] * 6
    data = tmp_path / "reviews.csv"
    pd.DataFrame({"review": texts, "label": labels}).to_csv(data, index=False)
    ds = prepare(load_data(data, target="label", text_column="review"), seed=0)
    outcome = train_one(ds, "l2", "lbfgs", {"strength": 1e-3}, {}, TrainConfig(epochs=5))
    model_dir = save_pyfunc_model(outcome.model, tmp_path / "pyfunc")
    assert not list(model_dir.rglob("*.pkl")) and not list(model_dir.rglob("*.pickle"))
    requirements = (model_dir / "requirements.txt").read_text()
    assert "torch" not in requirements and "logreg-tuner" not in requirements and "scikit-learn==" in requirements
    new = pd.DataFrame({"review": ["great film", "dull and bad", "a moving story"]})
    rows = tmp_path / "new.csv"
    new.to_csv(rows, index=False)
    script = tmp_path / "serve.py"
    script.write_text(_BLOCKING_LOADER)
    proc = subprocess.run([sys.executable, str(script), str(model_dir), str(rows)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["modules"] == []
    assert got["prediction"] == [str(v) for v in outcome.model.predict(new)] == ["pos", "neg", "pos"]
    np.testing.assert_allclose(got["proba"], outcome.model.predict_proba(new), rtol=1e-12)

    # `tuner predict` on a plain text file (one review per line), from the MLflow folder and the model folder.
    lines = tmp_path / "new.txt"
    lines.write_text("great film\ndull and bad\n\na moving story\n")
    plain = outcome.model.save(tmp_path / "plain")
    for source in (model_dir, plain):
        out = tmp_path / f"pred-{source.name}.csv"
        res = CliRunner().invoke(predict, [str(source), str(lines), "--output", str(out)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        got_lines = pd.read_csv(out)["prediction"].tolist()  # one a line: the blank one is the empty text
        assert len(got_lines) == 4 and [got_lines[i] for i in (0, 1, 3)] == ["pos", "neg", "pos"]


def test_importances_use_the_parameters_every_trial_has_and_plots_are_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    history = []
    for n in range(12):
        strength = float(10 ** rng.uniform(-5, -1))
        params = {"variant": ["l2:lbfgs", "elasticnet:fista"][n % 2], "penalty.strength": strength}
        if n % 2:
            params["penalty.l1_ratio"] = float(rng.uniform())  # conditional: only some trials have it
        history.append({"number": n, "state": "COMPLETE", "value": 0.1 + abs(math.log10(strength) + 3), "params": params})
    history.append({"number": 12, "state": "PRUNED", "value": None, "params": {"variant": "l2:lbfgs"}})
    imp = history_importances(history, "minimize")
    assert set(imp) == {"penalty", "optimizer", "penalty.strength"}  # public names (see tuner.study.public_params)
    assert sum(imp.values()) == pytest.approx(1.0) and imp["penalty.strength"] > imp["penalty"]
    assert history_importances(history[:3], "minimize") == {}  # too few complete trials
    coef = np.zeros((6, 3))
    coef[1, 0], coef[4, 2] = 2.0, -1.5
    y = np.array([0, 1, 2, 2, 1, 0])
    paths = [_plots.optimization_history(history, "minimize", "log_loss", tmp_path / "h.png"),
             _plots.param_importances(imp, tmp_path / "i.png"),
             _plots.coefficients([f"term {i}" for i in range(6)], coef, ["a", "b", "c"], tmp_path / "c.png"),
             _plots.confusion_matrix(y, np.array([0, 1, 2, 1, 1, 0]), ["a", "b", "c"], tmp_path / "m.png"),
             _plots.roc_curve(np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3]), "yes", tmp_path / "r.png")]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_a_study_of_the_same_name_in_another_database_cannot_take_the_name_over(tmp_path: Path) -> None:
    """Two live studies named alike in two study databases, one MLflow store: the second shared the
    first's experiment and, with a worse model of other data, moved its 'champion' alias (users of
    models:/NAME@champion were served an iris model for breast-cancer rows); study show still named
    the old champion."""
    uri, storage = _uris(tmp_path)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    runner = CliRunner()
    base = ["--study", "shared", "--tracking-uri", uri, "--penalty", "l2", "--optimizer", "lbfgs", "--trials", "2"]
    res = runner.invoke(cli, ["tune", "--dataset", "breast_cancer", "--storage", storage, *base])
    assert res.exit_code == 0, res.output
    client = _client(uri)
    before = client.get_model_version_by_alias("shared", CHAMPION_ALIAS).version
    res = runner.invoke(cli, ["tune", "--dataset", "iris", "--storage", other, *base])
    assert res.exit_code == 1, res.output
    assert res.output.splitlines()[-1] == (
        f"Error: The MLflow store already holds a study named 'shared' from another study database ({storage}); a "
        "second study of that name would share its experiment and registered model, and could take over its "
        "'champion' alias. Give this study another name (--study), or log it to another MLflow store (--tracking-uri).")
    assert client.get_model_version_by_alias("shared", CHAMPION_ALIAS).version == before
    assert len(client.search_model_versions("name='shared'")) == 1
    assert len(_runs(client, "shared")[0]) == 1  # no second parent run
    res = runner.invoke(cli, ["tune", "--dataset", "breast_cancer", "--storage", storage, *base, "--trials", "3"])
    assert res.exit_code == 0, res.output  # the owner resumes as before


def test_one_relative_storage_url_in_two_folders_is_two_databases(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`--storage sqlite:///s.db` run in two folders names two databases, but the MLflow tag held
    the URL as written: the second folder's study (iris) passed for the first's (breast cancer),
    shared its registered model and moved its champion to a model of other data."""
    uri, _ = _uris(tmp_path)
    runner = CliRunner()
    base = ["--study", "same", "--tracking-uri", uri, "--penalty", "l2", "--optimizer", "lbfgs", "--trials", "2",
            "--storage", "sqlite:///s.db"]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    res = runner.invoke(cli, ["tune", "--dataset", "breast_cancer", *base])
    assert res.exit_code == 0, res.output
    client = _client(uri)
    before = client.get_model_version_by_alias("same", CHAMPION_ALIAS).version
    assert _runs(client, "same")[0][0].data.tags["tuner.storage"] == f"sqlite:///{tmp_path / 'a' / 's.db'}"
    monkeypatch.chdir(tmp_path / "b")
    res = runner.invoke(cli, ["tune", "--dataset", "iris", *base])
    assert res.exit_code == 1 and "already holds a study named 'same' from another study database" in res.output
    assert client.get_model_version_by_alias("same", CHAMPION_ALIAS).version == before
    monkeypatch.chdir(tmp_path / "a")
    res = runner.invoke(cli, ["tune", "--dataset", "breast_cancer", *base, "--trials", "3"])
    assert res.exit_code == 0, res.output  # the owner, from its folder, resumes as before


def test_a_resumed_study_that_finishes_drops_the_earlier_interruption(tmp_path: Path) -> None:
    """The parent run of a study interrupted once (tuner.reason 'interrupted by SIGINT') kept that
    reason after a resume finished it: the UI showed a complete study as interrupted."""
    uri, storage = _uris(tmp_path)
    runner = CliRunner()
    base = ["--study", "again", "--tracking-uri", uri, "--storage", storage, "--penalty", "l2", "--optimizer", "lbfgs"]
    assert runner.invoke(cli, ["tune", "--dataset", "breast_cancer", *base, "--trials", "2"]).exit_code == 0
    client = _client(uri)
    parent = _runs(client, "again")[0][0]
    client.set_tag(parent.info.run_id, "tuner.reason", "interrupted by SIGINT")  # as the interrupted run left it
    client.set_terminated(parent.info.run_id, "KILLED")
    res = runner.invoke(cli, ["tune", "--dataset", "breast_cancer", *base, "--trials", "3"])
    assert res.exit_code == 0, res.output
    run = client.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED" and "tuner.reason" not in run.data.tags


def test_a_registered_model_that_tuner_did_not_create_keeps_its_champion(tmp_path: Path) -> None:
    uri, storage = _uris(tmp_path)
    client = _client(uri)
    client.create_registered_model("churn")
    run = client.create_run(client.create_experiment("elsewhere"))
    client.log_text(run.info.run_id, "a model", "model.txt")
    version = client.create_model_version("churn", source=f"{run.info.artifact_uri}/model.txt", run_id=run.info.run_id)
    client.set_registered_model_alias("churn", CHAMPION_ALIAS, version.version)
    res = CliRunner().invoke(cli, ["tune", "--dataset", "breast_cancer", "--study", "churn", "--storage", storage,
                                   "--tracking-uri", uri, "--penalty", "l2", "--optimizer", "lbfgs", "--trials", "1"])
    assert res.exit_code == 1 and "registered model named 'churn' that is not a tuner study's" in res.output, res.output
    assert client.get_registered_model("churn").aliases == {CHAMPION_ALIAS: version.version}
    assert len(client.search_model_versions("name='churn'")) == 1


def test_a_study_deleted_and_created_again_under_its_name_gets_its_own_parent_run_and_champion(
        tmp_path: Path) -> None:
    """The new study found the old one's parent run by name: its trials went beside the old trials
    of the same numbers, and a better old champion (trained on other data) kept the alias."""
    from tuner.tracking import VIEW_KEY

    uri, storage = _uris(tmp_path)
    runner = CliRunner()
    base = ["--study", "again", "--storage", storage, "--tracking-uri", uri, "--penalty", "l2", "--optimizer", "lbfgs",
            "--trials", "2", "--json"]
    # first the easier data (its champion's validation log loss is far lower), then iris
    res = runner.invoke(cli, ["tune", "--dataset", "breast_cancer", *base])
    assert res.exit_code == 0, res.output
    first_uid = optuna.load_study(study_name="again", storage=storage).user_attrs["uid"]
    assert runner.invoke(cli, ["study", "delete", "again", "--storage", storage, "--yes"]).exit_code == 0
    res = runner.invoke(cli, ["tune", "--dataset", "iris", *base])
    assert res.exit_code == 0, res.output
    second_uid = optuna.load_study(study_name="again", storage=storage).user_attrs["uid"]
    assert second_uid != first_uid
    client = _client(uri)
    parents, children = _runs(client, "again")
    assert sorted(p.data.tags["tuner.study_uid"] for p in parents) == sorted([first_uid, second_uid])
    (new_parent,) = [p for p in parents if p.data.tags["tuner.study_uid"] == second_uid]
    mine = [c for c in children if c.data.tags.get("mlflow.parentRunId") == new_parent.info.run_id]
    assert sorted(int(c.data.tags["tuner.trial"]) for c in mine) == [0, 1]
    champion = client.get_model_version_by_alias("again", CHAMPION_ALIAS)
    assert champion.tags["tuner.study_uid"] == second_uid  # iris's model, though breast_cancer's loss was lower
    assert champion.run_id in {c.info.run_id for c in mine}
    # The trial runs say which study they belong to, and the UI's trials view and the lookups of a
    # trial's runs (a lost trial's, the best one's) find this study's only, not the old trial-0000.
    assert {c.data.tags.get("tuner.study_uid") for c in mine} == {second_uid}
    assert {c.data.tags.get("tuner.study_uid") for c in children if c not in mine} == {first_uid}
    exp = client.get_experiment_by_name("again")
    view = json.loads(exp.tags[f"mlflow.sharedViewState.{VIEW_KEY}"])
    shown = client.search_runs([exp.experiment_id], filter_string=view["searchFilter"], max_results=100)
    assert sorted(r.info.run_id for r in shown) == sorted(c.info.run_id for c in mine)
    obs = MlflowObserver(uri, plots=False, register_model=False, background=False)
    study = optuna.load_study(study_name="again", storage=storage)
    obs.on_study_start(StudyInfo("again", storage, json.loads(study.user_attrs["spec"]), "minimize", "log_loss",
                                 dict(study.user_attrs)))
    for number in (0, 1):
        (found,) = obs.studies.trial_runs(obs.study_run("again"), number)
        assert found.data.tags["mlflow.parentRunId"] == new_parent.info.run_id
    obs.close()


def test_a_study_name_mlflow_cannot_register_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """MLflow refuses '/' and ':' in model names: the study ran, then its registration failed at the
    end (every time, on each resume and sync), leaving the parent run RUNNING."""
    import tuner
    from tuner.errors import ConfigError

    uri, storage = _uris(tmp_path)
    res = CliRunner().invoke(cli, ["tune", "--dataset", "iris", "--study", "team/bc", "--trials", "1",
                                   "--storage", storage, "--tracking-uri", uri])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1, res.output
    assert lines[0].startswith("Error: ") and "--study" in lines[0] and "'team-bc'" in lines[0], lines[0]
    with pytest.raises(ConfigError, match=r"'team:bc' cannot be one .*'/' or ':'.*e\.g\. 'team-bc'"):
        tuner.tune(dataset="iris", study_name="team:bc", trials=1, storage=storage, tracking_uri=uri)
    assert not (tmp_path / "studies.db").exists() and not (tmp_path / "mlflow.db").exists()
    # without tracking the name is fine; a sync of that study is refused unless it registers nothing
    assert tuner.tune(dataset="iris", study_name="team/bc", trials=1, epochs=3, storage=storage).n_complete == 1
    with pytest.raises(ConfigError, match="--no-model"):
        sync_study(storage, "team/bc", uri)
    assert not (tmp_path / "mlflow.db").exists()
    assert sync_study(storage, "team/bc", uri, register_model=False)["synced_trials"] == [0]


def test_a_failed_registration_ends_the_parent_run_and_leaves_no_logged_model(tmp_path: Path) -> None:
    """The parent run stayed RUNNING when registering the best model failed, and each attempt left
    a logged model that no version used."""
    uri, info, outcome, obs = _registering_study(tmp_path, "noreg")
    client = _client(uri)
    models = tmp_path / "mlartifacts" / "noreg" / "models"
    models.write_text("a file where MLflow wants the logged models' folder")
    best = TrialInfo(0, "l2", "lbfgs", {"variant": "l2:lbfgs"}, {"strength": 1e-3}, {}, value=0.3)
    history = [{"number": 0, "state": "COMPLETE", "value": 0.3, "params": {"variant": "l2:lbfgs"}}]
    attrs = obs.on_study_end(info, best, outcome, history)
    assert attrs["mlflow_study_logged"] is False and "mlflow_model_version" not in attrs
    parent = client.get_run(obs.study_run("noreg").parent_run_id)
    assert parent.info.status == "FAILED", parent.info.status
    assert parent.data.tags["tuner.reason"].startswith("registering the best model failed: ")
    exp_id = obs.study_run("noreg").experiment_id
    assert client.search_logged_models([exp_id]) == []
    # once the cause is gone, the next end (a resume, a sync) registers it: one model, one version
    models.unlink()
    obs.on_study_start(info)
    attrs = obs.on_study_end(info, best, outcome, history)
    assert attrs["mlflow_model_version"] == "1"
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    assert len(client.search_logged_models([exp_id])) == 1
    obs.close()


class _BuggyObserver(StudyObserver):
    """An observer with a bug (a KeyError, not a TunerError) when its second trial ends."""

    def on_trial_end(self, study: StudyInfo, trial: TrialInfo, state: str, value: float | None, outcome: Any,
                     reason: str | None) -> dict[str, Any]:
        if trial.number == 1:
            raise KeyError("a bug in an observer")
        return {}


def test_an_unexpected_error_ends_the_parent_run_failed_with_the_reason(tmp_path: Path) -> None:
    """Only TunerErrors ended the parent run: a KeyError (a bug, a MemoryError) left it RUNNING."""
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("iris"), ["l2"], ["lbfgs"], sampler="random", pruner="none", n_trials=4,
                     train={"epochs": 3})
    with pytest.raises(KeyError, match="a bug in an observer"):
        run_study(spec, "buggy", storage, observers=[MlflowObserver(uri, plots=False), _BuggyObserver()])
    (parent,), children = _runs(_client(uri), "buggy")
    assert parent.info.status == "FAILED", parent.info.status
    assert parent.data.tags["tuner.reason"] == "KeyError: 'a bug in an observer'"
    assert all(r.info.status != "RUNNING" for r in children)


class _BreakArtifacts(StudyObserver):
    """Once tracking has opened the study, its artifact folder becomes a file: every trial's weights
    (and so its end) fail to reach MLflow, as with a server that went away."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        self.folder.rename(self.folder.with_name("away"))
        self.folder.write_text("not a folder")
        return {}


@pytest.mark.parametrize("ending", ["sigterm", "all_pruned", "failed"])
def test_a_study_that_stops_early_records_the_trials_mlflow_missed_as_one_that_ends(
        tmp_path: Path, ending: str, caplog: pytest.LogCaptureFixture) -> None:
    """on_study_stop returned nothing: a study interrupted, failed or with every trial pruned kept no
    mlflow_unlogged_trials and said nothing, so the trials MLflow missed were forgotten."""
    import signal

    import tuner

    uri, storage = _uris(tmp_path)
    options: dict[str, Any] = dict(dataset="breast_cancer", penalty="l2", optimizer="lbfgs", trials=3, epochs=20,
                                   sampler="random", pruner="none", batch_trials=1)
    observers: list[StudyObserver] = [_BreakArtifacts(tmp_path / "mlartifacts" / "stops")]
    progress = None
    if ending == "sigterm":
        def progress(p: dict[str, Any]) -> None:
            if p["done"] == 1:
                os.kill(os.getpid(), signal.SIGTERM)
    elif ending == "all_pruned":  # not converged in 3 epochs: pruned, with its weights
        options.update(optimizer="adam", epochs=3, params={"penalty.strength": "1e-3"}, trials=2)
    else:
        observers.append(_BuggyObserver())  # a bug when trial 1 ends fails the study
    with caplog.at_level("WARNING", logger="tuner.tracking"):
        if ending == "failed":
            with pytest.raises(KeyError, match="a bug in an observer"):
                tuner.tune(study_name="stops", storage=storage, tracking_uri=uri, observers=observers, **options)
        else:
            result = tuner.tune(study_name="stops", storage=storage, tracking_uri=uri, observers=observers,
                                progress=progress, **options)
            assert result.interrupted == ("SIGTERM" if ending == "sigterm" else None) and result.model_uri is None
    study = optuna.load_study(study_name="stops", storage=storage)
    finished = [t.number for t in study.trials if t.state.is_finished()]
    expected = {"sigterm": [0], "all_pruned": [0, 1], "failed": [0, 1]}[ending]
    assert finished == expected
    assert study.user_attrs["mlflow_unlogged_trials"] == expected  # what sync-mlflow will log
    said = f"MLflow did not record {len(expected)} trial(s)"
    if ending == "failed":  # no summary to say it in
        assert any(said in r.getMessage() and "sync-mlflow stops" in r.getMessage() for r in caplog.records)
    else:
        assert any(w.startswith(said) and "sync-mlflow stops" in w for w in result.warnings), result.warnings
    assert _runs(_client(uri), "stops")[0][0].info.status != "RUNNING"


def test_processes_ending_on_the_same_best_trial_register_it_once(tmp_path: Path) -> None:
    """`tuner tune` and a `tuner worker` ending together both registered trial 0 (versions 1 and 2);
    the alias stayed on 1 while one of them printed version 2."""
    import threading

    uri, info, outcome, first = _registering_study(tmp_path, "twice")
    info.user_attrs["uid"] = "study-uid"
    first.on_study_start(info)
    second = MlflowObserver(uri, plots=False)
    second.on_study_start(info)
    client = _client(uri)
    for number, value in ((0, 0.30), (2, 0.20)):
        best = TrialInfo(number, "l2", "lbfgs", {"variant": "l2:lbfgs"}, {"strength": 1e-3}, {}, value=value)
        history = [{"number": number, "state": "COMPLETE", "value": value, "params": {"variant": "l2:lbfgs"}}]
        together = threading.Barrier(2)
        said: list[dict[str, Any]] = []

        def end(obs: MlflowObserver, best: TrialInfo, history: list[dict[str, Any]], together: threading.Barrier,
                said: list[dict[str, Any]]) -> None:
            together.wait()  # both check the registry before either registers: the race
            said.append(obs.on_study_end(info, best, outcome, history))

        threads = [threading.Thread(target=end, args=(o, best, history, together, said)) for o in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        versions = [v for v in client.search_model_versions("name='twice'") if v.tags["tuner.trial"] == str(number)]
        assert len(versions) == 1, [(v.version, v.tags["tuner.trial"]) for v in versions]
        champion = client.get_model_version_by_alias("twice", CHAMPION_ALIAS)
        assert champion.version == versions[0].version and champion.tags["tuner.trial"] == str(number)
        for attrs in said:  # what each process prints is the version @champion points to
            assert attrs["mlflow_model_version"] == attrs["mlflow_champion_version"] == str(champion.version), said
    exp_id = first.study_run("twice").experiment_id
    assert len(client.search_logged_models([exp_id])) == 2  # the duplicate's logged model is gone too
    first.close()
    second.close()


def test_sync_finishes_an_incomplete_run_in_place_so_every_pointer_to_it_holds(tmp_path: Path) -> None:
    """sync-mlflow deleted the incomplete run of a trial and logged a new one: the trial's
    mlflow_run_id (and so what `study show` links) pointed to a deleted run."""
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["lbfgs"], sampler="random", pruner="none", n_trials=3,
                     train={"epochs": 20})
    study, _, _ = open_or_create_study(spec, "half", storage)
    for strength in (1.0, 0.5, 1e-3):  # the last trial is the best
        study.enqueue_trial({"variant": "l2:lbfgs", "penalty.strength": strength})
    obs = MlflowObserver(uri, plots=False)
    folder = tmp_path / "mlartifacts" / "half"

    def progress(p: dict[str, Any]) -> None:
        if p["done"] == 2:  # trials 0 and 1 are logged; the last one's weights and end cannot be
            obs.flush()
            folder.rename(tmp_path / "away")
            folder.write_text("not a folder")

    run_study(spec, "half", storage, observers=[obs], progress=progress)
    folder.unlink()
    (tmp_path / "away").rename(folder)
    study = optuna.load_study(study_name="half", storage=storage)
    last = study.trials[2]
    assert study.user_attrs["mlflow_unlogged_trials"] == [2] and last.value == study.best_value
    client = _client(uri)
    assert client.get_run(last.user_attrs["mlflow_run_id"]).info.status == "RUNNING"  # what a lost server leaves

    summary = sync_study(storage, "half", uri)
    assert summary["synced_trials"] == [2] and summary["already_logged"] == 2
    (parent,), children = _runs(client, "half")
    (run,) = [r for r in children if r.data.tags["tuner.trial"] == "2"]
    assert run.info.run_id == last.user_attrs["mlflow_run_id"]  # the same run, finished in place
    assert run.info.status == "FINISHED" and run.data.tags["tuner.logged"] == "true"
    assert run.data.metrics["val_log_loss"] == pytest.approx(last.value)
    assert parent.data.tags["tuner.best_run_id"] == run.info.run_id
    assert client.get_model_version_by_alias("half", CHAMPION_ALIAS).run_id == run.info.run_id
    obs.close()


@pytest.mark.parametrize("cv", [0, 3])
def test_a_synced_trial_run_holds_what_the_live_run_holds_under_the_same_names(tmp_path: Path, cv: int) -> None:
    """Synced runs logged the per-epoch metric as epoch/val_log_loss (live: epoch/val_loss), the
    folds' scores of cross-validation as epochs 0, 1, 2, and a tuner.value tag on pruned trials."""
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["lbfgs", "fista"], sampler="random", pruner="median", seed=1,
                     n_trials=10, train={"epochs": 10}, cv=cv)
    run_study(spec, "live", storage, observers=[MlflowObserver(uri, plots=False, register_model=False)])
    run_study(spec, "later", storage)
    sync_study(storage, "later", uri, register_model=False)
    client = _client(uri)
    live = {int(r.data.tags["tuner.trial"]): r for r in _runs(client, "live")[1]}
    later = {int(r.data.tags["tuner.trial"]): r for r in _runs(client, "later")[1]}
    states = {t.number: t.state for t in optuna.load_study(study_name="later", storage=storage).trials}
    if not cv:
        assert TrialState.PRUNED in states.values()
    for n, synced in later.items():
        ran = live[n]
        assert synced.data.tags["tuner.state"] == ran.data.tags["tuner.state"] == states[n].name
        assert ("tuner.value" in synced.data.tags) == ("tuner.value" in ran.data.tags), (n, states[n])
        epochs = {k for k in synced.data.metrics if k.startswith(EPOCH_PREFIX)}
        assert epochs <= {k for k in ran.data.metrics if k.startswith(EPOCH_PREFIX)}, (n, epochs)
        for key in epochs:  # the same points, epoch by epoch
            got = {m.step: m.value for m in client.get_metric_history(synced.info.run_id, key)}
            assert got == pytest.approx({m.step: m.value for m in client.get_metric_history(ran.info.run_id, key)})
        if "epochs_run" in synced.data.metrics:
            assert synced.data.metrics["epochs_run"] == ran.data.metrics["epochs_run"]


def test_a_cross_validated_trial_run_holds_the_value_the_study_ranks_it_by(tmp_path: Path) -> None:
    """With --cv a run's val_log_loss is the validation split's score while the study ranks by the
    mean over folds: the view sorted on val_log_loss put another trial first than the champion.
    Live and synced runs hold cv_<metric> (the trial's value) and each fold's score; the view sorts on it."""
    import json

    from tuner.tracking._links import VIEW_TAG

    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["lbfgs"], sampler="random", pruner="none", seed=0,
                     n_trials=3, train={"epochs": 20}, cv=3)
    run_study(spec, "live", storage, observers=[MlflowObserver(uri, plots=False, register_model=False)])
    run_study(spec, "later", storage)
    sync_study(storage, "later", uri, register_model=False)
    client = _client(uri)
    for name in ("live", "later"):
        values = {t.number: t.value for t in optuna.load_study(study_name=name, storage=storage).trials}
        folds = {t.number: t.user_attrs["cv_values"] for t in optuna.load_study(study_name=name, storage=storage).trials}
        runs = _runs(client, name)[1]
        assert len(runs) == 3
        for r in runs:
            n = int(r.data.tags["tuner.trial"])
            assert r.data.metrics["cv_log_loss"] == pytest.approx(values[n], rel=1e-12), (name, n)
            assert [r.data.metrics[f"cv_fold{i}_log_loss"] for i in (1, 2, 3)] == pytest.approx(folds[n], rel=1e-12)
            assert r.data.metrics["val_log_loss"] != pytest.approx(values[n])  # the split's score, kept beside it
        experiment = client.get_experiment_by_name(name)
        view = json.loads(experiment.tags[VIEW_TAG])
        assert view["orderByKey"] == "metrics.`cv_log_loss`" and view["orderByAsc"] is True


def test_a_pruned_cross_validated_trial_never_ranks_in_the_view(tmp_path: Path) -> None:
    """Pruned trials logged cv_<metric>, the name the --cv view sorts on: a trial pruned as not
    converged (0.132) sorted above the best complete one (0.154), live and synced."""
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("breast_cancer"), ["l2"], ["sgd", "lbfgs"], seed=1, n_trials=8, cv=3)
    run_study(spec, "live", storage, observers=[MlflowObserver(uri, plots=False, register_model=False)])
    run_study(spec, "later", storage)
    sync_study(storage, "later", uri, register_model=False)
    client = _client(uri)
    for name in ("live", "later"):
        states = {t.number: t.state.name for t in optuna.load_study(study_name=name, storage=storage).trials}
        assert "PRUNED" in states.values() and "COMPLETE" in states.values(), states
        for r in _runs(client, name)[1]:
            state = states[int(r.data.tags["tuner.trial"])]
            ranked = [k for k in r.data.metrics if k.startswith("cv_")]
            assert bool(ranked) == (state == "COMPLETE"), (name, state, sorted(r.data.metrics))
            if state == "PRUNED":
                assert "pruned_at_cv_log_loss" in r.data.metrics, (name, sorted(r.data.metrics))


def test_saving_a_model_prints_nothing_of_mlflow_s_own(tmp_path: Path) -> None:
    """Every tracked `tuner tune` printed "INFO mlflow.pyfunc: Validating input example against model
    signature" among its summary lines."""
    code = textwrap.dedent(f"""
        from tuner.data import load_data, prepare
        from tuner.model import save_pyfunc_model
        from tuner.study import train_one
        from tuner.train import TrainConfig
        ds = prepare(load_data(dataset="iris"), seed=0)
        model = train_one(ds, "l2", "lbfgs", {{"strength": 1e-3}}, {{}}, TrainConfig(epochs=5)).model
        save_pyfunc_model(model, {str(tmp_path / "m")!r})
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m" / "MLmodel").is_file()
    assert "mlflow" not in proc.stderr + proc.stdout, proc.stderr


def test_a_table_of_integer_columns_saves_without_mlflow_s_hint_and_serves_floats(tmp_path: Path) -> None:
    """kddcup99's counts are integer columns: every tracked study printed MLflow's UserWarning that
    integer columns cannot hold missing values, although the saved signature takes any number."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"count": rng.integers(0, 50, 200), "bytes": rng.integers(0, 10_000, 200)})
    frame["label"] = np.where(frame["count"] > 25, "attack", "normal")
    frame.to_csv(tmp_path / "t.csv", index=False)
    code = textwrap.dedent(f"""
        from tuner.data import load_data, prepare
        from tuner.model import input_example_of, save_pyfunc_model
        from tuner.study import train_one
        from tuner.train import TrainConfig
        ds = prepare(load_data({str(tmp_path / "t.csv")!r}, target="label"), seed=0)
        model = train_one(ds, "l2", "lbfgs", {{"strength": 1e-3}}, {{}}, TrainConfig(epochs=5)).model
        save_pyfunc_model(model, {str(tmp_path / "m")!r}, input_example=input_example_of(model, ds))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr + proc.stdout, proc.stderr
    served = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    rows = pd.DataFrame({"count": [3.5, 40.0], "bytes": [12.0, 9_000.25]})  # floats in the integer columns
    assert list(served.predict(rows)) == ["normal", "attack"]


def test_a_model_whose_files_were_deleted_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    """With the artifact folder gone, MLflow logged 'No artifacts found to download' and the
    error said the temporary folder was 'neither a saved model folder nor an MLflow model'."""
    import shutil

    import tuner

    monkeypatch.chdir(tmp_path)
    uri, storage = _uris(tmp_path)
    result = tuner.tune(dataset="iris", trials=1, penalty="l2", optimizer="lbfgs", epochs=5, study_name="gone",
                        storage=storage, tracking_uri=uri)
    shutil.rmtree(tmp_path / "mlartifacts")
    capfd.readouterr()
    with pytest.raises(TrackingError, match=r"The files of the model models:/gone/1 are missing from its artifact "
                                            r"store \(file://.+\): deleted or moved\?"):
        tuner.load_model(result.model_uri, tracking_uri=uri)
    assert "No artifacts found" not in capfd.readouterr().err


def test_study_show_says_when_mlflow_is_behind_the_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a resume without tracking found a better trial, `study show` still printed the old
    champion as the study's model, and nothing about trials missing from MLflow."""
    import tuner

    monkeypatch.chdir(tmp_path)
    uri, storage = _uris(tmp_path)
    tuner.tune(dataset="iris", trials=1, penalty="l2", optimizer="lbfgs", epochs=5, study_name="behind",
               storage=storage, tracking_uri=uri)
    study = optuna.load_study(study_name="behind", storage=storage)
    first = study.trials[0]
    assert study.user_attrs["mlflow_champion_trial"] == 0
    study.add_trial(optuna.trial.create_trial(  # what a resume with --no-tracking finds: a better trial
        state=TrialState.COMPLETE, value=first.value / 2, params=first.params, distributions=first.distributions,
        user_attrs={k: v for k, v in first.user_attrs.items() if not k.startswith("mlflow")},
        intermediate_values=first.intermediate_values))

    def show() -> tuple[str, dict[str, Any]]:
        text = CliRunner().invoke(cli, ["study", "show", "behind", "--storage", storage, "--tracking-uri", uri])
        js = CliRunner().invoke(cli, ["study", "show", "behind", "--storage", storage, "--tracking-uri", uri, "--json"])
        assert text.exit_code == 0 and js.exit_code == 0, (text.output, js.output)
        return text.output, json.loads(js.stdout)

    out, block = show()
    assert ("note: the champion holds trial #0, but the study's best is #1, not registered: `tuner study "
            "sync-mlflow behind` logs and registers what is missing") in out, out
    assert block["mlflow_behind"] and "#1" in block["mlflow_behind"][0]
    assert sync_study(storage, "behind", uri)["model"]
    out, block = show()
    assert "note:" not in out and block["mlflow_behind"] == [], out


def test_study_show_counts_the_trials_a_resume_without_tracking_ran(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """After a resume with --no-tracking, `study show` spoke at most of a better trial not yet
    registered, never of the trials MLflow lacked (every one the resume ran: a sync logged them);
    a resume that found no better trial got no note at all."""
    import tuner

    monkeypatch.chdir(tmp_path)
    uri, storage = _uris(tmp_path)
    common = dict(dataset="iris", penalty="l2", optimizer="lbfgs", epochs=5, study_name="untracked", storage=storage)
    tuner.tune(trials=2, tracking_uri=uri, **common)  # type: ignore[arg-type]
    tuner.tune(trials=5, tracking_uri=None, **common)  # type: ignore[arg-type]
    js = CliRunner().invoke(cli, ["study", "show", "untracked", "--storage", storage, "--json"])
    assert js.exit_code == 0, js.output
    behind = json.loads(js.stdout)["mlflow_behind"]
    assert behind and behind[0].startswith("3 finished trial(s) are not in MLflow"), behind
    assert sorted(sync_study(storage, "untracked", uri)["synced_trials"]) == [2, 3, 4]
    js = CliRunner().invoke(cli, ["study", "show", "untracked", "--storage", storage, "--json"])
    assert json.loads(js.stdout)["mlflow_behind"] == []
    never = dict(common, study_name="never")
    tuner.tune(trials=2, tracking_uri=None, **never)  # type: ignore[arg-type]
    assert "mlflow_unlogged_trials" not in optuna.load_study(study_name="never", storage=storage).user_attrs
    # an MlflowObserver of the caller's own logs every trial: none is missing (it said [2, 3] were)
    own = dict(common, study_name="own")
    for trials in (2, 4):
        tuner.tune(trials=trials, tracking_uri=None, observers=[MlflowObserver(uri, plots=False, register_model=False)],
                   **own)  # type: ignore[arg-type]
    assert not optuna.load_study(study_name="own", storage=storage).user_attrs.get("mlflow_unlogged_trials")


def test_predict_with_a_bare_study_name_points_at_its_registered_model(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`tuner predict churn rows.csv` said only that churn is neither a model folder nor an MLflow model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    res = CliRunner().invoke(cli, ["predict", "churn", "rows.csv"])
    assert res.exit_code == 1
    assert res.output.splitlines()[-1] == ("Error: churn is not a folder here; a study's best model is the registered "
                                           "model models:/churn@champion (and a version: models:/churn/1).")


def test_sync_says_which_trials_it_cannot_end(tmp_path: Path) -> None:
    """After a worker was killed, sync-mlflow said it logged everything while the killed trial's
    run stayed RUNNING in MLflow."""
    uri, storage = _uris(tmp_path)
    spec = StudySpec(_data("wine"), ["l2"], ["lbfgs"], sampler="random", pruner="none", n_trials=2,
                     train={"epochs": 5})
    run_study(spec, "cut", storage)
    optuna.load_study(study_name="cut", storage=storage).ask()  # a trial its process never ended
    res = CliRunner().invoke(sync_mlflow, ["cut", "--storage", storage, "--tracking-uri", uri], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "1 trial(s) still RUNNING in the study" in res.output
    assert "their MLflow runs stay RUNNING until then" in res.output
    summary = json.loads(CliRunner().invoke(sync_mlflow, ["cut", "--storage", storage, "--tracking-uri", uri,
                                                          "--json"]).stdout)
    assert summary["running_trials"] == 1


def test_a_process_that_ran_no_trial_leaves_the_parent_run_as_it_found_it(tmp_path: Path) -> None:
    """A worker started on a spent study (nothing to run) and stopped by SIGTERM turned the
    FINISHED parent run of the complete study KILLED, reason 'interrupted by SIGTERM'."""
    uri, storage = _uris(tmp_path)
    spec = StudySpec(DataSpec(dataset="iris"), ["l2"], ["lbfgs"])
    info = StudyInfo("spent", storage, json.loads(spec.to_json()), "minimize", "log_loss")
    first = MlflowObserver(uri, plots=False, register_model=False, background=False)
    attrs = first.on_study_start(info)
    first.on_trial_start(info, TrialInfo(0, "l2", "lbfgs", {"variant": "l2:lbfgs"}, {"strength": 1e-3}, {}))
    first.on_study_stop(info, "FINISHED", None)
    first.close()
    client = _client(uri)
    assert client.get_run(attrs["mlflow_parent_run_id"]).info.status == "FINISHED"
    idle = MlflowObserver(uri, plots=False, register_model=False, background=False)
    idle.on_study_start(info)  # joins: RUNNING while it works
    assert client.get_run(attrs["mlflow_parent_run_id"]).info.status == "RUNNING"
    idle.on_study_stop(info, "KILLED", "interrupted by SIGTERM")
    idle.close()
    parent = client.get_run(attrs["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED" and "tuner.reason" not in parent.data.tags
    busy = MlflowObserver(uri, plots=False, register_model=False, background=False)
    busy.on_study_start(info)
    busy.on_trial_start(info, TrialInfo(1, "l2", "lbfgs", {"variant": "l2:lbfgs"}, {"strength": 1e-2}, {}))
    busy.on_study_stop(info, "KILLED", "interrupted by SIGTERM")  # one that trained: the study was interrupted
    busy.close()
    parent = client.get_run(attrs["mlflow_parent_run_id"])
    assert parent.info.status == "KILLED" and parent.data.tags["tuner.reason"] == "interrupted by SIGTERM"
