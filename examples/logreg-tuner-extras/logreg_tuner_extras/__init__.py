"""Example third-party plugins for logreg-tuner.

* ``group_lasso`` (penalty): drops a feature for every class at once; its proximal operator
  is block soft-thresholding of the rows of the weight matrix.
* ``adagrad`` (optimizer): :class:`torch.optim.Adagrad`, with the penalty's prox applied by
  the trainer after each step.

Nothing here is imported by logreg-tuner itself: the entry points in ``pyproject.toml`` are
how the plugins are found.
"""

from .optimizers import AdagradOptimizer
from .penalties import GroupLassoPenalty

__all__ = ["GroupLassoPenalty", "AdagradOptimizer"]
__version__ = "0.1.0"
