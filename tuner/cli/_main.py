"""The ``tuner`` command line. Heavy imports happen inside commands so ``tuner --help`` is instant."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from tuner.errors import TunerError

__all__ = ["main", "cli"]


@dataclass
class AppContext:
    """Options shared by every command."""

    quiet: bool = False


pass_app = click.make_pass_decorator(AppContext, ensure=True)


class TunerGroup(click.Group):
    """A group that turns domain errors into one-line messages with exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TunerError as exc:
            from tuner.study._storage import redact

            raise click.ClickException(redact(exc)) from None


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=_json_default))


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def parse_assignments(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``("penalty.strength=0.1", ...)`` -> ``[("penalty.strength", "0.1"), ...]``."""
    out = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE (for example penalty.strength=0.001)", param_hint="--param")
        out.append((key.strip(), value.strip()))
    return out


def data_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say where the data is and how to read and split it."""
    options = [
        click.argument("data", required=False, type=click.Path(dir_okay=True)),
        click.option("--dataset", help="A bundled scikit-learn dataset: breast_cancer, digits, wine, iris."),
        click.option("--target", help="Label column of a CSV/TSV/Parquet file."),
        click.option("--text-column", help="Column holding text, turned into TF-IDF 1-2 grams."),
        click.option("--format", "fmt", default="auto", show_default=True,
                     type=click.Choice(["auto", "csv", "tsv", "parquet", "npz", "svmlight", "classfiles", "labeltext"])),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the data file(s)."),
        click.option("--n-features", type=click.IntRange(min=1),
                     help="Number of features of a LIBSVM file (needed when it is far wider than its values)."),
        click.option("--zero-based/--one-based", "zero_based", default=None,
                     help="Whether LIBSVM feature indices start at 0 or 1 [default: zero-based only when the training "
                          "file holds an index 0]; every later file is read the same way."),
        click.option("--val-size", default=0.2, show_default=True, type=float, help="Share of rows for validation."),
        click.option("--test-size", default=0.2, show_default=True, type=float, help="Share of rows for the test."),
        click.option("--test-file", type=click.Path(exists=True, dir_okay=True), help="A separate labelled test file."),
        click.option("--seed", default=0, show_default=True, type=int, help="Seed for splits, shuffling and search."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def training_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--epochs", default=100, show_default=True, type=int, help="Maximum number of epochs."),
        click.option("--batch-size", type=click.IntRange(min=1),
                     help="Mini-batch size (SGD-like optimizers) [default: scaled with the data: at most 256 rows on "
                          "a CPU, 4096 on a GPU, and at least 32 steps an epoch]."),
        click.option("--patience", default=5, show_default=True, type=int, help="Epochs without improvement before stopping."),
        click.option("--tol", default=1e-4, show_default=True, type=float, help="Relative improvement that counts."),
        click.option("--monitor", default="objective", show_default=True, type=click.Choice(["objective", "val"]),
                     help="Stop when the training objective converges, or on the validation loss (best epoch kept)."),
        click.option("--class-weight", type=click.Choice(["balanced"]), help="Reweight classes inversely to their frequency."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "float64"])),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _read_data(data: str | None, dataset: str | None, target: str | None, text_column: str | None, fmt: str,
               encoding: str, n_features: int | None, test_file: str | None, zero_based: bool | None) -> Any:
    """The training data and the test file (or None), the test file read like the training data."""
    from tuner.data._loaders import load_data
    from tuner.errors import ConfigError

    ctx = click.get_current_context(silent=True)
    if test_file is not None and ctx is not None and ctx.get_parameter_source("test_size") not in (
            None, click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP):
        raise ConfigError("--test-size splits a test part off the data; with --test-file the test rows come from "
                          "that file instead: give one of the two.")
    raw = load_data(data, dataset=dataset, target=target, text_column=text_column, encoding=encoding, fmt=fmt,
                    n_features=n_features, zero_based=zero_based)
    test_raw = None
    if test_file is not None:
        test_raw = load_data(test_file, target=target, text_column=text_column, encoding=encoding, fmt=fmt,
                             n_features=n_features or (raw.X.shape[1] if raw.fmt == "svmlight" else None),
                             zero_based=raw.zero_based)
    return raw, test_raw


def load_dataset(data: str | None, dataset: str | None, target: str | None, text_column: str | None, fmt: str,
                 encoding: str, n_features: int | None, val_size: float, test_size: float, test_file: str | None,
                 seed: int, zero_based: bool | None = None) -> Any:
    """Read and split the data named by the data options."""
    from tuner.data._loaders import prepare

    raw, test_raw = _read_data(data, dataset, target, text_column, fmt, encoding, n_features, test_file, zero_based)
    return prepare(raw, val_size=val_size, test_size=test_size, seed=seed, test_raw=test_raw)


def data_spec(data: str | None, dataset: str | None, target: str | None, text_column: str | None, fmt: str,
              encoding: str, n_features: int | None, val_size: float, test_size: float, test_file: str | None,
              seed: int, zero_based: bool | None = None, read: list[Any] | None = None) -> Any:
    """The study spec's DataSpec: paths any worker can resolve, the index base, both fingerprints.

    ``read``: a list that receives the training and test data read here (so the study need not
    read them again)."""
    from tuner.data._loaders import portable_path
    from tuner.study._spec import DataSpec

    raw, test_raw = _read_data(data, dataset, target, text_column, fmt, encoding, n_features, test_file, zero_based)
    if read is not None:
        read[:] = [raw, test_raw]
    path, rel = portable_path(data) if data else (None, None)
    test_path, test_rel = portable_path(test_file) if test_file else (None, None)
    return DataSpec(path=path, relative_path=rel, dataset=dataset, target=target, text_column=text_column, fmt=fmt,
                    encoding=encoding, n_features=n_features, zero_based=raw.zero_based, val_size=val_size,
                    test_size=test_size, test_file=test_path, test_relative_path=test_rel, seed=seed,
                    fingerprint=raw.fingerprint, test_fingerprint=test_raw.fingerprint if test_raw else "")


@click.group(cls=TunerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quiet", "-q", is_flag=True, help="Print less.")
@click.version_option(package_name="logreg-tuner")
@pass_app
def cli(app: AppContext, quiet: bool) -> None:
    """Tune logistic regression: plugins for penalties and optimizers, Optuna studies, MLflow tracking."""
    app.quiet = quiet


# ---------------------------------------------------------------------------------------------
@cli.group(cls=TunerGroup)
def plugins() -> None:
    """List and check the installed penalty and optimizer plugins."""


def _plugin_rows() -> list[dict[str, Any]]:
    from tuner._registry import optimizers, penalties

    rows = []
    for registry in (penalties, optimizers):
        for info in registry.infos():
            row: dict[str, Any] = {
                "group": registry.kind, "name": info.name, "distribution": info.distribution,
                "version": info.version, "status": "ok" if info.ok else "broken",
            }
            if info.ok:
                plugin = info.plugin
                row["description"] = plugin.description
                row["search_space"] = {k: v.to_dict() for k, v in plugin.search_space.items()}
                if registry.kind == "penalty":
                    row["has_prox"] = plugin.has_prox
                    row["incompatible"] = sorted(plugin.incompatible_optimizers)
                else:
                    row["full_batch"] = plugin.full_batch
                    row["prox_mode"] = plugin.prox_mode
                    row["incompatible"] = sorted(plugin.incompatible_penalties)
            else:
                row["error"] = info.error
            rows.append(row)
    return rows


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_list(as_json: bool) -> None:
    """Both plugin groups: each plugin's origin, description, search space and compatibility."""
    rows = _plugin_rows()
    if as_json:
        echo_json(rows)
        return
    for kind in ("penalty", "optimizer"):
        click.secho(f"{kind.capitalize()} plugins (logreg_tuner.{'penalties' if kind == 'penalty' else 'optimizers'}):", bold=True)
        for row in (r for r in rows if r["group"] == kind):
            origin = f"{row['distribution']} {row['version']}"
            if row["status"] != "ok":
                click.secho(f"  {row['name']:<12} BROKEN ({origin}): {row['error']}", fg="red")
                continue
            click.echo(f"  {row['name']:<12} {row['description']}  [{origin}]")

            for hp_name, spec in row["search_space"].items():
                click.echo(f"      {kind}.{hp_name}: {_describe(spec)}")
            extra = []
            if kind == "penalty" and row["has_prox"]:
                extra.append("proximal (exact zeros)")
            if kind == "optimizer":
                extra.append("full-batch" if row["full_batch"] else "mini-batch")
                extra.append({"after_step": "prox after each step", "internal": "proximal solver",
                              "unsupported": "smooth penalties only"}[row["prox_mode"]])
            if row["incompatible"]:
                extra.append("not with: " + ", ".join(row["incompatible"]))
            if extra:
                click.echo(f"      ({'; '.join(extra)})")


def _describe(spec: dict[str, Any]) -> str:
    if spec["type"] == "categorical":
        return f"one of {spec['choices']}, default {spec['default']!r}"
    return f"{spec['type']} [{spec['low']:g}, {spec['high']:g}]{' log' if spec['log'] else ''}, default {spec['default']:g}"


# ---------------------------------------------------------------------------------------------
@cli.command()
@data_options
@training_options
@click.option("--penalty", required=True, help="Penalty plugin name (see `tuner plugins list`).")
@click.option("--optimizer", required=True, help="Optimizer plugin name.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A hyperparameter, e.g. penalty.strength=1e-3 or optimizer.lr=0.1 (repeatable).")
@click.option("--save-model", type=click.Path(file_okay=False), help="Folder to save the fitted model in.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def train(data: str | None, dataset: str | None, target: str | None, text_column: str | None, fmt: str,
          encoding: str, n_features: int | None, zero_based: bool | None, val_size: float, test_size: float,
          test_file: str | None, seed: int,
          epochs: int, batch_size: int, patience: int, tol: float, monitor: str, class_weight: str | None, device: str,
          dtype: str,
          penalty: str, optimizer: str, params: tuple[str, ...], save_model: str | None, as_json: bool) -> None:
    """Train one configuration and report validation and test metrics."""
    from tuner._space import parse_value
    from tuner.study._configure import MAX_OPTIMALITY_GAP, resolve_pair, resolve_params, split_overrides, train_one
    from tuner.train._trainer import TrainConfig

    pen_over, opt_over = split_overrides([(k, parse_value(v)) for k, v in parse_assignments(params)], penalty,
                                         optimizer)
    pen, opt = resolve_pair(penalty, optimizer)  # fail on names and values before reading data
    resolve_params(pen, pen_over, "penalty")
    resolve_params(opt, opt_over, "optimizer")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, patience=patience, tol=tol, monitor=monitor,
                         class_weight=class_weight, device=device, dtype=dtype, seed=seed)
    config.check()
    ds = load_dataset(data, dataset, target, text_column, fmt, encoding, n_features, val_size, test_size, test_file, seed,
                      zero_based)
    outcome = train_one(ds, penalty, optimizer, pen_over, opt_over, config)
    summary = outcome.summary()
    summary.update(data=ds.raw.source, classes=ds.classes, n_train=len(ds.y_train), n_val=len(ds.y_val),
                   n_test=len(ds.y_test), n_features=ds.pipeline.n_features)
    if save_model:
        summary["model_path"] = str(outcome.model.save(save_model))
    if as_json:
        echo_json(summary)
        return
    click.echo(f"Trained {penalty} + {optimizer} on {ds.raw.source}: {len(ds.y_train)} training rows, "
               f"{ds.pipeline.n_features} features, {ds.n_classes} classes.")
    click.echo(f"  epochs run: {summary['epochs_run']} ({summary['stop_reason']}), {summary['fit_seconds']:.2f} s on {summary['device']}")
    click.echo(f"  training objective: {summary['train_objective']:.6f}")
    if outcome.optimality_gap is not None:
        click.echo(f"  above the optimum ({outcome.gap_solver}): {outcome.optimality_gap:.3%}"
                   + ("" if outcome.optimality_gap <= MAX_OPTIMALITY_GAP else
                      f"; {optimizer} stopped short: give it more steps (--epochs, a smaller --batch-size) or use {outcome.gap_solver}"))
    click.echo(f"  non-zero weights: {summary['n_nonzero_weights']} of {summary['n_weights']}")
    for split in ("validation", "test"):
        if summary[split]:
            click.echo(f"  {split:<10}  " + "  ".join(f"{k} {v:.4f}" for k, v in summary[split].items()))
    if save_model:
        click.echo(f"  model saved to {summary['model_path']}")


# ---------------------------------------------------------------------------------------------
class _BatchTrials(click.ParamType):
    """``--batch-trials``: a positive integer or ``auto``."""

    name = "K|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} is neither a positive integer nor 'auto'.", param, ctx)
        return number


