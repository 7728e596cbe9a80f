"""What a study run produced: the result object and the counts it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.study._storage import redact

if TYPE_CHECKING:  # pragma: no cover
    from tuner.study._configure import TrainOutcome

__all__ = ["StudyResult", "trial_counts", "best_trial"]


@dataclass
class StudyResult:
    """What a finished (or interrupted) study run produced."""

    study_name: str
    storage_url: str
    metric: str
    direction: str
    counts: dict[str, int]
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    """The best trial's hyperparameters by public name (``penalty``, ``optimizer``, ``optimizer.lr``...),
    fixed ones included (see :func:`~tuner.study.public_params`)."""
    best_outcome: TrainOutcome | None
    interrupted: str | None = None
    warnings: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    no_result: str | None = None
    """Set when trials ran here but the study has no completed trial (all pruned): why."""
    budget: int | None = None
    """The study's trial budget (0: stored without running a trial, for a later run and its workers)."""
    cv: int = 0
    """Folds of cross-validation that score the trials (0: the validation split does)."""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "study": self.study_name, "storage": redact(self.storage_url), "metric": self.metric,
            "direction": self.direction, "trials": self.counts, "best_trial": self.best_number,
            "best_value": self.best_value, "best_params": self.best_params, "elapsed_seconds": round(self.elapsed, 2),
            "budget": self.budget, "cv": self.cv,
        }
        if self.best_outcome is not None:
            o = self.best_outcome
            out.update(test=o.test_metrics, validation=o.val_metrics, n_nonzero_weights=o.result.n_nonzero,
                       n_weights=int(o.result.weight.size), penalty=o.model.info["penalty"],
                       optimizer=o.model.info["optimizer"])
        if self.interrupted:
            out["interrupted"] = self.interrupted
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def trial_counts(study: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    from tuner.study._runs import given_up

    trials = study.get_trials(deepcopy=False)
    out = {s.name.lower(): sum(t.state == s for t in trials)
           for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    skipped = sum(given_up(t) for t in trials)
    if skipped:
        out["given_up"] = skipped  # of the failed: a budget or timeout ran out before they trained
    return out


def best_trial(study: Any) -> Any | None:
    """The study's best complete trial, or None before the first one."""
    try:
        return study.best_trial
    except ValueError:
        return None
