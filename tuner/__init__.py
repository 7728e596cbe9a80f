"""logreg-tuner: plugin-based tuning of logistic regression in PyTorch.

The public API is what this module exports: the plugin interfaces (:class:`Penalty`,
:class:`Optimizer`), the search-space declarations (:class:`Float`, :class:`Int`,
:class:`Categorical`), the errors, and the registries of installed plugins. Heavy modules
(torch, Optuna, MLflow) are imported only by the functions that need them.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "Penalty",
    "Optimizer",
    "ProxFn",
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
