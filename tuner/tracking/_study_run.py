"""A study's parent run: its experiment, found again on resume, its summary, plots and end.

One experiment per study, named after it; one parent run per study (tags
``tuner.study=NAME``, ``tuner.role=study``), shared by every worker. It holds the study spec,
the best-value curve, the study plots, the parameter importances (the numbers ``study show``
prints), the best trial's number and run id, and the champion model version. Opening it also
stores the trials' table view on the experiment, which :func:`~tuner.tracking.ui_link` opens.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import TrackingError
from tuner.study import StudyInfo, absolute_url, history_importances
from tuner.tracking._links import VIEW_TAG, trials_view
from tuner.tracking._names import ATTR_PARENT, CHAMPION_ALIAS, TAG_REASON, TAG_ROLE, TAG_STUDY, TAG_STUDY_UID, TAG_TRIAL
from tuner.tracking._plots import coefficients, confusion_matrix, optimization_history, param_importances, roc_curve
from tuner.tracking._store import artifact_location, first_line, redact, short
from tuner.tracking._writer import RunWriter, better, library_versions, metric_list, now_ms, quote, to_float

__all__ = ["StudyRun", "StudyRuns"]

_log = logging.getLogger("tuner.tracking")


@dataclass
class StudyRun:
    """A study's experiment and parent run, and what its trial runs share."""

    name: str
    experiment_id: str
    parent_run_id: str
    direction: str
    metric: str
    spec: dict[str, Any]
    base_tags: dict[str, str]
    uid: str = ""
    """The study's identity (:attr:`StudyInfo.uid`): its parent run and champion carry it."""
    status_before: str | None = None
    """The parent run's status as this process found it (None: this process created it)."""


