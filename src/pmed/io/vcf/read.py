"""Reading VCFs into a variant table and an ALT-dosage table.

:func:`read_vcf` chooses the engine. The pure-Python parser here is the reference: simple,
exact, dependency-free, and every refusal names the file, line and column and says what to do.
It reads plain, gzip and BGZF files (sniffed by content). When cyvcf2 (htslib; the ``genomics``
extra) is installed, the genotypes of a file are decoded by it instead (about five times faster,
see :mod:`pmed.io.vcf._htslib`); files outside what that path checks, and malformed ones, still go
through the pure-Python parser, so both engines give the same tables and the same errors. The
table builder (:func:`_tables`) and the sample selection are shared by both engines.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError, PmedWarning
from pmed.io.text import open_text
from pmed.io.vcf.write import _FIXED_COLUMNS

__all__ = ["read_vcf"]

_GT_SPLIT = re.compile(r"[|/]")
_ENGINES = ("auto", "cyvcf2", "python")


# ---------------------------------------------------------------------- reading
def _dosage_of(gt: str, n_alt: int) -> float | None:
    """ALT-allele count of one GT string; NaN when any allele is missing; None when malformed."""
    alleles = _GT_SPLIT.split(gt)
    count = 0
    for a in alleles:
        if a == "." or a == "":
            return np.nan
        if not (a.isascii() and a.isdigit()):  # str.isdigit alone takes "²", which int() refuses
            return None
        k = int(a)
        if k > n_alt:
            return None
        count += k > 0
    return float(count)


def read_vcf(
    path: str | Path,
    *,
    samples: Sequence[str] | None = None,
    engine: str = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a (plain, gzip or BGZF) VCF into a variant table and an ALT-dosage table.

    Parameters
    ----------
    path
        The VCF file.
    samples
        Sample IDs to keep, in this order. Default: all, in file order.
    engine
        ``"auto"`` (default): decode genotypes with cyvcf2 (htslib) when it is installed (the
        ``genomics`` extra), else with the pure-Python parser. ``"python"``: the pure-Python
        parser only. ``"cyvcf2"``: cyvcf2 only (:class:`~pmed.errors.MissingDependencyError`
        without it). Both give the same tables. cyvcf2 is used only for files that pass a
        line-by-line check of their layout (``##fileformat`` first, header, column counts,
        positions, ``GT`` in FORMAT, plain ``GT`` values, no empty lines or CR line ends); any
        other file, and any file htslib stumbles on (then with a
        :class:`~pmed.errors.PmedWarning`), is read by the pure-Python parser, whose errors name
        the file, line and column.

    Returns
    -------
    variants : pandas.DataFrame
        One row per record: ``chrom`` (str), ``pos`` (int), ``id``, ``ref``, ``alt``
        (comma-joined at multi-allelic sites). ``id`` is the record's ID, or
        ``chrom:pos:ref:alt`` when the ID is ``.`` or repeats an earlier one; it names the
        record's column in ``dosages``.
    dosages : pandas.DataFrame
        Indexed by sample ID (index name ``sample_id``), one float column per record: the
        number of non-reference alleles (0–2 for diploid, 0–1 for haploid calls), NaN when the
        call is missing or partly missing. Phased and unphased calls read alike.

    Raises
    ------
    InputError
        The file is missing or cannot be decompressed/decoded; the ``#CHROM`` header line is
        absent; a record has the wrong number of columns, a non-numeric POS, no ``GT`` in
        FORMAT, or an unreadable genotype; a requested sample is absent. The message names the
        file and line. With ``engine="cyvcf2"``, also a file that cyvcf2 cannot read although
        the pure-Python parser can (the message says why).
    OptionError
        ``engine`` is not one of ``"auto"``, ``"cyvcf2"``, ``"python"``.
    MissingDependencyError
        ``engine="cyvcf2"`` without cyvcf2 installed.
    """
    if engine not in _ENGINES:
        raise OptionError(
            f"unknown VCF engine {engine!r}",
            fix="use engine='auto' (cyvcf2 when installed), 'cyvcf2' or 'python'",
        )
    path = Path(path)
    _check_is_file(path)
    if engine == "python":
        return _read_vcf_python(path, samples)
    # Imported here, not at the top: the cyvcf2 engine builds its tables with _tables and
    # _select_samples from this module.
    from pmed.io.vcf._htslib import _import_cyvcf2, _read_vcf_cyvcf2

    cyvcf2 = _import_cyvcf2(required=engine == "cyvcf2")
    if cyvcf2 is None:
        return _read_vcf_python(path, samples)
    tables, reason, unexpected = _read_vcf_cyvcf2(cyvcf2, path, samples)
    if tables is not None:
        return tables
    # The pure-Python parser is the reference: on a malformed file it raises its precise error
    # (file, line, column); on a file outside the cyvcf2 path's checks it reads it.
    tables = _read_vcf_python(path, samples)
    if engine == "cyvcf2":
        raise InputError(
            f"cyvcf2 cannot read this file: {reason}",
            file=path,
            fix="read it with engine='auto' or engine='python' (the pure-Python parser)",
        )
    if unexpected:
        warnings.warn(
            f"{path}: cyvcf2 could not read this VCF ({reason}); read with the pure-Python "
            "parser instead",
            PmedWarning,
            stacklevel=2,
        )
    return tables


