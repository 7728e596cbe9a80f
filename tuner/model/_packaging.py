"""A :class:`LogisticModel` as an MLflow ``python_function`` model: writing it and reading it back.

Loader-module flavour: the LogisticModel folder is the model's data; the runtime is the
package ``logreg_tuner_model``, a copy of the few modules a loaded model needs (see
:mod:`tuner.model._pyfunc`), so nothing is pickled and neither logreg-tuner nor torch is
needed where the model is served. Signature and input example are raw rows; requirements are
given explicitly (MLflow's requirement inference, seconds per model, is never triggered).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tuner._logs import quiet_logger
from tuner.errors import DataError
from tuner.model._model import MODEL_JSON, LogisticModel

__all__ = ["BUNDLE_PACKAGE", "save_pyfunc_model", "input_example_of", "load_logistic_model", "pip_requirements"]

BUNDLE_PACKAGE = "logreg_tuner_model"
# module -> the file it is bundled as; their imports of each other become relative in the copy
_BUNDLE_MODULES = {"tuner.errors": "errors.py", "tuner._finite": "_finite.py", "tuner.data._features": "_features.py",
                   "tuner.model._model": "_model.py", "tuner.model._pyfunc": "_pyfunc.py"}
_REQUIREMENTS = ("mlflow", "numpy", "scipy", "pandas", "scikit-learn", "safetensors")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def pip_requirements() -> list[str]:
    """What serving the model needs, pinned to the versions installed here."""
    return [f"{d}=={_version(d)}" for d in _REQUIREMENTS]


def input_example_of(model: LogisticModel, data: Any = None, n: int = 5) -> Any:
    """Raw rows: real ones from ``data`` (a prepared data set) when given, else synthetic."""
    import pandas as pd

    pipe = model.pipeline
    if data is not None:
        raw = data.raw
        rows = raw.take(np.arange(min(n, len(raw))))
        if pipe.kind == "table":
            return rows[pipe.input_columns].reset_index(drop=True)
        dense = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows, dtype=np.float64)
        return pd.DataFrame(dense, columns=list(pipe.input_feature_names))
    if pipe.kind == "table":
        frame: dict[str, Any] = {}
        if pipe.text_column:
            terms = [t for t in pipe.vocabulary if " " not in t][:12] or ["text"]
            frame[pipe.text_column] = [" ".join(terms[i::2][:6]) for i in range(2)]
        center = pipe.center if pipe.center is not None else np.zeros(len(pipe.numeric_columns))
        for j, c in enumerate(pipe.numeric_columns):
            frame[c] = [float(center[j])] * 2
        for c, cats in zip(pipe.categorical_columns, pipe.categories):
            frame[c] = [cats[0], cats[-1]]
        return pd.DataFrame(frame)
    center = pipe.center if pipe.center is not None else np.zeros(pipe.n_input_features)
    return pd.DataFrame([center, center], columns=list(pipe.input_feature_names))


def _bundle(dst: Path) -> Path:
    """The package ``logreg_tuner_model``: the modules a loaded model needs, copied from their
    places in ``tuner`` with their imports of each other made relative."""
    root = Path(__file__).resolve().parent.parent
    pkg = dst / BUNDLE_PACKAGE
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""logreg-tuner model runtime (copied from the tuner package)."""\n')
    for module, name in _BUNDLE_MODULES.items():
        text = (root.parent / (module.replace(".", "/") + ".py")).read_text()
        for other, other_name in _BUNDLE_MODULES.items():
            text = text.replace(f"from {other} import", f"from .{other_name[:-3]} import")
        if "from tuner" in text or "import tuner" in text:
            raise RuntimeError(f"{module} imports tuner beyond the bundled modules; the model bundle would not load")
        (pkg / name).write_text(text)
    return pkg


