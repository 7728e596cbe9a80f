"""The search space of a study: which variants (penalty:optimizer pairs) are in play and, for
each, the conditional hyperparameters of its two plugins, with the user's narrowing applied;
and the Optuna sampler and pruner that search it.

A trial picks one categorical :data:`~tuner.study._variant.VARIANT`, then the chosen plugins'
own hyperparameters. Two plugins declaring the same hyperparameter with the same distribution
share one Optuna parameter (``penalty.strength``); different distributions get the plugin's
name (``optimizer.sgd.lr``). Those Optuna names are internal: a user names a hyperparameter
``optimizer.lr`` (:attr:`Slot.public_name`, :mod:`tuner.study._naming`), and a ``params``
entry of that name applies to every plugin in play that declares it.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuner._plugin_api import compatibility_reason
from tuner._registry import optimizers, penalties
from tuner._space import Categorical, Int, qualified
from tuner.errors import ConfigError
from tuner.study._spec import StudySpec, parse_range
from tuner.study._variant import VARIANT, join_variant, split_variant

__all__ = ["Slot", "SearchSpace", "build_space", "unsearched", "params_of", "make_sampler", "make_pruner", "SAMPLERS", "PRUNERS"]

SAMPLERS = ("tpe", "random", "qmc", "grid", "cmaes")

LEARNING_SAMPLERS = ("tpe", "cmaes")
"""The samplers that learn from finished trials: a batch of them asked at once is only as
well informed as the trials finished before it (see :func:`tuner.study._trial_batches.batch_size_for`)."""

STARTUP_TRIALS = 10
"""TPE's random start: trials sampled at random before it models the finished ones."""
PRUNERS = ("median", "hyperband", "none")

_SlotKey = tuple[str, str, str]  # (kind, plugin, hyperparameter)


@dataclass
class Slot:
    """One hyperparameter of one plugin, as it appears in the trials."""

    name: str  # the Optuna parameter name (internal), e.g. penalty.strength or optimizer.sgd.lr
    kind: str  # "penalty" or "optimizer"
    plugin: str
    hp: str
    spec: Any  # tuner Float / Int / Categorical
    fixed: Any = None
    is_fixed: bool = False
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def public_name(self) -> str:
        """The name a user sees and gives (``optimizer.lr``), whatever the Optuna name."""
        return f"{self.kind}.{self.hp}"

    @property
    def numeric(self) -> bool:
        return self.low is not None and self.high is not None

    def suggest(self, trial: Any) -> Any:
        """The slot's value for an Optuna ``trial`` (asked from it unless fixed)."""
        if self.is_fixed:
            return self.fixed
        if isinstance(self.spec, Categorical) or self.low is None or self.high is None:
            return trial.suggest_categorical(self.name, list(self.spec.choices))
        if isinstance(self.spec, Int):
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def grid(self, points: int = 5) -> list[Any]:
        """Values for the grid sampler: the choices, or ``points`` values over the range."""
        if self.low is None or self.high is None:
            return list(self.spec.choices)
        if self.log:
            # 12 significant digits: 1e-05, not geomspace's 9.999999999999999e-06
            return [float(f"{v:.12g}") for v in np.geomspace(self.low, self.high, points)]
        values = np.linspace(self.low, self.high, points)
        if isinstance(self.spec, Int):
            return sorted({int(round(v)) for v in values})
        return [float(v) for v in values]

    def describe(self) -> Any:
        if self.is_fixed:
            return self.fixed
        if self.low is None:
            return list(self.spec.choices)
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass
class SearchSpace:
    """Variants in play and, for each, the slots of its two plugins."""

    variants: list[str]
    slots: dict[str, list[Slot]]
    skipped: dict[str, str] = field(default_factory=dict)  # incompatible pair -> reason

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {VARIANT: self.variants}
        for slots in self.slots.values():
            for s in slots:
                out[s.name] = s.describe()
        return out


