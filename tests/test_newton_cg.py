"""Truncated Newton ('newton_cg') and the Hessian-vector products the trainer offers it.

The products must equal the Hessian times the vector (binary and multinomial, dense and sparse,
row and class weights, penalties with and without a smooth part, any subset of the trials side
by side); the optimizer must reach scikit-learn's optimum (L2 and none, binary and multinomial,
models too large for the Hessian included), give each trial side by side the result it gets
alone, and refuse penalties with a non-smooth part. The parity tests against scikit-learn on
a9a, breast cancer and digits run it too (``tests/test_parity.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tuner import Optimizer, optimizers, penalties
from tuner._plugin_api import compatibility_reason
from tuner.train import TrainConfig, fit_many


class _Recorder(Optimizer):
    """Takes no step; at its first closure, records the Hessian and the Hessian-vector products
    of the trials in ``mask`` (what the trainer's closure offers every full-batch optimizer)."""

    name = "recorder"
    full_batch = True
    prox_mode = "internal"
    supports_batch = True

    def __init__(self, mask: list[bool], seed: int) -> None:
        self.mask, self.seed = mask, seed
        self.seen: dict[str, torch.Tensor] = {}

    def build(self, param_groups: Any, params: Any, prox: Any = None) -> torch.optim.Optimizer:
        recorder = self

        class _Step(torch.optim.Optimizer):
            def __init__(self) -> None:
                super().__init__(list(param_groups), {})

            def step(self, closure: Any) -> Any:  # type: ignore[override]
                closure()
                if not recorder.seen:
                    mask = torch.tensor(recorder.mask)
                    H = closure.hessian(mask)
                    g = torch.Generator().manual_seed(recorder.seed)
                    V = torch.randn(H.shape[0], H.shape[1], generator=g, dtype=torch.float64)
                    HV = closure.hessian_product(mask)(V.to(self.param_groups[0]["params"][0].dtype))
                    recorder.seen.update(H=H, V=V, HV=HV.double())
                return None

        return _Step()


def _weights_moved(X: Any, c: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Starting weights away from zero, so that the curvature differs from row to row."""
    rng = np.random.default_rng(3)
    return [(rng.normal(scale=0.3, size=(X.shape[1], c)), rng.normal(scale=0.3, size=c)) for _ in range(k)]


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("sparse", [False, True])
def test_the_hessian_product_is_the_hessian_times_the_vector(classes: int, sparse: bool) -> None:
    rng = np.random.default_rng(classes)
    X = rng.normal(size=(60, 7))
    X[rng.random(X.shape) < 0.5] = 0.0
    y = rng.integers(0, classes, size=60)
    data = sp.csr_matrix(X) if sparse else X
    c = 1 if classes == 2 else classes
    pens = [penalties.get("l2"), penalties.get("elasticnet"), penalties.get("none")]
    params = [{"strength": 0.3}, {"strength": 0.05, "l1_ratio": 0.4}, {}]
    folds = (rng.random((60, 3)) < 0.7).astype(float)  # cross-validation's 0/1 row weights, one column a trial
    for mask, columns in (([True, True, True], None), ([True, False, True], folds)):
        recorder = _Recorder(mask, seed=len(mask) + sum(mask))
        fit_many(data, y, classes, pens, params, recorder, [{}] * 3,
                 TrainConfig(dtype="float64", epochs=1, class_weight="balanced"),
                 init=_weights_moved(X, c, 3), sample_weight=rng.uniform(0.5, 2.0, size=60), column_weight=columns)
        H, V, HV = recorder.seen["H"], recorder.seen["V"], recorder.seen["HV"]
        assert H.shape == (sum(mask), (7 + 1) * c, (7 + 1) * c) and HV.shape == V.shape
        torch.testing.assert_close(HV, torch.einsum("kij,kj->ki", H, V), rtol=1e-10, atol=1e-12)


def _newton_cg(X: Any, y: np.ndarray, n_classes: int, pen: str, params: list[dict], dtype: str = "float64",
               **config: Any) -> list[Any]:
    return fit_many(X, y, n_classes, penalties.get(pen), params, optimizers.get("newton_cg"), [{}] * len(params),
                    TrainConfig(dtype=dtype, epochs=config.pop("epochs", 50), **config))


def _objective(X: Any, y: np.ndarray, W: np.ndarray, b: np.ndarray, strength: float) -> float:
    z = np.asarray(X @ W) + b
    if z.shape[1] == 1:
        loss = np.mean(np.logaddexp(0.0, z[:, 0]) - y * z[:, 0])
    else:
        z = z - z.max(axis=1, keepdims=True)
        loss = -np.mean((z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(len(y)), y])
    return float(loss + strength / 2 * (W ** 2).sum())


@pytest.mark.parametrize("loader, n_classes", [(load_breast_cancer, 2), (load_wine, 3)])
@pytest.mark.parametrize("strength", [1e-2, 1e-4])
def test_l2_reaches_sklearns_optimum_in_one_epoch(loader: Any, n_classes: int, strength: float) -> None:
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    (result,) = _newton_cg(X, y, n_classes, "l2", [{"strength": strength}])
    ref = LogisticRegression(C=1.0 / (strength * len(y)), solver="newton-cg", tol=1e-12, max_iter=10_000).fit(X, y)
    assert result.stop_reason == "converged" and result.epochs_run == 1
    W_ref = ref.coef_.T
    ours = _objective(X, y, result.weight, result.intercept, strength)
    theirs = _objective(X, y, W_ref, ref.intercept_, strength)
    assert ours <= theirs * (1 + 1e-9)
    np.testing.assert_allclose(result.weight, W_ref, atol=1e-5 * max(1.0, np.abs(W_ref).max()))


def test_a_model_too_large_for_the_hessian_reaches_the_optimum_in_float32() -> None:
    """20,000 sparse features, far beyond what 'newton' takes: the float32 fit ends at the
    float64 optimum of scikit-learn's newton-cg to float32's precision."""
    rng = np.random.default_rng(0)
    n, p = 3000, 20_000
    X = sp.random(n, p, density=0.002, random_state=1, format="csr", dtype=np.float64)
    X.data = rng.uniform(0.1, 1.0, size=X.nnz)
    y = (np.asarray(X @ rng.normal(size=p)).ravel() + 0.3 * rng.normal(size=n) > 0).astype(int)
    strength = 1e-4
    (result,) = _newton_cg(X, y, 2, "l2", [{"strength": strength}], dtype="float32")
    ref = LogisticRegression(C=1.0 / (strength * n), solver="newton-cg", tol=1e-10, max_iter=10_000).fit(X, y)
    assert result.stop_reason == "converged"
    ours = _objective(X, y, result.weight, result.intercept, strength)
    theirs = _objective(X, y, ref.coef_.T, ref.intercept_, strength)
    assert abs(ours - theirs) <= 2e-6 * theirs, (ours, theirs)


def test_side_by_side_equals_alone() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X = sp.csr_matrix(np.where(np.abs(X) > 0.4, X, 0.0))
    pens = [penalties.get("l2"), penalties.get("none"), penalties.get("l2")]
    settings = [{"strength": 1e-2}, {}, {"strength": 1e-5}]
    together = fit_many(X, y, 2, pens, settings, optimizers.get("newton_cg"), [{}] * 3,
                        TrainConfig(dtype="float64", epochs=50))
    for pen, params, joint in zip(pens, settings, together):
        (alone,) = _newton_cg(X, y, 2, pen.name, [params])
        assert joint.stop_reason == alone.stop_reason == "converged"
        # the same optimum; at strength 1e-5 the weights are pinned down only to the gradient
        # tolerance (products of K columns sum in another order than of one)
        assert joint.objective == pytest.approx(alone.objective, rel=1e-12)
        np.testing.assert_allclose(joint.weight, alone.weight, atol=1e-4)


@pytest.mark.parametrize("pen", ["l1", "elasticnet"])
def test_a_penalty_with_a_non_smooth_part_is_refused(pen: str) -> None:
    reason = compatibility_reason(penalties.get(pen), optimizers.get("newton_cg"))
    assert reason is not None and "cannot minimise" in reason
    assert compatibility_reason(penalties.get("l2"), optimizers.get("newton_cg")) is None


def test_float32_trials_side_by_side_stop_at_the_precision_floor_in_one_epoch(data_dir: Any) -> None:
    """Near the optimum of a float32 fit, Armijo's bound ``F0 + c t decrease`` rounds to ``F0`` and
    accepted steps that changed nothing: two identical SST-1 trials side by side neither converged nor
    stalled, and ran 6 epochs of 20 Newton iterations (35 s against 0.4 s for one alone)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    lines = (data_dir / "sst" / "stsa.fine.train").read_text(encoding="utf-8").splitlines()[:3000]
    y = np.array([int(line.split(" ", 1)[0]) for line in lines])
    X = TfidfVectorizer(ngram_range=(1, 2)).fit_transform([line.split(" ", 1)[1] for line in lines]).tocsr()
    together = _newton_cg(X, y, 5, "l2", [{"strength": 2.8e-5}] * 2, dtype="float32")
    (alone,) = _newton_cg(X, y, 5, "l2", [{"strength": 2.8e-5}], dtype="float32")
    for result in together:
        assert result.stop_reason == "converged" and result.epochs_run == 1, (result.stop_reason, result.epochs_run)
        assert result.objective == pytest.approx(alone.objective, rel=1e-5)


def test_a_named_penalty_no_named_optimizer_takes_is_reported_not_silently_left_out(tmp_path: Any) -> None:
    """`--optimizer newton_cg --penalty l1,l2` trains l2 only: the summary says why l1 never trains."""
    import json

    from click.testing import CliRunner

    from tuner.cli import cli

    res = CliRunner().invoke(cli, ["tune", "--dataset", "breast_cancer", "--optimizer", "newton_cg", "--penalty",
                                   "l1,l2", "--trials", "2", "--no-tracking", "--json",
                                   "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert any(w.startswith("the penalty 'l1' is not searched: ") and "cannot minimise" in w for w in out["warnings"])
    assert not any("'l2' is not searched" in w for w in out["warnings"])


@pytest.mark.parametrize("solver, max_features", [("newton", 1000), ("newton_cg", None)])
def test_a_warm_start_at_a_neighbours_optimum_takes_a_newton_step_before_it_is_called_converged(
        solver: str, max_features: int | None, data_dir: Any) -> None:
    """A study starts a trial from the optimum of the nearest finished one. There, with a weak
    penalty, the gradient is the change of strength times the weights: on sentences' TF-IDF
    (rare n-grams, weights with almost no curvature) it was under the float32 tolerance (1e-6)
    in every coordinate while the objective was still 0.9% above its optimum (newton_cg; newton
    on 1,000 features 7e-5). The trial stopped "converged" without moving, and a study had to
    train it again from zero."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    lines = (data_dir / "sst" / "stsa.binary.train").read_text().splitlines()
    y = np.array([int(line[0]) for line in lines])
    X = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=max_features).fit_transform(
        [line[2:] for line in lines]).tocsr()
    pen, opt = penalties.get("l2"), optimizers.get(solver)
    config = TrainConfig(dtype="float32", seed=0)
    (near,) = fit_many(X, y, 2, pen, [{"strength": 1e-6}], opt, [{}], config)
    (cold,) = fit_many(X, y, 2, pen, [{"strength": 1.3e-6}], opt, [{}], config)
    (warm,) = fit_many(X, y, 2, pen, [{"strength": 1.3e-6}], opt, [{}], config, init=[(near.weight, near.intercept)])
    assert not np.array_equal(warm.weight, near.weight)  # it left the start
    assert warm.stop_reason == "converged"
    assert warm.objective <= cold.objective * (1 + 1e-4), (warm.objective, cold.objective)
