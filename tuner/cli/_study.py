"""``tuner study ...``: list, show, export and delete the studies in a database."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import click

__all__ = ["study"]

storage_option = click.option(
    "--storage", envvar="TUNER_STORAGE",
    help="SQLAlchemy URL of the study database [env TUNER_STORAGE; default sqlite:///tuner-studies.db].",
)


def _storage(url: str | None, writable: bool = False) -> Any:
    from tuner.study._storage import default_storage_url, open_storage

    return open_storage(url or default_storage_url(), heartbeat=False, writable=writable)


def _load(name: str, storage: Any) -> Any:
    import optuna

    from tuner.errors import ConfigError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        raise ConfigError(f"No study named {name!r}. Studies in this database: {', '.join(names) or 'none'}.") from None


def _counts(trials: list[Any], study: Any = None, url: str | None = None) -> dict[str, int]:
    """Trials by state; ``stale`` counts the running ones whose worker stopped sending heartbeats."""
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    if study is not None and out.get("running"):
        out["stale"] = len(_stale_ids(study, url))
    return out


def _stale_ids(study: Any, url: str | None) -> list[int]:
    """Ids of the study's running trials past the heartbeat grace period (their worker died)."""
    get_stale = getattr(_beating_storage(url), "_get_stale_trial_ids", None)
    return list(get_stale(study._study_id)) if get_stale is not None else []


@functools.lru_cache(maxsize=4)
def _beating_storage(url: str | None) -> Any:
    """The store with the heartbeat settings the workers use (TUNER_HEARTBEAT_INTERVAL / _GRACE)."""
    from tuner.study._storage import default_storage_url, open_storage

    return open_storage(url or default_storage_url(), writable=False)


def _trial_row(t: Any) -> dict[str, Any]:
    return {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
            "user_attrs": t.user_attrs,
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None}


def _echo_json(obj: Any) -> None:
    from tuner.cli._main import echo_json

    echo_json(obj)


@click.group("study")
def study() -> None:
    """Inspect the studies in the study database."""


@study.command("list")
@storage_option
@click.option("--json", "as_json", is_flag=True)
def study_list(storage: str | None, as_json: bool) -> None:
    """Every study: name, trials by state, best value, creation time."""
    import optuna

    st = _storage(storage)
    rows = []
    for s in optuna.get_all_study_summaries(st, include_best_trial=True):
        study_obj = optuna.load_study(study_name=s.study_name, storage=st)
        trials = study_obj.get_trials(deepcopy=False)
        spec = json.loads(s.user_attrs.get("spec", "{}"))
        rows.append({"name": s.study_name, "direction": s.direction.name.lower(), "metric": spec.get("metric"),
                     "trials": _counts(trials, study_obj, storage),
                     "best_value": s.best_trial.value if s.best_trial else None,
                     "created": s.datetime_start.isoformat(timespec="seconds") if s.datetime_start else
                     s.user_attrs.get("created")})
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No studies.")
        return
    click.echo(f"{'NAME':<40} {'COMPLETE':>8} {'PRUNED':>7} {'FAILED':>7} {'RUNNING':>9} {'BEST':>12}  "
               f"{'METRIC':<9} CREATED")
    for r in rows:
        t = r["trials"]
        best = "-" if r["best_value"] is None else f"{r['best_value']:.6g}"
        running = f"{t.get('running', 0)}" + (f" ({t['stale']} stale)" if t.get("stale") else "")
        click.echo(f"{r['name']:<40} {t.get('complete', 0):>8} {t.get('pruned', 0):>7} {t.get('fail', 0):>7} "
                   f"{running:>9} {best:>12}  {r['metric'] or '-':<9} {r['created'] or '-'}")


