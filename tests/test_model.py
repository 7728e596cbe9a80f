"""The fitted model: predicts on raw rows, saves as safetensors + JSON (no pickle), loads back identically."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tuner.data import load_data, prepare
from tuner.errors import DataError
from tuner.model import MODEL_JSON, WEIGHTS_FILE, LogisticModel
from tuner.study import train_one
from tuner.train import TrainConfig

CONFIG = TrainConfig(device="cpu", epochs=60)


def fitted(raw: Any, penalty: str = "l2", optimizer: str = "lbfgs", **pp: Any) -> tuple[LogisticModel, Any]:
    ds = prepare(raw, val_size=0.0, test_size=0.25, seed=0)
    outcome = train_one(ds, penalty, optimizer, pp or {"strength": 1e-3}, {}, CONFIG)
    return outcome.model, ds


def round_trip(model: LogisticModel, folder: Path) -> LogisticModel:
    model.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == [MODEL_JSON, WEIGHTS_FILE]  # no temporary files left
    # both files as the umask says (safetensors' save_file made the weights 0600: unreadable to others)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert modes[WEIGHTS_FILE] == modes[MODEL_JSON], modes
    return LogisticModel.load(folder)


def assert_no_pickle(folder: Path) -> None:
    """model.json is JSON; weights.safetensors is an 8-byte header length, a JSON header and raw numbers."""
    json.loads((folder / MODEL_JSON).read_text())
    blob = (folder / WEIGHTS_FILE).read_bytes()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F64"}
    for blob_ in (blob, (folder / MODEL_JSON).read_bytes()):
        assert not blob_.startswith(b"\x80")  # a pickle stream starts with the PROTO opcode


REVIEWS = {
    "pos": ["a wonderful , moving film", "warm and funny", "the best film of the year", "wonderful acting",
            "a joy to watch , funny and warm", "moving and wonderful", "funny , smart and warm"],
    "neg": ["a dull , tedious mess", "awful dialogue", "the worst film of the year", "tedious and dull",
            "an awful , boring film", "boring and awful", "dull , flat and tedious"],
}


def reviews_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    folder.mkdir()
    for label, lines in REVIEWS.items():
        (folder / f"reviews.{label}").write_text("\n".join(lines * 3) + "\n")
    return folder


def test_dense_model_round_trip(tmp_path: Path) -> None:
    model, ds = fitted(load_data(dataset="breast_cancer"))
    raw_rows = ds.raw.X[:50]
    loaded = round_trip(model, tmp_path / "model")
    assert_no_pickle(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(raw_rows), model.predict_proba(raw_rows))
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    assert loaded.classes_ == model.classes_ == [0, 1]
    assert loaded.info["penalty"] == "l2" and loaded.info["optimizer"] == "lbfgs"
    # raw rows -> the features the trainer saw -> probabilities
    np.testing.assert_allclose(model.predict_proba(ds.raw.X), model.predict_proba_features(ds.pipeline.transform(ds.raw.X)))
    assert np.mean(model.predict(ds.raw.X) == ds.raw.y) > 0.95
    proba = model.predict_proba(raw_rows)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_multinomial_sparse_model_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = sp.random(300, 40, density=0.2, random_state=1, format="csr") * 5
    y = np.asarray(X[:, :3].argmax(axis=1)).ravel()
    np.savez(tmp_path / "data.npz", X_data=X.data, X_indices=X.indices, X_indptr=X.indptr, X_shape=X.shape, y=y)
    model, ds = fitted(load_data(tmp_path / "data.npz"), "l1", "fista", strength=1e-3)
    assert model.coef_.shape == (40, 3) and 0 < model.n_nonzero_ < 120
    loaded = round_trip(model, tmp_path / "model")
    rows = X[rng.choice(300, 40)]
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))
    assert [name for name, _ in loaded.feature_weights()] == [name for name, _ in model.feature_weights()]
    assert len(model.feature_weights()) == int(np.any(model.coef_ != 0, axis=1).sum())


def test_text_model_predicts_raw_sentences_after_loading(tmp_path: Path) -> None:
    model, ds = fitted(load_data(reviews_folder(tmp_path)), strength=1e-3)
    loaded = round_trip(model, tmp_path / "model")
    assert_no_pickle(tmp_path / "model")
    sentences = pd.DataFrame({"text": ["a wonderful and warm film", "a tedious , awful mess", "unseen words only"]})
    np.testing.assert_array_equal(loaded.predict_proba(sentences), model.predict_proba(sentences))
    assert list(loaded.predict(sentences)[:2]) == ["pos", "neg"]
    assert loaded.pipeline.vocabulary == model.pipeline.vocabulary
    doc = json.loads((tmp_path / "model" / MODEL_JSON).read_text())
    assert doc["classes"] == ["neg", "pos"] and doc["pipeline"]["text_column"] == "text"
    with pytest.raises(DataError, match=r"give it a pandas DataFrame with its columns \('text'\), e.g. "
                                        r"pd.DataFrame\(\{'text': \[...\]\}\)"):
        loaded.predict(["a wonderful film"])  # a list of texts: the column's name is what was missing


def test_table_model_with_text_and_numeric_columns(tmp_path: Path) -> None:
    texts = [t for lines in REVIEWS.values() for t in lines] * 2
    labels = ["pos" if t in REVIEWS["pos"] else "neg" for t in texts]
    stars = [4.0 + (i % 2) if lab == "pos" else 1.0 + (i % 2) for i, lab in enumerate(labels)]
    frame = pd.DataFrame({"review": texts, "stars": stars, "label": labels})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    model, ds = fitted(load_data(tmp_path / "reviews.csv", target="label", text_column="review"))
    loaded = round_trip(model, tmp_path / "model")
    new = pd.DataFrame({"stars": [5.0, 1.0], "review": ["warm", "dull"]})  # column order does not matter
    np.testing.assert_array_equal(loaded.predict_proba(new), model.predict_proba(new))
    assert list(loaded.predict(new)) == ["pos", "neg"]
    with pytest.raises(DataError, match="stars"):
        loaded.predict(pd.DataFrame({"review": ["warm"]}))


def test_loading_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a saved model"):
        LogisticModel.load(tmp_path)
    model, _ = fitted(load_data(dataset="iris"))
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / MODEL_JSON).read_text())
    doc["format_version"] = 99
    (tmp_path / "m" / MODEL_JSON).write_text(json.dumps(doc))
    with pytest.raises(DataError, match="format 99"):
        LogisticModel.load(tmp_path / "m")


def test_matrix_model_refuses_rows_of_the_wrong_width(tmp_path: Path) -> None:
    model, _ = fitted(load_data(dataset="iris"))
    with pytest.raises(DataError, match="Expected 4 feature columns"):
        model.predict(np.ones((2, 5)))
    with pytest.raises(DataError, match="finite"):
        model.predict(np.array([[1.0, np.nan, 1.0, 1.0]]))


def test_a_row_whose_score_overflows_is_refused_not_given_probability_one(tmp_path: Path) -> None:
    """Finite but huge values overflowed X @ coef to inf: a class with probability 1.0 (the wrong one
    when another product was as large the other way), and only a NumPy warning on stderr."""
    import warnings

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    pd.DataFrame({"a": a, "b": b, "label": (2 * a - b > 0).astype(int)}).to_csv(tmp_path / "t.csv", index=False)
    model, _ = fitted(load_data(tmp_path / "t.csv", target="label"), strength=1e-4)
    assert np.abs(model.coef_).min() > 1  # so a value near float64's largest overflows its product
    rows = pd.DataFrame({"a": [0.5, 0.9e308, -0.5], "b": [0.1, -1.7e308, 0.3]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way
        with pytest.raises(DataError, match=r"^Row 2 of the 3 rows scored .* overflows float64"):
            model.predict_proba(rows)
        assert model.predict(rows.iloc[[0, 2]]).tolist() == [1, 0]


def test_matrix_model_takes_a_list_of_rows_as_an_array() -> None:
    model, _ = fitted(load_data(dataset="iris"))
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    np.testing.assert_array_equal(model.predict_proba(rows), model.predict_proba(np.array(rows)))
    with pytest.raises(DataError, match="must be numbers"):
        model.predict([["a", "b", "c", "d"]])
    with pytest.raises(DataError, match="all of one length"):
        model.predict([[1.0, 2.0, 3.0, 4.0], [1.0]])
    boolean = np.array(rows) > 3  # bool and numeric object rows are numbers, as numpy reads them
    np.testing.assert_array_equal(model.predict_proba(boolean), model.predict_proba(boolean.astype(float)))
    np.testing.assert_array_equal(model.predict_proba(np.array(rows, dtype=object)), model.predict_proba(rows))
