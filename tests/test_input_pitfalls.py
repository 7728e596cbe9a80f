"""Inputs that were read wrong without a word, or refused with the wrong advice (found by an
adversarial review of data reading and prediction): each is now read right or refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tuner
from tuner.cli import cli
from tuner.data import load_data, load_rows
from tuner.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def numbered_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A model trained on a CSV whose header is pandas' default for unnamed columns (0, 1, 2, 3)."""
    root = tmp_path_factory.mktemp("numbered")
    rng = np.random.default_rng(5)
    X = rng.integers(0, 6, (300, 4))
    frame = pd.DataFrame(X)
    frame["label"] = ((X[:, 0] - X[:, 3] + rng.normal(size=300)) > 0).astype(int)
    frame.to_csv(root / "counts.csv", index=False)
    report = tuner.fit(root / "counts.csv", target="label", test_size=0)
    return report.model, root


def test_a_first_row_of_the_models_numbered_column_names_is_a_question(numbered_model: tuple[Any, Path]) -> None:
    """`3,2,1,0` was taken as a header: the row was lost and the others read with their columns reversed."""
    model, root = numbered_model
    rows = root / "rows.csv"
    rows.write_text("3,2,1,0\n5,0,0,0\n0,0,0,5\n")
    with pytest.raises(DataError, match="reads 3, 2, 1, 0: the model's column names, or a row of data"):
        load_rows(rows, model.pipeline)
    def frame(values: list[list[int]]) -> pd.DataFrame:
        return pd.DataFrame(values, columns=["0", "1", "2", "3"])

    as_data = model.pipeline.select_columns(load_rows(rows, model.pipeline, header=False))
    assert list(model.predict(as_data)) == list(model.predict(frame([[3, 2, 1, 0], [5, 0, 0, 0], [0, 0, 0, 5]])))
    named = model.pipeline.select_columns(load_rows(rows, model.pipeline, header=True))  # a header: names matched
    assert len(named) == 2 and list(model.predict(named)) == list(model.predict(frame([[0, 0, 0, 5], [5, 0, 0, 0]])))


def test_headerless_rows_wider_than_the_model_are_refused_whatever_its_column_names(
        numbered_model: tuple[Any, Path]) -> None:
    """An id column in front shifted every feature by one, with a note only ('ignoring column 4')."""
    model, root = numbered_model
    rows = root / "with_id.csv"
    rows.write_text("1000,5.5,0.5,0.5,0.5\n1001,0.5,0.5,0.5,5.5\n")
    with pytest.raises(DataError, match="These rows have no header and 5 columns; the model was trained on 4"):
        model.pipeline.select_columns(load_rows(rows, model.pipeline))
    exact = root / "exact.csv"
    exact.write_text("5.5,0.5,0.5,0.5\n0.5,0.5,0.5,5.5\n")
    assert list(model.predict(model.pipeline.select_columns(load_rows(exact, model.pipeline)))) == [1, 0]


