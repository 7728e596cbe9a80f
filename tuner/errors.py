"""Errors raised by logreg-tuner.

Every error a user can cause derives from :class:`TunerError`; the CLI turns these into a
one-line message and a non-zero exit code without a traceback.
"""

from __future__ import annotations

__all__ = [
    "TunerError",
    "DataError",
    "PluginError",
    "PluginRaisedError",
    "ConfigError",
    "IncompatiblePluginsError",
    "InvalidParameterError",
    "StorageError",
    "TrackingError",
    "TrainingDivergedError",
]


class TunerError(Exception):
    """Base class of every error that the user can act on."""


class DataError(TunerError):
    """The input data cannot be used: unreadable, non-finite, wrong columns, one class..."""


class PluginError(TunerError):
    """A plugin is unknown, broken or fails its contract."""


class PluginRaisedError(PluginError):
    """Code of an installed plugin raised an exception during training or a study.

    ``kind`` (``"penalty"`` or ``"optimizer"``), ``plugin`` (its name) and ``distribution``
    say whose code it was; the message suggests ``tuner plugins check NAME``.
    """

    def __init__(self, message: str, *, kind: str, plugin: str, distribution: str) -> None:
        super().__init__(message)
        self.kind, self.plugin, self.distribution = kind, plugin, distribution


class ConfigError(TunerError):
    """An option or hyperparameter value is invalid."""


class IncompatiblePluginsError(ConfigError):
    """A penalty and an optimizer that cannot be used together were chosen."""


class InvalidParameterError(ConfigError, ValueError):
    """A parameter of a scikit-learn estimator (``tuner.LogisticRegression``) is invalid; also a
    ``ValueError``, as scikit-learn's own parameter errors are."""


class StorageError(TunerError):
    """The study database cannot be reached or has an unexpected schema."""


class TrackingError(TunerError):
    """The MLflow tracking server cannot be reached or refused a request."""


class TrainingDivergedError(TunerError):
    """The training loss became NaN or infinite (usually: the learning rate is too large)."""
