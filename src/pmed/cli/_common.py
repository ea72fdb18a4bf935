"""What every command of the CLI shares: consoles and the one progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pmed.progress import RichReporter

__all__ = ["console", "progress_bar", "progress", "pmed_warnings"]


def console(stderr: bool = False):
    """A rich console without highlighting (stdout, or stderr for messages)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def progress():
    """The progress display on stderr: a transient rich bar per task with the time so far and
    the estimated time left on a terminal, plain lines (:class:`pmed.progress.LineProgress`)
    when stderr is a log file or a pipe."""
    from pmed.progress import new_display

    return new_display(console(stderr=True))


@contextlib.contextmanager
def progress_bar() -> Iterator[RichReporter]:
    """``with progress_bar() as reporter: run_x(..., progress=reporter)``."""
    with progress() as p:
        yield RichReporter(p)


@contextlib.contextmanager
def pmed_warnings() -> Iterator[list]:
    """Print each :class:`~pmed.errors.PmedWarning` raised in the body as one ``warning`` line.

    pmed's warnings say what lowers trust in a result (a build that cannot be checked, patients
    dropped by a window…): the user reads them as one line each, after the work, not as Python's
    two-line ``file:line: Category`` form. Other warnings are shown as Python shows them. Nothing
    is printed when the body fails: its error is the one line the user sees.
    """
    import warnings

    from rich.markup import escape

    from pmed.errors import PmedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PmedWarning)
        yield caught
    err = console(stderr=True)
    for w in caught:
        if issubclass(w.category, PmedWarning):
            err.print(f"[yellow]warning[/yellow] {escape(str(w.message))}", soft_wrap=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
