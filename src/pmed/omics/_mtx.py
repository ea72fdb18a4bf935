"""Matrix Market (``matrix.mtx[.gz]``) reading for 10x folders, safe on damaged files.

scipy's fast_matrix_market reader aborts the whole process (C++ ``terminate``) when it refuses a
header, or cannot allocate the entries a header declares, while reading from a Python file
object (as for a gzip file). :func:`mtx_header` therefore checks the header first, as strictly as
scipy does, and :func:`mmread_checked` refuses declared sizes the file cannot hold before scipy
allocates them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from pmed.errors import InputError

__all__ = ["mtx_header", "mmread_checked"]

#: Lines of ``%`` comments read before a Matrix Market size line is given up on.
_MTX_MAX_COMMENT_LINES = 10_000


def _open_binary(path: Path):
    from pmed.io.text import is_gzip

    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115


_MTX_FIELDS = ("real", "double", "integer", "unsigned-integer", "pattern")
# only "general": a genes × cells matrix is never symmetric, and scipy's reader corrupts memory
# (a later segmentation fault) on a non-square "symmetric"/"hermitian" dense matrix
_MTX_SYMMETRIES = ("general",)
#: Largest dense (``array``) Matrix Market matrix read: 10x writes sparse coordinates.
_MTX_MAX_DENSE = 10**8


def mtx_header(path: Path) -> tuple[str, int, int, int | None]:
    """Format (``coordinate``/``array``), rows, columns and entries (``None`` for ``array``) of
    a Matrix Market file, read from its first lines only.

    The header is checked as strictly as scipy's reader checks it: scipy's fast_matrix_market
    aborts the whole process (``terminate``) when it fails on a header read from a Python file
    object, so every header it would refuse must be refused here first.
    """
    fix = "matrix.mtx must be a Matrix Market coordinate file, as Cell Ranger writes"
    try:
        with _open_binary(path) as fh:
            banner = fh.readline(4096).decode("ascii", errors="replace").split()
            if (len(banner) < 5 or banner[0] != "%%MatrixMarket"
                    or banner[1].lower() != "matrix"):
                raise InputError("not a Matrix Market matrix (no '%%MatrixMarket matrix' banner)",
                                 file=path, where="line 1", fix=fix)
            fmt, field, symmetry = (t.lower() for t in banner[2:5])
            if (fmt not in ("coordinate", "array") or field not in _MTX_FIELDS
                    or symmetry not in _MTX_SYMMETRIES or (fmt == "array" and field == "pattern")):
                raise InputError(f"unsupported Matrix Market type '{fmt} {field} {symmetry}'"[:120],
                                 file=path, where="line 1",
                                 fix=fix + " (integer or real counts)")
            for lineno in range(2, _MTX_MAX_COMMENT_LINES + 2):
                raw = fh.readline(4096)
                if not raw:
                    break
                line = raw.decode("ascii", errors="replace").strip()
                if not line or line.startswith("%"):
                    continue
                need = 3 if fmt == "coordinate" else 2
                parts = line.split()
                dims = [int(p) for p in parts if p.isascii() and p.isdigit()]  # no sign, no 1e5
                if len(parts) != need or len(dims) != need or max(dims) >= 2**62:
                    raise InputError(f"bad size line (expected {need} whole numbers)", file=path,
                                     where=f"line {lineno}", fix=fix)
                return fmt, dims[0], dims[1], (dims[2] if fmt == "coordinate" else None)
    except InputError:
        raise
    except Exception as e:  # a truncated or corrupt gzip stream
        from pmed.omics._tables import damaged

        why = damaged(e)
        if why is not None:
            raise InputError(f"the matrix file is {why}", file=path,
                             fix="the file is incomplete or damaged: re-export the 10x output") from e
        raise InputError(f"cannot read Matrix Market file ({type(e).__name__}: {str(e)[:200]})",
                         file=path, fix=fix) from e
    raise InputError("no size line in the Matrix Market header", file=path, fix=fix)


def mmread_checked(mtx: Path, fmt: str, n_rows: int, n_cols: int, nnz: int | None):
    """scipy's ``mmread`` once the header is known to be one it accepts and the sizes it declares
    are possible for this file (scipy allocates them before reading a line)."""
    from scipy.io import mmread

    from pmed.io.text import is_gzip

    gz = is_gzip(mtx)
    size = mtx.stat().st_size
    # an entry line takes at least 4 bytes ("1 1\n"); deflate packs at most ~1032:1
    max_lines = size // 4 * (1100 if gz else 1)
    cells = n_rows * n_cols
    if fmt == "array" and (cells > _MTX_MAX_DENSE or cells > max_lines):
        raise InputError(f"a dense matrix of {n_rows} × {n_cols} values is not read", file=mtx,
                         fix="write the matrix in Matrix Market coordinate (sparse) format")
    if nnz is not None and (nnz > cells or nnz > max_lines):
        raise InputError(f"the header declares {nnz} entries, more than a {n_rows} × {n_cols} "
                         "matrix or this file can hold", file=mtx, where="size line",
                         fix="re-export the 10x output")
    problem = None
    if not gz and not mtx.name.lower().endswith((".gz", ".bz2")):
        try:
            return mmread(str(mtx))  # scipy's own C++ file reader
        except Exception as e:  # scipy's reader raises ValueError, IndexError, OSError…
            problem = f"{type(e).__name__}: {str(e)[:200]}"
    else:
        _check_gzip_complete(mtx)  # a cut stream is named as such, before scipy reads a line
        with _open_binary(mtx) as fh:
            m, problem = _mmread_stream(fh)
            if problem is None:
                return m
    raise InputError(f"cannot read Matrix Market file ({problem})", file=mtx,
                     fix="check that matrix.mtx is a Matrix Market coordinate file")


def _check_gzip_complete(path: Path) -> None:
    """Read a gzip file through to its end (1 MiB at a time): a stream cut short or damaged is
    refused as such. Decompressing costs far less than the parsing that follows."""
    import zlib

    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        from pmed.omics._tables import damaged

        raise InputError(f"the matrix file is {damaged(e)}", file=path,
                         fix="the file is incomplete or damaged: re-export the 10x output") from e


def _mmread_stream(fh):
    """``mmread`` on an open file, with scipy's reader gone before the file is closed.

    On an error, scipy's C++ reader object lives on in the exception's traceback; freed later,
    after the file was closed, it seeks the closed file and the process aborts or segfaults
    (found by ``tests/omics/test_omics_fuzz.py``). So the exception is not chained: its message
    is kept, the exception dropped and any cycle collected while the file is still open.
    """
    import gc

    from scipy.io import mmread

    try:
        return mmread(fh), None
    except Exception as e:  # scipy's reader raises ValueError, IndexError, OSError…
        problem = f"{type(e).__name__}: {str(e)[:200]}"
    gc.collect()  # the exception (and the reader in its traceback) is unreferenced by now
    return None, problem
