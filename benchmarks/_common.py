"""What every benchmark records about its run, and where it writes by default.

Each benchmark script captures :func:`run_environment` when it starts (before the load it adds
itself), stores it with its raw numbers, and puts :func:`results_header` at the top of its results
page: the date, pmed's commit (and whether the tree had uncommitted changes), the command, the
machine (CPUs, load average at the start and when the page was written) and the versions of the
packages that the numbers depend on. Outputs go to ``out/<name>`` unless ``--out`` says otherwise.

Scripts import it as ``from _common import ...``: running ``python benchmarks/<script>.py`` puts
``benchmarks/`` on ``sys.path``; a script loaded by path inserts it itself.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["CORE_PACKAGES", "default_out", "git_state", "results_header", "run_environment", "write_page"]

REPO = Path(__file__).resolve().parents[1]
#: Packages every results page names; each script adds the ones its numbers depend on.
CORE_PACKAGES = ("pmed", "numpy", "pandas", "scipy", "scikit-learn")


def default_out(name: str) -> Path:
    """The default output folder of benchmark ``name``: ``out/<name>`` (relative to the cwd).

    Parameters
    ----------
    name : str
        The benchmark's name, usually its script's stem.

    Returns
    -------
    pathlib.Path
        ``Path("out") / name``; ``out/`` is ignored by git.
    """
    return Path("out") / name


def git_state(repo: Path = REPO) -> tuple[str | None, bool | None]:
    """The commit checked out in ``repo`` and whether tracked or new files differ from it.

    Returns ``(None, None)`` outside a git checkout or without git.
    """
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip(), dirty


def _versions(packages: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in dict.fromkeys([*CORE_PACKAGES, *packages]):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None


def run_environment(packages: Iterable[str] = (), argv: list[str] | None = None) -> dict[str, Any]:
    """A JSON-ready record of this run: date, commit, command, machine, load and versions.

    Call it when the benchmark starts, so that the load average is the machine's before the
    benchmark adds its own; keep it with the raw numbers so that a page re-rendered later still
    shows the run's environment.

    Parameters
    ----------
    packages : iterable of str
        Distributions whose versions matter to this benchmark, beyond :data:`CORE_PACKAGES`.
    argv : list of str, optional
        The script's arguments (default ``sys.argv[1:]``).

    Returns
    -------
    dict
        Keys ``date`` (UTC, ISO 8601), ``commit``, ``dirty``, ``command``, ``python``,
        ``platform``, ``cpu_count``, ``loadavg`` (1, 5 and 15 minutes) and ``versions``.
    """
    commit, dirty = git_state()
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(REPO)
    except ValueError:
        pass
    args = sys.argv[1:] if argv is None else list(argv)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": dirty,
        "command": shlex.join(["python", str(script), *map(str, args)]),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_count": os.cpu_count(),
        "loadavg": _loadavg(),
        "versions": _versions(packages),
    }


def _load(values: list[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "not available"


def results_header(env: Mapping[str, Any] | None) -> str:
    """The Markdown block that opens a results page: the run that produced its numbers.

    Parameters
    ----------
    env : mapping or None
        What :func:`run_environment` returned when the run started. ``None`` (a page re-rendered
        from raw numbers saved before runs were recorded) says so instead of guessing.

    Returns
    -------
    str
        A bullet list without a trailing blank line; the load average when the page is written
        is added beside the one at the start.
    """
    if env is None:
        return "- Run: not recorded (this page was re-rendered from numbers saved without it)."
    commit = env.get("commit")
    if commit is None:
        state = "not a git checkout"
    else:
        state = f"`{commit[:12]}`" + {True: ", with uncommitted changes", False: ""}.get(
            env.get("dirty"), ", unknown whether the tree was clean")
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in env.get("versions", {}).items())
    threshold = (env.get("cpu_count") or 1) * 0.5
    start = env.get("loadavg")
    busy = bool(start) and start[0] > threshold
    return "\n".join([
        f"- Run: {env.get('date', '?')} · commit {state} · `{env.get('command', '?')}`",
        f"- Machine: {env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs; load average "
        f"(1 / 5 / 15 min) {_load(start)} at the start, {_load(_loadavg())} when this page was "
        "written" + (" — **the machine was busy: timings are not representative**" if busy else ""),
        f"- Versions: Python {env.get('python', '?')}, {versions}",
    ])


def write_page(result: dict[str, Any], args: Any, env: Mapping[str, Any], render) -> int:
    """The ending the results scripts share: ``--notes`` read into the result, the page written
    atomically to ``--page`` (``render(result, env)``, with the environment the result was made
    in when it carries one). Returns the exit code 0."""
    from pmed.io import write_text_atomic

    if args.notes is not None:
        result["notes"] = args.notes.read_text()
    if args.page is not None:
        write_text_atomic(args.page, render(result, result.get("env", env)))
    return 0
