"""Turning names and hyperparameter values into a trained, evaluated model.

This is the one place that joins data, plugins, trainer and model; :func:`tuner.fit` (and so
``tuner train``) and every search trial go through :func:`train_many`. Every hyperparameter a
caller leaves out takes its plugin's declared default (:func:`resolve_params`); the reference
solver of the optimality check is chosen by capability (:func:`reference_solver`), never by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner._plugin_api import Optimizer, Penalty, compatibility_reason
from tuner._registry import OWN_DISTRIBUTION, optimizers, penalties
from tuner._space import qualified
from tuner.data import Dataset
from tuner.errors import ConfigError, IncompatiblePluginsError, PluginError
from tuner.model import LogisticModel
from tuner.study._signals import StopCallback
from tuner.train import Callback, FitResult, TrainConfig, batchable, evaluate, fit_many, work_size

__all__ = ["resolve_params", "resolve_pair", "split_overrides", "split_params", "check_plugins", "reference_solver",
           "prepare_sample_weight", "train_one", "train_many", "cv_folds", "TrainOutcome", "optimality_gap",
           "GAP_CHECK_WORK", "MAX_OPTIMALITY_GAP", "gap_checked", "fit_gap", "separated_without_penalty",
           "NO_OPTIMUM_NOTE"]

MAX_OPTIMALITY_GAP = 0.01
"""A study prunes a trial whose mini-batch fit stopped more than this far (relative) above the
optimum of its objective, where that optimum is checked (:func:`optimality_gap`)."""

NO_FINITE_OPTIMUM = 1e-4
"""A reference objective below this fraction of the objective at zero weights (``log(classes)``)
means the data is separable and the penalty too weak to bound the weights: the infimum is 0 at
infinite weights, a relative gap to it means nothing, and :func:`optimality_gap` says nothing."""

GAP_CHECK_WORK = 250_000
"""Up to this many stored training values, a mini-batch fit is compared with the exact optimum of
its objective (a full-batch solve costs a fraction of the fit there). Above it, the stochastic
optimizers are the tool for the job and get many steps per epoch; the check is skipped."""


def resolve_params(plugin: Penalty | Optimizer, overrides: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The plugin's defaults with ``overrides`` applied, each value checked against its space."""
    space = plugin.search_space
    unknown = sorted(set(overrides) - set(space))
    if unknown:
        known = ", ".join(f"{kind}.{k}" for k in space) or "none"
        raise ConfigError(f"{kind} '{plugin.name}' has no hyperparameter {unknown[0]!r}; it has: {known}.")
    out = {name: hp.default for name, hp in space.items()}
    for name, value in overrides.items():
        out[name] = space[name].validate(f"{kind}.{name}", value)
    return out


def resolve_pair(penalty_name: str, optimizer_name: str) -> tuple[Penalty, Optimizer]:
    """Load both plugins and refuse an incompatible pair with the reason."""
    pen, opt = penalties.get(penalty_name), optimizers.get(optimizer_name)
    reason = compatibility_reason(pen, opt)
    if reason:
        raise IncompatiblePluginsError(f"Penalty '{pen.name}' cannot be used with optimizer '{opt.name}': {reason}.")
    return pen, opt


