"""A small, dependency-free VCF writer and reader for modest files.

This module covers the common case of the demo and the tests: a few hundred to a few thousand
bi-allelic sites for a few thousand samples, genotypes only (``GT``). It reads plain, gzip and
BGZF files and writes plain text or real BGZF (the blocked gzip that ``bgzip``/``tabix``/
``bcftools`` expect), using only the standard library for compression.

Biobank-size data will go through a fast reader (cyvcf2 / pgenlib) later; this one favours
being simple and exact, and every refusal says which file, which line and what to do.
"""

from __future__ import annotations

import datetime as _dt
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError
from pmed.io._atomic import atomic_path
from pmed.io.text import open_text

__all__ = ["read_vcf", "write_vcf", "GRCH38_CONTIG_LENGTHS", "BGZF_EOF"]

#: Lengths of the GRCh38 primary assembly chromosomes (NCBI GCA_000001405.15), keyed without
#: the ``chr`` prefix.
GRCH38_CONTIG_LENGTHS: dict[str, int] = {
    "1": 248_956_422,
    "2": 242_193_529,
    "3": 198_295_559,
    "4": 190_214_555,
    "5": 181_538_259,
    "6": 170_805_979,
    "7": 159_345_973,
    "8": 145_138_636,
    "9": 138_394_717,
    "10": 133_797_422,
    "11": 135_086_622,
    "12": 133_275_309,
    "13": 114_364_328,
    "14": 107_043_718,
    "15": 101_991_189,
    "16": 90_338_345,
    "17": 83_257_441,
    "18": 80_373_285,
    "19": 58_617_616,
    "20": 64_444_167,
    "21": 46_709_983,
    "22": 50_818_468,
    "X": 156_040_895,
    "Y": 57_227_415,
    "M": 16_569,
}

#: The 28-byte empty BGZF block that marks a complete file (SAM/BAM specification §4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

# bgzip itself caps a block's input at 0xff00 bytes so that even incompressible data, stored
# raw, fits in the 64 KiB that the 16-bit BSIZE field can describe.
_BGZF_BLOCK_INPUT = 0xFF00
_BGZF_MAX_BLOCK = 0x10000

_FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_GT_SPLIT = re.compile(r"[|/]")
_CHROM_ORDER = {c: i for i, c in enumerate(GRCH38_CONTIG_LENGTHS)}


