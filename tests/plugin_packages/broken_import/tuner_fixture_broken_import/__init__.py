"""Fails at import: it needs a dependency that is not installed."""

import tuner_fixture_missing_dependency  # noqa: F401  (does not exist)

from tuner import Penalty


class ImportBrokenPenalty(Penalty):
    name = "broken_import"
    description = "Never loads."
