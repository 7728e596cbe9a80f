"""Study runs that must never give a silent wrong answer (issue 9): resume, exit codes,
rejected starts, killed workers and signals. Real SQLite stores, real MLflow stores, real
subprocesses and real signals."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from tuner.cli import cli

FAST = ["--epochs", "20", "--no-tracking"]
PAIR = ["--penalty", "l2", "--optimizer", "lbfgs"]


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def tune(tmp_path: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["tune", "--storage", _url(tmp_path), *args])
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.stdout if "--json" in args and res.exit_code == 0 else res.output


def trials(tmp_path: Path, name: str) -> list[Any]:
    return optuna.load_study(study_name=name, storage=_url(tmp_path)).trials


def study_names(tmp_path: Path) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(_url(tmp_path), include_best_trial=False)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- 1. resume ------------------------------------------------------------------------------
def test_resume_refuses_every_explicit_option_that_differs_from_the_stored_study(tmp_path: Path) -> None:
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "s", "--trials", "2", *PAIR, *FAST)
    assert code == 0, out
    for args in (["--penalty", "none", "--metric", "accuracy"],  # no data argument: used to be ignored
                 ["--sampler", "random"], ["--seed", "3"], ["--epochs", "50"], ["--device", "cpu"],
                 ["--param", "optimizer.sgd.lr=0.5"],  # sgd is not in the study
                 ["--dataset", "breast_cancer", "--pruner", "none"]):  # with the data argument too
        code, out = tune(tmp_path, "--study", "s", "--trials", "4", *args, "--no-tracking")
        assert code == 1, (args, out)
        assert "different options" in out and "Only the budget (--trials, --timeout)" in out, out
    assert "penalties: stored ['l2'], now ['none']" in tune(
        tmp_path, "--study", "s", "--penalty", "none", "--metric", "accuracy", "--no-tracking")[1]
    # an index base for data that is not LIBSVM was taken without a word (None read as 'not recorded
    # yet'); a changed option is named alone, not with every other option of its part
    code, out = tune(tmp_path, "--study", "s", "--trials", "4", "--zero-based", "--no-tracking")
    assert code == 1 and "(data reading, zero_based: stored None, now True)" in " ".join(out.split()), out
    assert len(trials(tmp_path, "s")) == 2  # nothing ran
    # the budget and the output options may change; options equal to the stored ones are fine,
    # and defaults never contradict the stored study (with or without the data argument)
    code, out = tune(tmp_path, "--study", "s", "--trials", "3", "--penalty", "l2", "--epochs", "20", "--json",
                     "--no-tracking")
    assert code == 0, out
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "s", "--trials", "4", "--json",
                     "--no-tracking")
    assert code == 0, out
    assert json.loads(out)["trials"]["complete"] + json.loads(out)["trials"]["pruned"] == 4


def test_lowering_a_larger_stored_budget_says_what_it_was(tmp_path: Path) -> None:
    """With 6 stored and 3 finished, `--trials 1` stores 3 but said 'its budget stays 3'."""
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "b6", "--trials", "3", *PAIR, *FAST)
    assert code == 0, out
    tune(tmp_path, "--study", "b6", "--trials", "6", "--timeout", "0.001", "--no-tracking")  # stores 6, runs ~none
    shown = CliRunner().invoke(cli, ["study", "show", "b6", "--storage", _url(tmp_path)])
    assert "budget 6 trials" in shown.output, shown.output
    done = len([t for t in trials(tmp_path, "b6") if t.state.name in ("COMPLETE", "PRUNED")])
    code, out = tune(tmp_path, "--study", "b6", "--trials", "1", "--no-tracking")
    assert code == 0 and f"its budget is now {done} (it was 6)" in " ".join(out.split()), out


def test_a_run_whose_budget_another_process_lowered_says_so(tmp_path: Path) -> None:
    """A second resume with a lower 'trials' cut a running one short: its summary still said budget
    12 and no warning."""
    from tuner.study import DataSpec, StudySpec, run_study

    url = _url(tmp_path)
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l2"], optimizers=["lbfgs"], n_trials=12,
                     seed=0)

    def another_process_resumes_with_fewer(info: dict) -> None:  # what a resume with --trials 4 stores
        if info["done"] == 2:
            study = optuna.load_study(study_name="cut", storage=url)
            lowered = StudySpec.from_json(study.user_attrs["spec"])
            lowered.n_trials = 4
            study.set_user_attr("spec", lowered.to_json())

    result = run_study(spec, "cut", url, progress=another_process_resumes_with_fewer, batch_trials=1)
    assert result.budget == 4 and sum(result.counts[k] for k in ("complete", "pruned")) == 4
    assert any("another process changed the study's budget from 12 to 4 trials" in w and "stopped with 4 finished" in w
               for w in result.warnings), result.warnings


def test_waiting_for_a_lost_trial_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """A resume after a killed worker waited out the heartbeat grace period (30 s) without a word."""
    import logging
    import warnings

    from tuner.study import DataSpec, StudySpec, run_study

    monkeypatch.setenv("TUNER_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TUNER_HEARTBEAT_GRACE", "2")
    url = _url(tmp_path)
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l2"], optimizers=["lbfgs"], n_trials=2,
                     seed=0)
    run_study(spec, "lost", url, n_trials=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna: a trial asked without a heartbeat thread
        lost = optuna.load_study(study_name="lost", storage=url).ask()  # a worker killed right after asking
    with caplog.at_level(logging.WARNING, logger="tuner.study"):
        result = run_study(None, "lost", url, n_trials=2, resume_only=True)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Waiting for trial(s)")]
    assert said == [f"Waiting for trial(s) #{lost.number}, which hold the rest of the budget: they run in another "
                    "process, or a lost worker left them (failed and retried once its heartbeat is 2 s old)."]
    assert result.counts["complete"] == 2 and result.counts["fail"] == 1


def test_lowering_the_budget_below_the_finished_trials_says_so(tmp_path: Path) -> None:
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "b", "--trials", "3", *PAIR, *FAST)
    assert code == 0, out
    code, out = tune(tmp_path, "--study", "b", "--trials", "1", "--no-tracking")
    assert code == 0 and "3 finished trials, more than the 1 asked for" in out, out
    assert "its budget stays 3" in out, out
    assert len(trials(tmp_path, "b")) == 3
    # the stored budget never reads less than the trials the study holds: a later run without
    # --trials, and study show, see 3, not 1
    shown = CliRunner().invoke(cli, ["study", "show", "b", "--storage", _url(tmp_path)])
    assert shown.exit_code == 0 and "budget 3 trials" in shown.output, shown.output


def test_train_refuses_a_param_for_another_optimizer(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["train", "--dataset", "breast_cancer", "--penalty", "l2", "--optimizer", "adam",
                                   "--param", "optimizer.sgd.lr=0.5", "--epochs", "2"])
    assert res.exit_code == 1 and "'optimizer.sgd.lr' is for optimizer 'sgd'" in res.output, res.output
    res = CliRunner().invoke(cli, ["train", "--dataset", "breast_cancer", "--penalty", "l2", "--optimizer", "adam",
                                   "--param", "optimizer.adam.lr=0.05", "--epochs", "2", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["optimizer_params"]["lr"] == 0.05, res.output


# ---- 2. exit codes --------------------------------------------------------------------------


def test_a_study_whose_trials_all_fail_exits_non_zero_with_the_first_reason(tmp_path: Path, boom: None) -> None:
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "f", "--trials", "20", "--penalty", "l2",
                     "--optimizer", "boom", *FAST)
    assert code == 1, out
    assert "Every trial of study 'f' failed" in out and "RuntimeError: boom: this optimizer always fails" in out
    assert len(trials(tmp_path, "f")) == 3  # it stops after a few failures in a row, not after 20


def test_a_negative_budget_is_refused_not_run_as_nothing(tmp_path: Path) -> None:
    for args, message in ((["--trials", "-1"], "--trials must be an integer >= 0; got -1"),
                          (["--timeout", "0"], "--timeout must be a number of seconds > 0")):
        code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "n", *args, *PAIR, *FAST)
        assert code == 1 and message in out, out
    assert study_names(tmp_path) == []


def test_a_study_whose_trials_were_all_pruned_has_no_answer_and_says_so(tmp_path: Path) -> None:
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "p", "--trials", "3", "--penalty", "l2",
                     "--optimizer", "sgd", "--param", "optimizer.lr=1e3", "--param", "penalty.strength=1e-2",
                     "--epochs", "10", "--no-tracking")
    assert code == 1, out
    assert "No trial of study 'p' completed: all 3 finished ones were pruned; the first, #0: diverged" in out
    # a resume or a worker that runs no trial (the budget is spent) has no answer either: it said exit 0
    code, out = tune(tmp_path, "--study", "p", "--trials", "3", "--no-tracking")
    assert code == 1 and "No trial of study 'p' completed: all 3 finished ones were pruned" in out, out


def test_a_one_class_validation_split_is_an_error_before_any_trial(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "rare.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x1", "x2", "x3", "label"])
        for row, label in zip(rng.normal(size=(40, 3)), ["a"] * 37 + ["b"] * 3):
            w.writerow([*row, label])
    # 4 validation rows, all of class 'a': roc_auc is NaN for every trial, log_loss meaningless
    code, out = tune(tmp_path, str(path), "--target", "label", "--val-size", "0.1", "--study", "r", "--trials", "3",
                     "--metric", "roc_auc", *PAIR, *FAST)
    assert code == 1 and "validation split (4 rows) holds a single class ('a')" in out, out
    assert study_names(tmp_path) == []


# ---- 3. a refused start leaves nothing behind --------------------------------------------
def test_a_rejected_start_stores_nothing_and_the_corrected_retry_works(tmp_path: Path) -> None:
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "x", "--trials", "2", "--device", "bogus",
                     *PAIR, *FAST)
    assert code == 1 and "--device must be" in out, out
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "x", "--trials", "2", "--tracking-uri",
                     f"http://127.0.0.1:{_free_port()}", "--epochs", "20", *PAIR)
    assert code == 1 and "Cannot reach the MLflow tracking server" in out, out
    assert study_names(tmp_path) == []
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "x", "--trials", "2", "--device", "cpu",
                     *PAIR, *FAST)
    assert code == 0, out


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_fails_before_any_trial(tmp_path: Path) -> None:
    code, out = tune(tmp_path, "--dataset", "breast_cancer", "--study", "c", "--trials", "2", "--device", "cuda",
                     *PAIR, *FAST)
    assert code == 1 and "no CUDA device is available" in out, out
    assert study_names(tmp_path) == []


# ---- 5. a killed worker, 6. signals -----------------------------------------------------
def _popen(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuner.cli", "tune", "--storage", _url(tmp_path), *args],
                            cwd=tmp_path, env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(tmp_path: Path, name: str, proc: subprocess.Popen, ready: Any, limit: float = 180) -> list[Any]:
    deadline = time.time() + limit
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            ts = optuna.load_study(study_name=name, storage=_url(tmp_path)).get_trials(deepcopy=False)
            if ready(ts):
                return ts
        except KeyError:
            pass
        time.sleep(0.2)
    raise AssertionError("the study did not get there in time")


SLOW = ["--penalty", "l2", "--optimizer", "sgd", "--epochs", "300", "--patience", "300", "--pruner", "none"]


def test_a_killed_workers_trial_is_shown_stale_then_failed_with_a_reason_and_retried_once(tmp_path: Path) -> None:
    env = {"TUNER_HEARTBEAT_INTERVAL": "1", "TUNER_HEARTBEAT_GRACE": "2"}
    proc = _popen(tmp_path, "--dataset", "breast_cancer", "--study", "k", "--trials", "50", *SLOW, "--no-tracking",
                  env=env)
    _wait(tmp_path, "k", proc, lambda ts: any(t.state == TrialState.RUNNING and t.intermediate_values for t in ts))
    proc.kill()
    proc.communicate()
    time.sleep(3)  # past the grace period
    res = CliRunner(env=env).invoke(cli, ["study", "list", "--storage", _url(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["trials"]["running"] == 1 and row["trials"]["stale"] == 1
    res = CliRunner(env=env).invoke(cli, ["study", "show", "k", "--storage", _url(tmp_path)])
    assert "1 running (1 stale" in res.output, res.output
    lost = next(t for t in trials(tmp_path, "k") if t.state == TrialState.RUNNING)
    res = CliRunner(env=env).invoke(cli, ["tune", "--study", "k", "--storage", _url(tmp_path), "--trials", "1",
                                          "--no-tracking", "--json"])
    assert res.exit_code == 0, res.output
    ts = trials(tmp_path, "k")
    assert ts[lost.number].state == TrialState.FAIL
    assert ts[lost.number].user_attrs["fail_reason"].startswith("lost: its worker sent no heartbeat")
    (retry,) = [t for t in ts if t.user_attrs.get("retry_of") == lost.number]
    assert retry.params == lost.params and retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert "fail_reason" not in retry.user_attrs


def test_a_lost_grid_trial_is_retried_at_its_own_point_and_every_point_runs(tmp_path: Path) -> None:
    """The retry of a killed worker's grid trial got a new grid_id: it ran the lost point's
    parameters but marked another point visited, so one point never ran; when the lost point was
    the last one, the retry stayed WAITING and the study said the grid was spent (exit 0)."""
    env = {"TUNER_HEARTBEAT_INTERVAL": "1", "TUNER_HEARTBEAT_GRACE": "2"}
    grid = ["--sampler", "grid", *SLOW, "--param", "penalty.strength=1e-3", "--param", "optimizer.momentum=0",
            "--param", "optimizer.nesterov=false", "--no-tracking"]
    proc = _popen(tmp_path, "--dataset", "breast_cancer", "--study", "g", "--trials", "5", *grid, env=env)
    _wait(tmp_path, "g", proc, lambda ts: any(t.state == TrialState.RUNNING and t.intermediate_values for t in ts))
    proc.kill()
    proc.communicate()
    time.sleep(3)  # past the grace period
    lost = next(t for t in trials(tmp_path, "g") if t.state == TrialState.RUNNING)
    res = CliRunner(env=env).invoke(cli, ["tune", "--study", "g", "--storage", _url(tmp_path), "--trials", "5",
                                          "--no-tracking", "--json"])
    assert res.exit_code in (0, 1), res.output  # 1: every trial pruned as not converged, which is not the point
    ts = trials(tmp_path, "g")
    (retry,) = [t for t in ts if t.user_attrs.get("retry_of") == lost.number]
    assert retry.system_attrs["grid_id"] == lost.system_attrs["grid_id"] and retry.params == lost.params
    done = [t for t in ts if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    lrs = {t.params["optimizer.lr"] for t in done}
    assert len(done) == 5 and len(lrs) == 5, [(t.number, t.state, t.params) for t in ts]
    assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def _mlflow_runs(uri: str, study: str) -> tuple[list[Any], Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name(study)
    return client.search_runs([exp.experiment_id], max_results=100), client


def _logged_models(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT count(*) FROM logged_models").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_final_refit_or_registration_ends_cleanly(tmp_path: Path, signum: int, code: int) -> None:
    """The one trial completes; the signal lands in the refit of the best trial (SIGINT) or while
    the best model is registered (SIGTERM): the parent run is ended, any champion is a whole
    registered model, and the output is one line, no traceback."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = _popen(tmp_path, "--dataset", "breast_cancer", "--study", "z", "--trials", "1", *SLOW,
                  "--tracking-uri", uri)
    _wait(tmp_path, "z", proc, lambda ts: any(t.state == TrialState.COMPLETE for t in ts))
    if signum == signal.SIGTERM:  # wait for the registration of the best model to begin
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not _logged_models(tmp_path / "mlflow.db"):
            time.sleep(0.05)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=180)
    if signum == signal.SIGINT:  # the refit of a 300-epoch sgd fit takes seconds: the signal lands in it
        assert proc.returncode == code, (out, err)
    assert proc.returncode in (code, 0), (out, err)  # 0 only if it had finished before the signal
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    if proc.returncode == code:
        assert f"interrupted by {signal.Signals(signum).name}" in out
    runs, client = _mlflow_runs(uri, "z")
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "study"]
    assert len(parents) == 1 and parents[0].info.status in ("FINISHED", "KILLED") and parents[0].info.end_time
    assert all(r.info.status != "RUNNING" for r in runs)
    try:
        mv = client.get_model_version_by_alias("z", "champion")
    except Exception:
        mv = None
    if mv is not None:  # a champion is always a complete model version
        assert mv.status == "READY" and mv.tags["tuner.trial"] == "0"
        assert client.get_logged_model(mv.model_id).status.name == "READY" if mv.model_id else True


