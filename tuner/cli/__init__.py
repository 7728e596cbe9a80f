"""The ``tuner`` command line: click commands that parse, call the API and print."""

from __future__ import annotations

from tuner.cli._main import cli, main

__all__ = ["cli", "main"]