batch_trials_option = click.option(
    "--batch-trials", type=_BatchTrials(), default="auto", show_default=True,
    help="Trials asked from the sampler at once and trained side by side (one pass over the data serves "
         "every trial of an optimizer); 1 runs them one at a time.")


def _csv_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


class _Progress:
    """One status line on stderr: trials done, best value, elapsed time (terminals only).

    A failed trial gets one line with its reason (unless ``quiet``), terminal or not.
    """

    def __init__(self, enabled: bool, metric: str, quiet: bool = False) -> None:
        self.enabled, self.metric, self.quiet = enabled, metric, quiet

    def __call__(self, p: dict[str, Any]) -> None:
        if p.get("reason") and not self.quiet:
            click.secho(("\n" if self.enabled else "") + f"warning: trial #{p['number']} failed: {p['reason']}",
                        fg="yellow", err=True)
        if not self.enabled:
            return
        total = p["total"] or "?"
        width = 24
        frac = p["done"] / p["total"] if p["total"] else 0
        bar = "#" * int(width * min(frac, 1)) + "-" * (width - int(width * min(frac, 1)))
        best = "-" if p["best"] is None else f"{p['best']:.5g}"
        mins, secs = divmod(int(p["elapsed"]), 60)
        click.echo(f"\r[{bar}] {p['done']}/{total} trials  best {self.metric} {best}  {mins:02d}:{secs:02d}", nl=False, err=True)

    def close(self) -> None:
        if self.enabled:
            click.echo("", err=True)


