"""Several workers sharing one study on a real PostgreSQL server (started by the test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from _postgres import postgres_server
from optuna.trial import TrialState


@pytest.fixture(scope="module")
def pg() -> Iterator[dict[str, str]]:
    with postgres_server() as urls:
        yield urls


def test_workers_share_one_study_on_postgresql(pg: dict[str, str], tmp_path: Path) -> None:
    url = pg["studies"]
    env = dict(os.environ, TUNER_STORAGE=url, TUNER_STUDY="shared", PYTHONUNBUFFERED="1")
    create = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "tune", "--dataset", "breast_cancer", "--study", "shared", "--trials", "0",
         "--penalty", "l2,l1", "--optimizer", "fista", "--epochs", "20", "--no-tracking", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert create.returncode == 0, create.stderr
    study = optuna.load_study(study_name="shared", storage=url)
    spec = json.loads(study.user_attrs["spec"])
    spec["n_trials"] = 10
    study.set_user_attr("spec", json.dumps(spec))
    workers = [subprocess.Popen([sys.executable, "-m", "tuner.cli", "worker", "--no-tracking", "--json"], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
    trials = optuna.load_study(study_name="shared", storage=url).trials
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    # the budget is shared: both workers stop once the study holds 10 finished trials
    assert 10 <= len(finished) <= 11  # one trial may start in each worker just as the other finishes the 10th
    assert len({t.number for t in trials}) == len(trials)
    summaries = [json.loads(out) for out, _ in outputs]
    assert all(s["study"] == "shared" and s["best_value"] is not None for s in summaries)


def test_an_unreachable_postgresql_server_fails_before_any_trial(tmp_path: Path) -> None:
    from _postgres import free_port

    url = f"postgresql+psycopg2://tuner:tuner@127.0.0.1:{free_port()}/studies"
    res = subprocess.run([sys.executable, "-m", "tuner.cli", "tune", "--dataset", "iris", "--storage", url,
                          "--no-tracking"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "Cannot reach the study database" in res.stderr and "Traceback" not in res.stderr
