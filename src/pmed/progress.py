"""One progress reporter for every long job: silent in the API unless asked, a bar in the CLI.

Every ``run_<domain>`` function and :func:`pmed.study.run_study` take ``progress=``:

* ``None`` or ``False`` (the API default): nothing is shown;
* ``True``: a rich progress bar on standard error;
* any object with ``start(total, description)`` and ``advance(description, n=1)``
  (a :class:`Reporter`), e.g. the CLI's shared bar or a test's recorder.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TextIO, runtime_checkable

__all__ = ["Reporter", "Silent", "RichReporter", "LineProgress", "as_reporter"]


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


@dataclass
class _LineTask:
    name: str  # the task, as started (start and done lines)
    description: str  # its current step (progress lines)
    total: float | None
    completed: float = 0.0
    started: float = 0.0
    last_line: float = 0.0
    finished: bool = False
    printed: bool = False  # said anything: then its end is said too


#: Seconds between progress lines in logs (``PMED_PROGRESS_INTERVAL``; 0: every step).
DEFAULT_INTERVAL = 10.0


def _interval_from_env() -> float:
    import os

    try:
        value = float(os.environ.get("PMED_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value >= 0 else DEFAULT_INTERVAL


class LineProgress:
    """Progress as plain lines, for a standard error that is no terminal (a log file, CI).

    The subset of :class:`rich.progress.Progress` that :class:`RichReporter` uses, so the
    CLI's bars become log lines where a bar cannot be drawn: at most one line every
    ``interval`` seconds with the share done, the time so far and an estimate of the time
    left, and a last one when a task that said anything ends. Like the transient bar, a task
    shorter than ``interval`` leaves nothing (a failing command still prints its one line of
    error alone). ``interval`` defaults to ``PMED_PROGRESS_INTERVAL`` (seconds), else 10;
    with 0 every step is a line, its start included.
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.interval = _interval_from_env() if interval is None else interval
        self.clock = clock
        self.tasks: list[_LineTask] = []

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:  # an interrupted or failed job says so itself; no "done" after it
            for i in range(len(self.tasks)):
                self._finish(i)

    def start(self) -> None:  # rich's Progress API
        pass

    def stop(self) -> None:
        self.__exit__(None, None, None)

    def _say(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def add_task(self, description: str, total: float | None = None, **_) -> int:
        for i in range(len(self.tasks)):  # a new stage: the previous one is over
            self._finish(i)
        now = self.clock()
        task = _LineTask(description, description, total, started=now, last_line=now)
        self.tasks.append(task)
        if self.interval <= 0:
            task.printed = True
            self._say(f"{description}: started" + (f" ({_count(total)} steps)" if total else ""))
        return len(self.tasks) - 1

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None,
               description: str | None = None, **_) -> None:
        t = self.tasks[task_id]
        if description:
            t.description = description
        if completed is not None:
            t.completed = completed
        if advance:
            t.completed += advance
        if t.total is not None and t.completed >= t.total:
            self._finish(task_id)
            return
        now = self.clock()
        if now - t.last_line >= self.interval:
            t.last_line, t.printed = now, True
            step = f" ({t.description})" if t.description != t.name else ""
            self._say(f"{t.name}: {self._state(t, now)}{step}")

    def _state(self, t: _LineTask, now: float) -> str:
        elapsed = now - t.started
        if not t.total:
            return f"{_count(t.completed)} done, {_duration(elapsed)}"
        share = t.completed / t.total
        left = f", about {_duration(elapsed * (1 - share) / share)} left" if share > 0 else ""
        return (f"{share:.0%} ({_count(t.completed)}/{_count(t.total)}), "
                f"{_duration(elapsed)}{left}")

    def _finish(self, task_id: int) -> None:
        t = self.tasks[task_id]
        if not t.finished:
            t.finished = True
            if t.printed:
                self._say(f"{t.name}: done in {_duration(self.clock() - t.started)}")


def _count(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def bar_columns():
    """The columns of every pmed bar: what, bar, count, time so far, estimated time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return (TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn())


def new_display(console=None):
    """A transient rich bar on a terminal, plain :class:`LineProgress` lines elsewhere."""
    from rich.console import Console
    from rich.progress import Progress

    console = console or Console(stderr=True, highlight=False)
    if not console.is_terminal:
        return LineProgress(console.file)
    return Progress(*bar_columns(), console=console, transient=True)


class _OwnBar(RichReporter):
    """``progress=True`` in the API: a bar on stderr that closes when the job ends."""

    def __init__(self) -> None:
        p = new_display()
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
