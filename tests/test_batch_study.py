"""Studies whose trials train side by side (``--batch-trials``), end to end.

Real SQLite study stores and real MLflow stores in ``tmp_path``, the real CLI (click's
CliRunner in this process, or ``python -m tuner.cli`` subprocesses where signals, concurrent
processes or installed plugin packages are involved), the small bundled data sets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from tuner.cli import cli
from tuner.study import GAVE_UP, DataSpec, StudySpec, public_params, run_study
from tuner.tracking import EPOCH_PREFIX

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "logreg-tuner-extras"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _urls(tmp_path: Path) -> tuple[str, str]:
    """(study storage, MLflow tracking URI), both SQLite files in ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'studies.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"


def _invoke(*args: str) -> tuple[int, str]:
    """``tuner ARGS`` in this process: (exit code, output); with ``--json`` and success, stdout alone."""
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.stdout if "--json" in args and res.exit_code == 0 else res.output


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TUNER_DISABLE_PLUGIN_AUTOLOAD")}
    env.update(PYTHONUNBUFFERED="1", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", OMP_NUM_THREADS="1", **extra)
    return env


def _start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuner.cli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _trials(storage: str, study: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage).trials


def _trial_runs(uri: str, study: str) -> dict[int, list[Any]]:
    """The study's trial runs in MLflow, by trial number."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(study)
    assert exp is not None, f"no MLflow experiment named {study}"
    out: dict[int, list[Any]] = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        if r.data.tags.get("tuner.role") == "trial":
            out.setdefault(int(r.data.tags["tuner.trial"]), []).append(r)
    return out


def _describe(trials: list[FrozenTrial]) -> list[tuple]:
    return [(t.number, t.state.name, t.user_attrs.get("fail_reason") or t.user_attrs.get("prune_reason"))
            for t in trials]


def _same_param(logged: str, value: Any) -> bool:
    """An MLflow param (a string) holds the Optuna trial's value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return logged == str(value)
    return float(logged) == pytest.approx(float(value), rel=1e-12)


# --- 1. the budget, and one of everything per trial ------------------------------------


def test_batched_study_spends_the_budget_exactly_with_one_run_and_history_per_trial(tmp_path: Path) -> None:
    # Hyperband (instead of the default median pruner, which waits for 5 complete trials) prunes
    # inside the first batches, so some trials stop early and their history must be shorter.
    storage, uri = _urls(tmp_path)
    code, out = _invoke("tune", "--dataset", "breast_cancer", "--study", "b", "--trials", "10", "--batch-trials", "4",
                        "--optimizer", "sgd,adam,fista", "--epochs", "8", "--pruner", "hyperband",
                        "--storage", storage, "--tracking-uri", uri, "--json")
    assert code == 0, out
    trials = _trials(storage, "b")
    assert len(trials) == 10 and all(t.state in FINISHED for t in trials), _describe(trials)

    # Trials were asked 4 at a time: every trial of a batch started before any of them ended,
    # and the next batch started after the last one ended (one at a time would not overlap).
    for batch in (trials[0:4], trials[4:8], trials[8:10]):
        assert max(t.datetime_start for t in batch) < min(t.datetime_complete for t in batch), \
            [(t.number, t.datetime_start, t.datetime_complete) for t in batch]
    for before, after in ((trials[0:4], trials[4:8]), (trials[4:8], trials[8:10])):
        assert max(t.datetime_complete for t in before) <= min(t.datetime_start for t in after)

    client = MlflowClient(tracking_uri=uri)
    runs = _trial_runs(uri, "b")
    assert sorted(runs) == [t.number for t in trials]
    epochs_of: dict[int, int] = {}
    for t in trials:
        (run,) = runs[t.number]  # exactly one run per trial
        assert run.info.status == RUN_STATUS[t.state.name], (t.number, run.info.status)
        assert run.data.tags["tuner.state"] == t.state.name
        for name, value in public_params(t.params).items():  # MLflow logs the public names
            assert _same_param(run.data.params[name], value), (t.number, name, run.data.params[name], value)
        history = client.get_metric_history(run.info.run_id, EPOCH_PREFIX + "val_loss")
        steps = sorted(m.step for m in history)
        assert steps == list(range(1, len(steps) + 1)), (t.number, steps)  # one point per epoch, none twice
        assert steps == sorted(t.intermediate_values), (t.number, steps, t.intermediate_values)
        epochs_of[t.number] = len(steps)
        if t.state == TrialState.PRUNED:
            reason = t.user_attrs["prune_reason"]
            assert reason and run.data.tags["tuner.reason"]
            pruned_at = re.match(r"pruned at epoch (\d+) ", reason)
            if pruned_at:  # stopped by the pruner: its history ends there
                assert len(steps) == int(pruned_at.group(1)), (t.number, reason, steps)
            else:  # trained to its end, then refused (not converged, diverged)
                assert len(steps) == t.user_attrs["epochs_run"], (t.number, reason, steps)
        else:
            assert "prune_reason" not in t.user_attrs
            assert len(steps) == t.user_attrs["epochs_run"] == int(run.data.metrics["epochs_run"])
            assert run.data.metrics["val_log_loss"] == pytest.approx(t.value, rel=1e-9)
    # Each trial names the trials it trained with (its own batch's, itself among them) and how long that took.
    for batch in (trials[0:4], trials[4:8], trials[8:10]):
        numbers = {t.number for t in batch}
        for t in batch:
            group = t.user_attrs["group"]
            assert t.number in group["trials"] and set(group["trials"]) <= numbers, (t.number, group)
            assert all(trials[n].user_attrs["group"] == group for n in group["trials"]), (t.number, group)
            assert group["seconds"] > 0
    by_pruner = [t.number for t in trials if t.user_attrs.get("prune_reason", "").startswith("pruned at epoch")]
    assert by_pruner, _describe(trials)  # hyperband stopped some trials early ...
    assert min(epochs_of[n] for n in by_pruner) < max(epochs_of.values())  # ... with shorter histories


def test_trials_waiting_for_their_group_keep_beating_past_the_grace_period(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of several groups: the first group trains longer than the heartbeat grace period.
    The trials of the later groups must not be failed as lost while they wait (they were, by
    this very process, once each trial's first heartbeat came at its ask), and the study ends
    with every trial finished."""
    from tuner.study._trial_batches import TrialBatches

    monkeypatch.setenv("TUNER_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TUNER_HEARTBEAT_GRACE", "2")
    train = TrialBatches.train
    groups: list[list[int]] = []

    def slow_first_group(self: TrialBatches, group: Any) -> Any:
        groups.append([p.trial.number for p in group])
        if len(groups) == 1:
            time.sleep(4.0)  # twice the grace period: a slow group on big data
        return train(self, group)

    monkeypatch.setattr(TrialBatches, "train", slow_first_group)
    storage, uri = _urls(tmp_path)
    code, out = _invoke("tune", "--dataset", "breast_cancer", "--study", "hb", "--trials", "6", "--batch-trials", "6",
                        "--penalty", "l2", "--optimizer", "lbfgs,fista", "--epochs", "5", "--pruner", "none",
                        "--storage", storage, "--tracking-uri", uri, "--json")
    assert code == 0, out
    assert len(groups) == 2, groups  # two optimizers: two groups, the second waited
    trials = _trials(storage, "hb")
    assert len(trials) == 6 and all(t.state in FINISHED for t in trials), _describe(trials)
    assert not any("lost" in str(t.user_attrs.get("fail_reason", "")) for t in trials)


def test_groups_not_started_when_the_timeout_runs_out_do_not_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--timeout was checked between batches only: a batch's later groups trained on past it (on a
    large table, a 600 s timeout ran for as long as ten trials take). A group that has started
    finishes, as a running trial does in Optuna; the others fail as given up, not counted, and the
    summary says so."""
    from tuner.study._trial_batches import TrialBatches

    train = TrialBatches.train
    groups: list[list[int]] = []

    def slow_first_group(self: TrialBatches, group: Any) -> Any:
        groups.append([p.trial.number for p in group])
        if len(groups) == 1:
            time.sleep(3.0)  # past the timeout: a slow group on big data
        return train(self, group)

    monkeypatch.setattr(TrialBatches, "train", slow_first_group)
    storage, uri = _urls(tmp_path)
    code, out = _invoke("tune", "--dataset", "breast_cancer", "--study", "late", "--trials", "6", "--batch-trials", "6",
                        "--penalty", "l2", "--optimizer", "lbfgs,fista", "--epochs", "5", "--pruner", "none",
                        "--timeout", "1.5", "--storage", storage, "--tracking-uri", uri)
    assert code == 0, out
    assert len(groups) == 1, groups  # the second group never trained
    trials = _trials(storage, "late")
    trained = {t.number for t in trials if t.state == TrialState.COMPLETE}
    skipped = [t for t in trials if t.state == TrialState.FAIL]
    assert trained == set(groups[0]) and len(trained) + len(skipped) == 6, _describe(trials)
    assert skipped and all("the timeout ran out before the trial's group started; not counted"
                           in t.user_attrs["fail_reason"] for t in skipped)
    assert f"the timeout ran out before {len(skipped)} asked trial(s) could start" in " ".join(out.split())
    given_up = f"{len(skipped)} failed ({len(skipped)} of them given up before training: a budget or timeout ran out"
    assert given_up in out  # the summary's counts, and those of study show:
    code, shown = _invoke("study", "show", "late", "--storage", storage, "--tracking-uri", uri)
    assert code == 0 and given_up in shown, shown
    # study list's FAILED column and MLflow's n_trials_failed counted them as failures of the model
    code, listed = _invoke("study", "list", "--storage", storage)
    row = next(line.split() for line in listed.splitlines() if line.startswith("late "))
    assert code == 0 and row[1:5] == [str(len(trained)), "0", "0", "0"], listed
    assert f"trials given up before they trained (a budget or timeout ran out): late ({len(skipped)})" in listed
    client = MlflowClient(tracking_uri=uri)
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("late").experiment_id])
                  if r.data.tags.get("tuner.role") == "study")
    assert parent.data.metrics["n_trials_failed"] == 0, parent.data.metrics
    assert parent.data.metrics["n_trials_given_up"] == len(skipped), parent.data.metrics
    runs = _trial_runs(uri, "late")
    assert all(r.info.status == "FAILED" for t in skipped for r in runs[t.number]), runs
    # their points are queued again: a resume trains exactly those, and the budget ends spent
    queued = [t for t in _trials(storage, "late") if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["requeued_from"] for t in queued) == sorted(t.number for t in skipped)
    assert sorted(repr(t.params) for t in queued) == sorted(repr(t.params) for t in skipped)
    code, out = _invoke("tune", "--study", "late", "--trials", "6", "--storage", storage, "--tracking-uri", uri)
    assert code == 0, out
    trials = _trials(storage, "late")
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6, _describe(trials)
    retried = {t.user_attrs["requeued_from"]: t for t in trials if "requeued_from" in t.user_attrs}
    assert all(retried[t.number].state == TrialState.COMPLETE and retried[t.number].params == t.params
               for t in skipped), _describe(trials)


