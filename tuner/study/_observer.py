"""What a study tells the outside world: the hooks tracking (MLflow) implements.

The search module calls a :class:`StudyObserver` at the start and end of a study and of
every trial; it never imports the tracking code, and the observer never imports Optuna
(trials arrive as :class:`TrialInfo`, plain data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.study._naming import named_params

if TYPE_CHECKING:  # pragma: no cover
    from tuner.study._configure import TrainOutcome
    from tuner.train import Callback

__all__ = ["TrialInfo", "StudyInfo", "StudyObserver"]


UID_ATTR = "uid"
"""The study attribute holding a random identity, set when the study is created."""


@dataclass
class StudyInfo:
    """A study as the observer sees it."""

    name: str
    storage_url: str
    spec: dict[str, Any]
    direction: str
    metric: str
    user_attrs: dict[str, Any] = field(default_factory=dict)
    data: Any = field(default=None, repr=False, compare=False)
    """The study's data as split for its trials (a :class:`tuner.data.Dataset`) when this process
    loaded it, so an observer need not read it again; ``None`` otherwise (e.g. a sync from storage)."""

    @property
    def uid(self) -> str:
        """This study's own identity (:data:`UID_ATTR`): a study deleted and created again under
        the same name is another study. Empty for studies stored before it existed."""
        return str(self.user_attrs.get(UID_ATTR) or "")


@dataclass
class TrialInfo:
    """One trial: its number, chosen plugins and hyperparameters.

    ``params`` are the Optuna parameters (internal names: ``variant``, ``optimizer.lbfgs.lr``);
    ``penalty_params`` / ``optimizer_params`` the plugins' hyperparameters by bare name, fixed
    ones included; :attr:`public_params` the names a user sees.
    """

    number: int
    penalty: str
    optimizer: str
    params: dict[str, Any]
    penalty_params: dict[str, Any]
    optimizer_params: dict[str, Any]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    value: float | None = None
    """The trial's value as the study stored it (with cross-validation the mean over folds), once
    it is complete."""

    @property
    def public_params(self) -> dict[str, Any]:
        """The trial's hyperparameters in the public scheme (``penalty``, ``optimizer``,
        ``penalty.NAME``, ``optimizer.NAME``), fixed ones included; see :mod:`tuner.study._naming`."""
        return named_params(self.penalty, self.optimizer, self.penalty_params, self.optimizer_params)


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

        ``history`` lists every finished trial as ``{"number", "state", "value", "params"}``
        (``params`` by public name, as :attr:`TrialInfo.public_params`).
        """
        return {}

    def on_trial_lost(self, study: StudyInfo, number: int, reason: str) -> None:
        """Trial ``number`` was failed because its worker died (no heartbeat); it runs again once."""

    def on_study_stop(self, study: StudyInfo, status: str, reason: str | None) -> dict[str, Any]:
        """Called instead of :meth:`on_study_end` when a run ends without a refit: ``status`` is
        FINISHED (nothing to refit), KILLED (a signal) or FAILED (an error, in ``reason``);
        returns study user attributes to store, as :meth:`on_study_end` does."""
        return {}
