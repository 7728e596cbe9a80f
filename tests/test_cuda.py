"""The CUDA path gives the CPU's answers (issue 10): every built-in solver, one trial and
trials side by side, dense and sparse rows, binary and multinomial, and whole studies.

Each test takes the device as a parameter: ``cpu`` on every machine (it checks the test
itself, against a second CPU run or the batched engine), ``cuda`` where torch sees a GPU
(``pytest -k cuda`` in ``benchmarks/gpu_check.sh``). The CPU path is checked against
scikit-learn in ``test_parity.py``; here the device must reach the same optimum as the CPU:
the converging solvers the same objective and, with an L1 part, the same zeros; the
mini-batch optimizers, which shuffle rows with a CPU generator on every device, the same
trajectory in float64.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.preprocessing import StandardScaler

from tuner._registry import optimizers, penalties
from tuner.train import FitResult, TrainConfig, fit, fit_many

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
CONVERGING = {"lbfgs": "l2", "fista": "elasticnet", "newton": "l2", "newton_cg": "l2"}
MINI_BATCH = ("sgd", "adam", "rmsprop")


def _data(layout: str, classes: int) -> tuple[Any, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True) if classes == 2 else load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if layout == "sparse":  # about a third of the values stored
        X = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    return X, y


def _fit(X: Any, y: np.ndarray, classes: int, pen: str, pp: dict, opt: str, device: str, **config: Any) -> FitResult:
    op = {name: hp.default for name, hp in optimizers.get(opt).search_space.items()}
    cfg = TrainConfig(device=device, dtype="float64", seed=1, **config)
    return fit(X, y, classes, penalties.get(pen), pp, optimizers.get(opt), op, cfg)


def _objective_close(a: FitResult, b: FitResult, rel: float) -> None:
    assert a.objective == pytest.approx(b.objective, rel=rel)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("opt", sorted(CONVERGING))
def test_converging_solvers_reach_the_host_optimum(opt: str, classes: int, layout: str, device: str) -> None:
    X, y = _data(layout, classes)
    pen = CONVERGING[opt]
    pp = {"strength": 3e-3, "l1_ratio": 0.5} if pen == "elasticnet" else {"strength": 3e-3}
    tight = dict(tol=1e-10, patience=3, epochs=500)
    on_device = _fit(X, y, classes, pen, pp, opt, device, **tight)
    on_cpu = _fit(X, y, classes, pen, pp, opt, "cpu", **tight)
    assert on_device.device.startswith(device)
    assert on_device.stop_reason == "converged", on_device.stop_reason
    _objective_close(on_device, on_cpu, 1e-8)
    if pen == "elasticnet":  # strictly convex: one minimiser, the same exact zeros
        assert 0 < on_device.n_nonzero < on_device.weight.size
        np.testing.assert_array_equal(on_device.weight == 0, on_cpu.weight == 0)
    np.testing.assert_allclose(on_device.weight, on_cpu.weight, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("opt", MINI_BATCH)
def test_mini_batch_optimizers_follow_the_host_trajectory(opt: str, layout: str, device: str) -> None:
    X, y = _data(layout, 2)
    pp = {"strength": 1e-3, "l1_ratio": 0.3}
    on_device = _fit(X, y, 2, "elasticnet", pp, opt, device, epochs=12, batch_size=32)
    on_cpu = _fit(X, y, 2, "elasticnet", pp, opt, "cpu", epochs=12, batch_size=32)
    assert on_device.epochs_run == on_cpu.epochs_run
    assert [h["train_loss"] for h in on_device.history] == pytest.approx(
        [h["train_loss"] for h in on_cpu.history], rel=1e-8)
    np.testing.assert_allclose(on_device.weight, on_cpu.weight, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(on_device.weight == 0, on_cpu.weight == 0)  # the proximal step's zeros


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("opt", [*MINI_BATCH, *sorted(CONVERGING)])
def test_trials_side_by_side_on_the_device_equal_trials_alone(opt: str, device: str) -> None:
    """One product with K weight columns on the device serves K trials, each its own answer;
    a diverging neighbour (SGD at a huge rate) does not poison the others."""
    X, y = _data("sparse", 2)
    pen = CONVERGING.get(opt, "l2")
    strengths = [1e-2, 1e-3, 3e-4]
    pps = [{"strength": s, "l1_ratio": 0.5} if pen == "elasticnet" else {"strength": s} for s in strengths]
    default = {name: hp.default for name, hp in optimizers.get(opt).search_space.items()}
    ops = [dict(default) for _ in pps]
    if opt == "sgd":
        ops[1]["lr"] = 1e6
    converge = dict(tol=1e-10, patience=3, epochs=500) if opt in CONVERGING else dict(epochs=8, batch_size=32)
    cfg = TrainConfig(device=device, dtype="float64", seed=2, **converge)
    together = fit_many(X, y, 2, penalties.get(pen), pps, optimizers.get(opt), ops, cfg)
    for k, (pp, op) in enumerate(zip(pps, ops)):
        try:
            alone: FitResult | Exception = fit(X, y, 2, penalties.get(pen), pp, optimizers.get(opt), op, cfg)
        except Exception as exc:  # noqa: BLE001 - the diverging trial, compared below
            alone = exc
        if isinstance(alone, Exception):
            assert type(together[k]) is type(alone), (k, together[k], alone)
            continue
        got = together[k]
        assert isinstance(got, FitResult), (k, got)
        if opt in CONVERGING:
            _objective_close(got, alone, 1e-8)
        else:
            np.testing.assert_allclose(got.weight, alone.weight, rtol=1e-6, atol=1e-9)
            assert got.epochs_run == alone.epochs_run
    if opt == "sgd":
        assert not isinstance(together[1], FitResult)  # it diverged, alone and side by side


@pytest.mark.skipif(not torch.cuda.is_available(), reason="host synchronisations exist only with a CUDA device")
@pytest.mark.parametrize("opt", MINI_BATCH)
def test_cuda_epoch_has_no_host_sync_per_step(opt: str) -> None:
    """Losses accumulate on the device: an epoch of 625 mini-batch steps synchronises with
    the host a handful of times (the epoch's end), not once a step. Dense rows: PyTorch's sync
    debug mode does not see inside its sparse kernels."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 64))
    y = (X[:, 0] + 0.5 * rng.normal(size=20_000) > 0).astype(np.int64)
    epochs, steps = 3, 20_000 // 32
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = _fit(X, y, 2, "l2", {"strength": 1e-4}, opt, "cuda", epochs=epochs, batch_size=32, tol=0.0)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in seen if "synchroniz" in str(w.message)]
    assert result.epochs_run == epochs
    assert len(syncs) < epochs * steps / 20, f"{len(syncs)} host synchronisations in {epochs} x {steps} steps"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("extra", [[], ["--cv", "3"]], ids=["holdout", "cv"])
def test_study_on_the_device(device: str, extra: list[str], tmp_path: Path) -> None:
    """A whole `tuner tune` process on the device: every variant, trials side by side."""
    cmd = [sys.executable, "-m", "tuner.cli", "tune", "--dataset", "breast_cancer", "--trials", "10",
           "--device", device, "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", "--study", "s",
           "--no-tracking", "--json", "--batch-trials", "auto", *extra]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout[proc.stdout.find("{"):])
    assert out["trials"]["fail"] == 0 and out["trials"]["complete"] >= 1, out["trials"]
    assert 0 < out["best_value"] < 0.2  # a validation log loss on breast_cancer
