"""Evaluation metrics: scikit-learn's values, their directions, saturated probabilities."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from tuner.train import METRICS, direction, evaluate


def test_binary_metrics_are_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.5 * y + rng.uniform(0, 0.5, 200), 0.01, 0.99)
    proba = np.column_stack([1 - p1, p1])
    m = evaluate(y, proba, 2)
    assert set(m) == {"log_loss", "accuracy", "roc_auc", "f1"}
    assert m["log_loss"] == pytest.approx(log_loss(y, proba))
    assert m["accuracy"] == accuracy_score(y, p1 > 0.5)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert m["f1"] == pytest.approx(f1_score(y, p1 > 0.5))  # scikit-learn's "f1": the positive class's


def test_binary_f1_is_the_positive_classs_not_the_macro_average() -> None:
    """On imbalanced classes the two differ widely: "f1" means the positive class's F1, as in
    scikit-learn's scorer (the macro average was reported under that name)."""
    y = np.array([0] * 90 + [1] * 10)
    predicted = np.array([0] * 85 + [1] * 5 + [1] * 4 + [0] * 6)
    proba = np.column_stack([1.0 - predicted, predicted]) * 0.8 + 0.1
    m = evaluate(y, proba, 2, ("f1",))
    assert m["f1"] == pytest.approx(f1_score(y, predicted)) and m["f1"] == pytest.approx(8 / 19)
    assert m["f1"] != pytest.approx(f1_score(y, predicted, average="macro"))


def test_multiclass_metrics() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4], [0.3, 0.4, 0.3],
                      [0.6, 0.3, 0.1]])
    m = evaluate(y, proba, 3)
    assert set(m) == {"log_loss", "accuracy", "f1"}
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["log_loss"] == pytest.approx(log_loss(y, proba))
    assert m["f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))


def test_saturated_probabilities_give_a_finite_loss_without_warnings() -> None:
    y = np.array([1, 0, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # one confident mistake
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate(y, proba, 2)
    assert m["log_loss"] == pytest.approx(-np.log(1e-15) / 3, rel=1e-6)


def test_empty_split_and_directions() -> None:
    assert evaluate(np.array([], dtype=int), np.zeros((0, 2)), 2) == {}
    assert direction("log_loss") == "minimize" and direction("accuracy") == "maximize"
    assert set(METRICS) == {"log_loss", "accuracy", "roc_auc", "f1"}


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_match_scikit_learn_ties_and_absent_classes_included(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 5))
    n = int(rng.integers(5, 400))
    y = rng.integers(0, n_classes - (seed % 2), n)  # odd seeds: the last class never occurs
    raw = rng.integers(0, 4, (n, n_classes)).astype(float) + 0.01  # few distinct values: many ties
    proba = raw / raw.sum(axis=1, keepdims=True)
    labels = list(range(n_classes))
    m = evaluate(y, proba, n_classes)
    assert m["log_loss"] == pytest.approx(log_loss(y, proba, labels=labels), rel=1e-12)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, proba.argmax(1)), rel=1e-12)
    # scikit-learn's default labels: the classes the rows hold or the model predicts
    average = "binary" if n_classes == 2 else "macro"
    assert m["f1"] == pytest.approx(f1_score(y, proba.argmax(1), average=average, zero_division=0), rel=1e-12)
    if n_classes == 2 and len(np.unique(y)) == 2:
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]), rel=1e-12)


def test_one_class_auc_is_nan_and_a_subset_is_only_that() -> None:
    y = np.ones(5, dtype=int)
    proba = np.tile([0.3, 0.7], (5, 1))
    assert np.isnan(evaluate(y, proba, 2)["roc_auc"])
    assert evaluate(y, proba, 2, ("accuracy",)) == {"accuracy": 1.0}


def test_macro_f1_leaves_out_a_class_the_rows_lack_and_the_model_never_predicts() -> None:
    """A test file without one of three classes, none of its rows predicted as that class: the
    macro F1 averages the two classes there (scikit-learn's f1_score), not three with a 0."""
    y = np.array([1, 1, 1, 2, 2, 2])
    proba = np.zeros((6, 3))
    proba[np.arange(6), [1, 1, 2, 2, 2, 2]] = 1.0
    m = evaluate(y, proba, 3, ("f1",))
    assert m["f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))
    assert m["f1"] == pytest.approx((0.8 + 6 / 7) / 2)
