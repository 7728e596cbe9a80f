"""A fitted model: preprocessing + weights + classes; predicts on raw rows, saves without pickles.

A saved model is a folder with ``model.json`` (classes, preprocessing description, training
facts) and ``weights.safetensors`` (weights, intercept and the preprocessing arrays).
Prediction uses NumPy/SciPy only, so serving a model does not need torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from tuner.data._features import TFIDF_OPTIONS, FeaturePipeline
from tuner.errors import DataError

__all__ = ["LogisticModel", "MODEL_JSON", "WEIGHTS_FILE"]

MODEL_JSON = "model.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = 1


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


@dataclass
class LogisticModel:
    """Fitted logistic regression over a :class:`FeaturePipeline`.

    ``coef_`` has shape ``(n_features, 1)`` for two classes and ``(n_features, n_classes)``
    otherwise; ``intercept_`` matches its second dimension.
    """

    classes_: list[Any]
    coef_: np.ndarray
    intercept_: np.ndarray
    pipeline: FeaturePipeline
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nonzero_(self) -> int:
        return int(np.count_nonzero(self.coef_))

    def decision_function_features(self, X: Any) -> np.ndarray:
        """The scores of prepared feature rows; a :class:`DataError` for a row whose score overflows
        (its probabilities would be a confident guess: 1.0 for either class)."""
        with np.errstate(over="ignore", invalid="ignore"):
            Z = X @ self.coef_ if not sp.issparse(X) else np.asarray(X @ self.coef_)
            Z = Z + self.intercept_
        if not np.isfinite(Z).all():
            row = int(np.flatnonzero(~np.isfinite(Z).all(axis=1))[0])
            raise DataError(f"Row {row + 1} of the {Z.shape[0]} rows scored (counting from 1) has feature values too "
                            "large for this model: its score overflows float64, so no class probability can be "
                            "given. Check that row's values (their units?), or scale them down.")
        return Z

    def predict_proba_features(self, X: Any) -> np.ndarray:
        Z = self.decision_function_features(X)
        if len(self.classes_) == 2:
            p1 = _sigmoid(Z[:, 0])
            return np.column_stack([1 - p1, p1])
        Z = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        return E / E.sum(axis=1, keepdims=True)

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities for raw rows (a DataFrame for table models, a matrix otherwise)."""
        return self.predict_proba_features(self.pipeline.transform(rows))

    def predict(self, rows: Any) -> np.ndarray:
        """Predicted class labels for raw rows, in the labels' own dtype (int64 for 0/1, str for names)."""
        return np.asarray(self.classes_)[self.predict_proba(rows).argmax(axis=1)]

    def feature_weights(self) -> list[tuple[str, np.ndarray]]:
        """(feature name, weights) for the non-zero rows of ``coef_``."""
        names = self.pipeline.feature_names
        return [(names[i], self.coef_[i]) for i in np.flatnonzero(np.any(self.coef_ != 0, axis=1))]

    # ---- persistence -----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model into folder ``path`` (created if needed) and return it."""
        from safetensors.numpy import save

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta, arrays = self.pipeline.state()
        tensors = {"coef": np.ascontiguousarray(self.coef_, dtype=np.float64),
                   "intercept": np.ascontiguousarray(self.intercept_, dtype=np.float64)}
        tensors.update({f"pipeline.{k}": np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()})
        tmp_weights, tmp_json = folder / (WEIGHTS_FILE + ".tmp"), folder / (MODEL_JSON + ".tmp")
        # bytes written here, not by save_file: it creates the file with mode 0600 whatever the umask,
        # so another user (a compose service, a shared model folder) could not read the weights
        tmp_weights.write_bytes(save(tensors))
        doc = {"format_version": FORMAT_VERSION, "classes": self.classes_, "pipeline": meta, "info": self.info}
        tmp_json.write_text(json.dumps(doc, default=_json_default))
        tmp_weights.replace(folder / WEIGHTS_FILE)
        tmp_json.replace(folder / MODEL_JSON)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> LogisticModel:
        """Read a model saved by :meth:`save` (no code is unpickled), checking every part of it.

        Raises :class:`DataError` (one line naming the file) for a file that is missing, damaged,
        a link out of the folder, from a newer format, or inconsistent with the other parts.
        """
        folder = Path(path)
        json_path, weights_path = _member(folder, MODEL_JSON), _member(folder, WEIGHTS_FILE)
        doc = _read_json(json_path)
        _check_format(doc, json_path)
        arrays = _read_weights(weights_path)
        classes = _check_classes(doc.get("classes"), json_path)
        meta = _expect(doc.get("pipeline"), dict, "'pipeline'", "an object", json_path)
        pipe_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("pipeline.")}
        pipeline = _check_pipeline(meta, pipe_arrays, len(classes), json_path, weights_path)
        k = 1 if len(classes) == 2 else len(classes)
        facts = f"{pipeline.n_features} features, {len(classes)} classes in {json_path.name}"
        coef = _check_array(arrays.get("coef"), (pipeline.n_features, k), "'coef'", facts, weights_path)
        intercept = _check_array(arrays.get("intercept"), (k,), "'intercept'", facts, weights_path)
        info = _expect(doc.get("info", {}), dict, "'info'", "an object", json_path)
        return cls(classes, coef, intercept, pipeline, info)


