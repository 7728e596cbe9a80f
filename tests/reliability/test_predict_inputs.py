"""Issue 9, `tuner predict` input and output: columns matched by name, never by position; a
headerless file read as such; labels as in training; cells a spreadsheet would run escaped.

Real saved models (``tuner train --save-model``), real files, the real CLI.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from tuner.cli import cli

FAST = ("--penalty", "l2", "--optimizer", "lbfgs", "--epochs", "30")


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def trained(tmp_path: Path, *data_args: Any) -> Path:
    folder = tmp_path / "model"
    result = invoke("train", *data_args, *FAST, "--save-model", folder)
    assert result.exit_code == 0, result.output
    return folder


def predictions(model: Path, data: Path, *args: Any) -> pd.DataFrame:
    result = invoke("predict", model, data, *args)
    assert result.exit_code == 0, result.output
    return pd.read_csv(io.StringIO(result.stdout), dtype=str, keep_default_na=False)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A model trained on scikit-learn's breast_cancer and 40 of its raw rows."""
    from sklearn.datasets import load_breast_cancer

    tmp = tmp_path_factory.mktemp("cancer")
    rows = load_breast_cancer(as_frame=True).data.iloc[::14].reset_index(drop=True)
    return trained(tmp, "--dataset", "breast_cancer"), rows


def test_breast_cancer_labels_are_the_training_labels(tmp_path: Path, cancer: tuple[Path, pd.DataFrame]) -> None:
    model, rows = cancer
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = predictions(model, tmp_path / "rows.csv", "--proba")
    assert set(out["prediction"]) == {"malignant", "benign"}
    assert list(out.columns) == ["prediction", "proba_malignant", "proba_benign"]
    malignant = out["proba_malignant"].astype(float) > 0.5
    assert ((out["prediction"] == "malignant") == malignant).all()


def test_renamed_or_missing_columns_are_named_in_the_error(tmp_path: Path, cancer: tuple[Path, pd.DataFrame]) -> None:
    model, rows = cancer
    rows.rename(columns={"mean radius": "radius"}).to_csv(tmp_path / "renamed.csv", index=False)
    line = one_line_error(invoke("predict", model, tmp_path / "renamed.csv"))
    assert "['mean radius']" in line and "['radius']" in line
    rows.drop(columns=["worst area"]).to_csv(tmp_path / "missing.csv", index=False)
    line = one_line_error(invoke("predict", model, tmp_path / "missing.csv"))
    assert "['worst area']" in line


def test_an_unknown_encoding_names_the_flag(tmp_path: Path, cancer: tuple[Path, pd.DataFrame]) -> None:
    """It was a LookupError traceback; predict's errors said the API's 'the ... parameter', not its flags."""
    model, rows = cancer
    rows.to_csv(tmp_path / "rows.csv", index=False)
    line = one_line_error(invoke("predict", model, tmp_path / "rows.csv", "--encoding", "bogus"))
    assert line == "Error: Unknown encoding 'bogus' (--encoding): give a name Python knows, e.g. utf-8 or latin-1."


def test_output_in_a_missing_folder_is_one_line(tmp_path: Path, cancer: tuple[Path, pd.DataFrame]) -> None:
    """--output in a folder that does not exist: refused before the model is loaded (an OSError
    traceback after the predictions before)."""
    model, rows = cancer
    rows.to_csv(tmp_path / "rows.csv", index=False)
    target = tmp_path / "nodir" / "p.csv"
    line = one_line_error(invoke("predict", model, tmp_path / "rows.csv", "-o", target))
    assert line == (f"Error: Cannot write {target}: the folder {target.parent} does not exist; create it first, "
                    "or give --output a path in an existing folder.")
    assert not target.parent.exists()


def test_a_target_column_the_file_lacks_is_named(tmp_path: Path, cancer: tuple[Path, pd.DataFrame]) -> None:
    """--target naming no column of DATA (a typo) was silently ignored; the label column it meant
    to name is there, or the file has no header at all."""
    model, rows = cancer
    rows.assign(diagnosis="?").to_csv(tmp_path / "labelled.csv", index=False)
    assert len(predictions(model, tmp_path / "labelled.csv", "--target", "diagnosis")) == len(rows)
    line = one_line_error(invoke("predict", model, tmp_path / "labelled.csv", "--target", "diagnosys"))
    assert line.startswith(f"Error: The target column 'diagnosys' (--target) is not in {tmp_path / 'labelled.csv'}. "
                           "Did you mean 'diagnosis'? Columns: ['mean radius', ")
    assert line.endswith(", 'diagnosis'].")
    rows.to_csv(tmp_path / "bare.csv", index=False, header=False)
    line = one_line_error(invoke("predict", model, tmp_path / "bare.csv", "--target", "diagnosis"))
    assert "the file has no header" in line and "'diagnosis'" in line