# What `tune --study NAME` may change on a stored study; any other option given explicitly must
# match the stored spec (a default never contradicts it: the stored value is used).
_RESUME_FREE = {"study_name", "storage", "tracking_uri", "no_tracking", "trials", "timeout", "as_json", "data", "dataset",
                "batch_trials"}
_RESUME_KEYS = {"penalty_list": "penalties", "optimizer_list": "optimizers", "params": "params", "metric": "metric",
                "sampler": "sampler", "pruner": "pruner", "cv": "cv"}
_TRAIN_KEYS = ("epochs", "batch_size", "patience", "tol", "monitor", "class_weight", "device", "dtype")


def _explicit_changes(ctx: click.Context, spec_values: dict[str, Any]) -> dict[str, Any]:
    """The spec keys set by options the user gave (command line or environment), not by defaults.

    ``spec_values`` maps a parameter name to the value it puts in the spec. An explicit option
    that a study spec cannot hold comes back as ``--NAME``, which a resume refuses (it would
    be silently ignored).
    """
    from dataclasses import fields

    from tuner.study._spec import DataSpec

    data_fields = {f.name for f in fields(DataSpec)}
    out: dict[str, Any] = {}
    for name, value in spec_values.items():
        source = ctx.get_parameter_source(name)
        if name in _RESUME_FREE or source in (None, click.core.ParameterSource.DEFAULT,
                                              click.core.ParameterSource.DEFAULT_MAP):
            continue
        if name == "seed":
            out["seed"] = out["data.seed"] = value
        elif name in _RESUME_KEYS:
            out[_RESUME_KEYS[name]] = value
        elif name in _TRAIN_KEYS:
            out[f"train.{name}"] = value
        elif name in data_fields:
            out[f"data.{name}"] = value
        else:  # refused by StudySpec.with_changes if the study exists (a resume)
            out[f"--{name.replace('_', '-')}"] = value
    return out


