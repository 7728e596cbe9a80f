"""The public Python API: tuner.fit, tuner.tune, tuner.load_model, and the CLI on top of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.metrics import accuracy_score

import tuner
from tuner.cli import cli


def cli_json(*args: Any) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args] + ["--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------
# tuner.fit


def test_fit_with_no_params_reaches_the_log_loss_of_tuner_train_defaults() -> None:
    report = tuner.fit(dataset="breast_cancer")
    train = cli_json("train", "--dataset", "breast_cancer", "--penalty", "l2", "--optimizer", "lbfgs")
    assert report.penalty == "l2" and report.optimizer == "lbfgs"
    assert report.validation["log_loss"] == pytest.approx(train["validation"]["log_loss"], rel=1e-9)
    assert report.test["log_loss"] == pytest.approx(train["test"]["log_loss"], rel=1e-9)
    assert report.penalty_params == train["penalty_params"] and report.optimizer_params == train["optimizer_params"]
    assert (report.n_train, report.n_val, report.n_test) == (train["n_train"], train["n_val"], train["n_test"])
    assert report.history and report.epochs_run == len(report.history) == train["epochs_run"]
    proba = report.model.predict_proba(load_breast_cancer().data[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_fills_every_hyperparameter_the_plugins_declare(optimizer: str) -> None:
    """`fit({})`-style calls once raised KeyError: 'lr'; every default now comes from the plugin's space."""
    report = tuner.fit(dataset="iris", optimizer=optimizer, epochs=3)
    space = tuner.optimizers.get(optimizer).search_space
    assert report.optimizer_params == {name: hp.default for name, hp in space.items()}
    assert set(report.params) == {f"penalty.{k}" for k in report.penalty_params} | {f"optimizer.{k}" for k in space}


def test_fit_on_arrays_with_bare_and_qualified_hyperparameter_names() -> None:
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    report = tuner.fit(X, names, penalty="l1", optimizer="fista", params={"strength": "1e-3", "optimizer.lr": 0.5},
                       val_size=0.0, test_size=0.0, dtype="float64")
    assert report.penalty_params["strength"] == pytest.approx(1e-3) and report.optimizer_params["lr"] == 0.5
    assert report.n_train == len(y) and report.classes == ["setosa", "versicolor", "virginica"]
    assert (report.model.predict(X) == names).mean() > 0.9
    assert report.model.predict(X).dtype.kind == "U"  # the labels' dtype, not object
    numbered = tuner.fit(X, y, val_size=0.0, test_size=0.0).model.predict(X)
    assert numbered.dtype == np.int64 and accuracy_score(y, numbered) > 0.9  # an object array: "unknown targets"


def test_fit_takes_a_split_dataset_as_it_is() -> None:
    from tuner.data import load_data, prepare

    ds = prepare(load_data(dataset="wine"), val_size=0.3, test_size=0.0, seed=3)
    report = tuner.fit(ds, val_size=0.5, seed=0)  # the split options do not re-split a Dataset
    assert (report.n_train, report.n_val, report.n_test) == (len(ds.y_train), len(ds.y_val), 0)
    assert report.validation and not report.test


def test_fit_refuses_unknown_names_in_parameter_terms_before_reading_data() -> None:
    with pytest.raises(tuner.ConfigError, match=r"params\['nope'\]: neither plugin declares it"):
        tuner.fit(dataset="iris", params={"nope": 1})
    with pytest.raises(tuner.ConfigError, match=r"params\['optimizer.sgd.lr'\] is for optimizer 'sgd'"):
        tuner.fit(dataset="iris", params={"optimizer.sgd.lr": 0.1})
    with pytest.raises(tuner.ConfigError, match="'y' parameter"):
        tuner.fit(np.zeros((4, 2)))


