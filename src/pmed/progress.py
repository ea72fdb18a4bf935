"""One progress reporter for every long job: silent in the API unless asked, a bar in the CLI.

Every ``run_<domain>`` function and :func:`pmed.study.run_study` take ``progress=``:

* ``None`` or ``False`` (the API default): nothing is shown;
* ``True``: a rich progress bar on standard error;
* any object with ``start(total, description)`` and ``advance(description, n=1)``
  (a :class:`Reporter`), e.g. the CLI's shared bar or a test's recorder.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Reporter", "Silent", "RichReporter", "as_reporter"]


@runtime_checkable
class Reporter(Protocol):
    """Progress sink: ``start`` once per task with its size (``None`` when unknown), then
    ``advance`` per step."""

    def start(self, total: int | None, description: str = "") -> None: ...

    def advance(self, description: str | None = None, n: int = 1) -> None: ...


class Silent:
    """The default reporter: shows nothing."""

    def start(self, total: int | None, description: str = "") -> None:
        pass

    def advance(self, description: str | None = None, n: int = 1) -> None:
        pass


class RichReporter:
    """Adapts a :class:`rich.progress.Progress` to :class:`Reporter` (each ``start`` adds a bar)."""

    def __init__(self, progress) -> None:
        self.progress = progress
        self.task = None

    def start(self, total: int | None, description: str = "") -> None:
        if self.task is not None:  # a new stage: the previous bar is complete
            t = self.progress.tasks[-1]
            if t.total is not None:
                self.progress.update(self.task, completed=t.total)
        self.task = self.progress.add_task(description or "working", total=total)

    def advance(self, description: str | None = None, n: int = 1) -> None:
        if self.task is None:
            self.start(None)
        kw = {"description": description} if description else {}
        self.progress.update(self.task, advance=n, **kw)


class _OwnBar(RichReporter):
    """``progress=True`` in the API: a bar on stderr that closes when the job ends."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        p = Progress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                     TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        p.start()
        super().__init__(p)

    def __del__(self) -> None:  # pragma: no cover - depends on the interpreter's timing
        try:
            self.progress.stop()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


def as_reporter(progress: Reporter | bool | None) -> Reporter:
    """Turn a ``progress=`` argument into a :class:`Reporter`."""
    if progress is None or progress is False:
        return Silent()
    if progress is True:
        return _OwnBar()
    if isinstance(progress, Reporter):
        return progress
    from pmed.errors import OptionError

    raise OptionError(f"progress={progress!r} is neither True/False/None nor a Reporter",
                      fix="pass progress=True for a bar, or an object with start() and advance()")