# ---- checks on loading -----------------------------------------------------------------------
# A model folder may come from anywhere (a download, a colleague): every part is checked
# against the others so that a damaged or edited model fails with one line instead of
# predicting something wrong. The checks live here, not in _features.py, and use only NumPy.

_KINDS = ("matrix", "table")
_DAMAGED = "save (or download) the model again"


def _bad(where: Path, what: str, must: str, got: Any) -> DataError:
    """scikit-learn's template, naming the model file."""
    return DataError(f"The {what} in {where} must be {must}; got {got} instead. The model is damaged or was "
                     f"edited: {_DAMAGED}.")


def _member(folder: Path, name: str) -> Path:
    """``folder/name``: a regular file inside the folder (a link may not lead out of it)."""
    path = folder / name
    if not path.is_file():
        raise DataError(f"{folder} is not a saved model (expected {MODEL_JSON} and {WEIGHTS_FILE}).")
    if not _inside(path, folder):
        raise DataError(f"{path} is a link to {path.resolve()}, outside the model folder {folder}; a model "
                        "folder must hold its own files (copy them in instead of linking).")
    return path


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, links resolved, is ``folder`` or lies under it."""
    try:
        return path.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (OSError, RuntimeError):  # a dangling link or a loop
        return False


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"{path} is not valid JSON ({_one_line(exc)}); {_DAMAGED}.") from None
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    return _expect(doc, dict, "content", "a JSON object", path)


def _check_format(doc: dict[str, Any], path: Path) -> None:
    version = doc.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise DataError(f"{path} was saved by a newer logreg-tuner (model format {version}); this version reads "
                        f"format {FORMAT_VERSION}: upgrade logreg-tuner (pip install -U logreg-tuner).")
    if type(version) is not int or version != FORMAT_VERSION:
        raise DataError(f"{path} was saved in model format {version!r}; this version reads format {FORMAT_VERSION}.")


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except Exception as exc:  # safetensors raises its own SafetensorError (and others on odd headers)
        raise DataError(f"{path} is not a readable safetensors file ({_one_line(exc)}); {_DAMAGED}.") from None
    for name, a in arrays.items():
        if a.dtype.kind not in "fiu":
            raise _bad(path, f"array {name!r}", "numbers", f"dtype {a.dtype}")
    return arrays


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _expect(value: Any, kind: type, what: str, must: str, where: Path) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(where, what, must, _describe(value))
    return value


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, np.ndarray) else f"an array of shape {value.shape}"
    return text if len(text) <= 60 else text[:57] + "..."


def _label_ok(c: Any) -> bool:
    if isinstance(c, float):
        return math.isfinite(c)
    return isinstance(c, (str, int))  # bool is an int


def _check_classes(classes: Any, where: Path) -> list[Any]:
    """A list of at least two distinct labels (strings or finite numbers), distinct as written too."""
    if not isinstance(classes, list) or len(classes) < 2:
        raise _bad(where, "'classes'", "a list of at least two class labels", _describe(classes))
    bad = [c for c in classes if not _label_ok(c)]
    if bad:
        raise _bad(where, "'classes'", "labels that are strings or finite numbers", _describe(bad[0]))
    if len(set(classes)) != len(classes) or len({str(c) for c in classes}) != len(classes):
        raise _bad(where, "'classes'", "distinct labels", _describe(classes))
    return list(classes)


def _check_names(meta: dict[str, Any], key: str, where: Path) -> list[str]:
    names = _expect(meta.get(key, []), list, f"pipeline {key!r}", "a list of distinct strings", where)
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise _bad(where, f"pipeline {key!r}", "a list of distinct strings", _describe(names))
    return names


def _check_array(a: Any, shape: tuple[int, ...], what: str, facts: str, where: Path, *,
                 positive: bool = False) -> np.ndarray:
    """A finite float array of exactly ``shape`` (and > 0 with ``positive``)."""
    if a is None:
        raise _bad(where, f"array {what}", f"present (shape {shape}: {facts})", "no such array")
    if a.shape != shape:
        raise _bad(where, f"array {what}", f"of shape {shape} ({facts})", f"shape {a.shape}")
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise _bad(where, f"array {what}", "finite", f"{a.ravel()[~np.isfinite(a.ravel())][0]}")
    if positive and (a <= 0).any():
        raise _bad(where, f"array {what}", "positive", f"{a.ravel()[(a.ravel() <= 0)][0]}")
    return a


def _check_pipeline(meta: dict[str, Any], arrays: dict[str, np.ndarray], n_classes: int, json_path: Path,
                    weights_path: Path) -> FeaturePipeline:
    """The feature pipeline: its description in model.json, and its arrays consistent with it."""
    _check_meta(meta, n_classes, json_path)
    expected, facts = (_matrix_arrays if meta["kind"] == "matrix" else _table_arrays)(meta, json_path)
    if meta["kind"] == "matrix" and meta.get("sparse_input") and "center" in arrays:
        raise _bad(weights_path, "array 'pipeline.center'", "absent for a model of sparse input", "one")
    for name, (n, positive) in expected.items():
        arrays[name] = _check_array(arrays.get(name), (n,), f"'pipeline.{name}'", facts, weights_path,
                                    positive=positive)
    return FeaturePipeline.from_state(meta, arrays)


def _check_meta(meta: dict[str, Any], n_classes: int, where: Path) -> None:
    """The types of the pipeline's description, and options this version computes the same way."""
    if meta.get("kind") not in _KINDS:
        raise _bad(where, "pipeline 'kind'", f"one of {list(_KINDS)}", _describe(meta.get("kind")))
    _expect(meta.get("n_input_features", 0), int, "pipeline 'n_input_features'", "an integer", where)
    _expect(meta.get("sparse_input", False), bool, "pipeline 'sparse_input'", "true or false", where)
    numeric = _check_names(meta, "numeric_columns", where)
    for key in ("input_feature_names", "vocabulary"):
        _check_names(meta, key, where)
    text = meta.get("text_column")
    if text is not None and (not isinstance(text, str) or text in numeric):
        raise _bad(where, "pipeline 'text_column'", "null or a string that is not a numeric column", _describe(text))
    _check_categories(meta, [*numeric, *([text] if text is not None else [])], where)
    _expect(meta.get("headerless", False), bool, "pipeline 'headerless'", "true or false", where)
    if meta.get("zero_based") is not None:
        _expect(meta["zero_based"], bool, "pipeline 'zero_based'", "null, true or false", where)
    class_names = _check_names(meta, "class_names", where)
    if class_names and len(class_names) != n_classes:
        raise _bad(where, "pipeline 'class_names'", f"empty or one name per class ({n_classes})", len(class_names))
    tfidf = {k: list(v) if isinstance(v, tuple) else v for k, v in TFIDF_OPTIONS.items() if k != "dtype"}
    if meta.get("tfidf", tfidf) != tfidf:
        raise DataError(f"{where} describes TF-IDF options {_describe(meta['tfidf'])}; this version of "
                        f"logreg-tuner computes {_describe(tfidf)} and would transform text differently.")


