"""Looks like a penalty but does not subclass tuner.Penalty."""


class NotAPenalty:
    name = "wrong_interface"
    description = "Duck-typed, which the registry refuses."
    search_space = {}
    has_prox = False

    def smooth_value(self, weight, params):
        return weight.pow(2).sum()
