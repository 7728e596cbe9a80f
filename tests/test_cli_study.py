"""`tuner study ...` and the tune command's output options, on a real SQLite study database."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tuner.cli import cli


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('studies') / 'studies.db'}"
    for name, ds in (("alpha", "breast_cancer"), ("beta", "wine")):
        res = CliRunner().invoke(cli, ["tune", "--dataset", ds, "--study", name, "--storage", url, "--trials", "6",
                                       "--penalty", "l2,l1", "--optimizer", "fista", "--epochs", "20",
                                       "--no-tracking", "--json"])
        assert res.exit_code == 0, res.output
    return url


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_study_list_table_and_json(db: str) -> None:
    res = run("study", "list", "--storage", db)
    assert res.exit_code == 0 and "alpha" in res.output and "beta" in res.output
    rows = json.loads(run("study", "list", "--storage", db, "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"alpha", "beta"}
    assert by_name["alpha"]["trials"].get("complete", 0) + by_name["alpha"]["trials"].get("pruned", 0) == 6
    assert by_name["alpha"]["metric"] == "log_loss" and by_name["alpha"]["best_value"] > 0


def test_study_show_has_spec_top_trials_and_importances(db: str) -> None:
    res = run("study", "show", "alpha", "--storage", db, "--top", "3")
    assert res.exit_code == 0
    assert "breast_cancer" in res.output and "top" in res.output
    info = json.loads(run("study", "show", "alpha", "--storage", db, "--json").stdout)
    assert info["spec"]["data"]["dataset"] == "breast_cancer"
    values = [t["value"] for t in info["top"]]
    assert values == sorted(values)  # minimised metric: best first
    assert info["best"]["value"] == values[0]
    assert "penalty.strength" in info["importances"]
    assert set(info["importances"]) <= {"penalty", "optimizer", "penalty.strength", "optimizer.lr"}
    for row in info["top"]:  # the public names: the plugins, then their hyperparameters
        assert list(row["params"])[:2] == ["penalty", "optimizer"] and "variant" not in row["params"]
        assert row["params"]["optimizer"] == "fista" and "optimizer.lr" in row["params"]
    best = info["top"][0]["params"]
    assert f"penalty={best['penalty']}, optimizer=fista" in res.output
    assert info["importances_left_out"] == []  # l1 and l2 both have a strength


def test_study_show_reads_the_trials_once_and_agrees_with_the_separate_queries(db: str) -> None:
    """`study show` read every trial three times (the study's counts, the trial table and the
    importances each loaded the study again): 3,000 trials took 111 s, now 8 s."""
    import sqlalchemy

    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:  # SQLAlchemy's cursor event
        if re.search(r"^\s*SELECT .*\bFROM trials\s+WHERE trials\.study_id", statement, re.DOTALL):
            reads.append(statement)  # the query that reads a study's trial rows

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", count)
    try:
        res = run("study", "show", "alpha", "--storage", db, "--json")
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", count)
    assert res.exit_code == 0, res.output
    assert len(reads) == 1, reads

    from tuner.study import param_importances, study_overview, study_record, trial_records

    overview = study_overview(db, "alpha")
    assert overview.record == study_record(db, "alpha")
    assert overview.trials == trial_records(db, "alpha")
    assert overview.importances == param_importances(db, "alpha")
    assert set(overview.importances) == set(json.loads(res.stdout)["importances"])


def test_study_show_names_the_hyperparameters_its_importances_cannot_weigh(tmp_path: Path) -> None:
    """With 'none' in the search, penalty.strength is not every trial's: the importances listed
    'penalty 1.000' alone, as if the strength did not matter."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = run("tune", "--dataset", "breast_cancer", "--study", "mixed", "--storage", url, "--trials", "8",
              "--penalty", "none,l2", "--optimizer", "newton", "--seed", "1", "--no-tracking", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(run("study", "show", "mixed", "--storage", url, "--json").stdout)
    penalties = {t["params"]["penalty"] for t in info["top"]}
    assert penalties == {"none", "l2"}, penalties  # both kinds completed
    assert "penalty.strength" not in info["importances"] and info["importances_left_out"] == ["penalty.strength"]
    shown = run("study", "show", "mixed", "--storage", url).output
    assert "not weighed: penalty.strength, which only some trials have" in shown, shown