# ---------------------------------------------------------------------- BGZF
def _bgzf_block(chunk: bytes) -> bytes:
    """One BGZF block: a gzip member whose extra field carries the ``BC`` block size."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    cdata = comp.compress(chunk) + comp.flush()
    if len(cdata) + 26 > _BGZF_MAX_BLOCK:
        # Incompressible input: deflate "stored" (level 0) always fits, by the input cap.
        comp = zlib.compressobj(0, zlib.DEFLATED, -15)
        cdata = comp.compress(chunk) + comp.flush()
    bsize = len(cdata) + 25  # total block size minus 1: 18-byte header + data + 8-byte footer
    header = (
        b"\x1f\x8b\x08\x04"  # gzip magic, deflate, FLG.FEXTRA
        + struct.pack("<I", 0)  # MTIME 0: output must not depend on the clock
        + b"\x00\xff"  # XFL, OS unknown (as bgzip writes)
        + struct.pack("<H", 6)  # XLEN: one 6-byte extra subfield...
        + b"BC"  # ...BC, the BGZF block size
        + struct.pack("<HH", 2, bsize)
    )
    footer = struct.pack("<II", zlib.crc32(chunk) & 0xFFFFFFFF, len(chunk) & 0xFFFFFFFF)
    return header + cdata + footer


def _bgzf_blocks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), _BGZF_BLOCK_INPUT):
        yield _bgzf_block(data[start : start + _BGZF_BLOCK_INPUT])
    yield BGZF_EOF


def _bgzf_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` as BGZF (blocks of at most 0xff00 input bytes + EOF), atomically.

    Parameters
    ----------
    path
        Destination file.
    data
        The uncompressed bytes.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for block in _bgzf_blocks(data):
            fh.write(block)
    return path


# ---------------------------------------------------------------------- writing
def _chrom_key(chrom: str) -> tuple[int, str]:
    bare = _strip_chr(chrom)
    return (_CHROM_ORDER.get(bare, len(_CHROM_ORDER)), bare)


def _strip_chr(chrom: str) -> str:
    bare = chrom[3:] if chrom.lower().startswith("chr") else chrom
    return "M" if bare == "MT" else bare


def write_vcf(
    path: str | Path,
    variants: pd.DataFrame,
    genotypes: np.ndarray,
    samples: Sequence[str],
    *,
    contigs: dict[str, int] | None = None,
    source: str = "pmed",
    reference: str = "GRCh38",
    file_date: str | None = "today",
) -> Path:
    """Write phased genotypes as a VCFv4.2 file (BGZF-compressed when the name ends in ``.gz``).

    Parameters
    ----------
    path
        Destination. ``.gz`` (or ``.bgz``) gives BGZF that ``tabix``/``bcftools`` accept;
        anything else gives plain text. Written atomically.
    variants
        One row per site with columns ``chrom, pos, id, ref, alt`` (one ALT allele per row;
        ``id`` may be ``.`` or empty).
    genotypes
        Integer array of shape ``(n_variants, n_samples, 2)`` holding allele indices
        (0 = REF, 1 = ALT, -1 = missing), in the row order of ``variants``. Written as phased
        ``GT`` (``0|1``; ``.|.`` when missing).
    samples
        Sample IDs, one per genotype column.
    contigs
        Contig name → length for the ``##contig`` lines. Default: the GRCh38 lengths of the
        chromosomes present (1–22, X, Y, M; with or without a ``chr`` prefix); a contig whose
        length is unknown is declared without one.
    source, reference
        Values of the ``##source`` and ``##reference`` lines.
    file_date
        ``"today"`` (default) writes today's date in ``##fileDate``; a string is written as
        given; ``None`` omits the line (for byte-reproducible output).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        Missing variant columns, a genotype array of the wrong shape or with allele indices
        beyond the ALT alleles, or sample IDs that are empty, duplicated or contain whitespace.
    """
    path = Path(path)
    required = ["chrom", "pos", "id", "ref", "alt"]
    missing = [c for c in required if c not in variants.columns]
    if missing:
        raise OptionError(f"variants table lacks columns {missing}; it needs {required}")
    samples = [str(s) for s in samples]
    g = np.asarray(genotypes)
    n_var = len(variants)
    if g.ndim != 3 or g.shape != (n_var, len(samples), 2):
        raise OptionError(
            f"genotypes must have shape (n_variants, n_samples, 2) = ({n_var}, {len(samples)}, 2),"
            f" got {g.shape}"
        )
    bad = [s for s in samples if not s or re.search(r"\s", s)]
    if bad:
        raise OptionError(f"{len(bad)} sample ID(s) are empty or contain whitespace; sample IDs must "
                          "be non-empty and free of whitespace", fix="rename those samples")
    if len(set(samples)) != len(samples):
        raise OptionError("sample IDs must be unique")

    chrom = variants["chrom"].astype(str).to_numpy()
    pos = pd.to_numeric(variants["pos"]).to_numpy(dtype=np.int64)
    ids = variants["id"].fillna(".").astype(str).replace("", ".").to_numpy()
    ref = variants["ref"].astype(str).to_numpy()
    alt = variants["alt"].astype(str).to_numpy()
    n_alt = np.array([a.count(",") + 1 for a in alt], dtype=np.int64)
    if g.size and (g.min() < -1 or (g.max(axis=(1, 2)) > n_alt).any()):
        raise OptionError("genotype allele indices must be -1 (missing), 0 (REF) or an ALT index")

    # Sort by chromosome (natural order) then position; a stable sort keeps input order on ties.
    order = sorted(range(n_var), key=lambda i: (_chrom_key(chrom[i]), pos[i]))

    lines = ["##fileformat=VCFv4.2"]
    if file_date == "today":
        lines.append(f"##fileDate={_dt.date.today():%Y%m%d}")
    elif file_date is not None:
        lines.append(f"##fileDate={file_date}")
    lines += [f"##source={source}", f"##reference={reference}"]
    seen: list[str] = []
    for i in order:
        if chrom[i] not in seen:
            seen.append(chrom[i])
    for c in seen:
        if contigs is None:
            length = GRCH38_CONTIG_LENGTHS.get(_strip_chr(c))
        else:
            length = contigs.get(c)
        lines.append(f"##contig=<ID={c},length={length}>" if length else f"##contig=<ID={c}>")
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines.append("\t".join([*_FIXED_COLUMNS, "FORMAT", *samples]))

    # Allele index → text through a lookup table: -1 → ".", 0 → "0", ...
    lut = np.array(["."] + [str(k) for k in range(int(n_alt.max(initial=1)) + 1)], dtype=object)
    gi = g.astype(np.int64) + 1
    for i in order:
        gts = lut[gi[i, :, 0]] + "|" + lut[gi[i, :, 1]]
        lines.append(
            f"{chrom[i]}\t{pos[i]}\t{ids[i]}\t{ref[i]}\t{alt[i]}\t.\t.\t.\tGT\t" + "\t".join(gts)
        )
    data = ("\n".join(lines) + "\n").encode("utf-8")

    if path.name.endswith((".gz", ".bgz")):
        return _bgzf_write(path, data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


# ---------------------------------------------------------------------- reading
def _dosage_of(gt: str, n_alt: int) -> float | None:
    """ALT-allele count of one GT string; NaN when any allele is missing; None when malformed."""
    alleles = _GT_SPLIT.split(gt)
    count = 0
    for a in alleles:
        if a == "." or a == "":
            return np.nan
        if not a.isdigit():
            return None
        k = int(a)
        if k > n_alt:
            return None
        count += k > 0
    return float(count)


def read_vcf(
    path: str | Path, *, samples: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a (plain, gzip or BGZF) VCF into a variant table and an ALT-dosage table.

    Parameters
    ----------
    path
        The VCF file.
    samples
        Sample IDs to keep, in this order. Default: all, in file order.

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
        file and line.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("VCF file not found", file=path, fix="check the path")
    if path.is_dir():
        raise InputError("expected a VCF file, found a folder", file=path, fix="name the file")
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

    variants = pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt"])
    variants["pos"] = variants["pos"].astype(np.int64)
    kept = [sample_ids[i] for i in keep] if keep is not None else []
    values = np.column_stack(cols) if cols else np.empty((len(kept), len(rows)))
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
