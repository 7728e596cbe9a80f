"""Parameter importances (fANOVA) of a study's history, for ``study show`` and tracking's
plots and metrics: one function, so both report the same numbers under the same names.

The study package is the one that imports Optuna; tracking hands over the history it got
from the search loop (plain dicts) and receives plain numbers back, keyed by the public
hyperparameter names (see :mod:`tuner.study._naming`): ``penalty`` and ``optimizer`` (the
plugins) and ``optimizer.lr`` for every optimizer's learning rate together, whatever the
per-optimizer Optuna names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tuner.study._naming import public_params

__all__ = ["history_importances", "importance_left_out", "MIN_TRIALS_FOR_HISTORY_IMPORTANCE"]

MIN_TRIALS_FOR_HISTORY_IMPORTANCE = 5

FANOVA_MAX_DEPTH = 8
"""Depth of fANOVA's regression trees. Optuna's default (64) grows them until every leaf holds
one trial, and the marginal variances then cost time that grows faster than the trial count:
on random histories of three hyperparameters, 143 s at 3,000 trials, 17 s at 1,000 and 2.6 s at
300 (2 cores, a test run beside). At depth 8 (at most 256 leaves a tree) the same histories take
3.7, 1.4 and 1.2 s, and no importance moved by more than it moves between two forest seeds at
full depth (benchmarks/RESULTS.md, "study show")."""


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _complete(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{**h, "params": public_params(h.get("params") or {})} for h in history
            if h.get("state") == "COMPLETE" and _finite(h.get("value"))]


def importance_left_out(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The hyperparameters (public names) that vary among the complete trials of ``history`` but
    that not every one of them has, so :func:`history_importances` cannot weigh them (a default
    study's ``penalty.strength``: its ``none`` trials have none)."""
    done = _complete(history)
    if not done:
        return []
    every = set.intersection(*(set(h["params"]) for h in done))
    some = set().union(*(set(h["params"]) for h in done)) - every
    return sorted(name for name in some
                  if len({repr(h["params"][name]) for h in done if name in h["params"]}) > 1)


def _distributions(done: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Distributions rebuilt from the observed values of the parameters every trial has and that vary."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    common = set.intersection(*(set(h["params"]) for h in done))
    dists: dict[str, Any] = {}
    for name in sorted(common):
        values = [h["params"][name] for h in done]
        if len({repr(v) for v in values}) < 2:
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            lo, hi = min(values), max(values)
            log = lo > 0 and hi / lo >= 100
            if all(isinstance(v, int) for v in values):
                dists[name] = IntDistribution(int(lo), int(hi), log=log)
            else:
                dists[name] = FloatDistribution(float(lo), float(hi), log=log)
        else:
            dists[name] = CategoricalDistribution(sorted({v for v in values}, key=repr))
    return dists


def history_importances(history: Sequence[Mapping[str, Any]], direction: str,
                        min_trials: int = MIN_TRIALS_FOR_HISTORY_IMPORTANCE, seed: int = 0) -> dict[str, float]:
    """fANOVA parameter importances (``optuna.importance``, trees :data:`FANOVA_MAX_DEPTH` deep) of
    the complete trials of ``history``.

    ``history`` lists finished trials as ``{"number", "state", "value", "params"}`` (what the
    search loop gives a :class:`~tuner.study.StudyObserver` at the end of a study; the
    params stored or public). The params are taken in the public scheme; the ones every
    complete trial has (a hyperparameter of only some plugins drops out) with more than one
    distinct value are used, with distributions rebuilt from the observed values. Returns
    ``{public name: importance}``, most important first, or an empty dict when there are
    fewer than ``min_trials`` complete trials or nothing varies.
    """
    done = _complete(history)
    if len(done) < min_trials:
        return {}
    dists = _distributions(done)
    if not dists:
        return {}
    import optuna

    study = optuna.create_study(direction="maximize" if direction == "maximize" else "minimize")
    for h in done:
        study.add_trial(optuna.trial.create_trial(
            params={k: h["params"][k] for k in dists}, distributions=dists, value=float(h["value"])))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed, max_depth=FANOVA_MAX_DEPTH)
    return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}