def test_study_best_json(db: str) -> None:
    best = json.loads(run("study", "best", "beta", "--storage", db, "--json").stdout)
    assert best["state"] == "COMPLETE" and best["params"]["penalty"] in ("l2", "l1")
    assert best["params"]["optimizer"] == "fista" and "variant" not in best["params"]
    text = run("study", "best", "beta", "--storage", db).output
    assert f"penalty = {best['params']['penalty']}" in text and "optimizer.lr = " in text
    assert set(best["test_metrics"]) >= {"log_loss", "accuracy", "f1"}


def test_study_export_csv_and_json(db: str, tmp_path: Path) -> None:
    res = run("study", "export", "alpha", "--storage", db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 6 and "value" in rows[0]
    params = [c for c in rows[0] if c.startswith("params.")]
    assert params == ["params.penalty", "params.optimizer", "params.penalty.strength", "params.optimizer.lr"]
    # one column per metric, one number per cell (not a dict in a cell)
    metrics = [c for c in rows[0] if c.startswith("user_attrs.val_metrics.")]
    assert {"user_attrs.val_metrics.log_loss", "user_attrs.val_metrics.accuracy"} <= set(metrics), list(rows[0])
    assert "user_attrs.val_metrics" not in rows[0]
    for row in rows:
        assert all("{" not in v for v in row.values()), row
        if row["state"] == "COMPLETE":
            assert float(row["user_attrs.val_metrics.log_loss"]) == pytest.approx(float(row["value"]))
    out = tmp_path / "alpha.json"
    assert run("study", "export", "alpha", "--storage", db, "--format", "json", "-o", str(out)).exit_code == 0
    trials = json.loads(out.read_text())
    assert [t["number"] for t in trials] == list(range(6))


def test_export_to_a_missing_folder_is_one_line(db: str, tmp_path: Path) -> None:
    """-o in a folder that does not exist (a FileNotFoundError traceback before)."""
    target = tmp_path / "nodir" / "x.csv"
    res = run("study", "export", "alpha", "--storage", db, "-o", str(target))
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert res.output.strip().splitlines() == [
        f"Error: Cannot write {target}: the folder {target.parent} does not exist; create it first, or give "
        "--output a path in an existing folder."]
    assert not target.parent.exists()


@pytest.mark.parametrize(("name", "value"), [("TUNER_HEARTBEAT_INTERVAL", "2.5"), ("TUNER_HEARTBEAT_INTERVAL", "0"),
                                           ("TUNER_HEARTBEAT_GRACE", "thirty")])
def test_a_bad_heartbeat_setting_is_one_line_naming_the_variable(db: str, name: str, value: str) -> None:
    """TUNER_HEARTBEAT_INTERVAL=2.5 gave a ValueError traceback from int()."""
    res = CliRunner().invoke(cli, ["worker", "--study", "alpha", "--storage", db, "--no-tracking", "--wait", "0"],
                             env={name: value})
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    default = 10 if name == "TUNER_HEARTBEAT_INTERVAL" else 30
    assert res.output.strip().splitlines() == [
        f"Error: {name} must be a whole number of seconds, 1 or more (Optuna's heartbeat counts whole seconds); "
        f"got {value!r} (unset, it is {default})."]


def test_a_grace_period_shorter_than_two_heartbeats_is_refused(db: str) -> None:
    """TUNER_HEARTBEAT_INTERVAL=5 with TUNER_HEARTBEAT_GRACE=1 failed 3 of 9 healthy trials of the
    process itself as lost (and ran them again): a beat comes up to an interval after the last."""
    res = CliRunner().invoke(cli, ["worker", "--study", "alpha", "--storage", db, "--no-tracking", "--wait", "0"],
                             env={"TUNER_HEARTBEAT_INTERVAL": "5", "TUNER_HEARTBEAT_GRACE": "9"})
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        "Error: TUNER_HEARTBEAT_GRACE (9 s) must be at least twice TUNER_HEARTBEAT_INTERVAL (5 s): a worker beats "
        "once an interval, so a shorter grace period fails trials that are still training as lost. Raise the grace "
        "period or shorten the interval."], res.output