def test_a_grid_point_given_up_at_the_timeout_is_evaluated_by_the_next_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Optuna's grid sampler counts a failed trial's point as visited: a point given up at the
    timeout was never evaluated, and the next run said every point of the grid had been."""
    from tuner.study._trial_batches import TrialBatches

    train = TrialBatches.train
    groups: list[list[int]] = []

    def slow_first_group(self: TrialBatches, group: Any) -> Any:
        groups.append([p.trial.number for p in group])
        if len(groups) == 1:
            time.sleep(2.0)
        return train(self, group)

    monkeypatch.setattr(TrialBatches, "train", slow_first_group)
    storage, _ = _urls(tmp_path)
    args = ("tune", "--dataset", "breast_cancer", "--study", "grid", "--sampler", "grid", "--penalty", "l2",
            "--param", "penalty.strength=0.01", "--optimizer", "lbfgs,sgd", "--param", "optimizer.lr=0.1",
            "--param", "optimizer.momentum=0.5", "--param", "optimizer.nesterov=false",
            "--param", "optimizer.history_size=10", "--epochs", "30",
            "--pruner", "none", "--storage", storage, "--no-tracking", "--trials", "6", "--batch-trials", "2")
    code, out = _invoke(*args, "--timeout", "1")
    assert code == 0 and len(groups) == 1, out
    code, out = _invoke(*args)
    assert code == 0, out
    trials = _trials(storage, "grid")
    done = {t.params["variant"] for t in trials if t.state == TrialState.COMPLETE}
    assert done == {"l2:lbfgs", "l2:sgd"}, _describe(trials)


def test_a_batching_worker_and_tune_share_the_budget_exactly(tmp_path: Path) -> None:
    storage, uri = _urls(tmp_path)
    env = _env()
    # The worker starts first and waits for the study; tune creates it and runs batches of 4,
    # the worker batches of 3. FISTA held to 100 epochs (no early stop, no pruning) keeps each
    # batch busy long enough (seconds) for both processes to take trials (40 epochs left the
    # worker without a trial about once in seven runs once L1's smooth part cost nothing). The
    # worker joins about 2 s after the study appears (its data, its MLflow check): 24 trials, six
    # batches of tune's, keep the study open well past that (12 left it one batch, and a loaded CI
    # machine none).
    worker = _start(["worker", "--study", "w", "--storage", storage, "--tracking-uri", uri, "--wait", "120",
                     "--batch-trials", "3", "--json"], tmp_path, env)
    tune = _start(["tune", "--dataset", "breast_cancer", "--study", "w", "--trials", "24", "--batch-trials", "4",
                   "--penalty", "l2,l1", "--optimizer", "fista", "--epochs", "100", "--patience", "100", "--tol", "0",
                   "--pruner", "none", "--storage", storage, "--tracking-uri", uri, "--json"], tmp_path, env)
    for proc in (tune, worker):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (proc.args, out, err[-3000:])
        assert "Traceback" not in err, err[-3000:]
    trials = _trials(storage, "w")
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 24, _describe(trials)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    others = [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs["fail_reason"].startswith(GAVE_UP)]
    assert not others, _describe(others)
    configs = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(configs)) == len(configs), "two trials ran the same configuration"
    by_process = {pid: [t.number for t in finished if t.user_attrs["worker"].endswith(f":{pid}")]
                  for pid in (tune.pid, worker.pid)}
    assert all(by_process.values()), by_process  # both processes ran trials
    runs = _trial_runs(uri, "w")
    for t in finished:
        (run,) = runs[t.number]
        assert run.info.status == RUN_STATUS[t.state.name]


# --- 2. an interrupt in the middle of a batch -------------------------------------------


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``tune --batch-trials 4`` sent SIGINT while its first batch trains (a trial reported an epoch)."""
    tmp = tmp_path_factory.mktemp("interrupt")
    storage, uri = _urls(tmp)
    proc = _start(["tune", "--dataset", "breast_cancer", "--study", "i", "--trials", "8", "--batch-trials", "4",
                   "--penalty", "l2", "--optimizer", "sgd", "--epochs", "3000", "--patience", "3000",
                   "--pruner", "none", "--storage", storage, "--tracking-uri", uri], tmp, _env())
    running = _wait_for_a_running_epoch(proc, storage, "i")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return {"code": proc.returncode, "out": out, "err": err, "running": running, "storage": storage,
            "trials": _trials(storage, "i"), "runs": _trial_runs(uri, "i")}


