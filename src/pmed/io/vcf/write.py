"""Writing VCFs: plain text or real BGZF, with the standard library only.

:func:`write_vcf` writes phased ``GT`` genotypes as VCFv4.2 for the demo, the synthetic data sets
and the tests. A ``.gz`` name gives BGZF (the blocked gzip that ``bgzip``/``tabix``/``bcftools``
expect), built here from :mod:`zlib` so that writing needs no htslib. This module also holds the
format constants the readers share: the GRCh38 contig lengths, the BGZF EOF block and the fixed
VCF columns.
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

from pmed.errors import OptionError
from pmed.io._atomic import atomic_path

__all__ = ["write_vcf", "GRCH38_CONTIG_LENGTHS", "BGZF_EOF"]

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
