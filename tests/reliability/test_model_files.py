"""Saved models are checked on load: a damaged, edited or foreign model folder is one clear line.

Every bad model here is a real saved model (trained on iris, or on a small table with a text
column) with one part corrupted. Each is loaded with ``LogisticModel.load`` (a DataError
naming the file) and given to ``tuner predict FOLDER data.csv`` (one line, exit 1, no
traceback, nothing predicted).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file, save_file

from tuner.cli import cli
from tuner.data import load_data, prepare
from tuner.errors import DataError
from tuner.model import MODEL_JSON, WEIGHTS_FILE, LogisticModel
from tuner.study import train_one
from tuner.train import TrainConfig

CONFIG = TrainConfig(device="cpu", epochs=20)
Edit = Callable[[Path], None]


def _train(raw: Any) -> LogisticModel:
    ds = prepare(raw, val_size=0.0, test_size=0.25, seed=0)
    return train_one(ds, "l2", "lbfgs", {"strength": 1e-3}, {}, CONFIG).model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two good model folders (iris: a dense matrix; reviews: a table with text and a number) and rows for each."""
    root = tmp_path_factory.mktemp("models")
    _train(load_data(dataset="iris")).save(root / "iris")
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns="target")
    frame.head(6).to_csv(root / "iris.csv", index=False)
    texts = ["a wonderful warm film", "dull and tedious", "funny and moving", "an awful boring mess"] * 4
    reviews = pd.DataFrame({"review": texts, "stars": [5.0, 1.0, 4.0, 2.0] * 4,
                            "label": ["pos", "neg", "pos", "neg"] * 4})
    reviews.to_csv(root / "reviews_train.csv", index=False)
    _train(load_data(root / "reviews_train.csv", target="label", text_column="review")).save(root / "reviews")
    reviews.drop(columns="label").head(4).to_csv(root / "reviews.csv", index=False)
    return {"iris": root / "iris", "iris_rows": root / "iris.csv", "reviews": root / "reviews",
            "reviews_rows": root / "reviews.csv"}


def _copy(saved: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved[name], tmp_path / name))


