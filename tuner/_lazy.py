"""Names a package resolves on first use (PEP 562), so importing it stays light.

A package lists ``name -> module`` (a module path, absolute or relative to the package) and
gets its module-level ``__getattr__`` and ``__dir__`` from :func:`lazy_exports`; the module
holding a name is imported the first time the name is read, then the name is cached in the
package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, table: Mapping[str, str],
                 public: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: a name in ``table`` is imported from its module
    on first use; ``dir()`` lists the package's names and ``public``."""
    listed = set(public)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if module.startswith("tuner") else f"{package}.{module.lstrip('.')}"
        value = getattr(importlib.import_module(path), name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | listed)

    return __getattr__, __dir__
