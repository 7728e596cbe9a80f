"""The plugin author's trial of issue 11, as an installable package.

Both plugins load, pass the registry's validation and the checks of the contract as it was,
and break in a study: the lasso's prox calls ``float(step)``, which crashes on the per-weight
steps Adam passes an ``elementwise_prox`` penalty; the Adam-like optimizer has no
``coordinate_step_size``, so its after-step prox shrinks by ``lr`` and leaves no exact zeros.
"""

import torch

from tuner import Float, Optimizer, Penalty


class FloatStepLasso(Penalty):
    name = "float_step"
    description = "Lasso whose prox turns the step into a float."
    search_space = {"strength": Float(1e-7, 10.0, default=1e-4, log=True, domain=(0.0, 1e6))}
    has_prox = True
    elementwise_prox = True

    def smooth_value(self, weight, params):
        return weight.new_zeros(())

    def nonsmooth_value(self, weight, params):
        return params["strength"] * weight.abs().sum()

    def prox(self, weight, step, params):
        threshold = float(step) * params["strength"]
        return torch.sign(weight) * torch.clamp(weight.abs() - threshold, min=0.0)


class AdamWithoutCoordinateSteps(Optimizer):
    name = "adam_no_coord"
    description = "torch.optim.Adam without coordinate_step_size."
    search_space = {"lr": Float(1e-5, 1.0, default=0.01, log=True)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.Adam(list(param_groups), lr=float(params["lr"]))
