"""A default study leaves out plugins that fail their contract checks (with a notice) and the
mini-batch optimizers, choosing by capability: a real third-party distribution
is installed into a temporary site folder for these tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _broken_plugins import installed_penalties
from scipy import sparse

from tuner import optimizers, penalties
from tuner.data import load_data, prepare
from tuner.study import DataSpec, StudySpec, run_study, study_record, trial_records
from tuner.study._default_plugins import default_plugins, drop_failing_plugins, exact_solvers_by_default


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from installed_penalties(monkeypatch, tmp_path / "site", "tuner_test_default_space",
                                   {"float_step": "FloatStepLasso", "picky_ridge": "PickyRidge"})


def small_data() -> object:
    return prepare(load_data(None, dataset="breast_cancer"), val_size=0.2, test_size=0.2, seed=0)


def test_a_plugin_failing_its_checks_is_dropped_with_a_notice(third_party: None) -> None:
    names = penalties.names()
    assert {"float_step", "picky_ridge", "l2"} <= set(names)
    kept, notices = drop_failing_plugins("penalty", names)
    assert "float_step" not in kept and {"picky_ridge", "l1", "l2"} <= set(kept)
    assert len(notices) == 1 and "'float_step'" in notices[0] and "tuner plugins check float_step" in notices[0]
    # given explicitly, it stays (the user asked for it), and the summary says it fails its checks
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=list(names), optimizers=["fista"])
    named = default_plugins(spec, small_data(), explicit={"penalties"})
    assert spec.penalties == names and len(named) == 1
    assert "the penalty plugin 'float_step' fails its contract checks" in named[0]
    assert "it is searched because the 'penalty' parameter names it, but its results may be wrong" in named[0]


def test_a_default_study_searches_without_the_failing_plugin(third_party: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["float_step", "l2"], optimizers=["fista"],
                     n_trials=3, train={"epochs": 10})
    result = run_study(spec, "default", url, refit_best=False, changes={})
    assert any("'float_step' fails its contract checks" in w for w in result.warnings), result.warnings
    assert study_record(url, "default").spec["penalties"] == ["l2"]  # the stored study never searches it
    assert {r.params["variant"] for r in trial_records(url, "default")} == {"l2:fista"}


def test_the_default_search_keeps_only_full_batch_solvers_chosen_by_capability() -> None:
    every = optimizers.names()
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l1", "l2"], optimizers=list(every))
    notices = exact_solvers_by_default(spec)
    full_batch = [n for n in every if optimizers.get(n).full_batch]
    assert full_batch and spec.optimizers == full_batch and len(notices) == 1
    assert all(n in notices[0] for n in every if n not in full_batch)


def test_the_default_search_keeps_every_optimizer_when_a_penalty_takes_no_full_batch_one(third_party: None) -> None:
    every = optimizers.names()
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l2", "picky_ridge"], optimizers=list(every))
    assert exact_solvers_by_default(spec) == [] and spec.optimizers == every


def test_large_data_searches_the_full_batch_solvers_and_a_batch_size_keeps_the_others() -> None:
    """Data past the old small-data limit (250,000 stored values) kept every optimizer: on SST-2 the
    mini-batch trials took most of a study's time and never gave its best model."""
    rng = np.random.default_rng(0)
    raw = load_data(None, dataset="breast_cancer")
    big = prepare(raw, val_size=0.2, test_size=0.2, seed=0)
    # 1,000,000 stored values (sparse), too many parameters for newton
    big.X_train = sparse.random(20_000, 5_000, density=0.01, format="csr", random_state=rng)
    full_batch = [n for n in optimizers.names() if optimizers.get(n).full_batch]
    spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l1", "l2"], optimizers=optimizers.names())
    notices = default_plugins(spec, big, explicit=set())
    assert set(full_batch) >= {"fista", "lbfgs"} and spec.optimizers == ["lbfgs", "newton_cg"], spec.optimizers
    assert any("exact full-batch solvers" in n and "sgd" in n for n in notices), notices
    assert any("(newton_cg) for l2" in n and "quasi-Newton solvers (lbfgs)" in n and "search fista too" in n
               for n in notices), notices
    # one notice says what is searched: the first names only what it left out (it said "uses ... fista")
    assert not any("fista" in n for n in notices if "exact full-batch" in n), notices
    sized = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l2"], optimizers=optimizers.names(),
                      train={"batch_size": 64})
    default_plugins(sized, big, explicit=set())
    assert "sgd" in sized.optimizers and "adam" in sized.optimizers, sized.optimizers


def test_the_cli_names_its_flags_in_the_notices_of_json_output_too(tmp_path: Path) -> None:
    """`tuner tune --json` said "give the 'optimizer' parameter", the Python API's words, where the
    text output says --optimizer."""
    import json

    from click.testing import CliRunner

    from tuner.cli import cli

    res = CliRunner().invoke(cli, ["tune", "--dataset", "breast_cancer", "--trials", "2", "--no-tracking", "--json",
                                   "--storage", f"sqlite:///{tmp_path / 's.db'}", "--epochs", "20"])
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.stdout)["warnings"]
    assert any("exact full-batch solvers" in w and "give --optimizer to search" in w for w in warnings), warnings
    assert not any("' parameter" in w for w in warnings), warnings