def split_overrides(pairs: Sequence[tuple[str, Any]], penalty: str | None = None,
                    optimizer: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``[("penalty.strength", v), ("optimizer.lr", v)]`` -> (penalty overrides, optimizer overrides).

    A name qualified by a plugin (``optimizer.sgd.lr``) must name the plugin in use when
    ``penalty`` / ``optimizer`` are given: it is refused, never applied to another plugin.
    """
    pen: dict[str, Any] = {}
    opt: dict[str, Any] = {}
    for key, value in sorted(pairs, key=lambda pair: qualified(pair[0])):  # optimizer.sgd.lr beats optimizer.lr
        group, _, name = key.partition(".")
        plugin, _, hp = name.rpartition(".")
        used = {"penalty": penalty, "optimizer": optimizer}.get(group)
        if group not in ("penalty", "optimizer") or not hp or "." in plugin:
            raise ConfigError(f"Hyperparameter {key!r} must be named penalty.NAME or optimizer.NAME.")
        if plugin and used is not None and plugin != used:
            raise ConfigError(f"params[{key!r}] is for {group} '{plugin}', but the {group} is '{used}'; use "
                              f"params['{group}.{hp}'] or choose the {group} '{plugin}'.")
        (pen if group == "penalty" else opt)[hp] = value
    return pen, opt


def split_params(params: Mapping[str, Any], penalty: str, optimizer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The API's ``params`` -> (penalty overrides, optimizer overrides).

    Keys are ``penalty.NAME`` / ``optimizer.NAME`` (or qualified by the plugin:
    ``optimizer.sgd.lr``), or a bare ``NAME`` that exactly one of the two plugins declares.
    A string value is read as on the command line (``"1e-3"`` is a number).
    """
    from tuner._space import parse_value

    pen_space, opt_space = penalties.get(penalty).search_space, optimizers.get(optimizer).search_space
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"params keys must be hyperparameter names such as 'penalty.strength'; got {key!r}.")
        value = parse_value(value) if isinstance(value, str) else value
        if "." in key:
            pairs.append((key, value))
            continue
        owners = [g for g, space in (("penalty", pen_space), ("optimizer", opt_space)) if key in space]
        if len(owners) != 1:
            known = [f"penalty.{k}" for k in pen_space] + [f"optimizer.{k}" for k in opt_space]
            why = "both plugins declare it" if owners else "neither plugin declares it"
            raise ConfigError(f"params[{key!r}]: {why}; name it penalty.{key} or optimizer.{key} "
                              f"(hyperparameters of {penalty} + {optimizer}: {', '.join(known) or 'none'}).")
        pairs.append((f"{owners[0]}.{key}", value))
    return split_overrides(pairs, penalty, optimizer)


