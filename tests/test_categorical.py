"""Categorical columns (``--categorical`` / ``categorical_columns``): one 0/1 feature per category
of the training rows, saved with the model, the same optimum as scikit-learn's one-hot encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import tuner
from tuner.cli import cli
from tuner.data import load_rows
from tuner.data._features import DENSE_ONE_HOT_MAX, MISSING_CATEGORY, FeaturePipeline
from tuner.errors import ConfigError, DataError


def _frame(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Connections: a protocol (with a missing cell), a service code read as numbers, a duration."""
    rng = np.random.default_rng(seed)
    proto = rng.choice(["tcp", "udp", "icmp"], n, p=[0.6, 0.3, 0.1]).astype(object)
    service = rng.integers(0, 12, n)
    x = rng.normal(3.0, 2.0, n)
    logit = 1.5 * (proto == "udp") - 2.0 * (proto == "icmp") + 0.7 * (x - 3) + np.where(service < 3, 1.5, -0.3)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    proto[7] = None
    return pd.DataFrame({"proto": proto, "x": x, "service": service, "label": y})


def test_the_optimum_matches_scikit_learn_on_one_hot_columns() -> None:
    """Same features as OneHotEncoder + StandardScaler, same penalised optimum (strength = 1 / (C n))."""
    frame = _frame()
    X, y = frame.drop(columns="label"), frame["label"].to_numpy()
    strength = 1e-3
    report = tuner.fit(X, y, categorical_columns=["proto", "service"], penalty="l2", optimizer="lbfgs",
                       params={"penalty.strength": strength}, val_size=0, test_size=0, dtype="float64", tol=1e-12,
                       epochs=500)
    cats = X[["proto", "service"]].astype(str).replace({"None": MISSING_CATEGORY})
    one_hot = OneHotEncoder(handle_unknown="ignore").fit(cats)
    features = np.hstack([StandardScaler().fit_transform(X[["x"]]), one_hot.transform(cats).toarray()])
    ref = LogisticRegression(C=1 / (strength * len(y)), tol=1e-12, max_iter=100_000).fit(features, y)
    assert report.n_features == features.shape[1] == 1 + 4 + 12
    np.testing.assert_allclose(report.model.predict_proba(X), ref.predict_proba(features), atol=2e-6)
    names = report.model.pipeline.feature_names
    assert names[:2] == ["x", f"proto={MISSING_CATEGORY}"] and "service=11" in names


def test_unseen_categories_set_no_feature_and_codes_read_as_floats_match_ints() -> None:
    pipe = FeaturePipeline.fit(_frame(), kind="table", numeric_columns=["x"], categorical_columns=["proto", "service"])
    rows = pd.DataFrame({"proto": ["sctp", "tcp"], "x": [3.0, 3.0], "service": [4.0, 99.0]})  # codes as floats
    Z = pipe.transform(rows)
    assert isinstance(Z, np.ndarray) and Z.shape == (2, pipe.n_features)
    proto = [i for i, n in enumerate(pipe.feature_names) if n.startswith("proto=")]
    service = [i for i, n in enumerate(pipe.feature_names) if n.startswith("service=")]
    assert Z[0, proto].sum() == 0 and Z[1, proto].tolist() == [0, 0, 1, 0]  # (missing), icmp, tcp, udp
    assert Z[0, service].sum() == 1 and Z[0, pipe.feature_names.index("service=4")] == 1
    assert Z[1, service].sum() == 0  # a code the training rows never held


def test_many_categories_give_sparse_features_and_the_state_round_trips() -> None:
    n = DENSE_ONE_HOT_MAX + 200
    frame = pd.DataFrame({"user": [f"u{i}" for i in range(n)], "x": np.arange(n, dtype=float)})
    pipe = FeaturePipeline.fit(frame, kind="table", numeric_columns=["x"], categorical_columns=["user"])
    Z = pipe.transform(frame)
    assert sp.issparse(Z) and Z.shape == (n, n + 1) and Z.nnz == 2 * n  # x never equals its mean, 611.5
    meta, arrays = pipe.state()
    again = FeaturePipeline.from_state(json.loads(json.dumps(meta)), arrays)
    assert (again.transform(frame) != Z).nnz == 0 and again.input_columns == ["x", "user"]


def test_wrong_categorical_options_are_one_clear_error(tmp_path: Path) -> None:
    frame = _frame(200)
    with pytest.raises(DataError, match=r"Categorical column\(s\) \['protocol'\].*not found"):
        tuner.fit(frame, target="label", categorical_columns=["protocol"])
    with pytest.raises(DataError, match="both the target"):
        tuner.fit(frame, target="label", categorical_columns=["label"])
    with pytest.raises(ConfigError, match="name columns of a table"):
        tuner.fit(np.ones((4, 2)), [0, 1, 0, 1], categorical_columns=["x"])
    with pytest.raises(DataError, match=r"'proto' is not numeric.*categorical column \(the 'categorical_columns'"):
        tuner.fit(frame, target="label")
    svm = tmp_path / "d.svm"
    svm.write_text("0 1:1\n1 2:1\n")
    with pytest.raises(ConfigError, match="'categorical_columns' parameter.* do\\(es\\) not apply"):
        tuner.fit(svm, categorical_columns=["x"])


