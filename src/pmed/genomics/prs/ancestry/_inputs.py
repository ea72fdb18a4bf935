"""Input checks shared by the ancestry modules: dosage matrices, labels, blocks of variants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import ValidationError


def _shown(items: Sequence[Any], limit: int = 8) -> str:
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    if len(items) > limit:
        text += f", … ({len(items)} in all)"
    return text


def _as_dosages(G, name: str) -> tuple[np.ndarray, pd.Index | None, pd.Index | None]:
    """A float (samples × variants) dosage matrix and its sample / variant names, if any."""
    rows = cols = None
    if isinstance(G, pd.DataFrame):
        rows, cols = G.index, G.columns
        G = G.to_numpy()
    try:
        arr = np.asarray(G)
        if arr.dtype.kind != "f":  # integer dosages: float32 holds them exactly, in half the space
            arr = arr.astype(np.float32 if arr.dtype.kind in "iub" else float)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            [f"{name} has non-numeric values ({exc})"],
            fix="give allele dosages 0, 1, 2 (or fractional), NaN for a missing call",
        ) from None
    if arr.ndim != 2:
        raise ValidationError(
            [f"{name} must be 2-D (samples × variants), got shape {arr.shape}"],
            fix="pass one row per sample and one column per variant",
        )
    problems = []
    if np.isinf(arr).any():
        r, c = np.nonzero(np.isinf(arr))
        problems.append(f"{name} has infinite dosages at (row, column) "
                        f"{_shown(list(zip((r + 1).tolist(), (c + 1).tolist(), strict=True)))}")
    bad = ~np.isnan(arr) & ((arr < 0) | (arr > 2))
    if bad.any():
        r, c = np.nonzero(bad)
        problems.append(f"{name} has dosages outside [0, 2] at (row, column) "
                        f"{_shown(list(zip((r + 1).tolist(), (c + 1).tolist(), strict=True)))}")
    if problems:
        raise ValidationError(problems, fix="allele dosages must lie in [0, 2]; NaN marks a "
                                            "missing call")
    return arr, rows, cols


def _labels(values, n: int, name: str) -> np.ndarray:
    lab = pd.Series(np.asarray(values, dtype=object).ravel())
    if len(lab) != n:
        raise ValidationError(
            [f"{name} has {len(lab)} labels for {n} samples"],
            fix=f"give one {name} label per sample, in the same order",
        )
    miss = lab.isna().to_numpy()
    if miss.any():
        raise ValidationError(
            [f"{name} is missing for samples (1-based rows) {_shown(np.nonzero(miss)[0] + 1)}"],
            fix="give every sample a label, or drop the unlabelled ones",
        )
    return lab.astype(str).to_numpy()


_BLOCK = 4096  # variants standardised at a time


def _blocks(idx: np.ndarray, size: int = _BLOCK):
    for start in range(0, len(idx), size):
        yield idx[start: start + size]
