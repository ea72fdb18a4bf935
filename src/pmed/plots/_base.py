"""Shared plotting plumbing: a headless matplotlib and atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

from pmed.io._atomic import atomic_path

__all__ = ["save"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path, *, dpi: int = 110) -> Path:
    """Save a figure as PNG atomically and close it."""
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return Path(path)
