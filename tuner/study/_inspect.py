"""Reading stored studies: the queries behind ``tuner study list/show/best/export/delete`` and
``sync-mlflow``, with Optuna-free results.

Every function takes a storage URL (None: the default study database) and a study name, and
returns plain data (:class:`StudyRecord`, :class:`TrialRecord`, dicts, text), so the CLI and
tracking never touch Optuna objects. A store that is only read is opened read-only (see
:func:`tuner.study._storage.open_storage`). A missing study is a :class:`ConfigError` that
lists the studies the database holds.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tuner._json import dumps
from tuner.errors import ConfigError, TunerError
from tuner.study._importance import history_importances, importance_left_out
from tuner.study._naming import public_params
from tuner.study._runs import given_up, stale_trial_ids
from tuner.study._storage import default_storage_url, open_storage

__all__ = ["TrialRecord", "StudyRecord", "StudyOverview", "list_studies", "study_record", "trial_records",
           "study_overview", "best_record", "top_records", "param_importances", "export_trials", "delete_study",
           "set_study_attrs", "MIN_TRIALS_FOR_IMPORTANCE"]

MIN_TRIALS_FOR_IMPORTANCE = 5
"""``study show`` computes parameter importances from this many complete trials on."""


@dataclass(frozen=True)
class TrialRecord:
    """One stored trial, as plain data.

    ``state`` is Optuna's state name (COMPLETE, PRUNED, FAIL, RUNNING, WAITING); ``value`` the
    study metric of a complete trial; ``intermediate_values`` the metric reported per epoch
    (or per fold with cross-validation). ``public_params`` are the trial's hyperparameters by
    the names a user sees (``penalty``, ``optimizer``, ``optimizer.lr``; fixed ones included;
    see :func:`~tuner.study.public_params`): what every output shows. ``params`` are the
    parameters as Optuna stores them (``variant``, ``optimizer.lbfgs.lr``): internal names, for
    code that rebuilds the trial (:func:`~tuner.study.params_of`).
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    intermediate_values: dict[int, float] = field(default_factory=dict)
    datetime_start: datetime | None = None
    datetime_complete: datetime | None = None
    values: list[float] | None = None
    public_params: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """COMPLETE, PRUNED or FAIL: the trial will not change any more."""
        return self.state in ("COMPLETE", "PRUNED", "FAIL")

    def to_dict(self) -> dict[str, Any]:
        """The JSON row of ``tuner study show/best/export --format json`` (with ``values`` for a trial
        of a multi-objective study, whose ``value`` is None)."""
        row: dict[str, Any] = {"number": self.number, "state": self.state, "value": self.value,
                               "params": dict(self.public_params),
                               "user_attrs": dict(self.user_attrs),
                               "datetime_start": self.datetime_start.isoformat() if self.datetime_start else None,
                               "datetime_complete": self.datetime_complete.isoformat()
                               if self.datetime_complete else None}
        if self.values is not None and len(self.values) > 1:
            row["values"] = list(self.values)
        return row


@dataclass(frozen=True)
class StudyRecord:
    """One stored study, as plain data.

    ``direction`` is ``"minimize"`` or ``"maximize"`` (for a multi-objective study, which tuner
    does not create, its ``directions`` joined by commas: ``"minimize,maximize"``, and the study
    has no best value); ``spec`` the stored
    :class:`~tuner.study.StudySpec` as a dict (empty for a study tuner did not create);
    ``counts`` the trials by lower-case state name, plus ``stale``: running trials whose worker
    stopped sending heartbeats (they fail and run again when the next trial starts), and
    ``given_up``: failed trials that never trained (a budget or timeout ran out; not counted).
    """

    name: str
    direction: str
    user_attrs: dict[str, Any]
    spec: dict[str, Any]
    counts: dict[str, int]
    best_value: float | None = None
    created: str | None = None
    directions: tuple[str, ...] = ()

    @property
    def n_objectives(self) -> int:
        """How many values each trial has (1 for every study tuner creates)."""
        return len(self.directions) or 1

    @property
    def metric(self) -> str | None:
        """The study metric named by the spec (None for a study tuner did not create)."""
        return self.spec.get("metric")

    @property
    def has_spec(self) -> bool:
        return "spec" in self.user_attrs

    def to_dict(self) -> dict[str, Any]:
        """The JSON row of ``tuner study list --json``."""
        return {"name": self.name, "direction": self.direction, "directions": list(self.directions or [self.direction]),
                "metric": self.metric, "trials": dict(self.counts), "best_value": self.best_value,
                "created": self.created}


