"""One way to open a text file that may be gzip/BGZF-compressed, whatever its name says."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from pmed.errors import InputError

__all__ = ["open_text", "is_gzip", "read_text"]

_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | Path) -> bool:
    """Whether the file's first bytes are gzip's magic number (BGZF included)."""
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


class _CheckedGzip(io.RawIOBase):
    """A gzip stream whose truncation or corruption is an :class:`InputError` naming the file.

    ``gzip`` raises ``EOFError`` (cut short), ``zlib.error`` or ``BadGzipFile`` midway through
    reading; readers that do not expect them would let them escape as a traceback (an
    ``EOFError`` even reads as an interrupted command to some command-line frameworks).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._fh = gzip.open(path, "rb")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # gzip seeks by decompressing again: readers rewind to re-read
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def readinto(self, b) -> int:
        import zlib

        try:
            data = self._fh.read(len(b))
        except (EOFError, zlib.error, OSError) as e:  # BadGzipFile is an OSError
            kind = "zlib" if isinstance(e, zlib.error) else type(e).__name__
            raise InputError(f"compressed file is truncated or corrupt ({kind})", file=self._path,
                             fix="re-create or re-download the file") from None
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


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
        raw = io.BufferedReader(_CheckedGzip(path), buffer_size=1 << 16)
        return io.TextIOWrapper(raw, encoding="utf-8-sig", errors=errors, newline=newline)
    return open(path, encoding="utf-8-sig", errors=errors, newline=newline)  # noqa: SIM115


def read_text(path: str | Path, *, what: str = "file", error: type[InputError] = InputError) -> str:
    """Read a whole UTF-8 text file (BOM removed); bad bytes are an error naming line and column.

    Parameters
    ----------
    what
        What the file is, for the message (``"study file"``).
    error
        The :class:`~pmed.errors.PmedError` class to raise (e.g. ``StudyError`` for studies).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found" if not path.exists() else f"{what} is a folder", file=path,
                    fix="check the path")
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise error(f"{what} is UTF-16 encoded", file=path, fix="save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise error(f"{what} is not valid UTF-8 (byte 0x{data[e.start]:02x})", file=path,
                    where=f"line {line}, column {col}", fix="save the file as UTF-8") from None