def test_numbers_separated_by_spaces_are_not_read_as_texts(tmp_path: Path) -> None:
    """UCI-style `label v1 v2 ...` lines were sniffed as '<label> <text>' and trained as TF-IDF of the numbers."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int)
    data = tmp_path / "uci.data"
    data.write_text("".join(f"{t} " + " ".join(f"{v:.4f}" for v in x) + "\n" for t, x in zip(y, X)))
    with pytest.raises(DataError, match="are numbers separated by spaces"):
        load_data(data)
    assert load_data(data, fmt="labeltext").kind == "table"  # said on purpose: read as words
    texts = tmp_path / "reviews"
    texts.write_text("1 a fine film\n0 2 hours of nothing\n" * 10)
    assert load_data(texts).fmt == "labeltext"


def test_a_libsvm_file_with_a_byte_order_mark_or_an_empty_row_is_still_libsvm(tmp_path: Path) -> None:
    body = "1 1:0.5 3:1\n0 2:1.5\n0\n1 1:2 2:0.1\n"
    plain, marked = tmp_path / "plain", tmp_path / "marked"
    plain.write_text(body)
    marked.write_bytes(b"\xef\xbb\xbf" + body.encode())
    a, b = load_data(plain), load_data(marked)
    assert a.fmt == b.fmt == "svmlight"
    assert (a.X != b.X).nnz == 0 and list(a.y) == list(b.y) == [1, 0, 0, 1]


def test_a_column_of_numbers_with_one_odd_cell_names_the_cell(tmp_path: Path) -> None:
    """It said the column was not numeric and advised --text-column or --categorical."""
    rows = [f"{i * 0.5},{i % 2}" for i in range(40)]
    rows[17] = "?,1"
    data = tmp_path / "odd.csv"
    data.write_text("b,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"Feature column 'b' holds '\?' at data row 18 \(line 19\) .* where 39 of its "
                                        r"cells are numbers"):
        load_data(data, target="label")
    words = tmp_path / "words.csv"
    words.write_text("b,label\n" + "\n".join(f"w{i},{i % 2}" for i in range(40)) + "\n")
    with pytest.raises(DataError, match="is not numeric .*as the text column"):
        load_data(words, target="label")


def test_an_encoding_for_data_without_text_is_refused(tmp_path: Path) -> None:
    npz = tmp_path / "d.npz"
    np.savez(npz, X=np.eye(4), y=np.array([0, 1, 0, 1]))
    for kwargs in ({"path": npz}, {"dataset": "iris"}):
        with pytest.raises(ConfigError, match="A text encoding .* does not apply"):
            load_data(**kwargs, encoding="latin-1")  # type: ignore[arg-type]
    assert load_data(npz, encoding="UTF8").X.shape == (4, 4)  # the default, however spelled


def test_predict_says_when_it_drops_a_first_word_as_a_label(tmp_path: Path) -> None:
    """Classes named by words (a folder of r.good, r.bad): a line starting with one lost that word unnoticed."""
    folder = tmp_path / "cf"
    folder.mkdir()
    rng = np.random.default_rng(6)
    filler = ["movie", "film", "plot", "actor", "scene"]
    for cls, words in (("good", ["great", "fine", "good", "superb"]), ("bad", ["bad", "awful", "poor", "dull"])):
        (folder / f"r.{cls}").write_text("".join(" ".join(rng.choice(words + filler, 4)) + "\n" for _ in range(100)))
    model = tmp_path / "model"
    runner = CliRunner()
    assert runner.invoke(cli, ["train", str(folder), "--save-model", str(model)]).exit_code == 0
    lines = "good awful plot\nbad awful film\nbad fine scene\n"
    (tmp_path / "lab.test").write_text(lines)
    (tmp_path / "lab.txt").write_text(lines)
    dropped = runner.invoke(cli, ["predict", str(model), str(tmp_path / "lab.test")])
    assert dropped.exit_code == 0 and "note: every line starts with a class of the model (bad, good)" in dropped.output
    whole = runner.invoke(cli, ["predict", str(model), str(tmp_path / "lab.txt")])
    assert whole.exit_code == 0 and "note:" not in whole.output


@pytest.fixture(scope="module")
def named_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A model trained on columns a, b, c, d, and one on the same rows without a header (by position)."""
    root = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    frame["label"] = (frame["a"] + frame["d"] > 0).astype(int)
    frame.to_csv(root / "named.csv", index=False)
    frame.to_csv(root / "bare.csv", index=False, header=False)
    tuner.fit(root / "named.csv", target="label", test_size=0, save_model=root / "named")
    tuner.fit(root / "bare.csv", target="4", header=False, test_size=0, save_model=root / "bare")
    return frame, root


