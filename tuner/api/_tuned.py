"""``tuner.TunedLogisticRegression``: a study (:func:`tuner.tune`) as a scikit-learn classifier.

``fit`` hands the rows to :func:`tuner.tune`, which splits them (stratified, by ``random_state``),
standardises the features on the training split as ``tuner tune`` does, runs the study and
refits its best configuration. The best model's weights are then folded back through the
standardisation, so ``coef_`` and ``intercept_`` apply to the features as given.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from tuner._numbers import is_count
from tuner.api._sklearn import LinearProbaMixin, check_plugin_names, check_spaced_labels, seed_of
from tuner.errors import ConfigError, DataError, InvalidParameterError, TunerError

__all__ = ["TunedLogisticRegression"]


class TunedLogisticRegression(LinearProbaMixin, BaseEstimator):
    """Logistic regression whose penalty, optimizer and hyperparameters are chosen by a study.

    Like :class:`sklearn.linear_model.LogisticRegressionCV`, :meth:`fit` searches and keeps
    the best model; the search is an Optuna study over plugins and their hyperparameters
    (:func:`tuner.tune`), in memory unless a ``storage`` is given.

    ``fit`` splits the rows into training and validation rows (and test rows when
    ``test_fraction`` > 0) stratified by class with ``random_state``, standardises the features
    on the training rows (dense: mean and standard deviation; sparse: maximum absolute value),
    scores each trial on the validation rows (or by ``cv`` folds of the training rows), and
    refits the best configuration on the training rows. ``tuner tune`` does the same with the
    same ``seed``, so both find the same best trial.

    Parameters
    ----------
    trials : int, default=None
        Trials of the study (complete and pruned); None: :func:`tuner.tune`'s default (50).
    penalty, optimizer : str or list of str, default=None
        Plugins to search (names, or ``"a,b"``); None: every installed one.
    params : dict, default=None
        Narrow or fix hyperparameters, as ``tuner tune --param``:
        ``{"penalty.strength": "1e-6..1e-2:log", "optimizer.lr": 0.1}``.
    metric : {"log_loss", "accuracy", "roc_auc", "f1"}, default="log_loss"
        The validation metric the study optimises; ``f1`` is the second class's F1 with two
        classes (scikit-learn's ``"f1"``), the macro average with more.
    sampler : {"tpe", "random", "qmc", "grid", "cmaes"}, default="tpe"
    pruner : {"median", "hyperband", "none"}, default="median"
    cv : int, default=None
        Score each trial by stratified ``cv``-fold cross-validation on the training rows
        instead of on the validation rows alone.
    validation_fraction : float, default=0.2
        Share of the rows held out to score trials (and the best model).
    test_fraction : float, default=0.0
        Share of the rows held out to test the best model (``study_.test``).
    storage : str, default=None
        SQLAlchemy URL of the study database (``sqlite:///studies.db``); None: in memory.
    tracking_uri : str, default=None
        MLflow tracking URI to log the study, its trials and the best model to; None: none.
    study_name : str, default=None
        Name of the study; None: a new name for each fit, made up from the time and a random
        suffix (``arrays-20261130-050142-3fa9c2``). An existing study of that name in
        ``storage`` is resumed when its options match.
    batch_trials : int, "auto" or None, default="auto"
        Trials trained side by side.
    max_epochs, tol, patience, batch_size, class_weight, dtype, device : default=None
        Training options (``epochs``, ...); None: :class:`tuner.TrainConfig`'s defaults.
    random_state : int, RandomState instance or None, default=None
        Seed of the splits, the sampler and the training (``tuner tune --seed``).

    Attributes
    ----------
    study_ : TuneResult
        The study's outcome (:class:`tuner.TuneResult`): its name, storage, trial counts, the
        trials, the best trial's metrics; with tracking, the registered model's ``model_uri``.
    best_params_ : dict
        The best trial's hyperparameters by their public names (``penalty``, ``optimizer``,
        ``penalty.strength``, ``optimizer.lr``...; see :attr:`tuner.TuneResult.best_params`).
    best_score_ : float
        The best trial's validation metric (``study_.metric``; for ``log_loss`` lower is
        better, ``study_.direction`` says which).
    best_model_ : LogisticModel
        The best configuration refit on the training rows, with its standardisation
        (:class:`tuner.LogisticModel`: ``save``, ``predict`` on raw rows).
    classes_, coef_, intercept_, n_features_in_, feature_names_in_, n_iter_
        As :class:`tuner.LogisticRegression`'s, for the best model, in the input's units.

    Notes
    -----
    Every check of :func:`sklearn.utils.estimator_checks.check_estimator` passes but
    ``check_class_weight_balanced_linear_classifier``: it fits 5 rows (3 of one class, 2 of the
    other, with ``cv=3``), too few to split into training and validation rows that both hold
    every class, so ``fit`` raises a :class:`tuner.DataError` saying so. scikit-learn has no
    estimator tag for an expected failure; give ``expected_failed_checks`` to ``check_estimator``
    (``tests/test_sklearn.py`` does). ``check_array_api_input`` runs only with
    ``SCIPY_ARRAY_API=1`` set before SciPy is imported (it passes then).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> import tuner
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = tuner.TunedLogisticRegression(trials=4, penalty="l2", optimizer="lbfgs", random_state=0)
    >>> clf = clf.fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.study_.n_complete + clf.study_.n_pruned
    4
    """

    def __init__(
        self,
        trials: int | None = None,
        *,
        penalty: str | Sequence[str] | None = None,
        optimizer: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        metric: str = "log_loss",
        sampler: str = "tpe",
        pruner: str = "median",
        cv: int | None = None,
        validation_fraction: float = 0.2,
        test_fraction: float = 0.0,
        storage: str | None = None,
        tracking_uri: str | None = None,
        study_name: str | None = None,
        batch_trials: int | str | None = "auto",
        max_epochs: int | None = None,
        tol: float | None = None,
        patience: int | None = None,
        batch_size: int | None = None,
        class_weight: Mapping[Any, float] | str | None = None,
        dtype: str | None = None,
        device: str | None = None,
        random_state: Any = None,
    ) -> None:
        self.trials = trials
        self.penalty = penalty
        self.optimizer = optimizer
        self.params = params
        self.metric = metric
        self.sampler = sampler
        self.pruner = pruner
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self.storage = storage
        self.tracking_uri = tracking_uri
        self.study_name = study_name
        self.batch_trials = batch_trials
        self.max_epochs = max_epochs
        self.tol = tol
        self.patience = patience
        self.batch_size = batch_size
        self.class_weight = class_weight
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> TunedLogisticRegression:
        """Run the study on ``X``, ``y`` and keep its best model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Features (dense or sparse); standardised inside, on the training rows. A
            DataFrame's column names become the inputs of ``best_model_`` and of the registered
            model's signature (rows to predict are then matched by name).
        y : array-like of shape (n_samples,)
            Class labels (two or more classes).

        Returns
        -------
        self : TunedLogisticRegression
            The fitted estimator.
        """
        from tuner._registry import optimizers, penalties
        from tuner.api._data import from_arrays
        from tuner.api._tune import tune

        check_plugin_names(self, "penalty", penalties, several=True)
        check_plugin_names(self, "optimizer", optimizers, several=True)
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes = np.unique(y)
        check_spaced_labels(self, classes)
        if len(classes) < 2:  # as tuner.LogisticRegression: a ValueError, which scikit-learn expects
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data; "
                             f"got one class only ({classes[0]!r}).")
        if self.trials is not None and (not is_count(self.trials) or self.trials < 1):
            raise InvalidParameterError(f"The 'trials' parameter of {type(self).__name__} must be an int in the range "
                                        f"[1, inf) or None; got {self.trials!r} instead.")
        seed = seed_of(self.random_state)
        training: dict[str, Any] = {
            "epochs": self.max_epochs, "tol": self.tol, "patience": self.patience, "batch_size": self.batch_size,
            "class_weight": self.class_weight, "dtype": self.dtype, "device": self.device,
        }
        data = from_arrays(X, y)
        if hasattr(self, "feature_names_in_"):  # a DataFrame's columns name the saved model's inputs
            data = dataclasses.replace(data, feature_names=[str(c) for c in self.feature_names_in_])
        try:
            result = tune(data, val_size=self.validation_fraction, test_size=self.test_fraction, seed=seed,
                          trials=self.trials, study_name=self.study_name, storage=self.storage,
                          tracking_uri=self.tracking_uri, penalty=self.penalty, optimizer=self.optimizer,
                          params=self.params, metric=self.metric, sampler=self.sampler, pruner=self.pruner,
                          cv=self.cv, batch_trials=self.batch_trials,
                          **{k: v for k, v in training.items() if v is not None})
        except ConfigError as exc:
            if isinstance(exc, ValueError):
                raise
            raise InvalidParameterError(f"{type(self).__name__}: {_own_names(str(exc))}") from exc
        except DataError as exc:  # e.g. a split too small: "lower the 'val_size' parameter" is tune's name
            exc.args = (_own_names(str(exc)), *exc.args[1:])
            raise
        for notice in result.warnings:
            warnings.warn(notice, UserWarning, stacklevel=2)
        if result.model is None:
            raise TunerError(f"The study {result.study_name!r} has no best model: "
                             f"{result.no_result or result.interrupted or 'no trial completed'}.")
        model = result.model
        self.study_ = result
        self.best_params_ = dict(result.best_params)
        self.best_score_ = result.best_value
        self.best_model_ = model
        self.classes_ = np.asarray(model.classes_)
        coef, intercept = input_space_weights(model)
        self.coef_, self.intercept_ = coef, intercept
        self.n_iter_ = np.array([result.outcome.result.epochs_run if result.outcome else 0], dtype=np.int32)
        return self


# tune's parameters that this estimator names otherwise (scikit-learn's names)
_OWN_NAMES = {"val_size": "validation_fraction", "test_size": "test_fraction", "epochs": "max_epochs",
              "seed": "random_state"}


def _own_names(message: str) -> str:
    """tune's message about its parameters, naming this estimator's parameters instead."""
    message = message.replace(" parameter of tune ", " parameter ")
    return re.sub(r"'(\w+)' parameter", lambda m: f"'{_OWN_NAMES.get(m.group(1), m.group(1))}' parameter", message)


def input_space_weights(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """A fitted matrix model's weights folded through its standardisation: ``(coef (c, p),
    intercept (c,))`` such that ``X @ coef.T + intercept`` are its scores on raw rows ``X``."""
    pipe = model.pipeline
    W = np.asarray(model.coef_, dtype=np.float64)
    b = np.asarray(model.intercept_, dtype=np.float64).copy()
    scale = np.ones(W.shape[0]) if pipe.scale is None else np.asarray(pipe.scale, dtype=np.float64)
    W = W / scale[:, None]
    if pipe.center is not None:
        b = b - np.asarray(pipe.center, dtype=np.float64) @ W
    return np.ascontiguousarray(W.T), b
