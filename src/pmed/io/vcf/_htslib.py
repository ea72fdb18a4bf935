"""The cyvcf2 (htslib) engine of :func:`pmed.io.vcf.read_vcf` and its byte pre-check.

Why a second engine: decoding genotypes is most of the cost of reading a VCF, and htslib does it
about five times faster than the pure-Python parser. Why the pre-check: htslib reads some files
differently from the pure parser (it takes ``+1`` as an allele, wraps large allele indices, turns
empty lines into records, exits the process on a record without any GT value), and its errors do
not name a line. So :func:`_scan` first checks the file's layout line by line, on bytes, and reads
its variant columns; only a file that passes is decoded by htslib, and the result is checked
against the scan. Everything else is left to the pure-Python parser (:mod:`pmed.io.vcf.read`),
which stays the reference. cyvcf2 is imported only when a VCF is read, never by ``import pmed``.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, PmedError, PmedWarning, require
from pmed.io.text import is_gzip
from pmed.io.vcf.read import _select_samples, _tables
from pmed.io.vcf.write import _FIXED_COLUMNS

__all__: list[str] = []

# ---------------------------------------------------------------------- reading with cyvcf2
# What the cyvcf2 path accepts is a subset of what the pure-Python parser accepts, chosen so that
# htslib reads it exactly as the pure parser would; anything else is handed to the pure parser.
# htslib itself refuses most malformed GT values ("0//1", "0.", " 0/1", "a"), which sends the
# file to the pure parser too; the checks below catch what it would read differently.
_CONTIG = re.compile(r"^##contig=<(?:[^\n]*?[<,])?ID=([^,>\n]+)", re.M)
_CONTIG_NAME = re.compile(r"[^\s,<>\"'=#]+")  # (and ASCII): what a ##contig ID can hold
_GT_FORMAT = re.compile(r"^##FORMAT=<ID=GT,", re.M)
_SUBFIELDS = re.compile(rb":[^\t]*")  # what follows GT in each sample field
# GT text → one byte class: digits "0", separators (/ | tab) "/", "." itself, anything else "x".
# htslib reads "+1" as 1 and keeps only 16 bits of an allele index (65537 → 1): a sign or a run
# of five digits is refused here (a run of up to four cannot wrap and is range-checked later).
_GT_CLASS = bytes(
    b"0"[0] if 0x30 <= c <= 0x39 else b"/"[0] if c in b"/|\t" else c if c == b"."[0] else b"x"[0]
    for c in range(256)
)


class _Decline(Exception):
    """The cyvcf2 path leaves this file to the pure-Python parser (the reason is the message)."""


def _import_cyvcf2(*, required: bool):
    """cyvcf2, or None when it is not installed and not ``required``."""
    if required:
        return require("cyvcf2", extra="genomics", feature="reading VCFs with engine='cyvcf2'")
    if importlib.util.find_spec("cyvcf2") is None:
        return None
    try:
        return require("cyvcf2", extra="genomics")
    except (ImportError, PmedError) as e:  # installed but broken: the pure parser still works
        warnings.warn(
            f"cyvcf2 is installed but cannot be imported ({type(e).__name__}: {e}); VCFs are "
            "read with the pure-Python parser",
            PmedWarning,
            stacklevel=3,
        )
        return None


def _plain_gts(samples: bytes) -> bool:
    """Whether a line's GT values (tab-joined, subfields removed) are all plain allele indices."""
    t = samples.translate(_GT_CLASS)
    return b"x" not in t and b"00000" not in t