def _check_is_file(path: Path) -> None:
    if not path.exists():
        raise InputError("VCF file not found", file=path, fix="check the path")
    if path.is_dir():
        raise InputError("expected a VCF file, found a folder", file=path, fix="name the file")


def _read_vcf_python(
    path: Path, samples: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pure-Python reader: the reference, and the fallback of the cyvcf2 path."""
    _check_is_file(path)
    header: list[str] | None = None
    header_line = 0
    keep: np.ndarray | None = None
    sample_ids: list[str] = []
    rows: list[tuple[str, int, str, str, str]] = []
    cols: list[np.ndarray] = []
    used_ids: set[str] = set()
    lineno = 0
    try:
        # gzip/BGZF sniffed by content, not name: a ".vcf" may be gzipped, a ".gz" plain
        with open_text(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line:
                    continue
                if line.startswith("##"):
                    continue
                if line.startswith("#"):
                    header = line.split("\t")
                    header_line = lineno
                    if header[: len(_FIXED_COLUMNS)] != list(_FIXED_COLUMNS):
                        raise InputError(
                            "malformed header line: expected the tab-separated columns "
                            + " ".join(_FIXED_COLUMNS)
                            + " [FORMAT <samples>]",
                            file=path,
                            where=f"line {lineno}",
                            fix="separate the header columns with tabs, starting with #CHROM",
                        )
                    sample_ids = header[9:]
                    keep = _select_samples(sample_ids, samples, path, lineno)
                    continue
                if header is None:
                    raise InputError(
                        "record before the '#CHROM' header line",
                        file=path,
                        where=f"line {lineno}",
                        fix="a VCF needs a '#CHROM\\tPOS\\tID\\tREF\\tALT\\tQUAL\\tFILTER\\tINFO"
                        "\\tFORMAT\\t<samples>' header line before its records",
                    )
                rows.append(_parse_record(line, header, header_line, keep, path, lineno, cols))
                chrom, pos, vid, ref, alt = rows[-1]
                if vid == "." or vid in used_ids:
                    vid = f"{chrom}:{pos}:{ref}:{alt}"
                    if vid in used_ids:
                        raise InputError(
                            f"duplicate record {vid}",
                            file=path,
                            where=f"line {lineno}",
                            fix="remove the repeated record or give it a distinct ID",
                        )
                    rows[-1] = (chrom, pos, vid, ref, alt)
                used_ids.add(vid)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(
            f"cannot read: {e}",
            file=path,
            where=f"line {lineno + 1}" if lineno else None,
            fix="check the file is a complete VCF, plain or (b)gzip-compressed",
        ) from None
    except UnicodeDecodeError:
        raise InputError(
            "not UTF-8 text",
            file=path,
            where=f"line {lineno + 1}",
            fix="a VCF is UTF-8 text; compress it with bgzip, not another tool",
        ) from None
    if header is None:
        raise InputError(
            "no '#CHROM' header line found",
            file=path,
            where=f"line {lineno}" if lineno else "line 1 (the file is empty)",
            fix="a VCF needs a '#CHROM\\tPOS\\tID\\tREF\\tALT\\tQUAL\\tFILTER\\tINFO\\tFORMAT"
            "\\t<samples>' header line",
        )

    kept = [sample_ids[i] for i in keep] if keep is not None else []
    values = np.column_stack(cols) if cols else np.empty((len(kept), len(rows)))
    return _tables(rows, kept, values)


def _tables(
    rows: list[tuple[str, int, str, str, str]], kept: list[str], values: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two returned tables (``values`` is samples × records), built alike by both engines."""
    variants = pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt"])
    variants["pos"] = variants["pos"].astype(np.int64)
    dosages = pd.DataFrame(
        values, index=pd.Index(kept, name="sample_id"), columns=variants["id"].tolist()
    )
    return variants, dosages


def _select_samples(
    sample_ids: list[str], wanted: Sequence[str] | None, path: Path, lineno: int
) -> np.ndarray:
    if len(set(sample_ids)) != len(sample_ids):
        dup = sorted({s for s in sample_ids if sample_ids.count(s) > 1})
        raise InputError(
            f"duplicate sample IDs in the header: {', '.join(dup[:5])}",
            file=path,
            where=f"line {lineno}",
            fix="give every sample column a unique ID (bcftools reheader)",
        )
    if wanted is None:
        return np.arange(len(sample_ids))
    index = {s: i for i, s in enumerate(sample_ids)}
    absent = [str(s) for s in wanted if str(s) not in index]
    if absent:
        raise InputError(
            f"{len(absent)} requested sample(s) not in the VCF: {', '.join(absent[:5])}",
            file=path,
            where=f"line {lineno} (#CHROM header)",
            fix="check the sample IDs; the file has "
            + ", ".join(sample_ids[:5])
            + (", …" if len(sample_ids) > 5 else ""),
        )
    return np.array([index[str(s)] for s in wanted], dtype=np.int64)


def _parse_record(
    line: str,
    header: list[str],
    header_line: int,
    keep: np.ndarray | None,
    path: Path,
    lineno: int,
    cols: list[np.ndarray],
) -> tuple[str, int, str, str, str]:
    fields = line.split("\t")
    if len(fields) != len(header):
        raise InputError(
            f"expected {len(header)} tab-separated columns (as in the #CHROM header at line "
            f"{header_line}), found {len(fields)}",
            file=path,
            where=f"line {lineno}",
            fix="separate columns with tabs (not spaces) and give every sample one field",
        )
    chrom, pos_s, vid, ref, alt = fields[:5]
    try:
        pos = int(pos_s)
    except ValueError:
        raise InputError(
            f"POS {pos_s!r} is not a whole number",
            file=path,
            where=f"line {lineno}, column POS",
            fix="POS must be the 1-based position, digits only",
        ) from None
    if not -(2**63) <= pos < 2**63:  # the table holds int64 positions
        raise InputError(
            f"POS has {len(pos_s)} digits, beyond any chromosome",
            file=path,
            where=f"line {lineno}, column POS",
            fix="POS must be the 1-based position within the chromosome",
        )
    n_samples = len(header) - 9
    if n_samples <= 0:
        return chrom, pos, vid, ref, alt
    fmt = fields[8].split(":")
    if "GT" not in fmt:
        raise InputError(
            f"FORMAT {fields[8]!r} has no GT field",
            file=path,
            where=f"line {lineno}, column FORMAT",
            fix="pmed reads genotypes from GT; call or convert genotypes so FORMAT includes GT",
        )
    gt_idx = fmt.index("GT")
    n_alt = 0 if alt in (".", "") else alt.count(",") + 1
    cache: dict[str, float | None] = {}
    idx = keep if keep is not None else np.arange(n_samples)
    out = np.empty(len(idx), dtype=np.float64)
    for j, k in enumerate(idx):
        parts = fields[9 + k].split(":")
        gt = parts[gt_idx] if gt_idx < len(parts) else "."
        d = cache.get(gt, -1.0)
        if d == -1.0:
            d = cache[gt] = _dosage_of(gt, n_alt)
        if d is None:
            raise InputError(
                f"unreadable genotype {gt!r}",
                file=path,
                where=f"line {lineno}, column {header[9 + k]}",
                fix=f"GT must be allele indices 0–{n_alt} (or '.') separated by '/' or '|'",
            )
        out[j] = d
    cols.append(out)
    return chrom, pos, vid, ref, alt

