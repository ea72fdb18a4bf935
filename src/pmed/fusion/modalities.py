"""Which columns belong to which modality, and which patients have each modality."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

import pandas as pd

from pmed.errors import OptionError

__all__ = ["resolve_modalities", "availability"]


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def resolve_modalities(
    spec: Mapping[str, Sequence[str]], columns: Sequence[str]
) -> dict[str, list[str]]:
    """Expand each modality's column names and glob patterns against the columns of a table.

    Parameters
    ----------
    spec
        Modality name → column names and :mod:`fnmatch` patterns (``"*_mut"``, ``"wear_*"``).
        A single string is read as one name or pattern.
    columns
        The columns of the table, in order.

    Returns
    -------
    dict of str to list of str
        Modality → its columns, in the order of ``columns`` (modalities in the order of ``spec``).

    Raises
    ------
    OptionError
        When ``spec`` is empty, a modality matches no column, or a column falls in two
        modalities.
    """
    if not spec:
        raise OptionError("no modalities given", fix="give at least one {name: [columns]} entry")
    columns = list(columns)
    owner: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for name, patterns in spec.items():
        pats = [patterns] if isinstance(patterns, str) else [str(p) for p in patterns]
        # fnmatchcase: column names are case-sensitive everywhere else in pmed
        matched = [c for c in columns
                   if any(fnmatch.fnmatchcase(str(c), p) if _is_pattern(p) else str(c) == p
                          for p in pats)]
        if not matched:
            shown = ", ".join(repr(p) for p in pats) or "(none)"
            raise OptionError(f"modality {name!r} matches no column",
                              where=f"modality {name!r}: {shown}",
                              fix="check the column names and patterns against the table's columns")
        for c in matched:
            if c in owner:
                raise OptionError(f"column {c!r} is in two modalities, {owner[c]!r} and {name!r}",
                                  where=f"modalities {owner[c]!r} and {name!r}",
                                  fix="make each column belong to one modality only "
                                      "(narrow a glob pattern)")
            owner[c] = str(name)
        out[str(name)] = matched
    return out


def availability(X: pd.DataFrame, modalities: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Which patients have which modality.

    Parameters
    ----------
    X
        Patients × features.
    modalities
        Modality name → its columns (already resolved, see :func:`resolve_modalities`).

    Returns
    -------
    pandas.DataFrame
        Boolean, patients (index of ``X``) × modalities: a modality is available for a patient
        when at least one of its columns is not missing.

    Raises
    ------
    OptionError
        When a modality names a column ``X`` does not have.
    """
    out = {}
    for name, cols in modalities.items():
        cols = list(cols)
        absent = [c for c in cols if c not in X.columns]
        if absent:
            raise OptionError(f"modality {name!r} needs {len(absent)} column(s) the table lacks: "
                              f"{', '.join(repr(c) for c in absent[:8])}",
                              where=f"modality {name!r}",
                              fix="pass the table the modality was defined on")
        out[name] = X[cols].notna().any(axis=1).to_numpy() if cols else [False] * len(X)
    return pd.DataFrame(out, index=X.index, columns=list(modalities), dtype=bool)
