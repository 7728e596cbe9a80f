"""Options that were accepted and did nothing, and runs that ended without a word (found by a review of the
study commands): each is now refused in one line, takes effect, or is said."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

import tuner
from tuner.cli import cli
from tuner.errors import ConfigError


def test_a_format_for_a_bundled_dataset_is_refused() -> None:
    with pytest.raises(ConfigError, match="A file format .*'csv'.* does not apply to the bundled dataset 'iris'"):
        tuner.fit(dataset="iris", fmt="csv")


def test_no_tracking_with_a_tracking_uri_given_is_a_contradiction(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    both = runner.invoke(cli, ["tune", "--dataset", "iris", "--trials", "1", "--no-tracking",
                               "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert both.exit_code == 2 and "--no-tracking and --tracking-uri contradict each other" in both.output
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "tuner-studies.db").exists()
    from_env = runner.invoke(cli, ["tune", "--dataset", "iris", "--trials", "1", "--no-tracking", "--json"],
                             env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'env.db'}"})
    assert from_env.exit_code == 0, from_env.output  # a default from the environment is no contradiction
    assert not (tmp_path / "env.db").exists()


def test_an_empty_plugin_list_is_refused_and_repeats_are_one(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ConfigError, match="The 'penalty' parameter names no plugin"):
        tuner.tune(dataset="iris", penalty=",", trials=1)
    tuner.tune(dataset="iris", penalty="l2,l2,l1", optimizer="lbfgs", trials=1, study_name="p", storage=storage)
    spec = json.loads(optuna.load_study(study_name="p", storage=storage).user_attrs["spec"])
    assert spec["penalties"] == ["l2", "l1"]
    assert tuner.tune(penalty="l1,l2", optimizer="lbfgs", dataset="iris", trials=2, study_name="p",
                      storage=storage).n_complete == 2  # the same plugins, resumed


def test_a_batch_size_keeps_the_mini_batch_optimizers_or_is_refused(tmp_path: Path) -> None:
    """On small data the default search keeps only full-batch solvers, where --batch-size did nothing."""
    with pytest.raises(ConfigError, match="The 'batch_size' parameter sizes the steps of mini-batch optimizers; newton"):
        tuner.fit(dataset="iris", optimizer="newton", batch_size=8)
    with pytest.raises(ConfigError, match="the search has none \\(newton"):
        tuner.tune(dataset="iris", optimizer="newton", batch_size=8, trials=1)
    storage = f"sqlite:///{tmp_path / 's.db'}"

    def searched(name: str, **kw: object) -> list[str]:
        tuner.tune(dataset="iris", trials=1, penalty="l2", epochs=3, study_name=name, storage=storage, **kw)
        return json.loads(optuna.load_study(study_name=name, storage=storage).user_attrs["spec"])["optimizers"]

    assert {"sgd", "adam"} <= set(searched("sized", batch_size=8))
    assert searched("default") == ["newton"]  # small data: the exact solvers that use the Hessian


def test_a_run_cut_short_by_its_timeout_says_so(tmp_path: Path) -> None:
    """It stopped at 2 of 20 trials with exit code 0 and not a word."""
    result = tuner.tune(dataset="breast_cancer", trials=500, timeout=1.0, penalty="l2", optimizer="newton")
    done = result.n_complete + result.n_pruned
    assert 0 < done < 500
    assert f"the timeout (1 s) ended this run with {done} of the budget's 500 trials done" in " ".join(result.warnings)
    full = tuner.tune(dataset="iris", trials=2, timeout=600.0, penalty="l2", optimizer="newton")
    assert not any("timeout" in w for w in full.warnings)


def test_a_blank_study_name_and_a_folder_for_a_store_are_refused(tmp_path: Path) -> None:
    from tuner.errors import StorageError

    with pytest.raises(ConfigError, match="The 'study_name' parameter is blank"):
        tuner.tune(dataset="iris", trials=1, study_name=" ")
    for url in (f"sqlite:///{tmp_path / 'new'}/", f"sqlite:///{tmp_path}"):
        with pytest.raises(StorageError, match="names a folder"):
            tuner.tune(dataset="iris", trials=1, storage=url)
    assert not (tmp_path / "new").exists()


def test_messages_name_the_flags_of_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    split = runner.invoke(cli, ["train", "--dataset", "iris", "--test-size", "0.9"])
    assert split.exit_code == 1 and "--val-size (0.2) and --test-size (0.9) leave no rows for training" in split.output
    same = runner.invoke(cli, ["tune", "--dataset", "iris", "--trials", "1", "--storage",
                               f"sqlite:///{tmp_path / 'x.db'}", "--tracking-uri", f"sqlite:///{tmp_path / 'x.db'}"])
    assert same.exit_code == 1 and "change --storage or --tracking-uri" in same.output, same.output
