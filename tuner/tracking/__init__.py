"""MLflow tracking of a study: a parent run, a run per trial, plots, the registered model, sync.

Light names (the store's URI helpers, the names tracking writes, the server probe) are
imported eagerly; the ones whose modules import MLflow's parts, the study package or the
trainer are resolved on first use (PEP 562), so ``tuner.tracking.probe_tracking_server`` costs
no heavy import before a dead server is reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports
from tuner.tracking._links import VIEW_KEY, trials_view, ui_link
from tuner.tracking._names import CHAMPION_ALIAS, EPOCH_PREFIX, WEIGHTS_ARTIFACT, check_model_name
from tuner.tracking._probe import PROBE_TIMEOUT_S, probe_tracking_server
from tuner.tracking._store import (
    DEFAULT_ARTIFACTS_DIR,
    DEFAULT_DB_FILE,
    bound_http_requests,
    check_server,
    default_tracking_uri,
)

if TYPE_CHECKING:  # pragma: no cover - resolved lazily by __getattr__ below
    from tuner.tracking._fetch import download_model, resolve_model
    from tuner.tracking._observer import MlflowObserver
    from tuner.tracking._sync import sync_study

_LAZY = {
    "MlflowObserver": "_observer",
    "sync_study": "_sync",
    "download_model": "_fetch",
    "resolve_model": "_fetch",
}



__all__ = [
    "MlflowObserver", "sync_study", "download_model", "resolve_model", "ui_link", "trials_view", "VIEW_KEY",
    "default_tracking_uri", "check_server", "bound_http_requests", "probe_tracking_server", "PROBE_TIMEOUT_S",
    "CHAMPION_ALIAS", "EPOCH_PREFIX", "check_model_name", "WEIGHTS_ARTIFACT", "DEFAULT_DB_FILE", "DEFAULT_ARTIFACTS_DIR",
]

__getattr__, __dir__ = lazy_exports("tuner.tracking", _LAZY, __all__)
