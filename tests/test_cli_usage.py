"""Every usage error of every command ends with one message and exit code 2, never a traceback.

The commands are found by walking the click command that typer builds from ``pmed.cli.app``, so
a new command or option is covered without touching this file. What each parameter accepts is
read from its declaration (type, ``min``/``max``, ``exists``, ``file_okay``/``dir_okay``, the
``choice``/``bounded`` callbacks of :mod:`pmed.cli._params`, ``Enum``/``Literal`` choices), the
same way on the click-based typer and on the typer that vendors click as ``typer._click``.

No command body runs here: each case is refused while its command line is parsed (a stand-in
replaces every command body and fails the test if parsing ever lets a case through).
"""

from __future__ import annotations

import enum
import functools
import inspect
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
import typer.main
import typer.models

from pmed.cli import app, main

# placeholders replaced by real paths in the test's temporary folder
FILE, DIR, MISSING, NEW = "<FILE>", "<DIR>", "<MISSING>", "<NEW>"
NEW_TABLE, NEW_XLSX = "<NEW_TABLE>", "<NEW_XLSX>"  # an output table named with a written / unwritten format


@dataclass
class Param:
    """What a test needs to know of one parameter of one command."""

    name: str
    opts: list[str]
    argument: bool
    required: bool
    flag: bool
    kind: type | None  # int, float, str, Path … (None when unknown)
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    exists: bool = False
    file_okay: bool = True
    dir_okay: bool = True
    suffixes: tuple[str, ...] = ()  # an output table: the extensions pmed writes (table_out)
    hints: list[str] = field(default_factory=list)  # any of these names the parameter in a message

    @property
    def opt(self) -> str:
        return max(self.opts, key=len)

    def valid(self) -> str:
        """A value this parameter accepts (for the parameters a case does not test)."""
        if self.choices:
            return self.choices[0]
        if self.kind in (int, float):
            v = 1 if self.min is None else max(1, self.min)
            v = v if self.max is None else min(v, self.max)
            if self.lt is not None and v >= self.lt:
                v = ((self.gt or 0) + self.lt) / 2
            return str(int(v)) if self.kind is int else str(v)
        if self.kind is not None and issubclass(self.kind, Path):
            if self.exists:
                return DIR if not self.file_okay else FILE
            return NEW_TABLE if self.suffixes else NEW
        return "x"