@pytest.mark.parametrize("args", [("study", "show", "alpha", "--top", "-2"), ("study", "show", "alpha", "--top", "0"),
                                  ("worker", "--study", "alpha", "--wait", "-5", "--no-tracking"),
                                  ("train", "--dataset", "iris", "--penalty", "l2", "--optimizer", "lbfgs", "--seed", "-1"),
                                  ("plugins", "check", "l2", "--seed", "-1")])
def test_counts_waits_and_seeds_out_of_range_are_refused(db: str, args: tuple[str, ...]) -> None:
    """--top -2 listed the top 4 of 6 (a slice from the end); --wait -5 passed as no wait; --seed -1
    reached scikit-learn's splitter (reported as rows too few to split) or failed a plugin's checks."""
    res = run(*args, *(("--storage", db) if args[0] != "train" and args[0] != "plugins" else ()))
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    flag = args[-2] if args[-1] != "--no-tracking" else args[-3]
    assert f"Invalid value for '{flag}'" in res.output, res.output


def test_a_worker_on_a_spent_study_says_how_to_raise_its_budget(db: str) -> None:
    """The warning told a worker to 'raise --trials', an option `tuner worker` does not have."""
    res = run("worker", "--study", "alpha", "--storage", db, "--no-tracking", "--wait", "0")
    assert res.exit_code == 0, res.output
    assert "warning: the budget of 6 trials is already spent; no trial was run (raise the budget with `tuner tune " \
           "--study alpha --trials N` to run more)" in res.stderr, res.stderr
    assert "--trials to run more" not in res.stderr


def test_trials_0_stores_a_new_study_without_a_trial_and_says_so(tmp_path: Path) -> None:
    """It printed "no completed trial yet" (exit 0), which the README says exits 1; --trials 0 is
    how a study is stored for later runs and workers, so it exits 0 and says what it did."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = ("--dataset", "iris", "--study", "later", "--penalty", "l2", "--optimizer", "lbfgs", "--storage", url,
            "--no-tracking")
    res = run("tune", *args, "--trials", "0")
    assert res.exit_code == 0, res.output
    assert "no completed trial yet" not in res.stdout
    assert ("  stored with a budget of 0 trials, no trial run: `tuner tune --study later --trials N` runs it, and "
            "workers started then join it") in res.stdout.splitlines()
    assert json.loads(run("tune", *args, "--trials", "0", "--json").stdout)["budget"] == 0
    assert [s["name"] for s in json.loads(run("study", "list", "--storage", url, "--json").stdout)] == ["later"]
    assert "0 stores a new study without running a trial" in " ".join(run("tune", "--help").output.split())


def test_a_study_without_test_rows_says_so_instead_of_an_empty_test_line(tmp_path: Path) -> None:
    """With --test-size 0 the summary printed "  test: " and nothing after it."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = run("tune", "--dataset", "iris", "--study", "notest", "--penalty", "l2", "--optimizer", "lbfgs",
              "--storage", url, "--no-tracking", "--trials", "1", "--epochs", "5", "--test-size", "0")
    assert res.exit_code == 0, res.output
    assert "  test: none (no test rows: --test-size 0 and no --test-file)" in res.stdout.splitlines()


