"""``tuner.load_model``: a fitted model from its folder or the MLflow registry."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from tuner.model import LogisticModel

__all__ = ["load_model"]


def load_model(uri: str | os.PathLike[str], *, tracking_uri: str | None = None) -> LogisticModel:
    """Load a fitted :class:`LogisticModel`.

    Parameters
    ----------
    uri : str or path
        A folder saved by :func:`tuner.fit` (``save_model=``) or ``tuner train --save-model``,
        an MLflow model folder, a registered model (``models:/NAME/VERSION``,
        ``models:/NAME@champion``: :attr:`TuneResult.model_uri`), or a run's model
        (``runs:/RUN_ID/model``).
    tracking_uri : str, optional
        The MLflow store of a ``models:/`` or ``runs:/`` URI (default: ``MLFLOW_TRACKING_URI``,
        then ``sqlite:///mlflow.db``).

    Returns
    -------
    LogisticModel
        ``predict``, ``predict_proba`` and ``save``.
    """
    text = os.fspath(uri)
    if "://" not in text and not text.startswith(("models:/", "runs:/")) and (Path(text) / "model.json").is_file():
        from tuner.model import LogisticModel

        return LogisticModel.load(text)
    from tuner.tracking import resolve_model

    with tempfile.TemporaryDirectory(prefix="tuner-model-") as tmp:
        return resolve_model(text, tmp, tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None)
