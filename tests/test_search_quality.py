"""Search quality: a 50-trial study against LogisticRegressionCV's 50 configurations.

Both sides see the same train/validation split and preprocessing; the reference is the best
validation log loss of ``LogisticRegressionCV`` (saga, Cs=10 x l1_ratios [0, .25, .5, .75, 1])
scored on that validation split. Our study's best validation log loss must be within 1%.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from tuner.data import load_data, prepare
from tuner.study import DataSpec, StudySpec, run_study


def lrcv_best_val_log_loss(ds) -> float:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import PredefinedSplit

    X = sp.vstack([ds.X_train, ds.X_val]).tocsr() if sp.issparse(ds.X_train) else np.vstack([ds.X_train, ds.X_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    fold = np.r_[np.full(len(ds.y_train), -1), np.zeros(len(ds.y_val))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = LogisticRegressionCV(Cs=10, l1_ratios=[0, 0.25, 0.5, 0.75, 1], solver="saga", cv=PredefinedSplit(fold),
                                  scoring="neg_log_loss", max_iter=1000, tol=1e-4, refit=True, n_jobs=2,
                                  use_legacy_attributes=False).fit(X, y)
    assert cv.scores_.shape == (1, 5, 10)
    return float(-np.max(cv.scores_))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["breast_cancer", "a9a"])
def test_fifty_trials_reach_logistic_regression_cv(name: str, data_dir: Path, tmp_path: Path,
                                                   record_property) -> None:
    path = data_dir / "a9a" / "a9a" if name == "a9a" else None
    raw = load_data(path, dataset=None if path else name, n_features=123 if path else None)
    ds = prepare(raw, val_size=0.2, test_size=0.2, seed=0)
    reference = lrcv_best_val_log_loss(ds)
    spec = StudySpec(data=DataSpec(path=str(path) if path else None, dataset=None if path else name,
                                   n_features=123 if path else None, fingerprint=raw.fingerprint),
                     penalties=["none", "l1", "l2", "elasticnet"],
                     optimizers=["sgd", "adam", "rmsprop", "lbfgs", "fista"], n_trials=50, seed=0)
    result = run_study(spec, f"quality-{name}", f"sqlite:///{tmp_path / 'q.db'}")
    record_property("ours_best_val_log_loss", result.best_value)
    record_property("lrcv_best_val_log_loss", reference)
    print(f"{name}: ours {result.best_value:.5f}, LogisticRegressionCV {reference:.5f}")
    assert result.counts["complete"] + result.counts["pruned"] == 50
    assert result.best_value <= 1.01 * reference
    assert result.best_outcome is not None and np.isfinite(result.best_outcome.test_metrics["log_loss"])