def check_plugins(penalty: str, optimizer: str, penalty_overrides: Mapping[str, Any],
                  optimizer_overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Refuse unknown or incompatible plugins and bad hyperparameter values (before any data is
    read); returns every hyperparameter of both plugins, defaults filled in."""
    pen, opt = resolve_pair(penalty, optimizer)
    return resolve_params(pen, penalty_overrides, "penalty"), resolve_params(opt, optimizer_overrides, "optimizer")


def reference_solver(penalty: Penalty) -> Optimizer | None:
    """The optimizer that finds the exact optimum of ``penalty``'s objective, chosen by
    capability: a registered full-batch optimizer that takes the penalty (for one with a
    non-smooth part that means a proximal solver, ``prox_mode="internal"``). The built-in solvers
    go first: ``full_batch`` says how a plugin reads the data, not that it reaches the optimum, and
    a third-party one that takes one gradient step an epoch would make every study's optimality
    gap look small. Then, for a smooth penalty, a solver made for smooth objectives (one that
    declines non-smooth ones, or takes only an L1 part: ``l1_only``) goes before a proximal one;
    ties go by name, so the choice is the same on every machine."""
    candidates = []
    for name in optimizers.names():
        try:
            opt = optimizers.get(name)
        except PluginError:
            continue
        if not opt.full_batch or compatibility_reason(penalty, opt):
            continue
        if penalty.has_prox and opt.prox_mode != "internal":
            continue
        third_party = optimizers.info(name).distribution != OWN_DISTRIBUTION
        made_for_smooth = opt.prox_mode == "unsupported" or opt.l1_only  # L-BFGS (its L1 part is OWL-QN's)
        candidates.append(((third_party, penalty.has_prox or not made_for_smooth, name), opt))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def prepare_sample_weight(sample_weight: Any, data: Dataset) -> np.ndarray:
    """Per-row weights of the training rows, checked: one finite weight >= 0 per row, on data
    whose every row trains (no validation or test split)."""
    if len(data.y_val) or len(data.y_test):
        raise ConfigError("The 'sample_weight' parameter gives one weight per row of the data, so every row must "
                          "train: set val_size=0 and test_size=0.")
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim != 1 or len(w) != len(data.y_train):
        raise ConfigError(f"The 'sample_weight' parameter must hold one weight per row ({len(data.y_train)}); got "
                          f"shape {w.shape} instead.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ConfigError("The 'sample_weight' parameter must hold finite weights >= 0.")
    return w


def optimality_gap(data: Dataset, penalty: Penalty, penalty_params: Mapping[str, Any], result: FitResult,
                   config: TrainConfig) -> tuple[float, str] | None:
    """How far ``result`` stopped above the optimum of its training objective, relative.

    The optimum comes from the penalty's :func:`reference_solver` (a converging full-batch
    solver, proximal for a penalty with a non-smooth part), in float64. ``None`` when the problem
    is larger than :data:`GAP_CHECK_WORK`, has at least as many features as training rows, or no
    such solver takes the penalty. Returns the gap (``>= 0``) and the solver's name.
    """
    return optimality_gaps(data, [penalty], [penalty_params], [result], config)[0]


def optimality_gaps(data: Dataset, pens: Sequence[Penalty], params: Sequence[Mapping[str, Any]],
                    results: Sequence[FitResult | BaseException], config: TrainConfig
                    ) -> list[tuple[float, str] | None]:
    """:func:`optimality_gap` for several fits at once: the reference solves of one solver run
    side by side (one :func:`fit_many` per solver) when its plugins allow it."""
    out: list[tuple[float, str] | None] = [None] * len(pens)
    if not gap_checked(data.X_train):
        return out
    by_solver: dict[str, tuple[Optimizer, list[int]]] = {}
    for i, (pen, result) in enumerate(zip(pens, results)):
        if isinstance(result, BaseException):
            continue
        solver = reference_solver(pen)
        if solver is not None:
            by_solver.setdefault(solver.name, (solver, []))[1].append(i)
    exact = config.exact()
    for name, (solver, idx) in by_solver.items():
        solver_params = {k: hp.default for k, hp in solver.search_space.items()}
        together = all(batchable(pens[i], solver) for i in idx)
        groups = [idx] if together else [[i] for i in idx]
        for group in groups:
            refs = fit_many(data.X_train, data.y_train, data.n_classes, [pens[i] for i in group],
                            [params[i] for i in group], solver, [solver_params] * len(group), exact,
                            classes=data.classes)
            for i, reference in zip(group, refs):
                if isinstance(reference, BaseException):
                    continue  # a diverged reference says nothing
                out[i] = _gap(results[i].objective, reference, name)  # type: ignore[union-attr]
    return out


NO_OPTIMUM_NOTE = ("there is no penalty and the model separates the training rows, so the objective has no "
                   "minimum: the weights grow as long as the solver runs, and the probabilities depend on where it "
                   "stopped; add a penalty")


def separated_without_penalty(X: Any, y: np.ndarray, weight: np.ndarray, intercept: np.ndarray, penalty: str,
                              penalty_params: Mapping[str, Any], sample_weight: np.ndarray | None = None) -> bool:
    """Whether an unpenalised model (``weight`` ``(features, outputs)``) classifies every training
    row of positive weight right: scaling its weights up then lowers the loss without end, so the
    objective has no minimum (newton and lbfgs each said "converged", 166 and 208 apart)."""
    if penalty != "none" and penalty_params.get("strength", None) != 0:
        return False
    scores = np.asarray(X @ np.asarray(weight)) + np.asarray(intercept).reshape(1, -1)
    predicted = (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)
    right = predicted == np.asarray(y)
    if sample_weight is not None:
        right |= np.asarray(sample_weight) == 0
    return bool(np.all(right))


def gap_checked(X: Any) -> bool:
    """Whether a fit on training matrix ``X`` is compared with the exact optimum: at most
    :data:`GAP_CHECK_WORK` stored values, and more rows than features. With at least as many
    features as rows the classes can be split by a hyperplane, so a weak penalty's optimum lies
    far out, and reaching it takes the reference thousands of passes: 20 s against a 3 s fit on
    1,200 reviews x 21,856 TF-IDF features, l1 at 3e-6."""
    rows, features = (int(v) for v in X.shape)
    return work_size(X) <= GAP_CHECK_WORK and rows > features


def fit_gap(X: Any, y: np.ndarray, n_classes: int, penalty: Penalty, penalty_params: Mapping[str, Any],
            result: FitResult, config: TrainConfig, sample_weight: np.ndarray | None = None,
            classes: Sequence[Any] | None = None) -> tuple[float, str] | None:
    """:func:`optimality_gap` of one fit on rows ``X`` and class indices ``y`` (with the same
    ``sample_weight``), for callers without a :class:`Dataset`; None where it is not checked."""
    solver = reference_solver(penalty)
    if solver is None or not gap_checked(X):
        return None
    (reference,) = fit_many(X, y, n_classes, penalty, [penalty_params], solver,
                            [{k: hp.default for k, hp in solver.search_space.items()}], config.exact(),
                            sample_weight=sample_weight, classes=classes)
    return None if isinstance(reference, BaseException) else _gap(result.objective, reference, solver.name)


def _gap(objective: float, reference: FitResult, solver: str) -> tuple[float, str] | None:
    optimum = min(reference.objective, objective)  # no solver stops below the optimum
    outputs = int(reference.weight.shape[1]) if reference.weight.ndim == 2 else 1
    at_zero = math.log(2 if outputs == 1 else outputs)  # every row's loss with equal logits (weights of mean 1)
    # (not the reference's first epoch: lbfgs is already near 0 there, 2.4e-10 on standardised breast_cancer)
    if optimum < NO_FINITE_OPTIMUM * at_zero:
        return None  # separable data and no penalty to bound the weights: nothing finite to compare with
    return max(0.0, (objective - optimum) / max(abs(optimum), 1e-12)), solver


@dataclass
class TrainOutcome:
    model: LogisticModel
    result: FitResult
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    penalty_params: dict[str, Any]
    optimizer_params: dict[str, Any]
    optimality_gap: float | None = None
    """For a mini-batch optimizer on a small problem: how far above the optimum it stopped."""
    gap_solver: str | None = None
    cv_metrics: list[dict[str, float]] | None = None
    """With cross-validation: each fold's metrics on its held-out training rows."""

    def value(self, metric: str) -> float:
        """The trial's value for the study's ``metric``: the mean over folds with cross-validation,
        else the validation split's score (NaN when there is none)."""
        if self.cv_metrics is not None:
            return float(np.mean([m.get(metric, math.nan) for m in self.cv_metrics]))
        return float(self.val_metrics.get(metric, math.nan))

    def summary(self) -> dict[str, Any]:
        return {
            "penalty": self.model.info.get("penalty"),
            "optimizer": self.model.info.get("optimizer"),
            "penalty_params": self.penalty_params,
            "optimizer_params": self.optimizer_params,
            "validation": self.val_metrics,
            "test": self.test_metrics,
            "train_objective": self.result.objective,
            "n_nonzero_weights": self.result.n_nonzero,
            "n_weights": int(self.result.weight.size),
            "epochs_run": self.result.epochs_run,
            "stop_reason": self.result.stop_reason,
            "optimality_gap": self.optimality_gap,
            "fit_seconds": round(self.result.fit_seconds, 4),
            "device": self.result.device,
        }