def _wait_for_a_running_epoch(proc: subprocess.Popen, storage: str, study: str, limit: float = 180) -> list[int]:
    """The numbers of the RUNNING trials once one of them reported an epoch."""
    deadline = time.time() + limit
    store = optuna.storages.RDBStorage(storage)
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            trials = optuna.load_study(study_name=study, storage=store).get_trials(deepcopy=False)
        except KeyError:  # not created yet
            trials = []
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if any(t.intermediate_values for t in running):
            return [t.number for t in running]
        time.sleep(0.1)
    raise AssertionError("no trial reported an epoch")


def test_sigint_mid_batch_exits_130_and_fails_the_trial_it_stopped(interrupted: dict[str, Any]) -> None:
    assert interrupted["code"] == 130, (interrupted["out"], interrupted["err"][-3000:])
    assert "interrupted by SIGINT" in interrupted["out"]
    # the hint reaches the study: its --storage is not the default (it was left out)
    assert f"resume with `tuner tune --study i --storage '{interrupted['storage']}'`" in interrupted["out"]
    assert "Traceback" not in interrupted["err"], interrupted["err"][-3000:]
    assert interrupted["running"] == [0, 1, 2, 3]  # the batch of 4 was asked before it trained
    first = interrupted["trials"][0]
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "interrupted by SIGINT"
    (run,) = interrupted["runs"][0]
    assert run.info.status == "KILLED" and "interrupted by SIGINT" in run.data.tags["tuner.reason"]
    assert len(interrupted["trials"]) == 4  # no trial was asked after the signal


