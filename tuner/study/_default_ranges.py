"""The penalty strengths a new study searches when the user did not give a range.

The built-in penalties declare ``strength`` over 1e-7..10 whatever the data. Past a point that
the training data sets, every strength gives the same useless model: with an unpenalized
intercept, an L1 penalty of strength at least

    lambda_max = max |X^T (Y - mean(Y))| / n

(the gradient of the mean log loss at zero weights, Y one column per class) has every weight at
zero, which is glmnet's start of its path. On SST-2 that is 0.0014, so half of the declared
decades gave the constant model. A new study searches ``strength`` up to ``CEILING_FACTOR``
times ``lambda_max`` instead: L1 there is the constant model, and L2 is nearly (at ten times
``lambda_max`` the validation log loss was within 1% of the constant's on SST-2, and the best
strengths the peer benchmark found on a9a, SST-2 and breast_cancer are 6e-4 to 5e-3 times it).

This only applies where every penalty in play that declares ``strength`` follows the built-in
convention (:meth:`~tuner.Penalty.elastic_net`: L1 and L2 weights summing to the strength), so
that the bound means the same for all of them; the user's own range (``params``) always wins.
The range is stored in the study's spec, so a resume and every worker search the same one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from tuner._registry import penalties
from tuner._space import Float
from tuner.data import Dataset
from tuner.study._spec import StudySpec
from tuner.train import class_weights

__all__ = ["CEILING_FACTOR", "STRENGTH", "lambda_max", "searched_ceiling", "strength_ceiling"]

STRENGTH = "penalty.strength"
CEILING_FACTOR = 10.0


def lambda_max(X: Any, y: np.ndarray, n_classes: int, row_weight: np.ndarray | None = None) -> float:
    """The smallest L1 strength at which every weight of the minimiser of ``(1/n) sum_i s_i
    loss_i`` is zero (its intercept unpenalized): ``max |X^T (s * (Y - mean_s(Y)))| / n``, with
    ``s`` the rows' weights (``row_weight``, ones by default)."""
    y = np.asarray(y)
    s = np.ones(len(y)) if row_weight is None else np.asarray(row_weight, dtype=np.float64)
    Y = ((y[:, None] == np.arange(n_classes)[None, :]) if n_classes > 2 else (y == 1)[:, None]).astype(np.float64)
    R = s[:, None] * (Y - s @ Y / max(float(s.sum()), 1e-300))
    G = np.asarray(X.T @ R) / max(len(y), 1)
    return float(np.abs(G).max()) if G.size else 0.0


def strength_ceiling(spec: StudySpec, data: Dataset) -> list[str]:
    """Narrow ``spec``'s ``penalty.strength`` range to at most ``CEILING_FACTOR`` times the
    training data's :func:`lambda_max` (see the module docstring); returns the notice saying so,
    or nothing where the range stays as declared."""
    if any(key.startswith("penalty.") and key.endswith(".strength") for key in spec.params):  # plugin's or all
        return []
    declared = _declared_range(spec.penalties)
    if declared is None:
        return []
    low, high = declared
    weights = class_weights(data.y_train, data.n_classes, spec.train.get("class_weight"), data.classes)[data.y_train]
    lmax = lambda_max(data.X_train, data.y_train, data.n_classes, weights)
    ceiling = searched_ceiling(lmax, low, high)
    if ceiling is None:
        return []
    spec.params = {**spec.params, STRENGTH: f"{low:g}..{ceiling:g}:log"}
    return [f"{STRENGTH} is searched in {low:g}..{ceiling:g}, not up to {high:g}: from {lmax:.2g} on (this training "
            f"data's lambda_max) L1 sets every weight to zero, and L2 above {ceiling:g} is close to no model; "
            f"--param {STRENGTH}=LOW..HIGH:log searches another range"]


def searched_ceiling(lmax: float, low: float, high: float) -> float | None:
    """The top of the strengths searched for data whose :func:`lambda_max` is ``lmax``, where the
    plugins declare ``low..high``: ``CEILING_FACTOR * lmax`` rounded up, or None where the declared
    range stays (less than a decade cut, less than one left, or no finite ``lmax``). Imports no
    torch (the peer benchmark searches the same range)."""
    if not math.isfinite(lmax) or lmax <= 0:
        return None
    ceiling = _round_up(CEILING_FACTOR * lmax)
    if ceiling > high / 10 or ceiling <= 10 * low:  # less than a decade cut, or less than one left
        return None
    return ceiling


def _declared_range(names: list[str]) -> tuple[float, float] | None:
    """The one log range that every penalty declaring ``strength`` declares, if each of them
    follows the built-in convention; None otherwise (or when none declares it)."""
    ranges = set()
    for name in names:
        plugin = penalties.get(name)
        spec = plugin.search_space.get("strength")
        if spec is None:
            continue
        if not isinstance(spec, Float) or not spec.log or not _conventional(plugin, spec.default):
            return None
        ranges.add((float(spec.low), float(spec.high)))
    return ranges.pop() if len(ranges) == 1 else None


def _conventional(plugin: Any, default_strength: float) -> bool:
    """Whether the plugin's L1 and L2 weights at its default hyperparameters sum to the strength."""
    params: Mapping[str, Any] = {hp: s.default for hp, s in plugin.search_space.items()}
    try:
        split = plugin.elastic_net(params)
    except Exception:  # a plugin's own error: then the bound means nothing for it
        return False
    return split is not None and math.isclose(float(sum(split)), float(default_strength), rel_tol=1e-9)


def _round_up(value: float) -> float:
    """``value`` rounded up to one significant digit (0.0141 -> 0.02), for a readable range."""
    exponent = math.floor(math.log10(value))
    return float(f"{math.ceil(round(value / 10.0 ** exponent, 9))}e{exponent}")
