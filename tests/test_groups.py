"""A group column (``--group-column`` / ``group_column``): no feature, and every group's rows on
one side of the validation/test splits and the cross-validation folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tuner
from tuner.api._data import DataOptions
from tuner.api._fit import split
from tuner.cli import cli
from tuner.data import load_data, prepare
from tuner.data._split import group_split
from tuner.errors import ConfigError, DataError
from tuner.study._configure import cv_folds


def _frame(n: int = 900, n_groups: int = 90, seed: int = 0) -> pd.DataFrame:
    """Reviews by users: each user has a strong bias of their own, so a model that sees a user's
    other rows scores that user better than it scores a new one. ``gid`` repeats the group as a
    number, so that a split's groups can be read back from its features."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n)
    bias = rng.normal(0, 2.5, n_groups)[g]
    x = rng.normal(size=n)
    y = (x + bias + rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame({"user": [f"u{v:03d}" for v in g], "gid": g.astype(float), "x": x, "label": y})


def _groups_of(X: np.ndarray, pipeline: tuner.data.FeaturePipeline) -> set[int]:
    """The ``gid`` values of a split's rows, undoing the pipeline's scaling."""
    col = pipeline.feature_names.index("gid")
    center = pipeline.center[col] if pipeline.center is not None else 0.0
    return set(np.rint(X[:, col] * pipeline.scale[col] + center).astype(int).tolist())


def test_every_group_lies_on_one_side_of_the_splits_in_the_shares_asked_for() -> None:
    frame = _frame()
    for val_size, test_size in ((0.2, 0.2), (0.25, 0.1), (0.3, 0.0)):
        ds = split(DataOptions(frame, target="label", group_column="user", val_size=val_size, test_size=test_size))
        train, val = _groups_of(ds.X_train, ds.pipeline), _groups_of(ds.X_val, ds.pipeline)
        test = _groups_of(ds.X_test, ds.pipeline) if len(ds.y_test) else set()
        assert not train & val and not train & test and not val & test
        assert len(train | val | test) == frame["user"].nunique()
        assert abs(len(ds.y_val) / len(frame) - val_size) < 0.05 and abs(len(ds.y_test) / len(frame) - test_size) < 0.05
        assert "user" not in ds.pipeline.input_columns  # a group id is no feature
        assert sorted(set(ds.groups_train)) == sorted(f"u{g:03d}" for g in train)
    plain = split(DataOptions(frame.drop(columns="user"), target="label"))
    assert _groups_of(plain.X_train, plain.pipeline) & _groups_of(plain.X_val, plain.pipeline)  # what it prevents


def test_group_split_holds_whole_groups_stratified_and_seeded() -> None:
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 400, 4000).astype(str).astype(object)
    y = rng.integers(0, 2, 4000)
    ix = np.arange(4000)
    kept, held = group_split(ix, 0.125, y, groups, seed=3)
    assert sorted(np.concatenate([kept, held]).tolist()) == ix.tolist()
    assert not set(groups[kept]) & set(groups[held])
    assert abs(len(held) / 4000 - 0.125) < 0.02 and abs(y[held].mean() - y.mean()) < 0.03
    again, _ = group_split(ix, 0.125, y, groups, seed=3)
    other, _ = group_split(ix, 0.125, y, groups, seed=4)
    assert np.array_equal(kept, again) and not np.array_equal(kept, other)
    with pytest.raises(DataError, match="belong to 1 group"):
        group_split(ix[:10], 0.2, y, np.array(["a"] * 4000, dtype=object), seed=0)


def test_cross_validation_folds_keep_groups_whole() -> None:
    frame = _frame()
    y, groups = frame["label"].to_numpy(), frame["user"].to_numpy(dtype=object)
    folds = cv_folds(y, 4, seed=0, groups=groups)
    assert np.array_equal(np.sum(folds, axis=0), np.ones(len(y)))  # every row held out exactly once
    for a in range(4):
        for b in range(a + 1, 4):
            assert not set(groups[folds[a]]) & set(groups[folds[b]])
    with pytest.raises(ConfigError, match=r"at most the number of groups in the training rows \(3"):
        cv_folds(y[:30], 4, seed=0, groups=np.array(["a", "b", "c"] * 10, dtype=object))


