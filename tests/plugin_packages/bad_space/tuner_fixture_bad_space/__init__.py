"""Invalid search spaces: a range with low > high, and a log scale that starts at 0."""

import torch

from tuner import Float, Optimizer, Penalty


class RangePenalty(Penalty):
    name = "bad_space_range"
    description = "Its strength range is upside down."
    search_space = {"strength": Float(1.0, 0.1, default=0.5)}

    def smooth_value(self, weight, params):
        return params["strength"] * weight.pow(2).sum()


class LogOptimizer(Optimizer):
    name = "bad_space_log"
    description = "Its learning rate is searched on a log scale from 0."
    search_space = {"lr": Float(0.0, 1.0, default=0.1, log=True)}

    def build(self, param_groups, params, prox=None):
        return torch.optim.SGD(list(param_groups), lr=float(params["lr"]))
