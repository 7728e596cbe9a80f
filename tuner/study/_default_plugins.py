"""Which plugins a new study searches when the user did not choose them.

A default study searches every installed penalty and optimizer, less two kinds of plugin:

* those that fail the fast contract checks (:func:`tuner.testing.failing_plugins`): a plugin
  that would crash or silently misbehave in a study is left out, with a notice;
* on small data, the optimizers that are not full-batch (see
  :func:`exact_solvers_for_small_data`).

Plugins are chosen by their declared capabilities, never by name. The notices are returned
for the study's summary.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from tuner._plugin_api import compatibility_reason
from tuner._registry import optimizers, penalties
from tuner.data import Dataset
from tuner.errors import ConfigError
from tuner.study._spec import StudySpec
from tuner.train import work_size

__all__ = ["default_plugins", "drop_failing_plugins", "exact_solvers_for_small_data"]

def default_plugins(spec: StudySpec, data: Dataset, explicit: Collection[str]) -> list[str]:
    """Narrow ``spec``'s plugin lists that are not in ``explicit`` (the spec keys the user gave:
    ``"penalties"``, ``"optimizers"``); returns the notices saying what was left out and why."""
    notices: list[str] = []
    if "penalties" not in explicit:
        spec.penalties, dropped = drop_failing_plugins("penalty", spec.penalties)
        notices += dropped
    if "optimizers" not in explicit:
        spec.optimizers, dropped = drop_failing_plugins("optimizer", spec.optimizers)
        notices += dropped
        notices += exact_solvers_for_small_data(spec, data)
    return notices


def drop_failing_plugins(kind: str, names: list[str]) -> tuple[list[str], list[str]]:
    """``names`` without the plugins of ``kind`` that fail the fast contract checks, and one
    notice per plugin left out. All of them failing is a :class:`ConfigError`."""
    from tuner.testing import failing_plugins  # imports torch: only when a study is about to train

    failing = failing_plugins(kind, list(names)) if names else {}
    if not failing:
        return list(names), []
    kept = [n for n in names if n not in failing]
    if not kept:
        raise ConfigError(f"Every installed {kind} fails its contract checks ("
                          + "; ".join(f"{n}: {why}" for n, why in failing.items())
                          + "); run `tuner plugins check NAME` to see which part of the contract each breaks.")
    notices = [f"the {kind} plugin {n!r} fails its contract checks ({why}), so the default search leaves it out; "
               f"run `tuner plugins check {n}`, or name it in the '{kind}' parameter to search it anyway"
               for n, why in failing.items()]
    return kept, notices


def exact_solvers_for_small_data(spec: StudySpec, data: Dataset) -> list[str]:
    """On data this small (at most ``GAP_CHECK_WORK`` stored training values), keep only the
    full-batch optimizers in ``spec``: they reach each penalty's exact optimum in milliseconds,
    where a mini-batch optimizer gets a few steps an epoch and is pruned as not converged
    (budget spent on models that could never win). Nothing changes when every penalty in play
    would be left without a compatible full-batch optimizer, or none is installed. Returns the
    notice for the summary."""
    from tuner.study._configure import GAP_CHECK_WORK

    work = work_size(data.X_train)
    if work > GAP_CHECK_WORK:
        return []
    exact = [n for n in spec.optimizers if optimizers.get(n).full_batch]
    left_out = [n for n in spec.optimizers if n not in exact]
    if not exact or not left_out or not all(_solvable(p, exact) for p in spec.penalties):
        return []
    spec.optimizers = exact
    return [f"the training data is small ({work:,} stored values), so the search uses the exact full-batch solvers "
            f"({', '.join(exact)}); give the 'optimizer' parameter to search {', '.join(left_out)} too"]


def _solvable(penalty: str, solvers: Iterable[str]) -> bool:
    """Whether one of ``solvers`` takes ``penalty``."""
    pen: Any = penalties.get(penalty)
    return any(compatibility_reason(pen, optimizers.get(o)) is None for o in solvers)