def test_a_grouped_validation_score_is_the_one_new_groups_get() -> None:
    """With each user's bias learnable from a one-hot user column, a random split scores users the
    model has seen; the split by groups scores new users, as the test on other users does."""
    frame = _frame(n=1500, n_groups=60, seed=2)
    frame["who"] = frame["user"]
    kw = dict(target="label", categorical_columns=["who"], penalty="l2", optimizer="lbfgs",
              params={"penalty.strength": 1e-3}, test_size=0.0)
    seen = frame[frame["gid"] < 45]
    unseen = frame[frame["gid"] >= 45].drop(columns=["user"])
    random_split = tuner.fit(seen.drop(columns=["user"]), **kw)
    grouped = tuner.fit(seen, group_column="user", **kw)
    new_users = grouped.model.predict_proba(unseen.drop(columns=["label"]))
    from sklearn.metrics import log_loss

    on_new = log_loss(unseen["label"], new_users[:, 1])
    assert random_split.validation["log_loss"] < on_new - 0.1  # the random split flatters the model
    assert abs(grouped.validation["log_loss"] - on_new) < abs(random_split.validation["log_loss"] - on_new)


def test_wrong_group_options_are_one_clear_error(tmp_path: Path) -> None:
    frame = _frame(n=60, n_groups=12)
    csv = tmp_path / "g.csv"
    frame.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"Group column 'usr' .* not found in .*Did you mean 'user'\?"):
        load_data(csv, target="label", group_column="usr")
    with pytest.raises(ConfigError, match="both the group column .* and the target"):
        load_data(csv, target="label", group_column="label")
    with pytest.raises(ConfigError, match="both the group column .* and a categorical column"):
        load_data(csv, target="label", group_column="user", categorical_columns=["user"])
    with pytest.raises(ConfigError, match="'group_column' parameter.* do\\(es\\) not apply to the bundled dataset"):
        load_data(dataset="iris", group_column="user")
    with pytest.raises(ConfigError, match="'group_column' parameters name columns of a table"):
        split(DataOptions(np.zeros((10, 2)), np.arange(10) % 2, group_column="user"))
    text = csv.read_text().splitlines()
    text[5] = "," + text[5].split(",", 1)[1]  # data row 5 has no user
    csv.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"The group column 'user' is empty at data row 5 \(line 6\)"):
        load_data(csv, target="label", group_column="user")


def test_a_group_id_is_compared_as_written(tmp_path: Path) -> None:
    """Codes 007 and 7 are two groups, as labels and categories are."""
    csv = tmp_path / "codes.csv"
    csv.write_text("user,x,label\n007,1,0\n7,2,1\n007,3,1\n7,4,0\n")
    raw = load_data(csv, target="label", group_column="user")
    assert list(raw.groups) == ["007", "7", "007", "7"]
    assert raw.numeric_columns == ["x"]


def test_the_cli_tunes_resumes_and_predicts_by_groups(tmp_path: Path) -> None:
    frame = _frame()
    data, test = tmp_path / "reviews.csv", tmp_path / "test.csv"
    frame.to_csv(data, index=False)
    frame.drop(columns=["user"]).head(100).to_csv(test, index=False)  # a test file need not hold the groups
    storage = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    base = ["tune", str(data), "--target", "label", "--group-column", "user", "--study", "g", "--storage", storage,
            "--no-tracking", "--penalty", "l2", "--optimizer", "lbfgs"]
    first = runner.invoke(cli, [*base, "--trials", "3", "--cv", "3", "--test-file", str(test), "--json"])
    assert first.exit_code == 0, first.output
    result = json.loads(first.output[first.output.index("{"):])
    assert result["trials"]["complete"] == 3
    show = runner.invoke(cli, ["study", "show", "g", "--storage", storage])
    assert "columns: target label; split by groups of user" in show.output
    other = runner.invoke(cli, [*base[:4], "--group-column", "gid", "--categorical", "user", *base[6:], "--trials",
                                "4"])
    assert other.exit_code == 1 and "group_column: stored 'user', now 'gid'" in other.output, other.output
    resumed = runner.invoke(cli, ["tune", "--study", "g", "--storage", storage, "--no-tracking", "--trials", "4"])
    assert resumed.exit_code == 0, resumed.output
    model = tmp_path / "model"
    train = runner.invoke(cli, ["train", str(data), "--target", "label", "--group-column", "user",
                                "--save-model", str(model), "--json"])
    assert train.exit_code == 0, train.output
    predicted = runner.invoke(cli, ["predict", str(model), str(data)])  # the training file, its user column too
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.output.strip().splitlines()
    assert lines[0] == "note: ignoring column(s) ['user', 'label']: the model was not trained on them."
    assert lines[1] == "prediction" and len(lines[2:]) == len(frame)


