"""The example plugins' own tests: the contract checks of tuner.testing plus their behaviour.

Run them after installing the package (``pip install examples/logreg-tuner-extras``):
``python -m pytest examples/logreg-tuner-extras/tests``.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from logreg_tuner_extras import AdagradOptimizer, GroupLassoPenalty
from logreg_tuner_extras.penalties import block_soft_threshold

from tuner.cli import cli
from tuner.testing import ContractError, check_installed, check_plugin


@pytest.mark.parametrize("plugin", [GroupLassoPenalty, AdagradOptimizer])
def test_contract(plugin):
    results = check_plugin(plugin)
    assert all(r.status in ("pass", "skip") for r in results)
    assert {r.check for r in results if r.passed} >= {"interface", "name", "search_space"}


@pytest.mark.parametrize("name, group", [("group_lasso", "penalty"), ("adagrad", "optimizer")])
def test_entry_point_is_installed_and_passes(name, group):
    (report,) = check_installed(name, group)
    assert report.distribution == "logreg-tuner-extras"
    assert report.ok


def test_block_soft_threshold_zeroes_whole_rows_and_shrinks_the_others():
    W = torch.tensor([[3.0, 4.0], [0.3, -0.4], [0.0, 0.0]], dtype=torch.float64)
    out = block_soft_threshold(W, 1.0)
    assert torch.allclose(out[0], torch.tensor([2.4, 3.2], dtype=torch.float64))  # norm 5 -> 4, same direction
    assert bool((out[1:] == 0).all())  # norm 0.5 < 1, and the zero row stays zero


def test_an_elementwise_prox_is_caught_by_the_contract_checks():
    class ElementwiseGroupLasso(GroupLassoPenalty):
        def prox(self, weight, step, params):  # soft-thresholds entries, not rows: the wrong prox
            t = step * params["strength"] * params["l1_ratio"]
            return torch.sign(weight) * torch.clamp(weight.abs() - t, min=0.0)

    with pytest.raises(ContractError) as failed:
        check_plugin(ElementwiseGroupLasso)
    assert failed.value.check == "prox_minimises"


def _train(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["train", "--dataset", "wine", "--json", "--epochs", "30", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_group_lasso_drops_whole_features_on_a_multiclass_problem():
    out = _train("--penalty", "group_lasso", "--optimizer", "fista", "--param", "penalty.strength=0.02")
    n_classes = 3
    assert out["n_weights"] == 13 * n_classes
    assert out["n_nonzero_weights"] % n_classes == 0  # a feature is kept or dropped for every class at once
    assert 0 < out["n_nonzero_weights"] < out["n_weights"]
    assert out["validation"]["accuracy"] >= 0.9


def test_adagrad_trains_with_a_proximal_penalty():
    out = _train("--penalty", "group_lasso", "--optimizer", "adagrad", "--param", "optimizer.lr=0.1")
    assert out["optimizer"] == "adagrad"
    assert out["validation"]["accuracy"] >= 0.9


def test_adagrad_gives_exact_zeros_with_the_lasso():
    """The trainer shrinks each weight by Adagrad's own per-coordinate step (coordinate_step_size)."""
    out = _train("--penalty", "l1", "--optimizer", "adagrad", "--param", "optimizer.lr=0.1",
                 "--param", "penalty.strength=0.02")
    assert 0 < out["n_nonzero_weights"] < out["n_weights"]
