"""``tuner study ...``: list, show, export and delete the studies in a database.

Every query is a :mod:`tuner.study` function returning plain records; this module parses and
prints.
"""

from __future__ import annotations

import math
from typing import Any

import click

from tuner.cli._mlflow_info import mlflow_block_from_attrs, print_mlflow_block
from tuner.cli._options import (
    TunerGroup,
    cannot_write,
    check_output,
    echo_json,
    given_up_note,
    storage_option,
    tracking_uri_option,
)

__all__ = ["study"]


@click.group("study", cls=TunerGroup)
def study() -> None:
    """Inspect the studies in the study database."""


@study.command("list")
@storage_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def study_list(storage: str | None, as_json: bool) -> None:
    """Every study: name, trials by state, best value, creation time."""
    from tuner.study import list_studies

    rows = [record.to_dict() for record in list_studies(storage)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No studies.")
        return
    header = ["NAME", "COMPLETE", "PRUNED", "FAILED", "RUNNING", "BEST", "METRIC", "CREATED"]
    table, skipped = [], []
    for r in rows:
        t = r["trials"]
        best = "-" if r["best_value"] is None else f"{r['best_value']:.6g}"
        running = f"{t.get('running', 0)}" + (f" ({t['stale']} stale)" if t.get("stale") else "")
        failed = t.get("fail", 0) - t.get("given_up", 0)  # given up before training: not a failure of the model
        table.append([r["name"], str(t.get("complete", 0)), str(t.get("pruned", 0)), str(failed), running, best,
                      r["metric"] or "-", r["created"] or "-"])
        if t.get("given_up"):
            skipped.append(f"{r['name']} ({t['given_up']})")
    _echo_table(header, table, right={1, 2, 3, 4, 5})
    if skipped:
        click.echo(f"Not in FAILED: trials given up before they trained (a budget or timeout ran out): "
                   f"{', '.join(skipped)}.")


@study.command("show")
@click.argument("name")
@storage_option()
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many of the best trials to list.")
@tracking_uri_option("MLflow tracking URI the study logged to, for its UI link [env MLFLOW_TRACKING_URI; default "
                     "sqlite:///mlflow.db].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def study_show(name: str, storage: str | None, top: int, tracking_uri: str | None, as_json: bool) -> None:
    """A study's spec, best trial, top-k table and parameter importances."""
    from tuner.study import study_overview, top_records

    overview = study_overview(storage, name)
    record, importances, left_out = overview.record, overview.importances, overview.importances_left_out
    ranked = top_records(overview.trials, record.direction)
    info: dict[str, Any] = {"name": name, "spec": record.spec, "trials": record.counts,
            "best": ranked[0].to_dict() if ranked else None, "top": [t.to_dict() for t in ranked[:top]],
            "importances": importances, "importances_left_out": left_out,
            "user_attrs": {k: v for k, v in record.user_attrs.items() if k != "spec"}}
    mlflow = _mlflow_of(name, tracking_uri, record.user_attrs)  # the MLflow block (cli engineer)
    info["mlflow"] = mlflow
    behind = _mlflow_behind(name, record.user_attrs, ranked[0].number if ranked else None) if mlflow else []
    info["mlflow_behind"] = behind
    if as_json:
        echo_json(info)
        return
    spec = record.spec
    click.secho(f"Study {name}", bold=True)
    if spec:
        _echo_spec(spec, record.direction)
    else:
        click.echo("  not a logreg-tuner study: it has no spec stored (an Optuna study made elsewhere, or a start "
                   "cut off before the spec was written); only its trials are shown")
    t = record.counts
    click.echo(f"  trials: {t.get('complete', 0)} complete, {t.get('pruned', 0)} pruned, {t.get('fail', 0)} failed"
               f"{given_up_note(t)}, "
               f"{t.get('running', 0)} running" + (f" ({t['stale']} stale: their worker died; the next trial "
                                                   "to start fails and retries them)" if t.get("stale") else "")
               + (f", {t['waiting']} waiting" if t.get("waiting") else ""))
    print_mlflow_block(mlflow)
    for line in behind:
        click.secho(f"    note: {line}", fg="yellow")
    if record.n_objectives > 1:
        click.echo(f"  {record.n_objectives} objectives ({', '.join(record.directions)}): no single best trial; "
                   f"`tuner study export {name}` lists every trial's values")
        return
    if not ranked:
        click.echo("  no completed trial")
        return
    click.echo(f"  top {len(ranked[:top])}:")
    for tr in ranked[:top]:
        ps = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in tr.public_params.items())
        click.echo(f"    #{tr.number:<4} {_value(tr.value)}  {ps}")
    if importances:
        click.echo("  parameter importances" + (" (of the hyperparameters every complete trial has; not weighed: "
                                                 f"{', '.join(left_out)}, which only some trials have)" if left_out
                                                 else "") + ":")
        for k, v in importances.items():
            click.echo(f"    {k:<32} {v:.3f}")


def _mlflow_of(name: str, tracking_uri: str | None, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """Experiment, parent run, registered model and UI link of a tracked study (None: not tracked),
    in the store it logs to. Another store given is refused: it holds none of the study's runs,
    and the block would name them there."""
    from tuner.tracking._home import check_same_store, stored_or_default
    from tuner.tracking._names import ATTR_TRACKING

    stored = attrs.get(ATTR_TRACKING)
    if tracking_uri is not None and isinstance(stored, str):
        check_same_store(stored, tracking_uri, name, reading=True)
    return mlflow_block_from_attrs(tracking_uri or stored_or_default(stored), name, attrs)


def _mlflow_behind(name: str, attrs: dict[str, Any], best: int | None) -> list[str]:
    """What MLflow lacks of the study as last recorded: trials it did not log, and a best trial
    found since the champion was registered (a resume with --no-tracking, or a failed end)."""
    from tuner.tracking._names import ATTR_UNLOGGED

    out = []
    unlogged = attrs.get(ATTR_UNLOGGED) or []
    if unlogged:
        out.append(f"{len(unlogged)} finished trial(s) are not in MLflow")
    champion = attrs.get("mlflow_champion_trial")
    if best is not None and champion is not None and int(champion) != best:
        out.append(f"the champion holds trial #{champion}, but the study's best is #{best}, not registered")
    if out:
        out[-1] += f": `tuner study sync-mlflow {name}` logs and registers what is missing"
    return out


def _value(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.6g}"


@study.command("best")
@click.argument("name")
@storage_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def study_best(name: str, storage: str | None, as_json: bool) -> None:
    """The best trial: value, parameters and attributes."""
    from tuner.errors import ConfigError
    from tuner.study import best_record, study_record

    best = best_record(storage, name)
    record = study_record(storage, name)
    if best is None:
        held = ", ".join(f"{record.counts[k]} {word}" for k, word in (("pruned", "pruned"), ("fail", "failed"),
                                                                     ("running", "running")) if record.counts.get(k))
        raise ConfigError(f"Study {name!r} has no completed trial yet ({held or 'no trials'}); `tuner study show "
                          f"{name}` gives the reasons.")
    row: dict[str, Any] = best.to_dict()
    row["test_metrics"] = record.user_attrs.get("best_test_metrics")
    if as_json:
        echo_json(row)
        return
    click.echo(f"best trial #{best.number}: {_value(best.value)}")
    for k, v in best.public_params.items():
        click.echo(f"  {k} = {v}")


def _echo_table(header: list[str], rows: list[list[str]], right: set[int]) -> None:
    """Columns as wide as their widest cell (names and notes of any length stay aligned);
    ``right``: the columns aligned to the right (numbers)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        click.echo("  ".join(cells).rstrip())


def _echo_spec(spec: dict[str, Any], direction: str) -> None:
    """The lines of ``study show`` that describe what the study searches, on what data."""
    data = spec.get("data", {})
    click.echo(f"  data: {data.get('path') or data.get('dataset')} (fingerprint {data.get('fingerprint')})")
    columns = _columns_line(data)
    if columns:
        click.echo(f"  columns: {columns}")
    click.echo(f"  penalties: {', '.join(spec.get('penalties', []))}; optimizers: {', '.join(spec.get('optimizers', []))}")
    if spec.get("left_out_variants"):
        click.echo(f"  pairs left out by the default search: {', '.join(spec['left_out_variants'])} (their penalties "
                   "train with a truncated Newton solver)")
    folds = f", mean over {spec['cv']} folds (--cv {spec['cv']})" if spec.get("cv") else ""
    click.echo(f"  metric: {spec.get('metric')} ({direction}){folds}; sampler {spec.get('sampler')}, "
               f"pruner {spec.get('pruner')}; budget {spec.get('n_trials')} trials")


@study.command("export")
@click.argument("name")
@storage_option()
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: one row per trial; json: a list of trial objects.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File to write (default: stdout).")
def study_export(name: str, storage: str | None, fmt: str, output: str | None) -> None:
    """Every trial of a study as CSV or JSON."""
    from tuner.study import export_trials

    check_output(output)
    text = export_trials(storage, name, fmt)
    if (text.strip() == "[]") if fmt == "json" else text.count("\n") <= 1:
        click.echo(f"Study {name} has no trials yet: the export holds {'the header' if fmt == 'csv' else 'an empty list'} "
                   "only.", err=True)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise cannot_write(output, exc) from None
    else:
        click.echo(text, nl=False)


@study.command("delete")
@click.argument("name")
@storage_option()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Delete it even while a process runs its trials (that process then fails).")
def study_delete(name: str, storage: str | None, yes: bool, force: bool) -> None:
    """Delete a study and all its trials from the study database."""
    from tuner.errors import ConfigError
    from tuner.study import delete_study, study_record

    record = study_record(storage, name)  # no such study: say so (and name the others) before asking
    live = record.counts.get("running", 0) - record.counts.get("stale", 0)
    if live > 0 and not force:  # the process running them would die on a study deleted under it
        raise ConfigError(f"Study {name!r} has {live} running trial(s): a process is working on it. Stop it first "
                          "(Ctrl-C), or give --force to delete the study anyway.")
    if not yes:
        click.confirm(f"Delete study {name!r} and all its trials?", abort=True)
    delete_study(storage, name)
    click.echo(f"Deleted study {name}.")


def _columns_line(data: dict[str, Any]) -> str:
    """How a table's columns are read: ``target label; text review; categorical proto, service; no
    header`` (empty for other data)."""
    parts = [f"{what} {data[key]}" for what, key in (("target", "target"), ("text", "text_column"))
             if data.get(key) is not None]
    if data.get("categorical_columns"):
        parts.append("categorical " + ", ".join(data["categorical_columns"]))
    if data.get("group_column"):
        parts.append(f"split by groups of {data['group_column']}")
    if data.get("header") is False:
        parts.append("no header (named 0, 1, ... by position)")
    return "; ".join(parts)