@cli.command()
@data_options
@training_options
@click.option("--study", "study_name", help="Study name (default: from the data and the time). An existing one is resumed.")
@click.option("--storage", envvar="TUNER_STORAGE", help="SQLAlchemy URL of the study database [env TUNER_STORAGE; default sqlite:///tuner-studies.db].")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI [env MLFLOW_TRACKING_URI; default sqlite:///mlflow.db].")
@click.option("--no-tracking", is_flag=True, help="Do not log to MLflow.")
@click.option("--penalty", "penalty_list", help="Comma-separated penalties to search (default: all).")
@click.option("--optimizer", "optimizer_list", help="Comma-separated optimizers to search (default: all).")
@click.option("--param", "params", multiple=True, metavar="NAME=LOW..HIGH[:log] | NAME=V",
              help="Narrow or fix a hyperparameter, e.g. penalty.strength=1e-6..1e-2:log or optimizer.lr=0.1.")
@click.option("--trials", type=int, help="Trial budget of the study (complete + pruned trials) [default 50].")
@click.option("--timeout", type=float, help="Stop starting trials after this many seconds.")
@click.option("--metric", type=click.Choice(["log_loss", "accuracy", "roc_auc", "f1"]), help="Validation metric [default log_loss].")
@click.option("--sampler", type=click.Choice(["tpe", "random", "qmc", "grid", "cmaes"]), default="tpe", show_default=True)
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default="median", show_default=True)
@click.option("--cv", type=click.IntRange(min=2), help="Score each trial by stratified K-fold cross-validation on the "
              "training rows (the mean over folds; each fold's score is reported to the pruner); the folds train "
              "side by side with the model on every training row. Default: the validation split.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@batch_trials_option
@pass_app
def tune(app: AppContext, data: str | None, dataset: str | None, target: str | None, text_column: str | None, fmt: str,
         encoding: str, n_features: int | None, zero_based: bool | None, val_size: float, test_size: float,
         test_file: str | None, seed: int,
         epochs: int, batch_size: int, patience: int, tol: float, monitor: str, class_weight: str | None, device: str,
          dtype: str,
         study_name: str | None, storage: str | None, tracking_uri: str | None, no_tracking: bool,
         penalty_list: str | None, optimizer_list: str | None, params: tuple[str, ...], trials: int | None,
         timeout: float | None, metric: str | None, sampler: str, pruner: str, cv: int | None, as_json: bool,
         batch_trials: int | str) -> None:
    """Run (or resume) an Optuna study over penalties, optimizers and their hyperparameters.

    An existing --study is resumed: only the budget (--trials, --timeout) and the output
    options may change; any other option given must match the stored study.
    """
    import time
    from pathlib import Path

    from tuner._registry import optimizers, penalties
    from tuner.study._search import build_space, run_study
    from tuner.study._spec import StudySpec
    from tuner.study._storage import default_storage_url

    storage_url = storage or default_storage_url()
    if storage is None and not app.quiet and not as_json:
        click.echo(f"Study storage: {storage_url}", err=True)
    spec, new_only = None, False
    read: list[Any] = []  # the data as data_spec read it, handed to the study
    if data is not None or dataset is not None:
        spec = StudySpec(
            data=data_spec(data, dataset, target, text_column, fmt, encoding, n_features, val_size, test_size,
                           test_file, seed, zero_based, read),
            penalties=_csv_list(penalty_list) or penalties.names(),
            optimizers=_csv_list(optimizer_list) or optimizers.names(),
            params=dict(parse_assignments(params)), metric=metric or "log_loss", sampler=sampler, pruner=pruner,
            seed=seed, n_trials=50 if trials is None else trials, timeout=timeout,
            train={"epochs": epochs, "batch_size": batch_size, "patience": patience, "tol": tol, "monitor": monitor,
                   "class_weight": class_weight, "device": device, "dtype": dtype},
            cv=cv or 0,
        )
        build_space(spec)  # unknown plugins, bad --param values: fail before any trial
        if study_name is None:
            stem = Path(data).stem if data else dataset
            study_name = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
            new_only = True  # a made-up name: never join a study another process started this second
    elif study_name is None:
        raise click.UsageError("Give DATA or --dataset to start a study, or --study NAME to resume one.")
    ctx = click.get_current_context()
    values = {k: v for k, v in ctx.params.items()}
    values.update(penalty_list=_csv_list(penalty_list), optimizer_list=_csv_list(optimizer_list),
                  params=dict(parse_assignments(params)),
                  test_file=str(Path(test_file).resolve()) if test_file else None)
    changes = _explicit_changes(ctx, values)
    observers = _observers(storage_url, tracking_uri, no_tracking)
    progress = _Progress(sys.stderr.isatty() and not app.quiet and not as_json, metric or "value", app.quiet)
    try:
        result = run_study(spec, study_name, storage_url, observers=observers, progress=progress,
                           resume_only=spec is None, n_trials=trials, timeout=timeout, changes=changes,
                           new_only=new_only, batch_trials=batch_trials, preloaded=tuple(read) if read else None)
        read.clear()
    except KeyboardInterrupt:  # Ctrl-C while the data was read or checked: nothing was stored
        _interrupted_before_start()
    finally:
        progress.close()
    _report_study(result, as_json)


@cli.command()
@click.option("--study", "study_name", required=True, envvar="TUNER_STUDY", help="The study to work on [env TUNER_STUDY].")
@click.option("--storage", envvar="TUNER_STORAGE", required=True, help="SQLAlchemy URL of the shared study database [env TUNER_STORAGE].")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI [env MLFLOW_TRACKING_URI].")
@click.option("--no-tracking", is_flag=True, help="Do not log to MLflow.")
@click.option("--wait", default=300.0, show_default=True, help="Seconds to wait for the study to be created.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@batch_trials_option
@pass_app
def worker(app: AppContext, study_name: str, storage: str, tracking_uri: str | None, no_tracking: bool, wait: float,
           as_json: bool, batch_trials: int | str) -> None:
    """Join an existing study and run its trials until the study's budget is spent.

    Start as many workers as you like on one database (PostgreSQL); the budget counts every
    worker's trials. The study is created by `tuner tune ... --study NAME --trials N`.
    """
    import time

    import optuna

    from tuner.errors import ConfigError
    from tuner.study._search import run_study
    from tuner.study._storage import open_storage

    deadline = time.time() + wait
    storage_obj = open_storage(storage, heartbeat=False)
    while True:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage_obj, include_best_trial=False)]
        if study_name in names:
            break
        if time.time() > deadline:
            raise ConfigError(f"No study named {study_name!r} appeared in {storage} within {wait:g} s.")
        time.sleep(1.0)
    observers = _observers(storage, tracking_uri, no_tracking)
    progress = _Progress(False, "value", app.quiet)
    try:
        result = run_study(None, study_name, storage, observers=observers, progress=progress, resume_only=True,
                           batch_trials=batch_trials)
    except KeyboardInterrupt:
        _interrupted_before_start()
    _report_study(result, as_json)


