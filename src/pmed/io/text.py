"""One way to open a text file that may be gzip/BGZF-compressed, whatever its name says."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from pmed.errors import InputError

__all__ = ["open_text", "is_gzip"]

_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    """Whether the file's first bytes are gzip's magic number (BGZF included)."""
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def open_text(path: str | Path, *, errors: str = "strict", newline: str | None = "") -> io.TextIOBase:
    """Open ``path`` for reading text, decompressing gzip/BGZF by content, not by name.

    A UTF-8 byte-order mark is removed (``utf-8-sig``) so that the first column name reads as
    written. ``errors`` is passed to the decoder (``"replace"`` for lenient readers).

    Raises
    ------
    InputError
        When the file does not exist or is a folder.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path, fix="check the path")
    if path.is_dir():
        raise InputError("a folder was given where a file is expected", file=path,
                         fix="name the file inside the folder")
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors=errors,
                                newline=newline)
    return open(path, encoding="utf-8-sig", errors=errors, newline=newline)  # noqa: SIM115
