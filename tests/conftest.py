"""Shared fixtures: where the public data sets are, and small helpers built on them.

The data sets are read from ``TUNER_DATA_DIR`` (default ``../shared/data`` relative to the
repository root); they are never copied into the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from tuner._plugin_api import Optimizer

ROOT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("TUNER_DATA_DIR") or ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding the public data sets (a9a/, rt-polarity/, sst/, ...)."""
    path = _data_dir()
    assert path.is_dir(), (
        f"The test data folder {path} does not exist; set TUNER_DATA_DIR to the folder holding "
        "a9a/, rt-polarity/ and sst/."
    )
    return path


@pytest.fixture(scope="session")
def a9a(data_dir: Path) -> tuple[sp.csr_matrix, np.ndarray]:
    """a9a's training set: a CSR matrix (32-bit indices, as scikit-learn's solvers want) and 0/1 labels."""
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(data_dir / "a9a" / "a9a"), n_features=123)
    X = sp.csr_matrix(X, dtype=np.float64)
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32)
    assert set(np.unique(y)) == {-1.0, 1.0}
    return X, (y > 0).astype(np.int64)


@pytest.fixture(scope="session")
def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's breast cancer set, standardized."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    d = load_breast_cancer()
    return StandardScaler().fit_transform(d.data), d.target.astype(np.int64)


class BoomOptimizer(Optimizer):
    """An optimizer plugin whose every trial fails (stands for a buggy third-party plugin)."""

    name = "boom"
    description = "Always fails when building its torch optimizer."
    search_space: dict[str, Any] = {}

    def build(self, param_groups: Any, params: Any, prox: Any = None) -> Any:
        raise RuntimeError("boom: this optimizer always fails")


def _registered(plugin: Optimizer) -> Iterator[str]:
    """``plugin`` registered as an installed optimizer plugin under its name, for one test."""
    from tuner._registry import PluginInfo, optimizers

    infos = optimizers._load()
    infos[plugin.name] = PluginInfo("logreg_tuner.optimizers", plugin.name, f"tests:{type(plugin).__name__}",
                                    "tests-fixture", "0.0", plugin=plugin)
    yield plugin.name
    infos.pop(plugin.name, None)


@pytest.fixture
def boom() -> Iterator[str]:
    """Registers :class:`BoomOptimizer` as the optimizer plugin ``boom`` for one test."""
    yield from _registered(BoomOptimizer())


class SmoothOnlyOptimizer(Optimizer):
    """A full-batch optimizer for smooth objectives only (``prox_mode = "unsupported"``): every
    built-in optimizer now takes every built-in penalty, so the refusal of an incompatible pair
    needs a plugin like a third party's. It trains with torch's L-BFGS."""

    name = "smooth_only"
    description = "Full-batch L-BFGS that declines non-smooth penalties (test fixture)."
    search_space: dict[str, Any] = {}
    full_batch = True
    prox_mode = "unsupported"

    def build(self, param_groups: Any, params: Any, prox: Any = None) -> Any:
        import torch

        return torch.optim.LBFGS([p for g in param_groups for p in g["params"]], line_search_fn="strong_wolfe")


@pytest.fixture
def smooth_only() -> Iterator[str]:
    """Registers :class:`SmoothOnlyOptimizer` as the optimizer plugin ``smooth_only`` for one test."""
    yield from _registered(SmoothOnlyOptimizer())
