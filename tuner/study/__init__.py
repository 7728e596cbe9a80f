"""Studies: the spec, storage (SQLAlchemy), the search loop and its queries (the only package importing Optuna).

Implementation lives in private ``_x`` modules; what other packages use is re-exported here.
Light names (the spec, the storage helpers, the observer interface, the variant string, the
read-side queries) are imported eagerly; the names whose modules import the trainer (torch)
are resolved on first use (PEP 562), so ``import tuner.study`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports
from tuner.study._importance import history_importances, importance_left_out
from tuner.study._inspect import (
    StudyOverview,
    StudyRecord,
    TrialRecord,
    best_record,
    delete_study,
    export_trials,
    list_studies,
    param_importances,
    set_study_attrs,
    study_overview,
    study_record,
    top_records,
    trial_records,
)
from tuner.study._naming import OPTIMIZER, PENALTY, named_params, public_name, public_params
from tuner.study._observer import StudyInfo, StudyObserver, TrialInfo
from tuner.study._spec import SPEC_VERSION, DataSpec, StudySpec, parse_range
from tuner.study._storage import (
    CONNECT_TIMEOUT_S,
    DEFAULT_STORAGE_FILE,
    MissingStudyError,
    absolute_url,
    check_reachable,
    default_storage_url,
    memory_sqlite,
    open_storage,
    prepare_sqlite,
    redact,
    require_database,
    resolve_url,
    retry_races,
    same_database,
    schema_lock,
    scratch_sqlite,
    sqlite_path,
    sqlite_writable,
    table_names,
)
from tuner.study._variant import VARIANT, join_variant, split_variant

if TYPE_CHECKING:  # pragma: no cover - resolved lazily by __getattr__ below
    from tuner.study._configure import (
        GAP_CHECK_WORK,
        MAX_OPTIMALITY_GAP,
        NO_OPTIMUM_NOTE,
        TrainOutcome,
        check_plugins,
        cv_folds,
        fit_gap,
        optimality_gap,
        prepare_sample_weight,
        reference_solver,
        resolve_pair,
        resolve_params,
        separated_without_penalty,
        split_overrides,
        split_params,
        train_many,
        train_one,
    )
    from tuner.study._result import StudyResult
    from tuner.study._resume import RESUMABLE, open_or_create_study, resume_spec
    from tuner.study._runs import GAVE_UP, WORKER, given_up
    from tuner.study._search import run_study
    from tuner.study._search_space import SearchSpace, Slot, build_space, make_pruner, make_sampler, params_of
    from tuner.study._signals import Interrupted
    from tuner.study._study_data import load_dataset_for, train_config

# a name of a module that imports the trainer: list it here, under TYPE_CHECKING above and in __all__
_LAZY = {
    # the search loop, its space, its data (these modules import the trainer, or Optuna at import)
    "run_study": "_search", "StudyResult": "_result", "Interrupted": "_signals",
    "build_space": "_search_space", "SearchSpace": "_search_space", "Slot": "_search_space",
    "params_of": "_search_space", "make_sampler": "_search_space", "make_pruner": "_search_space",
    "load_dataset_for": "_study_data", "train_config": "_study_data",
    "open_or_create_study": "_resume", "resume_spec": "_resume", "RESUMABLE": "_resume",
    # names and values -> a trained, evaluated model
    "TrainOutcome": "_configure", "train_one": "_configure", "train_many": "_configure", "cv_folds": "_configure",
    "resolve_params": "_configure", "resolve_pair": "_configure", "split_overrides": "_configure",
    "optimality_gap": "_configure", "GAP_CHECK_WORK": "_configure", "MAX_OPTIMALITY_GAP": "_configure",
    "fit_gap": "_configure", "separated_without_penalty": "_configure", "NO_OPTIMUM_NOTE": "_configure",
    "split_params": "_configure", "check_plugins": "_configure", "reference_solver": "_configure",
    "prepare_sample_weight": "_configure",
    # several processes on one study
    "GAVE_UP": "_runs", "WORKER": "_runs", "given_up": "_runs",
}



__all__ = [
    # the spec
    "StudySpec", "DataSpec", "SPEC_VERSION", "parse_range",
    # the variant string ("penalty:optimizer")
    "VARIANT", "split_variant", "join_variant",
    # the public names of a trial's hyperparameters (penalty, optimizer, penalty.NAME, optimizer.NAME)
    "public_params", "public_name", "named_params", "PENALTY", "OPTIMIZER",
    # storage
    "DEFAULT_STORAGE_FILE", "CONNECT_TIMEOUT_S", "default_storage_url", "open_storage", "require_database", "sqlite_path",
    "same_database", "absolute_url", "redact", "resolve_url", "prepare_sqlite", "schema_lock", "check_reachable", "memory_sqlite",
    "retry_races", "scratch_sqlite", "sqlite_writable", "table_names", "MissingStudyError",
    # the observer interface (tracking implements it)
    "StudyObserver", "StudyInfo", "TrialInfo",
    # read-side queries (Optuna-free results)
    "TrialRecord", "StudyRecord", "StudyOverview", "trial_records", "study_record", "study_overview", "list_studies",
    "best_record",
    "top_records", "param_importances", "history_importances", "importance_left_out", "export_trials", "delete_study", "set_study_attrs",
    # lazily resolved (their modules import the trainer)
    "run_study", "StudyResult", "Interrupted", "build_space", "SearchSpace", "Slot", "params_of", "load_dataset_for",
    "train_config", "make_sampler", "make_pruner", "open_or_create_study", "resume_spec", "RESUMABLE", "TrainOutcome",
    "train_one", "train_many", "cv_folds", "resolve_params", "resolve_pair", "split_overrides", "optimality_gap",
    "split_params", "check_plugins", "reference_solver", "prepare_sample_weight", "fit_gap",
    "separated_without_penalty", "NO_OPTIMUM_NOTE",
    "GAP_CHECK_WORK", "MAX_OPTIMALITY_GAP", "GAVE_UP", "WORKER", "given_up",
]

__getattr__, __dir__ = lazy_exports("tuner.study", _LAZY, __all__)