def test_an_interrupt_mid_trial_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    proc = _popen(tmp_path, "--dataset", "breast_cancer", "--study", "i", "--trials", "50", *SLOW, "--no-tracking")
    ts = _wait(tmp_path, "i", proc, lambda ts: any(t.state == TrialState.COMPLETE for t in ts)
               and any(t.state == TrialState.RUNNING and t.intermediate_values for t in ts))
    running = next(t.number for t in ts if t.state == TrialState.RUNNING and t.intermediate_values)
    proc.send_signal(signal.SIGINT)  # mid-trial: it has reported epochs, and a trial here runs 300 of them
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted by SIGINT" in out
    stopped = trials(tmp_path, "i")[running]  # the running trial is failed with the reason
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["fail_reason"] == "interrupted by SIGINT", \
        (stopped.state, stopped.user_attrs)


# ---- made-up study names ----------------------------------------------------------------------
def test_a_made_up_study_name_never_joins_a_study_another_process_started(tmp_path: Path) -> None:
    """Two `tune` runs without --study in the same second make up the same name; the second must
    not silently share the first one's study and budget."""
    from tuner.data import load_data
    from tuner.errors import ConfigError
    from tuner.study import DataSpec, StudySpec, run_study

    def spec() -> StudySpec:
        return StudySpec(DataSpec(dataset="iris", fingerprint=load_data(dataset="iris").fingerprint), ["l2"],
                         ["lbfgs"], sampler="random", pruner="none", n_trials=1, train={"epochs": 5})

    run_study(spec(), "iris-20261128-101500", _url(tmp_path), new_only=True)
    with pytest.raises(ConfigError, match="already exists .*another name \\(the 'study_name' parameter\\)"):
        run_study(spec(), "iris-20261128-101500", _url(tmp_path), new_only=True)
    assert len(trials(tmp_path, "iris-20261128-101500")) == 1
    # a name the user chose is joined as before (that is how workers share a study)
    run_study(spec(), "iris-20261128-101500", _url(tmp_path), n_trials=2)
    assert len(trials(tmp_path, "iris-20261128-101500")) == 2
