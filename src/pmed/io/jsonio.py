"""Strict JSON for every file pmed writes: NaN/inf become null, numpy and paths become plain."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_json", "plain"]


def plain(o: Any) -> Any:
    """``o`` with numpy scalars/arrays, paths and tuples made JSON-native and NaN/inf as None."""
    if isinstance(o, Mapping):
        return {str(k): plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [plain(v) for v in o]
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, Path):
        return str(o)
    return o


def to_json(o: Any, *, indent: int = 2) -> str:
    """Serialise to strict JSON text (no NaN), ending in a newline."""
    return json.dumps(plain(o), indent=indent, allow_nan=False) + "\n"