def test_sample_weight_moves_the_fit_toward_the_heavier_rows() -> None:
    X, y = load_iris(return_X_y=True)
    keep = y < 2
    X, y = X[keep], y[keep]
    common: dict[str, Any] = {"val_size": 0.0, "test_size": 0.0, "dtype": "float64", "params": {"strength": 1e-1}}
    plain = tuner.fit(X, y, **common).model.predict_proba(X)[:, 1].mean()
    heavy = tuner.fit(X, y, sample_weight=np.where(y == 1, 5.0, 1.0), **common).model.predict_proba(X)[:, 1].mean()
    light = tuner.fit(X, y, sample_weight=np.where(y == 1, 0.2, 1.0), **common).model.predict_proba(X)[:, 1].mean()
    assert light + 0.02 < plain < heavy - 0.02
    with pytest.raises(tuner.ConfigError, match="val_size=0 and test_size=0"):
        tuner.fit(X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(tuner.ConfigError, match="one weight per row"):
        tuner.fit(X, y, sample_weight=np.ones(3), **common)


# ---------------------------------------------------------------------------------------------
# tuner.tune and tuner.load_model


def test_tune_in_memory_returns_a_result_whose_best_model_predicts() -> None:
    ended: list[tuple[int, str]] = []

    class Watch(tuner.StudyObserver):
        def on_trial_end(self, study: Any, trial: Any, state: str, value: Any, outcome: Any,
                         reason: Any) -> dict[str, Any]:
            ended.append((trial.number, state))
            return {}

    result = tuner.tune(dataset="breast_cancer", trials=5, penalty=["l2", "l1"], optimizer="fista", epochs=30,
                        observers=[Watch()])
    assert isinstance(result, tuner.TuneResult)
    assert sorted(ended) == [(t.number, t.state) for t in result.trials]
    assert result.storage_url is None and result.tracking_uri is None and result.model_uri is None
    assert result.n_complete + result.n_pruned == 5 and len(result.trials) == 5
    complete = [t.value for t in result.trials if t.state == "COMPLETE" and t.value is not None]
    assert result.best_value == min(complete) and result.metric == "log_loss"
    assert result.best_params["penalty"] in ("l2", "l1") and result.best_params["optimizer"] == "fista"
    assert result.model is not None and set(result.test) >= {"log_loss", "accuracy"}
    X, y = load_breast_cancer(return_X_y=True)
    assert (result.model.predict(X) == y).mean() > 0.9
    assert result.summary()["storage"] == "memory"


def test_tune_with_a_storage_and_tracking_registers_a_model_that_load_model_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts folder
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    storage, tracking = f"sqlite:///{tmp_path / 'studies.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = tuner.tune(dataset="breast_cancer", trials=2, penalty="l2", optimizer="lbfgs", epochs=20,
                        study_name="api-bc", storage=storage, tracking_uri=tracking)
    assert result.study_name == "api-bc" and result.storage_url == storage
    assert result.registered_model_name == "api-bc" and result.registered_model_version == "1"
    assert result.model_uri == "models:/api-bc/1" and result.parent_run_id and result.experiment_id
    assert result.experiment_name == "api-bc"
    capfd.readouterr()
    model = tuner.load_model(result.model_uri, tracking_uri=tracking)
    assert "Downloading artifacts" not in capfd.readouterr().err  # MLflow's progress bar: a screenful of redraws
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # turned off for the download only
    X = load_breast_cancer().data
    assert result.model is not None
    np.testing.assert_allclose(model.predict_proba(X), result.model.predict_proba(X), rtol=1e-12, atol=0)
    monkeypatch.chdir(tmp_path / "..")  # no mlflow.db here: the store comes from MLFLOW_TRACKING_URI, as documented
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    from_env = tuner.load_model(result.model_uri)
    np.testing.assert_array_equal(from_env.predict_proba(X), model.predict_proba(X))
    monkeypatch.chdir(tmp_path)
    # the same study, resumed: the budget grows and nothing else may change
    more = tuner.tune(dataset="breast_cancer", trials=3, penalty="l2", optimizer="lbfgs", epochs=20,
                      study_name="api-bc", storage=storage)
    assert more.n_complete + more.n_pruned == 3
    with pytest.raises(tuner.ConfigError, match="created with different options"):
        tuner.tune(dataset="breast_cancer", trials=4, penalty="l2", optimizer="lbfgs", epochs=21,
                   study_name="api-bc", storage=storage)