def test_reordered_columns_and_extra_columns_are_matched_by_name(tmp_path: Path,
                                                                 cancer: tuple[Path, pd.DataFrame]) -> None:
    model, rows = cancer
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = predictions(model, tmp_path / "rows.csv", "--proba")
    reordered = rows[list(reversed(rows.columns))].assign(comment="seen twice")
    reordered.to_csv(tmp_path / "reordered.csv", index=False)
    result = invoke("predict", model, tmp_path / "reordered.csv", "--proba")
    assert result.exit_code == 0, result.output
    assert "ignoring column(s) ['comment']" in result.stderr
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(result.stdout), dtype=str, keep_default_na=False), expected)


def test_headerless_file_loses_no_row_and_needs_the_training_width(tmp_path: Path,
                                                                   cancer: tuple[Path, pd.DataFrame]) -> None:
    model, rows = cancer
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_csv(tmp_path / "bare.csv", index=False, header=False)
    expected = predictions(model, tmp_path / "rows.csv", "--proba")
    pd.testing.assert_frame_equal(predictions(model, tmp_path / "bare.csv", "--proba"), expected)
    rows.iloc[:, :-1].to_csv(tmp_path / "narrow.csv", index=False, header=False)
    line = one_line_error(invoke("predict", model, tmp_path / "narrow.csv"))
    assert "no header" in line and "29 columns" in line and "30" in line


def test_pyfunc_matches_dataframe_columns_by_name(cancer: tuple[Path, pd.DataFrame]) -> None:
    """What `mlflow models serve` calls: a DataFrame in another column order predicts the same."""
    from tuner.model import LogisticModel, LogisticPyfunc

    model_dir, rows = cancer
    pyfunc = LogisticPyfunc(LogisticModel.load(model_dir))
    straight = pyfunc.predict(rows, params={"proba": True})
    shuffled = pyfunc.predict(rows[list(reversed(rows.columns))], params={"proba": True})
    pd.testing.assert_frame_equal(shuffled, straight)