def test_sigint_mid_batch_leaves_no_trial_or_run_running(interrupted: dict[str, Any]) -> None:
    trials = interrupted["trials"]
    assert not [t for t in trials if t.state == TrialState.RUNNING], _describe(trials)
    for t in trials:
        if t.number in interrupted["running"] and t.state not in FINISHED:
            assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == "interrupted by SIGINT", \
                _describe([t])
    for number, runs in interrupted["runs"].items():
        for run in runs:
            assert run.info.status != "RUNNING", (number, run.info.status)
            if trials[number].state == TrialState.FAIL:
                assert run.info.status == "KILLED" and "interrupted by SIGINT" in run.data.tags["tuner.reason"]


# --- 3. the option ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["tune", "worker"])
@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_batch_trials_that_is_not_a_positive_integer_or_auto_is_refused(tmp_path: Path, command: str,
                                                                        value: str) -> None:
    storage, _ = _urls(tmp_path)
    target = ["--dataset", "breast_cancer"] if command == "tune" else []
    code, out = _invoke(command, *target, "--study", "s", "--storage", storage, "--no-tracking",
                        "--batch-trials", value)
    assert code == 2, out
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: Invalid value for '--batch-trials': {value!r} is neither a positive integer nor "
                      "'auto'."], out
    assert "Traceback" not in out
    assert not (tmp_path / "studies.db").exists()  # refused before any store was opened