def save_pyfunc_model(model: LogisticModel, path: str | Path, *, input_example: Any = None,
                      mlflow_model: Any = None, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as an MLflow pyfunc model folder at ``path`` (see the module docstring).

    ``input_example``: raw rows (default: :func:`input_example_of` without data);
    ``mlflow_model``: an ``mlflow.models.Model`` to fill (a logged model's); ``metadata``: kept
    in the MLmodel file.
    """
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from tuner.model._pyfunc import PROBA_PARAM, LogisticPyfunc

    path = Path(path)
    example = input_example if input_example is not None else input_example_of(model)
    # MLflow's hint that integer columns cannot hold missing values (at inference, floats in them
    # fail its schema check), given when it infers the signature and again when it saves the
    # example, is moot: the numeric columns are retyped below to take any number.
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
        data_dir = model.save(Path(tmp) / "logistic_model")
        pkg = _bundle(Path(tmp) / "code")
        sig = infer_signature(example, LogisticPyfunc(model).predict(example))
        sig.inputs = _numbers_of_any_width(sig.inputs, model.pipeline.categorical_columns)
        sig.params = ParamSchema([ParamSpec(PROBA_PARAM, "boolean", False)])
        with quiet_logger("mlflow.pyfunc"):  # its INFO line on validating the example
            mlflow.pyfunc.save_model(
                str(path), loader_module=f"{BUNDLE_PACKAGE}._pyfunc", data_path=str(data_dir), code_paths=[str(pkg)],
                signature=sig, input_example=example, pip_requirements=pip_requirements(),
                mlflow_model=mlflow_model, metadata=dict(metadata or {}))
    return path


def _numbers_of_any_width(inputs: Any, categorical: Sequence[str] = ()) -> Any:
    """The inferred input schema with its numeric and ``categorical`` columns typed ``Any``.

    MLflow refuses what it cannot convert without loss: int64 rows for a ``double`` column
    (integer pixels, counts), float64 rows for a ``float`` column (a model trained on float32
    LIBSVM values), a float for a ``long`` column, and the training file's own numeric codes
    (``3``) for a categorical column it typed ``string``. The model's own pipeline checks the
    columns' names, that their values are numbers, and that they are finite, and reads a
    category written ``3``, ``3.0`` or ``"3"`` as one."""
    from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

    numeric = {DataType.integer, DataType.long, DataType.float, DataType.double}
    if inputs is None or not all(isinstance(c, ColSpec) for c in inputs.inputs):
        return inputs
    loose = set(categorical)
    return Schema([ColSpec(AnyType(), c.name, required=c.required) if c.type in numeric or c.name in loose else c
                   for c in inputs.inputs])


def load_logistic_model(path: str | Path) -> LogisticModel:
    """A :class:`LogisticModel` from its own folder or from an MLflow model folder holding one.

    The MLmodel file's ``data`` path must lead (links resolved) to a folder inside the MLflow
    model folder: a downloaded model never reads files outside itself.
    """
    folder = Path(path)
    if (folder / MODEL_JSON).is_file():
        return LogisticModel.load(folder)
    mlmodel = folder / "MLmodel"
    if mlmodel.is_file():
        return LogisticModel.load(_mlmodel_data(folder, mlmodel))
    raise DataError(f"{folder} is neither a saved model folder (model.json) nor an MLflow model (MLmodel).")


def _mlmodel_data(folder: Path, mlmodel: Path) -> Path:
    """The LogisticModel folder that an MLflow model's MLmodel file names (inside ``folder``)."""
    import yaml

    try:
        conf = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        why = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
        raise DataError(f"{mlmodel} is not a readable MLmodel file ({why}); download the model again.") from None
    flavors = conf.get("flavors") if isinstance(conf, dict) else None
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    pyfunc = pyfunc if isinstance(pyfunc, dict) else {}
    data = pyfunc.get("data")
    if not isinstance(data, str) or not data or not str(pyfunc.get("loader_module", "")).endswith("._pyfunc"):
        raise DataError(f"{folder} is an MLflow model, but not one logged by logreg-tuner.")
    target = folder / data
    try:
        inside = target.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (OSError, RuntimeError):
        raise DataError(f"{mlmodel} names the model data {data!r}, which does not exist in {folder}; download "
                        "the model again.") from None
    if not inside:
        raise DataError(f"{mlmodel} names the model data {data!r}, which leads to {target.resolve()}, outside "
                        f"the model folder {folder}; a model folder must hold its own files.")
    return target
