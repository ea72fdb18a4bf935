"""Option checks shared by the time-series readers and features (checked before any data is read)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pmed.errors import OptionError

__all__ = ["TimeseriesOptionError", "check_choice", "check_window", "check_positive", "short"]


class TimeseriesOptionError(OptionError, ValueError):
    """An option of :mod:`pmed.timeseries` outside its allowed set or range.

    Also a :class:`ValueError`, as these functions raised before they became pmed errors, so
    callers that catch ``ValueError`` keep working.
    """


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else :class:`TimeseriesOptionError`."""
    if not isinstance(value, str) or value not in choices:
        raise TimeseriesOptionError(f"{name}={short(value)}: not one of {', '.join(choices)}",
                                    where=f"option {name}",
                                    fix=f"use {name}=" + " or ".join(repr(c) for c in choices))
    return value


def check_window(start: float | None, end: float | None, *, what: str = "the window") -> None:
    """``start`` and ``end`` (hours, either may be None) finite and with ``end > start``."""
    for n, v in (("start", start), ("end", end)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise TimeseriesOptionError(f"{n}={short(v)} is not a finite number of hours",
                                        where=f"option {n}", fix=f"give {what} as numbers of hours")
    if start is not None and end is not None and not end > start:
        raise TimeseriesOptionError(f"{what} must have end > start (got start={start:g}, end={end:g})",
                                    where="options start, end", fix="make end later than start")


def check_positive(name: str, value: float) -> float:
    """``value`` if it is a finite number > 0, else :class:`TimeseriesOptionError`."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise TimeseriesOptionError(f"{name}={short(value)} must be a positive number",
                                    where=f"option {name}", fix=f"give {name} > 0")
    return value


def short(value: object, limit: int = 24) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a message never echoes a long cell."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