def test_studies_stored_before_the_option_read_their_data_as_before() -> None:
    from tuner.study import StudySpec

    spec = StudySpec.from_json(json.dumps({"data": {"path": "/d.csv", "target": "label"}, "penalties": ["l2"],
                                           "optimizers": ["lbfgs"]}))
    assert spec.data.group_column is None
    grouped = spec.with_changes({"data.group_column": "user"})
    assert "data reading, group_column: stored None, now 'user'" in spec.differences(grouped)
    raw = load_data(dataset="iris")
    assert raw.groups is None and prepare(raw).groups_train is None


def test_a_fold_that_the_groups_leave_with_one_class_is_refused_before_any_trial(tmp_path: Path) -> None:
    """Benign rows in groups 0-1, malignant ones in groups 10-19: with --cv 3 one fold's held-out
    rows were all one class. Every trial trained, then was pruned on a NaN ROC AUC (or, with
    log_loss, scored on that fold without a word)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 4, -1]].copy()
    rng = np.random.default_rng(1)
    benign = frame["target"] == 1
    frame["gid"] = 0
    frame.loc[benign, "gid"] = rng.integers(0, 2, int(benign.sum()))
    frame.loc[~benign, "gid"] = rng.integers(10, 20, int((~benign).sum()))
    groups = frame["gid"].to_numpy()
    with pytest.raises(ConfigError, match=r"Fold \d of 3 \(cv\) has \d+ (held-out|training) rows of 1 class\(es\) only"):
        cv_folds(frame["target"].to_numpy(), 3, 0, groups)
    frame.to_csv(tmp_path / "pure.csv", index=False)
    storage = tmp_path / "s.db"
    res = CliRunner().invoke(cli, ["tune", str(tmp_path / "pure.csv"), "--target", "target", "--group-column", "gid",
                                   "--cv", "3", "--val-size", "0", "--test-size", "0", "--metric", "log_loss", "--study", "p",
                                   "--trials", "2", "--storage", f"sqlite:///{storage}", "--no-tracking"])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and "Use fewer folds, more and smaller groups" in lines[0], res.output
    assert not storage.exists() or "trials" not in res.output


def test_fewer_groups_than_parts_to_fill_is_one_error_naming_the_groups(tmp_path: Path) -> None:
    """Two groups and a test share: the test split took one group (64% of the rows), and the error
    then said the remaining rows "belong to 1 group", as if the file held one."""
    frame = _frame(n=60, n_groups=2)
    frame.to_csv(tmp_path / "two.csv", index=False)
    raw = load_data(tmp_path / "two.csv", target="label", group_column="user")
    with pytest.raises(DataError, match=r"The 60 rows of .*two.csv belong to 2 group\(s\).* training / validation / "
                                        r"test parts needs whole groups of its own"):
        prepare(raw, val_size=0.2, test_size=0.2)
    data = prepare(load_data(tmp_path / "two.csv", target="label", group_column="user"), val_size=0.2, test_size=0)
    assert len(data.y_train) + len(data.y_val) == 60 and len(data.y_val) > 0


def test_a_split_that_whole_groups_leave_far_from_its_share_is_noted(tmp_path: Path) -> None:
    """Three groups and the default shares: validation and test took a third of the rows each, not
    the fifth asked for, and nothing said so (the README speaks of the nearest share)."""
    frame = _frame(n=300, n_groups=3)
    frame.to_csv(tmp_path / "three.csv", index=False)
    data = prepare(load_data(tmp_path / "three.csv", target="label", group_column="user"), val_size=0.2, test_size=0.2)
    drifted = [n for n in data.notes if "not the 20% asked for" in n]
    assert {n.split()[1] for n in drifted} == {"validation", "test"}, data.notes
    assert all("3 in all here" in n for n in drifted)
    many = prepare(load_data(_write(tmp_path / "many.csv", _frame()), target="label", group_column="user"),
                   val_size=0.2, test_size=0.2)
    assert not many.notes  # 90 groups come near the shares: nothing to note
    res = CliRunner().invoke(cli, ["tune", str(tmp_path / "three.csv"), "--target", "label", "--group-column", "user",
                                   "--study", "g", "--trials", "2", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                                   "--no-tracking", "--json"])
    assert res.exit_code == 0, res.output
    said = json.loads(res.stdout)["warnings"]
    assert any("the validation split holds" in w and "not the 20% asked for" in w for w in said), said


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path