@pytest.mark.parametrize("wait", ["0", "0.5"])
def test_a_worker_on_a_missing_study_says_how_to_create_it(db: str, wait: str) -> None:
    """It said "give data (DATA or --dataset) to create it", though `tuner worker` takes no data."""
    res = run("worker", "--study", "nothere", "--storage", db, "--no-tracking", "--wait", wait)
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    found = f"in {db}" if wait == "0" else f"appeared in {db} within 0.5 s"
    longer = "" if wait == "0" else " longer"
    assert res.output.strip().splitlines() == [
        f"Error: No study named 'nothere' {found}; start it with `tuner tune DATA --study nothere` on this --storage, "
        f"or let the worker wait{longer} for it (--wait SECONDS)."]
    res = run("tune", "--study", "nothere", "--storage", db, "--no-tracking")  # tune takes data: it says so
    assert res.exit_code == 1 and "give data (DATA or --dataset) to create it" in res.output, res.output


def test_a_study_made_from_arrays_in_memory_cannot_be_rejoined_from_the_command_line(tmp_path: Path) -> None:
    """A worker or resume of a tuner.tune(X, y, storage=...) study said "Give either a data file or
    --dataset (not both)", though neither was given."""
    import numpy as np

    import tuner

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    url = f"sqlite:///{tmp_path / 's.db'}"
    tuner.tune(X, y, study_name="arrays", storage=url, trials=1, penalty="l2", optimizer="lbfgs", epochs=5)
    expected = [
        "Error: This study was created from rows in memory (arrays or a DataFrame given to tuner.tune), which the "
        "study database does not keep: only the same rows, given again to tuner.tune(X, y, study_name=NAME, "
        "storage=URL) in Python, resume it (`tuner worker` and `tuner tune --study` cannot); or start a new study on "
        "a data file."]
    for args in (("worker", "--wait", "0"), ("tune", "--trials", "2")):
        res = run(*args, "--study", "arrays", "--storage", url, "--no-tracking")
        assert res.exit_code == 1 and res.output.strip().splitlines() == expected, res.output
    assert tuner.tune(X, y, study_name="arrays", storage=url, trials=2).n_complete == 2  # the same rows resume it


def _copy_with_a_multi_objective_study(db: str, tmp_path: Path) -> str:
    """A copy of ``db`` that also holds 'foreign': a study another program made in the same
    database, with two objectives and three complete trials."""
    import sqlite3

    import optuna

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with sqlite3.connect(db.removeprefix("sqlite:///")) as src, sqlite3.connect(tmp_path / "shared.db") as dst:
        src.backup(dst)
    foreign = optuna.create_study(study_name="foreign", directions=["minimize", "maximize"], storage=url)
    for x in (0.1, 0.5, 0.9):
        trial = foreign.ask()
        trial.suggest_float("x", 0.0, 1.0)
        foreign.tell(trial, [x, 2 * x])
    return url


def test_a_multi_objective_study_in_the_database_is_listed_shown_and_has_no_best(db: str, tmp_path: Path) -> None:
    """Another program's multi-objective study in a shared database (``study list`` died with
    Optuna's "A single direction cannot be retrieved" traceback)."""
    url = _copy_with_a_multi_objective_study(db, tmp_path)
    res = run("study", "list", "--storage", url)
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.startswith("foreign "))
    assert row.split()[1:6] == ["3", "0", "0", "0", "-"]  # complete, pruned, failed, running, best
    assert "alpha" in res.output
    rows = {r["name"]: r for r in json.loads(run("study", "list", "--storage", url, "--json").stdout)}
    assert rows["foreign"]["directions"] == ["minimize", "maximize"] and rows["foreign"]["best_value"] is None
    assert rows["alpha"]["directions"] == ["minimize"] and rows["alpha"]["direction"] == "minimize"
    res = run("study", "show", "foreign", "--storage", url)
    assert res.exit_code == 0, res.output
    assert "3 complete" in res.output and "2 objectives (minimize, maximize)" in res.output
    res = run("study", "best", "foreign", "--storage", url)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines() == [
        "Error: Study 'foreign' has 2 objectives (minimize, maximize), so it has no single best trial; "
        "`tuner study export foreign` lists every trial's values."]
    exported = list(csv.DictReader(io.StringIO(run("study", "export", "foreign", "--storage", url).stdout)))
    assert [json.loads(r["values"]) for r in exported] == [[0.1, 0.2], [0.5, 1.0], [0.9, 1.8]]


