"""The built-in penalties and optimizers of logreg-tuner.

Installed as ``logreg_tuner_plugins`` and registered through the same entry-point groups a
third-party package uses (see ``pyproject.toml``); nothing in ``tuner`` imports this package.
"""
