"""One name in both groups: `tuner plugins check twin` checks the penalty and the optimizer."""

import torch

from tuner import Float, Optimizer, Penalty


class TwinPenalty(Penalty):
    name = "twin"
    description = "Ridge, under a name an optimizer shares."
    search_space = {"strength": Float(1e-6, 1.0, default=1e-3, log=True)}

    def smooth_value(self, weight, params):
        return params["strength"] * 0.5 * weight.pow(2).sum()


class TwinOptimizer(Optimizer):
    name = "twin"
    description = "SGD, under a name a penalty shares."
    search_space = {"lr": Float(1e-3, 1.0, default=0.3, log=True)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]))