def _scan(
    path: Path, samples: Sequence[str] | None
) -> tuple[list[tuple[str, int, str, str, str]], list[int], list[str], np.ndarray | None]:
    """Check the file's layout line by line and read its variant columns, as the pure parser would.

    Works on bytes: only the first nine columns are decoded, the genotypes are checked with a
    byte translation (a regular expression over every genotype would cost more than htslib's
    decoding). Returns the variant rows, the ALT-allele count of each, the header's sample IDs
    and the indices of the samples to keep. Raises :class:`_Decline` for anything the cyvcf2
    path does not read exactly like the pure parser (including every error the pure parser
    raises).
    """
    header: list[str] | None = None
    keep: np.ndarray | None = None
    rows: list[tuple[str, int, str, str, str]] = []
    n_alts: list[int] = []
    used_ids: set[str] = set()
    gt_index: dict[bytes, int] = {}
    n_cols = 0
    lineno = 0
    try:
        with gzip.open(path, "rb") if is_gzip(path) else open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw[:-1] if raw.endswith(b"\n") else raw
                if b"\r" in line or b"\x00" in line:
                    # the pure parser splits lines at a lone \r too; htslib's strings end at NUL
                    raise _Decline(f"a carriage return or NUL byte (line {lineno})")
                if not line:
                    # htslib turns an empty line into an empty record; the pure parser skips it
                    raise _Decline(f"an empty line (line {lineno})")
                if lineno == 1 and not line.startswith(b"##fileformat=VCF"):
                    # htslib recognises a VCF by this line (a BOM before it hides it too)
                    raise _Decline("no ##fileformat=VCF first line, which htslib needs")
                if line.startswith(b"#"):
                    if header is not None:
                        raise _Decline(f"a '#' line after the #CHROM header (line {lineno})")
                    text = line.decode("utf-8")  # the pure parser decodes every line
                    if text.startswith("##"):
                        continue
                    header = text.split("\t")
                    n_cols = len(header)
                    if header[: len(_FIXED_COLUMNS)] != list(_FIXED_COLUMNS) or (
                        n_cols > 8 and header[8] != "FORMAT"
                    ):
                        raise _Decline(f"an unusual #CHROM header (line {lineno})")
                    try:
                        keep = _select_samples(header[9:], samples, path, lineno)
                    except InputError:
                        raise _Decline("duplicate or absent sample IDs") from None
                    continue
                if header is None:
                    raise _Decline(f"a record before the #CHROM header (line {lineno})")
                fields = line.split(b"\t", 9)
                if len(fields) != min(n_cols, 10) or (
                    n_cols >= 10 and fields[9].count(b"\t") != n_cols - 10
                ):
                    raise _Decline(f"a wrong number of columns (line {lineno})")
                chrom, pos_s, vid, ref, alt = (f.decode("utf-8") for f in fields[:5])
                if not (pos_s.isascii() and pos_s.isdigit() and len(pos_s) <= 10):
                    raise _Decline(f"an unusual POS (line {lineno})")
                for f in fields[5:9]:
                    f.decode("utf-8")
                if n_cols > 9:
                    fmt = fields[8]
                    gt_idx = gt_index.get(fmt)
                    if gt_idx is None:
                        keys = fmt.split(b":")
                        if b"GT" not in keys:
                            raise _Decline(f"no GT in FORMAT (line {lineno})")
                        gt_idx = gt_index[fmt] = keys.index(b"GT")
                    gts = fields[9]
                    if fmt != b"GT" and not gts.isascii():
                        gts.decode("utf-8")
                    if gt_idx == 0:  # as the specification asks: cut the other subfields off
                        gts = gts if fmt == b"GT" else _SUBFIELDS.sub(b"", gts)
                    else:  # rare: pick GT out of each distinct sample field ("." when absent)
                        parts = [s.split(b":") for s in set(gts.split(b"\t"))]
                        if all(len(s) <= gt_idx for s in parts):
                            # htslib exits the process (exit(1) in bcf_get_format_values) when
                            # asked for the genotypes of a record where no sample has a GT value
                            raise _Decline(f"no sample has a GT value (line {lineno})")
                        gts = b"\t".join({s[gt_idx] if len(s) > gt_idx else b"." for s in parts})
                    if not _plain_gts(gts):
                        raise _Decline(f"a GT value outside the plain forms (line {lineno})")
                pos = int(pos_s)
                if vid == "." or vid in used_ids:
                    vid = f"{chrom}:{pos}:{ref}:{alt}"
                    if vid in used_ids:
                        raise _Decline(f"a duplicate record (line {lineno})")
                used_ids.add(vid)
                rows.append((chrom, pos, vid, ref, alt))
                n_alts.append(0 if alt in (".", "") else alt.count(",") + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise _Decline(f"cannot read ({type(e).__name__}, line {lineno + 1})") from None
    except UnicodeDecodeError:
        raise _Decline(f"not UTF-8 (line {lineno})") from None
    if header is None:
        raise _Decline("no #CHROM header")
    return rows, n_alts, header[9:], keep


_BLOCK = 256  # records whose genotype arrays are turned into dosages together


def _dosages(
    arrays: list[np.ndarray], n_alt: np.ndarray, keep: np.ndarray | None
) -> np.ndarray | None:
    """ALT-allele counts (records × samples) from cyvcf2 genotype arrays of one shape.

    Each array is ``n_samples × (ploidy + 1)``: allele indices (-1 missing, -2 no such slot, as in
    a haploid call of a diploid record), then the phase flag. None when an allele index is
    beyond the record's ALT alleles (``n_alt``). Slot by slot: numpy reduces a two-wide strided
    axis many times slower than it handles the slots one at a time.
    """
    g = np.stack(arrays)
    if keep is not None:
        g = g[:, keep]
    d = np.zeros(g.shape[:2], dtype=np.float64)
    missing = np.zeros(g.shape[:2], dtype=bool)
    for j in range(g.shape[2] - 1):
        slot = g[:, :, j]
        if slot.size and (slot.min() < -2 or (slot > n_alt[:, None]).any()):
            return None
        d += slot > 0
        missing |= slot == -1
    d[missing] = np.nan
    return d


def _read_vcf_cyvcf2(
    cyvcf2, path: Path, samples: Sequence[str] | None
) -> tuple[tuple[pd.DataFrame, pd.DataFrame] | None, str, bool]:
    """Read ``path`` with cyvcf2: ``(tables, "", False)``, or ``(None, reason, unexpected)``.

    ``unexpected`` is False when the file was declined by the checks (the pure parser is the
    right reader for it) and True when htslib itself failed or disagreed with the checks.
    """
    try:
        rows, n_alts, sample_ids, keep = _scan(path, samples)
    except _Decline as e:
        return None, str(e), False
    chroms = list(dict.fromkeys(r[0] for r in rows))
    for c in chroms:
        if not (c.isascii() and _CONTIG_NAME.fullmatch(c)):
            return None, "an unusual chromosome name", False
    with _quiet_htslib(cyvcf2):
        return _decode(cyvcf2, path, samples, rows, n_alts, sample_ids, keep, chroms)


@contextmanager
def _quiet_htslib(cyvcf2) -> Iterator[None]:
    """Silence htslib's messages on stderr: whatever it stumbles on, the pure parser reports."""
    module = getattr(cyvcf2, "cyvcf2", None)
    set_level = getattr(module, "set_htslib_log_level", None)
    if set_level is None:  # an older cyvcf2: its messages stay
        yield
        return
    set_level(0)
    try:
        yield
    finally:
        # back to the level cyvcf2 started with (CYVCF2_HTSLIB_LOG_LEVEL, else htslib's 3)
        reset = getattr(module, "_init_logging_from_env", None)
        if reset is not None:
            reset()
        else:
            set_level(3)


def _decode(
    cyvcf2,
    path: Path,
    samples: Sequence[str] | None,
    rows: list[tuple[str, int, str, str, str]],
    n_alts: list[int],
    sample_ids: list[str],
    keep: np.ndarray | None,
    chroms: list[str],
) -> tuple[tuple[pd.DataFrame, pd.DataFrame] | None, str, bool]:
    """The genotypes through htslib, for a file that passed :func:`_scan`."""
    try:
        vcf = cyvcf2.VCF(str(path), lazy=True)
    except Exception as e:  # htslib refuses the file: the pure parser says why (or reads it)
        return None, f"{type(e).__name__}: {e}", True
    blocks: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    first = 0  # index of the first pending record
    n_alt = np.array(n_alts, dtype=np.int64)
    subset = keep if samples is not None else None  # a subset, or the same in another order
    try:
        # htslib adds an undeclared contig itself, but a record on one whose line it failed to
        # parse crashes the process when read (see pmed.genomics.prs.targets): declare them all
        declared = set(_CONTIG.findall(vcf.raw_header))
        for c in chroms:
            if c not in declared:
                vcf.add_to_header(f"##contig=<ID={c}>")
        if sample_ids and _GT_FORMAT.search(vcf.raw_header) is None:
            vcf.add_to_header('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
        if list(vcf.samples) != sample_ids:
            return None, "htslib read other sample IDs", True
        n = 0
        for rec in vcf:
            # CHROM first: it is safe to read on any record (other fields may not be)
            if n >= len(rows) or rec.CHROM != rows[n][0] or rec.POS != rows[n][1]:
                return None, f"htslib read record {n + 1} differently", True
            if sample_ids:
                arr = rec.genotype.array()
                if pending and (len(pending) == _BLOCK or arr.shape != pending[0].shape):
                    block = _dosages(pending, n_alt[first:n], subset)
                    if block is None:  # an allele index beyond the ALT alleles
                        return None, f"allele index out of range (records {first + 1}-{n})", False
                    blocks.append(block)
                    pending, first = [], n
                pending.append(arr)
            n += 1
        if n != len(rows):
            return None, f"htslib read {n} of {len(rows)} records", True
        if pending:
            block = _dosages(pending, n_alt[first:n], subset)
            if block is None:
                return None, f"allele index out of range (records {first + 1}-{n})", False
            blocks.append(block)
    except Exception as e:  # htslib/cyvcf2 failed mid-file: the pure parser says why
        return None, f"{type(e).__name__}: {e}", True
    finally:
        vcf.close()
    kept = [sample_ids[i] for i in keep] if keep is not None else []
    # records × samples, transposed: a view, laid out as pandas stores a float frame
    values = np.concatenate(blocks).T if blocks else np.empty((len(kept), len(rows)))
    return _tables(rows, kept, values), "", False
