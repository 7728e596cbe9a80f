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

A plugin that does not declare ``supports_batch`` sees exactly the single-trial shapes above
(``(n_features, n_outputs)`` weights, ``(n_outputs,)`` intercept, numbers as hyperparameters),
and its trials run one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from tuner._space import Hyperparameter

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Penalty", "Optimizer", "ProxFn", "compatibility_reason"]

ProxFn = Callable[["torch.Tensor", float], "torch.Tensor"]
"""``prox(W, step) -> W'``: the proximal operator of the non-smooth part, hyperparameters bound."""


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

        ``step`` is a number, or a tensor shaped like ``weight`` when ``elementwise_prox``."""
        return weight

    def value(self, weight: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        """The whole penalty: smooth plus non-smooth part."""
        return self.smooth_value(weight, params) + self.nonsmooth_value(weight, params)


ProxMode = Literal["after_step", "internal", "unsupported"]


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
        """The step size that ``after_step`` proximal updates use (default: group 0's ``lr``;
        with trials side by side a ``(K, 1, 1)`` tensor, one step per trial)."""
        lr = optimizer.param_groups[0]["lr"]
        return lr if hasattr(lr, "dim") else float(lr)

    def coordinate_step_size(self, optimizer: torch.optim.Optimizer, param: torch.Tensor) -> torch.Tensor | None:
        """Per-weight steps for ``after_step`` proximal updates of an ``elementwise_prox`` penalty,
        shaped like ``param``, for optimizers whose steps differ by coordinate; ``None`` (the
        default) means :meth:`step_size` applies to every weight."""
        return None


def compatibility_reason(penalty: Penalty, optimizer: Optimizer) -> str | None:
    """Why ``penalty`` and ``optimizer`` cannot be used together, or ``None`` when they can."""
    if optimizer.name in penalty.incompatible_optimizers:
        return f"penalty '{penalty.name}' declares that it does not work with optimizer '{optimizer.name}'"
    if penalty.name in optimizer.incompatible_penalties:
        return f"optimizer '{optimizer.name}' declares that it does not work with penalty '{penalty.name}'"
    if penalty.has_prox and optimizer.prox_mode == "unsupported":
        return (
            f"penalty '{penalty.name}' has a non-smooth part that optimizer '{optimizer.name}' cannot "
            "minimise (it would leave tiny non-zero weights instead of exact zeros); choose a "
            "proximal optimizer such as 'fista', 'sgd', 'adam' or 'rmsprop'"
        )
    return None
