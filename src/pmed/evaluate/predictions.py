"""Reading and checking a predictions file before anything is computed from it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import ValidationError, format_rows, shorten

__all__ = ["read_predictions", "check_predictions", "select_repeat", "roc_inputs"]


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions table (CSV/TSV/Parquet) as it is, without a schema."""
    from pmed.io.tables import read_raw_table

    return read_raw_table(path, what="predictions file")


def select_repeat(df: pd.DataFrame, repeat: int | None, *, source: str | None = None) -> pd.DataFrame:
    """Keep one repeat of repeated cross-validation (column ``repeat`` of ``oof_predictions.csv``)."""
    if repeat is None:
        return df
    if "repeat" not in df.columns:
        from pmed.errors import OptionError

        raise OptionError("the predictions have no 'repeat' column", file=source,
                          fix="drop --repeat, or give pmed run's oof_predictions.csv")
    kept = df[df["repeat"] == repeat]
    if kept.empty:
        from pmed.errors import OptionError

        have = sorted(pd.unique(df["repeat"]).tolist())[:10]
        raise OptionError(f"no rows with repeat {repeat}", file=source,
                          fix=f"choose one of the repeats in the file: {', '.join(map(shorten, have))}")
    return kept


def roc_inputs(df: pd.DataFrame, *, outcome: str, score: str, model_col: str | None = None,
               model: str = "model") -> pd.DataFrame:
    """The ``model, outcome, prediction`` table that ROC plots and ``write_evaluation`` take."""
    return pd.DataFrame({
        "model": df[model_col].to_numpy() if model_col else model,
        "outcome": df[outcome].to_numpy(),
        "prediction": df[score].to_numpy(),
    }, index=df.index)


def check_predictions(
    df: pd.DataFrame,
    *,
    outcome: str,
    score: str,
    model_col: str | None = None,
    groups: Sequence[str] = (),
    source: str | None = None,
    task: str = "binary",
) -> pd.DataFrame:
    """Validate a binary-outcome predictions table and return it with ``outcome`` as 0/1.

    Refused, each with the column, the lines and the fix: missing columns; an outcome that is
    not binary or has a single class; scores that are missing, not numbers or outside [0, 1];
    group columns with missing values or a single level.
    """
    problems: list[str] = []
    lines = np.arange(len(df)) + 2  # 1-based, after the header line
    needed = [outcome, score, *([model_col] if model_col else []), *groups]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValidationError(
            [f"column {c!r} not found" for c in missing], file=source,
            fix=f"columns in the file: {', '.join(shorten(c, 30) for c in df.columns[:20])}"
                f"{' …' if df.shape[1] > 20 else ''}")
    if len(df) == 0:
        raise ValidationError(["the predictions file has no rows"], file=source)

    if task == "continuous":
        for col in (outcome, score):
            v = pd.to_numeric(df[col], errors="coerce")
            bad = v.isna().to_numpy()
            if bad.any():
                problems.append(f"column {col!r}: missing or non-numeric values at lines {format_rows(lines[bad])}")
        problems += _group_problems(df, groups, lines)
        if problems:
            raise ValidationError(problems, file=source, fix="correct the predictions file and retry")
        out = df.copy()
        out[outcome] = pd.to_numeric(out[outcome]).astype(float)
        out[score] = pd.to_numeric(out[score]).astype(float)
        return out

    y = df[outcome]
    if y.isna().any():
        problems.append(f"column {outcome!r}: missing outcome at lines {format_rows(lines[y.isna().to_numpy()])}"
                        " — drop those rows or supply the outcome")
    values = pd.unique(y.dropna())
    as_num = pd.to_numeric(pd.Series(values), errors="coerce")
    if len(values) > 2 or as_num.isna().any() or not set(as_num.dropna()) <= {0.0, 1.0}:
        problems.append(f"column {outcome!r}: outcome must be binary 0/1, found values "
                        f"{', '.join(shorten(v) for v in values[:6])}{' …' if len(values) > 6 else ''}"
                        " — recode the event as 1 and the non-event as 0")
    elif len(values) < 2:
        problems.append(f"column {outcome!r}: only one outcome class ({shorten(values[0])}) — discrimination "
                        "and calibration need both events and non-events")

    p = pd.to_numeric(df[score], errors="coerce")
    bad = p.isna().to_numpy()
    if bad.any():
        problems.append(f"column {score!r}: missing or non-numeric scores at lines {format_rows(lines[bad])}")
    out_of_range = ((p < 0) | (p > 1)).to_numpy()
    if out_of_range.any():
        problems.append(f"column {score!r}: probabilities outside [0, 1] at lines "
                        f"{format_rows(lines[out_of_range])} (e.g. {p[out_of_range].iloc[0]:g})"
                        " — pass probabilities, not log-odds or percentages")
    problems += _group_problems(df, groups, lines)
    if problems:
        raise ValidationError(problems, file=source, fix="correct the predictions file and retry")
    out = df.copy()
    out[outcome] = pd.to_numeric(out[outcome]).astype(int)
    out[score] = p.astype(float)
    return out


def _group_problems(df: pd.DataFrame, groups: Sequence[str], lines: np.ndarray) -> list[str]:
    problems = []
    for g in groups:
        s = df[g]
        if s.isna().any():
            problems.append(f"group column {g!r}: missing values at lines {format_rows(lines[s.isna().to_numpy()])}"
                            " — give every patient a group (an explicit 'unknown' level is fine)")
        if s.nunique(dropna=True) < 2:
            problems.append(f"group column {g!r}: a single level ({shorten(s.dropna().iloc[0])}) — a subgroup "
                            "comparison needs at least two groups")
    return problems
