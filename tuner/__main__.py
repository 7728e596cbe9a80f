"""``python -m tuner``: the same as the ``tuner`` command (and ``python -m tuner.cli``)."""

from tuner.cli._main import main

main()
