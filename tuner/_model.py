"""A fitted model: preprocessing + weights + classes; predicts on raw rows, saves without pickles.

A saved model is a folder with ``model.json`` (classes, preprocessing description, training
facts) and ``weights.safetensors`` (weights, intercept and the preprocessing arrays).
Prediction uses NumPy/SciPy only, so serving a model does not need torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._features import FeaturePipeline
from .errors import DataError

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
        Z = X @ self.coef_ if not sp.issparse(X) else np.asarray(X @ self.coef_)
        return Z + self.intercept_

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
        """Predicted class labels for raw rows."""
        return np.asarray(self.classes_, dtype=object)[self.predict_proba(rows).argmax(axis=1)]

    def feature_weights(self) -> list[tuple[str, np.ndarray]]:
        """(feature name, weights) for the non-zero rows of ``coef_``."""
        names = self.pipeline.feature_names
        return [(names[i], self.coef_[i]) for i in np.flatnonzero(np.any(self.coef_ != 0, axis=1))]

    # ---- persistence -----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model into folder ``path`` (created if needed) and return it."""
        from safetensors.numpy import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta, arrays = self.pipeline.state()
        tensors = {"coef": np.ascontiguousarray(self.coef_, dtype=np.float64),
                   "intercept": np.ascontiguousarray(self.intercept_, dtype=np.float64)}
        tensors.update({f"pipeline.{k}": np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()})
        tmp_weights, tmp_json = folder / (WEIGHTS_FILE + ".tmp"), folder / (MODEL_JSON + ".tmp")
        save_file(tensors, str(tmp_weights))
        doc = {"format_version": FORMAT_VERSION, "classes": self.classes_, "pipeline": meta, "info": self.info}
        tmp_json.write_text(json.dumps(doc, default=_json_default))
        tmp_weights.replace(folder / WEIGHTS_FILE)
        tmp_json.replace(folder / MODEL_JSON)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> "LogisticModel":
        """Read a model saved by :meth:`save` (no code is unpickled)."""
        from safetensors.numpy import load_file

        folder = Path(path)
        if not (folder / MODEL_JSON).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise DataError(f"{folder} is not a saved model (expected {MODEL_JSON} and {WEIGHTS_FILE}).")
        doc = json.loads((folder / MODEL_JSON).read_text())
        if doc.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{folder} was saved in model format {doc.get('format_version')}; this version reads {FORMAT_VERSION}.")
        arrays = load_file(str(folder / WEIGHTS_FILE))
        pipe_arrays = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("pipeline.")}
        return cls(list(doc["classes"]), arrays["coef"], arrays["intercept"],
                   FeaturePipeline.from_state(doc["pipeline"], pipe_arrays), doc.get("info", {}))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")
