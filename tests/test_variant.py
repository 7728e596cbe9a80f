"""The variant string ("penalty:optimizer"): one owner, round trips, errors that show a valid one."""

from __future__ import annotations

import pytest

from tuner.errors import ConfigError
from tuner.study import VARIANT, join_variant, split_variant


def test_join_and_split_round_trip() -> None:
    assert join_variant("l2", "fista") == "l2:fista"
    assert split_variant("elasticnet:adam") == ("elasticnet", "adam")
    assert split_variant(join_variant("my-pen", "my_opt")) == ("my-pen", "my_opt")
    assert VARIANT == "variant"


@pytest.mark.parametrize("bad", ["l2", "l2:", ":fista", "l2:fista:x", "", None])
def test_a_malformed_variant_says_what_a_valid_one_looks_like(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"PENALTY:OPTIMIZER.*'l2:lbfgs'.*got"):
        split_variant(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("penalty,optimizer", [("l2", ""), ("", "sgd"), ("a:b", "sgd"), ("l2", "x:y")])
def test_joining_refuses_names_that_would_not_split_back(penalty: str, optimizer: str) -> None:
    with pytest.raises(ConfigError, match="plugin name without ':'"):
        join_variant(penalty, optimizer)
