"""Option checks shared by the time-series readers and features (checked before any data is read)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pmed.errors import OptionError, PmedWarning

__all__ = ["TimeseriesOptionError", "TimeseriesWarning", "check_choice", "check_window", "check_positive", "check_flag",
           "short", "short_list"]


class TimeseriesOptionError(OptionError, ValueError):
    """An option of :mod:`pmed.timeseries` outside its allowed set or range.

    Also a :class:`ValueError`, as these functions raised before they became pmed errors, so
    callers that catch ``ValueError`` keep working.
    """


class TimeseriesWarning(PmedWarning):
    """Data that were read but lower the trust in the features: measurements at the same time,
    patients with no measurement in the window. The message gives counts and lines, never IDs."""


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


def check_positive(name: str, value: float, *, at_most: float | None = None) -> float:
    """``value`` if it is a finite number > 0 (and ``<= at_most``), else :class:`TimeseriesOptionError`."""
    if (isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0)
            or (at_most is not None and value > at_most)):
        upto = "" if at_most is None else f" and at most {at_most:g}"
        raise TimeseriesOptionError(f"{name}={short(value)} must be a number above 0{upto}",
                                    where=f"option {name}", fix=f"give {name} > 0{upto}")
    return value


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool, else :class:`TimeseriesOptionError` (``"no"`` is truthy in Python)."""
    if not isinstance(value, bool):
        raise TimeseriesOptionError(f"{name}={short(value)} must be True or False", where=f"option {name}",
                                    fix=f"pass {name}=True or {name}=False")
    return value


def short(value: object, limit: int = 42) -> str:
    """``repr(value)`` cut to ``limit`` characters (about 40 of the value), so that a message never
    echoes a long cell."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_list(values, limit: int = 6) -> str:
    """The first ``limit`` values, each cut by :func:`short`, and how many there are in all: a
    header of 10,000 columns, or of 20 columns of 10,000 characters, stays one short line."""
    values = list(values)
    shown = ", ".join(short(str(v), 26) for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")
