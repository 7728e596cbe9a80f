"""Cross-validation (--cv K): folds trained side by side with the model, scored on held-out rows."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from tuner.cli import cli
from tuner.data import load_data, prepare
from tuner.errors import ConfigError
from tuner.study import cv_folds, train_many, train_one
from tuner.train import TrainConfig, evaluate


@pytest.fixture(scope="module")
def cancer():
    return prepare(load_data(dataset="breast_cancer"), val_size=0.2, test_size=0.2, seed=0)


def _alone_score(data, held: np.ndarray, penalty: str, pp: dict, optimizer: str) -> float:
    part = copy.copy(data)
    part.X_train, part.y_train = data.X_train[~held], data.y_train[~held]
    out = train_one(part, penalty, optimizer, pp, {}, TrainConfig(dtype="float64"))
    proba = out.model.predict_proba_features(data.X_train[held])
    return evaluate(data.y_train[held], proba, data.n_classes)["log_loss"]


@pytest.mark.parametrize("optimizer,penalty", [("lbfgs", "l2"), ("fista", "l1")])
def test_each_fold_scores_like_a_model_trained_without_its_rows(cancer, optimizer: str, penalty: str) -> None:
    folds = cv_folds(cancer.y_train, 4, seed=0)
    assert sum(f.sum() for f in folds) == len(cancer.y_train) and not (folds[0] & folds[1]).any()
    pps = [{"strength": 1e-2}, {"strength": 1e-3}]
    outs = train_many(cancer, optimizer, [(penalty, pp, {}) for pp in pps], TrainConfig(dtype="float64"),
                      folds=folds)
    for pp, out in zip(pps, outs):
        assert len(out.cv_metrics) == 4
        for held, metrics in zip(folds, out.cv_metrics):
            assert metrics["log_loss"] == pytest.approx(_alone_score(cancer, held, penalty, pp, optimizer), rel=1e-4)
        whole = train_one(cancer, penalty, optimizer, pp, {}, TrainConfig(dtype="float64"))
        np.testing.assert_allclose(out.result.weight, whole.result.weight, rtol=1e-4, atol=1e-6)  # the model: every row


def test_a_warm_start_never_reaches_the_folds(cancer) -> None:
    """Weights fitted on every training row would leak the held-out rows into a fold's score."""
    folds = cv_folds(cancer.y_train, 3, seed=0)
    rich = train_one(cancer, "none", "lbfgs", {}, {}, TrainConfig(epochs=200))
    cold, = train_many(cancer, "lbfgs", [("none", {}, {})], TrainConfig(epochs=20), folds=folds)
    warm, = train_many(cancer, "lbfgs", [("none", {}, {})], TrainConfig(epochs=20), folds=folds,
                       init=[(rich.result.weight, rich.result.intercept)])
    assert [m["log_loss"] for m in warm.cv_metrics] == pytest.approx([m["log_loss"] for m in cold.cv_metrics])


def test_too_many_folds_for_the_rows_is_refused(cancer) -> None:
    with pytest.raises(ConfigError, match="'cv' parameter"):
        cv_folds(cancer.y_train, 10_000, seed=0)


