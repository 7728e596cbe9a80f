"""A valid optimizer whose name another distribution claims too."""

import torch

from tuner import Float, Optimizer


class DupOptimizer(Optimizer):
    name = "dup_optimizer"
    description = "Plain SGD, from distribution b."
    search_space = {"lr": Float(1e-3, 1.0, default=0.1, log=True)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]))