def test_table_model_ignores_extra_text_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=60)
    pd.DataFrame({"a": a, "b": rng.normal(size=60), "label": np.where(a > 0, "up", "down")}).to_csv(
        tmp_path / "train.csv", index=False)
    model = trained(tmp_path, tmp_path / "train.csv", "--target", "label")
    new = pd.DataFrame({"id": ["r1", "r2"], "b": [0.0, 0.0], "a": [3.0, -3.0], "note": ["x", "y"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    assert list(predictions(model, tmp_path / "new.csv")["prediction"]) == ["up", "down"]
    new[["a", "b"]].to_csv(tmp_path / "bare.csv", index=False, header=False)
    assert list(predictions(model, tmp_path / "bare.csv")["prediction"]) == ["up", "down"]


def test_text_model_given_a_csv_with_extra_columns(tmp_path: Path) -> None:
    texts = ["a wonderful warm film", "dull and boring plot", "warm wonderful acting", "boring dull film"] * 6
    labels = ["pos", "neg", "pos", "neg"] * 6
    pd.DataFrame({"review": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    model = trained(tmp_path, tmp_path / "train.csv", "--target", "label", "--text-column", "review")
    new = pd.DataFrame({"id": ["a", "b"], "review": ["wonderful warm", "dull boring"], "label": ["?", "?"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    assert list(predictions(model, tmp_path / "new.csv", "--target", "label")["prediction"]) == ["pos", "neg"]


def test_formula_like_labels_are_written_so_a_spreadsheet_does_not_run_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=90)
    labels = np.select([a < -0.4, a > 0.4], ["=HYPERLINK(\"http://x\")", "@SUM(A1)"], "-2+3+cmd|' /C calc'!A0")
    pd.DataFrame({"a": a, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    model = trained(tmp_path, tmp_path / "train.csv", "--target", "label")
    pd.DataFrame({"a": [-3.0, 3.0, 0.0]}).to_csv(tmp_path / "new.csv", index=False)
    out_file = tmp_path / "out.csv"
    result = invoke("predict", model, tmp_path / "new.csv", "--output", out_file)
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(out_file, dtype=str)["prediction"].tolist()
    assert cells == ["'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "'-2+3+cmd|' /C calc'!A0"]
    # a label that is a negative number is a number, not a formula: left alone
    lines = [f"{1 if i % 2 else -1} 1:{(1 if i % 2 else -1) * (1 + i / 40):.3f} 2:{i % 3}" for i in range(40)]
    (tmp_path / "train.svm").write_text("\n".join(lines) + "\n")
    model = trained(tmp_path / "svm", tmp_path / "train.svm")
    (tmp_path / "new.svm").write_text("0 1:-2 2:1\n0 1:2 2:1\n")
    assert list(predictions(model, tmp_path / "new.svm")["prediction"]) == ["-1", "1"]


def test_svmlight_rows_are_read_with_the_models_index_base(tmp_path: Path) -> None:
    """A zero-based model reads a file without index 0 zero-based; a one-based model refuses index 0."""
    rows = [f"{i % 2} 0:{(i * 7) % 5 / 5:.2f} 1:{(2 if i % 2 else -2) + (i % 3) / 3:.3f}" for i in range(40)]
    (tmp_path / "zero.svm").write_text("\n".join(rows) + "\n")
    zero_model = trained(tmp_path / "z", tmp_path / "zero.svm")
    assert json.loads((zero_model / "model.json").read_text())["pipeline"]["zero_based"] is True
    (tmp_path / "new.svm").write_text("0 1:3\n0 1:-3\n")  # no index 0: feature 1 is still feature 1
    assert list(predictions(zero_model, tmp_path / "new.svm")["prediction"]) == ["1", "0"]
    one_rows = [r.replace(" 1:", " 2:").replace(" 0:", " 1:") for r in rows]
    (tmp_path / "one.svm").write_text("\n".join(one_rows) + "\n")
    one_model = trained(tmp_path / "o", tmp_path / "one.svm")
    (tmp_path / "bad.svm").write_text("0 2:3\n0 0:1 2:-3\n")
    line = one_line_error(invoke("predict", one_model, tmp_path / "bad.svm"))
    assert "bad.svm line 2" in line and "index 0" in line


def test_svmlight_rows_for_a_model_not_trained_on_libsvm_are_read_with_a_proven_base(
        tmp_path: Path, cancer: tuple[Path, pd.DataFrame]) -> None:
    """A model trained on a table stores no index base: a LIBSVM file is read zero-based when it
    holds index 0, one-based when it holds the index of the model's width, and otherwise only
    with --zero-based/--one-based (a zero-based file without index 0 was read one-based: every
    feature one column off)."""
    from sklearn.datasets import dump_svmlight_file

    model, rows = cancer
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = predictions(model, tmp_path / "rows.csv", "--proba")
    X, y = rows.to_numpy(), np.zeros(len(rows))
    for name, zero_based in (("zero.svm", True), ("one.svm", False)):  # index 0 / index 30 present
        dump_svmlight_file(X, y, str(tmp_path / name), zero_based=zero_based)
        _same_predictions(predictions(model, tmp_path / name, "--proba"), expected)
    trimmed = X.copy()
    trimmed[:, [0, -1]] = 0.0  # neither the first nor the last column stored: the file proves no base
    dump_svmlight_file(trimmed, y, str(tmp_path / "unclear.svm"), zero_based=True)
    line = one_line_error(invoke("predict", model, tmp_path / "unclear.svm"))
    assert "index base" in line and "--zero-based" in line
    pd.DataFrame(trimmed, columns=rows.columns).to_csv(tmp_path / "trimmed.csv", index=False)
    _same_predictions(predictions(model, tmp_path / "unclear.svm", "--proba", "--zero-based"),
                      predictions(model, tmp_path / "trimmed.csv", "--proba"))
    line = one_line_error(invoke("predict", model, tmp_path / "trimmed.csv", "--one-based"))  # not ignored
    assert "applies to LIBSVM files" in line


def _same_predictions(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same labels, and probabilities up to rounding (sparse and dense rows take other products)."""
    assert list(got.columns) == list(expected.columns) and list(got["prediction"]) == list(expected["prediction"])
    np.testing.assert_allclose(got.iloc[:, 1:].astype(float), expected.iloc[:, 1:].astype(float), rtol=1e-9, atol=1e-15)


def test_a_first_row_of_column_numbers_from_one_is_refused(tmp_path: Path, cancer: tuple[Path, pd.DataFrame]) -> None:
    """1, 2, ..., n may be column numbers or a row of values: read either way, one prediction is
    added or lost without a word."""
    model, rows = cancer
    numbered = rows.copy()
    numbered.columns = [str(i) for i in range(1, rows.shape[1] + 1)]
    numbered.to_csv(tmp_path / "numbered.csv", index=False)
    line = one_line_error(invoke("predict", model, tmp_path / "numbered.csv"))
    assert "1, 2, ..., 30" in line and "mean radius" in line
    rows.to_csv(tmp_path / "plain.csv", index=False, header=False)  # no header at all: every row predicted
    assert len(predictions(model, tmp_path / "plain.csv")) == len(rows)


@pytest.fixture(scope="module")
def table_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A model trained on a numeric CSV table (it stores no LIBSVM width or index base) and its rows."""
    tmp = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(1)
    rows = pd.DataFrame(rng.normal(size=(60, 4)), columns=["a", "b", "c", "d"])
    rows.assign(label=np.where(rows["a"] > 0, "up", "down")).to_csv(tmp / "train.csv", index=False)
    return trained(tmp, tmp / "train.csv", "--target", "label"), rows


def test_errors_of_predict_name_its_own_flags_and_the_models_width(
        tmp_path: Path, table_model: tuple[Path, pd.DataFrame]) -> None:
    """predict's errors spoke the Python API ('the 'zero_based' parameter', 'the 'fmt' parameter',
    'the 'text_column' parameter', which predict has no flag for) and named the width of a model
    trained on a table as None."""
    from sklearn.datasets import dump_svmlight_file

    model, rows = table_model
    unclear = rows.to_numpy().copy()
    unclear[:, [0, -1]] = 0.0  # neither index 0 nor index 4: the file proves no base
    dump_svmlight_file(unclear, np.zeros(len(rows)), str(tmp_path / "unclear.svm"), zero_based=True)
    (tmp_path / "zero.svm").write_text("0 0:1 2:3\n")
    (tmp_path / "odd.dat").write_text("a\nb\n")
    (tmp_path / "words.csv").write_text("a,b,c,d\nx,1,2,3\n")
    lines = {name: one_line_error(invoke("predict", model, tmp_path / name, *args))
             for name, args in (("unclear.svm", ()), ("zero.svm", ("--one-based",)), ("odd.dat", ()),
                                ("words.csv", ()))}
    for line in lines.values():
        assert "parameter" not in line and "None" not in line and "--text-column" not in line, line
    assert "the model's 4 features" in lines["unclear.svm"] and "(--zero-based/--one-based)" in lines["unclear.svm"]
    assert "zero-based (--zero-based/--one-based)" in lines["zero.svm"]
    assert "give --format" in lines["odd.dat"]
    assert "'a' is not numeric" in lines["words.csv"] and "trained on numbers" in lines["words.csv"]


def test_svmlight_rows_for_a_model_trained_on_a_table_are_read_by_position(
        tmp_path: Path, table_model: tuple[Path, pd.DataFrame]) -> None:
    """A model trained on a table read LIBSVM rows as one column of matrices ('These rows have no
    header and 1 columns'); they are its columns in training order, as a CSV without a header."""
    from sklearn.datasets import dump_svmlight_file

    model, rows = table_model
    rows.to_csv(tmp_path / "rows.csv", index=False)
    expected = predictions(model, tmp_path / "rows.csv", "--proba")
    dump_svmlight_file(rows.to_numpy(), np.zeros(len(rows)), str(tmp_path / "one.svm"), zero_based=False)
    _same_predictions(predictions(model, tmp_path / "one.svm", "--proba", "--one-based"), expected)
    _same_predictions(predictions(model, tmp_path / "one.svm", "--proba"), expected)  # index 4: one-based


def test_a_text_model_refuses_libsvm_rows(tmp_path: Path) -> None:
    texts = ["a wonderful warm film", "dull and boring plot", "warm wonderful acting", "boring dull film"] * 6
    pd.DataFrame({"review": texts, "label": ["pos", "neg"] * 12}).to_csv(tmp_path / "train.csv", index=False)
    model = trained(tmp_path, tmp_path / "train.csv", "--target", "label", "--text-column", "review")
    (tmp_path / "rows.svm").write_text("0 1:1 3:2\n")
    line = one_line_error(invoke("predict", model, tmp_path / "rows.svm"))
    assert "the model reads text (the column 'review')" in line and "None" not in line


def test_a_table_with_a_header_and_no_rows_says_so(tmp_path: Path, table_model: tuple[Path, pd.DataFrame]) -> None:
    """It was reported as a column of text (dtype object), with --text-column that predict has not."""
    model, _ = table_model
    (tmp_path / "empty.csv").write_text("a,b,c,d\n")
    line = one_line_error(invoke("predict", model, tmp_path / "empty.csv"))
    assert "empty.csv has a header and no data rows" in line
