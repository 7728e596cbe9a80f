"""Several processes on one study (issue 9): exact budgets, distinct trials, a killed worker.

Real subprocesses on fresh stores: SQLite (studies and MLflow) for processes started at once on
one machine, PostgreSQL (tests/_postgres.py) for `tune` plus `tuner worker`s with one SIGKILLed
mid-trial.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from _postgres import postgres_server
from optuna.trial import TrialState

BUDGET = 12
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner.cli", *args]


def _start(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _config(t: Any) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in t.params.items()))


def _check_trials(trials: list[Any]) -> list[Any]:
    """Exactly the budget finished, none left running, no configuration sampled twice."""
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == BUDGET, [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in trials]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    configs = [_config(t) for t in finished]
    assert len(set(configs)) == len(configs), "two processes sampled the same configuration"
    gave_up = [t for t in trials if t.state == TrialState.FAIL and
               not t.user_attrs.get("fail_reason", "").startswith(("budget already spent", "lost:"))]
    assert not gave_up, [(t.number, t.user_attrs) for t in gave_up]
    return finished


def _mlflow_usable(uri: str, study: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name(study)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], max_results=500)
    assert sum(r.data.tags.get("tuner.role") == "trial" for r in runs) >= BUDGET
    assert client.get_model_version_by_alias(study, "champion").status == "READY"


def test_four_tune_processes_started_at_once_share_the_budget_exactly(tmp_path: Path) -> None:
    studies, mlflow_uri = f"sqlite:///{tmp_path / 'studies.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = dict(os.environ, PYTHONUNBUFFERED="1", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    cmd = _cmd("tune", "--dataset", "breast_cancer", "--study", "together", "--trials", str(BUDGET),
               "--penalty", "l2,l1", "--optimizer", "fista", "--epochs", "15", "--storage", studies,
               "--tracking-uri", mlflow_uri)
    procs = [_start(cmd, tmp_path, env) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, (out, err)
        assert "Traceback" not in err, err
    _check_trials(optuna.load_study(study_name="together", storage=studies).trials)
    _mlflow_usable(mlflow_uri, "together")


def test_a_worker_killed_mid_trial_on_postgresql(tmp_path: Path) -> None:
    with postgres_server() as urls:
        env = dict(os.environ, PYTHONUNBUFFERED="1", TUNER_STORAGE=urls["studies"], TUNER_STUDY="shared",
                   MLFLOW_TRACKING_URI=urls["mlflow"], TUNER_HEARTBEAT_INTERVAL="1", TUNER_HEARTBEAT_GRACE="5",
                   MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
        tune = _start(_cmd("tune", "--dataset", "breast_cancer", "--study", "shared", "--trials", str(BUDGET),
                           "--penalty", "l2", "--optimizer", "sgd", "--epochs", "300", "--patience", "300",
                           "--pruner", "none"), tmp_path, env)
        workers = [_start(_cmd("worker"), tmp_path, env) for _ in range(3)]
        victim = workers[0]
        lost = _running_trial_of(victim, urls["studies"], [tune, *workers])
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        for p in (tune, *workers[1:]):
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, (out, err)
        trials = optuna.load_study(study_name="shared", storage=urls["studies"]).trials
        _check_trials(trials)
        dead = trials[lost]
        assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"].startswith("lost: ")
        copies = [t for t in trials if t.user_attrs.get("retry_of") == lost]
        # two survivors may both find the lost trial and queue a copy: the one whose state change
        # lost withdraws its copy (failed, never run, not counted), so exactly one retry runs
        (retry,) = [t for t in copies if not t.user_attrs.get("withdrawn")]
        for t in copies:
            if t is not retry:
                assert t.state == TrialState.FAIL and not t.intermediate_values, (t.number, t.user_attrs)
        assert retry.params == dead.params, (retry.params, dead.params)
        assert retry.state in FINISHED, (retry.state, retry.user_attrs)
        _mlflow_usable(urls["mlflow"], "shared")
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=urls["mlflow"])
        exp = client.get_experiment_by_name("shared")
        runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`tuner.trial` = '{lost}'")
        for r in runs:  # the dead worker's run (if it got as far as creating one) is closed as failed
            if r.data.tags.get("tuner.state") != "COMPLETE":
                assert r.info.status == "FAILED" and r.data.tags["tuner.reason"].startswith("lost: ")


def _running_trial_of(proc: subprocess.Popen, url: str, everyone: list[subprocess.Popen], limit: float = 300) -> int:
    """The number of a trial that ``proc`` is training right now (it reported an epoch)."""
    deadline = time.time() + limit
    storage = optuna.storages.RDBStorage(url)  # one connection pool for all the polling
    while time.time() < deadline:
        for p in everyone:
            assert p.poll() is None, p.communicate()
        try:
            trials = optuna.load_study(study_name="shared", storage=storage).get_trials(deepcopy=False)
        except KeyError:
            trials = []
        for t in trials:
            worker = t.user_attrs.get("worker", f":{proc.pid}")  # (a version that does not say: any)
            if t.state == TrialState.RUNNING and worker.endswith(f":{proc.pid}") and t.intermediate_values:
                return t.number
        time.sleep(0.2)
    raise AssertionError("the worker never ran a trial")