def build_space(spec: StudySpec) -> SearchSpace:
    """The variants (compatible pairs) and their conditional hyperparameters, overrides applied."""
    pens = {n: penalties.get(n) for n in spec.penalties}
    opts = {n: optimizers.get(n) for n in spec.optimizers}
    variants, skipped = _variants(pens, opts, spec.left_out_variants)
    all_slots = {**_slots("penalty", pens), **_slots("optimizer", opts)}
    # a value for one plugin (optimizer.adam.lr) beats the value for all (optimizer.lr), in any order
    for key, text in sorted(spec.params.items(), key=lambda item: qualified(item[0])):
        _narrow(key, text, all_slots)
    _own_names_where_ranges_differ(all_slots)
    slots: dict[str, list[Slot]] = {}
    for v in variants:
        pn, on = split_variant(v)
        slots[v] = [s for (kind, pl, _), s in all_slots.items() if pl == (pn if kind == "penalty" else on)]
    return SearchSpace(variants, slots, skipped)


def unsearched(space: SearchSpace, spec: StudySpec) -> list[str]:
    """One notice per penalty or optimizer of ``spec`` that is in no variant of ``space`` (every
    pair it makes was incompatible), with the reasons: named, but never trained."""
    notices = []
    for kind, names, side in (("penalty", spec.penalties, 0), ("optimizer", spec.optimizers, 1)):
        for name in names:
            if any(split_variant(v)[side] == name for v in space.variants):
                continue
            reasons = [why for v, why in space.skipped.items() if split_variant(v)[side] == name]
            notices.append(f"the {kind} {name!r} is not searched: " + "; ".join(reasons))
    return notices


def _variants(pens: Mapping[str, Any], opts: Mapping[str, Any],
              left_out: Collection[str] = ()) -> tuple[list[str], dict[str, str]]:
    """The compatible pairs not ``left_out``, and the others with the reason."""
    variants, skipped = [], {}
    for pn, p in pens.items():
        for on, o in opts.items():
            reason = compatibility_reason(p, o)
            if reason is None and join_variant(pn, on) in left_out:
                reason = (f"the default search trains penalty '{pn}' with a truncated Newton solver, which reaches "
                          f"the optimum that '{on}' reaches in fewer passes")
            if reason:
                skipped[join_variant(pn, on)] = reason
            else:
                variants.append(join_variant(pn, on))
    if not variants:
        raise ConfigError("No compatible penalty/optimizer pair among the choices: "
                          + "; ".join(skipped.values()) + ".")
    return variants, skipped


def _slots(kind: str, plugins: Mapping[str, Any]) -> dict[_SlotKey, Slot]:
    """One slot per hyperparameter of each plugin; a name shared when the distributions agree."""
    decl: dict[str, set[str]] = {}
    for pl in plugins.values():
        for hp, hspec in pl.search_space.items():
            d = hspec.to_dict()  # the Optuna distribution, not defaults or descriptions, decides sharing
            decl.setdefault(hp, set()).add(repr((d["type"], d.get("low"), d.get("high"), d.get("log"),
                                                 d.get("choices"))))
    out: dict[_SlotKey, Slot] = {}
    for pn, pl in plugins.items():
        for hp, hspec in pl.search_space.items():
            s = Slot(f"{kind}.{hp}" if len(decl[hp]) == 1 else f"{kind}.{pn}.{hp}", kind, pn, hp, hspec)
            if not isinstance(hspec, Categorical):
                s.low, s.high, s.log = hspec.low, hspec.high, hspec.log
            if not getattr(hspec, "searched", True):  # held at its default unless params names it (_narrow)
                s.fixed, s.is_fixed = hspec.default, True
            out[(kind, pn, hp)] = s
    return out