def test_batch_trials_auto_and_an_integer_are_accepted_by_tune_and_worker(tmp_path: Path) -> None:
    storage, _ = _urls(tmp_path)
    base = ["--storage", storage, "--no-tracking", "--json"]
    # a batch larger than the budget asks only what the budget has room for
    code, out = _invoke("tune", "--dataset", "breast_cancer", "--study", "s", "--trials", "2", "--penalty", "l2",
                        "--optimizer", "lbfgs", "--batch-trials", "5", *base)
    assert code == 0, out
    assert [t.state for t in _trials(storage, "s")] == [TrialState.COMPLETE] * 2
    # --batch-trials may change on resume
    code, out = _invoke("tune", "--study", "s", "--trials", "3", "--batch-trials", "auto", *base)
    assert code == 0, out
    assert len(_trials(storage, "s")) == 3
    for value in ("auto", "5", "AUTO"):  # a worker joining a study whose budget is spent: nothing to do
        # (AUTO: the help shows the choice upper-cased)
        code, out = _invoke("worker", "--study", "s", "--wait", "1", "--batch-trials", value, *base)
        assert code == 0, out
        assert json.loads(out)["trials"]["complete"] == 3
    assert len(_trials(storage, "s")) == 3
    for command in ("tune", "worker"):
        code, out = _invoke(command, "--help")
        text = " ".join(out.split())
        assert code == 0 and re.search(r"--batch-trials K\|auto ", text, re.I) and "side by side" in text, out


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_auto_asks_half_the_budget_left_or_the_finished_trials_where_the_sampler_learns(tmp_path: Path,
                                                                                       sampler: str) -> None:
    """A batch of ``auto`` on large data is up to 32 trials, but TPE samples a batch's trials with
    guesses for the results it has not seen: one batch of 24 would be a random search. So a batch
    holds at most half the budget left, or as many trials as have finished (12, then 12 sampled
    from 12 results); a random sampler learns nothing and takes the 24 at once."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9000, 60))  # 345,600 stored training values: auto trains side by side
    y = (X[:, :5].sum(axis=1) + rng.normal(size=9000) > 0).astype(int)
    data = tmp_path / "wide.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", fmt="%.6g",
               header=",".join([f"x{i}" for i in range(60)] + ["label"]), comments="")
    storage, _ = _urls(tmp_path)
    code, out = _invoke("tune", str(data), "--target", "label", "--study", "s", "--trials", "24", "--penalty", "l2",
                        "--optimizer", "newton", "--sampler", sampler, "--batch-trials", "auto", "--storage", storage,
                        "--no-tracking", "--json")
    assert code == 0, out
    trials = sorted(_trials(storage, "s"), key=lambda t: t.number)
    assert len(trials) == 24 and all(t.state in FINISHED for t in trials)

    def finished_before(t: FrozenTrial) -> int:
        return sum(o.datetime_complete is not None and o.datetime_complete <= t.datetime_start for o in trials)

    seen = [finished_before(t) for t in trials]
    if sampler == "random":
        assert seen == [0] * 24, seen
    else:
        assert seen == [0] * 12 + [12] * 12, seen


def test_auto_asks_one_trial_at_a_time_where_no_group_would_share_a_pass(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """SST-2's L-BFGS trials train one a group (a pass over its rows serves one trial's 79,049
    weights): asked 32 at a time they trained one after the other anyway, each sampled without the
    others' results, and the study took 110 s for 64 trials against 91 s asked one at a time."""
    from tuner.study._trial_batches import TrialBatches

    rng = np.random.default_rng(0)
    X = rng.normal(size=(9000, 60))  # 345,600 stored training values: auto would ask 12 at once
    y = (X[:, :5].sum(axis=1) + rng.normal(size=9000) > 0).astype(int)
    data = tmp_path / "wide.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", fmt="%.6g",
               header=",".join([f"x{i}" for i in range(60)] + ["label"]), comments="")
    monkeypatch.setattr(TrialBatches, "group_limit", lambda self, optimizer: 1, raising=False)  # as on SST-2
    storage, _ = _urls(tmp_path)
    code, out = _invoke("tune", str(data), "--target", "label", "--study", "s", "--trials", "6", "--penalty", "l2",
                        "--optimizer", "newton", "--batch-trials", "auto", "--storage", storage, "--no-tracking")
    assert code == 0, out
    trials = sorted(_trials(storage, "s"), key=lambda t: t.number)
    assert len(trials) == 6
    for before, after in zip(trials, trials[1:]):  # each asked once the one before had finished
        assert before.datetime_complete <= after.datetime_start, (before.number, after.number)


