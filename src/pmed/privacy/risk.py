"""Re-identification risk of a table: k-anonymity, l-diversity, and enforcing them.

An **equivalence class** is a set of records sharing one combination of quasi-identifier values
(age, sex, ZIP … — what an attacker may know from elsewhere). A missing value counts as a value
of its own. A table is *k-anonymous* when every class holds at least k records, and
*l-diverse* (distinct l-diversity) when every class holds at least l distinct values of the
sensitive column (a missing sensitive value counts as one value).

:func:`enforce_k_anonymity` makes a table satisfy both by full-domain generalization, one level
at a time on the quasi-identifier with the most distinct values (the Datafly heuristic, Sweeney
2002), until the records still in too-small (or too-uniform) classes are at most
``max_suppression`` of the table; those records are then suppressed (removed). Hierarchies:

===========  ==========================================================================
age          exact → 5-year bands → 10-year → 20-year → ``*`` (90 and over stay ``90+``)
date         exact → month → year → ``*``
postal code  exact → one character fewer per level (``02134`` → ``0213*`` …); UK postcodes →
             outward code → area letters → ``*``
ICD-10-like  exact → 3 characters → first letter (close to the chapter) → ``*``
numeric      exact → deciles → quintiles → halves (bands as ``[low, high]``) → ``*``
categorical  exact → categories with fewer than k records as ``other`` → ``*``
===========  ==========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import NotFoundError, OptionError, shorten

__all__ = ["check_risk", "enforce_k_anonymity", "equivalence_classes", "Hierarchy", "hierarchy_for",
           "MISSING_VALUE"]

#: How a missing quasi-identifier value is grouped (its own value).
MISSING_VALUE = "\x00<missing>"
_ICD10 = re.compile(r"(?i)[A-Z]\d{2}(?:\.?[0-9A-Z]{0,4})?")
_LEADING_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)")
_UK_POSTCODE = re.compile(r"(?i)([A-Z]{1,2})(\d[A-Z\d]?)\s*(\d[A-Z]{2})?")


def _names(columns, limit: int = 30) -> str:
    cols = [shorten(str(c)) for c in columns]
    return ", ".join(cols[:limit]) + (f", … ({len(cols)} in all)" if len(cols) > limit else "")


def _check(df: pd.DataFrame, quasi: list[str], k: int, l: int | None, sensitive: str | None,  # noqa: E741
           source: str | None = None) -> None:
    if not quasi:
        raise OptionError("no quasi-identifiers named", fix="name them, e.g. --quasi age,sex,zip")
    missing = [q for q in quasi if q not in df.columns]
    if missing:
        raise NotFoundError(f"quasi-identifier{'s' if len(missing) > 1 else ''} {_names(missing)} not in the table; "
                            f"it has: {_names(df.columns)}", file=source,
                            fix="name columns as in the table's header (--quasi)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise OptionError(f"k must be a whole number of at least 1, not {shorten(k)}", fix="give --k 2 or more")
    if k > len(df):
        raise OptionError(f"k = {k} is larger than the table ({len(df)} records): no class can hold k records",
                          file=source, fix=f"give --k {len(df)} or less")
    if l is not None:
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or l < 1:
            raise OptionError(f"l must be a whole number of at least 1, not {shorten(l)}", fix="give --l 2 or more")
        if sensitive is None:
            raise OptionError("l-diversity needs the sensitive column", fix="name it with --sensitive")
    if sensitive is not None:
        if sensitive not in df.columns:
            raise NotFoundError(f"sensitive column {shorten(sensitive)} not in the table; it has: {_names(df.columns)}",
                                file=source, fix="name it as in the table's header (--sensitive)")
        if sensitive in quasi:
            raise OptionError(f"column {shorten(sensitive)} is both a quasi-identifier and the sensitive column",
                              fix="name it in only one of --quasi and --sensitive")


def _as_key(s: pd.Series) -> pd.Series:
    """A column as grouping text, missing values as :data:`MISSING_VALUE`."""
    return s.astype(object).where(s.notna(), MISSING_VALUE).astype(str)


def equivalence_classes(df: pd.DataFrame, quasi: list[str], sensitive: str | None = None) -> pd.DataFrame:
    """Each record's equivalence class over ``quasi`` (missing values are a value).

    Parameters
    ----------
    df
        The table.
    quasi
        The quasi-identifier columns.
    sensitive
        With it, also the number of distinct sensitive values in each record's class.

    Returns
    -------
    pandas.DataFrame
        Same index as ``df``: ``class_id``, ``class_size`` and, with ``sensitive``,
        ``class_distinct_sensitive``.
    """
    keys = pd.DataFrame({i: _as_key(df[q]) for i, q in enumerate(quasi)}, index=df.index)
    cid = keys.groupby(list(keys.columns), sort=False).ngroup()
    out = pd.DataFrame({"class_id": cid}, index=df.index)
    out["class_size"] = cid.map(cid.value_counts()).astype(int)
    if sensitive is not None:
        sens = _as_key(df[sensitive])
        distinct = sens.groupby(cid).nunique()
        out["class_distinct_sensitive"] = cid.map(distinct).astype(int)
    return out


def check_risk(
    data: pd.DataFrame,
    quasi: str | list[str],
    *,
    k: int,
    l: int | None = None,  # noqa: E741 - the measure's name
    sensitive: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """k-anonymity (and l-diversity) of a table over a quasi-identifier combination.

    Parameters
    ----------
    data
        The table.
    quasi
        Quasi-identifier columns (a list, or one comma-separated string).
    k
        The k to check (1 … number of records).
    l
        The l to check (needs ``sensitive``).
    sensitive
        The sensitive column.
    source
        The table's file, for messages.

    Returns
    -------
    dict
        ``n_records``, ``n_classes``, ``k``, ``k_min`` (smallest class), ``n_classes_below_k``,
        ``n_records_below_k``, ``n_unique_records`` (in classes of one), ``records_at_risk_share``
        (records in classes that break k, or l when given), ``prosecutor_risk_max`` (1 / k_min)
        and ``prosecutor_risk_mean`` (classes / records); with ``l``: ``l``, ``l_min`` (distinct
        sensitive values in the poorest class), ``n_classes_below_l``, ``n_records_below_l``.
        Counts only: never a value of the table.

    Raises
    ------
    NotFoundError
        A quasi-identifier or the sensitive column is not in the table (the columns are listed).
    OptionError
        ``k < 1``, ``k`` larger than the table, ``l < 1``, ``l`` without ``sensitive``.
    """
    from pmed.privacy.deid import split_columns

    quasi = split_columns(quasi)
    _check(data, quasi, k, l, sensitive, source)
    cls = equivalence_classes(data, quasi, sensitive)
    per_class = cls.groupby("class_id").first()
    n = len(data)
    below_k = cls["class_size"] < k
    out: dict[str, Any] = {
        "quasi": list(quasi), "n_records": int(n), "n_classes": int(len(per_class)), "k": int(k),
        "k_min": int(per_class["class_size"].min()),
        "n_classes_below_k": int((per_class["class_size"] < k).sum()),
        "n_records_below_k": int(below_k.sum()),
        "n_unique_records": int((cls["class_size"] == 1).sum()),
        "prosecutor_risk_max": float(1 / per_class["class_size"].min()),
        "prosecutor_risk_mean": float(len(per_class) / n),
        "k_anonymous": bool(not below_k.any()),
    }
    at_risk = below_k
    if l is not None and sensitive is not None:
        below_l = cls["class_distinct_sensitive"] < l
        out.update({"sensitive": sensitive, "l": int(l), "l_min": int(per_class["class_distinct_sensitive"].min()),
                    "n_classes_below_l": int((per_class["class_distinct_sensitive"] < l).sum()),
                    "n_records_below_l": int(below_l.sum()), "l_diverse": bool(not below_l.any())})
        at_risk = below_k | below_l
    elif sensitive is not None:
        out.update({"sensitive": sensitive, "l_min": int(per_class["class_distinct_sensitive"].min())})
    out["records_at_risk_share"] = float(at_risk.mean())
    return out


# -- generalization hierarchies --------------------------------------------------------------


@dataclass
class Hierarchy:
    """How one quasi-identifier is generalized: ``levels`` names each level (level 0 is the value
    as it is; the last is ``*``, the column suppressed); ``apply(series, level)`` generalizes."""

    column: str
    kind: str
    levels: list[str]
    apply: Callable[[pd.Series, int], pd.Series]

    @property
    def max_level(self) -> int:
        return len(self.levels) - 1


def _numbers(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype(float)
    text = s.astype(object).where(s.isna(), s.astype(str))
    return pd.to_numeric(text.str.extract(_LEADING_NUMBER, expand=False), errors="coerce").astype(float)


def _star(s: pd.Series) -> pd.Series:
    return pd.Series("*", index=s.index, dtype=object).where(s.notna(), None)


def _age_levels(s: pd.Series, level: int) -> pd.Series:
    if level == 0:
        return s
    if level >= 4:
        return _star(s)
    width = (5, 10, 20)[level - 1]
    num = _numbers(s)
    lo = np.floor(num / width) * width
    out = pd.Series(None, index=s.index, dtype=object)
    ok = num.notna()
    out[ok] = [f"{int(a)}-{int(a) + width - 1}" for a in lo[ok]]
    out[ok & (num >= 90)] = "90+"
    out[ok & (lo + width > 90) & (num < 90)] = [f"{int(a)}-89" for a in lo[ok & (lo + width > 90) & (num < 90)]]
    out[s.notna() & ~ok] = "*"
    return out


def _date_levels(s: pd.Series, level: int) -> pd.Series:
    if level == 0:
        return s
    if level >= 3:
        return _star(s)
    from pmed.privacy.deid import _parse_dates

    parsed = _parse_dates(s)
    fmt = "%Y-%m" if level == 1 else "%Y"
    out = parsed.dt.strftime(fmt).astype(object).where(parsed.notna(), None)
    out[s.notna() & parsed.isna()] = "*"
    return out


def _postal_one(value: object, level: int) -> str:
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer()):
        text = str(int(value)).zfill(5)
    else:
        text = str(value).strip().upper()
    m = _UK_POSTCODE.fullmatch(text)
    if m and not text.isdigit():
        steps = [text, m.group(1) + m.group(2), m.group(1), "*"]
        return steps[min(level, 3)]
    compact = text.replace(" ", "")
    keep = len(compact) - level
    return compact[:keep] + "*" * min(level, len(compact)) if keep > 0 else "*"


def _postal_levels(s: pd.Series, level: int) -> pd.Series:
    if level == 0:
        return s
    return s.map(lambda v: _postal_one(v, level), na_action="ignore").astype(object)


def _code_levels(s: pd.Series, level: int) -> pd.Series:
    if level == 0:
        return s
    if level >= 3:
        return _star(s)
    text = s.astype(object).where(s.isna(), s.astype(str).str.strip().str.upper().str.replace(".", "", regex=False))
    return text.str[:3 if level == 1 else 1].astype(object).where(s.notna(), None)


def _numeric_levels(s: pd.Series, level: int) -> pd.Series:
    if level == 0:
        return s
    if level >= 4:
        return _star(s)
    q = (10, 5, 2)[level - 1]
    num = _numbers(s)
    out = pd.Series(None, index=s.index, dtype=object)
    ok = num.notna()
    if ok.any():
        edges = np.unique(np.quantile(num[ok], np.linspace(0, 1, q + 1)))
        if len(edges) < 2:
            out[ok] = f"[{edges[0]:g}, {edges[0]:g}]"
        else:
            idx = np.clip(np.searchsorted(edges, num[ok], side="right") - 1, 0, len(edges) - 2)
            out[ok] = [f"[{edges[i]:g}, {edges[i + 1]:g}]" for i in idx]
    out[s.notna() & ~ok] = "*"
    return out


def _category_levels(k: int) -> Callable[[pd.Series, int], pd.Series]:
    def apply(s: pd.Series, level: int) -> pd.Series:
        if level == 0:
            return s
        if level >= 2:
            return _star(s)
        counts = s.value_counts()
        rare = s.isin(counts.index[counts < k])
        return s.astype(object).where(~rare, "other")

    return apply


def hierarchy_for(name: str, s: pd.Series, *, k: int) -> Hierarchy:
    """The generalization hierarchy of a quasi-identifier, chosen from its name and values.

    Parameters
    ----------
    name
        The column's name (``age``, ``zip`` … choose their hierarchies).
    s
        The column.
    k
        The k being enforced (rare categories are those with fewer than k records).

    Returns
    -------
    Hierarchy
    """
    from pmed.privacy.identifiers import _AGE_NAME, _POSTAL_NAME, date_share, normalize_name

    norm = normalize_name(name)
    vals = s.dropna()
    text = vals.astype(str).str.strip()
    if _AGE_NAME.match(norm):
        return Hierarchy(name, "age", ["exact", "5-year bands", "10-year bands", "20-year bands", "*"], _age_levels)
    if _POSTAL_NAME.search(norm):
        return Hierarchy(name, "postal", ["exact", "1 character fewer", "2 characters fewer", "3 characters fewer",
                                          "4 characters fewer", "*"], _postal_levels)
    if pd.api.types.is_datetime64_any_dtype(s) or (len(text) and date_share(text) >= 0.9):
        return Hierarchy(name, "date", ["exact", "month", "year", "*"], _date_levels)
    if len(text) and pd.to_numeric(text, errors="coerce").notna().all() and text.nunique() > 10:
        return Hierarchy(name, "numeric", ["exact", "deciles", "quintiles", "halves", "*"], _numeric_levels)
    if len(text) and text.str.fullmatch(_ICD10).mean() >= 0.8:
        return Hierarchy(name, "code", ["exact", "3 characters", "first letter", "*"], _code_levels)
    return Hierarchy(name, "category", ["exact", f"categories with < {k} records as 'other'", "*"],
                     _category_levels(k))


def enforce_k_anonymity(
    data: pd.DataFrame,
    quasi: str | list[str],
    *,
    k: int,
    l: int | None = None,  # noqa: E741 - the measure's name
    sensitive: str | None = None,
    max_suppression: float = 0.05,
    source: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Generalize, then suppress, until every class holds k records (and l sensitive values).

    Parameters
    ----------
    data
        The table (not modified).
    quasi
        Quasi-identifier columns.
    k, l, sensitive
        As :func:`check_risk`.
    max_suppression
        Generalization goes on while more than this share of records would have to be suppressed
        (0 … 1; at the hierarchies' tops the rest is suppressed whatever the share).
    source
        The table's file, for messages.

    Returns
    -------
    tuple
        (released table — the records kept, quasi-identifiers generalized — and what was lost:
        ``records_suppressed``, ``suppressed_share``, per column its ``level``, ``level_name``,
        ``distinct_before``/``after`` and ``distinct_lost_share``, ``precision_loss`` (mean over
        the columns of level / top level, Sweeney's Prec loss), ``distinct_values_lost_share``
        (mean over the columns), ``iterations``).

    Raises
    ------
    OptionError
        As :func:`check_risk`; ``max_suppression`` outside 0 … 1; an ``l`` larger than the number
        of distinct sensitive values in the whole table (no generalization can reach it).
    """
    released, info, _ = _enforce(data, quasi, k=k, l=l, sensitive=sensitive, max_suppression=max_suppression,
                                 source=source)
    return released, info


