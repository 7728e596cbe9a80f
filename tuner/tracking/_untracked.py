"""What a run without tracking (``--no-tracking``) leaves MLflow missing, on a study that logs there.

A resume with ``--no-tracking`` ran trials that the study's MLflow store never saw, and
``tuner study show`` said nothing about them (its note read the trials a tracked process could
not log, and no tracked process had run since). This observer adds the trials it saw finish to
the same study attribute, so the note and ``tuner study sync-mlflow`` cover them.
"""

from __future__ import annotations

from typing import Any

from tuner.errors import TunerError
from tuner.study import StudyInfo, StudyObserver, TrialInfo
from tuner.tracking._names import ATTR_TRACKING, ATTR_UNLOGGED

__all__ = ["UntrackedTrials"]

_FINISHED = frozenset({"COMPLETE", "PRUNED", "FAIL"})


class UntrackedTrials(StudyObserver):
    """Records, on a study tracked in MLflow, the trials this untracked process finished."""

    def __init__(self) -> None:
        self.tracked = False
        self.numbers: list[int] = []

    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        self.tracked = isinstance(study.user_attrs.get(ATTR_TRACKING), str)
        return {}

    def on_trial_end(self, study: StudyInfo, trial: TrialInfo, state: str, value: float | None, outcome: Any,
                     reason: str | None) -> dict[str, Any]:
        if self.tracked and state in _FINISHED:
            self.numbers.append(trial.number)
        return {}

    def on_study_end(self, study: StudyInfo, best: TrialInfo | None, best_outcome: Any,
                     history: list[dict[str, Any]]) -> dict[str, Any]:
        return self._unlogged(study)

    def on_study_stop(self, study: StudyInfo, status: str, reason: str | None) -> dict[str, Any]:
        return self._unlogged(study)

    def _unlogged(self, study: StudyInfo) -> dict[str, Any]:
        """The stored list of trials MLflow lacks, with this process's added (read again at the
        end: another process may have written it since)."""
        if not self.numbers:
            return {}
        from tuner.study import study_record

        try:
            stored = study_record(study.storage_url, study.name).user_attrs.get(ATTR_UNLOGGED) or []
        except TunerError:
            stored = study.user_attrs.get(ATTR_UNLOGGED) or []
        return {ATTR_UNLOGGED: sorted({*map(int, stored), *self.numbers})}