def _url(storage_url: str | None) -> str:
    return storage_url or default_storage_url()


def _quiet_optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _load(storage: Any, name: str) -> Any:
    optuna = _quiet_optuna()
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in storage.get_all_studies()]
        raise ConfigError(f"No study named {name!r}. Studies in this database: {', '.join(names) or 'none'}.") \
            from None


def _record(t: Any, space: Any = None) -> TrialRecord:
    return TrialRecord(t.number, t.state.name, t.value if t.values is None or len(t.values) == 1 else None,
                       dict(t.params), dict(t.user_attrs), dict(t.intermediate_values), t.datetime_start,
                       t.datetime_complete, list(t.values) if t.values is not None else None,
                       public_params(t.params, space))


def _space_of(study: Any) -> Any:
    """The search space of a study tuner created (for its fixed hyperparameters), or None when it
    cannot be rebuilt here (no spec, or a plugin of the spec is not installed)."""
    raw = study.user_attrs.get("spec")
    if raw is None:
        return None
    from tuner.study._search_space import build_space
    from tuner.study._spec import StudySpec

    try:
        return build_space(StudySpec.from_json(raw if isinstance(raw, str) else json.dumps(raw)))
    except (TunerError, ValueError, KeyError, TypeError):
        return None


def _spec_of(user_attrs: Mapping[str, Any]) -> dict[str, Any]:
    raw = user_attrs.get("spec")
    if raw is None:
        return {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def _counts(trials: Sequence[Any], stale: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    if out.get("running"):
        out["stale"] = stale
    skipped = sum(given_up(t) for t in trials)
    if skipped:
        out["given_up"] = skipped
    return out


def _stale(url: str, study: Any, trials: Sequence[Any]) -> int:
    """How many of the study's running trials are past the heartbeat grace period (their worker died)."""
    if not any(t.state.name == "RUNNING" for t in trials):
        return 0
    beating = open_storage(url, writable=False)  # the heartbeat settings the workers use
    return len(stale_trial_ids(beating, study._study_id))


def _study_record(url: str, study: Any, trials: Sequence[Any] | None = None) -> StudyRecord:
    """The record of a loaded study from its trials (read here unless given). Its creation time is
    its first trial's start, as Optuna's study summaries give it (they read every study's trials
    for it), or the spec's ``created`` for a study without a started trial."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    created = min((t.datetime_start for t in trials if t.datetime_start is not None), default=None)
    directions = tuple(d.name.lower() for d in study.directions)  # study.direction raises on several
    done = [t.value for t in trials if t.state.name == "COMPLETE" and t.values is not None and len(t.values) == 1]
    best = (max(done) if directions == ("maximize",) else min(done)) if done and len(directions) == 1 else None
    user_attrs = dict(study.user_attrs)
    return StudyRecord(study.study_name, ",".join(directions), user_attrs, _spec_of(user_attrs),
                       _counts(trials, _stale(url, study, trials)), best,
                       created.isoformat(timespec="seconds") if created else user_attrs.get("created"), directions)


def list_studies(storage_url: str | None = None) -> list[StudyRecord]:
    """Every study in the database: name, direction, spec, trials by state, best value, creation time."""
    url = _url(storage_url)
    optuna = _quiet_optuna()
    storage = open_storage(url, heartbeat=False, writable=False)
    return [_study_record(url, optuna.load_study(study_name=s.study_name, storage=storage))
            for s in storage.get_all_studies()]


def study_record(storage_url: str | None, study_name: str) -> StudyRecord:
    """One study (a :class:`ConfigError` naming the others when there is none called ``study_name``)."""
    url = _url(storage_url)
    return _study_record(url, _load(open_storage(url, heartbeat=False, writable=False), study_name))


def trial_records(storage_url: str | None, study_name: str, states: Sequence[str] | None = None) -> list[TrialRecord]:
    """The study's trials in number order, as :class:`TrialRecord`; ``states`` (e.g. ``["COMPLETE"]``) filters."""
    study = _load(open_storage(_url(storage_url), heartbeat=False, writable=False), study_name)
    wanted = {s.upper() for s in states} if states is not None else None
    space = _space_of(study)
    return [_record(t, space) for t in study.get_trials(deepcopy=False) if wanted is None or t.state.name in wanted]


@dataclass(frozen=True)
class StudyOverview:
    """What ``tuner study show`` prints, read from the store once: the study, its trials in number
    order, the parameter importances of its complete ones (empty below
    :data:`MIN_TRIALS_FOR_IMPORTANCE`; see :func:`param_importances`) and, when there are any,
    the hyperparameters they could not weigh (:func:`~tuner.study.importance_left_out`)."""

    record: StudyRecord
    trials: list[TrialRecord]
    importances: dict[str, float]
    importances_left_out: list[str]


def study_overview(storage_url: str | None, study_name: str,
                   min_trials: int = MIN_TRIALS_FOR_IMPORTANCE) -> StudyOverview:
    """:func:`study_record`, :func:`trial_records` and :func:`param_importances` of one study from a
    single read of its trials (each of the three alone reads them all again)."""
    url = _url(storage_url)
    study = _load(open_storage(url, heartbeat=False, writable=False), study_name)
    stored = study.get_trials(deepcopy=False)
    record = _study_record(url, study, stored)
    space = _space_of(study)
    trials = [_record(t, space) for t in stored]
    history = [{"number": t.number, "state": t.state, "value": t.value, "params": t.params} for t in trials]
    importances = _importances(record.directions, history, min_trials)
    return StudyOverview(record, trials, importances, importance_left_out(history) if importances else [])


def best_record(storage_url: str | None, study_name: str) -> TrialRecord | None:
    """The study's best complete trial (Optuna's ``best_trial``), or None before the first one.

    A multi-objective study (not one tuner creates) has no single best trial: a :class:`ConfigError`.
    """
    study = _load(open_storage(_url(storage_url), heartbeat=False, writable=False), study_name)
    if len(study.directions) > 1:
        directions = ", ".join(d.name.lower() for d in study.directions)
        raise ConfigError(f"Study {study_name!r} has {len(study.directions)} objectives ({directions}), so it has no "
                          f"single best trial; `tuner study export {study_name}` lists every trial's values.")
    try:
        best = study.best_trial
    except ValueError:
        return None
    return _record(best, _space_of(study))


def top_records(trials: Sequence[TrialRecord], direction: str, k: int | None = None) -> list[TrialRecord]:
    """The complete trials with a finite value, best first for ``direction``; the first ``k`` of them."""
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    ranked = sorted(done, key=lambda t: float(t.value or 0.0), reverse=direction.lower() == "maximize")
    return ranked if k is None else ranked[:k]


def param_importances(storage_url: str | None, study_name: str,
                      min_trials: int = MIN_TRIALS_FOR_IMPORTANCE) -> dict[str, float]:
    """fANOVA parameter importances of the study's complete trials by public name (``penalty``,
    ``optimizer``, ``optimizer.lr``...), most important first: the numbers the study's MLflow
    parent run logs (:func:`~tuner.study.history_importances`); empty below ``min_trials``
    complete trials or when they cannot be computed. They weigh only the hyperparameters every
    complete trial has (:func:`~tuner.study.importance_left_out` names the others)."""
    study = _load(open_storage(_url(storage_url), heartbeat=False, writable=False), study_name)
    space = _space_of(study)  # the held values too (lbfgs's lr), as the search loop's history has them
    return _importances(tuple(d.name.lower() for d in study.directions),
                        [{"number": t.number, "state": t.state.name, "value": t.value,
                          "params": public_params(t.params, space) if space is not None else t.params}
                         for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"], min_trials)


def _importances(directions: Sequence[str], history: Sequence[Mapping[str, Any]], min_trials: int) -> dict[str, float]:
    """:func:`history_importances` of a single-objective study's history; empty for several
    objectives or when fANOVA cannot weigh them."""
    if len(directions) != 1:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return history_importances(history, directions[0], min_trials=min_trials)
    except (RuntimeError, ValueError):
        return {}


def export_trials(storage_url: str | None, study_name: str, fmt: str = "csv") -> str:
    """Every trial of the study as CSV or JSON, its hyperparameters by public name.

    CSV: one row per trial, one column per value: ``number``, ``state``, ``value``,
    ``datetime_start``, ``datetime_complete``, ``duration_seconds``, then ``params.penalty``,
    ``params.optimizer``, ``params.penalty.strength``, ``params.optimizer.lr``... and the user
    attributes as ``user_attrs.NAME`` (a dict spread into one column per key:
    ``user_attrs.val_metrics.log_loss``). JSON: a list of :meth:`TrialRecord.to_dict` rows.
    """
    if fmt not in ("csv", "json"):
        raise ConfigError(f"The 'fmt' parameter of export_trials must be 'csv' or 'json'; got {fmt!r} instead.")
    study = _load(open_storage(_url(storage_url), heartbeat=False, writable=False), study_name)
    space = _space_of(study)
    records = [_record(t, space) for t in study.get_trials(deepcopy=False)]
    if fmt == "json":
        return dumps([r.to_dict() for r in records], indent=2)
    return _csv(records)


def _csv(records: Sequence[TrialRecord]) -> str:
    """The CSV table of :func:`export_trials` (an empty cell where a trial lacks a column)."""
    rows = []
    for r in records:
        row: dict[str, Any] = {
            "number": r.number, "state": r.state, "value": r.value,
            **({"values": json.dumps(r.values)} if r.values is not None and len(r.values) > 1 else {}),
            "datetime_start": r.datetime_start.isoformat() if r.datetime_start else None,
            "datetime_complete": r.datetime_complete.isoformat() if r.datetime_complete else None,
            "duration_seconds": (r.datetime_complete - r.datetime_start).total_seconds()
            if r.datetime_start and r.datetime_complete else None}
        row.update({f"params.{k}": v for k, v in r.public_params.items()})
        for k, v in r.user_attrs.items():
            if isinstance(v, Mapping):
                row.update({f"user_attrs.{k}.{kk}": _cell(vv) for kk, vv in v.items()})
            else:
                row[f"user_attrs.{k}"] = _cell(v)
        rows.append(row)
    base = ["number", "state", "value", "datetime_start", "datetime_complete", "duration_seconds"]
    seen = list(dict.fromkeys(k for row in rows for k in row)) or base  # a study without trials: the header
    columns = [c for c in seen if not c.startswith(("params.", "user_attrs."))]
    for group in ("params.penalty", "params.optimizer", "params.penalty.", "params.optimizer.", "params."):
        columns += [c for c in seen if c not in columns and (c == group or group.endswith(".") and c.startswith(group))]
    columns += sorted(c for c in seen if c not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A user attribute as one CSV cell: lists and nested dicts as JSON, the rest as is."""
    return json.dumps(value, default=str) if isinstance(value, (list, tuple, Mapping)) else value


def delete_study(storage_url: str | None, study_name: str) -> None:
    """Delete the study and all its trials (a :class:`ConfigError` when there is no such study)."""
    optuna = _quiet_optuna()
    storage = open_storage(_url(storage_url), heartbeat=False, writable=True)
    _load(storage, study_name)
    optuna.delete_study(study_name=study_name, storage=storage)


def set_study_attrs(storage_url: str | None, study_name: str, attrs: Mapping[str, Any]) -> None:
    """Store ``attrs`` as user attributes of the study (e.g. what a sync to MLflow logged)."""
    if not attrs:
        return
    study = _load(open_storage(_url(storage_url), heartbeat=False, writable=True), study_name)
    for k, v in attrs.items():
        study.set_user_attr(k, v)
