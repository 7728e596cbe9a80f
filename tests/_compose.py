"""Reading docker-compose.yml the way ``docker compose`` does, for the tests (no Docker engine here).

Not a test module: ``test_compose.py`` checks the file's promises, ``test_compose_services.py``
runs its services natively with the same commands and environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is unset or empty (compose refuses to start)."""


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: {line!r} is not KEY=VALUE"
        out[key.strip()] = value.strip().strip("'\"")
    return out


def _substitute(text: str, env: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = env.get(name)
        if op in (":-", "-"):
            unset = value is None or (op == ":-" and value == "")
            return arg if unset else str(value)
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _VAR.sub(one, text)


def interpolate(obj: Any, env: dict[str, str]) -> Any:
    """Every string in ``obj`` with compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``."""
    if isinstance(obj, str):
        return _substitute(obj, env)
    if isinstance(obj, list):
        return [interpolate(v, env) for v in obj]
    if isinstance(obj, dict):
        return {k: interpolate(v, env) for k, v in obj.items()}
    return obj


def raw_compose() -> dict[str, Any]:
    """The compose file as YAML (merge keys applied), variables not yet substituted."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def example_env() -> dict[str, str]:
    return read_dotenv(ROOT / ".env.example")


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as ``docker compose config`` would see it with ``.env`` = ``env``
    (default: the shipped ``.env.example``)."""
    return interpolate(raw_compose(), example_env() if env is None else env)
