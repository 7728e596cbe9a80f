"""The ``tuner`` command line: parse the options, call :mod:`tuner.api`, print.

Heavy imports happen inside commands so ``tuner --help`` is instant; the options shared by
several commands are declared once in :mod:`tuner.cli._options`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import click

from tuner.cli._mlflow_info import mlflow_block, print_mlflow_block
from tuner.cli._options import (
    AppContext,
    TunerGroup,
    batch_trials_option,
    data_kwargs,
    data_options,
    echo_json,
    flags_in,
    given_up_note,
    parse_assignments,
    pass_app,
    quiet_everywhere,
    storage_option,
    tracking_uri_option,
    training_kwargs,
    training_options,
)
from tuner.cli._progress import Progress
from tuner.errors import TunerError

__all__ = ["main", "cli"]


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


def _plugin_rows() -> list[tuple[dict[str, Any], Any]]:
    """Each installed plugin's row of ``plugins list --json``, with the plugin (None when broken)."""
    from tuner._registry import optimizers, penalties
    from tuner.testing import failing_plugins, side_by_side_failures

    rows = []
    for registry in (penalties, optimizers):
        usable = [info.name for info in registry.infos() if info.ok]
        failing = {**{n: f"{why} (its trials train one at a time)"
                      for n, why in side_by_side_failures(registry.kind, usable).items()},
                   **failing_plugins(registry.kind, usable)}
        for info in registry.infos():
            row: dict[str, Any] = {
                "group": registry.kind, "name": info.name, "distribution": info.distribution,
                "version": info.version, "status": "ok" if info.ok else "broken",
            }
            if info.ok:
                plugin: Any = info.plugin
                row["description"] = plugin.description
                row["search_space"] = {k: v.to_dict() for k, v in plugin.search_space.items()}
                if registry.kind == "penalty":
                    row["has_prox"] = plugin.has_prox
                    row["incompatible"] = sorted(plugin.incompatible_optimizers)
                else:
                    row["full_batch"] = plugin.full_batch
                    row["prox_mode"] = plugin.prox_mode
                    row["l1_only"] = bool(getattr(plugin, "l1_only", False))
                    row["quasi_newton"] = bool(getattr(plugin, "quasi_newton", False))
                    row["hessian_products"] = bool(getattr(plugin, "hessian_products", False))
                    row["incompatible"] = sorted(plugin.incompatible_penalties)
                if info.name in failing:
                    row["status"] = "failing"
                    row["error"] = failing[info.name]
            else:
                row["error"] = info.error
            rows.append((row, info.plugin if info.ok else None))
    return rows


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_list(as_json: bool) -> None:
    """Both plugin groups: each plugin's origin, description, search space and compatibility.

    A plugin that fails the quick contract checks is shown as FAILING (a default study leaves
    it out); `tuner plugins check NAME` runs every check."""
    from tuner._plugin_api import PROX_MODES

    listed = _plugin_rows()
    rows = [row for row, _ in listed]
    if as_json:
        echo_json(rows)
        return
    width = max([12] + [len(r["name"]) for r in rows])  # one column of names, however long a third party's
    for kind in ("penalty", "optimizer"):
        click.secho(f"{kind.capitalize()} plugins (logreg_tuner.{'penalties' if kind == 'penalty' else 'optimizers'}):", bold=True)
        for row, plugin in ((r, p) for r, p in listed if r["group"] == kind):
            origin = f"{row['distribution']} {row['version']}"
            if row["status"] == "broken":
                usable = any(r["name"] == row["name"] and r["status"] != "broken" for r in rows if r["group"] == kind)
                label = "REFUSED" if usable else "BROKEN"  # a newcomer under a usable plugin's name
                click.secho(f"  {row['name']:<{width}} {label} ({origin}): {row['error']}", fg="red")
                continue
            click.echo(f"  {row['name']:<{width}} {row['description']}  [{origin}]")
            if row["status"] == "failing":
                click.secho(f"      FAILING its contract checks: {row['error']}; run `tuner plugins check "
                            f"{row['name']}`", fg="red")
            for hp_name, hp in plugin.search_space.items():
                click.echo(f"      {kind}.{hp_name}: {hp.describe()}")
            extra = []
            if kind == "penalty" and row["has_prox"]:
                extra.append("proximal (exact zeros)")
            if kind == "optimizer":
                extra.append("full-batch" if row["full_batch"] else "mini-batch")
                if row.get("quasi_newton"):
                    extra.append("quasi-Newton")
                if row.get("hessian_products"):
                    extra.append("truncated Newton")
                extra.append(PROX_MODES.get(row["prox_mode"], row["prox_mode"])
                             + (" (elastic-net L1 parts only)" if row.get("l1_only") else ""))
            if row["incompatible"]:
                extra.append("not with: " + ", ".join(row["incompatible"]))
            if extra:
                click.echo(f"      ({'; '.join(extra)})")