def test_a_cv_study_scores_trials_by_the_mean_over_folds(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    args = ["tune", "--dataset", "breast_cancer", "--trials", "6", "--cv", "3", "--study", "cv", "--storage", storage,
            "--no-tracking", "--optimizer", "lbfgs,fista", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    study = optuna.load_study(study_name="cv", storage=storage)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete
    for t in complete:
        scores = t.user_attrs["cv_values"]
        assert len(scores) == 3 and t.value == pytest.approx(float(np.mean(scores)))
        assert t.intermediate_values == {i: pytest.approx(s) for i, s in enumerate(scores)}  # one report per fold
    assert summary["best_value"] == pytest.approx(min(t.value for t in complete))
    # resuming with other folds would mix scores of two kinds
    again = runner.invoke(cli, ["tune", "--dataset", "breast_cancer", "--study", "cv", "--storage", storage, "--cv", "5",
                                "--no-tracking", "--trials", "7"])
    assert again.exit_code != 0 and "cross-validation folds" in again.output
    # study show says what the values are: the mean over folds, not a validation split's score
    show = runner.invoke(cli, ["study", "show", "cv", "--storage", storage])
    assert show.exit_code == 0 and "metric: log_loss (minimize), mean over 3 folds (--cv 3)" in show.output, show.output


def test_cv_needs_at_least_two_folds() -> None:
    result = CliRunner().invoke(cli, ["tune", "--dataset", "breast_cancer", "--cv", "1", "--no-tracking"])
    assert result.exit_code == 2 and "--cv" in result.output


@pytest.mark.parametrize("val_size", ["0", "0.2"])
def test_monitor_val_with_cv_is_refused_before_a_study_is_stored(tmp_path: Path, val_size: str) -> None:
    """Each fold stopped on its held-out rows and kept its best epoch there, then was scored on the
    same rows: adam on breast_cancer scored 0.069 by its folds (epochs 5, 1, 2) for a model whose
    honest score was about 0.21."""
    db = tmp_path / "s.db"
    result = CliRunner().invoke(cli, ["tune", "--dataset", "breast_cancer", "--cv", "3", "--monitor", "val",
                                      "--val-size", val_size, "--trials", "2", "--no-tracking",
                                      "--storage", f"sqlite:///{db}", "--study", "mv"])
    assert result.exit_code == 1, result.output
    assert "--monitor is 'val'" in result.output and "with --cv, stop on the training objective" in result.output
    assert "Traceback" not in result.output
    assert not db.exists() or not optuna.get_all_study_names(f"sqlite:///{db}")


def test_the_model_columns_epoch_metric_is_on_the_validation_split_only(cancer) -> None:
    """With folds, the stacked validation matrix also holds training rows: a callback of the model's
    column must still see the validation split alone."""
    from tuner.train import Callback

    seen: list[int] = []

    class Rows(Callback):
        def on_epoch_end(self, state, logs) -> None:
            seen.append(len(state.val_proba()))
            assert len(state.y_val) == len(state.val_proba())

    train_many(cancer, "lbfgs", [("l2", {"strength": 1e-2}, {})], TrainConfig(epochs=3), callbacks=[[Rows()]],
               folds=cv_folds(cancer.y_train, 3, seed=0))
    assert seen and set(seen) == {len(cancer.y_val)}


def test_a_trial_whose_mean_over_folds_beats_the_best_is_not_pruned_by_one_fold(cancer, tmp_path: Path) -> None:
    """The folds train side by side, so the pruner's verdict on the fold scores comes after all of
    them trained: it must not discard a trial that is the study's best (one easy fold for every
    earlier trial made the median pruner stop one that was better on four folds of five)."""
    from optuna.trial import TrialState, create_trial

    from tuner.study._objective import Objective, PruneJudge
    from tuner.study._observer import TrialInfo
    from tuner.study._trial_batches import Pending, TrialBatches

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="minimize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3))
    earlier = [0.30, 0.31, 0.30, 0.10, 0.30]  # mean 0.262
    for _ in range(5):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=float(np.mean(earlier)),
                                     intermediate_values=dict(enumerate(earlier)), params={}, distributions={}))
    judge = type("Holder", (), {"judge": PruneJudge(study)})()

    def prune_on_folds(trial, scores):
        return Objective.prune_on_folds(judge, trial, scores)  # type: ignore[arg-type]

    folds = cv_folds(cancer.y_train, 5, seed=0)
    (outcome,) = train_many(cancer, "adam", [("l2", {}, {})], TrainConfig(epochs=2), folds=folds)
    outcome.optimality_gap = None  # two epochs are far from the optimum; this test is about the folds
    runner = TrialBatches(None, cancer, TrainConfig(), [], None, "log_loss", lambda t: [], "variant",
                          folds=folds, prune_on_folds=prune_on_folds)
    for scores, state in (([0.25, 0.25, 0.25, 0.11, 0.25], TrialState.COMPLETE),  # mean 0.222: the new best
                          ([0.40, 0.40, 0.40, 0.39, 0.40], TrialState.PRUNED)):  # worse on every fold
        outcome.cv_metrics = [{"log_loss": s} for s in scores]
        trial = study.ask()
        pend = Pending(trial, "l2:adam", "l2", "adam", {}, {}, {}, TrialInfo(trial.number, "l2", "adam", {}, {}, {}))
        try:
            value: float | None = runner.conclude(pend, outcome, optuna.TrialPruned)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        assert study.trials[-1].state == state, (scores, study.trials[-1].user_attrs)
    assert study.best_value == pytest.approx(0.222)


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_the_median_pruner_judges_every_fold_from_the_first(folds: int) -> None:
    """The epoch warm-up of 3 steps applied to folds too: --cv 2 and --cv 3 never pruned, and --cv 5
    judged folds 4 and 5 only."""
    from optuna.trial import TrialState, create_trial

    from tuner.study import make_pruner

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize", pruner=make_pruner("median", 100, folds))
    for i in range(5):
        scores = [0.2 + 0.01 * i] * folds
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=float(np.mean(scores)),
                                     intermediate_values=dict(enumerate(scores)), params={}, distributions={}))
    trial = study.ask()
    trial.report(0.9, 0)  # far worse than every complete trial on the first fold
    assert trial.should_prune()
    epochs = optuna.create_study(direction="minimize", pruner=make_pruner("median", 100))
    for trial_ in study.trials[:5]:
        epochs.add_trial(trial_)
    first_epoch = epochs.ask()
    first_epoch.report(0.9, 0)
    assert not first_epoch.should_prune()  # epochs keep their warm-up: an epoch 0 says little


