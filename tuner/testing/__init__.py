"""Contract checks for penalty and optimizer plugins, to call from a plugin's own tests.

scikit-learn's ``check_estimator`` is the model: one call runs every check of the plugin
contract and raises :class:`ContractError` (an ``AssertionError``, so pytest shows it as a
test failure) naming the plugin and the first check it fails::

    from tuner.testing import check_installed, check_plugin

    def test_contract():
        check_plugin(MyPenalty)                      # the class or an instance

    def test_entry_point():
        check_installed("my_penalty", group="penalty")   # what the registry loads

:func:`run_checks` runs the same checks and returns one :class:`CheckResult` per check
(passed, failed or skipped, with the reason) instead of raising; ``tuner plugins check NAME``
prints them. :func:`failing_plugins` runs a quick subset on installed plugins (a study leaves
out the ones that fail it; ``tuner plugins list`` marks them). The checks:

``interface``
    a subclass (or instance) of :class:`tuner.Penalty` / :class:`tuner.Optimizer` that
    builds with no arguments, implements the required methods and declares its class
    attributes with the right types;
``name`` / ``description``
    a non-empty identifier-like name (equal to the entry-point name when checked through
    the registry) and a one-line description;
``search_space``
    a valid declarative space (``Float``, ``Int``, ``Categorical``);
``value_finite`` (penalty)
    ``smooth_value`` and ``nonsmooth_value`` are finite scalars in the weight's dtype on
    random, large and zero weights, for hyperparameters at their defaults and at the bounds
    of the search space; a penalty without a prox has a zero non-smooth part;
``gradient`` (penalty)
    autograd's gradient of ``smooth_value`` is finite and agrees with finite differences;
``tensor_hyperparameters`` (penalty)
    hyperparameters given as 0-dim tensors give the same values and prox as Python numbers;
``prox_identity``, ``prox_shrinks``, ``prox_minimises`` (penalty with ``has_prox``)
    the prox returns its input for step 0 (and strength 0), never moves away from zero
    (``||prox(v)|| <= ||v||``), and solves its defining problem: ``prox(v, t)`` minimises
    ``1/(2t) ||x - v||^2 + nonsmooth(x)``, tried against ``v``, ``0`` and random
    perturbations at several scales;
``prox_steps`` (penalty with ``has_prox``)
    the prox keeps float32 weights float32 (and float64 float64), and an ``elementwise_prox``
    penalty takes a tensor of per-weight steps shaped like the weights (what an optimizer's
    ``coordinate_step_size`` gives: Adam, RMSprop) and applies each weight's own step; a
    ``prox`` that calls ``float(step)`` fails here;
``elastic_net`` (penalty declaring ``elastic_net``)
    the declared ``a ||W||_1 + b / 2 ||W||^2`` is the penalty's value, and with an L1 part its
    prox is soft-thresholding by ``step x a``: side by side, the trainer uses the formula in
    place of the plugin's own methods;
``prox_mode`` (optimizer)
    ``prox_mode`` is ``after_step``, ``internal`` or ``unsupported``; ``full_batch`` a bool;
    a ``full_batch`` optimizer is not ``after_step`` (the trainer applies that prox in
    mini-batch training only);
``build`` (optimizer)
    ``build`` returns a ``torch.optim.Optimizer`` over the two parameter groups the trainer
    passes (weights ``penalized``, intercept not) at every hyperparameter setting, and one
    step there leaves finite parameters; ``step_size`` is a positive number;
``decreases_loss`` (optimizer)
    on a toy logistic problem, the optimizer driven as the trainer drives it (a closure for
    ``full_batch`` optimizers; the prox after each step for ``after_step``; the prox handed
    to ``build`` for ``internal``) lowers the smooth objective and, when it supports one, an
    L1-penalized objective; it must leave exact zeros where an L1 penalty makes zero weights the
    optimum (for an ``after_step`` optimizer, with a strength below 1, which an Adam-like
    method meets only with per-coordinate proximal steps);
``prox_step`` (``after_step`` mini-batch optimizer)
    the step the trainer gives the prox (``coordinate_step_size`` for an elementwise prox,
    else ``step_size``) equals how far the optimizer moves a weight per unit gradient,
    measured after many steps of one constant gradient whose size differs by coordinate: an
    optimizer whose steps differ by coordinate must implement ``coordinate_step_size``.
``batch_values`` (penalty), ``batch_fit``, ``batch_divergence`` (both; only for a plugin that
declares ``supports_batch``, skipped otherwise)
    trials side by side (:mod:`tuner.testing._batch`): one value, gradient and prox per trial;
    K = 3 trials trained together by ``fit_many`` with built-in partners equal each trial
    alone (float64 and float32, dense and sparse, the same exact zeros); a trial with a huge
    learning rate leaves its neighbours unchanged.
"""

from __future__ import annotations

from tuner.testing._base import CheckResult, ContractError, hyperparameter_settings
from tuner.testing._installed import (
    QUICK_CHECKS,
    QUICK_SIDE_BY_SIDE,
    PluginReport,
    check_installed,
    failing_plugins,
    run_installed_checks,
    side_by_side_failures,
)
from tuner.testing._runner import (
    OPTIMIZER_CHECKS,
    PENALTY_CHECKS,
    check_optimizer,
    check_penalty,
    check_plugin,
    run_checks,
)

__all__ = [
    "ContractError",
    "CheckResult",
    "PluginReport",
    "PENALTY_CHECKS",
    "OPTIMIZER_CHECKS",
    "QUICK_CHECKS",
    "QUICK_SIDE_BY_SIDE",
    "run_checks",
    "check_plugin",
    "check_penalty",
    "check_optimizer",
    "check_installed",
    "run_installed_checks",
    "failing_plugins",
    "side_by_side_failures",
    "hyperparameter_settings",
]
