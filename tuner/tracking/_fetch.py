"""A logged model fetched back: ``models:/`` and ``runs:/`` URIs resolved with an explicit client.

MLflow's own resolution of ``models:/`` consults the process-global tracking and registry
URIs; here every lookup goes to the given tracking store. A name, alias or version that does
not exist is a :class:`ConfigError` listing those that do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tuner._logs import quiet_logger
from tuner.errors import ConfigError, DataError, TrackingError
from tuner.model import LogisticModel, load_logistic_model
from tuner.tracking._names import CHAMPION_ALIAS, TAG_STUDY
from tuner.tracking._store import (
    check_server,
    check_store_exists,
    default_tracking_uri,
    explicit_client,
    first_line,
    get_repo,
    reason_of,
    redact,
    scheme,
    store_uri,
)
from tuner.tracking._writer import quote

__all__ = ["download_model", "resolve_model"]


def download_model(model_uri: str, dst: str | Path, tracking_uri: str | None = None) -> Path:
    """Fetch ``models:/NAME@alias``, ``models:/NAME/3``, ``models:/m-ID``, ``runs:/ID/model`` ... into ``dst``.

    A server is asked once, quickly, before anything else (a dead one fails within seconds);
    a local database store must exist and be an MLflow one (it is never created or upgraded
    here).
    """
    from mlflow.exceptions import MlflowException

    uri = tracking_uri or default_tracking_uri()
    check_server(uri)
    check_store_exists(uri)
    client = explicit_client(store_uri(uri))
    try:
        location = _storage_location(client, model_uri)
        Path(dst).mkdir(parents=True, exist_ok=True)
        with _no_progress_bar(), quiet_logger("mlflow.store.artifact.artifact_repo"):
            local = Path(get_repo(location, uri).download_artifacts("", dst_path=str(dst)))
        if not local.is_dir() or not any(local.iterdir()):
            raise TrackingError(f"The files of the model {model_uri} are missing from its artifact store "
                                f"({redact(location)}): deleted or moved? The registry still lists the model.")
        return local
    except (MlflowException, OSError, ValueError) as exc:
        raise TrackingError(f"Cannot fetch the model {model_uri} from {redact(uri)}: "
                            f"{first_line(exc, uri)}") from None
    except Exception as exc:  # requests' errors from an artifact server that went away
        if type(exc).__module__.split(".")[0] not in ("requests", "urllib3"):
            raise
        raise TrackingError(f"Cannot fetch the model {model_uri} from {redact(uri)}: {reason_of(exc)}.") from None


def resolve_model(model_uri: str, workdir: str | Path, tracking_uri: str | None = None) -> LogisticModel:
    """``model_uri`` (local folder, ``models:/``, ``runs:/``, any artifact URI) -> LogisticModel.

    A remote model is downloaded into ``workdir``.
    """
    local = Path(model_uri)
    if scheme(model_uri) in ("", "file") or local.exists():
        if scheme(model_uri) == "file":
            from urllib.parse import unquote, urlparse

            local = Path(unquote(urlparse(model_uri).path))
        if not local.exists() and scheme(model_uri) == "" and os.sep not in model_uri and "/" not in model_uri:
            raise DataError(f"{model_uri} is not a folder here; a study's best model is the registered model "
                            f"models:/{model_uri}@champion (and a version: models:/{model_uri}/1).")
        return load_logistic_model(local)
    try:
        return load_logistic_model(download_model(model_uri, workdir, tracking_uri))
    except DataError as exc:  # name the model, not the temporary folder it was downloaded to
        text = str(exc)
        for tmp in sorted({str(Path(workdir)), str(Path(workdir).resolve())}, key=len, reverse=True):
            text = text.replace(tmp + os.sep, model_uri + "/").replace(tmp, model_uri)
        raise DataError(f"The model {model_uri} is not usable: {text}") from None


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow's artifact progress bar off for one download (a model is a dozen small files; the
    bar is a screenful of redraws in a log), unless the user set ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _storage_location(client: Any, model_uri: str) -> str:
    """Where the files of ``model_uri`` are (an artifact URI that needs no registry lookup)."""
    kind = scheme(model_uri)
    if kind == "models":
        body = model_uri[len("models:"):].lstrip("/")
        if body.startswith("m-") and "/" not in body:
            return str(client.get_logged_model(body).artifact_location)
        if "@" in body:
            name, alias = body.rsplit("@", 1)
            mv = _model_version(client, name, alias=alias)
        else:
            name, _, version = body.rpartition("/")
            if not name:
                raise ValueError(f"{model_uri} is not models:/NAME@ALIAS, models:/NAME/VERSION or models:/MODEL_ID")
            mv = _model_version(client, name, version=version)
        source = str(mv.source)
        if scheme(source) in ("models", "runs"):
            return _storage_location(client, source)
        return source
    if kind == "runs":
        return _run_location(client, model_uri)
    return model_uri


def _run_location(client: Any, model_uri: str) -> str:
    """``runs:/ID/PATH``: the run's artifact at PATH, or the model PATH logged by the run."""
    body = model_uri[len("runs:"):].lstrip("/")
    run_id, _, path = body.partition("/")
    run = client.get_run(run_id)
    if path and get_repo(run.info.artifact_uri, client.tracking_uri).list_artifacts(path):
        return f"{run.info.artifact_uri.rstrip('/')}/{path}"
    name, _, rest = path.partition("/")
    models = [m for m in client.search_logged_models([run.info.experiment_id], filter_string=f"name = '{quote(name)}'")
              if m.source_run_id == run_id]
    if not models:
        study = run.data.tags.get(TAG_STUDY)
        hint = f"; the best model of study {study} is models:/{study}@{CHAMPION_ALIAS}" if study else ""
        raise ConfigError(f"The run {run_id} has no model at {path!r} (a study logs the model of its best "
                          f"trial only){hint}.")
    latest = max(models, key=lambda m: m.creation_timestamp)
    return str(latest.artifact_location).rstrip("/") + (f"/{rest}" if rest else "")