def edit_json(change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(folder: Path) -> None:
        doc = json.loads((folder / MODEL_JSON).read_text())
        change(doc)
        (folder / MODEL_JSON).write_text(json.dumps(doc))
    return edit


def edit_arrays(change: Callable[[dict[str, np.ndarray]], None]) -> Edit:
    def edit(folder: Path) -> None:
        arrays = load_file(str(folder / WEIGHTS_FILE))
        change(arrays)
        save_file(arrays, str(folder / WEIGHTS_FILE))
    return edit


def write(name: str, data: bytes | Callable[[bytes], bytes]) -> Edit:
    def edit(folder: Path) -> None:
        old = (folder / name).read_bytes()
        (folder / name).write_bytes(data(old) if callable(data) else data)
    return edit


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d[p]
    d[last] = value


def put(path: str, value: Any) -> Edit:
    return edit_json(lambda doc: _set(doc, path, value))


def drop(path: str) -> Edit:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[p]
        del doc[last]
    return edit_json(change)


def arr(name: str, fn: Callable[[np.ndarray], np.ndarray | None]) -> Edit:
    def change(arrays: dict[str, np.ndarray]) -> None:
        new = fn(arrays[name].copy())
        if new is None:
            del arrays[name]
        else:
            arrays[name] = np.ascontiguousarray(new)
    return edit_arrays(change)


def _set_first(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def fn(a: np.ndarray) -> np.ndarray:
        a.reshape(-1)[0] = value
        return a
    return fn


def _repeat_first(items: list[Any]) -> None:
    items[1] = items[0]


# (model, corruption, a word the one-line message must hold, the file it must name)
IRIS_CASES: dict[str, tuple[Edit, str, str]] = {
    "coef_missing_a_feature_row": (arr("coef", lambda a: a[:3]), "'coef'", WEIGHTS_FILE),
    "coef_with_two_class_columns": (arr("coef", lambda a: a[:, :2]), "'coef'", WEIGHTS_FILE),
    "coef_flattened": (arr("coef", lambda a: a.ravel()), "'coef'", WEIGHTS_FILE),
    "intercept_too_long": (arr("intercept", lambda a: np.append(a, 0.0)), "'intercept'", WEIGHTS_FILE),
    "coef_nan": (arr("coef", _set_first(np.nan)), "finite", WEIGHTS_FILE),
    "intercept_inf": (arr("intercept", _set_first(np.inf)), "finite", WEIGHTS_FILE),
    "scale_zero": (arr("pipeline.scale", _set_first(0.0)), "positive", WEIGHTS_FILE),
    "scale_negative": (arr("pipeline.scale", _set_first(-2.0)), "positive", WEIGHTS_FILE),
    "scale_nan": (arr("pipeline.scale", _set_first(np.nan)), "finite", WEIGHTS_FILE),
    "center_too_short": (arr("pipeline.center", lambda a: a[:3]), "pipeline.center", WEIGHTS_FILE),
    "center_missing": (arr("pipeline.center", lambda a: None), "pipeline.center", WEIGHTS_FILE),
    "coef_missing": (arr("coef", lambda a: None), "'coef'", WEIGHTS_FILE),
    "weights_as_booleans": (arr("coef", lambda a: a > 0), "numbers", WEIGHTS_FILE),
    "weights_truncated": (write(WEIGHTS_FILE, lambda b: b[: len(b) // 2]), "safetensors", WEIGHTS_FILE),
    "weights_garbage": (write(WEIGHTS_FILE, b"not a safetensors file at all"), "safetensors", WEIGHTS_FILE),
    "weights_empty": (write(WEIGHTS_FILE, b""), "safetensors", WEIGHTS_FILE),
    "json_truncated": (write(MODEL_JSON, lambda b: b[: len(b) // 2]), "JSON", MODEL_JSON),
    "json_garbage": (write(MODEL_JSON, b"\xff\xfe\x00garbage"), "JSON", MODEL_JSON),
    "json_a_list": (write(MODEL_JSON, b"[1, 2, 3]"), "JSON object", MODEL_JSON),
    "unknown_kind": (put("pipeline.kind", "matrx"), "'kind'", MODEL_JSON),
    "pipeline_not_an_object": (put("pipeline", 3), "'pipeline'", MODEL_JSON),
    "n_input_features_a_string": (put("pipeline.n_input_features", "4"), "n_input_features", MODEL_JSON),
    "n_input_features_wrong": (put("pipeline.n_input_features", 5), "input", MODEL_JSON),
    "feature_names_wrong_count": (put("pipeline.input_feature_names", ["a", "b", "c"]), "input_feature_names",
                                  MODEL_JSON),
    "feature_names_repeated": (put("pipeline.input_feature_names", ["a", "a", "b", "c"]), "distinct", MODEL_JSON),
    "classes_missing": (drop("classes"), "'classes'", MODEL_JSON),
    "classes_empty": (put("classes", []), "'classes'", MODEL_JSON),
    "classes_a_string": (put("classes", "012"), "'classes'", MODEL_JSON),
    "classes_repeated": (put("classes", [0, 1, 1]), "distinct", MODEL_JSON),
    "classes_equal_as_written": (put("classes", [0, "0", 2]), "distinct", MODEL_JSON),
    "classes_with_null": (put("classes", [0, None, 2]), "'classes'", MODEL_JSON),
    "classes_one_too_few": (edit_json(lambda d: d.update(classes=[0, 1]) or d["pipeline"].update(class_names=[])),
                            "'coef'", WEIGHTS_FILE),
    "class_names_wrong_count": (put("pipeline.class_names", ["a", "b"]), "class_names", MODEL_JSON),
    "sparse_flag_a_string": (put("pipeline.sparse_input", "no"), "sparse_input", MODEL_JSON),
    "info_not_an_object": (put("info", "x"), "'info'", MODEL_JSON),
}

REVIEW_CASES: dict[str, tuple[Edit, str, str]] = {
    "idf_too_short": (arr("pipeline.idf", lambda a: a[:-1]), "pipeline.idf", WEIGHTS_FILE),
    "idf_negative": (arr("pipeline.idf", _set_first(-1.0)), "positive", WEIGHTS_FILE),
    "idf_missing": (arr("pipeline.idf", lambda a: None), "pipeline.idf", WEIGHTS_FILE),
    "vocabulary_repeated": (edit_json(lambda d: _repeat_first(d["pipeline"]["vocabulary"])), "distinct", MODEL_JSON),
    "vocabulary_without_text_column": (put("pipeline.text_column", None), "vocabulary", MODEL_JSON),
    "text_column_a_number": (put("pipeline.text_column", 7), "text_column", MODEL_JSON),
    "numeric_column_dropped": (put("pipeline.numeric_columns", []), "'coef'", WEIGHTS_FILE),
    "other_tfidf_options": (put("pipeline.tfidf.ngram_range", [1, 1]), "TF-IDF", MODEL_JSON),
}

CASES = [pytest.param("iris", *v, id=k) for k, v in IRIS_CASES.items()] + \
        [pytest.param("reviews", *v, id=k) for k, v in REVIEW_CASES.items()]


def _predict(folder: Path | str, rows: Path) -> Any:
    return CliRunner().invoke(cli, ["predict", str(folder), str(rows)], catch_exceptions=True)


def assert_one_line_error(result: Any, *words: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize("model,edit,word,file", CASES)
def test_a_damaged_model_is_one_line_naming_the_file(saved: dict[str, Path], tmp_path: Path, model: str,
                                                     edit: Edit, word: str, file: str) -> None:
    folder = _copy(saved, model, tmp_path)
    edit(folder)
    with pytest.raises(DataError) as err:
        LogisticModel.load(folder)
    msg = str(err.value)
    assert "\n" not in msg and word in msg and str(folder / file) in msg, msg
    assert_one_line_error(_predict(folder, saved[f"{model}_rows"]), word, file)


def test_a_model_from_a_newer_format_asks_for_an_upgrade(saved: dict[str, Path], tmp_path: Path) -> None:
    for name in ("iris", "reviews"):  # the good models load and predict
        result = _predict(saved[name], saved[f"{name}_rows"])
        assert result.exit_code == 0 and result.stdout.splitlines()[0] == "prediction", result.output
    folder = _copy(saved, "iris", tmp_path)
    put("format_version", 2)(folder)
    with pytest.raises(DataError, match=r"newer logreg-tuner.*upgrade"):
        LogisticModel.load(folder)
    assert_one_line_error(_predict(folder, saved["iris_rows"]), "upgrade")


@pytest.mark.parametrize("name", [MODEL_JSON, WEIGHTS_FILE])
def test_a_link_out_of_the_model_folder_is_refused(saved: dict[str, Path], tmp_path: Path, name: str) -> None:
    folder = _copy(saved, "iris", tmp_path)
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    (folder / name).replace(outside)
    (folder / name).symlink_to(outside)
    with pytest.raises(DataError, match="outside the model folder"):
        LogisticModel.load(folder)
    assert_one_line_error(_predict(folder, saved["iris_rows"]), "outside the model folder")
    # a link that stays inside the folder is fine
    inner = folder / "files" / name
    inner.parent.mkdir()
    (folder / name).unlink()
    shutil.copyfile(outside, inner)
    (folder / name).symlink_to(Path("files") / name)
    assert LogisticModel.load(folder).classes_ == [0, 1, 2]


def _mlflow_folder(saved: dict[str, Path], tmp_path: Path) -> Path:
    """An MLflow model folder laid out as save_pyfunc_model writes it (MLmodel + data/ folder)."""
    folder = tmp_path / "mlflow-model"
    shutil.copytree(saved["iris"], folder / "data" / "logistic_model")
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    data: data/logistic_model\n"
        "    loader_module: logreg_tuner_model._pyfunc\n    code: code\n")
    return folder


@pytest.mark.parametrize("data", ["../outside_model", "/ABS/outside_model", "data/link"])
def test_the_mlmodel_data_path_stays_inside_the_model_folder(saved: dict[str, Path], tmp_path: Path,
                                                             data: str) -> None:
    from tuner.model import load_logistic_model

    folder = _mlflow_folder(saved, tmp_path)
    assert load_logistic_model(folder).classes_ == [0, 1, 2]  # as laid out by MLflow: fine
    shutil.copytree(saved["iris"], tmp_path / "outside_model")
    (folder / "data" / "link").symlink_to(tmp_path / "outside_model")
    data = data.replace("/ABS", str(tmp_path))
    mlmodel = (folder / "MLmodel").read_text().replace("data/logistic_model", data)
    (folder / "MLmodel").write_text(mlmodel)
    with pytest.raises(DataError, match="outside the model folder"):
        load_logistic_model(folder)
    assert_one_line_error(_predict(folder, saved["iris_rows"]), "outside the model folder", "MLmodel")


@pytest.mark.parametrize("text", ["flavors: [unclosed", "- just\n- a list\n", "flavors:\n  python_function: 3\n"])
def test_a_broken_mlmodel_file_is_one_line(saved: dict[str, Path], tmp_path: Path, text: str) -> None:
    folder = _mlflow_folder(saved, tmp_path)
    (folder / "MLmodel").write_text(text)
    assert_one_line_error(_predict(folder, saved["iris_rows"]), "MLmodel" if "[" in text else "MLflow model")


def test_predict_in_a_real_process_prints_one_line(saved: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(saved, "iris", tmp_path)
    write(WEIGHTS_FILE, lambda b: b[:100])(folder)
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", "predict", str(folder), str(saved["iris_rows"])],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 1 and proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [lines[-1]] and lines[0].startswith("Error: ") and WEIGHTS_FILE in lines[0], proc.stderr


@pytest.mark.parametrize("dataset", ["digits", "a9a float32"])
def test_the_mlflow_model_takes_numbers_of_any_width(dataset: str, tmp_path: Path) -> None:
    """mlflow.pyfunc gets the rows `tuner predict` gets: integer pixels for a model whose example
    rows were floats, float64 rows for one trained on float32 LIBSVM values (MLflow's schema
    refused both as unsafe casts); text in a numeric column is still refused, in one line."""
    import mlflow.pyfunc

    from tuner.model import input_example_of, save_pyfunc_model

    if dataset == "digits":
        ds = prepare(load_data(dataset="digits"))
        rows = pd.DataFrame(ds.raw.take(np.arange(20)).astype(np.int64))  # whole-number pixels
    else:
        path = Path(os.environ.get("TUNER_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data"))
        ds = prepare(load_data(path / "a9a" / "a9a"))
        rows = pd.DataFrame(ds.raw.take(np.arange(20)).toarray().astype(np.float64))
    outcome = train_one(ds, "l2", "lbfgs", {"strength": 1e-3}, {}, TrainConfig(epochs=5))
    model = outcome.model
    folder = save_pyfunc_model(model, tmp_path / "m", input_example=input_example_of(model, ds))  # as logged
    loaded = mlflow.pyfunc.load_model(str(folder))
    rows.columns = list(loaded.metadata.get_input_schema().input_names())
    got = loaded.predict(rows, params={"proba": True})
    np.testing.assert_allclose(got.filter(like="proba_").to_numpy(dtype=float), model.predict_proba(rows), rtol=1e-9)
    bad = rows.astype(object)
    bad.iloc[0, 0] = "many"
    with pytest.raises(Exception, match="number|numeric|convert"):
        loaded.predict(bad)
