"""``tuner.tune``: run (or resume) a study, the Python side of ``tuner tune`` and ``tuner worker``."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner._numbers import python_numbers
from tuner.api._data import DEFAULT_TEST_SIZE, DataOptions, read_data, refuse_monitor_without_validation
from tuner.api._fit import _DEFAULT
from tuner.errors import ConfigError
from tuner.study import StudyInfo, StudyObserver, TrialInfo

if TYPE_CHECKING:  # pragma: no cover
    from tuner.model import LogisticModel
    from tuner.study import DataSpec, StudyResult, TrainOutcome, TrialRecord
    from tuner.train import Callback

__all__ = ["tune", "TuneResult", "wait_for_study", "data_spec", "DEFAULT_TRIALS"]

DEFAULT_TRIALS = 50
"""The trial budget of a new study when none is given."""


@dataclass
class TuneResult:
    """What :func:`tuner.tune` returns: the study's outcome and its best model.

    Attributes
    ----------
    study_name : str
        The study (an existing one was resumed).
    storage_url : str or None
        The study database (passwords redacted); None for a study kept in memory (gone once
        ``tune`` returned: :attr:`trials` keeps its trials).
    metric, direction : str
        The validation metric the study optimised and whether lower or higher is better.
    best_number, best_value : int or None, float or None
        The best trial and its validation metric (None when no trial completed).
    best_params : dict
        The best trial's hyperparameters by their public names, the same as ``--param``,
        ``tuner plugins list``, ``tuner tune --json``, ``tuner study show/export`` and the MLflow
        runs: ``penalty`` and ``optimizer`` (the plugin names), then ``penalty.NAME`` and
        ``optimizer.NAME`` (``penalty.strength``, ``optimizer.lr``, ...), the ones fixed by
        ``params`` included.
    model : LogisticModel or None
        The best configuration refit and evaluated on the test split.
    validation, test : dict
        The best model's metrics on the validation and test splits.
    n_complete, n_pruned, n_failed : int
        Trial counts of the whole study (every process's trials).
    trials : list of TrialRecord
        The study's trials (plain data), read when the run ended.
    warnings : list of str
        Notices about the search (plugins left out, a small budget, ...).
    interrupted : str or None
        ``"SIGINT"``/``"SIGTERM"`` when a signal stopped the run (completed trials are kept).
    no_result : str or None
        Why there is no best trial although trials ran (all pruned or failed).
    tracking_uri, experiment_name, experiment_id, parent_run_id : str or None
        With tracking: the MLflow store, the study's experiment (named after the study) and
        the parent run of this study.
    registered_model_name, registered_model_version, model_uri : str or None
        With tracking: the registered model of the study, the version holding this run's best
        model, and its ``models:/NAME/VERSION`` URI (:func:`tuner.load_model` reads it).
    """

    study_name: str
    storage_url: str | None
    metric: str
    direction: str
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    model: LogisticModel | None
    validation: dict[str, float]
    test: dict[str, float]
    n_complete: int
    n_pruned: int
    n_failed: int
    trials: list[TrialRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    interrupted: str | None = None
    no_result: str | None = None
    elapsed: float = 0.0
    tracking_uri: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    registered_model_name: str | None = None
    registered_model_version: str | None = None
    model_uri: str | None = None
    champion_version: str | None = None
    """With tracking: the version the registered model's ``champion`` alias points at (this run's
    best, or an earlier run's when that one is still better)."""
    outcome: TrainOutcome | None = field(default=None, repr=False)
    """The best refit's full outcome (training result, resolved hyperparameters, metrics)."""
    _summary: dict[str, Any] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``tuner tune --json`` prints)."""
        out = dict(self._summary)
        if self.model_uri is not None:
            out.update(registered_model=self.registered_model_name, model_version=self.registered_model_version,
                       model_uri=self.model_uri)
        return out


class _Recorder(StudyObserver):
    """Passes every hook to ``inner`` and keeps the study attributes it returns (MLflow ids)."""

    def __init__(self, inner: StudyObserver) -> None:
        self.inner = inner
        self.attrs: dict[str, Any] = {}

    def check(self) -> None:
        self.inner.check()

    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        out = self.inner.on_study_start(study)
        self.attrs.update(out)
        return out

    def on_trial_start(self, study: StudyInfo, trial: TrialInfo) -> tuple[Sequence[Callback], dict[str, Any]]:
        return self.inner.on_trial_start(study, trial)

    def on_trial_end(self, study: StudyInfo, trial: TrialInfo, state: str, value: float | None,
                     outcome: TrainOutcome | None, reason: str | None) -> dict[str, Any]:
        return self.inner.on_trial_end(study, trial, state, value, outcome, reason)

    def on_study_end(self, study: StudyInfo, best: TrialInfo | None, best_outcome: TrainOutcome | None,
                     history: list[dict[str, Any]]) -> dict[str, Any]:
        out = self.inner.on_study_end(study, best, best_outcome, history)
        self.attrs.update(out)
        return out

    def on_trial_lost(self, study: StudyInfo, number: int, reason: str) -> None:
        self.inner.on_trial_lost(study, number, reason)

    def on_study_stop(self, study: StudyInfo, status: str, reason: str | None) -> dict[str, Any]:
        out = self.inner.on_study_stop(study, status, reason) or {}
        self.attrs.update(out)
        return out


@python_numbers
def tune(
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
    trials: int | None = None,
    timeout: float | None = None,
    study_name: str | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
    penalty: str | Sequence[str] | None = None,
    optimizer: str | Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    metric: str = "log_loss",
    sampler: str = "tpe",
    pruner: str = "median",
    cv: int | None = None,
    batch_trials: int | str | None = "auto",
    epochs: int = _DEFAULT.epochs,
    batch_size: int | None = _DEFAULT.batch_size,
    patience: int = _DEFAULT.patience,
    tol: float = _DEFAULT.tol,
    monitor: str = _DEFAULT.monitor,
    class_weight: str | Mapping[Any, float] | None = _DEFAULT.class_weight,
    device: str = _DEFAULT.device,
    dtype: str = _DEFAULT.dtype,
    observers: Sequence[StudyObserver] = (),
    progress: Callable[[dict[str, Any]], None] | None = None,
    explicit: Mapping[str, Any] | None = None,
    wait: float = 0.0,
) -> TuneResult:
    """Run an Optuna study over penalties, optimizers and their hyperparameters; keep the best.

    The same options as ``tuner tune``. With ``data`` (or ``dataset``) a new study is created,
    or an existing ``study_name`` resumed when its options match; with ``study_name`` alone an
    existing study is resumed (or joined: what ``tuner worker`` does), and its stored options
    are used.

    Parameters
    ----------
    data, y, dataset, target, text_column, categorical_columns, header, group_column, fmt, encoding, n_features, zero_based, val_size, test_size, test_file
        The data and how to read and split it, as in :func:`tuner.fit` (a study's data cannot be
        an already split ``Dataset``). With ``group_column``, the ``cv`` folds keep every group
        whole too.
    seed : int
        Seed of the splits, the sampler and the training.
    trials : int, optional
        Trial budget (complete + pruned trials, every process's): default 50 for a new study;
        a resumed study keeps its stored budget unless given. 0 stores a new study without
        running a trial (for a later run with a budget, and its workers).
    timeout : float, optional
        Stop starting trials after this many seconds, counted from the first trial (reading the
        data and checking the plugins are not included). Trials training then finish; asked
        trials whose group (``batch_trials``) has not started are given up, not counted.
    study_name : str, optional
        Default: made up from the data, the time and a random suffix
        (``arrays-20261130-050142-3fa9c2``; never an existing study).
    storage : str, optional
        SQLAlchemy URL of the study database. Default: none, the study lives in a temporary
        database for this call only (:attr:`TuneResult.trials` keeps its trials).
    tracking_uri : str, optional
        MLflow tracking URI: log the study, its trials and its best model (registered under the
        study's name) there. Default: no tracking.
    penalty, optimizer : str or sequence of str, optional
        The plugins to search (a name, a list, or ``"a,b"``). Default: every installed penalty
        and the exact full-batch optimizers (``newton`` alone where the model is small) that pass
        their contract checks; the result's warnings name what was left out.
    params : mapping, optional
        Narrow or fix hyperparameters: ``{"penalty.strength": "1e-6..1e-2:log", "optimizer.lr": 0.1}``.
    metric : {"log_loss", "accuracy", "roc_auc", "f1"}
        The validation metric to optimise; ``f1`` is the second class's F1 with two classes
        (scikit-learn's ``"f1"``), the macro average with more.
    sampler : {"tpe", "random", "qmc", "grid", "cmaes"}
    pruner : {"median", "hyperband", "none"}
    cv : int, optional
        Score each trial by stratified K-fold cross-validation on the training rows (group K-fold
        with ``group_column``).
    batch_trials : int, "auto" or None
        Trials asked at once and trained side by side; 1 or None: one at a time.
    epochs, batch_size, patience, tol, monitor, class_weight, device, dtype
        Training options (:class:`tuner.TrainConfig` owns their defaults).
    observers : sequence of StudyObserver
        More hooks into the study (:class:`tuner.StudyObserver`).
    progress : callable, optional
        Called after every trial with ``{"done", "total", "best", "elapsed", "number", "reason"}``.
    explicit : mapping, optional
        The options the caller set on purpose, as study-spec keys (``"train.epochs"``,
        ``"metric"``...): on resume only these are compared with the stored study. Default:
        the options not at their defaults (a default never contradicts the stored study, whose
        value is used; any other option that differs from it is refused, never ignored).
    wait : float
        With ``study_name`` alone: seconds to wait for another process to create the study.

    Returns
    -------
    TuneResult

    Examples
    --------
    >>> import tuner
    >>> result = tuner.tune(dataset="breast_cancer", trials=20)  # doctest: +SKIP
    >>> result.best_params, result.model.predict(X_new)  # doctest: +SKIP
    """
    from tuner._registry import optimizers, penalties
    from tuner.study import StudySpec, build_space, run_study

    opts = DataOptions(data, y, dataset, target, text_column, fmt, encoding, n_features, zero_based, val_size,
                       DEFAULT_TEST_SIZE if test_size is None else test_size, test_file, seed,
                       test_size_given=test_size is not None, categorical_columns=categorical_columns, header=header,
                       group_column=group_column)
    categorical = opts.categorical_columns
    options_given = {  # compared with a stored study's spec when not at their defaults
        "target": target, "text_column": text_column, "categorical_columns": categorical, "header": header,
        "group_column": opts.group_column,
        "fmt": fmt, "encoding": encoding, "n_features": n_features, "zero_based": zero_based, "val_size": val_size,
        "test_size": test_size,
        "test_file": None if test_file is None else str(Path(test_file).resolve()), "seed": seed,
        "penalty": _names(penalty, "penalty") if penalty is not None else None,
        "optimizer": _names(optimizer, "optimizer") if optimizer is not None else None,
        "params": {k: str(v) for k, v in params.items()} if params else None, "metric": metric, "sampler": sampler,
        "pruner": pruner, "cv": cv, "epochs": epochs, "batch_size": batch_size, "patience": patience, "tol": tol,
        "monitor": monitor, "class_weight": class_weight, "device": device, "dtype": dtype}
    _check_metric(metric)
    if not cv:  # with folds, monitor="val" is refused whatever the split (tuner.study.check_data says why)
        refuse_monitor_without_validation(monitor, val_size)
    if study_name is not None and not study_name.strip():
        raise ConfigError("The 'study_name' parameter is blank: give the study a name, or leave it out for a "
                          "made-up one.")
    has_data = data is not None or dataset is not None
    if not has_data and study_name is None:
        raise ConfigError("Give data (the 'data' or 'dataset' parameter) to start a study, or 'study_name' to "
                          "resume one.")
    if not has_data and storage is None:
        raise ConfigError(f"Study {study_name!r} cannot be resumed from memory: give the 'storage' it is in.")
    spec, read, new_only = None, None, False
    if has_data:
        from tuner.tracking._prebuild import prebuild_schema_template

        prebuild_schema_template(tracking_uri)  # a first run's MLflow schema, while the data is read and prepared
        read = read_data(opts)
        spec = StudySpec(
            data=_data_spec(opts, *read), penalties=_names(penalty, "penalty") or penalties.names(),
            optimizers=_names(optimizer, "optimizer") or optimizers.names(),
            params={k: str(v) for k, v in (params or {}).items()}, metric=metric, sampler=sampler, pruner=pruner,
            seed=seed, n_trials=DEFAULT_TRIALS if trials is None else trials, timeout=timeout,
            train={"epochs": epochs, "batch_size": batch_size, "patience": patience, "tol": tol, "monitor": monitor,
                   "class_weight": class_weight, "device": device, "dtype": dtype},
            cv=cv or 0)
        build_space(spec)  # unknown plugins, bad params: fail before any trial
        if study_name is None:
            study_name = default_study_name(_stem(opts))
            new_only = True  # a made-up name: never join a study another process started
    assert study_name is not None
    if tracking_uri is not None:  # before anything is written (a worker's wait creates the study storage)
        from tuner.tracking import check_model_name

        check_model_name(study_name)
    with tempfile.TemporaryDirectory(prefix="tuner-study-") as tmp:
        url = storage or f"sqlite:///{Path(tmp) / 'study.db'}"
        if not has_data and wait > 0:
            wait_for_study(url, study_name, wait)
        recorders = _tracking(url, tracking_uri, study_name)
        try:
            untracked = [] if recorders or _tracks_itself(observers) else [_untracked()]
            result = run_study(spec, study_name, url, observers=[*recorders, *untracked, *observers], progress=progress,
                               resume_only=spec is None, n_trials=trials, timeout=timeout,
                               changes=dict(explicit) if explicit is not None else _given_on_purpose(options_given),
                               new_only=new_only,
                               batch_trials=batch_trials, preloaded=read,
                               chosen_plugins=[key for key, given in (("penalties", penalty),
                                                                      ("optimizers", optimizer)) if given is not None])
            del read
            return _result(result, storage, tracking_uri, recorders)
        finally:
            for rec in recorders:  # finish the queued tracking work and stop its thread (none left running)
                close = getattr(rec.inner, "close", None)
                if close is not None:
                    close()


_RESUME_FREE = frozenset({"study_name", "storage", "tracking_uri", "trials", "timeout", "data", "y", "dataset",
                         "batch_trials", "observers", "progress", "explicit", "wait"})
"""The options of :func:`tune` that may differ from a stored study's (where the results go, the
budget, the data's location: its content is compared by fingerprint)."""
_SPEC_KEYS = {"penalty": "penalties", "optimizer": "optimizers", "params": "params", "metric": "metric",
              "sampler": "sampler", "pruner": "pruner", "cv": "cv"}
_TRAIN_KEYS = ("epochs", "batch_size", "patience", "tol", "monitor", "class_weight", "device", "dtype")


def spec_changes(values: Mapping[str, Any]) -> dict[str, Any]:
    """The study-spec keys that options of :func:`tune` (by name, the ones given on purpose) set.

    An option a spec cannot hold comes back as ``--NAME``, which a resume refuses (it would be
    silently ignored)."""
    from dataclasses import fields

    from tuner.study import DataSpec

    data_fields = {f.name for f in fields(DataSpec)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in _RESUME_FREE:
            continue
        if name == "seed":
            out["seed"] = out["data.seed"] = value
        elif name in _SPEC_KEYS:
            out[_SPEC_KEYS[name]] = value
        elif name in _TRAIN_KEYS:
            out[f"train.{name}"] = value
        elif name in data_fields:
            out[f"data.{name}"] = value
        else:
            out[f"--{name.replace('_', '-')}"] = value
    return out


def _given_on_purpose(values: Mapping[str, Any]) -> dict[str, Any]:
    """The options of :func:`tune` in ``values`` that are not at their defaults, as spec keys."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(tune).parameters.items()}
    return spec_changes({k: v for k, v in values.items() if k in defaults and v is not None and v != defaults[k]})


def wait_for_study(storage: str, study_name: str, wait: float) -> None:
    """Return once ``study_name`` exists in ``storage``; a :class:`ConfigError` (a
    :class:`~tuner.study.MissingStudyError`) after ``wait`` seconds."""
    from tuner.errors import StorageError
    from tuner.study import MissingStudyError, list_studies, open_storage, redact, sqlite_path

    path = sqlite_path(storage)
    if path is None:
        open_storage(storage, heartbeat=False)  # a server database: its tables, once
    # A SQLite file is left for `tuner tune` to create: a mistyped path must not become an empty
    # database that this process then waits on.
    deadline = time.time() + wait
    while True:
        failed: StorageError | None = None
        try:
            if (path is None or path.is_file()) and study_name in {s.name for s in list_studies(storage)}:
                return
        except StorageError as exc:  # created this instant, its tables not yet: look again
            failed = exc
        if time.time() > deadline:
            if failed is not None:  # still unreadable at the end (a damaged file): that, not a missing study
                raise failed
            hint = f" (there is no database file at {path}: is the path right?)" if path and not path.is_file() else ""
            raise MissingStudyError(f"No study named {study_name!r} appeared in {redact(storage)} within {wait:g} s"
                                    f"{hint}", "give data (the 'data' parameter or the 'dataset' parameter) to "
                                    "create it, or wait longer (the 'wait' parameter).")
        time.sleep(0.25)  # a read a quarter second: the worker joins a short study's first batches


def _check_metric(metric: str) -> None:
    """A metric the study can optimise, before any data is read (it was a bare KeyError, late)."""
    from tuner.train import METRICS

    if metric not in METRICS:
        raise ConfigError(f"The 'metric' parameter must be one of {list(METRICS)}; got {metric!r} instead.")


def _names(value: str | Sequence[str] | None, param: str) -> list[str] | None:
    """``"a,b"``, ``["a", "b"]`` or None -> a list of distinct names, in the order given (None for
    None); a value that names no plugin (``","``) is an error, not every plugin."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = list(dict.fromkeys(v.strip() for v in items if v.strip()))
    if not out:
        raise ConfigError(f"The '{param}' parameter names no plugin ({value!r}); name one or more, or leave it out to "
                          "search every installed one.")
    return out


def default_study_name(stem: str) -> str:
    """A new study's name when none is given: ``STEM-YYYYMMDD-HHMMSS-xxxxxx``, the time to the
    second and six random hex digits, so that studies started in the same second (the folds of a
    ``cross_val_score``, parallel searches, several processes) each get their own name."""
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _stem(opts: DataOptions) -> str:
    if opts.is_path:
        return Path(opts.data).stem
    return opts.dataset or "arrays"


def data_spec(opts: DataOptions) -> DataSpec:
    """The study spec's :class:`~tuner.study.DataSpec` for the data of ``opts`` (read here)."""
    return _data_spec(opts, *read_data(opts))


def _data_spec(opts: DataOptions, raw: Any, test_raw: Any) -> DataSpec:
    """The study spec's DataSpec: paths any worker can resolve, the index base, both fingerprints."""
    from tuner.data import Dataset, portable_path
    from tuner.study import DataSpec

    if isinstance(raw, Dataset):
        raise ConfigError("tune splits the data itself (val_size, test_size, seed): give the rows (a path, a "
                          "matrix with 'y', or 'dataset'), not a split Dataset.")
    path, rel = portable_path(Path(opts.data)) if opts.is_path else (None, None)
    test_path, test_rel = portable_path(Path(opts.test_file)) if opts.test_file else (None, None)
    return DataSpec(path=path, relative_path=rel, dataset=opts.dataset, target=opts.target,
                    text_column=opts.text_column, categorical_columns=list(opts.categorical_columns or []),
                    header=opts.header, group_column=opts.group_column,
                    fmt=opts.fmt if opts.is_path or opts.dataset else raw.fmt,
                    encoding=opts.encoding, n_features=opts.n_features, zero_based=raw.zero_based,
                    val_size=opts.val_size, test_size=opts.test_size, test_file=test_path,
                    test_relative_path=test_rel, seed=opts.seed, fingerprint=raw.fingerprint,
                    test_fingerprint=test_raw.fingerprint if test_raw is not None else "")


def _tracks_itself(observers: Sequence[StudyObserver]) -> bool:
    """Whether the caller's own observers log the study to MLflow (an MlflowObserver of theirs)."""
    if not observers:
        return False
    from tuner.tracking._observer import MlflowObserver

    return any(isinstance(o, MlflowObserver) for o in observers)


def _untracked() -> StudyObserver:
    """For a run without tracking: notes the trials it finishes on a study tracked in MLflow."""
    from tuner.tracking._untracked import UntrackedTrials

    return UntrackedTrials()


def _tracking(storage_url: str, tracking_uri: str | None, study_name: str) -> list[_Recorder]:
    """The MLflow observer for ``tracking_uri`` (none without one), on another database than the
    study, and the store the study already logs to if it exists."""
    if tracking_uri is None:
        return []
    from tuner.study import same_database
    from tuner.tracking import MlflowObserver
    from tuner.tracking._home import check_same_store, study_tracking_uri

    if same_database(tracking_uri, storage_url):
        raise ConfigError("The study database and the MLflow store must be different databases; change "
                          "the 'storage' parameter or the 'tracking_uri' parameter.")
    check_same_store(study_tracking_uri(storage_url, study_name), tracking_uri, study_name)
    return [_Recorder(MlflowObserver(tracking_uri))]


def _result(r: StudyResult, storage: str | None, tracking_uri: str | None, recorders: list[_Recorder]) -> TuneResult:
    from tuner.study import redact, trial_records

    o = r.best_outcome
    summary = r.summary()
    if storage is None:
        summary["storage"] = "memory"
    attrs: dict[str, Any] = {}
    for rec in recorders:
        attrs.update(rec.attrs)
    version = attrs.get("mlflow_model_version")
    warnings = list(r.warnings)
    unlogged = attrs.get("mlflow_unlogged_trials") or []
    if attrs.get("mlflow_study_logged") is False or unlogged:
        what = "the study's end (summary, plots, registered model)" if attrs.get("mlflow_study_logged") is False \
            else ""
        if unlogged:
            what += (" and " if what else "") + f"{len(unlogged)} trial(s)"
        warnings.append(f"MLflow did not record {what}; `tuner study sync-mlflow {r.study_name}` logs what is "
                        "missing once it is reachable")
        summary["warnings"] = warnings
    return TuneResult(
        study_name=r.study_name, storage_url=None if storage is None else redact(storage), metric=r.metric,
        direction=r.direction, best_number=r.best_number, best_value=r.best_value, best_params=dict(r.best_params),
        model=o.model if o is not None else None, validation=dict(o.val_metrics) if o else {},
        test=dict(o.test_metrics) if o else {}, n_complete=r.counts.get("complete", 0),
        n_pruned=r.counts.get("pruned", 0), n_failed=r.counts.get("fail", 0),
        trials=trial_records(r.storage_url, r.study_name), warnings=warnings, interrupted=r.interrupted,
        no_result=r.no_result, elapsed=r.elapsed, tracking_uri=tracking_uri,
        experiment_name=r.study_name if attrs.get("mlflow_experiment_id") else None,
        experiment_id=attrs.get("mlflow_experiment_id"), parent_run_id=attrs.get("mlflow_parent_run_id"),
        registered_model_name=r.study_name if version is not None else None,
        registered_model_version=None if version is None else str(version), model_uri=attrs.get("mlflow_model_uri"),
        champion_version=None if attrs.get("mlflow_champion_version") is None else str(attrs["mlflow_champion_version"]),
        outcome=o, _summary=summary)