def _commands(group, path=("tuner",)):
    import click

    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_documents_every_option_and_takes_quiet() -> None:
    import click

    commands = list(_commands(cli))
    assert len(commands) >= 12
    for path, command in commands:
        res = run(*path[1:], "--help")
        assert res.exit_code == 0, (path, res.output)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"
                assert param.opts[0] in res.output, (path, param.opts[0])
        assert "--quiet" in res.output and "-q" in res.output, f"{' '.join(path)} does not take -q/--quiet"


def test_study_delete_asks_and_deletes(db: str) -> None:
    res = run("study", "delete", "beta", "--storage", db, input="n\n")
    assert res.exit_code != 0
    assert "beta" in run("study", "list", "--storage", db).output
    assert run("study", "delete", "beta", "--storage", db, "--yes").exit_code == 0
    assert "beta" not in run("study", "list", "--storage", db).output
    res = run("study", "show", "beta", "--storage", db)
    assert res.exit_code != 0 and "No study named 'beta'" in res.output and "alpha" in res.output


def test_study_delete_refuses_a_study_a_process_is_running_unless_forced(tmp_path: Path) -> None:
    """It deleted the study under a running `tuner tune`, which then died with a KeyError traceback."""
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="busy", storage=url).ask()  # a trial some process is running
    res = run("study", "delete", "busy", "--storage", url, "--yes")
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        "Error: Study 'busy' has 1 running trial(s): a process is working on it. Stop it first (Ctrl-C), or give "
        "--force to delete the study anyway."]
    assert "busy" in run("study", "list", "--storage", url).output
    assert run("study", "delete", "busy", "--storage", url, "--yes", "--force").exit_code == 0
    assert "busy" not in run("study", "list", "--storage", url).output


def test_a_tune_whose_study_is_deleted_under_it_says_so_in_one_line(tmp_path: Path) -> None:
    """`study delete --force` under a running `tuner tune`: it died with a KeyError traceback
    ('Record does not exist.') from whichever Optuna call came next."""
    import subprocess
    import sys
    import time

    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "tune", "--dataset", "breast_cancer", "--study", "gone",
                             "--storage", url, "--trials", "100000", "--no-tracking"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                done = optuna.load_study(study_name="gone", storage=url).get_trials(
                    states=(optuna.trial.TrialState.COMPLETE,))
            except KeyError:
                done = []
            if len(done) >= 3:
                break
            time.sleep(0.2)
        assert run("study", "delete", "gone", "--storage", url, "--yes", "--force").exit_code == 0
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert out.strip().splitlines()[-1] == (
        f"Error: Study 'gone' was deleted from {url} while this process ran its trials (`tuner study delete "
        "--force`); no more trials were run."), out


def test_tune_prints_a_summary_table_and_no_progress_bar_off_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = run("tune", "--dataset", "iris", "--study", "t", "--storage", url, "--trials", "3", "--penalty", "l2",
              "--optimizer", "lbfgs", "--metric", "f1", "--no-tracking")
    assert res.exit_code == 0, res.output
    assert "best trial: #" in res.output and "validation f1" in res.output and "test:" in res.output
    assert "\r[" not in res.output  # not a terminal: no progress bar
    assert "trials: " in res.output and "non-zero weights" in res.output


def test_tune_refuses_roc_auc_on_multiclass_and_needs_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    res = run("tune", "--dataset", "iris", "--storage", url, "--metric", "roc_auc", "--trials", "2", "--no-tracking")
    assert res.exit_code != 0 and "roc_auc" in res.output and "binary" in res.output
    res = run("tune", "--storage", url, "--no-tracking")
    assert res.exit_code != 0 and "--study" in res.output
    res = run("tune", "--study", "nope", "--storage", url, "--no-tracking")
    assert res.exit_code != 0 and "No study named 'nope'" in res.output