class StudyRuns:
    """Opens, summarises and ends the parent runs of studies, through one :class:`RunWriter`."""

    def __init__(self, writer: RunWriter, artifact_root: str | Path | None = None) -> None:
        self.writer = writer
        self.artifact_root = artifact_root

    # ---- opening --------------------------------------------------------------------------
    def open(self, study: StudyInfo) -> StudyRun:
        """The study's parent run: the stored one, the oldest found, or a new one; set RUNNING."""
        client = self.writer.client
        exp_id = self._experiment_id(study.name)
        parent_id = self._stored_parent(study, exp_id)
        created = False
        if parent_id is None:
            found = self._parents(exp_id, study.name, study.uid)
            if found:
                parent_id = found[0].info.run_id
            else:
                created = True
                self._check_name_is_free(study, exp_id)
                parent_id = self._create_parent(study, exp_id)
                found = self._parents(exp_id, study.name, study.uid)  # two workers may have raced: keep the oldest
                if found and found[0].info.run_id != parent_id:
                    client.delete_run(parent_id)
                    parent_id = found[0].info.run_id
        status_before = client.get_run(parent_id).info.status
        if status_before != "RUNNING":
            client.update_run(parent_id, status="RUNNING")
        fp = str(study.spec.get("data", {}).get("fingerprint", ""))
        base = {TAG_STUDY: study.name, "tuner.data.fingerprint": fp, **library_versions()}
        run = StudyRun(study.name, exp_id, parent_id, study.direction, study.metric, dict(study.spec), base,
                       study.uid, None if created else status_before)
        budget = {"tuner.n_trials": str(study.spec.get("n_trials")), "tuner.timeout": str(study.spec.get("timeout"))}
        self.writer.log_batch(parent_id, tags=budget)
        self._save_view(exp_id, study, parent_id)
        return run

    def _check_name_is_free(self, study: StudyInfo, exp_id: str) -> None:
        """Refuse a study whose name, in this MLflow store, belongs to something else: a study of
        the same name in another study database (they would share one experiment, and the worse
        one's best model could take the other's ``champion`` alias: its users would be served a
        model of other data), or a registered model that tuner did not create. A study of the same
        name in the same database (deleted and created again) takes the name over."""
        from mlflow.exceptions import MlflowException

        from tuner.study import same_database

        ours = redact(absolute_url(study.storage_url))
        for other in self._parents(exp_id, study.name):
            where = other.data.tags.get("tuner.storage", "")
            if other.data.tags.get(TAG_STUDY_UID, "") != study.uid and where and not same_database(where, ours):
                raise TrackingError(
                    f"The MLflow store already holds a study named {study.name!r} from another study database "
                    f"({where}); a second study of that name would share its experiment and registered model, and "
                    f"could take over its 'champion' alias. Give this study another name (--study), or log it to "
                    f"another MLflow store (--tracking-uri).")
        try:
            model = self.writer.client.get_registered_model(study.name)
        except MlflowException:
            return  # none of that name yet
        if model.tags.get(TAG_STUDY) != study.name:
            raise TrackingError(
                f"The MLflow store already has a registered model named {study.name!r} that is not a tuner study's; "
                f"registering this study's best model there would move its 'champion' alias. Give this study "
                f"another name (--study), or log it to another MLflow store (--tracking-uri).")

    def _save_view(self, exp_id: str, study: StudyInfo, parent_id: str) -> None:
        """Store the trials' table view on the experiment (what :func:`ui_link` opens): the trial
        runs under ``parent_id``, this study's (not an earlier study's of the same name)."""
        names = ["penalty", "optimizer"]
        try:
            from tuner.study import StudySpec, build_space, public_name

            space = build_space(StudySpec.from_json(json.dumps(dict(study.spec))))
            slots = sorted({public_name(s.name) for group in space.slots.values() for s in group if not s.is_fixed})
            names += slots
        except Exception as exc:  # a view without hyperparameter columns still lists the trials
            _log.debug("Could not list the study's hyperparameters for the UI view: %s", first_line(exc))
        cv = bool(study.spec.get("cv"))
        metrics = [*([f"val_{study.metric}"] if cv else []), f"test_{study.metric}", "n_nonzero_weights"]
        self.writer.client.set_experiment_tag(exp_id, VIEW_TAG, trials_view(study.metric, study.direction,
                                                                            names, metrics, cv=cv,
                                                                            parent_run_id=parent_id))

    def _stored_parent(self, study: StudyInfo, exp_id: str) -> str | None:
        stored = study.user_attrs.get(ATTR_PARENT)
        if not stored:
            return None
        try:
            run = self.writer.client.get_run(stored)
        except Exception:
            return None
        ok = run.info.lifecycle_stage == "active" and run.info.experiment_id == exp_id
        return str(run.info.run_id) if ok else None

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        client = self.writer.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                # experimentKind: the UI opens the training-runs view (MLflow 3 guesses GenAI otherwise).
                where = artifact_location(self.writer.tracking_uri, self.artifact_root, name)
                return str(client.create_experiment(
                    name, artifact_location=where,
                    tags={TAG_STUDY: name, "mlflow.experimentKind": "custom_model_development"}))
            except MlflowException as exc:
                if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                    raise
                exp = client.get_experiment_by_name(name)  # another worker created it just now
        if exp.lifecycle_stage != "active":
            raise TrackingError(
                f"The MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore "
                f"--experiment-id {exp.experiment_id}) or remove it for good (mlflow gc) first."
            )
        return str(exp.experiment_id)

    def _parents(self, experiment_id: str, name: str, uid: str = "") -> list[Any]:
        """The parent runs of study ``name``; with ``uid``, of that study only (not of an earlier
        study of the same name, deleted since: its trials and champion are not this one's)."""
        where = f"tags.`{TAG_STUDY}` = '{quote(name)}' and tags.`{TAG_ROLE}` = 'study'"
        if uid:
            where += f" and tags.`{TAG_STUDY_UID}` = '{quote(uid)}'"
        runs = self.writer.client.search_runs([experiment_id], filter_string=where, max_results=100)
        return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))

    def _create_parent(self, study: StudyInfo, exp_id: str) -> str:
        spec = study.spec
        data = spec.get("data", {})
        tags = {
            TAG_STUDY: study.name, TAG_ROLE: "study", "tuner.metric": study.metric, "tuner.direction": study.direction,
            "tuner.storage": redact(absolute_url(study.storage_url)), "tuner.data.fingerprint": str(data.get("fingerprint", "")),
            "mlflow.note.content": (
                f"Optuna study `{study.name}` ({study.direction} validation {study.metric}); every trial is a "
                f"child run. Study storage: `{redact(study.storage_url)}`."),
            **library_versions(),
        }
        if study.uid:
            tags[TAG_STUDY_UID] = study.uid
        run = self.writer.client.create_run(exp_id, tags=tags, run_name=study.name)
        params = {"metric": study.metric, "direction": study.direction, "sampler": spec.get("sampler"),
                  "pruner": spec.get("pruner"), "seed": spec.get("seed"),
                  "penalties": ",".join(spec.get("penalties", [])), "optimizers": ",".join(spec.get("optimizers", [])),
                  "data.source": data.get("path") or data.get("dataset"), "data.val_size": data.get("val_size"),
                  "data.test_size": data.get("test_size"), "data.seed": data.get("seed")}
        params.update({f"search.{k}": v for k, v in sorted(spec.get("params", {}).items())})
        params.update({f"train.{k}": v for k, v in sorted(spec.get("train", {}).items())})
        self.writer.log_batch(run.info.run_id, params={k: v for k, v in params.items() if v is not None})
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "study_spec.json"
            p.write_text(json.dumps(spec, indent=2, sort_keys=True))
            self.writer.repo(run.info.artifact_uri).log_artifact(str(p))
        return str(run.info.run_id)

    # ---- the trial runs under it ----------------------------------------------------------
    def child_runs(self, run: StudyRun) -> dict[int, list[Any]]:
        """The study's trial runs by trial number."""
        out: dict[int, list[Any]] = {}
        for r in self.writer.search_all(run.experiment_id, f"tags.`mlflow.parentRunId` = '{run.parent_run_id}'"):
            n = r.data.tags.get(TAG_TRIAL)
            if n is not None and n.isdigit():
                out.setdefault(int(n), []).append(r)
        return out

    def trial_runs(self, run: StudyRun, number: int, *, running: bool = False) -> list[Any]:
        """The runs of trial ``number`` of this study (under its parent run: an earlier study of the
        same name, deleted since, has trials of the same numbers); ``running``: only those still RUNNING."""
        where = (f"tags.`mlflow.parentRunId` = '{run.parent_run_id}' and tags.`{TAG_TRIAL}` = '{number}' and "
                 f"tags.`{TAG_ROLE}` = 'trial'" + (" and attributes.status = 'RUNNING'" if running else ""))
        return list(self.writer.client.search_runs([run.experiment_id], filter_string=where, max_results=10))

    # ---- summary, plots and end -----------------------------------------------------------
    def log_summary(self, run: StudyRun, history: Sequence[Mapping[str, Any]]) -> None:
        """Trial counts by state and the best-value curve (``best_<metric>``, step = trial number).
        A failed trial given up before it trained (``given_up`` in its history entry: a budget or
        timeout ran out) counts in ``n_trials_given_up``, not in ``n_trials_failed``."""
        from mlflow.entities import Metric

        ts = now_ms()
        states = [h.get("state") for h in history]
        skipped = sum(bool(h.get("given_up")) for h in history)
        finals = {"n_trials_complete": states.count("COMPLETE"), "n_trials_pruned": states.count("PRUNED"),
                  "n_trials_failed": states.count("FAIL") - skipped, "n_trials_given_up": skipped}
        metrics = metric_list(finals, ts)
        key = f"best_{run.metric}"
        logged = {m.step for m in self.writer.client.get_metric_history(run.parent_run_id, key)}  # resumed studies
        best = math.nan
        for h in sorted(history, key=lambda h: h["number"]):
            v = to_float(h.get("value"))
            if h.get("state") == "COMPLETE" and v is not None and math.isfinite(v) and better(v, best, run.direction):
                best = v
                if int(h["number"]) not in logged:
                    metrics.append(Metric(key, v, ts, int(h["number"])))
        self.writer.log_batch(run.parent_run_id, metrics=metrics)

    def log_plots(self, run: StudyRun, history: Sequence[Mapping[str, Any]], outcome: Any = None,
                  data: Any = None) -> None:
        """The study plots (``plots/``) and the spec on the parent run; a plot that fails is skipped."""
        parent = self.writer.client.get_run(run.parent_run_id)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "plots"
            out.mkdir()
            _try(lambda: optimization_history(history, run.direction, run.metric,
                                                     out / "optimization_history.png"), "optimization history")
            _try(lambda: self._log_importances(run, history, out / "param_importances.png"), "parameter importances")
            if outcome is not None:
                _model_plots(outcome.model, data, out)
            (Path(tmp) / "study_spec.json").write_text(json.dumps(run.spec, indent=2, sort_keys=True))
            repo = self.writer.repo(parent.info.artifact_uri)
            repo.log_artifact(str(Path(tmp) / "study_spec.json"))
            repo.log_artifacts(str(out), "plots")

    def _log_importances(self, run: StudyRun, history: Sequence[Mapping[str, Any]], path: Path) -> None:
        imp = history_importances(history, run.direction)
        if imp:
            param_importances(imp, path, run.metric)
            self.writer.log_batch(run.parent_run_id, metrics=metric_list(
                {f"importance.{k}": v for k, v in imp.items()}, now_ms()))

    def mark_best(self, run: StudyRun, number: int, value: float, run_id: str | None = None) -> None:
        """Tag the parent run with the best trial, its value and its run; log them as metrics too
        (``best_trial``) so the runs table can show them."""
        tags = {"tuner.best_trial": str(number), "tuner.best_value": repr(float(value))}
        if run_id:
            tags["tuner.best_run_id"] = run_id
        self.writer.log_batch(run.parent_run_id, tags=tags, metrics=metric_list({"best_trial": number}, now_ms()))

    def mark_champion(self, run: StudyRun, attrs: Mapping[str, Any]) -> None:
        """Tag the parent run with the registered model's champion version and its URIs."""
        version = attrs.get("mlflow_champion_version")
        if version:
            self.writer.log_batch(run.parent_run_id, tags={
                "tuner.champion_version": str(version), "tuner.champion_uri": f"models:/{run.name}/{version}",
                "tuner.champion_alias_uri": f"models:/{run.name}@{CHAMPION_ALIAS}"})

    def put_back(self, run: StudyRun) -> None:
        """The parent run's status back to what this process found (a process that ran no trial
        says nothing about the study: a worker stopped on a spent study turned its FINISHED parent
        KILLED); one found RUNNING stays so, for the processes at work."""
        if run.status_before is not None and run.status_before != "RUNNING":
            self.writer.client.set_terminated(run.parent_run_id, run.status_before)

    def end(self, run: StudyRun, status: str = "FINISHED", reason: str | None = None) -> None:
        """End the parent run with ``status`` (the reason, if any, in ``tuner.reason``)."""
        if reason:
            self.writer.log_batch(run.parent_run_id, tags={TAG_REASON: short(reason)})
        else:  # an earlier run of the study ended with a reason (interrupted): this end has none
            from mlflow.exceptions import MlflowException

            try:
                self.writer.client.delete_tag(run.parent_run_id, TAG_REASON)
            except MlflowException:
                pass  # no reason was ever set
        self.writer.client.set_terminated(run.parent_run_id, status)


def _model_plots(model: Any, data: Any, out: Path) -> None:
    """The best model's coefficients, and its ROC curve or confusion matrix on the test split."""
    _try(lambda: coefficients(model.pipeline.feature_names, model.coef_, model.classes_,
                                     out / "coefficients.png"), "coefficients")
    if data is None or not len(data.y_test):
        return
    proba = model.predict_proba_features(data.X_test)
    if len(model.classes_) == 2:
        _try(lambda: roc_curve(data.y_test, proba[:, 1], model.classes_[1], out / "roc_curve.png"),
             "ROC curve")
    else:
        _try(lambda: confusion_matrix(data.y_test, proba.argmax(axis=1), model.classes_,
                                             out / "confusion_matrix.png"), "confusion matrix")


def _try(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except Exception as exc:  # a plot must never fail a study
        _log.warning("Could not draw the %s plot: %s", what, first_line(exc))
