"""The one user-facing naming scheme of a trial's hyperparameters.

A user sees (and ``--param``, ``plugins list``, ``study show/best/export``, ``TuneResult``
and MLflow use) ``penalty`` and ``optimizer`` (the two plugin names of the trial) and
``penalty.NAME`` / ``optimizer.NAME`` (a hyperparameter of the chosen plugin, e.g.
``optimizer.lr``). A trial has one penalty and one optimizer, so these names are unique.

Inside the study the Optuna parameters differ: the pair is one categorical ``variant``
(``"l2:lbfgs"``), and a hyperparameter whose distribution differs between plugins gets the
plugin's name (``optimizer.lbfgs.lr``) because Optuna needs one distribution per name.
Those names stay inside :mod:`tuner.study`; :func:`public_params` is the one translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuner.errors import ConfigError
from tuner.study._variant import VARIANT, split_variant

if TYPE_CHECKING:  # pragma: no cover
    from tuner.study._search_space import SearchSpace
    from tuner.study._spec import StudySpec

__all__ = ["PENALTY", "OPTIMIZER", "public_name", "public_params", "named_params"]

PENALTY = "penalty"
OPTIMIZER = "optimizer"
_KINDS = (PENALTY, OPTIMIZER)


def public_name(name: str) -> str:
    """The public name of one stored trial parameter: ``optimizer.lbfgs.lr`` -> ``optimizer.lr``;
    ``penalty.strength`` and names outside the two plugin kinds are returned unchanged.

    (A hyperparameter name is a Python identifier and a plugin name holds no dot, so the part
    after the last dot is the hyperparameter.)
    """
    kind, dot, rest = name.partition(".")
    if not dot or kind not in _KINDS:
        return name
    return f"{kind}.{rest.rpartition('.')[2]}"


def named_params(penalty: str, optimizer: str, penalty_params: Mapping[str, Any],
                 optimizer_params: Mapping[str, Any]) -> dict[str, Any]:
    """``{"penalty": penalty, "optimizer": optimizer, "penalty.HP": ..., "optimizer.HP": ...}``
    from the two plugin names and their hyperparameters (bare names, fixed ones included)."""
    out: dict[str, Any] = {PENALTY: penalty, OPTIMIZER: optimizer}
    out.update({f"{PENALTY}.{k}": v for k, v in penalty_params.items()})
    out.update({f"{OPTIMIZER}.{k}": v for k, v in optimizer_params.items()})
    return out


def public_params(params: Mapping[str, Any], space: SearchSpace | StudySpec | None = None) -> dict[str, Any]:
    """A trial's stored (Optuna) parameters in the public scheme.

    ``{"variant": "l2:lbfgs", "penalty.strength": 0.01, "optimizer.lbfgs.lr": 0.5}`` ->
    ``{"penalty": "l2", "optimizer": "lbfgs", "penalty.strength": 0.01, "optimizer.lr": 0.5}``.
    With the study's ``space`` (a :class:`~tuner.study.SearchSpace`, or the
    :class:`~tuner.study.StudySpec` to build it from), the hyperparameters the user fixed
    (``--param optimizer.history_size=10``: not Optuna parameters) are filled in too. Already
    public parameters come back unchanged; parameters of a study tuner did not create (no
    ``variant``) keep their names.
    """
    out: dict[str, Any] = {}
    raw = params.get(VARIANT)
    variant = raw if isinstance(raw, str) else None
    if variant is not None:
        try:
            out[PENALTY], out[OPTIMIZER] = split_variant(variant)
        except ConfigError:  # not a pair (a study tuner did not create): kept as it is
            variant = None
    for key in (PENALTY, OPTIMIZER):
        if key in params and key not in out:
            out[key] = params[key]
    hidden = (VARIANT, PENALTY, OPTIMIZER) if variant is not None else (PENALTY, OPTIMIZER)
    rest = {public_name(k): v for k, v in params.items() if k not in hidden}
    for kind in _KINDS:  # penalty's hyperparameters first, then the optimizer's
        out.update({k: v for k, v in rest.items() if k.startswith(f"{kind}.")})
    if space is not None and variant is not None:
        for slot in _space(space).slots.get(variant, ()):
            if slot.is_fixed:
                out.setdefault(f"{slot.kind}.{slot.hp}", slot.fixed)
        out = _ordered(out)
    out.update({k: v for k, v in rest.items() if k not in out})
    return out


def _ordered(params: dict[str, Any]) -> dict[str, Any]:
    """The plugin names first, then the penalty's hyperparameters, then the optimizer's."""
    head = {k: params[k] for k in _KINDS if k in params}
    for kind in _KINDS:
        head.update({k: v for k, v in params.items() if k.startswith(f"{kind}.")})
    return head


def _space(space: SearchSpace | StudySpec) -> SearchSpace:
    from tuner.study._search_space import SearchSpace, build_space

    return space if isinstance(space, SearchSpace) else build_space(space)