# ---------------------------------------------------------------------------------------------
@cli.command()
@data_options
@training_options
@click.option("--penalty", default="l2", show_default=True, help="Penalty plugin name (see `tuner plugins list`).")
@click.option("--optimizer", default="lbfgs", show_default=True, help="Optimizer plugin name.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A hyperparameter, e.g. penalty.strength=1e-3 or optimizer.lr=0.1 (repeatable).")
@click.option("--save-model", type=click.Path(file_okay=False), help="Folder to save the fitted model in.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def train(penalty: str, optimizer: str, params: tuple[str, ...], save_model: str | None, as_json: bool,
          **options: Any) -> None:
    """Train one configuration and report validation and test metrics."""
    from tuner.api import fit
    from tuner.study import MAX_OPTIMALITY_GAP

    report = fit(**data_kwargs(options), **training_kwargs(options), penalty=penalty, optimizer=optimizer,
                 params=dict(parse_assignments(params)), save_model=save_model)
    summary = report.summary()
    for w in report.warnings:  # on stderr, as tune's: --json keeps stdout for the JSON
        click.secho(f"warning: {w}", fg="yellow", err=True)
    if as_json:
        echo_json(summary)
        return
    click.echo(f"Trained {penalty} + {optimizer} on {report.source}: {report.n_train} training rows, "
               f"{report.n_features} features, {len(report.classes)} classes.")
    click.echo(f"  epochs run: {report.epochs_run} ({report.stop_reason}), {report.fit_seconds:.2f} s on {report.device}")
    click.echo(f"  training objective: {report.objective:.6f}")
    if report.optimality_gap is not None:
        click.echo(f"  above the optimum ({report.gap_solver}): {report.optimality_gap:.3%}"
                   + ("" if report.optimality_gap <= MAX_OPTIMALITY_GAP else
                      f"; {optimizer} stopped short: give it more steps (--epochs, a smaller --batch-size) or use "
                      f"{report.gap_solver}"))
    click.echo(f"  non-zero weights: {report.n_nonzero_weights} of {report.n_weights}")
    for split, metrics in (("validation", report.validation), ("test", report.test)):
        if metrics:
            click.echo(f"  {split:<10}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if report.model_path is not None:
        click.echo(f"  model saved to {report.model_path}")


# ---------------------------------------------------------------------------------------------
def _csv_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


# The options `tune` has that tuner.api.tune has not (output), and the names they differ by.
_CLI_ONLY = {"no_tracking", "as_json"}
_API_NAMES = {"penalty_list": "penalty", "optimizer_list": "optimizer"}


def _explicit_changes(ctx: click.Context, spec_values: dict[str, Any]) -> dict[str, Any]:
    """The spec keys set by options the user gave (command line or environment), not by defaults
    (:func:`tuner.api._tune.spec_changes`): a default never contradicts a stored study.

    ``spec_values`` maps a parameter name to the value it puts in the spec.
    """
    from tuner.api._tune import spec_changes

    given = {_API_NAMES.get(name, name): value for name, value in spec_values.items()
             if name not in _CLI_ONLY and ctx.get_parameter_source(name) not in (
                 None, click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)}
    return spec_changes(given)


@cli.command()
@data_options
@training_options
@click.option("--study", "study_name", help="Study name (default: from the data and the time). An existing one is resumed.")
@storage_option()
@tracking_uri_option()
@click.option("--no-tracking", is_flag=True, help="Do not log to MLflow.")
@click.option("--penalty", "penalty_list",
              help="Comma-separated penalties to search [default: every installed one that passes its contract "
                   "checks].")
@click.option("--optimizer", "optimizer_list",
              help="Comma-separated optimizers to search [default: the exact full-batch ones that pass their "
                   "contract checks, newton alone where the model is small; the summary names them]. "
                   "Name sgd, adam or rmsprop to search them.")
@click.option("--param", "params", multiple=True, metavar="NAME=LOW..HIGH[:log] | NAME=V",
              help="Narrow or fix a hyperparameter, e.g. penalty.strength=1e-6..1e-2:log or optimizer.lr=0.1.")
@click.option("--trials", type=int, help="Trial budget of the study (complete + pruned trials) "
              "[default 50]; 0 stores a new study without running a trial (for a later `tuner tune --study NAME "
              "--trials N` and its workers).")
@click.option("--timeout", type=float, help="Stop starting trials after this many seconds (counted from the first "
              "trial: reading the data is not included); trials training then finish, and asked trials whose "
              "group of --batch-trials has not started are given up, not counted. This run's limit only, not "
              "stored with the study.")
@click.option("--metric", type=click.Choice(["log_loss", "accuracy", "roc_auc", "f1"]), help="Validation metric [default log_loss]; f1 is the second class's F1 with two classes "
              "(scikit-learn's 'f1'), the macro average with more.")
@click.option("--sampler", type=click.Choice(["tpe", "random", "qmc", "grid", "cmaes"]), default="tpe", show_default=True,
              help="Optuna sampler proposing each trial's variant and hyperparameters (tpe: multivariate, "
                   "constant liar for parallel workers; grid: each variant's own hyperparameters, 5 values over "
                   "each range, every point once).")
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default="median", show_default=True,
              help="Optuna pruner stopping unpromising trials from their per-epoch validation metric.")