def _enforce(data: pd.DataFrame, quasi: str | list[str], *, k: int, l: int | None, sensitive: str | None,  # noqa: E741
             max_suppression: float, source: str | None) -> tuple[pd.DataFrame, dict[str, Any], np.ndarray]:
    """:func:`enforce_k_anonymity`, also returning which input rows were kept."""
    from pmed.privacy.deid import split_columns

    quasi = split_columns(quasi)
    _check(data, quasi, k, l, sensitive, source)
    if not 0 <= max_suppression <= 1:
        raise OptionError(f"max_suppression must lie in 0 … 1, not {max_suppression:g}",
                          fix="give a share such as 0.05")
    if l is not None and sensitive is not None:
        total = _as_key(data[sensitive]).nunique()
        if total < l:
            raise OptionError(f"l = {l} cannot hold: the sensitive column has only {total} distinct values in "
                              "the whole table", file=source, fix=f"give --l {total} or less")
    hier = {q: hierarchy_for(q, data[q], k=k) for q in quasi}
    levels = {q: 0 for q in quasi}
    cache: dict[tuple[str, int], pd.Series] = {}

    def gen(q: str) -> pd.Series:
        key = (q, levels[q])
        if key not in cache:
            cache[key] = hier[q].apply(data[q], levels[q])
        return cache[key]

    iterations = 0
    while True:
        table = pd.DataFrame({q: gen(q) for q in quasi}, index=data.index)
        if sensitive is not None:
            table[sensitive] = data[sensitive]
        cls = equivalence_classes(table, quasi, sensitive if l is not None else None)
        bad = cls["class_size"] < k
        if l is not None:
            bad |= cls["class_distinct_sensitive"] < l
        if bad.mean() <= max_suppression:
            break
        open_ = [q for q in quasi if levels[q] < hier[q].max_level]
        if not open_:
            break
        nxt = max(open_, key=lambda q: (_as_key(table[q]).nunique(), -quasi.index(q)))
        levels[nxt] += 1
        iterations += 1

    released = data.copy()
    for q in quasi:
        released[q] = gen(q)
    released = released.loc[~bad.to_numpy()].reset_index(drop=True)
    columns = {}
    for q in quasi:
        before = int(_as_key(data[q]).nunique())
        after = int(_as_key(released[q]).nunique()) if len(released) else 0
        columns[q] = {"kind": hier[q].kind, "level": levels[q], "max_level": hier[q].max_level,
                      "level_name": hier[q].levels[levels[q]], "hierarchy": hier[q].levels,
                      "distinct_before": before, "distinct_after": after,
                      "distinct_lost_share": float(1 - after / before) if before else 0.0}
    info = {"k": int(k), "l": None if l is None else int(l), "sensitive": sensitive,
            "max_suppression": float(max_suppression), "records_suppressed": int(bad.sum()),
            "suppressed_share": float(bad.mean()), "n_released": int(len(released)), "iterations": iterations,
            "columns": columns,
            "precision_loss": float(np.mean([c["level"] / c["max_level"] for c in columns.values()])),
            "distinct_values_lost_share": float(np.mean([c["distinct_lost_share"] for c in columns.values()]))}
    return released, info, ~bad.to_numpy()
