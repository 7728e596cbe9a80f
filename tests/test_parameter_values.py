"""Parameter values as a Python user passes them: NumPy numbers taken like literals (and stored as
Python numbers), and values that would be ignored or misread refused in one line naming the
parameter the caller wrote (found by a review of the Python API)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from sklearn.model_selection import GridSearchCV

import tuner
from tuner.errors import ConfigError, InvalidParameterError


def test_numpy_numbers_are_taken_like_literals(tmp_path: Path, breast_cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = breast_cancer
    i = np.int64
    report = tuner.fit(X, y, optimizer="sgd", epochs=i(3), batch_size=i(32), patience=i(2), seed=i(1),
                       tol=np.float32(1e-3), val_size=np.float64(0.2))
    assert len(report.history) <= 3
    config = tuner.TrainConfig(epochs=i(3), batch_size=i(32), patience=i(2), tol=np.float32(1e-3), seed=i(4))
    config.check()
    assert [type(v) for v in (config.epochs, config.batch_size, config.patience, config.tol, config.seed)] == \
        [int, int, int, float, int]
    storage = f"sqlite:///{tmp_path / 's.db'}"
    result = tuner.tune(X, y, penalty="l2", optimizer="lbfgs", trials=i(3), epochs=i(20), cv=i(3), seed=i(2),
                        batch_trials=i(2), timeout=np.float64(600), class_weight={i(0): np.float32(2.0), i(1): 1.0},
                        study_name="np", storage=storage)
    assert result.n_complete + result.n_pruned == 3
    spec = json.loads(optuna.load_study(study_name="np", storage=storage).user_attrs["spec"])
    assert spec["n_trials"] == 3 and spec["cv"] == 3 and spec["train"]["epochs"] == 20
    assert spec["train"]["class_weight"] == {"0": 2.0, "1": 1.0}


def test_a_grid_search_over_numpy_values(breast_cancer: tuple[np.ndarray, np.ndarray]) -> None:
    """GridSearchCV hands each grid value over as it is (np.int64 from np.arange)."""
    X, y = breast_cancer
    grid = GridSearchCV(tuner.LogisticRegression(optimizer="adam", random_state=0),
                        {"max_epochs": np.arange(20, 41, 20), "batch_size": np.array([64])}, cv=2, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short Adam run may warn that it did not settle
        grid.fit(X, y)
    assert grid.best_params_["max_epochs"] in (20, 40) and grid.best_score_ > 0.9


@pytest.mark.parametrize("epochs", [True, 0, 2.5, "10"])
def test_a_count_that_is_not_a_whole_number_is_refused(epochs: object) -> None:
    with pytest.raises(ConfigError, match=f"The 'epochs' parameter must be an integer >= 1; got {epochs!r}"):
        tuner.fit(dataset="iris", epochs=epochs)  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_trials", ["x", -3, 0, 1.5, True])
def test_a_bad_batch_trials_is_refused_before_the_study_is_stored(tmp_path: Path, batch_trials: object) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ConfigError, match=r"The 'batch_trials' parameter must be an integer >= 1, 'auto' or None"):
        tuner.tune(dataset="iris", trials=2, batch_trials=batch_trials, study_name="b",  # type: ignore[arg-type]
                   storage=storage)
    assert not optuna.study.get_all_study_names(storage)


def test_a_batch_size_with_a_full_batch_optimizer_is_refused(breast_cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = breast_cancer
    with pytest.raises(InvalidParameterError, match="The 'batch_size' parameter of LogisticRegression sizes the steps "
                                                    "of mini-batch optimizers; lbfgs reads every row at once"):
        tuner.LogisticRegression(optimizer="lbfgs", batch_size=10).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tuner.LogisticRegression(optimizer="sgd", batch_size=10, max_epochs=2).fit(X, y).n_iter_[0] == 2


def test_tuned_estimator_messages_name_its_own_parameters(breast_cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = breast_cancer
    cases = [({"validation_fraction": 1.5}, "'validation_fraction' parameter must be in"),
             ({"test_fraction": -1.0}, "'test_fraction' parameter must be in"),
             ({"max_epochs": 0}, "'max_epochs' parameter must be an integer >= 1"),
             ({"trials": 0}, r"'trials' parameter of TunedLogisticRegression must be an int in the range \[1, inf\)")]
    for given, message in cases:
        with pytest.raises(InvalidParameterError, match=message) as info:
            tuner.TunedLogisticRegression(penalty="l2", optimizer="lbfgs", **given).fit(X, y)  # type: ignore[arg-type]
        assert not any(name in str(info.value) for name in ("'val_size'", "'test_size'", "'epochs'", "of tune"))


def test_an_unknown_class_weight_names_the_estimator(breast_cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = breast_cancer
    with pytest.raises(InvalidParameterError, match="The 'class_weight' parameter of LogisticRegression must be "
                                                    "'balanced', a dict of class -> weight, or None; got 'auto'"):
        tuner.LogisticRegression(class_weight="auto").fit(X, y)