@study.command("show")
@click.argument("name")
@storage_option
@click.option("--top", default=10, show_default=True, help="How many of the best trials to list.")
@click.option("--json", "as_json", is_flag=True)
def study_show(name: str, storage: str | None, top: int, as_json: bool) -> None:
    """A study's spec, best trial, top-k table and parameter importances."""
    import optuna
    from optuna.trial import TrialState

    s = _load(name, _storage(storage))
    trials = s.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    reverse = s.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(done, key=lambda t: t.value, reverse=reverse)[:top]
    importances: dict[str, float] = {}
    if len(done) >= 5:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importances = {k: float(v) for k, v in optuna.importance.get_param_importances(s).items()}
        except (RuntimeError, ValueError):
            importances = {}
    info = {"name": name, "spec": json.loads(s.user_attrs.get("spec", "{}")), "trials": _counts(trials, s, storage),
            "best": _trial_row(s.best_trial) if done else None, "top": [_trial_row(t) for t in ranked],
            "importances": importances,
            "user_attrs": {k: v for k, v in s.user_attrs.items() if k != "spec"}}
    if as_json:
        _echo_json(info)
        return
    spec = info["spec"]
    click.secho(f"Study {name}", bold=True)
    data = spec.get("data", {})
    click.echo(f"  data: {data.get('path') or data.get('dataset')} (fingerprint {data.get('fingerprint')})")
    click.echo(f"  penalties: {', '.join(spec.get('penalties', []))}; optimizers: {', '.join(spec.get('optimizers', []))}")
    click.echo(f"  metric: {spec.get('metric')} ({s.direction.name.lower()}); sampler {spec.get('sampler')}, "
               f"pruner {spec.get('pruner')}; budget {spec.get('n_trials')} trials")
    t = info["trials"]
    click.echo(f"  trials: {t.get('complete', 0)} complete, {t.get('pruned', 0)} pruned, {t.get('fail', 0)} failed, "
               f"{t.get('running', 0)} running" + (f" ({t['stale']} stale: their worker died; the next trial "
                                                   "to start fails and retries them)" if t.get("stale") else "")
               + (f", {t['waiting']} waiting" if t.get("waiting") else ""))
    if not ranked:
        click.echo("  no completed trial")
        return
    click.echo(f"  top {len(ranked)}:")
    for tr in ranked:
        ps = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in tr.params.items())
        click.echo(f"    #{tr.number:<4} {tr.value:.6g}  {ps}")
    if importances:
        click.echo("  parameter importances:")
        for k, v in importances.items():
            click.echo(f"    {k:<32} {v:.3f}")


@study.command("best")
@click.argument("name")
@storage_option
@click.option("--json", "as_json", is_flag=True)
def study_best(name: str, storage: str | None, as_json: bool) -> None:
    """The best trial: value, parameters and attributes."""
    from tuner.errors import ConfigError

    s = _load(name, _storage(storage))
    try:
        best = s.best_trial
    except ValueError:
        raise ConfigError(f"Study {name!r} has no completed trial yet.") from None
    row = _trial_row(best)
    row["test_metrics"] = s.user_attrs.get("best_test_metrics")
    if as_json:
        _echo_json(row)
        return
    click.echo(f"best trial #{best.number}: {best.value:.6g}")
    for k, v in best.params.items():
        click.echo(f"  {k} = {v}")


@study.command("export")
@click.argument("name")
@storage_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File to write (default: stdout).")
def study_export(name: str, storage: str | None, fmt: str, output: str | None) -> None:
    """Every trial of a study as CSV or JSON."""
    s = _load(name, _storage(storage))
    if fmt == "json":
        text = json.dumps([_trial_row(t) for t in s.get_trials(deepcopy=False)], indent=2, default=_default)
    else:
        frame = s.trials_dataframe(attrs=("number", "state", "value", "datetime_start", "datetime_complete",
                                          "duration", "params", "user_attrs"))
        text = frame.to_csv(index=False)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


def _default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


@study.command("delete")
@click.argument("name")
@storage_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def study_delete(name: str, storage: str | None, yes: bool) -> None:
    """Delete a study and all its trials from the study database."""
    import optuna

    st = _storage(storage, writable=True)
    _load(name, st)
    if not yes:
        click.confirm(f"Delete study {name!r} and all its trials?", abort=True)
    optuna.delete_study(study_name=name, storage=st)
    click.echo(f"Deleted study {name}.")
