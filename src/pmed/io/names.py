"""Data values as file names, and outputs that must not replace inputs (issue #16).

Patient IDs, sample IDs, model and score names come from users' files; written unchanged into a
path they can climb out of the output folder (``../../x``), make subfolders (``a/b``), exceed the
file-name limit (a 300-character ID) or name a device on Windows (``CON``). :func:`safe_filename`
turns any value into one plain file name; :func:`check_inside` asserts that a joined path stays in
its folder; :func:`check_not_input` refuses an output path that is one of the inputs.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from pmed.errors import InputError, OptionError

__all__ = ["safe_filename", "check_inside", "check_not_input"]

_ALLOWED = re.compile(r"[^A-Za-z0-9._-]")
# device names Windows reserves whatever the extension (CON.html is still the console)
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_HASH = 10  # hex digits: 40 bits, so distinct values practically never share a suffix


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH]


def safe_filename(value: object, *, used: set | None = None, max_len: int = 100) -> str:
    """One file name (no folder part) for a data value, readable where the value is.

    Parameters
    ----------
    value
        A patient ID, sample ID, model or score name… (``str(value)`` is used).
    used
        Names already given in the same folder, kept *case-folded* by this function: pass the same
        set for every name of one folder so two values never get the same name, not even names
        that differ only by case (one file on macOS/Windows file systems). The new name is added.
    max_len
        Longest name returned (at least 16); leave room for the extension the caller adds.

    Returns
    -------
    str
        ``value`` itself when it is made of ASCII letters, digits, ``-``, ``_`` and ``.`` only,
        does not start with a dot and is no Windows device name; otherwise a cleaned form (accents
        folded, other characters ``_``) followed by ``-`` and a hash of the original value, so two
        different values never clean to the same name. Never empty, ``.`` or ``..``, never
        contains a path separator.
    """
    if max_len < 16:
        raise OptionError(f"max_len must be at least 16, got {max_len}", fix="pass max_len=16 or more")
    text = str(value)
    # accents folded so Müller stays readable as Muller; the hash below keeps it apart from Muller
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _ALLOWED.sub("_", folded)
    if name.startswith("."):  # hidden files, '.' and '..'
        name = "_" + name.lstrip(".")
    name = name.rstrip(". ")  # Windows drops trailing dots and spaces
    changed = name != text or not name or name.split(".")[0].lower() in _RESERVED
    if name.split(".")[0].lower() in _RESERVED:
        name = "_" + name
    if changed or len(name) > max_len:
        suffix = "-" + _digest(text)
        name = (name[: max_len - len(suffix)] or "_") + suffix
    if used is not None:
        if name.casefold() in used:  # same name, or same but for case, already given in this folder
            suffix = "-" + _digest(text + "\0" + str(len(used)))
            name = name[: max_len - len(suffix)] + suffix
            n = 0
            while name.casefold() in used:  # practically never: a hash collision
                n += 1
                suffix = f"-{_digest(text + chr(0) + str(n))}"
                name = name[: max_len - len(suffix)] + suffix
        used.add(name.casefold())
    return name


def check_inside(path: str | Path, folder: str | Path) -> Path:
    """``path`` if it lies inside ``folder`` (symbolic links followed), else an :class:`InputError`.

    The last guard before writing a file whose name came from data.
    """
    p, root = Path(path), Path(folder).resolve()
    resolved = p.resolve()
    if resolved == root or root not in resolved.parents:
        raise InputError("a file name made from the data would be written outside the output folder",
                         file=folder, fix="report this as a bug: names from data go through pmed.io.safe_filename")
    return p


def _flatten(items: Iterable) -> list[Path]:
    out: list[Path] = []
    for i in items:
        if i is None:
            continue
        if isinstance(i, (str, os.PathLike)):
            out.append(Path(i))
        else:
            out.extend(_flatten(i))
    return out


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:  # hard links (and anything else the OS calls one file)
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(out: str | Path | None, *inputs, writes: Iterable[str] | None = None) -> None:
    """Refuse an output that would replace an input, before any work is done.

    Parameters
    ----------
    out
        The output file, or with ``writes`` the output folder. ``None`` checks nothing.
    *inputs
        Input files or folders (paths, lists of paths, or ``None``).
    writes
        Names of the files written inside the folder ``out`` (e.g. ``["scores.tsv"]``).

    Raises
    ------
    InputError
        (exit 2) When an output path is an input file (same path after following symbolic links,
        or a hard link to it), is an input folder, or is an existing file inside an input folder.
    """
    if out is None:
        return
    out = Path(out)
    targets = [out] if writes is None else [out / w for w in writes]
    for src in _flatten(inputs):
        for t in targets:
            clash = _same(t, src)
            if not clash and src.is_dir():
                # writing into an input folder replaces a file only where one already is
                clash = t.exists() and src.resolve() in t.resolve().parents
            if clash:
                # one line, the fix in it: the CLI prints this under the command
                raise InputError(f"this output is the input {src.name!r} and writing it would replace it; "
                                 "choose another output path (--out)", file=t)
