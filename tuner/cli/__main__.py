"""``python -m tuner.cli``: the same as the ``tuner`` command."""

from tuner.cli._main import main

main()
