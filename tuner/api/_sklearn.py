"""``tuner.LogisticRegression``: the trainer as a scikit-learn classifier.

The estimator stores its arguments; :meth:`LogisticRegression.fit` validates them, resolves the
plugins and their hyperparameters, and trains one model with :func:`tuner.train.fit` on the
features as given (no scaling: put a scaler or a vectorizer before it in a ``Pipeline``; dense
columns are only centred while training, which leaves the optimum's ``coef_`` as it is and moves
its ``intercept_``). Prediction is plain NumPy on ``coef_`` and ``intercept_``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from tuner._numbers import is_count
from tuner._space import Float
from tuner.errors import ConfigError, InvalidParameterError

__all__ = ["LogisticRegression", "LinearProbaMixin", "check_plugin_names", "check_spaced_labels", "seed_of"]

DTYPES = ("float32", "float64")


class LinearProbaMixin(LinearClassifierMixin):
    """Probabilities from ``coef_`` and ``intercept_``: the sigmoid of the score for two classes,
    the softmax of the scores (multinomial) for more."""

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p1 = expit(scores)
            return np.column_stack([1.0 - p1, p1])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithms of :meth:`predict_proba` (computed stably from the scores)."""
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return np.column_stack([log_expit(-scores), log_expit(scores)])
        return log_softmax(scores, axis=1)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class LogisticRegression(LinearProbaMixin, BaseEstimator):
    """Logistic regression trained by logreg-tuner's PyTorch trainer, as a scikit-learn classifier.

    Minimises ``(1 / n) * sum_i s_i * loss_i + penalty(W)`` (``n`` rows, ``s_i`` the sample
    weights times the class weights), the objective of :func:`tuner.fit`, with a binary
    (sigmoid) or multinomial (softmax) log loss. The penalty and the optimizer are plugins, named by their registered names; the
    intercept is never penalized and always fitted.

    Parameters
    ----------
    penalty : str, default="l2"
        The name of an installed penalty plugin (``tuner plugins list``): ``"none"``,
        ``"l1"``, ``"l2"``, ``"elasticnet"`` or a third-party one.
    optimizer : str, default="lbfgs"
        The name of an installed optimizer plugin (``"lbfgs"``, ``"fista"``, ``"sgd"``,
        ``"adam"``, ``"rmsprop"``...). It must accept the penalty (every built-in one takes
        every built-in penalty: ``"lbfgs"`` runs OWL-QN for ``"l1"`` and ``"elasticnet"``).
    C : float, default=1.0
        Inverse regularisation strength, as in :class:`sklearn.linear_model.LogisticRegression`:
        the penalty's ``strength`` hyperparameter is set to ``1 / (C * n)``, so both estimators
        minimise the same objective, with or without weights. Ignored when ``strength`` is given, when ``params`` sets
        ``"penalty.strength"``, or when the penalty has no ``strength`` (``"none"``).
    strength : float, default=None
        The penalty's ``strength`` directly (logreg-tuner's convention, as in ``tuner train``
        and the studies); takes precedence over ``C``.
    l1_ratio : float, default=None
        The penalty's ``l1_ratio`` (``"elasticnet"``); None: the plugin's default.
    lr : float, default=None
        The optimizer's learning rate (or initial step); None: the plugin's default.
    params : dict, default=None
        Any other plugin hyperparameters, as :func:`tuner.fit` takes them: named
        ``"penalty.NAME"`` or ``"optimizer.NAME"`` (``{"optimizer.momentum": 0.5}``), or a bare
        ``NAME`` that only one of the two plugins declares; each is checked against its space.
    class_weight : dict or "balanced", default=None
        Weights of the classes, as in scikit-learn (multiplied into the sample weights).
    max_epochs : int, default=None
        Passes over the data at most (a full-batch optimizer's pass runs up to 100 inner
        iterations). None: :class:`tuner.TrainConfig`'s default.
    tol : float, default=None
        Training stops when the training objective has not improved by ``tol`` (relative)
        for ``patience`` epochs. None: :class:`tuner.TrainConfig`'s default.
    patience : int, default=None
        See ``tol``. None: :class:`tuner.TrainConfig`'s default.
    batch_size : int, default=None
        Rows per step of a mini-batch optimizer (refused with a full-batch one: it would be
        ignored); None: scaled with the data.
    dtype : {"float64", "float32"}, default="float64"
        Precision of training. float64 reaches scikit-learn's optimum to many digits;
        float32 is faster on a GPU.
    device : str, default=None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (the GPU when it pays off). None:
        :class:`tuner.TrainConfig`'s default.
    random_state : int, RandomState instance or None, default=None
        Seeds the row order of mini-batch optimizers; training is deterministic given an
        integer (full-batch optimizers do not use it).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights: one row for a binary problem (the log-odds of ``classes_[1]``), one per
        class for a multinomial one.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        The intercepts.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when fit on a DataFrame with string column names.
    n_iter_ : ndarray of shape (1,)
        Epochs run.
    penalty_params_ : dict
        The penalty's hyperparameters as trained (defaults filled in).
    optimizer_params_ : dict
        The optimizer's hyperparameters as trained.
    objective_ : float
        The training objective at the end.
    stop_reason_ : str
        Why training stopped: ``"converged"`` or ``"max_epochs"`` (a ``ConvergenceWarning``
        is issued then). A mini-batch optimizer (sgd, adam, rmsprop) converges to its noise
        floor: on small data (up to 250,000 stored values, more rows than features) its objective
        is compared with the exact optimum, and a ``ConvergenceWarning`` says when it stopped more
        than 1% above it.

    Notes
    -----
    Every check of :func:`sklearn.utils.estimator_checks.check_estimator` passes; none is
    declared as expected to fail (``check_array_api_input`` runs only with ``SCIPY_ARRAY_API=1``
    set before SciPy is imported: ``tests/test_sklearn.py`` runs it so).

    There is no ``fit_intercept``: the trainer always fits an unpenalized intercept.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import tuner
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), tuner.LogisticRegression(C=0.5)).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> l1 = tuner.LogisticRegression("l1", "fista", C=0.1).fit(StandardScaler().fit_transform(X), y)
    >>> bool((l1.coef_ == 0).any())
    True
    """

    def __init__(
        self,
        penalty: str = "l2",
        optimizer: str = "lbfgs",
        *,
        C: float = 1.0,
        strength: float | None = None,
        l1_ratio: float | None = None,
        lr: float | None = None,
        params: Mapping[str, Any] | None = None,
        class_weight: Mapping[Any, float] | str | None = None,
        max_epochs: int | None = None,
        tol: float | None = None,
        patience: int | None = None,
        batch_size: int | None = None,
        dtype: str = "float64",
        device: str | None = None,
        random_state: Any = None,
    ) -> None:
        self.penalty = penalty
        self.optimizer = optimizer
        self.C = C
        self.strength = strength
        self.l1_ratio = l1_ratio
        self.lr = lr
        self.params = params
        self.class_weight = class_weight
        self.max_epochs = max_epochs
        self.tol = tol
        self.patience = patience
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    # ---- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training features (dense or any SciPy sparse format; CSR is used as is).
        y : array-like of shape (n_samples,)
            Class labels (two or more classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-row weights; integer weights are equivalent to repeating rows.

        Returns
        -------
        self : LogisticRegression
            The fitted estimator.
        """
        from tuner.study import NO_OPTIMUM_NOTE, separated_without_penalty
        from tuner.train import fit as train

        self._check_params()
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        check_spaced_labels(self, classes)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data; "
                             f"got one class only ({classes[0]!r}).")
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if sw.min() < 0 or not sw.max() > 0:
            raise ValueError(f"{type(self).__name__} needs sample weights >= 0 with at least one positive; got "
                             f"weights from {sw.min():g} to {sw.max():g}.")
        if self.class_weight is not None:
            per_class = compute_class_weight(self.class_weight, classes=classes, y=y, sample_weight=sw)
            if not np.all(np.isfinite(per_class)) or per_class.min() < 0:
                raise ValueError(f"{type(self).__name__} needs class weights >= 0 (the 'class_weight' parameter); got "
                                 f"{dict(zip(classes.tolist(), per_class.tolist()))}.")
            sw = sw * per_class[y_idx]
        if np.count_nonzero(np.bincount(y_idx, weights=sw, minlength=len(classes)) > 0) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes with a positive sample "
                             "weight; every positive weight is on one class.")
        pen, opt, pp, op = self._plugins(len(sw))
        # Trained on the weights rescaled to mean 1 (the step sizes of the mini-batch optimizers do
        # not depend on the weights' scale) with the strength scaled to match: the same optimum
        # as tuner.fit's objective, (1/n) * sum_i s_i * loss_i + strength * penalty(W).
        scale = len(sw) / float(sw.sum())
        config, weights = self._config(), sw * scale
        pp_fit = dict(pp, strength=pp["strength"] * scale) if "strength" in pp else pp
        X_fit, shift = _centred(X, weights)
        result = train(X_fit, y_idx, len(classes), pen, pp_fit, opt, op, config, sample_weight=weights,
                       classes=list(classes))
        self.classes_ = classes
        self.coef_ = np.ascontiguousarray(result.weight.T)
        # the intercept is not penalised: the optimum on centred columns is X's, its intercept moved
        self.intercept_ = result.intercept - (shift @ result.weight if shift is not None else 0.0)
        self.n_iter_ = np.array([result.epochs_run], dtype=np.int32)
        self.penalty_params_, self.optimizer_params_ = pp, op
        self.objective_ = float(result.objective) / scale
        self.stop_reason_ = result.stop_reason
        if result.stop_reason == "max_epochs":
            warnings.warn(f"{type(self).__name__} stopped after max_epochs={result.epochs_run} epochs before its "
                          "objective settled (tol); raise max_epochs or tol.", ConvergenceWarning, stacklevel=2)
        if not opt.full_batch:  # however it stopped: max_epochs may end a mini-batch fit far above or at the optimum
            self._warn_if_short(X_fit, y_idx, len(classes), pen, pp_fit, result, config, weights, list(classes))
        if separated_without_penalty(X, y_idx, self.coef_.T, self.intercept_, pen.name, pp, sw):
            warnings.warn(f"{type(self).__name__}: {NO_OPTIMUM_NOTE} (penalty='l2' with a finite C).", ConvergenceWarning,
                          stacklevel=2)
        return self

    def _warn_if_short(self, X: Any, y: np.ndarray, n_classes: int, pen: Any, pp: dict[str, Any], result: Any,
                       config: Any, weights: np.ndarray, classes: list[Any]) -> None:
        """A ``ConvergenceWarning`` when a mini-batch optimizer settled more than
        ``MAX_OPTIMALITY_GAP`` above the optimum of its objective (checked on small data, as
        ``tuner train`` does): its stall is that optimizer's noise floor, not the optimum."""
        from tuner._registry import full_batch_optimizers
        from tuner.study import MAX_OPTIMALITY_GAP, fit_gap

        gap = fit_gap(X, y, n_classes, pen, pp, result, config, weights, classes)
        if gap is not None and gap[0] > MAX_OPTIMALITY_GAP:
            warnings.warn(f"{type(self).__name__}'s {self.optimizer} stopped {gap[0]:.1%} above the optimum of its "
                          f"objective ({gap[1]} reaches it): use a full-batch optimizer{full_batch_optimizers([pen])}, or "
                          "give it more epochs or a smaller batch_size.", ConvergenceWarning, stacklevel=3)

    def _check_params(self) -> None:
        """Validate the constructor's arguments (scikit-learn's message template)."""
        name = type(self).__name__

        def bad(param: str, must: str, value: Any) -> InvalidParameterError:
            return InvalidParameterError(f"The '{param}' parameter of {name} must be {must}; got {value!r} instead.")

        for param in ("penalty", "optimizer"):
            if not isinstance(getattr(self, param), str):
                none = " ('none' for no penalty, where scikit-learn takes None)" if param == "penalty" else ""
                raise bad(param, f"the name of an installed {param} plugin (a str){none}", getattr(self, param))
        if not _real(self.C) or not self.C > 0:
            raise bad("C", "a float in the range (0, inf)", self.C)
        for param in ("strength", "l1_ratio", "lr", "tol"):
            value = getattr(self, param)
            if value is not None and (not _real(value) or value < 0):
                raise bad(param, "a float >= 0 or None", value)
        for param in ("max_epochs", "patience", "batch_size"):
            value = getattr(self, param)
            if value is not None and (not is_count(value) or value < 1):
                raise bad(param, "an int in the range [1, inf) or None", value)
        if self.class_weight is not None and self.class_weight != "balanced" and not isinstance(self.class_weight, Mapping):
            raise bad("class_weight", "'balanced', a dict of class -> weight, or None", self.class_weight)
        if self.params is not None and not isinstance(self.params, Mapping):
            raise bad("params", "a dict of hyperparameter names ('optimizer.lr') -> values, or None", self.params)
        if self.dtype not in DTYPES:
            raise bad("dtype", "a str among {'float64', 'float32'}", self.dtype)
        if self.device is not None and not isinstance(self.device, str):
            raise bad("device", "a str ('cpu', 'cuda', 'cuda:N', 'auto') or None", self.device)

    def _plugins(self, n_rows: int) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
        """The penalty and optimizer plugins and their resolved hyperparameters (``C`` read as
        the strength ``1 / (C * n_rows)``)."""
        from tuner._registry import optimizers, penalties
        from tuner.study import resolve_pair, resolve_params, split_params

        name = type(self).__name__
        check_plugin_names(self, "penalty", penalties)
        check_plugin_names(self, "optimizer", optimizers)
        try:
            pen, opt = resolve_pair(self.penalty, self.optimizer)
            pen_over, opt_over = split_params(self.params or {}, self.penalty, self.optimizer)
            for group, key, value in (("penalty", "l1_ratio", self.l1_ratio), ("penalty", "strength", self.strength),
                                      ("optimizer", "lr", self.lr)):
                over = pen_over if group == "penalty" else opt_over
                if value is None:
                    continue
                if key in over:
                    raise InvalidParameterError(f"{name} got {group}.{key} twice: as the '{key}' parameter and in "
                                                "'params'; give it once.")
                over[key] = value
            if self.batch_size is not None and opt.full_batch:
                raise InvalidParameterError(f"The 'batch_size' parameter of {name} sizes the steps of mini-batch "
                                            f"optimizers; {self.optimizer} reads every row at once: leave it None, "
                                            "or choose a mini-batch optimizer ('sgd', 'adam', ...).")
            if "strength" in pen.search_space and "strength" not in pen_over:
                pen_over["strength"] = 1.0 / (self.C * n_rows)
                spec = pen.search_space["strength"]
                most = spec.bounds[1] if isinstance(spec, Float) else math.inf
                if pen_over["strength"] > most:  # named as the user gave it, not as the strength it became
                    raise InvalidParameterError(
                        f"The 'C' parameter of {name} must be at least {1.0 / (most * n_rows):.3g} for {n_rows} rows "
                        f"(the penalty strength 1 / (C * rows) goes up to {most:g}); got {self.C!r} instead. At "
                        "that C every weight is already zero.")
            return pen, opt, resolve_params(pen, pen_over, "penalty"), resolve_params(opt, opt_over, "optimizer")
        except ConfigError as exc:
            if isinstance(exc, ValueError):
                raise
            raise InvalidParameterError(f"{name}: {exc}") from exc

    def _config(self) -> Any:
        from tuner.train import TrainConfig

        given = {"epochs": self.max_epochs, "tol": self.tol, "patience": self.patience,
                 "batch_size": self.batch_size, "device": self.device}
        seed = seed_of(self.random_state)
        return TrainConfig(**{k: v for k, v in given.items() if v is not None}, dtype=self.dtype,  # type: ignore[arg-type]
                           monitor="objective", seed=seed)


def check_plugin_names(estimator: Any, param: str, registry: Any, several: bool = False) -> None:
    """Refuse a ``penalty``/``optimizer`` parameter that names no installed plugin (``several``:
    a list of names or ``"a,b"``, None for all)."""
    value = getattr(estimator, param)
    choices = registry.names()
    if several and value is None:
        return
    names = (value.split(",") if isinstance(value, str) else list(value)) if several else [value]
    # spaces around a name are a list's separators only: penalty=" l2" failed later as an unknown plugin
    unknown = [n for n in names if not isinstance(n, str) or (n.strip() if several else n) not in choices]
    if unknown or not names:
        what = f"a str among {set(choices)}" + (", a list of them, or None" if several else "")
        raise InvalidParameterError(f"The '{param}' parameter of {type(estimator).__name__} must be {what} (the "
                                    f"installed {param} plugins); got {value!r} instead.")


def check_spaced_labels(estimator: Any, classes: Any) -> None:
    """A ValueError (as for one class) for text labels equal but for surrounding spaces: they
    would silently be two classes."""
    from tuner.data._split import spaced_labels

    pair = spaced_labels(classes)
    if pair:
        raise ValueError(f"{type(estimator).__name__} got the labels {pair[0]!r} and {pair[1]!r}, which differ only "
                         "in spaces: clean the labels (y).")


def seed_of(random_state: Any) -> int:
    """The trainer's seed for a scikit-learn ``random_state``: an int is the seed itself (as
    ``tuner train --seed``); None or a ``RandomState`` draws one."""
    if is_count(random_state):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _centred(X: Any, weights: np.ndarray) -> tuple[Any, np.ndarray | None]:
    """Dense ``X`` with its columns' weighted means taken out, and those means (sparse ``X`` as it
    is, and None: centring would fill it in).

    The intercept is not penalised, so the optimum on centred columns is the optimum on ``X``
    with the intercept moved by ``-means @ W``: the same model, but one the full-batch solvers
    reach. A column far from zero (a year, every value shifted by 1e3) made them stall far above
    the optimum and stop as converged (scikit-learn's lbfgs does too).
    """
    if sp.issparse(X):
        return X, None
    means = np.average(np.asarray(X, dtype=np.float64), axis=0, weights=weights)
    return (X - means).astype(X.dtype, copy=False), means
