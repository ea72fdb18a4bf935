"""Deprecated keyword names of the omics API, kept working with a warning."""

from __future__ import annotations

import warnings

from pmed.errors import OptionError, PmedWarning

__all__ = ["resolve_seed"]


def resolve_seed(seed: int, random_state: int | None, func: str) -> int:
    """The seed to use when ``random_state`` (the old name) may have been passed instead.

    Raises
    ------
    OptionError
        When both are given with different values.
    """
    if random_state is None:
        return int(seed)
    if seed not in (0, random_state):
        raise OptionError(f"{func}() got seed={seed} and random_state={random_state}",
                          fix="pass seed= only (random_state= is its old name)")
    warnings.warn(f"{func}(random_state=...) is deprecated; pass seed= instead", PmedWarning,
                  stacklevel=3)
    return int(random_state)
