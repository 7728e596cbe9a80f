"""The MLflow ``python_function`` loader module for a saved :class:`LogisticModel`.

MLflow loads a pyfunc model by importing its ``loader_module`` and calling
``_load_pyfunc(data_path)``: nothing is unpickled. The logged model carries its own copy of
this module and of the three modules it needs (``_model``, ``_features``, ``errors``) as
the package ``logreg_tuner_model`` (see :func:`tuner.model.save_pyfunc_model`), so it
predicts with NumPy, SciPy, pandas, scikit-learn (TF-IDF) and safetensors only: neither
logreg-tuner nor torch has to be installed where the model is served. Keep the imports of
this module, ``_model`` and ``_features`` limited to each other and ``errors``, written as
absolute imports of their ``tuner`` modules (the bundle rewrites those lines as relative ones).

Input: raw rows, as a DataFrame with the training columns (a ``text`` column for text
models, the numeric feature columns otherwise), matched by name, never by position. Through
``mlflow.pyfunc.load_model`` MLflow checks the input against the logged signature first, so a
text-only model takes a DataFrame with its text column there; the model object this module
loads (``_load_pyfunc``) also takes a list or Series of strings. Output: the predicted class labels
(as in the training data: scikit-learn's bundled sets give their ``target_names``); with
``params={"proba": True}`` a DataFrame with a ``prediction`` column and one
``proba_<class>`` column per class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tuner.model._model import LogisticModel

__all__ = ["LogisticPyfunc", "as_rows", "class_labels", "labels_of", "prediction_frame"]

PROBA_PARAM = "proba"


def as_rows(model_input: Any, model: LogisticModel) -> Any:
    """Raw input in the shape the model's feature pipeline expects."""
    pipe = model.pipeline
    if pipe.kind == "table":
        if isinstance(model_input, pd.DataFrame):
            return model_input
        if pipe.text_column is not None and not pipe.numeric_columns and not pipe.categorical_columns:
            if isinstance(model_input, str):
                model_input = [model_input]
            return pd.DataFrame({pipe.text_column: list(model_input)})
        return pd.DataFrame(model_input)
    if isinstance(model_input, pd.DataFrame):
        return model_input  # the feature pipeline matches its columns by name
    return model_input if hasattr(model_input, "shape") else np.asarray(model_input, dtype=np.float64)


def class_labels(model: LogisticModel) -> list[Any]:
    """The classes as the training data named them (``malignant``, not ``0``, for breast_cancer)."""
    names = model.pipeline.class_names
    return list(names) if len(names) == len(model.classes_) else list(model.classes_)


def labels_of(model: LogisticModel, proba: np.ndarray) -> np.ndarray:
    """Class labels (with their natural NumPy dtype) of the most probable classes."""
    return np.asarray(class_labels(model))[proba.argmax(axis=1)]


def prediction_frame(model: LogisticModel, proba: np.ndarray) -> pd.DataFrame:
    """``prediction`` plus one ``proba_<class>`` column per class."""
    out = pd.DataFrame({"prediction": labels_of(model, proba)})
    for i, c in enumerate(class_labels(model)):
        out[f"proba_{c}"] = proba[:, i]
    return out


class LogisticPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: ``predict(rows, params)``."""

    def __init__(self, model: LogisticModel) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        proba = self.model.predict_proba(as_rows(model_input, self.model))
        if params and params.get(PROBA_PARAM):
            return prediction_frame(self.model, proba)
        return labels_of(self.model, proba)


def _load_pyfunc(data_path: str) -> LogisticPyfunc:
    """MLflow's loader-module entry point: ``data_path`` is the saved model folder."""
    return LogisticPyfunc(LogisticModel.load(data_path))