def train_one(data: Dataset, penalty_name: str, optimizer_name: str, penalty_overrides: Mapping[str, Any],
              optimizer_overrides: Mapping[str, Any], config: TrainConfig | None = None,
              callbacks: Sequence[Callback] = (), *, sample_weight: np.ndarray | None = None) -> TrainOutcome:
    """Train one configuration on ``data`` and evaluate it on the validation and test splits.

    ``sample_weight``: one weight per training row (:func:`prepare_sample_weight`)."""
    (out,) = train_many(data, optimizer_name, [(penalty_name, penalty_overrides, optimizer_overrides)], config,
                        [callbacks], sample_weight=sample_weight)
    if isinstance(out, BaseException):
        raise out
    return out


def train_many(data: Dataset, optimizer_name: str,
               trials: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]], config: TrainConfig | None = None,
               callbacks: Sequence[Sequence[Callback]] | None = None,
               init: Sequence[tuple[Any, Any] | None] | None = None,
               folds: Sequence[np.ndarray] | None = None,
               sample_weight: np.ndarray | None = None) -> list[TrainOutcome | BaseException]:
    """Train several configurations of one optimizer side by side (one pass over the data serves
    them all; :func:`tuner.train.fit_many`) and evaluate each.

    ``trials`` holds ``(penalty name, penalty overrides, optimizer overrides)`` per trial.
    ``folds`` (boolean masks of held-out training rows, see :func:`cv_folds`): each trial is also
    trained once per fold, side by side with the rest (a fold is a weight column whose training
    rows are the others), and its outcome carries the folds' metrics (``cv_metrics``); the model
    is the one trained on every training row. ``sample_weight``: one weight per training row
    (not with ``folds``). Returns per trial its outcome, or the exception
    that stopped it (a pruner's, divergence: of the model or of any fold, or a stop request's
    interrupt: the trials that finished before it keep their outcomes).
    """
    config = config or TrainConfig()
    opt = optimizers.get(optimizer_name)
    pens, pps, ops = [], [], []
    for penalty_name, penalty_overrides, optimizer_overrides in trials:
        pen, _ = resolve_pair(penalty_name, optimizer_name)
        pens.append(pen)
        pps.append(resolve_params(pen, penalty_overrides, "penalty"))
        ops.append(resolve_params(opt, optimizer_overrides, "optimizer"))
    has_val = len(data.y_val) > 0
    if not folds:
        results = fit_many(data.X_train, data.y_train, data.n_classes, pens, pps, opt, ops, config,
                           X_val=data.X_val if has_val else None, y_val=data.y_val if has_val else None,
                           callbacks=callbacks, classes=data.classes, init=init, sample_weight=sample_weight)
        # A mini-batch optimizer's own stopping rule sees a noisy objective; on a small problem, say
        # how far from the optimum each fit ended (full-batch solvers stop on their exact objective).
        gaps = [None] * len(results) if opt.full_batch else optimality_gaps(data, pens, pps, results, config)
        return [r if isinstance(r, BaseException) else _outcome(data, pen, opt, pp, op, r, config, gap)
                for r, pen, pp, op, gap in zip(results, pens, pps, ops, gaps)]
    if sample_weight is not None:
        raise ConfigError("The 'sample_weight' parameter cannot be combined with the 'cv' parameter.")
    return _train_with_folds(data, opt, pens, pps, ops, config, callbacks, init, list(folds))


