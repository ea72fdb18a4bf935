"""Option helpers that turn bad values into usage errors (exit 2) while the command line is parsed.

They work with every typer the project supports — the older ones built on ``click`` and the
newer ones that vendor it as ``typer._click`` — because they only use what both
offer: a parameter ``callback`` that raises :class:`typer.BadParameter`. Values stay plain
``str``/numbers, so the command bodies and the API see exactly what they saw before.

``choice`` is used instead of an ``Enum`` annotation because typer hands an ``Enum`` member to
the command body, and such members leak into provenance, YAML and messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

__all__ = ["choice", "bounded", "finite", "table_out", "SEED_MAX"]

#: Largest seed every random generator pmed drives accepts (NumPy's legacy and scikit-learn's).
SEED_MAX = 2**32 - 1

_SHOWN = 40  # characters of a bad value echoed back: enough to spot a typo, never a long value


def _shown(value: object) -> str:
    s = str(value)
    return repr(s if len(s) <= _SHOWN else s[:_SHOWN] + "…")


def _each(value: Any) -> Sequence[Any]:
    """The values of a repeatable option, or the one value of a plain one."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def choice(*values: str, case_sensitive: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``typer.Option``/``typer.Argument`` for a fixed set of values.

    ``typer.Option(help=..., **choice("mean", "file", "none"))`` shows ``[mean|file|none]`` in
    ``--help`` and refuses any other value with a usage error naming the option, before the
    command reads any data. A value matching a choice in another case (``gt`` for ``GT``) is
    accepted and passed on in the spelling given here.

    Parameters
    ----------
    *values : str
        The accepted values, in the order ``--help`` lists them.
    case_sensitive : bool
        Whether ``gt`` differs from ``GT``.

    Returns
    -------
    dict
        ``callback`` (which also carries the values as its ``choices`` attribute) and
        ``metavar``.
    """
    if not values:
        raise ValueError("choice() needs at least one value")  # a programming error, not a user's
    key = (lambda s: s) if case_sensitive else str.casefold
    canonical = {key(v): v for v in values}

    def check(value: Any) -> Any:
        if value is None:
            return None
        out = []
        for v in _each(value):
            hit = canonical.get(key(str(v)))
            if hit is None:
                raise typer.BadParameter(
                    f"{_shown(v)} is not one of {', '.join(map(repr, values))}.")
            out.append(hit)
        return out if isinstance(value, (list, tuple)) else out[0]

    check.choices = tuple(values)  # type: ignore[attr-defined]  # read by tests/test_cli_usage.py
    return {"callback": check, "metavar": "[" + "|".join(values) + "]"}


def finite(check: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
    """A ``callback`` refusing ``nan``/``inf`` (they parse as floats and slip past typer's
    ``min=``/``max=``), then applying ``check`` (such as :func:`bounded`)."""
    import math

    def callback(value: Any) -> Any:
        if value is not None and not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number.")
        return check(value) if check is not None else value

    return callback


def bounded(*, gt: float | None = None, lt: float | None = None) -> Callable[[Any], Any]:
    """A ``callback`` for numbers that must lie strictly above ``gt`` and/or below ``lt``.

    Closed ranges (``>= 1``) use typer's own ``min=``/``max=``; this is for open ones such as a
    learning rate ``> 0`` or a probability threshold in ``(0, 1)``, which typer cannot express.

    Parameters
    ----------
    gt, lt : float, optional
        Exclusive lower and upper bounds.

    Returns
    -------
    callable
        The callback (carrying ``bounds = (gt, lt)`` for tests).
    """
    def check(value: Any) -> Any:
        if value is None:
            return None
        for v in _each(value):
            if (gt is not None and not v > gt) or (lt is not None and not v < lt):
                want = " and ".join(s for s in (f"> {gt:g}" if gt is not None else "",
                                                f"< {lt:g}" if lt is not None else "") if s)
                raise typer.BadParameter(f"{v} must be {want}.")
        return value

    check.bounds = (gt, lt)  # type: ignore[attr-defined]
    return check


def table_out() -> Callable[[Any], Any]:
    """A ``callback`` for an output table path: its extension must be one pmed writes.

    ``--out f.xlsx`` would otherwise get CSV text under an Excel name, and only after all the
    work; this refuses it (and a name without extension) while the command line is parsed,
    naming the extensions :func:`pmed.io.write_table` writes.

    Returns
    -------
    callable
        The callback (carrying ``suffixes``, the accepted extensions, for tests).
    """
    from pmed.io.tables import TABLE_SUFFIXES, check_table_suffix

    def check(value: Any) -> Any:
        if value is None:
            return None
        for v in _each(value):
            try:
                check_table_suffix(v)
            except ValueError as e:  # OptionError: its message and fix, as one usage error
                raise typer.BadParameter(f"{e.message}; {e.fix}.") from None  # type: ignore[attr-defined]
        return value

    check.suffixes = tuple(TABLE_SUFFIXES)  # type: ignore[attr-defined]
    return check
