"""``tuner plugins check NAME``: run the contract checks of tuner.testing on an installed plugin."""

from __future__ import annotations

import click


@click.command("check")
@click.argument("name")
def plugins_check(name: str) -> None:
    """Run the plugin contract checks (tuner.testing) on the plugin NAME."""
    raise click.ClickException("not implemented yet")
