"""The study spec: everything needed to rebuild a study's objective from storage alone.

Plain data that round-trips through JSON; stored as the Optuna study's ``spec`` user
attribute and logged to MLflow, so any worker rebuilds the objective from the storage URL
and the study name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tuner.errors import ConfigError

__all__ = ["DataSpec", "StudySpec", "SPEC_VERSION", "parse_range"]

SPEC_VERSION = 1

# DataSpec fields compared on their own (or not at all: the fingerprint stands for the content)
_NOT_READING = ("path", "dataset", "fingerprint", "val_size", "test_size", "seed", "test_file",
                "relative_path", "test_relative_path")  # where this machine finds the files: free to differ
_ADDED_LATER = ("zero_based", "test_fingerprint")  # unrecorded in studies created before them


@dataclass
class DataSpec:
    """Where the data is and how it is read and split.

    ``path`` / ``test_file`` are absolute paths on the machine that created the study;
    ``relative_path`` / ``test_relative_path`` are the same files relative to that machine's
    ``$TUNER_DATA_ROOT`` (when they lie under it) or working folder, which a worker resolves
    against its own (see :func:`tuner.data.locate`). ``zero_based`` is the LIBSVM index base
    decided when the study was created; the fingerprints identify the files' contents.
    """

    path: str | None = None
    dataset: str | None = None
    target: str | None = None
    text_column: str | None = None
    fmt: str = "auto"
    encoding: str = "utf-8"
    n_features: int | None = None
    val_size: float = 0.2
    test_size: float = 0.2
    test_file: str | None = None
    seed: int = 0
    fingerprint: str = ""
    relative_path: str | None = None
    test_relative_path: str | None = None
    zero_based: bool | None = None
    test_fingerprint: str = ""
    categorical_columns: list[str] = field(default_factory=list)
    # None: the first line names the columns (one of numbers only refused); True: whatever it holds
    header: bool | None = None
    group_column: str | None = None  # a table's column of row groups: every split and fold keeps a group whole

    def may_be_libsvm(self) -> bool:
        """Whether the data may be a LIBSVM file (``zero_based`` None may then be a study's from
        before the index base was recorded); a bundled set, a table, or a file whose suffix or
        format names another format is not."""
        if self.dataset is not None or self.path is None or self.fmt not in ("auto", "svmlight") \
                or self.target is not None or self.text_column is not None:
            return False
        from tuner.data._compression import data_suffix
        from tuner.data._formats import FORMATS

        suffix = data_suffix(Path(self.path))
        return not any(suffix in f.suffixes for f in FORMATS.values() if f.name != "svmlight")


@dataclass
class StudySpec:
    """A whole study: data, plugins in play, search space narrowing, metric, budget, seeds."""

    data: DataSpec
    penalties: list[str]
    optimizers: list[str]
    params: dict[str, str] = field(default_factory=dict)
    metric: str = "log_loss"
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    n_trials: int | None = 50
    timeout: float | None = None
    train: dict[str, Any] = field(default_factory=dict)
    cv: int = 0
    """Stratified folds of the training rows a trial is scored on (0: the validation split)."""
    left_out_variants: list[str] = field(default_factory=list)
    """``penalty:optimizer`` pairs of the plugins above that the default search does not train (a
    penalty that a truncated Newton solver takes is not also searched with a quasi-Newton one);
    chosen with the plugins when the study is created, so a resume and every worker agree."""
    plugin_versions: dict[str, str] = field(default_factory=dict)
    version: int = SPEC_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StudySpec:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}
        raw["data"] = DataSpec(**{k: v for k, v in raw["data"].items() if k in {f.name for f in fields(DataSpec)}})
        return cls(**raw)

    def identity(self) -> dict[str, Any]:
        """The parts that must not change when a study is resumed (all but the budget)."""
        d = self.data
        return {
            "data fingerprint": d.fingerprint,
            "data reading": {f.name: getattr(d, f.name) for f in fields(d) if f.name not in _NOT_READING},
            # with a test file, the test share splits nothing off: 0.2 stored (not given) or 0 given say the same
            "data split": (d.val_size, None if d.test_file else d.test_size, d.seed, d.test_file),
            "penalties": sorted(self.penalties),
            "optimizers": sorted(self.optimizers),
            "search space (the 'params' parameter)": dict(sorted(self.params.items())),
            "metric": self.metric,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "seed": self.seed,
            "training options": dict(sorted(self.train.items())),
            "cross-validation folds (the 'cv' parameter)": self.cv,
        }

    def with_changes(self, changes: Mapping[str, Any]) -> StudySpec:
        """A copy with ``changes`` applied; keys are field names, ``data.NAME`` or ``train.NAME``."""
        out = StudySpec.from_json(self.to_json())
        for key, value in changes.items():
            head, _, name = key.partition(".")
            if head == "data" and name:
                if name not in {f.name for f in fields(DataSpec)}:
                    raise ConfigError(f"The study spec has no data option {name!r}.")
                setattr(out.data, name, value)
            elif head == "train" and name:
                out.train[name] = value
            elif key in {f.name for f in fields(StudySpec)} and key not in ("data", "train"):
                setattr(out, key, value)
            elif key.startswith("--"):
                raise ConfigError(f"{key} cannot be given when resuming a study: the stored study does not record "
                                  "it. Leave it out, or choose another name (the 'study_name' parameter).")
            else:
                raise ConfigError(f"The study spec has no option {key!r}.")
        return out

    def differences(self, other: StudySpec) -> list[str]:
        """Human-readable list of identity differences between ``self`` (stored) and ``other``.

        A data-reading field that the stored spec never recorded (a study created before the
        field existed) is not a difference: such a study keeps reading its data as it did.
        """
        mine, theirs = self.identity(), other.identity()
        reading = dict(theirs["data reading"])
        for name in _ADDED_LATER:
            if name == "zero_based" and not self.data.may_be_libsvm():
                continue  # None there is "does not apply", not "not recorded yet": a given base differs
            if mine["data reading"].get(name) in (None, ""):
                reading[name] = mine["data reading"].get(name)
        theirs["data reading"] = reading
        out = []
        for k in mine:
            if mine[k] == theirs[k]:
                continue
            if isinstance(mine[k], dict) and isinstance(theirs[k], dict):  # the options that differ, not all of them
                out += [f"{k}, {name}: stored {mine[k].get(name)!r}, now {theirs[k].get(name)!r}"
                        for name in {**mine[k], **theirs[k]} if mine[k].get(name) != theirs[k].get(name)]
            else:
                out.append(f"{k}: stored {mine[k]!r}, now {theirs[k]!r}")
        return out


def parse_range(text: str) -> tuple[str, Any]:
    """``"LOW..HIGH[:log]"`` -> ("range", (low, high, log)); ``"V"`` -> ("fixed", V)."""
    from tuner._space import parse_value

    body, log = text, False
    if text.endswith(":log"):
        body, log = text[:-4], True
    if ".." in body:
        lo, _, hi = body.partition("..")
        try:
            low, high = float(lo), float(hi)
        except ValueError:
            raise ConfigError(f"{text!r} is not a range LOW..HIGH[:log] of numbers.") from None
        if low > high:
            raise ConfigError(f"The range {text!r} has LOW greater than HIGH.")
        if log and low <= 0:
            raise ConfigError(f"The log range {text!r} needs LOW > 0.")
        return "range", (low, high, log)
    if log:
        raise ConfigError(f"{text!r}: ':log' only applies to a range LOW..HIGH.")
    return "fixed", parse_value(body)
