"""Progress for long work: bars with the time left on a terminal, plain lines in logs."""

import io

import pytest

from pmed.progress import LineProgress, RichReporter, Silent, as_reporter, new_display


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_lines_say_share_time_and_time_left_at_most_every_interval():
    out, clock = io.StringIO(), Clock()
    rep = RichReporter(LineProgress(out, interval=10, clock=clock))
    rep.start(200, "scoring variants")
    for _ in range(4):  # 50 steps every 5 s: a line every other step
        clock.t += 5
        rep.advance(n=50)
    lines = out.getvalue().splitlines()
    # after 10 s, 100 of 200 done: about 10 s left
    assert lines[0] == "scoring variants: 50% (100/200), 10.0 s, about 10.0 s left"
    assert lines[1] == "scoring variants: done in 20.0 s"
    assert len(lines) == 2  # nothing between the 10-s marks, nothing after done


def test_a_short_task_leaves_nothing_so_an_error_stays_one_line():
    out, clock = io.StringIO(), Clock()
    with LineProgress(out, interval=10, clock=clock) as p:
        rep = RichReporter(p)
        rep.start(5, "reading inputs")
        clock.t += 3
        rep.advance(n=5)
        rep.start(None, "writing")
    assert out.getvalue() == ""


def test_a_new_stage_closes_the_previous_and_unknown_totals_count_steps():
    out, clock = io.StringIO(), Clock()
    p = LineProgress(out, interval=1, clock=clock)
    rep = RichReporter(p)
    rep.start(None, "reading")
    clock.t += 2
    rep.advance(n=3)
    clock.t += 70
    rep.start(5, "fitting")
    lines = out.getvalue().splitlines()
    assert lines == ["reading: 3 done, 2.0 s", "reading: done in 1 min 12 s"]
    rep.advance("fitting fold 2", n=1)  # a step's own label joins the task's lines
    clock.t += 2
    rep.advance(n=1)
    assert out.getvalue().splitlines()[-1] == "fitting: 40% (2/5), 2.0 s, about 3.0 s left (fitting fold 2)"
    with p:
        pass
    assert out.getvalue().splitlines()[-1] == "fitting: done in 2.0 s"


def test_every_step_with_interval_zero_and_from_the_environment(monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv("PMED_PROGRESS_INTERVAL", "0")
    rep = RichReporter(LineProgress(out, clock=Clock()))
    rep.start(2, "training")
    rep.advance(n=1)
    assert out.getvalue().splitlines() == ["training: started (2 steps)", "training: 50% (1/2), 0.0 s, about 0.0 s left"]
    monkeypatch.setenv("PMED_PROGRESS_INTERVAL", "soon")  # not a number: the default
    assert LineProgress().interval == 10


def test_an_interrupted_job_does_not_print_done():
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), LineProgress(out, clock=Clock()) as p:
        RichReporter(p).start(10, "training")
        raise KeyboardInterrupt
    assert "done" not in out.getvalue()


def test_a_log_file_gets_lines_and_a_terminal_a_bar_with_time_left():
    from rich.console import Console
    from rich.progress import Progress, TimeRemainingColumn

    log = io.StringIO()
    assert isinstance(new_display(Console(file=log)), LineProgress)
    bar = new_display(Console(file=io.StringIO(), force_terminal=True))
    assert isinstance(bar, Progress)
    assert any(isinstance(c, TimeRemainingColumn) for c in bar.columns)


def test_the_api_is_silent_unless_asked():
    assert isinstance(as_reporter(None), Silent) and isinstance(as_reporter(False), Silent)
