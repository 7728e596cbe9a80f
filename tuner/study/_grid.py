"""``--sampler grid``: every variant's own grid, each point once.

Optuna's ``GridSampler`` takes the Cartesian product of every parameter it is given. A study's
parameters are conditional (``penalty=none`` has no strength, ``l2:newton`` no learning rate),
so that product repeated each variant once for every level of the parameters it ignores: on
breast_cancer, 12 trials evaluated 7 configurations, and with every optimizer in play the product
had 10.7 billion points (a ``MemoryError`` before the first trial) where the variants' own grids
have 11,166.

:class:`VariantGridSampler` is Optuna's grid sampler with that product replaced by the union of
the variants' own products; everything else (a point per trial as its ``grid_id`` system
attribute, the seeded shuffle shared by every process, the retry of a point whose trial was
lost, the stop once the grid is spent) is Optuna's.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from optuna.samplers import GridSampler
from optuna.samplers._lazy_random_state import LazyRandomState

from tuner.study._variant import VARIANT

__all__ = ["VariantGridSampler", "GRID_LAYOUT"]

GRID_LAYOUT = "tuner.grid_layout"
"""An entry of the grid that the sampler stores with each trial (Optuna's ``search_space`` system
attribute) and that no trial suggests. Optuna counts a stored trial's ``grid_id`` only when that
stored grid equals the sampler's: the entry keeps the points of a study made by an older version,
whose grid ids index the Cartesian product, from being read as points of this one."""
_PER_VARIANT = "per-variant"


class VariantGridSampler(GridSampler):
    """A grid sampler over ``{variant: {parameter: values}}``: each variant's parameters alone.

    ``grids`` maps each variant to the values of each parameter it suggests (a parameter that
    two variants share, such as ``penalty.strength``, must have the same values in both); the
    points are shuffled with ``seed``, the same way in every process of a study."""

    def __init__(self, grids: Mapping[str, Mapping[str, Sequence[Any]]], seed: int | None = None) -> None:
        values: dict[str, list[Any]] = {VARIANT: list(grids), GRID_LAYOUT: [_PER_VARIANT]}
        for variant, params in grids.items():
            for name, options in params.items():
                if name in values and list(options) != values[name]:
                    raise ValueError(f"grid parameter {name!r} has other values in variant {variant!r}: "
                                     f"{list(options)} against {values[name]}")
                values[name] = list(options)
        for name, options in values.items():
            for value in options:
                self._check_value(name, value)
        # Optuna's GridSampler state, as its __init__ sets it (the product of every parameter replaced)
        self._search_space = dict(sorted(values.items()))
        self._param_names = list(self._search_space)
        self._all_grids = [point for variant, params in grids.items() for point in self._points(variant, params)]
        self._n_min_trials = len(self._all_grids)
        self._rng = LazyRandomState(seed or 0)
        self._rng.rng.shuffle(self._all_grids)  # type: ignore[arg-type]  # as Optuna's own __init__

    def _points(self, variant: str, params: Mapping[str, Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The product of ``variant``'s own parameters, as full points (None where it has no parameter)."""
        own = [name for name in self._param_names if name in params]
        points = []
        for combo in itertools.product(*(params[name] for name in own)):
            chosen = {**dict(zip(own, combo)), VARIANT: variant, GRID_LAYOUT: _PER_VARIANT}
            points.append(tuple(chosen.get(name) for name in self._param_names))
        return points
