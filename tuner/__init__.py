"""logreg-tuner: plugin-based tuning of logistic regression in PyTorch.

The public API is what this module exports:

* :func:`fit` (one configuration), :func:`tune` (an Optuna study) and :func:`load_model`, with
  their results :class:`FitReport` and :class:`TuneResult`;
* the scikit-learn estimators :class:`LogisticRegression` and :class:`TunedLogisticRegression`;
* the fitted model :class:`LogisticModel`;
* the extension points: the plugin interfaces (:class:`Penalty`, :class:`Optimizer`), the
  search-space declarations (:class:`Float`, :class:`Int`, :class:`Categorical`), the
  training hooks (:class:`TrainConfig`, :class:`Callback`) and the study hooks
  (:class:`StudyObserver`, :class:`StudyInfo`, :class:`TrialInfo`);
* the errors and the registries of installed plugins.

``import tuner`` is light: the names whose modules import torch, Optuna or MLflow are resolved
on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports
from tuner._plugin_api import Optimizer, Penalty, ProxFn, compatibility_reason
from tuner._registry import PluginInfo, optimizers, penalties
from tuner._space import Categorical, Float, Hyperparameter, Int
from tuner.errors import (
    ConfigError,
    DataError,
    IncompatiblePluginsError,
    PluginError,
    StorageError,
    TrackingError,
    TrainingDivergedError,
    TunerError,
)

if TYPE_CHECKING:  # pragma: no cover - resolved lazily by __getattr__ below
    from tuner.api import FitReport, LogisticRegression, TunedLogisticRegression, TuneResult, fit, load_model, tune
    from tuner.model import LogisticModel
    from tuner.study import StudyInfo, StudyObserver, TrialInfo
    from tuner.train import Callback, FitResult, TrainConfig, TrainingState

__version__ = "0.1.0"

_LAZY = {
    # the public functions and their results
    "fit": "tuner.api", "FitReport": "tuner.api", "tune": "tuner.api", "TuneResult": "tuner.api",
    "load_model": "tuner.api",
    # the fitted model
    "LogisticModel": "tuner.model",
    # extension points: training hooks and study hooks
    "TrainConfig": "tuner.train", "Callback": "tuner.train", "TrainingState": "tuner.train",
    "FitResult": "tuner.train", "half_squared_norm": "tuner.train",
    "soft_threshold": "tuner.train",
    "StudyObserver": "tuner.study", "StudyInfo": "tuner.study", "TrialInfo": "tuner.study",
    # scikit-learn estimators
    "LogisticRegression": "tuner.api", "TunedLogisticRegression": "tuner.api",
}



__all__ = [
    "fit",
    "FitReport",
    "tune",
    "TuneResult",
    "load_model",
    "LogisticRegression",
    "TunedLogisticRegression",
    "LogisticModel",
    "TrainConfig",
    "Callback",
    "TrainingState",
    "FitResult",
    "StudyObserver",
    "StudyInfo",
    "TrialInfo",
    "Penalty",
    "Optimizer",
    "ProxFn",
    "half_squared_norm",
    "soft_threshold",
    "compatibility_reason",
    "Float",
    "Int",
    "Categorical",
    "Hyperparameter",
    "PluginInfo",
    "penalties",
    "optimizers",
    "TunerError",
    "DataError",
    "PluginError",
    "ConfigError",
    "IncompatiblePluginsError",
    "StorageError",
    "TrackingError",
    "TrainingDivergedError",
    "__version__",
]

__getattr__, __dir__ = lazy_exports("tuner", _LAZY, __all__)
