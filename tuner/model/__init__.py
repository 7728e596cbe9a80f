"""The fitted model: preprocessing + weights, its files (JSON + safetensors) and its MLflow pyfunc packaging."""

from __future__ import annotations

from tuner.model._model import MODEL_JSON, WEIGHTS_FILE, LogisticModel
from tuner.model._packaging import (
    BUNDLE_PACKAGE,
    input_example_of,
    load_logistic_model,
    pip_requirements,
    save_pyfunc_model,
)
from tuner.model._pyfunc import PROBA_PARAM, LogisticPyfunc, as_rows, class_labels, labels_of, prediction_frame

__all__ = [
    "LogisticModel", "MODEL_JSON", "WEIGHTS_FILE",
    "LogisticPyfunc", "PROBA_PARAM", "as_rows", "class_labels", "labels_of", "prediction_frame",
    "save_pyfunc_model", "input_example_of", "load_logistic_model", "pip_requirements", "BUNDLE_PACKAGE",
]