def test_the_pruner_judges_each_fold_against_the_same_fold_of_the_complete_trials() -> None:
    """Complete trials counted at fold k with the worse of their fold score and their mean (the
    epochs' rule), and a running trial with its best fold so far: a trial worse than every complete
    one on fold 0 went on, and one lucky fold carried a trial past a far worse second fold."""
    from optuna.trial import TrialState, create_trial

    from tuner.study import make_pruner
    from tuner.study._objective import PruneJudge

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize", pruner=make_pruner("median", 100, 2))
    for i in range(5):
        scores = [0.10 + 0.001 * i, 0.50 + 0.001 * i]  # fold 0 easy, fold 1 hard: means near 0.30
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=float(np.mean(scores)),
                                     intermediate_values=dict(enumerate(scores)), params={}, distributions={}))
    judge = PruneJudge(study, by_fold=True)
    worse_on_fold_0 = study.ask()
    assert judge.should_prune(worse_on_fold_0, {0: 0.20})  # held at the means, fold 0's median was 0.30
    lucky_then_bad = study.ask()
    assert not judge.should_prune(lucky_then_bad, {0: 0.05})
    assert judge.should_prune(lucky_then_bad, {0: 0.05, 1: 0.90})  # judged on its best fold, 0.05
    good = study.ask()
    assert not judge.should_prune(good, {0: 0.09, 1: 0.49})


def test_every_fold_hears_the_trial_s_stop_request(cancer) -> None:
    """Only the model's column checked for a signal: once it had converged, its folds trained on
    unchecked, and a Ctrl-C waited for them (a group ran 5.7 s past its model's end)."""
    from tuner.study._signals import StopCallback, StopRequest

    class Counted(StopRequest):
        calls = 0

        def check(self) -> None:
            Counted.calls += 1
            super().check()

    folds = cv_folds(cancer.y_train, 3, seed=0)
    (out,) = train_many(cancer, "adam", [("l2", {"strength": 1e-4}, {"lr": 0.05})], TrainConfig(),
                        [[StopCallback(Counted())]], None, folds)
    assert not isinstance(out, BaseException)
    assert Counted.calls > out.result.epochs_run  # the folds' epochs asked too


