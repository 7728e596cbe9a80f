"""CSV/TSV files without a header (kddcup99 ships so): --no-header names the columns 0, 1, ... by
position; a first line of numbers is never taken for names (a target given as 3 picked whichever
column the first row's 3 was in), and a model trained so reads its rows to predict the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tuner
from tuner.cli import cli
from tuner.data import load_data, load_rows
from tuner.errors import ConfigError, DataError


def _connections(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Like kddcup99's rows: a duration, a protocol, two counts, and the label last."""
    rng = np.random.default_rng(seed)
    proto = rng.choice(["tcp", "udp", "icmp"], n)
    a, b = rng.integers(0, 50, n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.08 * (a - 25) + b + (proto == "udp"))))).astype(int)
    return pd.DataFrame({"duration": rng.integers(0, 5, n), "proto": proto, "a": a, "b": b, "label": y})


def test_distinct_integers_on_the_first_line_are_data_not_names(tmp_path: Path) -> None:
    """'5,3,1,0' was read as column names: --target 3 took the second column, and a row was lost."""
    path = tmp_path / "ints.csv"
    path.write_text("5,3,1,0\n" + "".join(f"{i % 7},{i % 5},{i % 3},{i % 2}\n" for i in range(40)))
    with pytest.raises(DataError, match=r"first line holds numbers \(5, 3, \.\.\.\), not column names: add a header "
                                        r"line naming the columns, or say that it has none \(--no-header"):
        load_data(path, target="3")
    raw = load_data(path, target="3", header=False)
    assert len(raw) == 41 and raw.numeric_columns == ["0", "1", "2"] and raw.y[:3].tolist() == [0, 0, 1]
    pandas_names = tmp_path / "numbered.csv"  # pandas' 0, 1, ..., n-1 for unnamed columns are still names
    pd.DataFrame(np.arange(40).reshape(10, 4) % 2).to_csv(pandas_names, index=False)
    assert len(load_data(pandas_names, target="3")) == 10


def test_a_file_without_a_header_trains_and_predicts_by_position(tmp_path: Path) -> None:
    frame = _connections()
    data = tmp_path / "conn.csv"
    frame.to_csv(data, index=False, header=False)
    report = tuner.fit(data, target="4", header=False, categorical_columns=["1"], val_size=0.2, test_size=0)
    named = tuner.fit(frame, target="label", categorical_columns=["proto"], val_size=0.2, test_size=0)
    assert report.n_train == named.n_train and report.model.pipeline.input_columns == ["0", "2", "3", "1"]
    rows = tmp_path / "rows.csv"  # rows to predict: no header, no label; first cells are numbers and text
    frame.drop(columns="label").head(8).to_csv(rows, index=False, header=False)
    got = report.model.predict_proba(load_rows(rows, report.model.pipeline))
    np.testing.assert_allclose(got, named.model.predict_proba(frame.drop(columns="label").head(8)), atol=1e-6)
    assert len(load_rows(rows, report.model.pipeline)) == 8  # the first row is a row, not names
    bad = tmp_path / "bad.csv"
    bad.write_text("0,tcp,1,0.5,1\n0,udp,1,inf,0\n")
    with pytest.raises(DataError, match=r"'3' holds inf at data row 2 \(line 2\)"):  # no header line to count
        load_data(bad, target="4", header=False, categorical_columns=["1"])
    with pytest.raises(ConfigError, match="applies to CSV and TSV files; the bundled dataset .iris. is read as"):
        load_data(dataset="iris", header=False)