def test_load_model_reads_a_folder_saved_by_fit(tmp_path: Path) -> None:
    report = tuner.fit(dataset="wine", save_model=tmp_path / "model")
    assert report.model_path == tmp_path / "model"
    model = tuner.load_model(tmp_path / "model")
    from sklearn.datasets import load_wine

    X = load_wine().data
    np.testing.assert_allclose(model.predict_proba(X), report.model.predict_proba(X))


# ---------------------------------------------------------------------------------------------
# the package


def test_import_tuner_imports_no_torch_and_lists_the_public_api() -> None:
    code = ("import sys, tuner; assert 'torch' not in sys.modules, 'torch'; "
            "assert 'optuna' not in sys.modules and 'mlflow' not in sys.modules; "
            "missing = [n for n in tuner.__all__ if not hasattr(tuner, n)]; assert not missing, missing")
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in ("fit", "tune", "load_model", "TuneResult", "FitReport", "TrainConfig", "Callback", "StudyObserver"):
        assert name in tuner.__all__ and name in dir(tuner)
    assert (Path(tuner.__file__).parent / "py.typed").is_file()


def test_extension_points_are_the_classes_the_core_uses() -> None:
    from tuner.study import StudyObserver
    from tuner.train import Callback, TrainConfig

    assert tuner.TrainConfig is TrainConfig and tuner.Callback is Callback and tuner.StudyObserver is StudyObserver
    with pytest.raises(AttributeError):
        tuner.no_such_name  # noqa: B018


def test_a_callback_given_to_fit_sees_every_epoch() -> None:
    seen: list[int] = []

    class Count(tuner.Callback):
        def on_epoch_end(self, state: Any, logs: dict[str, float]) -> None:
            seen.append(state.epoch)

    report = tuner.fit(dataset="iris", callbacks=[Count()])
    assert len(seen) == report.epochs_run > 0


def test_options_that_would_be_ignored_are_refused(tmp_path: Path) -> None:
    """monitor='val' without validation rows stopped on the objective; the file-reading options with
    arrays or a bundled set were dropped. Each said nothing."""
    X, y = load_iris(return_X_y=True)
    with pytest.raises(tuner.ConfigError, match="'monitor' parameter is 'val'.*'val_size' parameter is 0"):
        tuner.fit(dataset="iris", monitor="val", val_size=0)
    with pytest.raises(tuner.ConfigError, match="'monitor' parameter is 'val'"):
        tuner.tune(dataset="iris", monitor="val", val_size=0, cv=3, trials=1)
    with pytest.raises(tuner.ConfigError, match="The 'fmt' and 'n_features' parameters say how a file is read; data "
                                                "given in memory is not read from a file"):
        tuner.fit(X, y, fmt="svmlight", n_features=10)
    with pytest.raises(tuner.ConfigError, match="'encoding' parameter says how a file is read; data given in memory"):
        tuner.tune(X, y, encoding="latin-1", trials=1)
    # a test share beside a test file was dropped (the CLI refused the pair; Python took it)
    data = tmp_path / "rows.csv"
    frame = load_breast_cancer(as_frame=True).frame
    frame.iloc[:400].to_csv(data, index=False)
    frame.iloc[400:].to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(tuner.ConfigError, match="'test_size' parameter splits a test part off .* give one of the two"):
        tuner.fit(str(data), target="target", test_file=tmp_path / "test.csv", test_size=0.3)
    report = tuner.fit(str(data), target="target", test_file=tmp_path / "test.csv")
    assert report.n_test == 169 and report.n_train + report.n_val == 400
    assert tuner.fit(str(data), target="target").n_test == 80  # 0.2 by default without a test file
    res = CliRunner().invoke(cli, ["train", "--dataset", "iris", "--monitor", "val", "--val-size", "0"])
    assert res.exit_code == 1 and "--monitor" in res.output and "--val-size" in res.output, res.output
    assert tuner.fit(X, y, monitor="val").stop_reason  # with validation rows it still trains