def test_predict_names_a_bad_cell_by_its_file_line(named_model: tuple[Any, Path]) -> None:
    """It said 'row 3' (counting data rows from 0) where training says 'data row 4 (line 5)'."""
    frame, root = named_model
    rows = frame.drop(columns="label").head(6).astype(object)
    rows.iloc[3, 1] = None
    rows.to_csv(root / "gap.csv", index=False)
    out = CliRunner().invoke(cli, ["predict", str(root / "named"), str(root / "gap.csv")])
    assert out.exit_code == 1 and "Feature column 'b' holds nan at data row 4 (line 5)" in out.output, out.output


def test_a_first_row_with_a_missing_value_or_a_byte_order_mark_is_data(named_model: tuple[Any, Path]) -> None:
    """Rows without a header: an empty first cell made the first row a header with a nameless
    column, and a byte-order mark made it a header of numbers."""
    frame, root = named_model
    rows = frame.drop(columns="label").head(5)
    body = rows.to_csv(index=False, header=False)
    (root / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    runner = CliRunner()
    plain = runner.invoke(cli, ["predict", str(root / "named"), str(root / "bom.csv"), "--no-header"])
    marked = runner.invoke(cli, ["predict", str(root / "named"), str(root / "bom.csv")])
    assert plain.exit_code == marked.exit_code == 0 and plain.output == marked.output, marked.output
    assert len(marked.output.splitlines()) == 6
    first, rest = body.split("\n", 1)
    cells = first.split(",")
    cells[1] = ""
    (root / "gap0.csv").write_text(",".join(cells) + "\n" + rest)
    out = runner.invoke(cli, ["predict", str(root / "named"), str(root / "gap0.csv")])
    assert out.exit_code == 1 and "Feature column 'b' holds nan at data row 1 (line 1)" in out.output, out.output


def test_a_header_given_to_a_model_trained_without_one_is_named_as_such(named_model: tuple[Any, Path]) -> None:
    """It said column '0' held 'a' and asked for numbers there."""
    frame, root = named_model
    frame.drop(columns="label").head(3).to_csv(root / "with_header.csv", index=False)
    out = CliRunner().invoke(cli, ["predict", str(root / "bare"), str(root / "with_header.csv")])
    assert out.exit_code == 1 and "reads a, b, c, d, like a header" in out.output and "remove that line" in out.output


def test_a_libsvm_test_file_for_a_matrix_shows_its_index_base_or_is_refused(tmp_path: Path) -> None:
    """Training on an .npz, a one-based test file whose rows never reach the last index was read
    one-based by a guess; zero-based files without an index 0 would have been shifted by a column."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "train.npz", X=X, y=y)
    (tmp_path / "shown.svm").write_text("1 1:0.5 3:1\n0 2:1.5\n")  # index 3 = the width: one-based
    (tmp_path / "unshown.svm").write_text("1 1:0.5 2:1\n0 2:1.5\n")
    shown = tuner.fit(tmp_path / "train.npz", test_file=tmp_path / "shown.svm")
    assert shown.n_test == 2
    with pytest.raises(DataError, match="index base of the test file .*unshown.svm is unknown"):
        tuner.fit(tmp_path / "train.npz", test_file=tmp_path / "unshown.svm")


def test_labels_that_are_one_number_written_two_ways_are_refused(tmp_path: Path) -> None:
    """`10` and `1E1` were read as the number 10: three label texts trained as two classes."""
    rows = [f"{i % 7},{i % 3},{lab}" for i, lab in enumerate(["10", "1E1", "2"] * 40)]
    (tmp_path / "codes.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="The labels '10' and '1E1' are the same number written two ways"):
        load_data(tmp_path / "codes.csv", target="label")
    # a sign or a fraction of zeros is the same label written another way: one class, as before
    rows = [f"{i % 7},{i % 3},{lab}" for i, lab in enumerate(["1", "+1", "1.0", "-1", "-1.00"] * 20)]
    (tmp_path / "signs.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    assert sorted(set(load_data(tmp_path / "signs.csv", target="label").y.tolist())) == [-1, 1]