def _missing(exc: Exception) -> bool:
    return any(c in str(getattr(exc, "error_code", "")) for c in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"))


def _model_version(client: Any, name: str, *, alias: str | None = None, version: str | None = None) -> Any:
    """The registered model version of ``name`` at ``alias`` or ``version`` (``latest``: the newest).

    One that does not exist is a :class:`ConfigError` listing what does.
    """
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        if str(version).lower() == "latest":
            versions = client.search_model_versions(f"name='{quote(name)}'")
            if versions:
                return max(versions, key=lambda v: int(v.version))
        else:
            return client.get_model_version(name, version)
    except MlflowException as exc:
        if not _missing(exc):
            raise
    raise ConfigError(_what_exists(client, name, f"alias {alias!r}" if alias is not None else f"version {version}"))


def _what_exists(client: Any, name: str, wanted: str, limit: int = 20) -> str:
    """One line: the registered models there are, or the aliases and versions of ``name``."""
    from mlflow.exceptions import MlflowException

    store = redact(client.tracking_uri)
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        names = sorted(m.name for m in client.search_registered_models(max_results=1000))
        listed = ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
        return (f"There is no registered model {name!r} in {store}; " + (
            f"the registered models are: {listed}." if names else
            "it has no registered models yet (a study registers its best model when it ends with tracking on)."))
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{quote(name)}'"))
    aliases = ", ".join(f"@{a} (version {v})" for a, v in sorted((registered.aliases or {}).items())) or "none"
    shown = ", ".join(map(str, versions[-limit:])) or "none"
    return (f"The registered model {name!r} has no {wanted}; its aliases: {aliases}; its versions: {shown}. "
            f"Use models:/{name}@ALIAS or models:/{name}/VERSION.")
