"""Creating or resuming a stored study: the stored spec is the study's identity.

A study is created with its :class:`~tuner.study.StudySpec` as a user attribute; a worker or a
resume reads it back, and anything asked for now that contradicts it is refused (only the
budget may change). Plugin versions are recorded, and a change is noted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from tuner._registry import optimizers, penalties
from tuner.errors import ConfigError
from tuner.study._observer import UID_ATTR
from tuner.study._spec import StudySpec
from tuner.study._storage import MissingStudyError, open_storage, redact
from tuner.train import METRICS

__all__ = ["open_or_create_study", "existing_study", "resume_spec", "note_plugin_changes", "RESUMABLE",
           "missing_study"]


def _plugin_versions(spec: StudySpec) -> dict[str, str]:
    """``{"penalty:l2": "logreg-tuner==0.1.0", ...}``: the distribution and version of each plugin in play."""
    out = {}
    for kind, registry, names in (("penalty", penalties, spec.penalties), ("optimizer", optimizers, spec.optimizers)):
        for n in names:
            info: Any = registry.info(n)
            out[f"{kind}:{n}"] = f"{info.distribution}=={info.version}"
    return out


def note_plugin_changes(study: Any, stored: StudySpec) -> list[str]:
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
        raise ConfigError(f"Study {study_name!r} in {redact(storage_url)} has no tuner spec: it was not created by "
                          "tuner, or its creation was cut short; delete it (tuner study delete NAME) to use the name.")
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
            wanted.data.fingerprint = _as_stored(spec.data.path, spec.data, spec.data.fingerprint,
                                                 stored.data.fingerprint)
            if "data.test_file" in changes and hasattr(spec.data, "test_fingerprint"):
                wanted.data.test_fingerprint = _as_stored(spec.data.test_file, spec.data, spec.data.test_fingerprint,
                                                          stored.data.test_fingerprint)
                if wanted.data.test_file and stored.data.test_file:
                    wanted.data.test_file = stored.data.test_file
    diffs = stored.differences(wanted) if wanted is not None else []
    if diffs:
        raise ConfigError(
            f"Study {study_name!r} was created with different options, refusing to mix trials ("
            + "; ".join(diffs) + f"). Only {RESUMABLE} may change on resume: resume with "
            "its stored options, or choose another name (the 'study_name' parameter)."
        )
    return stored


def _as_stored(path: str | None, d: Any, now: str, stored: str) -> str:
    """``now``, or ``stored`` where that is the same file's fingerprint as an older study stored it."""
    from pathlib import Path

    from tuner.study._study_data import stored_before_rename

    if now == stored or not path or not stored or not Path(path).is_file():
        return now
    return stored if stored_before_rename(Path(path), d, stored) else now


RESUMABLE = ("the budget (the 'trials' parameter, the 'timeout' parameter), the 'batch_trials' parameter and where "
             "the results go (storage, tracking, output)")


class StudyAppeared(Exception):
    """Raised by :func:`open_or_create_study` with ``join=False``: another process stored the
    study after the caller last looked, so what the caller prepared from its own options
    (search space, training options, budget) is not the stored study's."""


def open_or_create_study(spec: StudySpec | None, study_name: str, storage_url: str,
                         resume_only: bool = False, changes: Mapping[str, Any] | None = None,
                         new_only: bool = False, storage: Any = None,
                         join: bool = True) -> tuple[Any, StudySpec, list[str]]:
    """Load the study (checking ``spec`` against the stored one) or create it with ``spec``.

    ``storage``: an Optuna storage already opened on ``storage_url`` (default: open one).
    A study loaded keeps its stored spec, budget included: the caller applies the budget its
    user gave (a default budget filled in by the caller would overwrite the creator's).

    ``new_only``: the name was made up for a new study, so an existing one is an error, never
    joined (two processes started in the same second would otherwise share one study).
    ``join=False``: an existing study raises :class:`StudyAppeared` instead of being loaded.
    """
    import optuna

    storage = open_storage(storage_url) if storage is None else storage
    found = existing_study(storage, study_name, storage_url, spec, changes, new_only)
    if found is not None:
        if not join:
            raise StudyAppeared(study_name)
        study, stored = found
        return study, stored, note_plugin_changes(study, stored)
    if resume_only or spec is None:
        raise missing_study(study_name, storage_url)
    spec.plugin_versions = _plugin_versions(spec)
    try:
        study = optuna.create_study(study_name=study_name, storage=storage,
                                    direction="maximize" if METRICS[spec.metric] == "maximize" else "minimize")
    except optuna.exceptions.DuplicatedStudyError:
        if new_only:
            raise ConfigError(_taken(study_name)) from None
        # Another worker created it between our load and create: join it like a resume.
        return open_or_create_study(spec, study_name, storage_url, resume_only=True, changes=changes,
                                    storage=storage, join=join)
    try:
        study.set_user_attr(UID_ATTR, uuid.uuid4().hex)  # before the spec, which joining workers wait for
        study.set_user_attr("spec", spec.to_json())
        study.set_user_attr("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
    except BaseException:  # an error or Ctrl-C before the spec is stored: no study without one is left behind
        try:
            optuna.delete_study(study_name=study_name, storage=storage)
        except Exception:  # noqa: BLE001, S110 - the first error is the one to report
            pass
        raise
    return study, spec, []


def existing_study(storage: Any, study_name: str, storage_url: str, spec: StudySpec | None,
                   changes: Mapping[str, Any] | None, new_only: bool) -> tuple[Any, StudySpec] | None:
    """The stored study and its spec with ``changes`` checked (see :func:`resume_spec`), or
    None; a stored study is refused when ``new_only``."""
    study = _load_study(storage, study_name)
    if study is None:
        return None
    if new_only:
        raise ConfigError(_taken(study_name))
    return study, resume_spec(_stored_spec(study, study_name, storage_url), spec, changes, study_name)


def missing_study(study_name: str, storage_url: str) -> MissingStudyError:
    """The error for a study that is not there (``storage_url``'s password hidden)."""
    return MissingStudyError(f"No study named {study_name!r} in {redact(storage_url)}",
                             "give data (the 'data' parameter or the 'dataset' parameter) to create it.")


def _taken(study_name: str) -> str:
    return (f"A study named {study_name!r} already exists (another process started one in the same second?); "
            f"choose another name (the 'study_name' parameter), or resume that one by its name, {study_name!r}.")


