"""The names tracking writes: MLflow tags, Optuna study/trial attributes, artifact and metric names."""

from __future__ import annotations

__all__ = [
    "CHAMPION_ALIAS", "MODEL_NAME", "WEIGHTS_ARTIFACT", "EPOCH_PREFIX", "RUN_STATUS",
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
