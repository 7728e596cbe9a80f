"""The variant string: one trial's penalty and optimizer as ``"penalty:optimizer"``.

The one owner of that format: a study stores the pair as one categorical parameter named
:data:`VARIANT` (so the sampler picks a compatible pair, then the pair's own hyperparameters);
everything that reads or writes the string goes through :func:`split_variant` /
:func:`join_variant`.
"""

from __future__ import annotations

from tuner.errors import ConfigError

__all__ = ["VARIANT", "SEPARATOR", "split_variant", "join_variant"]

VARIANT = "variant"
"""The name of the trial parameter holding the variant string."""

SEPARATOR = ":"


def join_variant(penalty: str, optimizer: str) -> str:
    """``("l2", "fista")`` -> ``"l2:fista"``; a plugin name holding the separator is refused."""
    for kind, name in (("penalty", penalty), ("optimizer", optimizer)):
        if not isinstance(name, str) or not name or SEPARATOR in name:
            raise ConfigError(f"The {kind} name of a variant must be a non-empty plugin name without "
                              f"{SEPARATOR!r}; got {name!r} instead.")
    return f"{penalty}{SEPARATOR}{optimizer}"


def split_variant(variant: str) -> tuple[str, str]:
    """``"l2:fista"`` -> ``("l2", "fista")``: the penalty and optimizer plugin names."""
    penalty, sep, optimizer = variant.partition(SEPARATOR) if isinstance(variant, str) else ("", "", "")
    if not sep or not penalty or not optimizer or SEPARATOR in optimizer:
        raise ConfigError(f"A variant is 'PENALTY{SEPARATOR}OPTIMIZER' (two plugin names, e.g. "
                          f"'l2{SEPARATOR}lbfgs'); got {variant!r} instead.")
    return penalty, optimizer
