"""What the commands share: the app context, the options declared once, JSON output, and the
mapping from the core's parameter names to the flags of the command that ran.

Imports only click (and the light :class:`tuner.train.TrainConfig`, which owns the training
defaults) at module level, so ``tuner --help`` stays instant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from tuner._json import dumps
from tuner.errors import TunerError
from tuner.train import TrainConfig

__all__ = ["AppContext", "pass_app", "TunerGroup", "echo_json", "parse_assignments", "data_options",
           "training_options", "storage_option", "tracking_uri_option", "quiet_option", "quiet_everywhere", "batch_trials_option",
           "training_kwargs", "data_kwargs", "FORMAT_CHOICES", "SEED", "flags_in", "check_output",
           "cannot_write", "given_up_note"]

_DEFAULT = TrainConfig()


class _FormatChoice(click.Choice):
    """``--format``: the formats :mod:`tuner.data` reads (its one list), read when first needed,
    so that importing the command line does not import the loaders (pandas)."""

    def __init__(self) -> None:
        self.case_sensitive = True

    @property
    def choices(self) -> Sequence[Any]:  # type: ignore[override]  # read-only: the list is tuner.data's
        from tuner.data import FORMAT_CHOICES

        return tuple(FORMAT_CHOICES)


FORMAT_CHOICES = _FormatChoice()
"""The ``--format`` parameter type of every command that reads data."""

SEED = click.IntRange(0, 2**32 - 1)
"""The ``--seed`` parameter type: what NumPy and scikit-learn take as a seed (-1 reached
scikit-learn's splitter, whose error was reported as a split the data could not make)."""


@dataclass
class AppContext:
    """Options shared by every command."""

    quiet: bool = False


pass_app = click.make_pass_decorator(AppContext, ensure=True)


# ---- errors: the core speaks in parameter names, the command line in flags ---------------
_API_NAMES = {"data": "DATA", "penalty": "--penalty", "optimizer": "--optimizer", "params": "--param",
              "fmt": "--format", "format": "--format", "study_name": "--study", "trials": "--trials",
              "dataset": "--dataset", "target": "--target", "text_column": "--text-column", "encoding": "--encoding",
              "categorical_columns": "--categorical", "group_column": "--group-column",
              "n_features": "--n-features", "zero_based": "--zero-based/--one-based", "device": "--device"}
_PARAMETER = re.compile(r"\b[Tt]he '(\w+)' parameter(?: of \w+)?")
_PARAMS_KEY = re.compile(r"params\[(['\"])([\w.]+)\1\]")


# Parameters that a command has no option for, and how its user sets them instead ({study}: the
# study's name): a worker runs the stored study's budget, which `tuner tune --study` changes;
# predict reads LIBSVM rows as wide as the model. Also flags a command names otherwise.
_ELSEWHERE = {"worker": {"trials": "the budget with `tuner tune --study {study} --trials N`"},
              "predict": {"n_features": "the model's width", "zero_based": "--zero-based/--one-based"}}


def flags_in(message: str, command: click.Command | None, study: str | None = None) -> str:
    """``message`` with the API's parameter names (``the 'val_size' parameter``,
    ``params['optimizer.lr']``) replaced by the flags of ``command`` (``--val-size``,
    ``--param 'optimizer.lr'``), or where ``command`` has none, by how its user sets the value
    (``tuner worker`` has no ``--trials``: the budget is set by ``tuner tune --study STUDY``)."""
    flags = dict(_API_NAMES)
    for param in getattr(command, "params", []):
        if isinstance(param, click.Option) and param.name:
            flags[param.name] = max(param.opts, key=len)
        elif isinstance(param, click.Argument) and param.name:
            flags[param.name] = param.human_readable_name
    flags.update({"penalty_list": "--penalty", "optimizer_list": "--optimizer"})
    for name, how in _ELSEWHERE.get(getattr(command, "name", None) or "", {}).items():
        flags[name] = how.format(study=study or "NAME")

    def parameter(m: re.Match[str]) -> str:
        flag = flags.get(m.group(1))
        return flag if flag is not None else m.group(0)

    out = _PARAMETER.sub(parameter, message)
    return _PARAMS_KEY.sub(lambda m: f"--param '{m.group(2)}'", out)


class TunerGroup(click.Group):
    """A group that turns domain errors into one-line messages with exit code 1, in the
    command line's words (flags, not parameter names)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TunerError as exc:
            from tuner.study import redact

            name = ctx.invoked_subcommand
            command = self.get_command(ctx, name) if name else None
            raise click.ClickException(flags_in(redact(exc), command)) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            from tuner.study._storage import database_failure

            reason = database_failure(exc)
            if reason is None:  # a bug: its traceback is what a report needs
                raise
            raise click.ClickException(f"A database failed: {reason}.") from None


def check_output(path: str | None) -> None:
    """Refuse ``--output PATH`` whose folder does not exist, before any work is done (the write
    itself failed with a traceback, after the work)."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise click.ClickException(f"Cannot write {path}: the folder {os.path.dirname(path) or folder} does not "
                                   "exist; create it first, or give --output a path in an existing folder.")