def cv_folds(y: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """``k`` stratified folds of the rows of ``y``: one boolean mask of held-out rows per fold.
    With ``groups`` (one per row), every group's rows are in one fold (scikit-learn's
    ``StratifiedGroupKFold``)."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    counts = np.bincount(np.asarray(y))
    smallest = int(counts[counts > 0].min())
    if k < 2 or smallest < k:
        raise ConfigError(f"The 'cv' parameter must be an integer between 2 and the smallest class's count in the "
                          f"training rows ({smallest}); got {k!r} instead.")
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise ConfigError(f"The 'cv' parameter must be at most the number of groups in the training rows "
                              f"({n_groups}, the 'group_column' parameter); got {k!r} instead.")
        splitter: Any = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    with warnings.catch_warnings():  # StratifiedGroupKFold: "the least populated class has fewer members": checked
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(y)), y, groups))
    y = np.asarray(y)
    n_classes = len(np.unique(y))
    for i, (kept, held) in enumerate(splits, start=1):
        # only groups can leave a fold short of classes (stratified folds hold every class)
        for part, rows, needed in (("held-out", held, 2), ("training", kept, n_classes)):
            present = np.unique(y[rows])
            if len(present) < needed:
                raise ConfigError(
                    f"Fold {i} of {k} (cv) has {len(rows)} {part} rows of {len(present)} class(es) only, since each "
                    "group of the 'group_column' parameter stays in one fold: its score would mean nothing. Use "
                    "fewer folds, more and smaller groups, or no group column.")
        mask = np.zeros(len(y), dtype=bool)
        mask[held] = True
        out.append(mask)
    return out


def _train_with_folds(data: Dataset, opt: Optimizer, pens: list[Penalty], pps: list[dict[str, Any]],
                      ops: list[dict[str, Any]], config: TrainConfig, callbacks: Sequence[Sequence[Callback]] | None,
                      init: Sequence[Any] | None, folds: list[np.ndarray]) -> list[TrainOutcome | BaseException]:
    """:func:`train_many` with cross-validation: per trial, one column on every training row (the
    model; the trial's callbacks) and one per fold, all in one :func:`fit_many` call.

    The validation rows of every column are one stacked matrix (training rows, then the
    validation split) weighted per column: a fold scores its held-out training rows, the model
    the validation split (none without one: ``val_size=0``)."""
    import scipy.sparse as sp

    n, n_val, f = len(data.y_train), len(data.y_val), len(folds)
    per = f + 1
    train_w = np.ones((n, per))
    val_w = np.zeros((n + n_val, per))
    val_w[n:, 0] = 1.0
    for j, held in enumerate(folds, start=1):
        train_w[held, j] = 0.0
        val_w[:n, j] = held
    k = len(pens)
    stack = sp.vstack if sp.issparse(data.X_train) else np.vstack
    X_val = stack([data.X_train, data.X_val]) if n_val else data.X_train
    if not n_val:
        val_w = val_w[:n]  # no validation split: the model's column scores no rows (the folds compare trials)
    rep = lambda items: [x for x in items for _ in range(per)]  # noqa: E731
    cols: dict[str, Any] = {
        "pens": rep(pens), "pps": rep(pps), "ops": rep(ops),
        "train_w": np.tile(train_w, (1, k)), "val_w": np.tile(val_w, (1, k)),
        # a fold hears the trial's stop request only (a signal must not wait for the folds to end)
        "cbs": [(list(callbacks[i]) if j == 0 else [cb for cb in callbacks[i] if isinstance(cb, StopCallback)])
                if callbacks else [] for i in range(k) for j in range(per)],
        # a warm start only for the model's column: weights fitted on every training row would
        # carry the held-out rows into a fold
        "init": [x if j == 0 else None for x in (init or [None] * k) for j in range(per)],
    }
    y_val = np.concatenate([data.y_train, data.y_val]) if n_val else data.y_train

    def fit_columns(part: slice) -> list[FitResult | BaseException]:
        return fit_many(data.X_train, data.y_train, data.n_classes, cols["pens"][part], cols["pps"][part], opt,
                        cols["ops"][part], config, X_val=X_val, y_val=y_val, column_weight=cols["train_w"][:, part],
                        val_column_weight=cols["val_w"][:, part], callbacks=cols["cbs"][part], classes=data.classes,
                        init=cols["init"][part])

    if all(batchable(pen, opt) for pen in pens):
        results = fit_columns(slice(None))
    else:  # a pair that trains one trial at a time: the model's column, then each fold's, alone
        results = [r for c in range(k * per) for r in fit_columns(slice(c, c + 1))]
    out: list[TrainOutcome | BaseException] = []
    for i in range(k):
        mine = results[i * per:(i + 1) * per]
        failed = next((r for r in mine if isinstance(r, BaseException)), None)
        if failed is not None:
            out.append(failed)
            continue
        fits = [r for r in mine if not isinstance(r, BaseException)]
        outcome = _outcome(data, pens[i], opt, pps[i], ops[i], fits[0], config)
        outcome.cv_metrics = []
        for held, result in zip(folds, fits[1:]):
            fold_model = LogisticModel(data.classes, result.weight, result.intercept, data.pipeline, info={})
            proba = fold_model.predict_proba_features(data.X_train[held])
            outcome.cv_metrics.append(evaluate(data.y_train[held], proba, data.n_classes))
        out.append(outcome)
    return out


def _outcome(data: Dataset, pen: Penalty, opt: Optimizer, pp: dict[str, Any], op: dict[str, Any], result: FitResult,
             config: TrainConfig, gap: tuple[float, str] | None | bool = True) -> TrainOutcome:
    """The fitted model of one trial, evaluated; ``gap`` its optimality gap when already known
    (``True``: compute it here, for a mini-batch optimizer)."""
    model = LogisticModel(data.classes, result.weight, result.intercept, data.pipeline, info={
        "penalty": pen.name, "optimizer": opt.name, "penalty_params": pp, "optimizer_params": op,
        "train_objective": result.objective, "epochs_run": result.epochs_run, "source": data.raw.source,
    })
    val = evaluate(data.y_val, model.predict_proba_features(data.X_val), data.n_classes) if len(data.y_val) else {}
    test = evaluate(data.y_test, model.predict_proba_features(data.X_test), data.n_classes) if len(data.y_test) else {}
    if gap is True:
        gap = None if opt.full_batch else optimality_gap(data, pen, pp, result, config)
    return TrainOutcome(model, result, val, test, pp, op, *(gap or (None, None)))
