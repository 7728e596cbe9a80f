"""The public Python API: :func:`fit`, :func:`tune`, :func:`load_model` and their results.

The CLI's ``train``, ``tune`` and ``worker`` commands call these; the scikit-learn estimators
:class:`LogisticRegression` and :class:`TunedLogisticRegression` are built on them. Names are
resolved on first use (PEP 562), so ``import tuner.api`` imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from tuner.api._data import DataOptions
    from tuner.api._fit import FitReport, fit
    from tuner.api._load import load_model
    from tuner.api._sklearn import LogisticRegression
    from tuner.api._tune import TuneResult, tune, wait_for_study
    from tuner.api._tuned import TunedLogisticRegression

__all__ = ["fit", "FitReport", "tune", "TuneResult", "wait_for_study", "load_model", "DataOptions",
           "LogisticRegression", "TunedLogisticRegression"]

_LAZY = {
    "fit": "tuner.api._fit", "FitReport": "tuner.api._fit",
    "tune": "tuner.api._tune", "TuneResult": "tuner.api._tune", "wait_for_study": "tuner.api._tune",
    "load_model": "tuner.api._load",
    "DataOptions": "tuner.api._data",
    "LogisticRegression": "tuner.api._sklearn", "TunedLogisticRegression": "tuner.api._tuned",
}

__getattr__, __dir__ = lazy_exports("tuner.api", _LAZY, __all__)