def test_dataframes_with_repeated_names_or_a_categorical_text_column() -> None:
    """Repeated column names (also 1 beside '1') were a pandas TypeError from deep inside; a text
    column of pandas' category dtype with a missing value was a 70-line traceback."""
    import pandas as pd

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    for columns in (["a", "b", "a"], [1, "1", 2]):
        with pytest.raises(tuner.DataError, match=r"names the column\(s\) \['(a|1)'\] more than once"):
            tuner.fit(pd.DataFrame(X.to_numpy(), columns=columns), y)
    model = tuner.fit(X, y).model
    with pytest.raises(tuner.DataError, match=r"Column name\(s\) \['a'\] appear more than once"):
        model.predict(pd.DataFrame(X.to_numpy()[:, [0, 1, 2, 0]], columns=["a", "b", "c", "a"]))
    texts = pd.DataFrame({"review": pd.Series(["good film", "bad film", None, "good"] * 10, dtype="category")})
    labels = [1, 0, 0, 1] * 10
    text_model = tuner.fit(texts, labels, text_column="review").model
    assert text_model.predict(texts.head(3)).tolist() == [1, 0, 0]


# ---------------------------------------------------------------------------------------------
# the CLI: flags in its messages, --quiet on the subcommands


def test_the_cli_names_its_flags_where_the_core_names_parameters() -> None:
    res = CliRunner().invoke(cli, ["train", "--dataset", "iris", "--penalty", "l2", "--optimizer", "lbfgs",
                                   "--val-size", "1.5"])
    assert res.exit_code == 1 and "--val-size" in res.output and "'val_size'" not in res.output, res.output
    res = CliRunner().invoke(cli, ["train", "--dataset", "iris", "--penalty", "l2", "--optimizer", "lbfgs",
                                   "--param", "optimizer.sgd.lr=0.1"])
    assert res.exit_code == 1 and "--param 'optimizer.sgd.lr'" in res.output and "params[" not in res.output


def test_quiet_is_accepted_after_the_subcommand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNER_STORAGE", raising=False)
    args = ["tune", "--dataset", "iris", "--trials", "1", "--penalty", "l2", "--optimizer", "lbfgs", "--epochs", "5",
            "--no-tracking"]
    loud = CliRunner().invoke(cli, args)
    quiet = CliRunner().invoke(cli, [*args, "--study", "quiet", "-q"])
    assert loud.exit_code == 0 and quiet.exit_code == 0, quiet.output
    assert "Study storage:" in loud.stderr and "Study storage:" not in quiet.stderr


def test_tune_narrows_only_the_plugin_lists_the_caller_left_to_their_defaults() -> None:
    """As on the command line: small data and no optimizer given -> the exact solvers, with a notice;
    an optimizer given -> searched as asked."""
    defaults = tuner.tune(dataset="iris", trials=2, seed=1)
    assert any("exact full-batch solvers" in w for w in defaults.warnings), defaults.warnings
    assert all(tuner.optimizers.get(t.params["variant"].split(":")[1]).full_batch for t in defaults.trials)
    asked = tuner.tune(dataset="iris", trials=2, seed=1, optimizer="adam")
    assert not any("exact full-batch solvers" in w for w in asked.warnings)
    assert {t.params["variant"].split(":")[1] for t in asked.trials} == {"adam"}


