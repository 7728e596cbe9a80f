"""Reading stored studies (tuner.study's queries): plain records that agree with what Optuna stored."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import optuna
import pytest

from tuner.errors import ConfigError
from tuner.study import (
    DataSpec,
    StudyRecord,
    StudySpec,
    TrialRecord,
    best_record,
    delete_study,
    export_trials,
    history_importances,
    list_studies,
    param_importances,
    run_study,
    set_study_attrs,
    study_record,
    top_records,
    trial_records,
)

N_TRIALS = 6


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('inspect') / 'studies.db'}"
    for name, trials in (("alpha", N_TRIALS), ("beta", 2)):
        spec = StudySpec(data=DataSpec(dataset="breast_cancer"), penalties=["l2", "l1"], optimizers=["fista"],
                         n_trials=trials, seed=0, train={"epochs": 20})
        run_study(spec, name, url, refit_best=False)
    return url


def stored(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def test_trial_records_are_what_optuna_stored_as_plain_data(url: str) -> None:
    records = trial_records(url, "alpha")
    trials = stored(url, "alpha").get_trials(deepcopy=False)
    assert [r.number for r in records] == [t.number for t in trials] == list(range(N_TRIALS))
    for r, t in zip(records, trials):
        assert isinstance(r, TrialRecord)
        assert (r.state, r.value, r.params, r.user_attrs) == (t.state.name, t.value, t.params, t.user_attrs)
        pen, opt = t.params["variant"].split(":")  # the public names: the plugins, then their hyperparameters
        assert r.public_params == {"penalty": pen, "optimizer": opt, **{k: v for k, v in t.params.items()
                                                                         if k != "variant"}}
        assert r.intermediate_values == t.intermediate_values and r.datetime_start == t.datetime_start
        assert r.finished
    # nothing of Optuna leaks out: every field is a builtin, a datetime or a container of them
    for r in records:
        for f in dataclasses.fields(r):
            assert type(getattr(r, f.name)).__module__ in ("builtins", "datetime"), f.name
    complete = trial_records(url, "alpha", states=["complete"])
    assert complete and {r.state for r in complete} == {"COMPLETE"}


def test_study_record_counts_best_value_and_spec(url: str) -> None:
    rec = study_record(url, "alpha")
    study = stored(url, "alpha")
    assert isinstance(rec, StudyRecord)
    assert (rec.name, rec.direction, rec.metric) == ("alpha", "minimize", "log_loss")
    assert rec.spec["data"]["dataset"] == "breast_cancer" and rec.has_spec
    assert sum(rec.counts.values()) == N_TRIALS and "stale" not in rec.counts
    assert rec.best_value == study.best_value
    first_start = min(t.datetime_start for t in study.trials)
    assert rec.created == first_start.isoformat(timespec="seconds")  # as Optuna's study summary has it
    listed = {r.name: r for r in list_studies(url)}
    assert set(listed) == {"alpha", "beta"}
    assert listed["beta"].to_dict()["best_value"] == stored(url, "beta").best_value


def test_best_and_top_records_follow_the_direction(url: str) -> None:
    records = trial_records(url, "alpha")
    best = best_record(url, "alpha")
    assert best is not None and best.number == stored(url, "alpha").best_trial.number
    top = top_records(records, "minimize", 3)
    assert top[0].number == best.number
    assert [t.value for t in top] == sorted(t.value for t in top)
    assert [t.value for t in top_records(records, "maximize")][0] == max(
        r.value for r in records if r.state == "COMPLETE")


def test_a_missing_study_names_the_ones_there(url: str) -> None:
    with pytest.raises(ConfigError, match=r"No study named 'nope'\. Studies in this database: alpha, beta"):
        trial_records(url, "nope")


def test_export_as_csv_and_json(url: str) -> None:
    rows = list(csv.DictReader(io.StringIO(export_trials(url, "alpha", "csv"))))
    assert len(rows) == N_TRIALS and "value" in rows[0]
    records = trial_records(url, "alpha")
    for row, r in zip(rows, records):
        assert {k[len("params."):]: v for k, v in row.items() if k.startswith("params.")} == \
            {k: str(v) for k, v in r.public_params.items()}
    data = json.loads(export_trials(url, "alpha", "json"))
    assert [d["number"] for d in data] == list(range(N_TRIALS))
    assert [d["params"] for d in data] == [r.public_params for r in records]
    assert data[0] == json.loads(json.dumps(trial_records(url, "alpha")[0].to_dict()))
    with pytest.raises(ConfigError, match="'fmt' parameter"):
        export_trials(url, "alpha", "xml")


def test_importances_name_searched_parameters(url: str) -> None:
    imp = param_importances(url, "alpha")
    assert imp and set(imp) <= {"penalty", "optimizer", "optimizer.lr", "penalty.strength"}
    history = [{"state": r.state, "value": r.value, "params": r.params} for r in trial_records(url, "alpha")]
    assert imp == history_importances(history, "minimize")  # the numbers the MLflow parent run logs
    assert all(v >= 0 and math.isfinite(v) for v in imp.values())
    assert param_importances(url, "alpha", min_trials=N_TRIALS + 1) == {}


def test_shallow_fanova_trees_weigh_what_full_depth_weighs() -> None:
    """fANOVA's trees are cut at FANOVA_MAX_DEPTH (full depth took 143 s at 3,000 trials): on a history
    with a known structure the importances stay within what two forest seeds at full depth differ by."""
    import random

    from tuner.study._importance import _complete, _distributions

    rng = random.Random(1)
    history = []
    for number in range(200):
        params = {"variant": rng.choice(["l1:adam", "l1:sgd", "l2:adam", "l2:sgd"]),
                  "penalty.strength": 10 ** rng.uniform(-7, 0), "optimizer.lr": 10 ** rng.uniform(-4, 0)}
        value = (0.05 * (math.log10(params["penalty.strength"]) + 3) ** 2 + 0.2 * params["variant"].endswith("sgd")
                 + 0.01 * math.log10(params["optimizer.lr"]) + rng.gauss(0, 0.02))
        history.append({"number": number, "state": "COMPLETE", "value": value, "params": params})
    shallow = history_importances(history, "minimize")
    done = _complete(history)
    dists = _distributions(done)
    study = optuna.create_study()
    for h in done:
        study.add_trial(optuna.trial.create_trial(params={k: h["params"][k] for k in dists}, distributions=dists,
                                                  value=h["value"]))
    full = [optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(
        seed=seed)) for seed in (0, 1)]
    assert list(shallow)[:2] == ["optimizer", "penalty.strength"] == list(full[0])[:2] and set(shallow) == set(full[0])
    for name, value in shallow.items():
        seed_spread = abs(full[0][name] - full[1][name])
        assert abs(value - full[0][name]) <= max(0.03, 2 * seed_spread), (name, value, full)


def test_set_attrs_then_delete(url: str, tmp_path: Path) -> None:
    set_study_attrs(url, "beta", {"synced": True, "runs": [1, 2]})
    assert study_record(url, "beta").user_attrs["synced"] is True
    assert stored(url, "beta").user_attrs["runs"] == [1, 2]
    delete_study(url, "beta")
    assert [r.name for r in list_studies(url)] == ["alpha"]
    with pytest.raises(ConfigError, match="No study named 'beta'"):
        delete_study(url, "beta")
