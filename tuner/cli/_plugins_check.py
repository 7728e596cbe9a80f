"""``tuner plugins check NAME``: run the contract checks of tuner.testing on an installed plugin."""

from __future__ import annotations

import click

from tuner.cli._options import SEED, echo_json


@click.command("check")
@click.argument("name")
@click.option("--group", type=click.Choice(["penalty", "optimizer"]),
              help="Check only the plugin of this group (default: every group that has NAME).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the random weights and toy problem.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_check(name: str, group: str | None, seed: int, as_json: bool) -> None:
    """Run the plugin contract checks (tuner.testing) on the installed plugin NAME.

    Prints each check with PASS, FAIL or SKIP and the reason; exits with status 1 when a
    check fails. A penalty and an optimizer of the same name are both checked unless
    --group chooses one.
    """
    from tuner.testing import run_installed_checks

    reports = run_installed_checks(name, group, seed=seed)  # PluginError (unknown name) -> ClickException
    ok = all(r.ok for r in reports)
    if as_json:
        echo_json({"name": name, "ok": ok, "plugins": [r.to_dict() for r in reports]})
    else:
        for report in reports:
            click.secho(f"{report.group} {report.name!r} ({report.value}, {report.distribution} {report.version}):",
                        bold=True)
            width = max(len(r.check) for r in report.results)
            for result in report.results:
                label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[result.status]
                color = {"pass": "green", "fail": "red", "skip": "yellow"}[result.status]
                click.echo("  " + click.style(label, fg=color) + f"  {result.check:<{width}}  {result.reason}")
            counts = {s: sum(r.status == s for r in report.results) for s in ("pass", "fail", "skip")}
            n = len(report.results)
            click.echo(f"  {n} check{'' if n == 1 else 's'}: {counts['pass']} passed, {counts['fail']} failed, "
                       f"{counts['skip']} skipped")
    if not ok:
        click.get_current_context().exit(1)