def _interrupted_before_start() -> None:
    """Ctrl-C before any trial (reading or checking the data): one line, exit code 130."""
    click.secho("Interrupted by SIGINT before any trial started; nothing was run.", fg="yellow", err=True)
    raise SystemExit(130)


def _report_study(result: Any, as_json: bool) -> None:
    """Print a finished study's summary; exit 130/143 when a signal stopped it."""
    summary = result.summary()
    if as_json:
        echo_json(summary)
    else:
        _print_study_summary(summary)
    if result.interrupted:
        raise SystemExit(130 if result.interrupted == "SIGINT" else 143)
    if result.no_result:  # exit code 0 would say there is an answer
        raise TunerError(result.no_result)


def _observers(storage_url: str, tracking_uri: str | None, no_tracking: bool) -> list[Any]:
    """The MLflow observer (unless disabled), checked to use another database than the study."""
    if no_tracking:
        return []
    from tuner.errors import ConfigError
    from tuner.study._storage import same_database
    from tuner.tracking._mlflow import MlflowObserver, default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    if same_database(uri, storage_url):
        raise ConfigError("The study database and the MLflow store must be different databases; "
                          "change --storage or --tracking-uri.")
    return [MlflowObserver(uri)]


def _print_study_summary(s: dict[str, Any]) -> None:
    for w in s.get("warnings", []):
        click.secho(f"warning: {w}", fg="yellow", err=True)
    t = s["trials"]
    click.echo(f"Study {s['study']} ({s['storage']})")
    click.echo(f"  trials: {t['complete']} complete, {t['pruned']} pruned, {t['fail']} failed")
    if s.get("interrupted") and "test" in s:  # the signal came while the best model was registered
        click.secho(f"  interrupted by {s['interrupted']} once the study had ended: its results are complete",
                    fg="yellow")
    elif s.get("interrupted"):
        click.secho(f"  interrupted by {s['interrupted']}: completed trials are kept; resume with "
                    f"`tuner tune --study {s['study']}`", fg="yellow")
    if s["best_trial"] is None:
        click.echo("  no completed trial yet")
        return
    click.echo(f"  best trial: #{s['best_trial']}  validation {s['metric']} = {s['best_value']:.6g} ({s['direction']})")
    for k, v in s["best_params"].items():
        click.echo(f"    {k} = {v:.6g}" if isinstance(v, float) else f"    {k} = {v}")
    if "test" in s:
        click.echo("  test: " + "  ".join(f"{k} {v:.4f}" for k, v in s["test"].items()))
        click.echo(f"  non-zero weights: {s['n_nonzero_weights']} of {s['n_weights']}")


def _register_extra_commands() -> None:
    """Commands kept in their own modules (each imports only click at module level)."""
    from tuner.cli._plugins_check import plugins_check
    from tuner.cli._predict import predict, sync_mlflow
    from tuner.cli._study import study

    plugins.add_command(plugins_check, "check")
    study.add_command(sync_mlflow, "sync-mlflow")
    cli.add_command(study, "study")
    cli.add_command(predict, "predict")


_register_extra_commands()


def main() -> None:
    """Entry point of the ``tuner`` script."""
    cli(prog_name="tuner")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