def _own_names_where_ranges_differ(all_slots: Mapping[_SlotKey, Slot]) -> None:
    """Give each plugin its own Optuna name for a shared hyperparameter that ``params`` narrowed
    for one plugin only (``penalty.group_lasso.strength=0.01..0.1`` beside ``l2``): Optuna needs
    one distribution per name."""
    by_name: dict[str, list[Slot]] = {}
    for s in all_slots.values():
        by_name.setdefault(s.name, []).append(s)
    for group in by_name.values():
        searched = {(s.low, s.high, s.log) for s in group if not s.is_fixed and not isinstance(s.spec, Categorical)}
        if len(group) > 1 and len(searched) > 1:
            for s in group:
                s.name = f"{s.kind}.{s.plugin}.{s.hp}"


def _narrow(key: str, text: str, all_slots: Mapping[_SlotKey, Slot]) -> None:
    """Apply one ``params`` entry (``KEY: VALUE`` or ``KEY: "LOW..HIGH[:log]"``) to the slots it names."""
    matches = [s for s in all_slots.values()
               if key in (s.name, f"{s.kind}.{s.hp}", f"{s.kind}.{s.plugin}.{s.hp}")]
    if not matches:
        known = sorted({s.public_name for s in all_slots.values()})
        raise ConfigError(f"params[{key!r}]: no plugin in play declares it. Searchable: {', '.join(known)}.")
    mode, value = parse_range(text)
    for s in matches:
        if mode == "fixed":
            s.fixed, s.is_fixed = s.spec.validate(s.public_name, value), True
            continue
        low, high, log = value
        if isinstance(s.spec, Categorical):
            raise ConfigError(f"params[{key!r}]: {s.public_name} is categorical; fix it to one of its choices instead of "
                              "a range.")
        s.spec.validate(s.public_name, low)
        s.spec.validate(s.public_name, high)
        s.low, s.high, s.log = low, high, log or s.spec.log
        s.is_fixed = False  # a range searches it, whether or not the plugin searches it by default


def params_of(space: SearchSpace, trial: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The penalty's and the optimizer's hyperparameters of a trial (anything with ``params``:
    an Optuna trial, a :class:`~tuner.study.TrialRecord`), fixed slots included."""
    pp: dict[str, Any] = {}
    op: dict[str, Any] = {}
    for s in space.slots[trial.params[VARIANT]]:
        # a stored value first: a trial of an older study may have searched what is held now
        value = trial.params[s.name] if s.name in trial.params or not s.is_fixed else s.fixed
        (pp if s.kind == "penalty" else op)[s.hp] = value
    return pp, op


def make_sampler(name: str, seed: int, space: SearchSpace) -> Any:
    """The Optuna sampler called ``name`` (one of :data:`SAMPLERS`), seeded."""
    import optuna

    samplers = optuna.samplers
    with warnings.catch_warnings():  # TPE's multivariate/group and QMC are "experimental" in Optuna: chosen on purpose
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":  # constant_liar: trials running in other workers count as bad, so workers spread out
            return samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=STARTUP_TRIALS,
                                       constant_liar=True)
        if name == "random":
            return samplers.RandomSampler(seed=seed)
        if name == "qmc":
            return samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
        if name == "cmaes":
            return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False,
                                         independent_sampler=samplers.TPESampler(seed=seed))
        if name == "grid":  # each variant's own parameters: Optuna's product of all of them repeats points
            from tuner.study._grid import VariantGridSampler

            return VariantGridSampler({v: {s.name: s.grid() for s in space.slots[v] if not s.is_fixed}
                                       for v in space.variants}, seed=seed)
    raise ConfigError(f"The 'sampler' parameter must be one of {list(SAMPLERS)}; got {name!r} instead.")


def make_pruner(name: str, epochs: int, folds: int = 0) -> Any:
    """The Optuna pruner called ``name`` (one of :data:`PRUNERS`) for trials of up to ``epochs``
    epochs, or, with ``folds`` > 0 (cross-validation), for trials whose steps are their folds' scores:
    every fold is then judged (an epoch warm-up of 3 steps had left folds 0-2 unjudged, so ``--cv 3``
    never pruned) and Hyperband's resource is the folds."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0 if folds else 3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=folds if folds else max(epochs, 3))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"The 'pruner' parameter must be one of {list(PRUNERS)}; got {name!r} instead.")
