"""Registered as 'misnamed' but calls itself something else."""

from tuner import Penalty


class MisnamedPenalty(Penalty):
    name = "something_else"
    description = "Its name differs from its entry-point name."

    def smooth_value(self, weight, params):
        return weight.pow(2).sum()