def test_a_param_of_a_plugin_the_default_search_left_out_says_why() -> None:
    """'no plugin in play declares it' only: the user had excluded no optimizer."""
    import tuner
    from tuner.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no plugin in play declares it\. .*Without a plugin list given, the "
                                          r"search leaves out the mini-batch optimizers \(adam, rmsprop, sgd\) for "
                                          r"the exact full-batch solvers: .*give the 'optimizer' parameter "
                                          r"to search adam"):
        tuner.tune(dataset="iris", trials=1, params={"optimizer.lr": 0.1})
    named = tuner.tune(dataset="iris", trials=1, optimizer="sgd", params={"optimizer.lr": 0.1}, epochs=2)
    assert named.trials[0].public_params["optimizer.lr"] == 0.1  # with the optimizer named, the --param applies


@pytest.fixture
def side_by_side_liars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from _broken_plugins import forget, install_distribution

    site = install_distribution(tmp_path / "site", "tuner_test_liars", {"penalties": {"summing_ridge": "SummingRidge"},
                                                                        "optimizers": {"first_lr_sgd": "FirstLrSGD"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("TUNER_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    penalties.reload()
    optimizers.reload()
    yield
    monkeypatch.undo()
    forget("tuner_test_liars")
    penalties.reload()
    optimizers.reload()


def test_plugins_that_fail_side_by_side_train_one_at_a_time(side_by_side_liars: None, tmp_path: Path) -> None:
    """A penalty summing over every trial, and an optimizer stepping every trial with the first
    one's rate, declared ``supports_batch``; a study named them and trained them side by side
    without a word, each trial's result changed by its neighbours."""
    from tuner.testing import failing_plugins, side_by_side_failures

    assert failing_plugins("penalty", ["summing_ridge"]) == {} and failing_plugins("optimizer", ["first_lr_sgd"]) == {}
    assert "'batch_values'" in side_by_side_failures("penalty", ["summing_ridge", "l2"])["summing_ridge"]
    assert "'batch_step'" in side_by_side_failures("optimizer", ["first_lr_sgd", "sgd"])["first_lr_sgd"]
    assert set(side_by_side_failures("optimizer", optimizers.names())) == {"first_lr_sgd"}  # the built-ins pass

    def study(name: str, batch: int) -> dict[int, float]:
        url = f"sqlite:///{tmp_path / (name + '.db')}"
        spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["summing_ridge"], optimizers=["lbfgs"],
                         n_trials=4, sampler="random", pruner="none", train={"epochs": 30, "dtype": "float64"})
        result = run_study(spec, name, url, refit_best=False, changes={"penalties": ["summing_ridge"]},
                           batch_trials=batch)
        if batch > 1:
            assert any("'summing_ridge' declares that its trials train side by side but fails the contract check "
                       "'batch_values'" in w and "one at a time" in w for w in result.warnings), result.warnings
        return {r.number: r.value for r in trial_records(url, name)}

    assert study("together", 4) == pytest.approx(study("alone", 1), rel=1e-6)


def test_a_default_study_on_a_wide_model_trains_smooth_penalties_by_truncated_newton_only(tmp_path: Path) -> None:
    """3,000 sparse features: too many for newton. l2 and none go to newton_cg alone, l1 and the
    elastic net to lbfgs (OWL-QN); the pairs left out are stored, so a resume searches the same."""
    from sklearn.datasets import dump_svmlight_file

    rng = np.random.default_rng(0)
    X = sparse.random(900, 3000, density=0.01, format="csr", random_state=1)
    y = (np.asarray(X @ rng.normal(size=3000)).ravel() + 0.1 * rng.normal(size=900) > 0).astype(int)
    path = tmp_path / "wide.svm"
    dump_svmlight_file(X, y, str(path), zero_based=True)
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(data=DataSpec(path=str(path), zero_based=True), penalties=penalties.names(),
                     optimizers=optimizers.names(), n_trials=12, sampler="random")
    result = run_study(spec, "wide", url, refit_best=False, changes={})
    stored = study_record(url, "wide").spec
    assert stored["optimizers"] == ["lbfgs", "newton_cg"] and stored["left_out_variants"] == ["l2:lbfgs", "none:lbfgs"]
    assert any("truncated Newton solvers (newton_cg) for l2 and none" in w for w in result.warnings), result.warnings
    run_study(StudySpec.from_json(json.dumps(stored)), "wide", url, refit_best=False, changes={}, n_trials=24)
    from click.testing import CliRunner

    from tuner.cli import cli

    shown = CliRunner().invoke(cli, ["study", "show", "wide", "--storage", url])
    assert shown.exit_code == 0, shown.output
    assert "pairs left out by the default search: l2:lbfgs, none:lbfgs" in shown.output
    trials = trial_records(url, "wide")
    variants = {r.params["variant"] for r in trials}
    assert len(trials) == 24 and variants <= {"l1:lbfgs", "elasticnet:lbfgs", "l2:newton_cg", "none:newton_cg"}
    assert {"l2:newton_cg", "l1:lbfgs"} <= variants, variants