def _strip(tp):
    """``Annotated[list[Path] | None, …]`` → ``Path``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (list, tuple, typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None) and a is not Ellipsis]
            tp = args[0]
        else:
            return tp


def _info(func, name: str):
    """The typer ``OptionInfo``/``ArgumentInfo`` of parameter ``name`` of ``func``, if any."""
    hint = typing.get_type_hints(func, include_extras=True).get(name)
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, typer.models.ParameterInfo):
            return meta
    default = inspect.signature(func).parameters[name].default
    return default if isinstance(default, typer.models.ParameterInfo) else None


def _params(command) -> list[Param]:
    func = inspect.unwrap(command.callback)
    hints = typing.get_type_hints(func, include_extras=True)
    out = []
    for p in command.params:
        if not p.expose_value or p.name not in hints:
            continue
        tp = _strip(hints[p.name])
        info = _info(func, p.name)
        argument = getattr(p, "param_type_name", "") == "argument"
        prm = Param(name=p.name, opts=list(p.opts), argument=argument, required=bool(p.required),
                    flag=bool(getattr(p, "is_flag", False)) or tp is bool,
                    kind=tp if isinstance(tp, type) else None)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            prm.choices = tuple(str(m.value) for m in tp)
        elif typing.get_origin(tp) is typing.Literal:
            prm.choices = tuple(str(v) for v in typing.get_args(tp))
            prm.kind = str
        if info is not None:
            cb = getattr(info, "callback", None)
            prm.choices = prm.choices or tuple(getattr(cb, "choices", ()))
            prm.gt, prm.lt = getattr(cb, "bounds", (None, None))
            prm.suffixes = tuple(getattr(cb, "suffixes", ()))
            prm.min, prm.max = getattr(info, "min", None), getattr(info, "max", None)
            prm.exists = bool(getattr(info, "exists", False))
            prm.file_okay = getattr(info, "file_okay", True) is not False
            prm.dir_okay = getattr(info, "dir_okay", True) is not False
        prm.hints = [o for o in prm.opts if o.startswith("--")] or [p.name]
        if argument:
            prm.hints = [p.name, p.name.upper(), *(o.upper() for o in p.opts)]
        out.append(prm)
    return out


def _walk(command, path=()):
    yield path, command
    for name in sorted(getattr(command, "commands", None) or {}):
        yield from _walk(command.commands[name], (*path, name))


ROOT = typer.main.get_command(app)
GROUPS = [(p, c) for p, c in _walk(ROOT) if hasattr(c, "commands")]
LEAVES = [(p, c) for p, c in _walk(ROOT) if not hasattr(c, "commands")]
PARAMS = {p: _params(c) for p, c in LEAVES}


def _argv(path, params: list[Param], set_: dict[str, str] | None = None, drop: str | None = None,
          extra: list[str] | None = None) -> list[str]:
    """A command line with every required parameter valid, ``set_`` overriding, ``drop`` left out."""
    set_ = set_ or {}
    opts, args = [], []
    for p in params:
        if p.name == drop or (not p.required and p.name not in set_):
            continue
        value = set_.get(p.name, p.valid())
        if p.argument:
            args.append(value)
        elif p.flag:
            opts.append(p.opt)
        else:
            opts.append(f"{p.opt}={value}")  # `=`: a value such as -1 is never read as an option
    return [*path, *opts, *(extra or []), *args]


def _cases():
    """(test id, argv, names of which one must be in the error line) for every usage error."""
    for path, _ in GROUPS:
        where = " ".join(path) or "pmed"
        yield f"{where} nosuchcommand", [*path, "nosuchcommand"], ["nosuchcommand"]
        yield f"{where} --no-such-option", [*path, "--no-such-option"], ["--no-such-option"]
    for path, _ in LEAVES:
        where, params = " ".join(path), PARAMS[path]
        yield f"{where} --no-such-option", _argv(path, params, extra=["--no-such-option"]), ["--no-such-option"]
        required_args = [p for p in params if p.argument and p.required]
        for p in params:
            if p.required and (not p.argument or p is required_args[-1]):  # an argument: only the last
                yield f"{where} without {p.name}", _argv(path, params, drop=p.name), p.hints
            if p.flag:
                continue
            bad: list[tuple[str, str]] = []
            if p.kind in (int, float) and not p.choices:
                bad.append(("not a number", "abc"))
            if p.kind is int:
                bad.append(("not an integer", "1.5"))
            if p.min is not None:
                bad.append(("below min", str(p.min - 1 if p.kind is int else p.min - 0.5)))
            if p.max is not None:
                bad.append(("above max", str(p.max + 1 if p.kind is int else p.max + 0.5)))
            if p.gt is not None:
                bad.append(("at the open lower bound", str(p.gt)))
            if p.lt is not None:
                bad.append(("at the open upper bound", str(p.lt)))
            if p.choices:
                bad.append(("not a choice", "no-such-choice"))
            if p.suffixes:
                bad.append(("an extension pmed does not write", NEW_XLSX))
            if p.exists:
                bad.append(("nonexistent", MISSING))
            if p.kind is not None and issubclass(p.kind, Path):
                if not p.file_okay:
                    bad.append(("a file for a folder", FILE))
                if not p.dir_okay:
                    bad.append(("a folder for a file", DIR))
            for what, value in bad:
                yield f"{where} {p.name} {what}", _argv(path, params, set_={p.name: value}), p.hints


CASES = list(_cases())


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("usage")
    (root / "a_file.txt").write_text("not what any command wants\n")
    (root / "a_dir").mkdir()
    return {FILE: str(root / "a_file.txt"), DIR: str(root / "a_dir"), MISSING: str(root / "absent" / "x.csv"),
            NEW: str(root / "new"), NEW_TABLE: str(root / "new.csv"), NEW_XLSX: str(root / "new.xlsx")}


def _stand_in(func):
    @functools.wraps(func)
    def body(*args, **kwargs):
        raise AssertionError(f"{func.__name__} ran: parsing accepted a command line it should refuse")

    return body


def _typers(t: typer.Typer):
    yield t
    for g in t.registered_groups:
        yield from _typers(g.typer_instance)


@pytest.fixture(scope="module")
def no_bodies():
    """Replace every command body by a stand-in that fails the test when it runs.

    Once per module: ``main`` rebuilds its click command only when a callback changes.
    """
    with pytest.MonkeyPatch.context() as mp:
        for t in _typers(app):
            for info in t.registered_commands:
                mp.setattr(info, "callback", _stand_in(info.callback))
        yield


def _fill(argv: list[str], places: dict[str, str]) -> list[str]:
    """Put real paths where the placeholders are (``--opt=<FILE>`` or a bare ``<FILE>``)."""
    out = []
    for a in argv:
        opt, eq, value = a.rpartition("=")
        out.append(f"{opt}{eq}{places.get(value, value)}")
    return out


def _assert_usage_error(code, out, err, names, argv):
    assert "Traceback" not in out + err, (argv, err)
    assert code == 2, (argv, code, out, err)
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, (argv, err)
    assert any(n.lower() in errors[0].lower() for n in names), (argv, names, errors[0])


def test_the_walk_finds_every_command():
    found = {" ".join(p) for p, _ in LEAVES}
    assert {"run", "predict", "evaluate", "validate", "demo", "version", "prs score", "pgx call",
            "timeseries features", "imaging train", "omics pipeline"} <= found
    assert len(CASES) > 100


@pytest.mark.parametrize("path", [p for p, _ in _walk(ROOT)], ids=lambda p: " ".join(("pmed", *p)))
def test_help_exits_0(path, capsys):
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out and "Traceback" not in out


@pytest.mark.parametrize(("argv", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_usage_error_exits_2_with_one_message(argv, names, places, no_bodies, capsys):
    argv = _fill(argv, places)
    code = main(argv)
    out, err = capsys.readouterr()
    _assert_usage_error(code, out, err, names, argv)


def test_group_without_a_command_shows_help_without_traceback(capsys):
    # click < 8.2 prints the help and exits 0; click >= 8.2 (and typer's vendored click) exit 2
    for path, _ in GROUPS:
        assert main(list(path)) in (0, 2)
        out, err = capsys.readouterr()
        assert "Usage" in out + err and "Traceback" not in out + err


def test_choices_reach_the_body_as_plain_strings_in_their_spelling(tmp_path, monkeypatch):
    """``choice`` matches case-insensitively and passes the declared spelling on, as a ``str``."""
    from pmed.cli import timeseries

    seen = {}
    info = next(c for c in timeseries.app.registered_commands if c.callback.__name__ == "features")

    @functools.wraps(info.callback)
    def body(**kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(info, "callback", body)
    assert main(["timeseries", "features", str(tmp_path), "--format", "PhysioNet2012",
                 "--unknown", "KEEP"]) == 0
    assert seen["format"] == "physionet2012" and type(seen["format"]) is str
    assert seen["unknown"] == "keep" and type(seen["unknown"]) is str
    seen.clear()
    assert main(["timeseries", "features", str(tmp_path)]) == 0
    assert seen["format"] == "auto" and seen["unknown"] == "error"


def test_interrupt_is_one_line_and_130(monkeypatch, capsys):
    info = next(c for c in app.registered_commands if c.callback.__name__ == "version")

    @functools.wraps(info.callback)  # the command keeps its name
    def body():
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "callback", body)
    assert main(["version"]) == 130
    out, err = capsys.readouterr()
    assert err.strip() == "pmed: interrupted" and "Traceback" not in out + err


def test_a_bug_still_surfaces(monkeypatch):
    """An exception that is neither a pmed error nor a usage error is a bug: it is not hidden."""
    info = next(c for c in app.registered_commands if c.callback.__name__ == "version")

    @functools.wraps(info.callback)
    def body():
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(info, "callback", body)
    with pytest.raises(ZeroDivisionError):
        main(["version"])


def test_console_usage_errors():
    """Through ``python -m pmed`` (started together: each start imports the CLI afresh)."""
    here = str(Path(__file__).parent)
    lines = {("nosuchcommand",): "nosuchcommand", ("run",): "study",
             ("prs", "score", "-t", "x", "-s", __file__, "--min-overlap", "abc"): "--min-overlap",
             ("timeseries", "features", here, "--format", "nope"): "--format"}
    procs = [subprocess.Popen([sys.executable, "-m", "pmed", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for argv in lines]
    for (argv, name), proc in zip(lines.items(), procs, strict=True):
        out, err = proc.communicate(timeout=120)
        _assert_usage_error(proc.returncode, out, err, [name], argv)


def test_block_without_equals_is_refused_before_the_bundle_is_read(tmp_path, capsys):
    (tmp_path / "p.csv").write_text("patient_id\nA\n")
    argv = ["predict", "--model", str(tmp_path), "--patients", str(tmp_path / "p.csv"), "--block", "genotypes"]
    code = main(argv)  # tmp_path is no model bundle: reading it would give exit 7, not 2
    out, err = capsys.readouterr()
    _assert_usage_error(code, out, err, ["--block"], argv)
