"""Optuna studies: the search space over variants and hyperparameters, and the study loop.

The only module that imports Optuna. A trial picks a compatible ``penalty:optimizer`` pair
(one categorical ``variant``), then the chosen plugins' own hyperparameters (conditional on
the pair), trains with per-epoch reports for pruning, and returns the validation metric.
"""

from __future__ import annotations

import json
import math
import signal
import time
import warnings as warnings_module
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner._plugin_api import compatibility_reason
from tuner._registry import optimizers, penalties
from tuner.data._loaders import Dataset, load_data, prepare
from tuner.errors import ConfigError, TunerError
from tuner.study._configure import TrainOutcome, cv_folds, train_one
from tuner.study._observer import StudyInfo, StudyObserver, TrialInfo
from tuner.study._runs import (
    FAIL_STREAK,
    GAVE_UP,
    TRIAL_OUTCOME_ATTRS,
    WORKER,
    Budget,
    GaveUp,
    budget_warnings,
    fail_stale_trials,
    failure_streak,
    none_completed,
    own_stale_check,
    raise_if_failing,
    seeded_sampler,
)
from tuner.study._spec import StudySpec, parse_range
from tuner.study._storage import open_storage, redact
from tuner.study._trial_batches import TrialBatches, batch_size_for
from tuner.train._metrics import METRICS, evaluate
from tuner.train._trainer import Callback, TrainConfig, TrainingState, work_size

__all__ = ["SearchSpace", "Slot", "build_space", "run_study", "StudyResult", "load_dataset_for", "make_sampler",
           "make_pruner", "Interrupted", "open_or_create_study", "resume_spec", "RESUMABLE"]

