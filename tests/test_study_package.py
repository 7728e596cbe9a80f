"""``tuner.study`` re-exports what other packages use, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import tuner.study


def test_every_exported_name_resolves_to_its_module_object() -> None:
    for name in tuner.study.__all__:
        value = getattr(tuner.study, name)
        module = getattr(value, "__module__", None)
        if module is not None and isinstance(value, type | type(lambda: 0)):
            assert module.startswith("tuner."), (name, module)
    assert sorted(set(tuner.study.__all__)) == sorted(tuner.study.__all__), "a name is exported twice"


def test_importing_the_package_loads_neither_torch_nor_optuna() -> None:
    code = ("import sys, tuner.study; print(sorted(m for m in ('torch', 'optuna', 'mlflow', 'sqlalchemy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    code = "import sys, tuner.study; tuner.study.run_study; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"  # the lazy names do load the trainer, on first use
