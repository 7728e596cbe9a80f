"""The names tracking writes: MLflow tags, Optuna study/trial attributes, artifact and metric names."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from tuner.errors import ConfigError

__all__ = [
    "model_name_problem", "check_model_name", "cv_finals", "ATTR_TRACKING", "CHAMPION_ALIAS", "MODEL_NAME", "WEIGHTS_ARTIFACT", "EPOCH_PREFIX", "RUN_STATUS",
    "TAG_STUDY", "TAG_STUDY_UID", "TAG_ROLE", "TAG_TRIAL", "TAG_STATE", "TAG_REASON", "TAG_LOGGED", "TAG_VALUE",
    "ATTR_PARENT", "ATTR_EXPERIMENT", "ATTR_RUN", "ATTR_LOGGED", "ATTR_UNLOGGED", "ATTR_STUDY_LOGGED",
]

CHAMPION_ALIAS = "champion"
MODEL_NAME = "model"
WEIGHTS_ARTIFACT = "weights.safetensors"
EPOCH_PREFIX = "epoch/"

TAG_STUDY = "tuner.study"
TAG_STUDY_UID = "tuner.study_uid"  # which study of that name (a name may be deleted and used again)
TAG_ROLE = "tuner.role"
TAG_TRIAL = "tuner.trial"
TAG_STATE = "tuner.state"
TAG_REASON = "tuner.reason"
TAG_LOGGED = "tuner.logged"
TAG_VALUE = "tuner.value"

ATTR_PARENT = "mlflow_parent_run_id"
ATTR_EXPERIMENT = "mlflow_experiment_id"
ATTR_RUN = "mlflow_run_id"
ATTR_LOGGED = "mlflow_logged"
ATTR_UNLOGGED = "mlflow_unlogged_trials"
ATTR_STUDY_LOGGED = "mlflow_study_logged"
ATTR_TRACKING = "mlflow_tracking_uri"
"""The MLflow store a study logs to (password hidden), set when tracking opens it."""

# a trial's state -> its run's end status
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def cv_finals(metric: str, fold_scores: Sequence[Any]) -> dict[str, float]:
    """A cross-validated trial's scores as run metrics: ``cv_<metric>``, the mean over folds (the
    trial's value, which the study ranks by), and ``cv_fold<i>_<metric>`` per fold (1-based).
    ``val_<metric>`` stays the model's score on the validation split."""
    scores = [float(v) if isinstance(v, (int, float)) else math.nan for v in fold_scores]
    if not scores:
        return {}
    out = {f"cv_fold{i}_{metric}": v for i, v in enumerate(scores, start=1) if math.isfinite(v)}
    mean = sum(scores) / len(scores)
    if math.isfinite(mean):
        out[f"cv_{metric}"] = mean
    return out


def model_name_problem(name: str) -> str | None:
    """Why MLflow refuses ``name`` as a registered model name (None when it accepts it).

    MLflow 3's rules (``mlflow.utils.validation._validate_model_name``): not blank, no ``/`` or
    ``:``, and not a name that a path would resolve to another one (``.``, ``..x``).
    """
    if not name.strip():
        return "it is blank"
    if "/" in name or ":" in name:
        return "MLflow model names cannot contain '/' or ':'"
    if name == "." or name.startswith(".."):
        return "MLflow model names cannot be '.' or start with '..'"
    return None


def check_model_name(name: str, off: str = "turn MLflow tracking off") -> None:
    """Refuse, in one line, a study name that MLflow cannot register its best model under.

    The study name is the registered model's name (``models:/NAME@champion``), and mapping it
    to another name could make two studies share one registered model, so it is refused
    before anything is written; ``off`` says how to go on without registering.
    """
    why = model_name_problem(name)
    if why is None:
        return
    suggestion = re.sub(r"[/:]+", "-", name).strip("-. ")
    instead = f"choose another, e.g. {suggestion!r}, or {off}" if suggestion and model_name_problem(suggestion) is None \
        else f"choose another or {off}"
    raise ConfigError(f"The 'study_name' parameter names the study's MLflow registered model, and {name!r} cannot "
                      f"be one ({why}); {instead}.")
