"""What a study tells the outside world: the hooks tracking (MLflow) implements.

The search module calls a :class:`StudyObserver` at the start and end of a study and of
every trial; it never imports the tracking code, and the observer never imports Optuna
(trials arrive as :class:`TrialInfo`, plain data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from tuner.study._configure import TrainOutcome
    from tuner.train import Callback

__all__ = ["TrialInfo", "StudyInfo", "StudyObserver"]


@dataclass
class StudyInfo:
    """A study as the observer sees it."""

    name: str
    storage_url: str
    spec: dict[str, Any]
    direction: str
    metric: str
    user_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialInfo:
    """One trial: its number, chosen plugins and hyperparameters (namespaced names)."""

    number: int
    penalty: str
    optimizer: str
    params: dict[str, Any]
    penalty_params: dict[str, Any]
    optimizer_params: dict[str, Any]
    user_attrs: dict[str, Any] = field(default_factory=dict)


class StudyObserver:
    """Hooks called by the search loop; every method is a no-op by default.

    ``trial_attrs`` returned from :meth:`on_trial_start` / :meth:`on_trial_end` are stored as
    user attributes of the Optuna trial (e.g. the MLflow run id, or ``mlflow_logged=False``).
    """

    def check(self) -> None:
        """Raise a :class:`~tuner.errors.TunerError` unless the observer can work (called
        before a new study is stored, so that a refused start leaves nothing behind)."""

    def on_study_start(self, study: StudyInfo) -> dict[str, Any]:
        """Called once per process before any trial; returns study user attributes to store."""
        return {}

    def on_trial_start(self, study: StudyInfo, trial: TrialInfo) -> tuple[Sequence[Callback], dict[str, Any]]:
        """Returns trainer callbacks for this trial (per-epoch logging) and trial attributes."""
        return (), {}

    def on_trial_end(self, study: StudyInfo, trial: TrialInfo, state: str, value: float | None,
                     outcome: TrainOutcome | None, reason: str | None) -> dict[str, Any]:
        """``state`` is COMPLETE, PRUNED or FAIL; ``outcome`` is None unless training finished."""
        return {}

    def on_study_end(self, study: StudyInfo, best: TrialInfo | None, best_outcome: TrainOutcome | None,
                     history: list[dict[str, Any]]) -> dict[str, Any]:
        """Called after the best configuration was refit and evaluated on the test split.

        ``history`` lists every finished trial as ``{"number", "state", "value", "params"}``.
        """
        return {}

    def on_trial_lost(self, study: StudyInfo, number: int, reason: str) -> None:
        """Trial ``number`` was failed because its worker died (no heartbeat); it runs again once."""

    def on_study_stop(self, study: StudyInfo, status: str, reason: str | None) -> None:
        """Called instead of :meth:`on_study_end` when a run ends without a refit: ``status`` is
        FINISHED (nothing to refit), KILLED (a signal) or FAILED (an error, in ``reason``)."""