def test_tune_resumes_with_the_call_that_created_the_study_and_refuses_a_contradicting_option(
        tmp_path: Path) -> None:
    """The same call twice was refused (the stored plugin list, narrowed on small data, against
    every plugin); a resume by name alone ignored every option given with it."""
    from tuner.errors import ConfigError

    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = tuner.tune(dataset="breast_cancer", study_name="s", storage=storage, trials=2, epochs=20)
    again = tuner.tune(dataset="breast_cancer", study_name="s", storage=storage, trials=3, epochs=20)
    assert first.n_complete + first.n_pruned == 2 and again.n_complete + again.n_pruned == 3
    by_name = tuner.tune(study_name="s", storage=storage, trials=4)  # defaults: the stored options are used
    assert by_name.n_complete + by_name.n_pruned == 4 and by_name.metric == "log_loss"
    for option in ({"metric": "accuracy"}, {"epochs": 3}, {"penalty": "l1"}, {"cv": 5}):
        with pytest.raises(ConfigError, match="created with different options"):
            tuner.tune(study_name="s", storage=storage, trials=5, **option)


def test_integer_column_names_are_matched_by_name_not_by_position() -> None:
    """A DataFrame built with integer column names was read by position at predict (as a file
    without a header): its columns reordered gave other probabilities without a word."""
    import pandas as pd

    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(X)
    model = tuner.fit(frame, y, penalty="l2", optimizer="lbfgs", val_size=0, test_size=0).model
    np.testing.assert_array_equal(model.predict_proba(frame[[3, 2, 1, 0]]), model.predict_proba(frame))
    with pytest.raises(tuner.DataError, match="trained on 4 columns"):
        model.predict_proba(frame[[0, 1, 2]])


def test_integer_names_that_are_not_pandas_numbering_are_never_positions() -> None:
    """Integer names holding three of the four training names ([0, 1, 2, 5] for a model trained
    on [3, 1, 2, 0]) were read by position, each column as another: probabilities off by up to 1."""
    import pandas as pd

    X, y = load_breast_cancer(return_X_y=True)
    trained = pd.DataFrame(X[:, [3, 1, 2, 0]], columns=[3, 1, 2, 0])
    model = tuner.fit(trained, y, penalty="l2", optimizer="lbfgs", val_size=0, test_size=0).model
    with pytest.raises(tuner.DataError, match=r"lack the training column\(s\) \['3'\] and hold column\(s\) \['5'\]"):
        model.predict_proba(pd.DataFrame(X[:, [0, 1, 2, 5]], columns=[0, 1, 2, 5]))
    by_name = pd.DataFrame(X[:, [0, 1, 2, 3]], columns=[0, 1, 2, 3])  # pandas' numbering, every name present
    np.testing.assert_allclose(model.predict_proba(by_name), model.predict_proba(trained), rtol=1e-12)


def test_numbers_held_as_objects_are_numeric_labels() -> None:
    """Object-dtype 0/1 labels became the strings '0'/'1': predictions never equalled the labels."""
    import pandas as pd

    X, y = load_breast_cancer(return_X_y=True)
    result = tuner.fit(X, pd.Series(y).astype(object).to_numpy(), penalty="l2", optimizer="lbfgs",
                       val_size=0, test_size=0)
    assert list(result.model.classes_) == [0, 1]
    assert (result.model.predict(X) == y).mean() > 0.95


def test_a_nan_in_arrays_names_its_row_in_the_arrays_given() -> None:
    """The row was one inside a split (19 for row 3), or the NaN was called an overflow."""
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    for row in (3, 4):
        bad = X.copy()
        bad[row, 2] = np.nan
        with pytest.raises(tuner.DataError, match=rf"^Feature values must be finite; row {row} column 2 holds nan"):
            tuner.fit(bad, y)


def test_an_unknown_metric_is_a_config_error_listing_the_metrics(tmp_path: Path) -> None:
    """It was a bare KeyError: 'auc', raised once the data was read and the study opened."""
    with pytest.raises(tuner.ConfigError, match=r"^The 'metric' parameter must be one of \['log_loss', 'accuracy', "
                                                r"'roc_auc', 'f1'\]; got 'auc' instead\.$"):
        tuner.tune(dataset="breast_cancer", trials=2, metric="auc", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert not (tmp_path / "s.db").exists()
