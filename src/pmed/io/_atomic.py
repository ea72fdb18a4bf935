"""Atomic writes: a temp file in the destination folder, then ``os.replace``.

A crash midway never leaves a half-written output where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_dir", "write_text_atomic", "output_folder", "check_output_folder"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the real suffix last: tools that pick a format from the name (Chromium) still can
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp makes owner-only files; give outputs the usual permissions (umask applies)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def check_output_folder(out: str | Path, *, owned: Callable[[Path], bool], inputs: Iterable = (),
                        what: str = "pmed output") -> Path:
    """Refuse an output folder that pmed could not replace whole without losing something.

    Parameters
    ----------
    out
        The output folder (``--out``).
    owned
        ``owned(out)`` is true when a non-empty ``out`` holds an earlier output of the same
        command (and so may be replaced).
    inputs
        Input files or folders: none may lie inside ``out``, which is replaced whole.
    what
        What the folder holds, for the message ("study output", "PRS output" …).

    Raises
    ------
    InputError
        (exit 2) ``out`` is a file; ``out`` is not empty and holds something other than an earlier
        ``what``; or an input lies inside ``out``.
    """
    from pmed.errors import InputError
    from pmed.io.names import _flatten

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("the output path is a file, not a folder", file=out, fix="give a folder for --out")
    root = out.resolve()
    for src in _flatten(inputs):
        s = Path(src).resolve()
        if s == root or root in s.parents:
            raise InputError(f"the input {Path(src).name!r} lies inside the output folder, which pmed "
                             "replaces whole", file=out, fix="choose another output folder (--out)")
    if out.is_dir() and any(out.iterdir()) and not owned(out):
        raise InputError(f"the output folder is not empty and does not hold an earlier {what}; pmed "
                         "replaces the output folder whole", file=out,
                         fix="choose a new or empty folder for --out")
    return out


@contextlib.contextmanager
def output_folder(out: str | Path, *, owned: Callable[[Path], bool], inputs: Iterable = (),
                  what: str = "pmed output") -> Iterator[Path]:
    """Stage a command's whole output folder, then swap it in (issue #16).

    :func:`check_output_folder` first; then every file is written into a fresh hidden folder
    beside ``out``, which replaces ``out`` whole only when the body finishes. A run that fails or
    is killed leaves the previous output untouched (and at most a hidden ``.NAME.*.tmp`` folder
    that no reader looks at); outputs of an earlier run never linger beside new ones.

    Yields
    ------
    Path
        The staging folder to write into.
    """
    check_output_folder(out, owned=owned, inputs=inputs, what=what)
    with atomic_dir(out) as tmp:
        yield tmp