def test_the_cli_tunes_trains_and_predicts_with_categorical_columns(tmp_path: Path) -> None:
    """tune keeps the columns in the study (a resume with others is refused); train saves them with
    the model, and predict reads them by name (an unseen category, a missing cell, no column)."""
    frame = _frame()
    data = tmp_path / "conn.csv"
    frame.to_csv(data, index=False)
    rows = tmp_path / "rows.csv"
    frame.drop(columns="label").head(6).assign(proto=["tcp", "sctp", None, "udp", "icmp", "tcp"]).to_csv(
        rows, index=False)
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 's.db'}"
    base = ["tune", str(data), "--target", "label", "--study", "c", "--storage", url, "--no-tracking",
            "--penalty", "l2", "--optimizer", "lbfgs"]
    out = runner.invoke(cli, [*base, "--categorical", "proto,service", "--trials", "3", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output[out.output.index("{"):])["trials"]["complete"] >= 1
    refused = runner.invoke(cli, [*base, "--categorical", "proto", "--trials", "4"])
    assert refused.exit_code != 0 and "categorical_columns" in refused.output, refused.output
    resumed = runner.invoke(cli, [*base, "--categorical", "service", "--categorical", "proto", "--trials", "4"])
    assert resumed.exit_code == 0, resumed.output  # the order of the names does not matter

    trained = runner.invoke(cli, ["train", str(data), "--target", "label", "--categorical", "proto,service",
                                   "--save-model", str(tmp_path / "m")])
    assert trained.exit_code == 0, trained.output
    predicted = runner.invoke(cli, ["predict", str(tmp_path / "m"), str(rows), "--proba"])
    assert predicted.exit_code == 0, predicted.output
    expected = tuner.load_model(tmp_path / "m").predict_proba(pd.read_csv(rows))
    assert "note: 1 of 6 row(s) hold a category of 'proto' that the training rows never held" in predicted.output
    csv_lines = [line for line in predicted.output.strip().splitlines() if not line.startswith("note:")]
    lines = [line.split(",") for line in csv_lines[1:]]
    np.testing.assert_allclose(np.array([[float(v) for v in line[-2:]] for line in lines]), expected, atol=1e-6)
    assert not np.allclose(expected[0], expected[1])  # sctp (unseen) is not tcp
    frame.drop(columns=["label", "proto"]).head(3).to_csv(tmp_path / "noproto.csv", index=False)
    lacking = runner.invoke(cli, ["predict", str(tmp_path / "m"), str(tmp_path / "noproto.csv")])
    assert lacking.exit_code != 0 and "['proto']" in lacking.output, lacking.output


def test_a_cell_is_the_same_category_whatever_else_its_file_holds(tmp_path: Path) -> None:
    """pandas reads a column of numbers as numbers and a mixed one as text: '007' was category 7 in
    a file of rows that all looked like numbers and '007' in another, so the same cell predicted
    differently by the company it kept (an unseen category, exit 0). Files now give cell texts."""
    rng = np.random.default_rng(1)
    codes = np.array(["007", "1.50", "3", "A", "true"], dtype=object)[rng.integers(0, 5, 400)]
    y = np.isin(codes, ["007", "true"]).astype(int) ^ (rng.random(400) < 0.1)
    train = tmp_path / "mix.csv"
    pd.DataFrame({"g": codes, "x": rng.normal(size=400), "label": y}).to_csv(train, index=False)
    model = tuner.fit(train, target="label", categorical_columns="g", val_size=0, test_size=0).model
    assert model.pipeline.categories == [["007", "1.50", "3", "A", "true"]]
    together = tmp_path / "rows.csv"
    rows = pd.DataFrame({"g": ["007", "1.50", "true", "3"], "x": [0.1, 0.2, 0.3, 0.4]})
    rows.to_csv(together, index=False)
    expected = model.predict_proba(load_rows(together, model.pipeline))
    for i in range(4):  # one row a file: '007' alone reads as the number 7 without the text columns
        alone = tmp_path / f"row{i}.csv"
        rows.iloc[[i]].to_csv(alone, index=False)
        np.testing.assert_allclose(model.predict_proba(load_rows(alone, model.pipeline)), expected[[i]], atol=1e-12)
    assert model.predict_proba(pd.DataFrame({"g": [""], "x": [0.1]})).shape == (1, 2)  # '' is a missing cell
    assert FeaturePipeline.fit(pd.DataFrame({"g": ["", None, "a"]}), kind="table",
                               categorical_columns=["g"]).categories == [[MISSING_CATEGORY, "a"]]


def test_columns_named_by_position_and_one_name_as_a_string() -> None:
    """A DataFrame read without a header has int column names: categorical_columns=[1] and
    target=2 were "not found" next to a list showing "0" and "2"; "proto" was split into letters."""
    frame = _frame(300).drop(columns="service")
    numbered = frame.set_axis(range(3), axis=1)
    by_position = tuner.fit(numbered, target=2, categorical_columns=[0], val_size=0, test_size=0)
    by_name = tuner.fit(frame, target="label", categorical_columns="proto", val_size=0, test_size=0)
    assert by_name.model.pipeline.categorical_columns == ["proto"]
    np.testing.assert_allclose(by_position.model.predict_proba(numbered.drop(columns=2)),
                               by_name.model.predict_proba(frame.drop(columns="label")), atol=1e-6)


def test_codes_written_as_floats_are_the_codes_and_unseen_ones_are_noted(tmp_path: Path) -> None:
    """pandas writes an int column with a gap as 1.0, 2.0, 3.0: a model trained from such a CSV
    named its categories '1.0'..., so rows from a DataFrame or Parquet (3) were all unseen, and
    every prediction moved without a word."""
    frame = _frame(400)
    frame.loc[3, "service"] = None  # the column becomes float: written 4.0, 11.0, ...
    data = tmp_path / "gap.csv"
    frame.to_csv(data, index=False)
    assert "4.0" in data.read_text()
    from_file = tuner.fit(data, target="label", categorical_columns=["proto", "service"], val_size=0, test_size=0)
    from_frame = tuner.fit(frame, target="label", categorical_columns=["proto", "service"], val_size=0, test_size=0)
    assert from_file.model.pipeline.categories == from_frame.model.pipeline.categories
    assert "0" in from_file.model.pipeline.categories[1] and "(missing)" in from_file.model.pipeline.categories[1]
    rows = frame.drop(columns="label").head(6).assign(service=[1, 2, 99, 3, 4, 5])
    np.testing.assert_allclose(from_file.model.predict_proba(rows), from_frame.model.predict_proba(rows), atol=1e-6)
    model_dir = tmp_path / "m"
    from_file.model.save(model_dir)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = CliRunner().invoke(cli, ["predict", str(model_dir), str(tmp_path / "rows.csv")])
    assert out.exit_code == 0, out.output
    assert "note: 1 of 6 row(s) hold a category of 'service' that the training rows never held" in out.output


def test_the_mlflow_model_takes_the_training_files_own_numeric_codes(tmp_path: Path) -> None:
    """A categorical column of numeric codes was typed 'string' in the pyfunc signature, so MLflow
    refused the training file's own rows ('Can not safely convert int64'), while tuner predict and
    the Python API took them."""
    import mlflow.pyfunc

    from tuner.model import save_pyfunc_model

    rng = np.random.default_rng(2)
    code, x = rng.choice([1, 2, 3], 300), rng.normal(size=300)
    y = (x + 2 * (code == 1) - 2 * (code == 3) + 0.5 * rng.normal(size=300) > 0).astype(int)
    frame = pd.DataFrame({"x": x, "code": code, "y": y})
    model = tuner.fit(frame, target="y", categorical_columns=["code"], val_size=0, test_size=0).model
    rows = frame.drop(columns="y").head(20)
    save_pyfunc_model(model, tmp_path / "m")  # its input example: the categories as the model keeps them
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    expected = model.predict(rows)
    for written in (rows, rows.assign(code=rows["code"].astype(str)), rows.assign(code=rows["code"].astype(float))):
        np.testing.assert_array_equal(loaded.predict(written), expected)


def test_a_test_files_extra_columns_and_new_categories_are_noted_as_predict_notes_them(tmp_path: Path) -> None:
    """``tuner predict`` notes columns the model ignores and categories it never saw; a study's
    ``--test-file`` dropped both without a word."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, -1]].copy()
    frame["site"] = np.where(np.arange(len(frame)) % 2, "a", "b")
    frame.iloc[:450].to_csv(tmp_path / "train.csv", index=False)
    test = frame.iloc[450:].copy()
    test["row_id"] = range(len(test))
    test.loc[test.index[:5], "site"] = "zz"
    test.to_csv(tmp_path / "test.csv", index=False)
    res = CliRunner().invoke(cli, ["tune", str(tmp_path / "train.csv"), "--target", "target", "--categorical", "site",
                                   "--test-file", str(tmp_path / "test.csv"), "--study", "n", "--trials", "2",
                                   "--storage", f"sqlite:///{tmp_path / 's.db'}", "--no-tracking", "--json"])
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.stdout)["warnings"]
    assert any("has column(s) ['row_id'] that the training data has not; the model ignores them" in w
               for w in warnings), warnings
    assert any("5 of the 119 test row(s) hold a category of 'site' that the training rows never held" in w
               for w in warnings), warnings
