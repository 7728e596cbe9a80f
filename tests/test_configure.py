"""Turning names and values into a trained, evaluated model (what `tuner train` and every trial use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tuner.study._configure as configure
from tuner import Optimizer, PluginInfo, compatibility_reason, optimizers, penalties
from tuner.data import load_data, prepare
from tuner.errors import ConfigError, IncompatiblePluginsError, PluginError
from tuner.study._configure import (
    check_plugins,
    reference_solver,
    resolve_pair,
    resolve_params,
    split_overrides,
    split_params,
    train_one,
)
from tuner.train import TrainConfig


def test_resolve_params_fills_defaults_and_validates() -> None:
    sgd = optimizers.get("sgd")
    assert resolve_params(sgd, {}, "optimizer") == {"lr": 0.5, "momentum": 0.9, "nesterov": True}
    out = resolve_params(sgd, {"lr": "0.05", "nesterov": "false"}, "optimizer")
    assert out == {"lr": 0.05, "momentum": 0.9, "nesterov": False}
    with pytest.raises(ConfigError, match=r"no hyperparameter 'beta1'.*optimizer\.lr, optimizer\.momentum"):
        resolve_params(sgd, {"beta1": 0.9}, "optimizer")
    with pytest.raises(ConfigError, match="'penalty.strength'.*got -1"):
        resolve_params(penalties.get("l2"), {"strength": -1}, "penalty")
    with pytest.raises(ConfigError, match="'penalty.l1_ratio'"):
        resolve_params(penalties.get("elasticnet"), {"l1_ratio": 1.5}, "penalty")


def test_split_overrides() -> None:
    pen, opt = split_overrides([("penalty.strength", 0.1), ("optimizer.lr", 0.2), ("penalty.elasticnet.l1_ratio", 0.3)])
    assert pen == {"strength": 0.1, "l1_ratio": 0.3} and opt == {"lr": 0.2}
    for bad in ("strength", "penalty.", "model.lr"):
        with pytest.raises(ConfigError, match="penalty.NAME or optimizer.NAME"):
            split_overrides([(bad, 1)])


def test_resolve_pair(smooth_only: str) -> None:
    pen, opt = resolve_pair("elasticnet", "fista")
    assert (pen.name, opt.name) == ("elasticnet", "fista")
    assert resolve_pair("elasticnet", "lbfgs")[1].name == "lbfgs"  # OWL-QN for the L1 part
    with pytest.raises(IncompatiblePluginsError, match="'elasticnet'.*'smooth_only'"):
        resolve_pair("elasticnet", smooth_only)
    with pytest.raises(PluginError, match="Unknown penalty"):
        resolve_pair("ridge", "lbfgs")


def test_train_one_evaluates_and_describes_the_model() -> None:
    ds = prepare(load_data(dataset="wine"), seed=1)
    out = train_one(ds, "l1", "fista", {"strength": 0.02}, {}, TrainConfig(device="cpu"))
    s = out.summary()
    assert (s["penalty"], s["optimizer"]) == ("l1", "fista")
    assert s["penalty_params"] == {"strength": 0.02} and s["optimizer_params"] == {"lr": 1.0}
    assert s["n_weights"] == 13 * 3 and 0 < s["n_nonzero_weights"] < 39
    assert s["validation"]["accuracy"] > 0.85 and s["test"]["accuracy"] > 0.85
    assert out.model.info["source"] == "sklearn:wine" and out.model.classes_ == [0, 1, 2]
    # the metrics are those of the returned model on the held-out rows
    acc = np.mean(out.model.predict_proba_features(ds.X_test).argmax(1) == ds.y_test)
    assert s["test"]["accuracy"] == pytest.approx(acc)


def test_a_short_mini_batch_fit_reports_how_far_it_stopped_from_the_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """On 341 rows an epoch is two steps of 256: a few epochs of adam end far above the optimum;
    the exact solvers report no gap (they stop on their exact objective)."""
    ds = prepare(load_data(dataset="breast_cancer"), seed=0)
    short = train_one(ds, "l2", "adam", {"strength": 1e-3}, {}, TrainConfig(device="cpu", epochs=5))
    assert short.gap_solver == "lbfgs" and short.optimality_gap > 0.1
    exact = train_one(ds, "l2", "lbfgs", {"strength": 1e-3}, {}, TrainConfig(device="cpu"))
    assert exact.optimality_gap is None and exact.summary()["optimality_gap"] is None
    # the gap is measured against that optimum
    expected = (short.result.objective - exact.result.objective) / exact.result.objective
    assert short.optimality_gap == pytest.approx(expected, rel=1e-3)
    # a proximal penalty is checked against fista, and a well-run sgd gets close
    l1 = train_one(ds, "l1", "sgd", {"strength": 1e-2}, {}, TrainConfig(device="cpu", batch_size=16))
    assert l1.gap_solver == "fista" and 0 <= l1.optimality_gap < 0.01
    # above the size where a full-batch solve is cheap, nothing is checked
    monkeypatch.setattr(configure, "GAP_CHECK_WORK", 1000)
    assert train_one(ds, "l2", "adam", {"strength": 1e-3}, {}, TrainConfig(device="cpu", epochs=5)).optimality_gap is None


def test_no_optimality_gap_is_checked_with_at_least_as_many_features_as_rows() -> None:
    """Such data is separable, so a weak penalty's optimum lies far out: the reference solve took 20 s
    beside a 3 s fit (1,200 reviews x 21,856 TF-IDF features)."""
    ds = prepare(load_data(dataset="breast_cancer"), seed=0)
    ds.X_train, ds.y_train = ds.X_train[:30], ds.y_train[:30]  # 30 rows, 30 features
    assert train_one(ds, "l2", "adam", {"strength": 1e-3}, {}, TrainConfig(epochs=5)).optimality_gap is None
    wide = prepare(load_data(dataset="breast_cancer"), seed=0)
    wide.X_train, wide.y_train = wide.X_train[:31], wide.y_train[:31]  # one row more than features: checked
    assert train_one(wide, "l2", "adam", {"strength": 1e-3}, {}, TrainConfig(epochs=5)).optimality_gap is not None


def test_no_optimality_gap_is_measured_to_the_infimum_of_separable_rows_without_a_penalty() -> None:
    """The study's breast_cancer training rows are separable: with no penalty the infimum is 0, at
    infinite weights. The guard compared the reference with its own first epoch, where lbfgs is
    already at 2e-10, so every unpenalized sgd trial was pruned as "stopped 22230718081.7% above the
    optimum"; the objective at zero weights (log 2) is the scale to compare with."""
    ds = prepare(load_data(dataset="breast_cancer"), seed=0)
    out = train_one(ds, "none", "sgd", {}, {}, TrainConfig(epochs=20))
    assert out.optimality_gap is None, out.optimality_gap
    weak = train_one(ds, "l2", "sgd", {"strength": 1e-2}, {}, TrainConfig(epochs=20))  # a finite optimum
    assert weak.optimality_gap is not None


