"""The plugin registry: built-ins load through entry points, are valid, unknown names list the
usable ones, and TUNER_DISABLE_PLUGIN_AUTOLOAD keeps only this distribution's plugins.

A real (if tiny) third-party distribution is written to a temporary folder on ``sys.path``:
a ``*.dist-info`` with an ``entry_points.txt``, which ``importlib.metadata`` finds like an
installed package.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuner import Optimizer, Penalty, optimizers, penalties
from tuner._registry import AUTOLOAD_ENV, OWN_DISTRIBUTION, Registry
from tuner._space import validate_space
from tuner.errors import PluginError
from tuner.testing import check_installed

BUILTIN_PENALTIES = {"none", "l1", "l2", "elasticnet"}
BUILTIN_OPTIMIZERS = {"sgd", "adam", "rmsprop", "lbfgs", "fista", "newton", "newton_cg"}

REGISTERED = [("penalty", i.name) for i in penalties.infos()] + [("optimizer", i.name) for i in optimizers.infos()]


def test_builtins_are_registered_by_this_distribution() -> None:
    own = {(r.kind, i.name) for r in (penalties, optimizers) for i in r.infos() if i.distribution == OWN_DISTRIBUTION}
    assert own == {("penalty", n) for n in BUILTIN_PENALTIES} | {("optimizer", n) for n in BUILTIN_OPTIMIZERS}
    assert penalties.names() == sorted(penalties.names())  # listed in a stable order


@pytest.mark.parametrize("group, name", REGISTERED, ids=[f"{g}-{n}" for g, n in REGISTERED])
def test_every_registered_plugin_is_valid(group: str, name: str) -> None:
    registry = penalties if group == "penalty" else optimizers
    info = registry.info(name)
    assert info.ok, info.error
    plugin = registry.get(name)
    assert isinstance(plugin, Penalty if group == "penalty" else Optimizer)
    assert plugin.name == name and plugin.description.strip() and "\n" not in plugin.description
    space = validate_space(plugin.search_space)
    for hp_name, hp in space.items():
        assert hp.validate(f"{group}.{hp_name}", hp.default) == hp.default
    check_installed(name, group)  # the whole contract (tuner.testing), as a plugin author runs it


def test_unknown_names_list_the_usable_plugins() -> None:
    with pytest.raises(PluginError, match=r"Unknown penalty 'lasso'\. Usable penalties: elasticnet, l1, l2, none\."):
        penalties.get("lasso")
    with pytest.raises(PluginError, match=r"Unknown optimizer 'owlqn'\. Usable optimizers: adam, fista, lbfgs, newton, newton_cg, rmsprop, sgd\."):
        optimizers.get("owlqn")


def test_importing_tuner_loads_no_plugin_and_no_torch() -> None:
    code = ("import sys, tuner; print('torch' in sys.modules, 'logreg_tuner_plugins' in sys.modules, "
            "tuner.penalties._infos is None); tuner.penalties.names(); print('logreg_tuner_plugins' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True", "True"]


def test_training_imports_torch_but_no_study_or_tracking_library() -> None:
    """The trainer and the built-in plugins stand on torch (and numpy/scipy) alone."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from tuner import optimizers, penalties
        from tuner.train import TrainConfig, fit
        X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
        fit(X, y, 2, penalties.get("l1"), {"strength": 0.01}, optimizers.get("fista"), {"lr": 1.0},
            TrainConfig(device="cpu", epochs=3))
        print(sorted(m for m in ("torch", "optuna", "mlflow", "sklearn", "sqlalchemy", "pandas") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["['torch']"]


# ---------------------------------------------------------------------------------------------
# a third-party distribution on sys.path


EXTRA_MODULE = '''
import torch
from tuner import Float, Penalty


class Ridge2(Penalty):
    name = "ridge2"
    description = "Ridge again, from another distribution."
    search_space = {"strength": Float(1e-6, 1.0, default=1e-3, log=True)}

    def smooth_value(self, weight, params):
        return params["strength"] * 0.5 * weight.pow(2).sum()


class Misnamed(Ridge2):
    name = "something_else"
'''


@pytest.fixture
def extra_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "tuner_test_extra.py").write_text(textwrap.dedent(EXTRA_MODULE))
    info = site / "tuner_test_extra-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tuner-test-extra\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [logreg_tuner.penalties]
        ridge2 = tuner_test_extra:Ridge2
        misnamed = tuner_test_extra:Misnamed
        gone = tuner_test_extra_missing:Gone
        """))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    penalties.reload()
    yield site
    monkeypatch.undo()
    sys.modules.pop("tuner_test_extra", None)
    penalties.reload()


def test_third_party_plugins_load_through_the_same_path(extra_distribution: Path) -> None:
    assert "ridge2" in penalties.names() and BUILTIN_PENALTIES <= set(penalties.names())
    info = penalties.info("ridge2")
    assert (info.distribution, info.version, info.ok) == ("tuner-test-extra", "1.2", True)
    # broken entry points are listed with their distribution and reason; the rest keeps working
    gone, misnamed = penalties.info("gone"), penalties.info("misnamed")
    assert not gone.ok and "tuner_test_extra_missing" in gone.error and "ModuleNotFoundError" in gone.error
    assert not misnamed.ok and "'something_else'" in misnamed.error and "'misnamed'" in misnamed.error
    assert "gone" not in penalties.names() and "misnamed" not in penalties.names()
    with pytest.raises(PluginError, match=r"'gone' \(distribution 'tuner-test-extra'\) is broken.*Usable penalties: "
                                          r"elasticnet, l1, l2, none, ridge2\."):
        penalties.get("gone")


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_disabling_autoload_keeps_only_this_distributions_plugins(extra_distribution: Path,
                                                                   monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert "ridge2" in penalties.names()
    monkeypatch.setenv(AUTOLOAD_ENV, value)
    penalties.reload()
    assert set(penalties.names()) == BUILTIN_PENALTIES
    assert {i.distribution for i in penalties.infos()} == {OWN_DISTRIBUTION}
    with pytest.raises(PluginError, match="Unknown penalty 'ridge2'"):
        penalties.get("ridge2")
    monkeypatch.setenv(AUTOLOAD_ENV, "0")
    penalties.reload()
    assert "ridge2" in penalties.names()


def test_a_registry_is_generic_over_its_group(extra_distribution: Path) -> None:
    registry: Registry[Penalty] = Registry("logreg_tuner.penalties", Penalty, "penalty", "penalties")
    assert registry._infos is None  # nothing is loaded before it is asked for
    assert registry.names() == penalties.names()
    empty: Registry[Optimizer] = Registry("logreg_tuner.no_such_group", Optimizer, "optimizer")
    assert empty.names() == []
    with pytest.raises(PluginError, match="Usable optimizers: none"):
        empty.get("sgd")


def test_an_unknown_prox_mode_is_refused_with_the_modes_of_the_one_owner() -> None:
    from tuner._plugin_api import PROX_MODES
    from tuner._registry import _validate

    class Sometimes(Optimizer):
        name = "sometimes"
        description = "An optimizer with a prox mode that does not exist."
        prox_mode = "sometimes"  # type: ignore[assignment]

        def build(self, param_groups, params, prox=None):
            raise NotImplementedError

    with pytest.raises(ValueError, match="prox_mode must be one of 'after_step', 'internal', 'unsupported'"):
        _validate(Sometimes, "sometimes", Optimizer)
    assert list(PROX_MODES) == ["after_step", "internal", "unsupported"]


@pytest.mark.parametrize("declared", [
    {"incompatible_penalties": None}, {"incompatible_penalties": "l2"}, {"full_batch": "yes"},
    {"supports_batch": 1}, {"uses_hessian": None}, {"quasi_newton": "yes"}, {"hessian_products": 0},
])
def test_an_optimizer_whose_declarations_have_wrong_types_is_broken_alone(declared: dict) -> None:
    """A study reads every plugin's declarations when it lists or pairs them (`'l2' in None` stopped
    `tuner tune` and `tuner plugins list` though no one picked the plugin): the registry refuses it."""
    from tuner._registry import _validate

    ill = type("Ill", (Optimizer,), {"name": "ill", "description": "Declares the wrong types.",
                                     "build": lambda self, groups, params, prox=None: None, **declared})
    attr = next(iter(declared))
    with pytest.raises(ValueError, match=f"^{attr} must be a"):
        _validate(ill, "ill", Optimizer)


def test_a_penalty_whose_declarations_have_wrong_types_is_broken_alone() -> None:
    from tuner._registry import _validate

    for declared in ({"incompatible_optimizers": None}, {"has_prox": "no"}, {"elementwise_prox": 0}):
        ill = type("Ill", (Penalty,), {"name": "ill", "description": "Declares the wrong types.",
                                       "smooth_value": lambda self, w, p: w.sum(), **declared})
        attr = next(iter(declared))
        with pytest.raises(ValueError, match=f"^{attr} must be a"):
            _validate(ill, "ill", Penalty)


def test_a_third_party_plugin_named_like_a_builtin_is_broken_and_the_builtin_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither winning disabled the built-in 'l2' (the default penalty, and a partner of the
    conformance kit, whose checks then were skipped): the newcomer alone is broken."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "tuner_test_clash.py").write_text(textwrap.dedent(EXTRA_MODULE).replace('"ridge2"', '"l2"'))
    info = site / "tuner_test_clash-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tuner-test-clash\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[logreg_tuner.penalties]\nl2 = tuner_test_clash:Ridge2\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    penalties.reload()
    try:
        assert penalties.info("l2").distribution == OWN_DISTRIBUTION and penalties.info("l2").ok
        assert type(penalties.get("l2")).__module__ == "logreg_tuner_plugins.penalties"
        clashing = [i for i in penalties.infos() if i.name == "l2"]
        assert [(i.distribution, i.ok) for i in clashing] == [(OWN_DISTRIBUTION, True), ("tuner-test-clash", False)]
        assert "belongs to a built-in penalty of logreg-tuner; rename this plugin" in clashing[1].error
        assert set(penalties.names()) == BUILTIN_PENALTIES
    finally:
        monkeypatch.undo()
        sys.modules.pop("tuner_test_clash", None)
        penalties.reload()


def test_a_plugin_that_changes_torchs_default_dtype_is_broken_and_the_dtype_restored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Merely installed, a plugin calling torch.set_default_dtype(float64) made every tensor of
    every process that loaded the registry float64, a user's own included."""
    import torch
    from _broken_plugins import forget, install_distribution

    site = install_distribution(tmp_path / "site", "tuner_test_float64", {"penalties": {"float64_ridge":
                                                                                         "Float64Everywhere"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    penalties.reload()
    try:
        info = penalties.info("float64_ridge")
        assert not info.ok and info.plugin is None
        assert "changed torch's default dtype to float64 (set_default_dtype)" in info.error
        assert torch.get_default_dtype() == torch.float32
        assert set(penalties.names()) == BUILTIN_PENALTIES
    finally:
        monkeypatch.undo()
        forget("tuner_test_float64")
        torch.set_default_dtype(torch.float32)
        penalties.reload()


def test_advice_names_the_installed_full_batch_optimizers_that_take_the_penalty() -> None:
    """Messages that send the user to a full-batch solver list them from the registry: a
    hard-coded list left newton_cg out, and one without the penalty named it for L1, which it
    refuses."""
    from tuner._registry import full_batch_optimizers

    exact = [n for n in optimizers.names() if optimizers.get(n).full_batch]
    assert {"fista", "lbfgs", "newton", "newton_cg"} <= set(exact) and "sgd" not in exact
    assert full_batch_optimizers() == f" ({', '.join(exact)})"
    assert "newton_cg" not in full_batch_optimizers([penalties.get("l1")])
    assert "newton_cg" in full_batch_optimizers([penalties.get("l2")])
    assert "newton_cg" in full_batch_optimizers([penalties.get("l1"), penalties.get("l2")])  # takes one of them