def test_tune_default_study_name_and_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = run("tune", "--dataset", "iris", "--trials", "2", "--penalty", "l2", "--optimizer", "lbfgs",
              "--no-tracking", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["study"].startswith("iris-") and (tmp_path / "tuner-studies.db").is_file()
    assert "tuner-studies.db" in s["storage"]


def test_study_best_without_a_completed_trial_counts_what_the_study_holds(tmp_path: Path) -> None:
    """It said 'no completed trial yet' of a study whose every trial was pruned."""
    import optuna

    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = optuna.create_study(study_name="pr", storage=url)
    for state in ("PRUNED", "PRUNED", "FAIL"):
        study.tell(study.ask(), state=optuna.trial.TrialState[state])
    result = CliRunner().invoke(cli, ["study", "best", "pr", "--storage", url])
    assert result.exit_code == 1
    assert "no completed trial yet (2 pruned, 1 failed); `tuner study show pr` gives the reasons" in result.output


def test_study_list_columns_stay_aligned_and_a_foreign_or_empty_study_is_said(db: str, tmp_path: Path) -> None:
    """A name over 40 characters pushed its row's numbers out from under their headings; a study
    another program made showed ``data: None``; an export without trials printed nothing."""
    import optuna

    url = _copy_with_a_multi_objective_study(db, tmp_path)
    long_name = "a-study-name-well-over-forty-characters-long-" + "x" * 10
    optuna.create_study(study_name=long_name, storage=url).ask()  # one trial left RUNNING
    lines = run("study", "list", "--storage", url).output.splitlines()
    header, rows = lines[0], [ln for ln in lines[1:] if ln.split()[0] in ("alpha", "foreign", long_name)]
    assert len(rows) == 3
    for heading in ("COMPLETE", "PRUNED", "FAILED", "RUNNING", "BEST"):  # right-aligned under their heading
        end = header.index(heading) + len(heading)
        assert all(row[end - 1] != " " and (len(row) == end or row[end] == " ") for row in rows), (heading, lines)
    assert next(r for r in rows if r.startswith(long_name)).split()[1:5] == ["0", "0", "0", "1"]
    shown = run("study", "show", long_name, "--storage", url).output
    assert "not a logreg-tuner study: it has no spec stored" in shown and "data: None" not in shown
    optuna.create_study(study_name="empty", storage=url)
    exported = run("study", "export", "empty", "--storage", url)
    assert exported.exit_code == 0
    assert exported.stdout == "number,state,value,datetime_start,datetime_complete,duration_seconds\n"
    assert "Study empty has no trials yet" in exported.stderr


def _strict_json(text: str) -> Any:
    """JSON as JavaScript's JSON.parse reads it: the NaN and Infinity tokens Python writes are refused."""
    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_output_writes_a_metric_that_is_no_number_as_null(tmp_path: Path) -> None:
    """A test file of one class has no ROC AUC: ``--json`` wrote ``"roc_auc": NaN``, which
    JSON.parse, Go and Java refuse; so did ``study best/show --json`` and ``study export``."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 4, -1]]
    frame.iloc[:450].to_csv(tmp_path / "train.csv", index=False)
    one_class = frame.iloc[450:]
    one_class[one_class["target"] == 1].to_csv(tmp_path / "test.csv", index=False)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    res = runner.invoke(cli, ["tune", str(tmp_path / "train.csv"), "--target", "target", "--test-file",
                              str(tmp_path / "test.csv"), "--study", "one", "--trials", "2", "--storage", storage,
                              "--no-tracking", "--json"])
    assert res.exit_code == 0, res.output
    summary = _strict_json(res.stdout)
    assert summary["test"]["roc_auc"] is None and summary["test"]["log_loss"] > 0
    assert any("test rows (" in w and "hold one class (1)" in w and "roc_auc is undefined" in w
               for w in summary["warnings"]), summary["warnings"]
    for args in (["study", "best", "one", "--json"], ["study", "show", "one", "--json"],
                 ["study", "export", "one", "--format", "json"]):
        res = runner.invoke(cli, [*args, "--storage", storage])
        assert res.exit_code == 0, res.output
        assert "NaN" not in res.stdout and _strict_json(res.stdout), args