def test_the_cli_keeps_no_header_in_the_study_and_predict_can_be_told(tmp_path: Path) -> None:
    frame = _connections()
    data = tmp_path / "conn.csv"
    frame.to_csv(data, index=False, header=False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    first = runner.invoke(cli, ["tune", str(data), "--no-header", "--target", "4", "--categorical", "1", "--study", "h",
                                "--storage", url, "--no-tracking", "--penalty", "l2", "--optimizer", "lbfgs",
                                "--trials", "2"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(cli, ["tune", "--study", "h", "--storage", url, "--no-tracking", "--trials", "3", "--json"])
    assert resumed.exit_code == 0, resumed.output  # the stored spec reads the file without a header again
    assert json.loads(resumed.output[resumed.output.index("{"):])["trials"]["complete"] == 3
    shown = runner.invoke(cli, ["study", "show", "h", "--storage", url])
    assert "  columns: target 4; categorical 1; no header (named 0, 1, ... by position)\n" in shown.output, shown.output
    model = tmp_path / "m"
    trained = runner.invoke(cli, ["train", str(data), "--no-header", "--target", "4", "--categorical", "1",
                                  "--save-model", str(model)])
    assert trained.exit_code == 0, trained.output
    named_rows = tmp_path / "named.csv"  # a header of the training names, 0 1 2 3: read as names
    frame.drop(columns="label").head(4).to_csv(named_rows, index=False, header=["0", "1", "2", "3"])
    bare_rows = tmp_path / "bare.csv"
    frame.drop(columns="label").head(4).to_csv(bare_rows, index=False, header=False)
    outputs = [runner.invoke(cli, ["predict", str(model), str(named_rows), "--proba", "--header"]),
               runner.invoke(cli, ["predict", str(model), str(bare_rows), "--proba"])]
    assert all(out.exit_code == 0 for out in outputs) and outputs[0].output == outputs[1].output
    assert len(outputs[0].output.strip().splitlines()) == 5
    unsaid = runner.invoke(cli, ["predict", str(model), str(named_rows)])  # positions, or a row of small integers?
    assert unsaid.exit_code != 0 and "Say which: --header or --no-header" in unsaid.output, unsaid.output
    told = runner.invoke(cli, ["predict", str(model), str(bare_rows), "--header"])
    assert told.exit_code != 0  # told the first row names the columns: it does not
    frame.drop(columns="label").set_axis(["0", "1", "2", "3"], axis=1).to_parquet(tmp_path / "rows.parquet")
    parquet_told = runner.invoke(cli, ["predict", str(model), str(tmp_path / "rows.parquet"), "--no-header"])
    assert parquet_told.exit_code != 0 and "applies to CSV/TSV files" in parquet_told.output, parquet_told.output


def test_rows_for_a_model_trained_by_position_are_read_as_written(tmp_path: Path) -> None:
    """For a model trained without a header: a header naming its columns (in any order, as pandas
    writes one after drop(columns=2)) was read as a row of data, --target 2 was refused, and rows
    without the label could not be read when it was not the last column."""
    frame = _connections().drop(columns="duration")[["label", "a", "proto", "b"]]  # the label first
    data = tmp_path / "t0.csv"
    frame.to_csv(data, index=False, header=False)
    model = tuner.fit(data, target="0", header=False, categorical_columns=["2"], val_size=0, test_size=0).model
    named = tuner.fit(frame, target="label", categorical_columns=["proto"], val_size=0, test_size=0).model
    features = frame.drop(columns="label").head(5)
    expected = named.predict_proba(features)

    def predicted(rows: pd.DataFrame, header: object, told: bool | None = None) -> np.ndarray:
        path = tmp_path / "rows.csv"
        rows.to_csv(path, index=False, header=header)  # type: ignore[arg-type]
        return model.predict_proba(load_rows(path, model.pipeline, header=told))

    np.testing.assert_allclose(predicted(features, False), expected, atol=1e-6)  # no label: by position
    np.testing.assert_allclose(predicted(features, ["1", "2", "3"], told=True), expected, atol=1e-6)
    np.testing.assert_allclose(predicted(features[["b", "proto", "a"]], ["3", "2", "1"], told=True), expected,
                               atol=1e-6)
    with pytest.raises(DataError, match="the model's column positions, or a row of data"):
        predicted(features, ["1", "2", "3"])
    with_label = tmp_path / "labelled.csv"
    frame.head(5).to_csv(with_label, index=False, header=False)
    got = model.predict_proba(load_rows(with_label, model.pipeline, target="0"))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    with pytest.raises(DataError, match=r"target column 7 \(--target\) is not in .*4 columns, numbered 0 to 3"):
        load_rows(with_label, model.pipeline, target="7")
    # a feature's position as --target: it was dropped and the rest read shifted by one (exit 0)
    for feature in ("1", "3"):
        with pytest.raises(DataError, match=rf"--target names column {feature} of rows without a header, which the "
                                            r"model reads as a feature \(it was trained on columns 1, 2, 3\)"):
            load_rows(with_label, model.pipeline, target=feature)
    named_rows = tmp_path / "named.csv"
    frame.head(5).to_csv(named_rows, index=False)
    with pytest.raises(DataError, match="--target names the column 'proto', which the model reads as a feature"):
        load_rows(named_rows, named.pipeline, target="proto")


def test_kddcup99_as_shipped_needs_only_no_header(tmp_path: Path) -> None:
    """kddcup99 is `kddcup.data_10_percent.gz`: no header, no suffix naming CSV. With --no-header the
    file is a CSV or TSV, told apart by a tab in its first line (it was 'Cannot tell the format')."""
    import gzip

    frame = _connections(300)
    packed = tmp_path / "conn.data.gz"
    with gzip.open(packed, "wt") as fh:
        fh.write(frame.to_csv(index=False, header=False))
    raw = load_data(packed, target="4", header=False, categorical_columns=["1"])
    assert raw.fmt == "csv" and len(raw) == 300 and raw.categorical_columns == ["1"]
    tabbed = tmp_path / "conn.data"
    tabbed.write_text(frame.to_csv(index=False, header=False, sep="\t"))
    assert load_data(tabbed, target="4", header=False, categorical_columns=["1"]).fmt == "tsv"


def test_a_header_of_numbers_is_taken_when_told(tmp_path: Path) -> None:
    """Years as column names are refused by default (most such lines are data); header=True takes them."""
    path = tmp_path / "years.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(30, 3)), columns=["2019", "2020", "2021"]).assign(**{"1": [0, 1] * 15}).to_csv(
        path, index=False)
    with pytest.raises(DataError, match="first line holds numbers"):
        load_data(path, target="1")
    raw = load_data(path, target="1", header=True)
    assert raw.numeric_columns == ["2019", "2020", "2021"] and len(raw) == 30
    out = CliRunner().invoke(cli, ["train", str(path), "--target", "1", "--header"])
    assert out.exit_code == 0, out.output


def test_a_first_row_of_small_integers_is_never_taken_for_positions_unasked(tmp_path: Path) -> None:
    """Rows '1,0', '0,1', ... for a model trained by position on two columns: the first line read
    as its column names dropped a row (4 rows, 3 predictions, exit 0)."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (200, 2))
    data = tmp_path / "bits.csv"
    pd.DataFrame(np.column_stack([bits, bits[:, 0] ^ (rng.random(200) < 0.2)])).to_csv(data, index=False,
                                                                                          header=False)
    model = tuner.fit(data, target="2", header=False, val_size=0, test_size=0).model
    rows = tmp_path / "rows.csv"
    rows.write_text("1,0\n0,1\n1,1\n0,0\n")
    with pytest.raises(DataError, match=r"reads 1, 0: the model's column positions, or a row of data"):
        load_rows(rows, model.pipeline)
    assert len(load_rows(rows, model.pipeline, header=False)) == 4


def test_target_names_a_column_of_a_model_trained_on_names(tmp_path: Path) -> None:
    """--target 1 on rows without a header dropped position 1 for a model whose label was the
    column named "1" (third): the label was then read as the feature '2020'."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 2)), columns=["2019", "2020"]).assign(**{"1": [0, 1] * 20})
    data = tmp_path / "years.csv"
    frame.to_csv(data, index=False)
    model = tuner.fit(data, target="1", header=True, val_size=0, test_size=0).model
    rows = tmp_path / "rows.csv"
    frame.head(3).to_csv(rows, index=False, header=False)
    with pytest.raises(DataError, match="the file has no header, so no column has a name"):
        load_rows(rows, model.pipeline, target="1")
