"""The best model in the registry: logged as a pyfunc model, registered under the study name.

The alias ``champion`` moves only when a new best beats its value (re-read just before
moving: another worker may have registered a better model meanwhile), or when the champion is
another study's of the same name (deleted and created again: another identity, ``tuner.study_uid``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from tuner.model import input_example_of, save_pyfunc_model
from tuner.study import TrialInfo
from tuner.tracking._names import CHAMPION_ALIAS, MODEL_NAME, TAG_STUDY, TAG_STUDY_UID, TAG_TRIAL, TAG_VALUE
from tuner.tracking._store import first_line
from tuner.tracking._study_run import StudyRun
from tuner.tracking._writer import RunWriter, better, quote, to_float

__all__ = ["ChampionRegistry"]

_log = logging.getLogger("tuner.tracking")


def _missing(exc: Any) -> bool:
    code = str(getattr(exc, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or "INVALID_PARAMETER_VALUE" in code


def trial_value(best: TrialInfo, outcome: Any, metric: str) -> float:
    """The value the study ranked the best trial by (with cross-validation the mean over folds,
    not the refitted model's validation score); the outcome's when the trial has none stored."""
    return float(best.value) if best.value is not None else float(outcome.value(metric))


class ChampionRegistry:
    """Registers studies' best models and moves their ``champion`` alias."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer

    def champion(self, name: str) -> Any:
        """The model version of ``name`` at alias ``champion`` (None when there is none)."""
        from mlflow.exceptions import MlflowException

        try:
            return self.writer.client.get_model_version_by_alias(name, CHAMPION_ALIAS)
        except MlflowException as exc:
            if _missing(exc):
                return None
            raise

    def ours(self, name: str, uid: str) -> Any:
        """The champion of ``name`` when it is the study ``uid``'s (any, for a study without one);
        None when there is none or it is an earlier study's of the same name."""
        current = self.champion(name)
        if current is None or (uid and current.tags.get(TAG_STUDY_UID) != uid):
            return None
        return current

    def outdated(self, name: str, number: int, value: float, direction: str, uid: str = "") -> bool:
        """Whether trial ``number`` (``value``) should replace the champion: none of this study's,
        no value, or beaten."""
        current = self.ours(name, uid)
        old = to_float(current.tags.get(TAG_VALUE)) if current is not None else None
        if current is None or old is None:
            return True
        return current.tags.get(TAG_TRIAL) != str(number) and better(float(value), old, direction)

    def register(self, run: StudyRun, best: TrialInfo, outcome: Any, data: Any, source_run: str) -> dict[str, Any]:
        """Log and register the best model unless the champion is at least as good; move the alias.

        One version per best trial, whichever process ends the study: a version of the same
        study and trial is reused, and of two processes that register the trial at once the
        older version is kept (the other deletes its own). The version returned is the one
        ``champion`` points to whenever it holds this trial.
        """
        value = trial_value(best, outcome, run.metric)
        current = self.ours(run.name, run.uid)
        if current is not None:
            old = to_float(current.tags.get(TAG_VALUE))
            if old is not None and not better(value, old, run.direction):
                if current.tags.get(TAG_TRIAL) == str(best.number):  # another process registered it
                    return self._registered(run, current)
                return {"mlflow_champion_version": str(current.version),
                        "mlflow_champion_trial": _trial_of(current)}
        mv = self._version_of(run, best.number)
        if mv is None:
            mv = self._create(run, best, outcome, data, source_run, value)
        current = self.ours(run.name, run.uid)
        old = to_float(current.tags.get(TAG_VALUE)) if current is not None else None
        if current is None or old is None or (str(current.version) != str(mv.version)
                                              and better(value, old, run.direction)):
            self.writer.client.set_registered_model_alias(run.name, CHAMPION_ALIAS, mv.version)
            self.writer.log_batch(run.parent_run_id, tags={"tuner.champion": f"models:/{run.name}/{mv.version}"})
        return self._registered(run, mv)

    def _registered(self, run: StudyRun, mv: Any) -> dict[str, Any]:
        """The trial attributes for version ``mv``, with the version ``champion`` points to now."""
        champion = self.champion(run.name)
        return {"mlflow_model_version": str(mv.version), "mlflow_model_uri": f"models:/{run.name}/{mv.version}",
                "mlflow_champion_version": str(champion.version if champion is not None else mv.version),
                "mlflow_champion_trial": _trial_of(champion if champion is not None else mv)}

    def _version_of(self, run: StudyRun, number: int) -> Any:
        """The oldest version of ``run.name`` holding trial ``number`` of this study (None: none)."""
        found = [v for v in self.writer.client.search_model_versions(f"name='{quote(run.name)}'")
                 if v.tags.get(TAG_TRIAL) == str(number) and v.tags.get(TAG_STUDY_UID, "") == run.uid]
        return min(found, key=lambda v: int(v.version)) if found else None

    def _create(self, run: StudyRun, best: TrialInfo, outcome: Any, data: Any, source_run: str,
                value: float) -> Any:
        """A new version holding the best trial's model; the older one when another process
        registered the same trial meanwhile (this one's version and logged model are deleted)."""
        self._ensure_registered_model(run)  # first: a name MLflow refuses leaves no logged model behind
        lm = self._log_model(run, best, outcome, data, source_run, value)
        try:
            mv = self._new_version(run, best, outcome, lm, source_run, value)
        except Exception:
            self._discard(lm.model_id)
            raise
        first = self._version_of(run, best.number)
        if first is None or int(first.version) >= int(mv.version):
            return mv
        self.writer.client.delete_model_version(run.name, str(mv.version))
        self._discard(lm.model_id)
        return first

    def _log_model(self, run: StudyRun, best: TrialInfo, outcome: Any, data: Any, source_run: str,
                   value: float) -> Any:
        """The best model as a logged model of the source run (READY, or FAILED on an error)."""
        from mlflow.entities import LoggedModelOutput
        from mlflow.models import Model

        client = self.writer.client
        summary = outcome.summary()
        params = {**{f"penalty.{k}": v for k, v in outcome.penalty_params.items()},
                  **{f"optimizer.{k}": v for k, v in outcome.optimizer_params.items()},
                  "penalty": summary["penalty"], "optimizer": summary["optimizer"]}
        lm = client.create_logged_model(
            run.experiment_id, name=MODEL_NAME, source_run_id=source_run, model_type="logistic-regression",
            params={k: str(v) for k, v in params.items()}, tags={TAG_STUDY: run.name, TAG_TRIAL: str(best.number)})
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "model"
                mlflow_model = Model(artifact_path=lm.artifact_location, model_uuid=lm.model_id, run_id=source_run,
                                     model_id=lm.model_id)
                save_pyfunc_model(outcome.model, local, input_example=input_example_of(outcome.model, data),
                                  mlflow_model=mlflow_model,
                                  metadata={"study": run.name, "trial": best.number, "metric": run.metric,
                                            "value": value})
                client.log_model_artifacts(lm.model_id, str(local))
        except Exception:
            self._discard(lm.model_id)
            raise
        client.finalize_logged_model(lm.model_id, "READY")
        client.log_outputs(source_run, [LoggedModelOutput(lm.model_id, step=best.number)])
        return lm

    def _discard(self, model_id: str) -> None:
        """Delete a logged model that will not be registered (best effort: the error that made it
        useless is the one to report)."""
        try:
            self.writer.client.delete_logged_model(model_id)
        except Exception as exc:  # noqa: BLE001
            _log.debug("Could not delete the unregistered logged model %s: %s", model_id, first_line(exc))

    def _ensure_registered_model(self, run: StudyRun) -> None:
        """The registered model ``run.name`` (created now when it does not exist yet)."""
        from mlflow.exceptions import MlflowException

        try:
            self.writer.client.create_registered_model(run.name, tags={TAG_STUDY: run.name},
                                                       description=f"Best logistic regression of study {run.name}.")
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise

    def _new_version(self, run: StudyRun, best: TrialInfo, outcome: Any, lm: Any, source_run: str,
                     value: float) -> Any:
        """A new version of the registered model ``run.name`` holding the logged model ``lm``."""
        client = self.writer.client
        tags = {TAG_STUDY: run.name, TAG_TRIAL: str(best.number), TAG_VALUE: repr(value),
                "tuner.metric": run.metric, "tuner.direction": run.direction}
        if run.uid:
            tags[TAG_STUDY_UID] = run.uid
        tags.update({f"tuner.test_{k}": repr(float(v)) for k, v in outcome.test_metrics.items()})
        # The source is the storage location, not models:/<id>: a SQL registry store resolves the
        # latter with the process-global tracking URI (a stray ./mlflow.db otherwise).
        return client.create_model_version(run.name, source=lm.artifact_location, run_id=source_run,
                                           tags=tags, model_id=lm.model_id)


def _trial_of(version: Any) -> int | None:
    """The study trial a registered model version holds (its ``tuner.trial`` tag)."""
    number = version.tags.get(TAG_TRIAL)
    return int(number) if number is not None and str(number).isdigit() else None