# --- 4. the same answer, one at a time or side by side --------------------------------------


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_one_at_a_time_and_side_by_side_find_the_same_best_with_an_exact_solver(tmp_path: Path,
                                                                               sampler: str) -> None:
    storage, _ = _urls(tmp_path)
    best: dict[str, float] = {}
    trials: dict[str, list[FrozenTrial]] = {}
    # Trial by trial: no pruner (it sees different trials finished when a trial reports), and no
    # strength so weak that L-BFGS does not converge in 100 epochs on these nearly separable
    # data (such a trial ends where its warm start, which differs, led it).
    narrow = ["--param", "penalty.strength=1e-4..1:log"] + (["--pruner", "none"] if sampler == "random" else [])
    for batch in ("1", "4"):
        code, out = _invoke("tune", "--dataset", "breast_cancer", "--study", f"k{batch}", "--trials", "12",
                            "--penalty", "l2", "--optimizer", "lbfgs", "--seed", "3", "--sampler", sampler, *narrow,
                            "--batch-trials", batch, "--storage", storage, "--no-tracking", "--json")
        assert code == 0, out
        best[batch] = json.loads(out)["best_value"]
        trials[batch] = _trials(storage, f"k{batch}")
        assert len(trials[batch]) == 12 and all(t.state in FINISHED for t in trials[batch])
    # TPE's first trials are its random start, drawn alike whatever the batches: those trained alike
    # must score alike (the trials after it see different results finished, 4 asked at once)
    shared = [(one, four) for one, four in zip(trials["1"], trials["4"]) if one.params == four.params]
    assert len(shared) >= 8, [(t.params, u.params) for t, u in zip(trials["1"], trials["4"])]
    both = [(one, four) for one, four in shared if one.state == four.state == TrialState.COMPLETE]
    assert len(both) >= 5  # the median pruner sees different trials finished, so it may stop one in one run only
    for one, four in both:
        assert four.value == pytest.approx(one.value, rel=1e-3), (one.number, one.params)
    # TPE's later draws differ, and its best is another point of a flat optimum (0.6% apart here)
    assert best["4"] == pytest.approx(best["1"], rel=1e-3 if sampler == "random" else 1e-2), best
    if sampler == "random":  # the samples do not depend on the history: the same trials, trial by trial
        for one, four in zip(trials["1"], trials["4"]):
            assert one.params == four.params
            assert one.state == four.state
            if one.state == TrialState.COMPLETE:
                assert four.value == pytest.approx(one.value, rel=1e-3), (one.number, one.params)


# --- 5. a third-party plugin that does not declare supports_batch ---------------------------