def _check_categories(meta: dict[str, Any], others: list[str], where: Path) -> None:
    """Categorical columns that are no other column, each with its distinct, sorted categories."""
    categorical = _check_names(meta, "categorical_columns", where)
    if set(categorical) & set(others):
        raise _bad(where, "pipeline 'categorical_columns'", "columns that are neither numeric nor the text column",
                   _describe(sorted(set(categorical) & set(others))))
    categories = _expect(meta.get("categories", []), list, "pipeline 'categories'", "a list of lists", where)
    if len(categories) != len(categorical):
        raise _bad(where, "pipeline 'categories'", f"one list per categorical column ({len(categorical)})",
                   f"{len(categories)} lists")
    for column, cats in zip(categorical, categories):
        if (not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats)
                or cats != sorted(set(cats))):
            raise _bad(where, f"pipeline categories of {column!r}", "a non-empty sorted list of distinct strings",
                       _describe(cats))


_Expected = tuple[dict[str, tuple[int, bool]], str]  # array name -> (length, must be positive); facts


def _matrix_arrays(meta: dict[str, Any], where: Path) -> _Expected:
    n_in, names = meta.get("n_input_features", 0), meta.get("input_feature_names", [])
    if n_in < 1 or len(names) != n_in:
        raise _bad(where, "pipeline 'input_feature_names'", f"one name per input feature ({n_in}, at least 1)",
                   f"{len(names)} names")
    expected = {"scale": (n_in, True)}
    if not meta.get("sparse_input"):
        expected["center"] = (n_in, False)
    return expected, f"{n_in} input features in {where.name}"


def _table_arrays(meta: dict[str, Any], where: Path) -> _Expected:
    numeric, vocabulary, text = meta.get("numeric_columns", []), meta.get("vocabulary", []), meta.get("text_column")
    if (text is None) != (not vocabulary):
        raise _bad(where, "pipeline 'vocabulary'", "non-empty exactly when there is a text column",
                   f"{len(vocabulary)} terms and text column {text!r}")
    if not vocabulary and not numeric and not meta.get("categorical_columns"):
        raise _bad(where, "'pipeline'", "a table with a text column, numeric or categorical columns", "none")
    expected: dict[str, tuple[int, bool]] = {}
    if numeric:
        expected.update(center=(len(numeric), False), scale=(len(numeric), True))
    if vocabulary:
        expected["idf"] = (len(vocabulary), True)
    return expected, f"{len(numeric)} numeric columns, {len(vocabulary)} terms in {where.name}"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")