def cannot_write(path: str, exc: OSError) -> click.ClickException:
    """The one line for an output file that could not be written."""
    return click.ClickException(f"Cannot write {path}: {exc.strerror or exc}; give --output a path this user can "
                                "write.")


def given_up_note(counts: Mapping[str, int]) -> str:
    """What follows a summary's count of failed trials when some of them never trained."""
    n = counts.get("given_up", 0)
    return f" ({n} of them given up before training: a budget or timeout ran out; not counted)" if n else ""


def echo_json(obj: Any) -> None:
    """``obj`` as JSON that strict parsers read (a NaN metric is ``null``)."""
    click.echo(dumps(obj, indent=2))


def parse_assignments(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``("penalty.strength=0.1", ...)`` -> ``[("penalty.strength", "0.1"), ...]``."""
    out: list[tuple[str, str]] = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE (for example penalty.strength=0.001)", param_hint="--param")
        key, value = key.strip(), value.strip()
        given = [v for k, v in out if k == key]
        if given:
            raise click.BadParameter(f"{key} is given twice ({given[0]} and {value}); give it once", param_hint="--param")
        out.append((key, value))
    return out


def _apply(f: Callable[..., Any], options: list[Callable[..., Any]]) -> Callable[..., Any]:
    for option in reversed(options):
        f = option(f)
    return f


def _column_list(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str] | None:
    """``--categorical c,a --categorical b`` -> ``["a", "b", "c"]`` (None when not given; the order
    of the names does not matter, as in the Python API's ``categorical_columns``)."""
    names = [name for value in values for name in _comma_separated(value)]
    if any(not name for name in names):
        raise click.BadParameter(f"an empty column name in {list(values)}", ctx=ctx, param=param)
    return sorted(set(names)) or None


def _comma_separated(value: str) -> list[str]:
    """Names separated by commas, each stripped of the spaces around it, as a CSV row: a name that
    holds a comma or spaces of its own is quoted (``'"size, cm",proto'``, ``'" city"'``), and
    ``""`` inside quotes is one ``"``."""
    quoted_or_bare = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^,"]*?))\s*(,|$)')
    names, at = [], 0
    while at <= len(value):
        match = quoted_or_bare.match(value, at)
        if match is None:
            raise click.BadParameter(f"cannot read {value!r} as names separated by commas: a quote must enclose a "
                                     'whole name (\'"size, cm",color\')')
        quoted, bare, comma = match.groups()
        names.append(quoted.replace('""', '"') if quoted is not None else bare)
        at = match.end() if comma else len(value) + 1
    return names


def data_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say where the data is and how to read and split it."""
    return _apply(f, [
        click.argument("data", required=False, type=click.Path(dir_okay=True)),
        click.option("--dataset", help="A bundled scikit-learn dataset: breast_cancer, digits, wine, iris."),
        click.option("--target", help="Label column of a CSV/TSV/Parquet file."),
        click.option("--text-column", help="Column holding text, turned into TF-IDF 1-2 grams."),
        click.option("--categorical", "categorical_columns", multiple=True, callback=_column_list, metavar="COLUMN",
                     help="A column of categories (strings or codes), one-hot encoded: one 0/1 feature per category "
                          "of the training rows. Repeat it, or give several separated by commas (quote a name "
                          "that holds one, or spaces at its ends: '\"size, cm\",color', '\" city\"')."),
        click.option("--group-column", metavar="COLUMN",
                     help="A column of row groups (a user, a patient, a sentence id): no feature; each group's rows "
                          "stay on one side of the validation/test splits and the --cv folds, so that the validation "
                          "score is one for unseen groups."),
        click.option("--header/--no-header", default=None,
                     help="Whether the first line of a CSV/TSV file names its columns; without one they are named "
                          "0, 1, ... by position (--target 41) [default: it does, and one of numbers only is refused "
                          "as a likely row of data; --header accepts it]."),
        click.option("--format", "fmt", default="auto", show_default=True, type=FORMAT_CHOICES,
                     help="Data format; auto tells it from the file name or content. Text formats may be "
                          "compressed (.gz, .bz2, .xz)."),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the data file(s)."),
        click.option("--n-features", type=click.IntRange(min=1),
                     help="Number of features of a LIBSVM file (needed when it is far wider than its values)."),
        click.option("--zero-based/--one-based", "zero_based", default=None,
                     help="Whether LIBSVM feature indices start at 0 or 1 [default: zero-based only when the training "
                          "file holds an index 0]; every later file is read the same way."),
        click.option("--val-size", default=0.2, show_default=True, type=float, help="Share of rows for validation."),
        click.option("--test-size", default=0.2, show_default=True, type=float, help="Share of rows for the test."),
        click.option("--test-file", type=click.Path(exists=True, dir_okay=True), help="A separate labelled test file."),
        click.option("--seed", default=_DEFAULT.seed, show_default=True, type=SEED,
                     help="Seed for splits, shuffling and search."),
    ])


def training_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The training options; their defaults are :class:`tuner.train.TrainConfig`'s."""
    return _apply(f, [
        click.option("--epochs", default=_DEFAULT.epochs, show_default=True, type=int, help="Maximum number of epochs."),
        click.option("--batch-size", type=click.IntRange(min=1), default=_DEFAULT.batch_size,
                     help="Mini-batch size (SGD-like optimizers) [default: scaled with the data: 256 rows on a CPU, "
                          "4096 on a GPU; fewer on small data, for at least 32 steps an epoch; more on data of "
                          "over 65,536 rows on a CPU, for at most 256 steps an epoch]."),
        click.option("--patience", default=_DEFAULT.patience, show_default=True, type=int,
                     help="Epochs without improvement before stopping."),
        click.option("--tol", default=_DEFAULT.tol, show_default=True, type=float, help="Relative improvement that counts."),
        click.option("--monitor", default=_DEFAULT.monitor, show_default=True, type=click.Choice(["objective", "val"]),
                     help="Stop when the training objective converges, or on the validation loss (best epoch kept)."),
        click.option("--class-weight", type=click.Choice(["balanced"]), default=_DEFAULT.class_weight,
                     help="Reweight classes inversely to their frequency."),
        click.option("--device", default=_DEFAULT.device, show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--dtype", default=_DEFAULT.dtype, show_default=True, type=click.Choice(["float32", "float64"]),
                     help="Floating-point precision of the weights and features during training."),
    ])


_DATA_KEYS = ("data", "dataset", "target", "text_column", "categorical_columns", "header", "group_column", "fmt",
              "encoding", "n_features", "zero_based", "val_size", "test_size", "test_file", "seed")
_TRAIN_KEYS = ("epochs", "batch_size", "patience", "tol", "monitor", "class_weight", "device", "dtype")


def data_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """The data options among a command's parameters, as ``tuner.fit``/``tuner.tune`` keywords;
    ``--test-size`` left at its default is not given (a test file then replaces the share)."""
    out = {k: values[k] for k in _DATA_KEYS}
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.get_parameter_source("test_size") in (
            None, click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP):
        out["test_size"] = None
    return out


def training_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """The training options among a command's parameters, as ``tuner.fit``/``tuner.tune`` keywords."""
    return {k: values[k] for k in _TRAIN_KEYS}


def storage_option(required: bool = False, help: str | None = None) -> Callable[..., Any]:
    """``--storage`` (env ``TUNER_STORAGE``): the study database, declared once for every command."""
    text = help or ("SQLAlchemy URL of the study database [env TUNER_STORAGE; default "
                    "sqlite:///tuner-studies.db].")
    return click.option("--storage", envvar="TUNER_STORAGE", required=required, help=text)


def tracking_uri_option(help: str | None = None) -> Callable[..., Any]:
    """``--tracking-uri`` (env ``MLFLOW_TRACKING_URI``): the MLflow store."""
    text = help or "MLflow tracking URI [env MLFLOW_TRACKING_URI; default sqlite:///mlflow.db]."
    return click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help=text)


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(AppContext).quiet = True


quiet_option = click.option("--quiet", "-q", is_flag=True, expose_value=False, is_eager=True, callback=_set_quiet,
                            help="Print less (as `tuner -q COMMAND`).")


def quiet_everywhere(group: click.Group) -> None:
    """Give every command under ``group`` (groups included) ``-q/--quiet``, as ``tuner -q`` has."""
    for command in group.commands.values():
        if not any("--quiet" in p.opts for p in command.params):
            quiet_option(command)
        if isinstance(command, click.Group):
            quiet_everywhere(command)


class _BatchTrials(click.ParamType):
    """``--batch-trials``: a positive integer or ``auto``."""

    name = "K|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":  # the help shows it as AUTO
            return "auto"
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
