"""The MLflow UI link that opens a study's trials, and the saved table view it points at.

MLflow 3.17's UI opens an experiment on its GenAI overview in a fresh browser (its
localStorage default), whatever the experiment's ``mlflow.experimentKind`` tag says; it does
honour the URL parameter ``workflowType=machine_learning``. The runs table's filter, sort order
and columns come from a *shared view*: the experiment tag ``mlflow.sharedViewState.<key>``
holds them as JSON and the URL parameter ``viewStateShareKey=<key>`` applies them (the UI
ignores the shared view when the URL also carries ``orderByKey`` or ``searchFilter``, so the
link carries only the key). :func:`trials_view` is that JSON, written by the study's parent
run; :func:`ui_link` the link.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlencode

from tuner.tracking._names import TAG_ROLE, TAG_STATE

__all__ = ["ui_link", "trials_view", "VIEW_KEY", "VIEW_TAG"]

VIEW_KEY = "tuner-trials"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"


def _col(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"  # the UI's canonical column key


def ui_link(tracking_uri_or_server_url: str, experiment_id: str | int, *, view: bool = True,
            run_id: str | None = None, artifact: str | None = None) -> str:
    """The MLflow UI address that opens the study's training runs in a fresh browser.

    Args:
        tracking_uri_or_server_url: an ``http(s)://`` tracking server (the link is absolute),
            or a local store (``sqlite:///...``, a path): then the link is relative to the
            server that ``tuner ui`` (``mlflow ui``) starts on it, e.g. ``/#/experiments/1/runs?...``.
        experiment_id: the study's experiment.
        view: apply the study's saved view (trial runs only, sorted by the study's metric,
            the metric and hyperparameter columns), which the parent run stores on the
            experiment; ``False`` for an experiment logged without it.
        run_id: link to this run's page instead (e.g. the study's parent run), in the
            training-runs view; ``artifact``: to this artifact of it (``plots/coefficients.png``).
    """
    query = {"workflowType": "machine_learning"}
    if run_id is not None:
        page = f"/runs/{run_id}" + (f"/artifacts/{artifact.strip('/')}" if artifact else "")
    else:
        page = "/runs"
        if view:
            query["viewStateShareKey"] = VIEW_KEY
    path = f"/#/experiments/{experiment_id}{page}?{urlencode(query)}"
    base = tracking_uri_or_server_url.rstrip("/")
    if base.lower().startswith(("http://", "https://")):
        return base + path
    return path


def trials_view(metric: str, direction: str, params: Iterable[str] = (), metrics: Iterable[str] = (),
                cv: bool = False, parent_run_id: str | None = None) -> str:
    """The shared view (JSON) of a study's trials: trial runs only (with ``parent_run_id``, that
    study's own: the experiment of a study deleted and created again under its name still holds
    the old study's trials), best first by what the study ranks them by (``val_<metric>``, or
    with cross-validation ``cv_<metric>``, the mean over folds), columns for the metric,
    ``params`` (public names) and the trial's state."""
    main = f"cv_{metric}" if cv else f"val_{metric}"
    metric_cols = [main, *(m for m in metrics if m != main)]
    columns = ([_col("metrics", main)] + [_col("params", p) for p in params]
               + [_col("metrics", m) for m in metric_cols[1:]] + [_col("tags", TAG_STATE)])
    where = f"tags.`{TAG_ROLE}` = 'trial'"
    if parent_run_id:
        where += f" and tags.`mlflow.parentRunId` = '{parent_run_id}'"
    state = {
        "searchFilter": where,
        "orderByKey": _col("metrics", main),
        "orderByAsc": direction != "maximize",
        "selectedColumns": list(dict.fromkeys(columns)),
        "columnOrder": list(dict.fromkeys(columns)),  # the metric first, then the hyperparameters
        "runsHiddenMode": "SHOW_ALL",
    }
    return json.dumps(state, separators=(",", ":"))
