"""A quick reachability probe of an MLflow tracking server, made before MLflow (or torch) is imported.

Commands that read from a tracking server (``tuner predict models:/...``, ``tuner study
sync-mlflow``) call :func:`probe_tracking_server` first, so that a dead server costs one short
wait and one line instead of the imports plus MLflow's retries. Any HTTP answer, even an
error status or a TLS handshake that this probe cannot verify, means something is listening:
credentials and certificates are MLflow's client's business afterwards.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from tuner.errors import TrackingError

__all__ = ["PROBE_TIMEOUT_S", "probe_tracking_server"]

PROBE_TIMEOUT_S = 5.0


def _health_url(uri: str) -> str:
    """``uri``'s ``/health`` route, without the credentials a URI may carry."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}/health"


def _no_redirect() -> urllib.request.OpenerDirector:
    class _Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:  # a redirect is an answer too
            return None

    return urllib.request.build_opener(_Keep())


def probe_tracking_server(uri: str | None, timeout: float = PROBE_TIMEOUT_S) -> None:
    """For an ``http(s)://`` tracking URI: one GET of its ``/health`` route within ``timeout``
    seconds; :class:`TrackingError` in one line (password hidden) when nothing answers.
    Other URIs (a database, a folder) are left alone."""
    if not uri or urlsplit(uri).scheme.lower() not in ("http", "https"):
        return
    from tuner.study import redact

    try:
        with _no_redirect().open(_health_url(uri), timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered (401 behind a login, 404 behind a proxy, a redirect...)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            return  # something speaks TLS there; MLflow's client applies the certificate settings
        why = _reason(exc.reason)
    except (TimeoutError, OSError) as exc:
        why = _reason(exc)
    raise TrackingError(f"Cannot reach the MLflow tracking server at {redact(uri)} ({why}); start it "
                        "(mlflow server ...) or fix --tracking-uri / MLFLOW_TRACKING_URI.")


def _reason(exc: object) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc):
        return "connection refused"
    return str(getattr(exc, "strerror", None) or exc).splitlines()[0][:200]