VARIANT = "variant"
SAMPLERS = ("tpe", "random", "qmc", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")


class Interrupted(KeyboardInterrupt):
    """The study was stopped by SIGINT or SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Slot:
    """One hyperparameter of one plugin, as it appears in the trials."""

    name: str  # the trial parameter name, e.g. penalty.strength
    kind: str  # "penalty" or "optimizer"
    plugin: str
    hp: str
    spec: Any  # tuner Float / Int / Categorical
    fixed: Any = None
    is_fixed: bool = False
    low: float | None = None
    high: float | None = None
    log: bool = False

    def suggest(self, trial: Any) -> Any:
        from tuner._space import Categorical, Int

        if self.is_fixed:
            return self.fixed
        if isinstance(self.spec, Categorical):
            return trial.suggest_categorical(self.name, list(self.spec.choices))
        if isinstance(self.spec, Int):
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


@dataclass
class SearchSpace:
    """Variants in play and, for each, the slots of its two plugins."""

    variants: list[str]
    slots: dict[str, list[Slot]]
    skipped: dict[str, str] = field(default_factory=dict)  # incompatible pair -> reason

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {VARIANT: self.variants}
        for slots in self.slots.values():
            for s in slots:
                out[s.name] = s.fixed if s.is_fixed else {"low": s.low, "high": s.high, "log": s.log} \
                    if s.low is not None else list(s.spec.choices)
        return out


def variant_name(penalty: str, optimizer: str) -> str:
    return f"{penalty}:{optimizer}"


def build_space(spec: StudySpec) -> SearchSpace:
    """The variants (compatible pairs) and their conditional hyperparameters, overrides applied."""
    from tuner._space import Categorical

    pens = {n: penalties.get(n) for n in spec.penalties}
    opts = {n: optimizers.get(n) for n in spec.optimizers}
    variants, skipped = [], {}
    for pn, p in pens.items():
        for on, o in opts.items():
            reason = compatibility_reason(p, o)
            if reason:
                skipped[variant_name(pn, on)] = reason
            else:
                variants.append(variant_name(pn, on))
    if not variants:
        raise ConfigError("No compatible penalty/optimizer pair among the choices: " + "; ".join(skipped.values()) + ".")

    def names(kind: str, plugins: dict[str, Any]) -> dict[tuple[str, str], str]:
        decl: dict[str, set[str]] = {}
        for pl in plugins.values():
            for hp, hspec in pl.search_space.items():
                d = hspec.to_dict()  # the Optuna distribution, not defaults or descriptions, decides sharing
                decl.setdefault(hp, set()).add(repr((d["type"], d.get("low"), d.get("high"), d.get("log"),
                                                     d.get("choices"))))
        return {(pn, hp): (f"{kind}.{hp}" if len(decl[hp]) == 1 else f"{kind}.{pn}.{hp}")
                for pn, pl in plugins.items() for hp in pl.search_space}

    slot_names = {**{("penalty",) + k: v for k, v in names("penalty", pens).items()},
                  **{("optimizer",) + k: v for k, v in names("optimizer", opts).items()}}
    all_slots: dict[tuple[str, str, str], Slot] = {}
    for (kind, pn, hp), full in slot_names.items():
        hspec = (pens if kind == "penalty" else opts)[pn].search_space[hp]
        s = Slot(full, kind, pn, hp, hspec)
        if not isinstance(hspec, Categorical):
            s.low, s.high, s.log = hspec.low, hspec.high, hspec.log
        all_slots[(kind, pn, hp)] = s

    for key, text in spec.params.items():
        matches = [s for s in all_slots.values()
                   if key == s.name or key == f"{s.kind}.{s.hp}" or key == f"{s.kind}.{s.plugin}.{s.hp}"]
        if not matches:
            known = sorted({s.name for s in all_slots.values()})
            raise ConfigError(f"--param {key}: no plugin in play declares it. Searchable: {', '.join(known)}.")
        mode, value = parse_range(text)
        for s in matches:
            if mode == "fixed":
                s.fixed, s.is_fixed = s.spec.validate(s.name, value), True
            else:
                low, high, log = value
                if isinstance(s.spec, Categorical):
                    raise ConfigError(f"--param {key}: {s.name} is categorical; fix it with {key}=VALUE instead of a range.")
                s.spec.validate(s.name, low)
                s.spec.validate(s.name, high)
                s.low, s.high, s.log = low, high, log or s.spec.log
    slots: dict[str, list[Slot]] = {}
    for v in variants:
        pn, on = v.split(":")
        slots[v] = [s for (kind, pl, _), s in all_slots.items()
                    if (kind == "penalty" and pl == pn) or (kind == "optimizer" and pl == on)]
    return SearchSpace(variants, slots, skipped)


def make_sampler(name: str, seed: int, space: SearchSpace) -> Any:
    import warnings

    import optuna

    if name == "tpe":
        with warnings.catch_warnings():  # multivariate/group are "experimental" in Optuna, and what we want
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # constant_liar: trials running in other workers count as bad, so workers spread out
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=10,
                                              constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        with warnings.catch_warnings():  # "experimental" since Optuna 3.0; chosen on purpose by --sampler qmc
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False,
                                            independent_sampler=optuna.samplers.TPESampler(seed=seed))
    if name == "grid":
        grid: dict[str, list[Any]] = {VARIANT: list(space.variants)}
        for slots in space.slots.values():
            for s in slots:
                if s.is_fixed or s.name in grid:
                    continue
                if s.low is None:
                    grid[s.name] = list(s.spec.choices)
                elif s.log:
                    grid[s.name] = [float(v) for v in np.geomspace(s.low, s.high, 5)]
                else:
                    vals = np.linspace(s.low, s.high, 5)
                    grid[s.name] = sorted({int(round(v)) for v in vals}) if isinstance(s.low, int) and \
                        type(s.spec).__name__ == "Int" else [float(v) for v in vals]
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(f"The 'sampler' parameter must be one of {list(SAMPLERS)}; got {name!r} instead.")


def make_pruner(name: str, epochs: int) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 3))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"The 'pruner' parameter must be one of {list(PRUNERS)}; got {name!r} instead.")


def load_dataset_for(spec: StudySpec, preloaded: tuple[Any, Any] | None = None) -> Dataset:
    """Read and split the data named by the spec (the same way on every worker).

    The files are looked for under ``$TUNER_DATA_ROOT``, at their creation path, then in the
    working folder; a file whose content is not the study's is refused here, before any trial.
    ``preloaded``: the training and test data the caller already read for this spec (the CLI
    reads them to fingerprint a new study), used when their fingerprints are the spec's.
    """
    from tuner.data._loaders import locate

    d = spec.data
    path = test_path = None
    if d.path:
        path = locate(d.path, d.relative_path)
        d.fingerprint = _same_content(path, d, d.fingerprint, "data file")
    if d.test_file:
        test_path = locate(d.test_file, d.test_relative_path, "test file")
        d.test_fingerprint = _same_content(test_path, d, d.test_fingerprint, "test file")
    have, have_test = preloaded if preloaded is not None else (None, None)
    if have is not None and have.fingerprint == d.fingerprint and \
            (have_test.fingerprint if have_test is not None else "") == (d.test_fingerprint if d.test_file else ""):
        return prepare(have, val_size=d.val_size, test_size=d.test_size, seed=d.seed, test_raw=have_test)
    raw = load_data(path, dataset=d.dataset, target=d.target, text_column=d.text_column, encoding=d.encoding,
                    fmt=d.fmt, n_features=d.n_features, zero_based=d.zero_based)
    if d.dataset:
        if d.fingerprint and raw.fingerprint != d.fingerprint:
            raise ConfigError(f"The bundled dataset {d.dataset!r} differs from the one this study was created "
                              "with; start a new study with a new --study name.")
        d.fingerprint = raw.fingerprint
    test_raw = None
    if test_path is not None:
        test_raw = load_data(test_path, target=d.target, text_column=d.text_column, encoding=d.encoding, fmt=d.fmt,
                             n_features=d.n_features or (raw.X.shape[1] if raw.fmt == "svmlight" else None),
                             zero_based=raw.zero_based)
    return prepare(raw, val_size=d.val_size, test_size=d.test_size, seed=d.seed, test_raw=test_raw)


def _same_content(path: Any, d: Any, stored: str, what: str) -> str:
    """The fingerprint of the file at ``path``, refused when the study stored another one."""
    from tuner.data._loaders import file_fingerprint

    now = file_fingerprint(path, fmt=d.fmt, target=d.target, text_column=d.text_column, encoding=d.encoding)
    if stored and now != stored:
        raise ConfigError(
            f"The {what} {path} differs from the one this study was created with (fingerprint {now} != "
            f"{stored}); give this machine the study's file (TUNER_DATA_ROOT says where the data is), or start "
            "a new study with a new --study name."
        )
    return now


def train_config(spec: StudySpec) -> TrainConfig:
    return TrainConfig(seed=spec.seed, **spec.train)


class _MetricCallback(Callback):
    """Adds ``val_<metric>`` to the epoch logs (from the validation probabilities)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if self.metric == "log_loss":
            logs["val_log_loss"] = logs["val_loss"]
            return
        proba = state.val_proba()
        logs[f"val_{self.metric}"] = evaluate(state.y_val, proba, state.n_classes)[self.metric]


class _PruningCallback(Callback):
    """Reports the study metric each epoch and raises ``optuna.TrialPruned`` when told to."""

    def __init__(self, trial: Any, metric: str, judge: _PruneJudge | None = None) -> None:
        self.trial, self.metric, self.judge = trial, metric, judge
        self.values: dict[int, float] = {}

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        import optuna

        value = logs[f"val_{self.metric}"]
        if not math.isfinite(value):
            return
        step = int(logs["epoch"])
        self.trial.report(value, step)
        self.values[step] = value
        if self.judge.should_prune(self.trial, self.values) if self.judge else self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {step} (val_{self.metric}={value:.6g})")


class _PruneJudge:
    """``trial.should_prune()`` without re-reading every running trial from the storage.

    Optuna's ``should_prune`` refreshes all unfinished trials (with their intermediate values)
    from the database on every call; with K trials side by side that is K reads per report and
    K squared per epoch (17 ms a report on a9a, a sixth of a study's time). A percentile
    (median) pruner needs only the completed trials and the trial's own values: those are
    kept here and the completed list is re-read once after each trial is told. Other pruners
    (Hyperband keeps its own brackets in the study) go through ``should_prune``.
    """

    def __init__(self, study: Any) -> None:
        self.study = study
        self._completed: list[Any] | None = None

    def invalidate(self) -> None:
        self._completed = None

    @property
    def direction(self) -> Any:
        return self.study.direction

    def get_trials(self, deepcopy: bool = False, states: Any = None) -> list[Any]:
        from optuna.trial import TrialState

        if states is not None and tuple(states) == (TrialState.COMPLETE,):
            if self._completed is None:
                self._completed = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            return self._completed
        return self.study.get_trials(deepcopy=deepcopy, states=states)

    def should_prune(self, trial: Any, values: Mapping[int, float]) -> bool:
        import optuna
        from optuna.trial import FrozenTrial, TrialState

        pruner = self.study.pruner
        if isinstance(pruner, optuna.pruners.NopPruner):
            return False
        if not isinstance(pruner, optuna.pruners.PercentilePruner):
            return bool(trial.should_prune())
        view = FrozenTrial(number=trial.number, state=TrialState.RUNNING, value=None, datetime_start=None,
                           datetime_complete=None, params={}, distributions={}, user_attrs={}, system_attrs={},
                           intermediate_values=dict(values), trial_id=trial._trial_id)
        return bool(pruner.prune(self, view))  # type: ignore[arg-type]


@dataclass
class StudyResult:
    """What a finished (or interrupted) study run produced."""

    study_name: str
    storage_url: str
    metric: str
    direction: str
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_outcome: TrainOutcome | None
    interrupted: str | None = None
    warnings: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    no_result: str | None = None
    """Set when trials ran here but the study has no completed trial (all pruned): why."""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "study": self.study_name, "storage": redact(self.storage_url), "metric": self.metric,
            "direction": self.direction, "trials": self.counts, "best_trial": self.best_number,
            "best_value": self.best_value, "best_params": self.best_params, "elapsed_seconds": round(self.elapsed, 2),
        }
        if self.best_outcome is not None:
            o = self.best_outcome
            out.update(test=o.test_metrics, validation=o.val_metrics, n_nonzero_weights=o.result.n_nonzero,
                       n_weights=int(o.result.weight.size), penalty=o.model.info["penalty"],
                       optimizer=o.model.info["optimizer"])
        if self.interrupted:
            out["interrupted"] = self.interrupted
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def _counts(study: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return {s.name.lower(): sum(t.state == s for t in trials)
            for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}


class _StopRequest:
    """Set by SIGINT/SIGTERM; acted on at the next safe point (an epoch end, a trial start).

    Deferring keeps a signal from landing inside a database write; a second signal while
    one is pending interrupts at once, except in a ``critical`` part (registering the best
    model), which always runs to its end.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.critical = False

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)


class _StopCallback(Callback):
    def __init__(self, request: _StopRequest) -> None:
        self.request = request

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        self.request.check()


@contextmanager
def _deferred_signals(request: _StopRequest) -> Iterator[None]:
    """While searching, SIGINT and SIGTERM ask the study to stop at the next safe point."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if request.signum is not None and not request.critical:
            raise Interrupted(signum)
        request.signum = request.signum or signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _plugin_versions(spec: StudySpec) -> dict[str, str]:
    out = {}
    for n in spec.penalties:
        i = penalties.info(n)
        out[f"penalty:{n}"] = f"{i.distribution}=={i.version}"
    for n in spec.optimizers:
        i = optimizers.info(n)
        out[f"optimizer:{n}"] = f"{i.distribution}=={i.version}"
    return out


def _note_plugin_changes(study: Any, stored: StudySpec) -> list[str]:
    """Warn about (and record) plugins whose installed version changed since the study started."""
    warnings: list[str] = []
    now = _plugin_versions(stored)
    changed = {k: (stored.plugin_versions.get(k), v) for k, v in now.items() if stored.plugin_versions.get(k) != v}
    if changed:
        for k, (old, new) in changed.items():
            warnings.append(f"plugin {k} changed from {old} to {new} since the study started")
        history = list(study.user_attrs.get("plugin_version_changes", []))
        history.append({"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "changes": {k: list(v) for k, v in changed.items()}})
        study.set_user_attr("plugin_version_changes", history)
        stored.plugin_versions = now
        study.set_user_attr("spec", stored.to_json())
    return warnings


def _load_study(storage: Any, study_name: str) -> Any | None:
    import optuna

    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None


def _stored_spec(study: Any, study_name: str, storage_url: str) -> StudySpec:
    for _ in range(50):  # a study just created by another worker gets its spec a moment later
        if "spec" in study.user_attrs:
            break
        time.sleep(0.1)
    if "spec" not in study.user_attrs:
        raise ConfigError(f"Study {study_name!r} in {storage_url} was not created by tuner (it has no spec).")
    return StudySpec.from_json(study.user_attrs["spec"])


def resume_spec(stored: StudySpec, spec: StudySpec | None, changes: Mapping[str, Any] | None,
                study_name: str) -> StudySpec:
    """The stored spec, after checking that nothing asked for now contradicts it.

    ``changes`` are the options given explicitly (spec keys, see :meth:`StudySpec.with_changes`);
    ``spec`` (when the data was given) contributes its data fingerprint. With ``changes`` None,
    the whole ``spec`` is compared. Only the budget (``n_trials``, ``timeout``) may change.
    """
    if changes is None:
        wanted = spec
    else:
        wanted = stored.with_changes(changes)
        if spec is not None:  # the data was read now: its content, not its path, must match
            wanted.data.fingerprint = spec.data.fingerprint
            if "data.test_file" in changes and hasattr(spec.data, "test_fingerprint"):
                wanted.data.test_fingerprint = spec.data.test_fingerprint
                if wanted.data.test_file and stored.data.test_file:
                    wanted.data.test_file = stored.data.test_file
    diffs = stored.differences(wanted) if wanted is not None else []
    if diffs:
        raise ConfigError(
            f"Study {study_name!r} was created with different options, refusing to mix trials ("
            + "; ".join(diffs) + f"). Only {RESUMABLE} may change on resume: resume with "
            f"`tuner tune --study {study_name}` (and those options), or choose a new --study name."
        )
    return stored


RESUMABLE = "the budget (--trials, --timeout), --batch-trials and the output options (--json, --quiet, --storage, --tracking-uri, " \
            "--no-tracking)"


def open_or_create_study(spec: StudySpec | None, study_name: str, storage_url: str,
                         resume_only: bool = False, changes: Mapping[str, Any] | None = None,
                         new_only: bool = False, storage: Any = None) -> tuple[Any, StudySpec, list[str]]:
    """Load the study (checking ``spec`` against the stored one) or create it with ``spec``.

    ``storage``: an Optuna storage already opened on ``storage_url`` (default: open one).

    ``new_only``: the name was made up for a new study, so an existing one is an error, never
    joined (two processes started in the same second would otherwise share one study).
    """
    import optuna

    storage = open_storage(storage_url) if storage is None else storage
    study, stored = _existing(storage, study_name, storage_url, spec, changes, new_only)
    if study is not None:
        if spec is not None:
            stored.n_trials, stored.timeout = spec.n_trials, spec.timeout
        return study, stored, _note_plugin_changes(study, stored)
    if resume_only or spec is None:
        raise ConfigError(f"No study named {study_name!r} in {storage_url}; give data (DATA or --dataset) to create it.")
    spec.plugin_versions = _plugin_versions(spec)
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, direction=METRICS[spec.metric])
    except optuna.exceptions.DuplicatedStudyError:
        if new_only:
            raise ConfigError(_taken(study_name)) from None
        # Another worker created it between our load and create: join it like a resume.
        return open_or_create_study(spec, study_name, storage_url, resume_only=True, changes=changes,
                                    storage=storage)
    study.set_user_attr("spec", spec.to_json())
    study.set_user_attr("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
    return study, spec, []


def _existing(storage: Any, study_name: str, storage_url: str, spec: StudySpec | None,
              changes: Mapping[str, Any] | None, new_only: bool) -> tuple[Any, StudySpec | None]:
    """The stored study and its spec with ``changes`` checked (see :func:`resume_spec`), or
    ``(None, None)``; a stored study is refused when ``new_only``."""
    study = _load_study(storage, study_name)
    if study is None:
        return None, None
    if new_only:
        raise ConfigError(_taken(study_name))
    return study, resume_spec(_stored_spec(study, study_name, storage_url), spec, changes, study_name)


def _taken(study_name: str) -> str:
    return (f"A study named {study_name!r} already exists (another process started one in the same second?); "
            f"choose a name with --study NAME, or resume that one with --study {study_name}.")


def _check_budget(n_trials: int | None, timeout: float | None) -> None:
    if n_trials is not None and (not isinstance(n_trials, int) or n_trials < 0):
        raise ConfigError(f"The 'trials' parameter of tune must be an integer >= 0; got {n_trials!r} instead.")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"The 'timeout' parameter of tune must be a number of seconds > 0; got {timeout!r} instead.")


def _check_data(spec: StudySpec, data: Dataset) -> None:
    """Refuse data on which no trial could be compared (before any trial is stored)."""
    from tuner.errors import DataError

    if spec.metric == "roc_auc" and data.n_classes > 2:
        raise ConfigError("The roc_auc metric is for binary targets; use f1 (macro F1) or log_loss for multiclass.")
    if len(data.y_val) == 0:
        raise ConfigError("A study needs a validation split to compare trials; use --val-size > 0.")
    if spec.cv:
        cv_folds(data.y_train, spec.cv, spec.data.seed)  # too many folds for the rows: refused before any trial
    present = np.unique(data.y_val)
    if len(present) < 2:
        raise DataError(
            f"The validation split ({len(data.y_val)} rows) holds a single class ({data.classes[int(present[0])]!r}), "
            f"so every trial's validation {spec.metric} would be meaningless; use a larger --val-size or more data.")


def _exact_solvers_for_small_data(spec: StudySpec, data: Dataset) -> list[str]:
    """On data this small (at most ``GAP_CHECK_WORK`` stored training values), the default
    search keeps only the full-batch solvers: they reach each penalty's exact optimum in
    milliseconds, where a mini-batch optimizer gets a few steps an epoch and is pruned as not
    converged (budget spent on models that could never win). Applies only when the user did not
    choose the optimizers; returns the notice for the summary."""
    from tuner.study._configure import GAP_CHECK_WORK

    if work_size(data.X_train) > GAP_CHECK_WORK:
        return []
    exact = [n for n in spec.optimizers if optimizers.get(n).full_batch]
    left_out = [n for n in spec.optimizers if n not in exact]
    if not exact or not left_out:
        return []
    spec.optimizers = exact
    return [f"the training data is small ({work_size(data.X_train):,} stored values), so the search uses the exact "
            f"full-batch solvers ({', '.join(exact)}); give --optimizer to search {', '.join(left_out)} too"]


def _check_training(config: TrainConfig) -> None:
    from tuner.train._device import Placement

    config.check()
    Placement.resolve(config.device, config.dtype)  # --device cuda without CUDA, --device bogus


def run_study(spec: StudySpec | None, study_name: str, storage_url: str, *,
              observers: Sequence[StudyObserver] = (), progress: Callable[[dict[str, Any]], None] | None = None,
              resume_only: bool = False, refit_best: bool = True, n_trials: int | None = None,
              timeout: float | None = None, changes: Mapping[str, Any] | None = None,
              new_only: bool = False, batch_trials: int | str | None = None,
              preloaded: tuple[Any, Any] | None = None) -> StudyResult:
    """Create or resume ``study_name`` and run trials until its budget; refit and test the best.

    ``batch_trials``: trials asked at once and trained side by side where their plugins allow
    (an int, ``"auto"``, or None for one at a time); see :mod:`tuner.study._trial_batches`.
    ``preloaded``: the data already read for ``spec`` (see :func:`load_dataset_for`).

    ``n_trials`` / ``timeout`` given here replace the stored budget (the budget counts the
    study's complete and pruned trials, whichever process ran them). ``changes`` are the
    options the user gave explicitly (see :func:`resume_spec`). Data, split, training options
    and observers (tracking) are checked before a new study is stored, so a refused start
    leaves nothing behind. ``new_only`` refuses an existing study (see :func:`open_or_create_study`).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported in one line each, below
    started = time.time()
    _check_budget(n_trials, timeout)
    storage = open_storage(storage_url)
    study, resumed = _existing(storage, study_name, storage_url, spec, changes, new_only)
    if study is not None:
        spec = resumed
    elif resume_only or spec is None:
        raise ConfigError(f"No study named {study_name!r} in {storage_url}; give data (DATA or --dataset) to create it.")
    spec = StudySpec.from_json(spec.to_json())
    if n_trials is not None:
        spec.n_trials = n_trials
    if timeout is not None:
        spec.timeout = timeout
    data = load_dataset_for(spec, preloaded)
    del preloaded  # the split holds what is needed; a large matrix is not kept twice
    _check_data(spec, data)
    if study is None and changes is not None and "optimizers" not in changes:
        warnings_small = _exact_solvers_for_small_data(spec, data)
    else:
        warnings_small = []
    space = build_space(spec)
    config = train_config(spec)
    _check_training(config)
    for obs in observers:
        obs.check()
    warnings: list[str] = []
    if study is None:
        study, spec, warnings = open_or_create_study(spec, study_name, storage_url, changes=changes,
                                                     new_only=new_only, storage=storage)  # the budget is in spec
    else:
        warnings = _note_plugin_changes(study, spec)
    warnings = warnings_small + warnings
    if study.user_attrs.get("spec") != spec.to_json():
        study.set_user_attr("spec", spec.to_json())  # workers joining later see the new budget
    stop = _StopRequest()
    with _deferred_signals(stop):  # from the moment the study is stored, a signal waits for a safe point
        return _run(study, storage, storage_url, spec, space, data, config, observers, progress, refit_best,
                    warnings, started, stop, batch_trials)


def _run(study: Any, storage: Any, storage_url: str, spec: StudySpec, space: SearchSpace, data: Dataset,
         config: TrainConfig, observers: Sequence[StudyObserver],
         progress: Callable[[dict[str, Any]], None] | None, refit_best: bool, warnings: list[str],
         started: float, stop: _StopRequest, batch_trials: int | str | None = None) -> StudyResult:
    """The study loop of :func:`run_study`, once everything was checked and the study is stored."""
    import optuna
    from optuna.trial import TrialState

    study_name = study.study_name
    direction = METRICS[spec.metric]
    info = StudyInfo(study_name, storage_url, json.loads(spec.to_json()), direction, spec.metric,
                     dict(study.user_attrs))
    for obs in observers:
        for k, v in obs.on_study_start(info).items():
            study.set_user_attr(k, v)
            info.user_attrs[k] = v
    study.sampler = seeded_sampler(lambda s: make_sampler(spec.sampler, s, space), spec.seed)
    study.pruner = make_pruner(spec.pruner, config.epochs)

    def on_lost(trial: Any) -> None:
        reason = trial.user_attrs.get("fail_reason") or "lost: its worker sent no heartbeat (killed or cut off)"
        for obs in observers:
            obs.on_trial_lost(info, trial.number, reason)

    def queue_retry(trial: Any) -> int | None:
        """A WAITING copy of a lost trial (same parameters), once: a retry is not retried again."""
        if "failed_trial" in trial.system_attrs:
            return None
        if spec.n_trials is not None and budget.done() >= spec.n_trials:
            return None  # nothing left to retry it for
        user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in TRIAL_OUTCOME_ATTRS}
        user_attrs["retry_of"] = trial.number  # the retry starts clean, saying what it retries
        template = optuna.trial.create_trial(  # what Optuna's RetryHeartbeatStaleTrialCallback queues
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions, user_attrs=user_attrs,
            system_attrs={"failed_trial": trial.number, "retry_history": [trial.number]})
        return int(storage.create_new_trial(study._study_id, template_trial=template))

    find_stale = own_stale_check(storage)
    fail_stale = lambda: fail_stale_trials(study, storage, find_stale, queue_retry, on_lost)  # noqa: E731

    budget = Budget(study, spec.n_trials, None if spec.timeout is None else started + spec.timeout, stop.check,
                    fail_stale)

    judge = _PruneJudge(study)

    def search_callbacks(trial: Any) -> list[Callback]:
        if spec.cv:  # the folds' scores go to the pruner once they are trained (prune_on_folds)
            return [_MetricCallback(spec.metric), _StopCallback(stop)]
        return [_MetricCallback(spec.metric), _PruningCallback(trial, spec.metric, judge), _StopCallback(stop)]

    def prune_on_folds(trial: Any, scores: list[float]) -> int | None:
        values: dict[int, float] = {}
        for fold, score in enumerate(scores):
            if not math.isfinite(score):
                continue
            trial.report(score, fold)
            values[fold] = score
            if judge.should_prune(trial, values):
                return fold
        return None

    folds = cv_folds(data.y_train, spec.cv, spec.data.seed) if spec.cv else None
    runner = TrialBatches(space, data, config, observers, info, spec.metric, search_callbacks, VARIANT, direction,
                          folds, prune_on_folds)
    catch = (TunerError, RuntimeError, ValueError, ArithmeticError, GaveUp)

    def heartbeat(trial: Any) -> Any:
        from optuna.storages._heartbeat import get_heartbeat_thread  # what Study.optimize uses per trial

        return get_heartbeat_thread(trial._trial_id, storage)

    def tell(trial: Any, compute: Callable[[], float]) -> bool:
        """Tell Optuna how ``trial`` ended (``compute()`` returns its value or raises, as an
        objective would); False when the study should stop. Errors outside ``catch`` propagate
        after the trial is failed, as in ``Study.optimize``."""
        state, value, error = TrialState.COMPLETE, None, None
        try:
            value = compute()
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except BaseException as exc:  # noqa: BLE001 - the trial fails with its reason; see below
            state, error = TrialState.FAIL, exc
            try:
                if trial.user_attrs.get("fail_reason") is None:
                    trial.set_user_attr("fail_reason", _fail_reason(exc))
            except optuna.exceptions.UpdateFinishedTrialError:
                pass
        try:
            frozen = study.tell(trial, value, state=state) if state == TrialState.COMPLETE else \
                study.tell(trial, state=state)
        except optuna.exceptions.UpdateFinishedTrialError:
            # our heartbeat came late (a starved machine): another worker failed this
            # process's trial as lost and retries it; carry on with the next one
            warnings.append("a trial of this process was failed as lost by another worker (its "
                            "heartbeat was late) and retried there; raise TUNER_HEARTBEAT_GRACE")
            frozen = None
        if error is not None and not isinstance(error, catch):
            raise error
        judge.invalidate()  # the completed trials may have changed
        return True if frozen is None else on_trial(study, frozen)

    def ask_batch() -> list[Any]:
        """Up to ``batch_trials`` new trials (fewer when the budget has less room), prepared."""
        asked: list[Any] = []
        for _ in range(batch_size_for(batch_trials, budget.room(), work_size(data.X_train))):
            stop.check()
            with warnings_module.catch_warnings():  # heartbeats are kept by run_batch, as optimize would
                warnings_module.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
                trial = study.ask()
            trial.set_user_attr("worker", WORKER)
            if not budget.claim(trial.number):
                trial.set_user_attr("fail_reason", GAVE_UP + " (started with other workers; not counted)")
                tell(trial, _raiser(GaveUp(GAVE_UP)))
                break
            try:
                asked.append(runner.prepare(trial))
            except BaseException as exc:  # noqa: BLE001 - an observer or sampler failed this trial
                tell(trial, _raiser(exc))
        return asked

    def run_batch(asked: list[Any]) -> bool:
        """Train the asked trials group by group and tell each; False when the study should stop."""
        keep = True
        untold = list(asked)
        for group in runner.groups(asked):
            try:
                results = runner.train(group, heartbeat)
            except catch as exc:  # the group failed as a whole (a plugin's build): its trials fail, the study goes on
                for pend in group:
                    untold.remove(pend)
                    keep = tell(pend.trial, _failed_with(runner, pend, exc)) and keep
                continue
            except BaseException as exc:  # an interrupt stops every trial not yet told
                for pend in untold:
                    try:
                        tell(pend.trial, _failed_with(runner, pend, exc))
                    except BaseException:  # noqa: BLE001 - tell re-raises the interrupt: the next trial still fails
                        pass
                raise
            for pend, result in zip(group, results):
                untold.remove(pend)
                keep = tell(pend.trial, lambda pend=pend, result=result: runner.conclude(
                    pend, result, optuna.TrialPruned)) and keep
        return keep

    mine: dict[int, tuple[str, str | None]] = {}  # this process's trials: number -> (state, fail reason)

    def on_trial(study_: Any, trial: Any) -> bool:
        """After each trial: fail lost trials, report progress; False when the study should stop."""
        fail_stale()  # before the next trial starts, as Optuna would (but with the reason)
        reason = trial.user_attrs.get("fail_reason") if trial.state == TrialState.FAIL else None
        if not (reason or "").startswith(GAVE_UP):
            mine[trial.number] = (trial.state.name, reason)
        if progress is not None:
            try:
                best = study_.best_value
            except ValueError:
                best = None
            quiet = (reason or "").startswith((GAVE_UP, "interrupted"))  # not failures of the trial itself
            progress({"done": budget.done(), "total": spec.n_trials, "best": best, "elapsed": time.time() - started,
                      "last_state": trial.state.name, "number": trial.number, "reason": None if quiet else reason})
        # (the budget is checked before the next batch: the rest of this one is already running)
        return not (stop.signum is not None or len(failure_streak(mine)) >= FAIL_STREAK)

    interrupted: str | None = None
    best_trial, best_outcome, ended = None, None, False
    try:
        with _deferred_signals(stop):
            try:
                fail_stale()
                while budget.wait_for_room():
                    asked = ask_batch()
                    if asked and not run_batch(asked):
                        break
            except Interrupted as exc:
                interrupted = str(exc)
            except KeyboardInterrupt:
                interrupted = "SIGINT"
            if interrupted is None and stop.signum is not None:  # stopped between trials
                interrupted = signal.Signals(stop.signum).name
            best_trial = _best_trial(study)
            if interrupted is None:
                raise_if_failing(study_name, mine)
            if best_trial is not None and refit_best and interrupted is None:
                best_outcome, interrupted = _refit_and_end(study, space, data, config, best_trial, observers, info,
                                                           stop, runner.outcome_of(best_trial.number))
                ended = best_outcome is not None
    except TunerError as exc:
        for obs in observers:
            obs.on_study_stop(info, "FAILED", str(exc))
        raise
    if not ended:
        for obs in observers:
            obs.on_study_stop(info, "KILLED" if interrupted else "FINISHED",
                              f"interrupted by {interrupted}" if interrupted else None)
    return StudyResult(study_name, storage_url, spec.metric, direction, _counts(study),
                       best_trial.number if best_trial else None, best_trial.value if best_trial else None,
                       dict(best_trial.params) if best_trial else {}, best_outcome, interrupted,
                       warnings + budget_warnings(budget, spec, mine), time.time() - started,
                       no_result=none_completed(study) if best_trial is None and mine and not interrupted else None)


def _fail_reason(exc: BaseException) -> str:
    if isinstance(exc, Interrupted):
        return f"interrupted by {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by SIGINT"
    return f"{type(exc).__name__}: {exc}"


def _raiser(exc: BaseException) -> Callable[[], float]:
    """An objective that fails with ``exc`` (a trial that failed before training)."""
    def compute() -> float:
        raise exc
    return compute


def _failed_with(runner: TrialBatches, pend: Any, exc: BaseException) -> Callable[[], float]:
    """An objective for a trial whose group failed or was interrupted as a whole: its observers
    hear why, then it fails with ``exc``."""
    def compute() -> float:
        runner.finish(pend, "FAIL", None, None, _fail_reason(exc))
        raise exc
    return compute


def _best_trial(study: Any) -> Any | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def _refit_and_end(study: Any, space: SearchSpace, data: Dataset, config: TrainConfig, best_trial: Any,
                   observers: Sequence[StudyObserver], info: StudyInfo, stop: _StopRequest,
                   known: TrainOutcome | None = None) -> tuple[TrainOutcome | None, str | None]:
    """Refit the best configuration (unless this process trained it: ``known``, its outcome)
    and let the observers register it.

    A signal during the refit stops it (nothing is registered); one during the end of the
    study (registration) waits until that is done, so the champion stays consistent.
    Returns the outcome (None when interrupted) and the signal's name, if any.
    """
    variant = best_trial.params[VARIANT]
    pn, on = variant.split(":")
    pp, op = _params_of(space, best_trial)
    try:
        stop.check()
        best_outcome = known or train_one(data, pn, on, pp, op, config, [_StopCallback(stop)])
    except Interrupted as exc:
        return None, str(exc)
    history = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
               for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    binfo = TrialInfo(best_trial.number, pn, on, dict(best_trial.params), pp, op, dict(best_trial.user_attrs))
    stop.critical = True
    try:
        study.set_user_attr("best_test_metrics", best_outcome.test_metrics)
        for obs in observers:
            for k, v in obs.on_study_end(info, binfo, best_outcome, history).items():
                study.set_user_attr(k, v)
    finally:
        stop.critical = False
    return best_outcome, None if stop.signum is None else signal.Signals(stop.signum).name


def _params_of(space: SearchSpace, trial: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plugin hyperparameters of a finished trial (fixed slots included)."""
    variant = trial.params[VARIANT]
    pp, op = {}, {}
    for s in space.slots[variant]:
        value = s.fixed if s.is_fixed else trial.params[s.name]
        (pp if s.kind == "penalty" else op)[s.hp] = value
    return pp, op