@click.option("--cv", type=click.IntRange(min=2), help="Score each trial by stratified K-fold cross-validation on the "
              "training rows (the mean over folds; each fold's score is reported to the pruner); the folds train "
              "side by side with the model on every training row; with --group-column each group's rows are in one "
              "fold. Default: the validation split.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@batch_trials_option
@pass_app
def tune(app: AppContext, study_name: str | None, storage: str | None, tracking_uri: str | None, no_tracking: bool,
         penalty_list: str | None, optimizer_list: str | None, params: tuple[str, ...], trials: int | None,
         timeout: float | None, metric: str | None, sampler: str, pruner: str, cv: int | None, as_json: bool,
         batch_trials: int | str, **options: Any) -> None:
    """Run (or resume) an Optuna study over penalties, optimizers and their hyperparameters.

    An existing --study is resumed: only the budget (--trials, --timeout), --batch-trials and the
    output options may change; any other option given must match the stored study.
    """
    from pathlib import Path

    from tuner.study import default_storage_url
    from tuner.tracking._prebuild import prebuild_schema_template

    if options["data"] is None and options["dataset"] is None and study_name is None:
        raise click.UsageError("Give DATA or --dataset to start a study, or --study NAME to resume one.")
    storage_url = storage or default_storage_url()
    if storage is None and not app.quiet and not as_json:
        click.echo(f"Study storage: {storage_url}", err=True)
    assignments = dict(parse_assignments(params))
    ctx = click.get_current_context()
    values = dict(ctx.params)
    test_file = options["test_file"]
    values.update(penalty_list=_csv_list(penalty_list), optimizer_list=_csv_list(optimizer_list), params=assignments,
                  test_file=str(Path(test_file).resolve()) if test_file else None)
    progress = Progress(_progress_mode(app, as_json), metric or _stored_metric(storage_url, study_name), app.quiet)
    try:
        with progress:
            tracking = _tracking_uri(tracking_uri, no_tracking, storage_url, study_name)
            prebuild_schema_template(tracking)  # before the imports and the data: a first run's MLflow schema
            from tuner.api import tune as run_tune

            result = run_tune(**data_kwargs(options), **training_kwargs(options), study_name=study_name,
                              storage=storage_url, tracking_uri=tracking,
                              penalty=penalty_list, optimizer=optimizer_list, params=assignments, trials=trials,
                              timeout=timeout, metric=metric or "log_loss", sampler=sampler, pruner=pruner, cv=cv,
                              batch_trials=batch_trials, progress=progress, explicit=_explicit_changes(ctx, values))
    except KeyboardInterrupt:  # Ctrl-C while the data was read or checked: nothing was stored
        _interrupted_before_start()
    _report_study(result, as_json)


@cli.command()
@click.option("--study", "study_name", required=True, envvar="TUNER_STUDY", help="The study to work on [env TUNER_STUDY].")
@storage_option(required=True, help="SQLAlchemy URL of the shared study database [env TUNER_STORAGE].")
@tracking_uri_option()
@click.option("--no-tracking", is_flag=True, help="Do not log to MLflow.")
@click.option("--wait", default=300.0, show_default=True, type=click.FloatRange(min=0), help="Seconds to wait for the study to be created.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@batch_trials_option
@pass_app
def worker(app: AppContext, study_name: str, storage: str, tracking_uri: str | None, no_tracking: bool, wait: float,
           as_json: bool, batch_trials: int | str) -> None:
    """Join an existing study and run its trials until the study's budget is spent.

    Start as many workers as you like on one database (PostgreSQL); the budget counts every
    worker's trials. The study is created by `tuner tune ... --study NAME --trials N`.
    """
    from tuner.api import tune as run_tune
    from tuner.study import MissingStudyError
    from tuner.tracking._prebuild import prebuild_schema_template

    progress = Progress(_progress_mode(app, as_json), _stored_metric(storage, study_name), app.quiet)
    try:
        with progress:
            tracking = _worker_tracking_uri(tracking_uri, no_tracking, storage, study_name, wait)
            prebuild_schema_template(tracking)
            result = run_tune(study_name=study_name, storage=storage, tracking_uri=tracking,
                              batch_trials=batch_trials, progress=progress, wait=wait)
    except KeyboardInterrupt:
        _interrupted_before_start()
    except MissingStudyError as exc:  # a worker takes no data: it joins a study that `tuner tune` creates
        longer = " longer" if wait else ""
        raise click.ClickException(f"{exc.found}; start it with `tuner tune DATA --study {study_name}` on this "
                                   f"--storage, or let the worker wait{longer} for it (--wait SECONDS).") from None
    _report_study(result, as_json)


def _worker_tracking_uri(tracking_uri: str | None, no_tracking: bool, storage: str, study_name: str,
                         wait: float) -> str | None:
    """:func:`_tracking_uri` for a worker, read once the study exists and its creator recorded its
    MLflow store: resolved before ``--wait`` ended, it was ``./mlflow.db`` of the worker's folder,
    and the worker was refused as logging to another store than the study's."""
    if tracking_uri is not None or no_tracking or not wait:
        return _tracking_uri(tracking_uri, no_tracking, storage, study_name)
    from tuner.api._tune import wait_for_study
    from tuner.tracking._home import settled_tracking_uri, stored_or_default

    wait_for_study(storage, study_name, wait)
    return stored_or_default(settled_tracking_uri(storage, study_name))


def _progress_mode(app: AppContext, as_json: bool) -> str:
    """A bar on a terminal, a line every N trials when stderr is redirected; none with -q or --json."""
    if app.quiet or as_json:
        return "off"
    return "bar" if sys.stderr.isatty() else "lines"


def _stored_metric(storage: str, study_name: str | None) -> Callable[[], str]:
    """The metric of the study being run, read from its spec once its first trial ended."""

    def metric() -> str:
        from tuner.study import study_record

        if study_name is None:
            return "log_loss"
        return str(study_record(storage, study_name).spec.get("metric") or "log_loss")

    return metric


def _tracking_uri(tracking_uri: str | None, no_tracking: bool, storage: str, study_name: str | None) -> str | None:
    """The MLflow store to log to: None with --no-tracking, else the given one, the one the study
    already logs to, or the default one."""
    if no_tracking:
        from click.core import ParameterSource

        if click.get_current_context().get_parameter_source("tracking_uri") == ParameterSource.COMMANDLINE:
            raise click.UsageError("--no-tracking and --tracking-uri contradict each other: give one of them.")
        return None
    from tuner.tracking._home import tracking_uri_for

    return tracking_uri or tracking_uri_for(storage, study_name)


def _interrupted_before_start() -> NoReturn:
    """Ctrl-C before any trial (reading or checking the data): one line, exit code 130."""
    click.secho("Interrupted by SIGINT before any trial started; nothing was run.", fg="yellow", err=True)
    raise SystemExit(130)


def _report_study(result: Any, as_json: bool) -> None:
    """Print a finished study's summary; exit 130/143 when a signal stopped it."""
    summary = result.summary()
    block = mlflow_block(result.tracking_uri, result.experiment_name, result.experiment_id, result.parent_run_id,
                         result.study_name, result.registered_model_version, result.champion_version)
    if block is not None:
        summary["mlflow"] = block
    command = click.get_current_context(silent=True)
    # the core's notices name the API's parameters: the CLI's user is told its flags, in JSON too
    summary["warnings"] = [flags_in(w, command.command if command else None, summary["study"])
                           for w in summary.get("warnings", [])]
    if as_json:
        echo_json(summary)
    else:
        _print_study_summary(summary)
    if result.interrupted:
        raise SystemExit(130 if result.interrupted == "SIGINT" else 143)
    if result.no_result:  # exit code 0 would say there is an answer
        raise TunerError(result.no_result)


def _storage_flag(storage: str) -> str:
    """`` --storage URL`` for a command that must reach ``storage`` (redacted), unless it is the default."""
    from tuner.study import default_storage_url, redact

    return "" if storage == redact(default_storage_url()) else f" --storage '{storage}'"


def _print_study_summary(s: dict[str, Any]) -> None:
    for w in s.get("warnings", []):
        click.secho(f"warning: {w}", fg="yellow", err=True)
    t = s["trials"]
    click.echo(f"Study {s['study']} ({s['storage']})")
    click.echo(f"  trials: {t['complete']} complete, {t['pruned']} pruned, {t['fail']} failed{given_up_note(t)}")
    if s.get("interrupted") and "test" in s:  # the signal came while the best model was registered
        click.secho(f"  interrupted by {s['interrupted']} once the study had ended: its results are complete",
                    fg="yellow")
    elif s.get("interrupted"):
        click.secho(f"  interrupted by {s['interrupted']}: completed trials are kept; resume with "
                    f"`tuner tune --study {s['study']}{_storage_flag(s['storage'])}`", fg="yellow")
    if s["best_trial"] is None and s.get("budget") == 0 and not sum(t.values()):
        click.echo(f"  stored with a budget of 0 trials, no trial run: `tuner tune --study {s['study']} --trials N` "
                   "runs it, and workers started then join it")
        print_mlflow_block(s.get("mlflow"))
        return
    if s["best_trial"] is None:
        click.echo("  no completed trial yet")
        print_mlflow_block(s.get("mlflow"))
        return
    scored = f"cross-validated {s['metric']} ({s['cv']} folds)" if s.get("cv") else f"validation {s['metric']}"
    click.echo(f"  best trial: #{s['best_trial']}  {scored} = {s['best_value']:.6g} ({s['direction']})")
    for k, v in s["best_params"].items():
        click.echo(f"    {k} = {v:.6g}" if isinstance(v, float) else f"    {k} = {v}")
    if "test" in s:
        click.echo("  test: " + ("  ".join(f"{k} {v:.4f}" for k, v in s["test"].items()) if s["test"]
                                 else "none (no test rows: --test-size 0 and no --test-file)"))
        click.echo(f"  non-zero weights: {s['n_nonzero_weights']} of {s['n_weights']}")
    if s.get("mlflow"):
        print_mlflow_block(s["mlflow"])
    elif s.get("model_uri"):
        click.echo(f"  registered model: {s['model_uri']}")


def _register_extra_commands() -> None:
    """Commands kept in their own modules (each imports only click at module level)."""
    from tuner.cli._plugins_check import plugins_check
    from tuner.cli._predict import predict, sync_mlflow
    from tuner.cli._serve import dashboard, ui
    from tuner.cli._study import study

    plugins.add_command(plugins_check, "check")
    study.add_command(sync_mlflow, "sync-mlflow")
    cli.add_command(study, "study")
    cli.add_command(predict, "predict")
    cli.add_command(ui, "ui")
    cli.add_command(dashboard, "dashboard")
    quiet_everywhere(cli)


_register_extra_commands()


def main() -> None:
    """Entry point of the ``tuner`` script: the command, then a quick exit (:func:`_exit_now`)."""
    try:
        cli(prog_name="tuner")
    except SystemExit as exc:
        _exit_now(exc.code)
    _exit_now(0)


def _exit_now(code: object) -> NoReturn:
    """Exit with ``code`` (``SystemExit``'s meaning) once the exit handlers ran and the output is
    flushed, without the interpreter's teardown: after a study it frees torch, MLflow and
    SQLAlchemy module by module for about 2 s (a 30-trial a9a study: 21.7 s of work, 23.6 s of
    process). While a thread other than a daemon is still alive the normal exit runs instead,
    so that it is joined."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what the interpreter runs at exit: logging, MLflow's and Optuna's handlers
    connections = sys.modules.get("tuner.study._connections")
    if connections is not None:  # os._exit closes no database: SQLite's -wal would never be folded into its file
        connections.close_engines()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