@pytest.fixture(scope="module")
def extras_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package (group_lasso, adagrad: no ``supports_batch``) pip-installed into a folder."""
    base = tmp_path_factory.mktemp("extras")
    src, target = base / "src", base / "site"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "-q", "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def test_a_plugin_without_supports_batch_trains_alone_in_a_batched_study(tmp_path: Path, extras_site: Path) -> None:
    storage, _ = _urls(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", "tune", "--dataset", "breast_cancer", "--study", "p",
                           "--trials", "8", "--batch-trials", "8", "--penalty", "l2,group_lasso", "--optimizer",
                           "fista", "--sampler", "random", "--seed", "1", "--epochs", "30", "--storage", storage,
                           "--no-tracking", "--json"], capture_output=True, text=True,
                          env=_env(PYTHONPATH=str(extras_site)), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    trials = _trials(storage, "p")
    assert len(trials) == 8 and all(t.state in FINISHED for t in trials), _describe(trials)
    penalties = [t.params["variant"].split(":")[0] for t in trials]
    assert penalties.count("group_lasso") >= 2 and penalties.count("l2") >= 2, penalties  # both, in one batch
    for name in ("l2", "group_lasso"):
        done = [t for t, p in zip(trials, penalties) if p == name and t.state == TrialState.COMPLETE]
        assert done and all(t.value is not None and t.value > 0 for t in done), (name, _describe(trials))
    # Each trial's "group" attribute names the trials it trained with: group_lasso alone, every l2
    # trial in one pass.
    with_ = {t.number: t.user_attrs["group"]["trials"] for t in trials}
    l2 = [t.number for t, p in zip(trials, penalties) if p == "l2"]
    for t, p in zip(trials, penalties):
        assert with_[t.number] == ([t.number] if p == "group_lasso" else l2), (t.number, p, with_)
        assert t.user_attrs["group"]["seconds"] > 0


@pytest.fixture
def scaled_ridge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from _broken_plugins import installed_penalties

    yield from installed_penalties(monkeypatch, tmp_path / "site", "tuner_test_scaled", {"scaled_ridge": "ScaledRidge"})


def test_a_warm_start_its_solver_cannot_leave_is_trained_again_from_zero(scaled_ridge: None, tmp_path: Path) -> None:
    """Warm-started from a neighbour trained side by side, an L-BFGS trial (float32, iris) stopped
    after one pass as converged with the neighbour's model: 0.25% above its own optimum, its
    validation log loss 20% off. It is now trained again from zero weights."""
    import optuna

    from tuner.study import train_one

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(data=DataSpec(dataset="iris", seed=3), penalties=["scaled_ridge"], optimizers=["lbfgs"],
                     n_trials=0, sampler="random", pruner="none", seed=3)
    run_study(spec, "warm", url, changes={"penalties": ["scaled_ridge"], "optimizers": ["lbfgs"]})
    study = optuna.load_study(study_name="warm", storage=url)
    trials = [({"strength": 2.124407917364559e-05, "double": False, "power": 3}, {"lr": 0.13353198668283545, "history_size": 23}),
              ({"strength": 1.7338426710433808e-07, "double": False, "power": 1}, {"lr": 0.4745204154703383, "history_size": 60}),
              ({"strength": 1.185822196357988e-05, "double": True, "power": 3}, {"lr": 0.27571076144843404, "history_size": 18}),
              ({"strength": 2.8242833062324427e-05, "double": False, "power": 3}, {"lr": 0.9462271879409145, "history_size": 68})]
    for pp, op in trials:
        study.enqueue_trial({"variant": "scaled_ridge:lbfgs", **{f"penalty.{k}": v for k, v in pp.items()},
                             **{f"optimizer.{k}": v for k, v in op.items()}})
    result = run_study(None, "warm", url, n_trials=4, batch_trials=3, resume_only=True)
    assert result.counts["complete"] == 4
    done = {t.number: t for t in optuna.load_study(study_name="warm", storage=url).trials}
    assert done[3].user_attrs["group"]["trials"] == [3] and done[2].user_attrs["group"]["trials"] == [0, 1, 2]
    from tuner.data import load_data, prepare

    data = prepare(load_data(dataset="iris"), val_size=0.2, test_size=0.2, seed=3)
    cold = train_one(data, "scaled_ridge", "lbfgs", trials[3][0], trials[3][1])
    val = done[3].user_attrs["val_metrics"]["log_loss"]
    assert val == pytest.approx(cold.val_metrics["log_loss"], rel=1e-2)  # float32 solves agree to ~0.1%
    assert val != pytest.approx(done[2].user_attrs["val_metrics"]["log_loss"], rel=1e-2)
