"""Where a study's MLflow records are: experiment, parent run, registered model, UI link.

One block, the same in the ``tune`` and ``worker`` summaries and in ``tuner study show``
(text and ``--json``), so that ``models:/NAME@champion`` is never a mystery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

__all__ = ["DEFAULT_UI_PORT", "mlflow_block", "mlflow_block_from_attrs", "print_mlflow_block", "ui_url"]

DEFAULT_UI_PORT = 5000
"""The port ``tuner ui`` serves on unless told otherwise (the links printed for a local store use it)."""


def ui_url(tracking_uri: str, experiment_id: str, port: int = DEFAULT_UI_PORT, host: str = "127.0.0.1") -> str:
    """The link that opens the experiment's training runs: on the tracking server itself, or for a
    local store (SQLite, a folder) on the server ``tuner ui`` starts on ``host:port``."""
    from tuner.tracking import ui_link

    server = tracking_uri.rstrip("/") if _is_http(tracking_uri) else f"http://{host}:{port}"
    return ui_link(server, experiment_id)


def _is_http(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def mlflow_block(tracking_uri: str | None, experiment_name: str | None, experiment_id: str | None,
                 parent_run_id: str | None, model_name: str | None, model_version: str | None,
                 champion_version: str | None) -> dict[str, Any] | None:
    """The JSON-ready block (None without tracking): ids, ``models:/`` URIs to copy, the UI link,
    and for a local store the ``tuner ui`` command that serves it."""
    if tracking_uri is None or experiment_id is None:
        return None
    from tuner.study import redact
    from tuner.tracking import default_tracking_uri

    local = not _is_http(tracking_uri)
    command = None
    if local:
        # the URI as given may hold a password: printed redacted (the user puts theirs back)
        command = ("tuner ui" if tracking_uri == default_tracking_uri()
                   else f"tuner ui --tracking-uri '{redact(tracking_uri)}'")
    return {
        "tracking_uri": redact(tracking_uri), "experiment_name": experiment_name, "experiment_id": experiment_id,
        "parent_run_id": parent_run_id, "registered_model": model_name if (model_version or champion_version) else None,
        "model_version": model_version,
        "model_uri": f"models:/{model_name}/{model_version}" if model_name and model_version else None,
        "champion_version": champion_version,
        "champion_uri": f"models:/{model_name}@champion" if model_name and champion_version else None,
        "ui_link": redact(ui_url(tracking_uri, experiment_id)), "ui_command": command,
    }


def mlflow_block_from_attrs(tracking_uri: str | None, study_name: str,
                            attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """:func:`mlflow_block` from a study's user attributes (``mlflow_experiment_id``, ...)."""
    experiment_id = attrs.get("mlflow_experiment_id")
    if experiment_id is None:
        return None
    version, champion = attrs.get("mlflow_model_version"), attrs.get("mlflow_champion_version")
    return mlflow_block(tracking_uri, study_name, str(experiment_id), attrs.get("mlflow_parent_run_id"), study_name,
                        None if version is None else str(version), None if champion is None else str(champion))


def print_mlflow_block(block: Mapping[str, Any] | None, indent: str = "  ") -> None:
    """The block as text: what to open, what to copy."""
    if not block:
        return
    click.echo(f"{indent}MLflow ({block['tracking_uri']}):")
    click.echo(f"{indent}  experiment: {block['experiment_name']} (id {block['experiment_id']})")
    if block.get("parent_run_id"):
        click.echo(f"{indent}  parent run: {block['parent_run_id']}")
    if block.get("model_uri"):
        click.echo(f"{indent}  registered model: {block['registered_model']} version {block['model_version']}"
                   f"  ->  {block['model_uri']}")
    if block.get("champion_uri"):
        click.echo(f"{indent}  champion: version {block['champion_version']}  ->  {block['champion_uri']}")
    if block.get("ui_command"):
        click.echo(f"{indent}  UI: run `{block['ui_command']}` and open {block['ui_link']}")
    else:
        click.echo(f"{indent}  UI: {block['ui_link']}")
