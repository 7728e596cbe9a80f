"""The two plugin interfaces: :class:`Penalty` and :class:`Optimizer`.

A plugin is a class registered under an entry point of the group
``logreg_tuner.penalties`` or ``logreg_tuner.optimizers``; the entry-point name must equal
the class's ``name``. The registry instantiates it with no arguments. Hyperparameter values
arrive in a mapping (``params``) whose values are Python numbers or tensors, so one call can
serve several trials side by side.

Penalty convention (what every penalty must follow so strengths compare across variants)::

    objective(W, b) = (1/n) * sum_i s_i * loss_i(W, b) + penalty(W)

``W`` is the weight matrix of shape ``(n_features, n_outputs)``; the intercept ``b`` is never
passed to a penalty, so it is never penalized. The built-in penalties use
``penalty(W) = strength * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_2^2)``, which
matches scikit-learn's ``LogisticRegression`` with ``strength = 1 / (C * n_train)``.

Trials side by side (``supports_batch = True`` on both plugins of a pair): the trainer then
trains K trials in one tensor program, and every tensor has a leading *trial axis*:

* the weights are one leaf of shape ``(K, n_features, n_outputs)``, the intercepts one of
  shape ``(K, 1, n_outputs)``;
* each numeric hyperparameter (floats, ints, booleans as 0/1) is a tensor of shape
  ``(K, 1, 1)`` in the weights' dtype and device, so it broadcasts against both leaves;
  a non-numeric one (a string) is the same for all K trials and passed as it is;
* a penalty's ``smooth_value`` / ``nonsmooth_value`` return one value per trial (shape
  ``(K,)``: reduce over the last two dimensions only), and its ``prox`` takes a step that is a
  number, a ``(K, 1, 1)`` tensor, or a tensor shaped like the weights;
* an optimizer keeps the trials independent (per-trial learning rates, momenta, step sizes,
  line searches, convergence); the trainer may rescale ``param_groups[i]["lr"]`` (then a
  ``(K, 1, 1)`` tensor) between steps, per trial. A full-batch optimizer's closure returns the
  per-trial smooth objectives (shape ``(K,)``) after calling ``backward`` on their sum (the
  trials are independent, so the gradient of the sum with respect to trial k's parameters is
  trial k's gradient); ``closure.value_only()`` returns them without gradients; an internal
  ``prox`` takes a ``(K, 1, 1)`` step. A trial whose objective becomes NaN or infinite must not
  change the others' steps. The trainer keeps a finished, pruned or diverged trial's weights
  fixed; an optimizer may also offer ``freeze(mask)`` (a ``(K,)`` boolean tensor), which the
  trainer then calls so that the optimizer stops working on those trials (line searches
  included).

Curvature (``uses_hessian = True`` on a full-batch optimizer): the closure also offers
``closure.hessian(trials=None)``, the per-trial Hessian of the smooth objective, shape
``(K', P, P)`` in float64 for the trials selected by ``trials`` (a ``(K,)`` bool mask; all by
default), with each trial's parameters flattened in the order of the parameter groups (the
weights row-major, then the intercept: ``P = (p + 1) * c``), and ``closure.nonsmooth()``, the
per-trial value of the penalty's non-smooth part, shape ``(K,)``. Every full-batch closure also
offers ``closure.hessian_product(trials=None)``, a function ``V -> H V`` of the smooth objective's
Hessian at the current parameters for the trials selected (``V`` and ``H V``: ``(K', P)`` in the
weights' dtype, parameters ordered as above; two passes over the data a product, for models of any
size), and ``closure.l1_weights()``: each trial's L1 weight ``a`` (shape ``(K,)``) when every trial's
penalty is an elastic net ``a ||W||_1 + b / 2 ||W||_2^2`` (:meth:`Penalty.elastic_net`), else None
(what an ``l1_only`` optimizer reads). The trainer offers them for
models of at most ``tuner.train.HESSIAN_MAX_PARAMS`` parameters and refuses such an optimizer on
larger ones. An optimizer may also offer ``converged()``, a ``(K,)`` boolean tensor of the trials
whose last ``step`` met its own optimality test, or can make no more progress (a full-batch step
that could not lower their objective at all); the trainer then ends them at once
(reason ``converged``) instead of waiting ``patience`` epochs for the objective to stall.

A plugin that does not declare ``supports_batch`` sees exactly the single-trial shapes above
(``(n_features, n_outputs)`` weights, ``(n_outputs,)`` intercept, numbers as hyperparameters),
and its trials run one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import CodeType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from tuner._space import Hyperparameter
from tuner.errors import PluginError, PluginRaisedError, TunerError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "Penalty",
    "Optimizer",
    "ProxFn",
    "ProxMode",
    "PROX_MODES",
    "compatibility_reason",
    "plugin_kind",
    "blame_plugin",
]

ProxFn = Callable[["torch.Tensor", "float | torch.Tensor"], "torch.Tensor"]
"""``prox(W, step) -> W'``: the proximal operator of the non-smooth part, hyperparameters bound;
``step`` is a number, or a ``(K, 1, 1)`` tensor (one step per trial) side by side."""


class Penalty:
    """A regularizer of the weight matrix.

    Subclasses set ``name``, ``description`` and ``search_space`` and implement
    :meth:`smooth_value`. A penalty with a non-smooth part (such as L1) sets
    ``has_prox = True`` and implements :meth:`nonsmooth_value` and :meth:`prox`; the trainer
    then never differentiates the non-smooth part but applies its proximal operator after each
    gradient step, which is what produces exact zeros.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    search_space: ClassVar[Mapping[str, Hyperparameter]] = {}
    has_prox: ClassVar[bool] = False
    elementwise_prox: ClassVar[bool] = False
    """The prox acts on each weight alone, so it also takes a tensor of per-weight steps (the
    proximal step of optimizers whose steps differ by coordinate: Adam, RMSprop)."""
    supports_batch: ClassVar[bool] = False
    """The penalty follows the trial-axis convention of the module docstring (K trials at once)."""
    incompatible_optimizers: ClassVar[frozenset[str]] = frozenset()
    """Names of optimizers this penalty refuses to work with (besides capability checks)."""

    def smooth_value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        """The differentiable part of the penalty (a 0-dim tensor); autograd flows through it."""
        raise NotImplementedError

    def nonsmooth_value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        """The non-smooth part's value (0 for a smooth penalty; one per trial side by side); never
        differentiated."""
        return weight.new_zeros(weight.shape[:-2])

    def prox(self, weight: torch.Tensor, step: float | torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        """``argmin_V  1/(2 step) ||V - weight||^2 + nonsmooth(V)``; identity for a smooth penalty.

        ``step`` is a number; a ``(K, 1, 1)`` tensor with trials side by side; and, when
        ``elementwise_prox``, also a tensor of per-weight steps shaped like ``weight`` (from an
        optimizer's :meth:`Optimizer.coordinate_step_size`), so compute with it as a tensor (no
        ``float(step)``). The result keeps ``weight``'s shape, dtype (float32 or float64) and device."""
        return weight

    def elastic_net(self, params: Mapping[str, Any]) -> tuple[float, float] | None:
        """Optional: ``(a, b)`` when this penalty with ``params`` (plain numbers) is exactly
        ``a ||W||_1 + b / 2 ||W||_2^2``, else ``None`` (the default). Trials side by side whose
        penalties all say so share one pass over their weights for the penalty, whatever their
        plugins; otherwise each plugin computes on its own trials' weights."""
        return None

    def value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        """The whole penalty: smooth plus non-smooth part."""
        return self.smooth_value(weight, params) + self.nonsmooth_value(weight, params)


ProxMode = Literal["after_step", "internal", "unsupported"]

PROX_MODES: Mapping[str, str] = {
    "after_step": "prox after each step",
    "internal": "proximal solver",
    "unsupported": "smooth penalties only",
}
"""The values of :attr:`Optimizer.prox_mode`, each with the few words ``tuner plugins list`` shows."""


class Optimizer:
    """A way to minimise the smooth part of the objective over the parameters.

    Subclasses set ``name``, ``description``, ``search_space`` and implement :meth:`build`.

    ``prox_mode`` says how a non-smooth penalty is handled:

    * ``"after_step"``: the trainer applies ``prox(W, lr)`` to the weights after every
      ``step()`` (proximal gradient; right for SGD-like methods);
    * ``"internal"``: the optimizer applies the ``prox`` it receives in :meth:`build` itself
      (FISTA-style methods);
    * ``"unsupported"``: the optimizer cannot minimise a non-smooth objective (L-BFGS), so the
      pair is refused.

    ``full_batch`` optimizers get the whole training set in every step and their ``step``
    takes a closure that recomputes the smooth objective with gradients.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    search_space: ClassVar[Mapping[str, Hyperparameter]] = {}
    full_batch: ClassVar[bool] = False
    prox_mode: ClassVar[ProxMode] = "after_step"
    supports_batch: ClassVar[bool] = False
    """The optimizer follows the trial-axis convention of the module docstring (K trials at once)."""
    batch_state_floats: ClassVar[int] = 8
    """About how many numbers per weight a trial side by side costs (weights, gradient, state,
    history): the study caps a group's size so that the group fits in memory on wide data."""
    incompatible_penalties: ClassVar[frozenset[str]] = frozenset()
    """Names of penalties this optimizer refuses to work with (besides capability checks)."""
    uses_hessian: ClassVar[bool] = False
    """A full-batch optimizer that calls ``closure.hessian()`` (module docstring, "Curvature"): it only
    trains models small enough for the trainer to offer the Hessian."""
    quasi_newton: ClassVar[bool] = False
    """A full-batch optimizer that builds a curvature estimate from its gradients (L-BFGS, OWL-QN):
    where the model is too large for the Hessian, a default study searches these rather than
    first-order full-batch solvers (FISTA), which reach the same optimum in more passes where the
    problem is ill-conditioned (weak penalties on text)."""
    hessian_products: ClassVar[bool] = False
    """A full-batch optimizer that takes Newton steps from ``closure.hessian_product()`` (module
    docstring, "Curvature"): where the model is too large for the Hessian, a default study trains
    the penalties it takes with it rather than with a quasi-Newton optimizer (the same optimum in
    fewer passes)."""
    l1_only: ClassVar[bool] = False
    """A ``prox_mode="internal"`` full-batch optimizer that minimises a non-smooth part only when it
    is an elastic net's L1 term (orthant-wise methods such as OWL-QN, which need the L1 weight, not a
    prox): it reads each trial's weight from ``closure.l1_weights()`` (module docstring), and a
    penalty with a non-smooth part that does not implement :meth:`Penalty.elastic_net` is refused."""

    def build(
        self,
        param_groups: Iterable[dict[str, Any]],
        params: Mapping[str, Any],
        prox: ProxFn | None = None,
    ) -> torch.optim.Optimizer:
        """Return a ``torch.optim.Optimizer`` over ``param_groups``.

        ``param_groups`` holds two groups: the weight matrix (``{"penalized": True}``) and the
        intercept (``{"penalized": False}``). ``prox`` is given when the penalty has a
        non-smooth part; only ``prox_mode == "internal"`` optimizers use it.
        """
        raise NotImplementedError

    def step_size(self, optimizer: torch.optim.Optimizer) -> float | torch.Tensor:
        """The step size that ``after_step`` proximal updates use: how far a step moves a weight
        per unit gradient (default: group 0's ``lr``; ``lr / (1 - momentum)`` for momentum
        methods; with trials side by side a ``(K, 1, 1)`` tensor, one step per trial)."""
        lr = optimizer.param_groups[0]["lr"]
        return lr if hasattr(lr, "dim") else float(lr)

    def coordinate_step_size(self, optimizer: torch.optim.Optimizer, param: torch.Tensor) -> torch.Tensor | None:
        """Per-weight steps for ``after_step`` proximal updates of an ``elementwise_prox`` penalty,
        shaped like ``param`` and in its dtype, for optimizers whose steps differ by coordinate;
        ``None`` (the default) means :meth:`step_size` applies to every weight.

        The step of weight ``j`` is how far the last update moved it per unit of its gradient
        (or of the average the method keeps): Adam's ``lr / (sqrt(v_hat_j) + eps)``,
        Adagrad's ``clr / (sqrt(G_j) + eps)``. An optimizer that rescales gradients per
        coordinate without it gives the L1 prox the wrong step: no exact zeros (the
        ``prox_step`` contract check catches it)."""
        return None


proximal_hint: Callable[[Penalty], str] | None = None
"""``': 'fista', 'newton' (exact solvers), 'adam', ...'``: the installed optimizers that minimise a
penalty's non-smooth part, for :func:`compatibility_reason`'s message. Set by
:mod:`tuner._registry`, which knows what is installed (and imports this module)."""


def compatibility_reason(penalty: Penalty, optimizer: Optimizer) -> str | None:
    """Why ``penalty`` and ``optimizer`` cannot be used together, or ``None`` when they can."""
    if optimizer.name in penalty.incompatible_optimizers:
        return f"penalty '{penalty.name}' declares that it does not work with optimizer '{optimizer.name}'"
    if penalty.name in optimizer.incompatible_penalties:
        return f"optimizer '{optimizer.name}' declares that it does not work with penalty '{penalty.name}'"
    if penalty.has_prox and optimizer.l1_only and type(penalty).elastic_net is Penalty.elastic_net:
        return (
            f"penalty '{penalty.name}' has a non-smooth part that optimizer '{optimizer.name}' minimises only when it "
            f"is an elastic net's L1 term (Penalty.elastic_net), which the penalty does not declare; choose a "
            f"proximal optimizer{proximal_hint(penalty) if proximal_hint is not None else ''}"
        )
    if penalty.has_prox and optimizer.prox_mode == "unsupported":
        return (
            f"penalty '{penalty.name}' has a non-smooth part that optimizer '{optimizer.name}' cannot "
            f"minimise (it would leave tiny non-zero weights instead of exact zeros); choose a "
            f"proximal optimizer{proximal_hint(penalty) if proximal_hint is not None else ''}"
        )
    return None


def plugin_kind(plugin: object) -> str | None:
    """``"penalty"`` or ``"optimizer"`` for a plugin class or instance; ``None`` for anything else."""
    cls = plugin if isinstance(plugin, type) else type(plugin)
    if issubclass(cls, Penalty):
        return "penalty"
    if issubclass(cls, Optimizer):
        return "optimizer"
    return None


def _own_code(module: str) -> bool:
    return module == "tuner" or module.startswith("tuner.")


def _frames(tb: TracebackType | None) -> list[tuple[str, CodeType]]:
    """The module name and code of a traceback's frames, innermost first."""
    frames = []
    while tb is not None:
        frames.append((str(tb.tb_frame.f_globals.get("__name__", "")), tb.tb_frame.f_code))
        tb = tb.tb_next
    return frames[::-1]


def _class_code(classes: Iterable[type]) -> set[CodeType]:
    """The code objects of the functions ``classes`` define (their methods, properties and the
    functions nested in them), tuner's own classes and ``object`` left out."""
    out: set[CodeType] = set()

    def add(code: CodeType) -> None:
        if code not in out:
            out.add(code)
            for const in code.co_consts:
                if isinstance(const, CodeType):
                    add(const)

    for cls in classes:
        if cls is object or _own_code(getattr(cls, "__module__", "") or ""):
            continue
        for attr in vars(cls).values():
            for fn in (attr, getattr(attr, "__func__", None), getattr(attr, "fget", None), getattr(attr, "fset", None)):
                code = getattr(fn, "__code__", None)
                if isinstance(code, CodeType):
                    add(code)
    return out


def _distribution(module: str) -> str:
    """The distribution that installed ``module`` (its top-level package when none is known)."""
    from importlib import metadata

    top = module.partition(".")[0]
    try:
        dists = metadata.packages_distributions().get(top, [])
    except Exception:  # noqa: BLE001 - a broken install's metadata must not hide the plugin's error
        dists = []
    return dists[0] if dists else top


def blame_plugin(exc: BaseException, plugins: Iterable[object],
                 made: Iterable[tuple[object, object]] = ()) -> PluginError | None:
    """The one-line :class:`PluginError` for an exception raised inside a plugin's code, or ``None``.

    ``exc`` is blamed on a plugin when it is not a :class:`TunerError` and its traceback runs
    through the code of one of ``plugins``' classes (methods it inherits included), or failing
    that through the module of that class, or its package, outside tuner's own code. The
    innermost such frame decides, so a penalty's ``prox`` that fails inside an optimizer's
    ``step`` is blamed on the penalty, and an optimizer defined next to a penalty in one module
    is blamed for its own code. The
    message names the plugin, its package and the error, and suggests ``tuner plugins
    check NAME``. ``made`` pairs objects a plugin made (the optimizer its ``build`` returned)
    with that plugin: the module of such an object's class counts as the plugin's own when it
    lies in the plugin's package, so a crash there is not blamed on another plugin of the same
    package. Wrap a call that runs plugin code::

        try:
            ...
        except Exception as exc:
            blamed = blame_plugin(exc, [penalty, optimizer])
            if blamed is None:
                raise
            raise blamed from exc
    """
    if isinstance(exc, TunerError):
        return None
    candidates = []
    code: dict[int, set[CodeType]] = {}
    for plugin in plugins:
        kind = plugin_kind(plugin)
        cls = plugin if isinstance(plugin, type) else type(plugin)
        module = getattr(cls, "__module__", "") or ""
        if kind is not None and module and not _own_code(module):
            candidates.append((plugin, kind, module))
            code[id(plugin)] = _class_code(cls.__mro__)
    for obj, maker in made:
        mine = next((c for c in candidates if c[0] is maker), None)
        obj_module = getattr(type(obj), "__module__", "") or ""
        if mine is not None and obj_module and _module_matches(obj_module, mine[2], exact=False):
            candidates.append((maker, mine[1], obj_module))
            code[id(maker)] |= _class_code(c for c in type(obj).__mro__
                                           if _module_matches(getattr(c, "__module__", "") or "", mine[2], exact=False))
    if not candidates:
        return None
    frames = [(module, fcode) for module, fcode in _frames(exc.__traceback__) if not _own_code(module)]
    # The innermost frame running a plugin class's own code decides (a method it inherits from a
    # built-in included); failing that, the innermost frame in a plugin's module, then its package.
    found = next((c for _, fcode in frames for c in candidates if fcode in code[id(c[0])]), None)
    for exact in (True, False):
        if found is None:
            found = next((c for module, _ in frames for c in candidates if _module_matches(module, c[2], exact)), None)
    if found is None:
        return None
    plugin, kind, module = found
    name = str(getattr(plugin, "name", "") or getattr(plugin, "__name__", "?"))
    dist = _distribution(module)
    detail = " ".join(str(exc).split()) or "(no message)"
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return PluginRaisedError(
        f"the {kind} plugin '{name}' (package {dist}) raised {type(exc).__name__}: {detail}; "
        f"run `tuner plugins check {name}` to see which part of the contract it breaks",
        kind=kind, plugin=name, distribution=dist,
    )


def _module_matches(frame: str, module: str, exact: bool) -> bool:
    if exact:
        return frame == module
    top = module.partition(".")[0]
    return frame == top or frame.startswith(top + ".")
