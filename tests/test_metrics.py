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
    assert m["f1"] == pytest.approx(f1_score(y, p1 > 0.5, average="macro"))


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
