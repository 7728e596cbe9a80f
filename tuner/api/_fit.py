"""``tuner.fit``: train one configuration, the Python side of ``tuner train``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner._numbers import python_numbers
from tuner.api._data import DEFAULT_TEST_SIZE, DataOptions, read_data, refuse_monitor_without_validation
from tuner.errors import ConfigError
from tuner.train import Callback, TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from tuner.model import LogisticModel

__all__ = ["fit", "FitReport"]

_DEFAULT = TrainConfig()
"""The training defaults: :class:`TrainConfig` owns them; ``fit`` and ``tune`` show them."""


@dataclass
class FitReport:
    """What :func:`tuner.fit` returns: the fitted model, how training went, and its metrics.

    Attributes
    ----------
    model : LogisticModel
        The fitted model (preprocessing + weights): ``predict``, ``predict_proba``, ``save``.
    penalty, optimizer : str
        The plugins used.
    penalty_params, optimizer_params : dict
        Every hyperparameter of each plugin, defaults filled in (the resolved values).
    validation, test : dict
        Metrics (``log_loss``, ``accuracy``, ...) on the validation and test splits (empty when
        the split is turned off).
    history : list of dict
        One entry per epoch (``train_loss``, ``objective``, ``val_loss`` when validating, ...).
    objective : float
        The final training objective (mean loss + penalty).
    epochs_run, stop_reason, fit_seconds, device
        How training ended and where it ran.
    optimality_gap, gap_solver
        For a mini-batch optimizer on a small problem: how far (relative) above the optimum of
        its objective it stopped, and the full-batch solver that found the optimum.
    n_train, n_val, n_test, n_features, classes, source
        The data: rows per split, feature count after preprocessing, class labels, where from.
    model_path : Path or None
        Where the model was saved (``save_model=``).
    warnings : list of str
        What the numbers cannot tell: no minimum to reach (no penalty, separable rows), a test
        split of one class, a test file's columns the model ignores.
    """

    model: LogisticModel
    penalty: str
    optimizer: str
    penalty_params: dict[str, Any]
    optimizer_params: dict[str, Any]
    validation: dict[str, float]
    test: dict[str, float]
    history: list[dict[str, float]]
    objective: float
    epochs_run: int
    stop_reason: str
    fit_seconds: float
    device: str
    n_nonzero_weights: int
    n_weights: int
    n_train: int
    n_val: int
    n_test: int
    n_features: int
    classes: list[Any]
    source: str
    optimality_gap: float | None = None
    gap_solver: str | None = None
    cv_metrics: list[dict[str, float]] | None = None
    model_path: Path | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    warnings: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        """Every hyperparameter as ``{"penalty.NAME": v, "optimizer.NAME": v}``."""
        return {**{f"penalty.{k}": v for k, v in self.penalty_params.items()},
                **{f"optimizer.{k}": v for k, v in self.optimizer_params.items()}}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``tuner train --json`` prints)."""
        out: dict[str, Any] = {
            "penalty": self.penalty, "optimizer": self.optimizer, "penalty_params": self.penalty_params,
            "optimizer_params": self.optimizer_params, "validation": self.validation, "test": self.test,
            "train_objective": self.objective, "n_nonzero_weights": self.n_nonzero_weights,
            "n_weights": self.n_weights, "epochs_run": self.epochs_run, "stop_reason": self.stop_reason,
            "optimality_gap": self.optimality_gap, "fit_seconds": round(self.fit_seconds, 4), "device": self.device,
            "data": self.source, "classes": self.classes, "n_train": self.n_train, "n_val": self.n_val,
            "n_test": self.n_test, "n_features": self.n_features, "warnings": self.warnings,
        }
        if self.model_path is not None:
            out["model_path"] = str(self.model_path)
        return out