class _ExactProx(Optimizer):
    """A full-batch proximal solver from a third party (never run: only its capabilities count)."""

    name = "aaa_exact"
    description = "Full-batch proximal solver."
    search_space: dict[str, Any] = {}
    full_batch = True
    prox_mode = "internal"

    def build(self, param_groups: Any, params: Any, prox: Any = None) -> Any:
        raise NotImplementedError


def test_the_reference_solver_is_chosen_by_capability_built_ins_first(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in penalties.names():
        pen = penalties.get(name)
        solver = reference_solver(pen)
        assert solver is not None and solver.full_batch and not compatibility_reason(pen, solver)
        # a non-smooth part needs a proximal solver; a smooth objective gets a solver made for it
        # (L-BFGS, whose L1 part is OWL-QN's: l1_only)
        if pen.has_prox:
            assert solver.prox_mode == "internal" and solver.name == "fista", solver.name
        else:
            assert solver.prox_mode == "unsupported" or solver.l1_only, solver.name
    infos = optimizers._load()
    monkeypatch.setitem(infos, "aaa_exact", PluginInfo("logreg_tuner.optimizers", "aaa_exact", "tests:_ExactProx",
                                                       "tests-fixture", "0.0", plugin=_ExactProx()))
    # a third party's full_batch solver may take one gradient step an epoch: the built-ins go first, so
    # that installing one cannot shrink every study's optimality gap
    assert reference_solver(penalties.get("l1")).name != "aaa_exact"
    assert reference_solver(penalties.get("l2")).name == "lbfgs"  # still the smooth specialist
    # no built-in proximal solver left: the capable third party (a copy of the registry's table: deleting
    # from the shared one and restoring it would move those plugins to its end, out of name order)
    monkeypatch.setattr(optimizers, "_infos", {
        name: info for name, info in infos.items()
        if not (info.distribution == "logreg-tuner" and info.plugin is not None and info.plugin.prox_mode == "internal")})
    assert reference_solver(penalties.get("l1")).name == "aaa_exact"
    source = Path(configure.__file__).read_text()
    assert '"lbfgs"' not in source and '"fista"' not in source  # the core names no built-in plugin


def test_split_params_takes_bare_and_qualified_names(smooth_only: str) -> None:
    assert split_params({"strength": "1e-3", "optimizer.lr": 0.5}, "l1", "sgd") == ({"strength": 1e-3}, {"lr": 0.5})
    assert split_params({"optimizer.sgd.momentum": 0.5}, "l2", "sgd") == ({}, {"momentum": 0.5})
    with pytest.raises(ConfigError, match=r"params\['beta1'\]: neither plugin declares it.*optimizer\.lr"):
        split_params({"beta1": 0.9}, "l2", "sgd")
    with pytest.raises(ConfigError, match=r"params\['optimizer.adam.lr'\] is for optimizer 'adam'"):
        split_params({"optimizer.adam.lr": 0.1}, "l2", "sgd")
    pen, opt = check_plugins("elasticnet", "fista", {"l1_ratio": 0.3}, {})
    assert pen == {"strength": penalties.get("elasticnet").search_space["strength"].default, "l1_ratio": 0.3}
    assert opt == {k: hp.default for k, hp in optimizers.get("fista").search_space.items()}
    with pytest.raises(IncompatiblePluginsError):
        check_plugins("l1", smooth_only, {}, {})