@pytest.fixture
def picky_ridge(tmp_path, monkeypatch):
    """A sound ridge that does not declare supports_batch (most third-party plugins don't)."""
    from _broken_plugins import forget, install_distribution

    import tuner
    from tuner._registry import AUTOLOAD_ENV

    site = install_distribution(tmp_path / "site", "tuner_test_picky", {"penalties": {"picky_ridge": "PickyRidge"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    tuner.penalties.reload()
    yield tuner.penalties.get("picky_ridge")
    monkeypatch.undo()
    forget("tuner_test_picky")
    tuner.penalties.reload()


def test_a_plugin_without_side_by_side_support_is_cross_validated_one_column_at_a_time(cancer, picky_ridge) -> None:
    """Its folds cannot share a tensor program with the model: they train one at a time and score
    as the same ridge trained side by side does (every trial of such a plugin failed under --cv)."""
    import tuner
    from tuner.train import batchable

    assert not batchable(picky_ridge, tuner.optimizers.get("sgd"))
    folds = cv_folds(cancer.y_train, 3, seed=0)
    config = TrainConfig(dtype="float64", epochs=30)
    alone, = train_many(cancer, "sgd", [("picky_ridge", {"strength": 1e-2}, {})], config, folds=folds)
    shared, = train_many(cancer, "sgd", [("l2", {"strength": 1e-2}, {})], config, folds=folds)
    assert not isinstance(alone, BaseException), alone
    assert [m["log_loss"] for m in alone.cv_metrics] == pytest.approx([m["log_loss"] for m in shared.cv_metrics],
                                                                      rel=1e-6)
    np.testing.assert_allclose(alone.result.weight, shared.result.weight, rtol=1e-6, atol=1e-9)


def test_folds_need_no_validation_split(tmp_path: Path) -> None:
    """`--cv K --val-size 0` was refused ("a study needs a validation split"): the folds compare the
    trials, so every row that is not a test row trains, as in LogisticRegressionCV."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    base = ["tune", "--dataset", "breast_cancer", "--trials", "3", "--val-size", "0", "--storage", storage,
            "--no-tracking", "--optimizer", "newton", "--metric", "f1"]
    result = CliRunner().invoke(cli, [*base, "--cv", "3", "--study", "cv0"])
    assert result.exit_code == 0, result.output
    assert "best trial: #" in result.output and "cross-validated f1 (3 folds) = " in result.output
    study = optuna.load_study(study_name="cv0", storage=storage)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete and all(t.value == pytest.approx(float(np.mean(t.user_attrs["cv_values"]))) for t in complete)
    assert all(t.user_attrs["val_metrics"] == {} for t in complete)
    without = CliRunner().invoke(cli, [*base, "--study", "plain"])
    assert without.exit_code != 0
    assert "A study needs a validation split to compare trials; make --val-size > 0, or compare them by " \
           "cross-validation (--cv)." in without.output


def test_without_a_validation_split_the_model_column_scores_no_rows() -> None:
    """The model's column watched its own training rows as if they were validation rows: its
    epoch logs held a training loss named val_loss."""
    from tuner.train import Callback

    data = prepare(load_data(dataset="breast_cancer"), val_size=0.0, test_size=0.2, seed=0)
    seen: list[tuple[object, bool]] = []

    class Logs(Callback):
        def on_epoch_end(self, state, logs) -> None:
            seen.append((state.y_val, "val_loss" in logs))

    outcome = train_many(data, "lbfgs", [("l2", {"strength": 1e-2}, {})], TrainConfig(epochs=3),
                         callbacks=[[Logs()]], folds=cv_folds(data.y_train, 3, seed=0))[0]
    assert seen and all(y_val is None and not has_val for y_val, has_val in seen)
    assert not isinstance(outcome, BaseException) and len(outcome.cv_metrics) == 3 and outcome.val_metrics == {}