@python_numbers
def fit(
    data: Any = None,
    y: Any = None,
    *,
    dataset: str | None = None,
    target: str | None = None,
    text_column: str | None = None,
    categorical_columns: Sequence[str] | None = None,
    header: bool | None = None,
    group_column: str | None = None,
    fmt: str = "auto",
    encoding: str = "utf-8",
    n_features: int | None = None,
    zero_based: bool | None = None,
    val_size: float = 0.2,
    test_size: float | None = None,
    test_file: str | os.PathLike[str] | None = None,
    seed: int = _DEFAULT.seed,
    penalty: str = "l2",
    optimizer: str = "lbfgs",
    params: Mapping[str, Any] | None = None,
    epochs: int = _DEFAULT.epochs,
    batch_size: int | None = _DEFAULT.batch_size,
    patience: int = _DEFAULT.patience,
    tol: float = _DEFAULT.tol,
    monitor: str = _DEFAULT.monitor,
    schedule: str = _DEFAULT.schedule,
    class_weight: str | Mapping[Any, float] | None = _DEFAULT.class_weight,
    device: str = _DEFAULT.device,
    dtype: str = _DEFAULT.dtype,
    sample_weight: Any = None,
    callbacks: Sequence[Callback] = (),
    save_model: str | os.PathLike[str] | None = None,
) -> FitReport:
    """Train one logistic regression with the ``penalty`` and ``optimizer`` plugins.

    The same options as ``tuner train``, every one with its default filled in.

    Parameters
    ----------
    data : path, Dataset, RawData, array-like, sparse matrix or DataFrame, optional
        A data file or folder (any format ``tuner train`` reads), a split
        :class:`tuner.data.Dataset` (used as it is: the split options are ignored), or a feature
        matrix with its labels in ``y``. Give ``data`` or ``dataset``.
    y : array-like, optional
        The labels of a feature matrix (one per row).
    dataset : str, optional
        A bundled scikit-learn data set: ``breast_cancer``, ``digits``, ``wine``, ``iris``.
    target, text_column : str, optional
        The label column and a text column (TF-IDF 1-2 grams) of a table.
    categorical_columns : sequence of str, optional
        Columns of a table that hold categories (strings or codes): one 0/1 feature per category
        of the training rows; a missing cell is a category of its own, and a category the
        training rows never held sets none of its column's features.
    header : bool, optional
        Whether a CSV/TSV file's first line names its columns; with False it is data, and the
        columns are named ``"0"``, ``"1"``, ... by position (``target="41"``). By default it names
        them, and a first line of numbers only is refused as a likely row of data (True accepts it).
    group_column : str, optional
        A table's column of row groups (a user, a patient, a sentence id): no feature; every
        group's rows stay on one side of the validation and test splits (scikit-learn's
        ``StratifiedGroupKFold``: ``m`` of ``k`` folds of whole groups, ``m / k`` the nearest such
        share to ``val_size`` / ``test_size`` with ``k`` at most 20), so that rows of one group
        cannot make the validation score look better than new groups will.
    fmt, encoding, n_features, zero_based
        How a file is read (``fmt="auto"`` guesses the format from its content).
    val_size, test_size : float
        Shares of rows split off (stratified; by whole groups with ``group_column``) for validation
        and test; 0 turns a split off. ``test_size`` is 0.2 by default, and no share with ``test_file``.
    test_file : path, optional
        A separate labelled test file, read like ``data`` (giving ``test_size`` too is refused).
    seed : int
        Seed of the splits, the shuffling and the initialisation.
    penalty, optimizer : str
        Plugin names (``tuner.penalties.names()``, ``tuner.optimizers.names()``).
    params : mapping, optional
        Hyperparameters: ``{"penalty.strength": 1e-3, "optimizer.lr": 0.1}``; a bare name
        (``"strength"``) is the one plugin that declares it. Every other one takes its plugin's
        default.
    epochs, batch_size, patience, tol, monitor, schedule, class_weight, device, dtype
        Training options (:class:`tuner.TrainConfig`, which documents them and owns their
        defaults). Training stops when the training objective has not improved by ``tol``
        (relative) for ``patience`` epochs, or after ``epochs``.
    sample_weight : array-like, optional
        A weight per row of ``data``; needs ``val_size=0`` and ``test_size=0`` (every row trains).
    callbacks : sequence of Callback
        Hooks called every epoch (:class:`tuner.Callback`).
    save_model : path, optional
        A folder to save the fitted model in (:func:`tuner.load_model` reads it back).

    Returns
    -------
    FitReport
        The model, the resolved hyperparameters, the metrics and the training history.

    Raises
    ------
    tuner.ConfigError, tuner.DataError, tuner.IncompatiblePluginsError, tuner.PluginError,
    tuner.TrainingDivergedError

    Examples
    --------
    >>> import tuner
    >>> report = tuner.fit(dataset="breast_cancer")
    >>> report.model.predict_proba(X_new)  # doctest: +SKIP
    """
    from tuner.study import (
        NO_OPTIMUM_NOTE,
        check_plugins,
        prepare_sample_weight,
        separated_without_penalty,
        split_params,
        train_one,
    )

    pen_over, opt_over = split_params(params or {}, penalty, optimizer)
    check_plugins(penalty, optimizer, pen_over, opt_over)  # names and values fail before the data is read
    from tuner._registry import optimizers

    if batch_size is not None and optimizers.get(optimizer).full_batch:
        raise ConfigError(f"The 'batch_size' parameter sizes the steps of mini-batch optimizers; {optimizer} passes over "
                          "every row at once: leave it out, or choose a mini-batch optimizer.")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, patience=patience, tol=tol,
                         monitor=monitor, schedule=schedule,  # type: ignore[arg-type]
                         class_weight=class_weight, device=device, dtype=dtype, seed=seed)  # type: ignore[arg-type]
    config.check()
    refuse_monitor_without_validation(monitor, val_size)
    opts = DataOptions(data, y, dataset, target, text_column, fmt, encoding, n_features, zero_based, val_size,
                       DEFAULT_TEST_SIZE if test_size is None else test_size, test_file, seed,
                       test_size_given=test_size is not None, categorical_columns=categorical_columns, header=header,
                       group_column=group_column)
    ds = split(opts)
    weights = prepare_sample_weight(sample_weight, ds) if sample_weight is not None else None
    outcome = train_one(ds, penalty, optimizer, pen_over, opt_over, config, callbacks, sample_weight=weights)
    r = outcome.result
    separated = separated_without_penalty(ds.X_train, ds.y_train, r.weight, r.intercept, penalty,
                                          outcome.penalty_params, weights)
    no_optimum = [f"{NO_OPTIMUM_NOTE} (l2 or elasticnet)"] if separated else []
    report = FitReport(
        model=outcome.model, penalty=penalty, optimizer=optimizer, penalty_params=outcome.penalty_params,
        optimizer_params=outcome.optimizer_params, validation=outcome.val_metrics, test=outcome.test_metrics,
        history=r.history, objective=r.objective, epochs_run=r.epochs_run, stop_reason=r.stop_reason,
        fit_seconds=r.fit_seconds, device=r.device, n_nonzero_weights=r.n_nonzero, n_weights=int(r.weight.size),
        n_train=len(ds.y_train), n_val=len(ds.y_val), n_test=len(ds.y_test), n_features=ds.pipeline.n_features,
        classes=list(ds.classes), source=ds.raw.source, optimality_gap=outcome.optimality_gap,
        gap_solver=outcome.gap_solver, cv_metrics=outcome.cv_metrics, config=config,
        warnings=no_optimum + ds.notes)
    if save_model is not None:
        report.model_path = Path(outcome.model.save(Path(save_model)))
    return report


def split(opts: DataOptions) -> Any:
    """The data of ``opts`` read and split (a ``Dataset`` as it is)."""
    from tuner.data import Dataset, prepare

    raw, test_raw = read_data(opts)
    if isinstance(raw, Dataset):
        return raw
    return prepare(raw, val_size=opts.val_size, test_size=opts.test_size, seed=opts.seed, test_raw=test_raw)
