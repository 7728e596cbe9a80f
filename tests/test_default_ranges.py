"""A new study searches the penalty strength up to ten times the training data's lambda_max
(above it L1 has every weight at zero): the bound is right, stored with the study, and never
overrides a range the user gave or a penalty of another convention."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _broken_plugins import installed_penalties

from tuner import fit
from tuner.data import load_data, prepare
from tuner.study import DataSpec, StudySpec, run_study, study_record, trial_records
from tuner.study._default_ranges import CEILING_FACTOR, lambda_max, strength_ceiling
from tuner.train import class_weights


@pytest.mark.parametrize("dataset, class_weight", [("breast_cancer", None), ("breast_cancer", "balanced"),
                                                   ("wine", None)])
def test_lambda_max_is_where_l1_sets_every_weight_to_zero(dataset: str, class_weight: str | None) -> None:
    """Binary (with and without class weights) and multinomial: just above lambda_max an exact L1
    fit has no non-zero weight, just below it has some."""
    ds = prepare(load_data(None, dataset=dataset), val_size=0, test_size=0, seed=0)
    weights = class_weights(ds.y_train, ds.n_classes, class_weight)[ds.y_train]
    lmax = lambda_max(ds.X_train, ds.y_train, ds.n_classes, weights)
    assert lmax > 0
    if class_weight:  # breast_cancer's classes are 212 and 357 rows: the weights move the bound
        assert abs(lmax / lambda_max(ds.X_train, ds.y_train, ds.n_classes) - 1) > 0.02
    above = fit(dataset=dataset, penalty="l1", optimizer="fista", val_size=0, test_size=0, class_weight=class_weight,
                params={"penalty.strength": 1.02 * lmax}, epochs=300, dtype="float64")
    below = fit(dataset=dataset, penalty="l1", optimizer="fista", val_size=0, test_size=0, class_weight=class_weight,
                params={"penalty.strength": 0.98 * lmax}, epochs=300, dtype="float64")
    assert above.n_nonzero_weights == 0
    assert below.n_nonzero_weights > 0


def weak_signal_csv(path: Path, seed: int = 0) -> Path:
    """1,000 rows whose label barely depends on 20 noise-like columns: a small lambda_max."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1000, 20))
    y = (X[:, 0] * 0.1 + rng.normal(size=1000) > 0).astype(int)
    lines = ["label," + ",".join(f"x{j}" for j in range(20))]
    lines += [f"{y[i]}," + ",".join(f"{v:.5f}" for v in X[i]) for i in range(1000)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_new_study_stores_the_ceiling_and_keeps_to_it(tmp_path: Path) -> None:
    path = weak_signal_csv(tmp_path / "weak.csv")
    raw = load_data(path, target="label")
    ds = prepare(raw, val_size=0.2, test_size=0.2, seed=0)
    ceiling = CEILING_FACTOR * lambda_max(ds.X_train, ds.y_train, ds.n_classes)
    assert ceiling < 1.0  # the declared range goes to 10: more than a decade is cut

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(data=DataSpec(path=str(path), target="label"), penalties=["l1", "l2"], optimizers=["fista"],
                     n_trials=6, train={"epochs": 30})
    result = run_study(spec, "weak", url, refit_best=False, changes={})
    notice = [w for w in result.warnings if w.startswith("penalty.strength is searched in 1e-07..")]
    assert len(notice) == 1, result.warnings
    stored = study_record(url, "weak").spec["params"]["penalty.strength"]
    low, _, high = stored.removesuffix(":log").partition("..")
    assert float(low) == 1e-7 and ceiling <= float(high) < 2 * ceiling  # rounded up to one digit
    strengths = [r.params["penalty.strength"] for r in trial_records(url, "weak")]
    assert len(strengths) == 6 and max(strengths) <= float(high)

    # a resume searches the stored range and says nothing new about it
    again = run_study(None, "weak", url, refit_best=False, n_trials=8, changes={})
    assert not [w for w in again.warnings if "is searched in" in w]
    assert study_record(url, "weak").spec["params"]["penalty.strength"] == stored
    assert max(r.params["penalty.strength"] for r in trial_records(url, "weak")) <= float(high)


def test_the_users_range_and_small_cuts_are_left_alone(tmp_path: Path) -> None:
    ds = prepare(load_data(weak_signal_csv(tmp_path / "weak.csv"), target="label"), val_size=0.2, test_size=0.2)
    given = StudySpec(data=DataSpec(dataset="x"), penalties=["l1", "l2"], optimizers=["fista"],
                      params={"penalty.strength": "1e-3..5:log"})
    assert strength_ceiling(given, ds) == [] and given.params == {"penalty.strength": "1e-3..5:log"}
    per_plugin = StudySpec(data=DataSpec(dataset="x"), penalties=["l1"], optimizers=["fista"],
                           params={"penalty.l1.strength": "1e-3..5:log"})
    assert strength_ceiling(per_plugin, ds) == [] and list(per_plugin.params) == ["penalty.l1.strength"]
    # breast_cancer: lambda_max 0.38, a ceiling of 4 would cut less than a decade of 1e-7..10
    bc = prepare(load_data(None, dataset="breast_cancer"), val_size=0.2, test_size=0.2, seed=0)
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l1", "l2"], optimizers=["fista"])
    assert strength_ceiling(spec, bc) == [] and spec.params == {}
    none_only = StudySpec(data=DataSpec(dataset="x"), penalties=["none"], optimizers=["fista"])
    assert strength_ceiling(none_only, ds) == [] and none_only.params == {}


@pytest.fixture
def other_convention(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A third-party ridge declaring ``strength`` without saying how it splits into L1 and L2."""
    yield from installed_penalties(monkeypatch, tmp_path / "site", "tuner_test_ranges", {"picky_ridge": "PickyRidge"})


def test_a_penalty_of_another_convention_keeps_the_declared_range(other_convention: None, tmp_path: Path) -> None:
    """Its strength shares the built-ins' Optuna parameter, and the bound means nothing for it."""
    ds = prepare(load_data(weak_signal_csv(tmp_path / "weak.csv"), target="label"), val_size=0.2, test_size=0.2)
    ours = StudySpec(data=DataSpec(dataset="x"), penalties=["l1", "l2"], optimizers=["sgd"])
    assert strength_ceiling(ours, ds) != [] and "penalty.strength" in ours.params
    mixed = StudySpec(data=DataSpec(dataset="x"), penalties=["l1", "picky_ridge"], optimizers=["sgd"])
    assert strength_ceiling(mixed, ds) == [] and mixed.params == {}
