"""What every command of the CLI shares: consoles and the one progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pmed.progress import RichReporter

__all__ = ["console", "progress_bar", "progress"]


def console(stderr: bool = False):
    """A rich console without highlighting (stdout, or stderr for messages)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def progress():
    """A transient rich progress display on stderr (one line per task)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console(stderr=True), transient=True)


@contextlib.contextmanager
def progress_bar() -> Iterator[RichReporter]:
    """``with progress_bar() as reporter: run_x(..., progress=reporter)``."""
    with progress() as p:
        yield RichReporter(p)
