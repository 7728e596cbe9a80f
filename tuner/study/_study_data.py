"""The data and training settings of a study: read and split the same way on every worker,
checked before any trial is stored."""

from __future__ import annotations

from typing import Any

import numpy as np

from tuner.data import Dataset, file_fingerprint, load_data, load_test_file, locate, prepare
from tuner.errors import ConfigError, DataError
from tuner.study._configure import cv_folds
from tuner.study._spec import StudySpec
from tuner.train import Placement, TrainConfig

__all__ = ["load_dataset_for", "check_data", "train_config", "check_training", "stored_before_rename"]


def load_dataset_for(spec: StudySpec, preloaded: tuple[Any, Any] | None = None) -> Dataset:
    """Read and split the data named by the spec (the same way on every worker).

    The files are looked for under ``$TUNER_DATA_ROOT``, at their creation path, then in the
    working folder; a file whose content is not the study's is refused here, before any trial.
    ``preloaded``: the training and test data the caller already read for this spec (the CLI
    reads them to fingerprint a new study), used when their fingerprints are the spec's. A study
    made from rows in memory (no path, no bundled dataset) needs the same rows: a
    :class:`ConfigError` without them (a worker, a resume from the command line).
    """
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
    if not d.path and not d.dataset:  # rows given in memory: the study database does not hold them
        raise ConfigError(
            "This study was created from rows in memory (arrays or a DataFrame given to tuner.tune), which the study "
            "database does not keep: only the same rows, given again to tuner.tune(X, y, study_name=NAME, "
            "storage=URL) in Python, resume it (`tuner worker` and `tuner tune --study` cannot); or start a new "
            "study on a data file.")
    raw = load_data(path, dataset=d.dataset, target=d.target, text_column=d.text_column, encoding=d.encoding,
                    fmt=d.fmt, n_features=d.n_features, zero_based=d.zero_based,
                    categorical_columns=d.categorical_columns, header=d.header, group_column=d.group_column)
    if d.dataset:
        if d.fingerprint and raw.fingerprint != d.fingerprint:
            raise ConfigError(f"The bundled dataset {d.dataset!r} differs from the one this study was created "
                              "with; start a new study under another name (the 'study_name' parameter).")
        d.fingerprint = raw.fingerprint
    test_raw = None
    if test_path is not None:
        test_raw = load_test_file(test_path, raw, target=d.target, text_column=d.text_column, encoding=d.encoding,
                                  fmt=d.fmt, n_features=d.n_features,
                                  categorical_columns=d.categorical_columns, header=d.header,
                                  group_column=d.group_column)
    return prepare(raw, val_size=d.val_size, test_size=d.test_size, seed=d.seed, test_raw=test_raw)


def _same_content(path: Any, d: Any, stored: str, what: str) -> str:
    """The fingerprint of the file at ``path``, refused when the study stored another one."""
    now = file_fingerprint(path, fmt=d.fmt, target=d.target, text_column=d.text_column, encoding=d.encoding,
                           categorical_columns=d.categorical_columns, header=d.header)
    if stored and now != stored and not stored_before_rename(path, d, stored):
        raise ConfigError(
            f"The {what} {path} differs from the one this study was created with (fingerprint {now} != "
            f"{stored}); give this machine the study's file (TUNER_DATA_ROOT says where the data is), or start "
            "a new study under another name (the 'study_name' parameter)."
        )
    return now


def stored_before_rename(path: Any, d: Any, stored: str) -> bool:
    """Whether ``stored`` is the fingerprint a study created before 2026-12-02 stored for the
    file at ``path`` (read as ``d`` says): the same content, hashed with the file's name."""
    return file_fingerprint(path, fmt=d.fmt, target=d.target, text_column=d.text_column, encoding=d.encoding,
                            categorical_columns=d.categorical_columns, header=d.header, legacy=True) == stored


def check_data(spec: StudySpec, data: Dataset) -> None:
    """Refuse data on which no trial could be compared (before any trial is stored)."""
    if spec.metric == "roc_auc" and data.n_classes > 2:
        raise ConfigError("The roc_auc metric is for binary targets; use f1 (macro F1) or log_loss for multiclass.")
    if spec.cv:
        if spec.train.get("monitor") == "val":
            raise ConfigError("The 'monitor' parameter is 'val', which would stop each cross-validation fold on its "
                              "held-out rows, the very rows it is scored on, so that a trial's value would flatter "
                              "it; with the 'cv' parameter, stop on the training objective (the 'monitor' parameter "
                              "'objective', the default).")
        cv_folds(data.y_train, spec.cv, spec.data.seed, data.groups_train)  # too many folds: refused before any trial
        if len(data.y_val) == 0:
            return  # the folds compare the trials
    if len(data.y_val) == 0:
        raise ConfigError("A study needs a validation split to compare trials; make the 'val_size' parameter > 0, "
                          "or compare them by cross-validation (the 'cv' parameter).")
    present = np.unique(data.y_val)
    if len(present) < 2:
        raise DataError(
            f"The validation split ({len(data.y_val)} rows) holds a single class ({data.classes[int(present[0])]!r}), "
            f"so every trial's validation {spec.metric} would be meaningless; make the 'val_size' parameter larger, "
            "or give more data.")


def train_config(spec: StudySpec) -> TrainConfig:
    """The trainer's settings for the study's trials (its ``train`` options and seed)."""
    return TrainConfig(seed=spec.seed, **spec.train)


def check_training(config: TrainConfig) -> None:
    config.check()
    Placement.resolve(config.device, config.dtype)  # --device cuda without CUDA, --device bogus
