"""Which plugins a new study searches when the user did not choose them.

A default study searches every installed penalty and optimizer, less these plugins:

* those that fail the fast contract checks (:func:`tuner.testing.failing_plugins`): a plugin
  that would crash or silently misbehave in a study is left out, with a notice;
* the optimizers that are not full-batch (see :func:`exact_solvers_by_default`);
* the optimizers that use the Hessian where the model is too large for it, and every other
  one where it is not; on larger models the first-order ones beside quasi-Newton ones (see
  :func:`hessian_solvers_where_they_fit`).

Plugins are chosen by their declared capabilities, never by name. The notices are returned
for the study's summary.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from tuner._plugin_api import compatibility_reason
from tuner._registry import optimizers, penalties
from tuner.data import Dataset
from tuner.errors import ConfigError
from tuner.study._spec import StudySpec
from tuner.study._variant import join_variant

__all__ = ["default_plugins", "drop_failing_plugins", "exact_solvers_by_default", "hessian_solvers_where_they_fit"]

def default_plugins(spec: StudySpec, data: Dataset, explicit: Collection[str]) -> list[str]:
    """Narrow ``spec``'s plugin lists that are not in ``explicit`` (the spec keys the user gave:
    ``"penalties"``, ``"optimizers"``); returns the notices saying what was left out and why."""
    notices: list[str] = []
    steps = spec.train.get("batch_size") is not None  # a mini-batch size given: the mini-batch optimizers stay
    if "penalties" not in explicit:
        spec.penalties, dropped = drop_failing_plugins("penalty", spec.penalties)
        notices += dropped
    else:
        notices += _named_anyway("penalty", spec.penalties)
    if "optimizers" not in explicit:
        spec.optimizers, dropped = drop_failing_plugins("optimizer", spec.optimizers)
        notices += dropped
        before = list(spec.optimizers)
        exact = exact_solvers_by_default(spec) if not steps else []
        left_out = [n for n in before if n not in spec.optimizers]
        narrowed = hessian_solvers_where_they_fit(spec, data, keep_mini_batch=steps)
        if exact and narrowed:  # the second notice names what is searched: the first says what it left out, only
            notices.append(_exact_notice(left_out, None))
        else:
            notices += exact
        notices += narrowed
    else:
        notices += _named_anyway("optimizer", spec.optimizers)
    if steps and all(optimizers.get(n).full_batch for n in spec.optimizers):
        raise ConfigError(f"The 'batch_size' parameter sizes the steps of mini-batch optimizers, and the search has "
                          f"none ({', '.join(spec.optimizers)} pass over every row at once): leave it out, or add a "
                          "mini-batch optimizer to the 'optimizer' parameter.")
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


def _named_anyway(kind: str, names: list[str]) -> list[str]:
    """One notice per plugin the user named that fails the fast contract checks: it is searched,
    as asked, but its results may be wrong."""
    from tuner.testing import failing_plugins

    return [f"the {kind} plugin {n!r} fails its contract checks ({why}); it is searched because the '{kind}' "
            f"parameter names it, but its results may be wrong: run `tuner plugins check {n}`"
            for n, why in failing_plugins(kind, names).items()]


def exact_solvers_by_default(spec: StudySpec) -> list[str]:
    """Keep only the full-batch optimizers in ``spec``: logistic regression is convex, so each of
    them reaches the same optimum for a penalty and strength, which makes the optimizer a choice of
    speed, not of model. A mini-batch optimizer only stops near that optimum, after more passes:
    on small data it gets a few steps an epoch and is pruned as not converged; on SST-2 (TF-IDF,
    79,049 weights) its trials ran 100 epochs for 13-105 s each and found no better model than
    L-BFGS at the same strength in 2-5 s (``benchmarks/RESULTS.md``, sixteenth round). Nothing
    changes when every penalty in play would be left without a compatible full-batch optimizer, or
    none is installed. Returns the notice for the summary."""
    exact = [n for n in spec.optimizers if optimizers.get(n).full_batch]
    left_out = [n for n in spec.optimizers if n not in exact]
    if not exact or not left_out or not all(_solvable(p, exact) for p in spec.penalties):
        return []
    spec.optimizers = exact
    return [_exact_notice(left_out, exact)]


def _exact_notice(left_out: Sequence[str], searched: Sequence[str] | None) -> str:
    """The notice of :func:`exact_solvers_by_default`; ``searched`` None where a later notice names
    the solvers the search keeps."""
    kept = f"and uses the exact full-batch solvers ({', '.join(searched)})" if searched else \
        "for the exact full-batch solvers"
    return (f"the search leaves out the mini-batch optimizers ({', '.join(left_out)}) {kept}: each reaches a "
            f"penalty's optimum, where a mini-batch optimizer stops near it after more passes; give the 'optimizer' "
            f"parameter to search {', '.join(left_out)} too (or the 'batch_size' parameter, which sizes their steps)")


def hessian_solvers_where_they_fit(spec: StudySpec, data: Dataset, keep_mini_batch: bool = False) -> list[str]:
    """Choose between the optimizers in ``spec`` that use the Hessian (``uses_hessian``) and the others.

    The model fits when it has at most ``HESSIAN_MAX_PARAMS`` parameters a trial and ``rows x
    parameters^2`` is at most ``HESSIAN_WORK``. Then only the Hessian solvers stay: every exact
    solver reaches the same optimum of a convex problem and these do in a few passes, while a
    mini-batch optimizer stops near it (a9a, 30 trials: ``benchmarks/RESULTS.md``), so the others
    would only spend the budget on the same or worse models, slower. Otherwise the Hessian solvers
    leave (the trainer would refuse them, or each Hessian would cost more than many first-order
    passes), and of the others the quasi-Newton (``quasi_newton``) and truncated Newton
    (``hessian_products``) ones stay when they take every penalty in play, each penalty trained by
    truncated Newton where one takes it (:func:`_truncated_first`): on SST-2 a 30-trial study of
    L-BFGS/OWL-QN trials alone took 65.6 s where one that also searched FISTA took 95.7 s, for the
    same best validation loss to 1e-4 (``benchmarks/RESULTS.md``, sixteenth round). Nothing changes when a penalty in play would be left without an optimizer,
    nor, with ``keep_mini_batch`` (the user sized the mini-batches), where the model fits, and the
    mini-batch optimizers stay where it does not. Returns the notice for the summary."""
    from tuner.train import HESSIAN_MAX_PARAMS, HESSIAN_WORK, n_params

    rows, features = (int(v) for v in data.X_train.shape)
    outputs = 1 if data.n_classes == 2 else int(data.n_classes)
    size = n_params(features, outputs)
    fits = size <= HESSIAN_MAX_PARAMS and rows * size * size <= HESSIAN_WORK
    if fits and keep_mini_batch:
        return []
    hessian = [n for n in spec.optimizers if getattr(optimizers.get(n), "uses_hessian", False)]
    kept = hessian if fits else [n for n in spec.optimizers if n not in hessian]
    truncated: list[str] = []
    if not fits:  # the quasi-Newton and truncated Newton solvers among the rest, where they take every penalty in play
        curvature = [n for n in kept if _curvature_solver(n)]
        if curvature and not keep_mini_batch and all(_solvable(p, curvature) for p in spec.penalties):
            kept, truncated = _truncated_first(spec, curvature)
    left_out = [n for n in spec.optimizers if n not in kept]
    if not kept or not left_out or not all(_solvable(p, kept) for p in spec.penalties):
        return []
    spec.optimizers = kept
    if fits:
        return [f"the model is small ({size:,} parameters a trial), so the search uses the solvers that use its "
                f"Hessian ({', '.join(kept)}): the exact optimum in a few passes; give the 'optimizer' parameter to "
                f"search {', '.join(left_out)} too"]
    others = [n for n in left_out if n not in hessian and any(_solvable(p, [n]) for p in spec.penalties)]
    notice = f"the model is too large for the solvers that use its Hessian ({size:,} parameters a trial, {rows:,} rows)"
    if hessian:
        notice += f", so the search leaves out {', '.join(hessian)}"
    if others or truncated:
        notice += (f"{';' if hessian else ','} the search uses {_searched_words(spec, kept, truncated)}, which reach "
                   "the optimum in fewer passes than first-order ones where the problem is ill-conditioned")
        if others:
            notice += f"; give the 'optimizer' parameter to search {', '.join(others)} too"
    return [notice]


def _curvature_solver(name: str) -> bool:
    """A full-batch solver that steers by curvature without the Hessian itself: quasi-Newton
    (``quasi_newton``) or truncated Newton (``hessian_products``)."""
    opt = optimizers.get(name)
    return bool(getattr(opt, "quasi_newton", False) or getattr(opt, "hessian_products", False))


def _truncated_first(spec: StudySpec, curvature: Sequence[str]) -> tuple[list[str], list[str]]:
    """Of the ``curvature`` solvers, the ones searched and the truncated Newton ones among them. A
    penalty that a truncated Newton solver (``hessian_products``) takes is trained with it only: a
    quasi-Newton solver reaches the same optimum in more passes (SST-2, L2 at strength 1e-6: 130
    Hessian products against about 500 passes of L-BFGS, ``benchmarks/RESULTS.md``, eighteenth
    round), and the two would share the trials of one model. Those pairs go to
    ``spec.left_out_variants``; a quasi-Newton solver left with no penalty leaves."""
    truncated = [n for n in curvature if getattr(optimizers.get(n), "hessian_products", False)]
    smooth = [p for p in spec.penalties if _solvable(p, truncated)]
    rest = [p for p in spec.penalties if p not in smooth]
    quasi = [n for n in curvature if n not in truncated and any(_solvable(p, [n]) for p in rest)]
    truncated = truncated if smooth else []
    spec.left_out_variants = sorted(join_variant(p, q) for p in smooth for q in quasi if _solvable(p, [q]))
    return [n for n in curvature if n in truncated or n in quasi], truncated


def _searched_words(spec: StudySpec, kept: Sequence[str], truncated: Sequence[str]) -> str:
    """The curvature solvers searched, in words, for the notice of :func:`hessian_solvers_where_they_fit`."""
    quasi = [n for n in kept if n not in truncated]
    quasi_words = f"the quasi-Newton solvers ({', '.join(quasi)})"
    if not truncated:
        return quasi_words
    smooth = [p for p in spec.penalties if _solvable(p, truncated)]
    words = f"the truncated Newton solvers ({', '.join(truncated)}) for {_and(smooth)}"
    return f"{words}, and {quasi_words} for the other penalties" if quasi else words


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _solvable(penalty: str, solvers: Iterable[str]) -> bool:
    """Whether one of ``solvers`` takes ``penalty``."""
    pen: Any = penalties.get(penalty)
    return any(compatibility_reason(pen, optimizers.get(o)) is None for o in solvers)
