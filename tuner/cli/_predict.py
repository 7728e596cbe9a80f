"""``tuner predict`` and ``tuner study sync-mlflow``: the MLflow side of the command line.

Both are plain click commands that ``tuner.cli`` registers; they import only click at
module level (MLflow, pandas and Optuna are imported when they run).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from tuner.cli._options import (
    FORMAT_CHOICES,
    AppContext,
    cannot_write,
    check_output,
    echo_json,
    flags_in,
    storage_option,
    tracking_uri_option,
)

__all__ = ["predict", "sync_mlflow", "select_columns", "spreadsheet_safe"]

# A cell starting with one of these is run as a formula by spreadsheets (OWASP: CSV injection)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_MODEL_STORE = "MLflow tracking URI for models:/ and runs:/ URIs [env MLFLOW_TRACKING_URI; default sqlite:///mlflow.db]."


@click.command("predict")
@click.argument("model_uri")
@click.argument("data", type=click.Path(exists=True, dir_okay=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="CSV file to write (default: standard output).")
@click.option("--proba", is_flag=True, help="Add one probability column per class (proba_<class>).")
@click.option("--format", "fmt", default="auto", show_default=True,
              type=FORMAT_CHOICES, help="Format of DATA.")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of DATA.")
@click.option("--target", help="Label column of a CSV/TSV/Parquet DATA to ignore (it is not a feature); DATA must "
              "have it.")
@click.option("--zero-based/--one-based", "zero_based", default=None,
              help="Index base of a LIBSVM DATA file, for a model not trained on LIBSVM [default: the training "
                   "file's base; else the base the file shows (an index 0, or one equal to the width), else an "
                   "error].")
@click.option("--header/--no-header", default=None,
              help="Whether the first line of a CSV/TSV DATA names its columns [default: it does unless it is all "
                   "numbers; for a model trained with --no-header it does not, and a first line that could be its "
                   "column positions is an error asking for this option].")
@tracking_uri_option(_MODEL_STORE)
def predict(model_uri: str, data: str, output: str | None, proba: bool, fmt: str, encoding: str,
            target: str | None, zero_based: bool | None, header: bool | None, tracking_uri: str | None) -> None:
    """Predict the classes of the rows in DATA with MODEL_URI.

    MODEL_URI is a registered model (models:/NAME@champion, models:/NAME/3), a run's model
    (runs:/RUN_ID/model), an MLflow model folder, or a folder saved by `tuner train
    --save-model`. DATA is read like training data (CSV/TSV/Parquet with the training
    columns, matched by name; a CSV without a header, or with pandas' 0, 1, ..., n-1, must
    have exactly the training columns, in training order; LIBSVM read with the training index base, or for a model
    trained on other data with the base the file shows or --zero-based/--one-based; .npz; or for a text model a
    file with one text per line, or of '<label> <text>' lines when every line starts with
    one of the model's classes). Writes CSV: a `prediction` column with the training labels,
    and with --proba one `proba_<class>` column per class; a text cell that a spreadsheet
    would run as a formula is written with a leading `'`.
    """
    import tempfile

    from tuner.errors import DataError, TunerError
    from tuner.tracking import probe_tracking_server

    check_output(output)
    if output is not None and os.path.exists(output) and os.path.exists(data) and os.path.samefile(output, data):
        raise click.ClickException(f"--output {output} is DATA itself: writing the predictions there would destroy the "
                                   "rows they come from; give another file.")
    if model_uri.startswith(("models:/", "runs:/")):
        try:  # a dead server: one short wait and one line, before MLflow and torch are imported
            probe_tracking_server(tracking_uri)
        except TunerError as exc:
            raise click.ClickException(str(exc)) from None
    from tuner.data import load_rows
    from tuner.model import as_rows, labels_of, prediction_frame
    from tuner.tracking import resolve_model

    try:
        with tempfile.TemporaryDirectory(prefix="tuner-model-") as tmp:
            model = resolve_model(model_uri, tmp, tracking_uri)
        rows = select_columns(load_rows(data, model.pipeline, encoding=encoding, fmt=fmt, target=target,
                                        classes=model.classes_, zero_based=zero_based, header=header), model)
        if rows.shape[0] == 0:  # an empty LIBSVM or text file printed a bare header and exited 0
            raise DataError(f"{data} holds no rows to predict; give a file with the rows.")
        p = model.predict_proba(as_rows(rows, model))
    except TunerError as exc:  # in predict's words: its flags, not the API's parameter names
        raise click.ClickException(flags_in(str(exc), click.get_current_context().command)) from None
    import pandas as pd

    frame = prediction_frame(model, p) if proba else pd.DataFrame({"prediction": labels_of(model, p)})
    frame = spreadsheet_safe(frame)
    if output:
        try:
            frame.to_csv(output, index=False)
        except OSError as exc:
            raise cannot_write(output, exc) from None
        if not click.get_current_context().ensure_object(AppContext).quiet:
            click.echo(f"Wrote {len(frame)} predictions to {output}.", err=True)
    else:
        frame.to_csv(sys.stdout, index=False)


def select_columns(rows: Any, model: Any) -> Any:
    """A table's training columns, matched by name (an error names missing and unexpected ones).

    Columns the model does not read (an id, the label without --target) are dropped with a
    note on standard error. Rows holding a category the training rows never held get a note
    too: such a cell sets none of its column's features, so a different spelling, or codes
    written otherwise, would move predictions without a word.
    """
    import pandas as pd

    from tuner.data._features import LABELS_DROPPED

    if not isinstance(rows, pd.DataFrame):
        return rows
    if rows.attrs.get(LABELS_DROPPED):
        classes = ", ".join(str(c) for c in list(model.classes_)[:4])
        click.echo(f"note: every line starts with a class of the model ({classes}), so the lines are read as "
                   "'<label> <text>' and that first word is left out; give the file a .txt name to predict on whole "
                   "lines.", err=True)
    unused = model.pipeline.unused_columns(rows)
    selected = model.pipeline.select_columns(rows)
    if unused:
        click.echo(f"note: ignoring column(s) {unused}: the model was not trained on them.", err=True)
    for column, n in model.pipeline.unseen_categories(selected).items():
        click.echo(f"note: {n} of {len(selected)} row(s) hold a category of {column!r} that the training rows never "
                   "held; it sets none of that column's features.", err=True)
    return selected


def spreadsheet_safe(frame: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula, prefixed with ``'`` (numbers are left alone)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind in "biufc":
            continue
        out[col] = [_safe_cell(v) for v in out[col]]
    return out


def _safe_cell(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    try:
        float(value)  # "-1" is a number, not a formula
        return value
    except ValueError:
        return "'" + value


@click.command("sync-mlflow")
@click.argument("name")
@storage_option()
@tracking_uri_option()
@click.option("--no-model", is_flag=True, help="Do not refit and register the best model when it is missing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sync_mlflow(name: str, storage: str | None, tracking_uri: str | None, no_model: bool, as_json: bool) -> None:
    """Log to MLflow the trials of study NAME that are missing there (after MLflow was down).

    Trials whose run is missing or incomplete get a run from what the study database kept
    (parameters, state, per-epoch study metric, validation metrics); when the registry's
    champion is not the study's best trial, the best configuration is refit and registered.
    """

    from tuner.errors import TunerError
    from tuner.tracking import probe_tracking_server

    try:  # a dead server: one short wait and one line, before MLflow and torch are imported
        probe_tracking_server(tracking_uri)
    except TunerError as exc:
        raise click.ClickException(str(exc)) from None
    from tuner.study import default_storage_url
    from tuner.tracking import sync_study
    from tuner.tracking._home import tracking_uri_for

    try:
        result = sync_study(storage or default_storage_url(), name, tracking_uri or tracking_uri_for(storage, name),
                            register_model=not no_model)
    except TunerError as exc:
        raise click.ClickException(str(exc)) from None
    from tuner.study import study_record

    counts = study_record(storage, name).counts
    result["running_trials"], result["stale_trials"] = counts.get("running", 0), counts.get("stale", 0)
    if as_json:
        echo_json(result)
        return
    synced = result["synced_trials"]
    click.echo(f"Study {name}: logged {len(synced)} missing trial(s) to {result['tracking_uri']} "
               f"({result['already_logged']} were already there); parent run {result['parent_run_id']}.")
    if result["running_trials"]:
        stale = result["stale_trials"]
        click.echo(f"  {result['running_trials']} trial(s) still RUNNING in the study"
                   + (f", {stale} of them stale (their worker died): resuming the study fails and retries those, "
                      "then run sync-mlflow again" if stale else ": a process is training them")
                   + "; their MLflow runs stay RUNNING until then.")
    if result.get("model", {}).get("mlflow_model_uri"):
        click.echo(f"  registered the best model as {result['model']['mlflow_model_uri']}")
