"""Read the pharmacogene positions of a VCF, normalised to the allele definitions.

Only the records that touch an allele-defining position are kept, so a whole-genome VCF costs
one pass (or, with a tabix/CSI index and ``cyvcf2`` installed, a few region queries). Each record
is matched to the definitions' *normalised* representation (PharmCAT's
``pharmcat_positions.vcf``): indels that are not left-aligned, that carry extra padding, or that
sit in a multi-allelic record (the UGT1A1 TA repeat rs3064744) are compared as sequences over
the window both representations cover, so ``CAT>CATAT`` at the definition position and
``A>ATA`` one base to the right are the same allele.

GRCh37 input is refused: by the header (``##reference``, ``##contig`` lengths) or, when the
header says nothing, by the reference bases at the definition positions.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from pmed.errors import InputError, format_rows
from pmed.genomics.pgx._data import ALL_GENES, definitions
from pmed.io import open_text

__all__ = ["PgxGenotypes", "read_pgx_vcf", "GRCH37_CHR1_LENGTH", "GRCH38_CHR1_LENGTH"]

GRCH37_CHR1_LENGTH = 249_250_621
GRCH38_CHR1_LENGTH = 248_956_422
_MISSING = -1


@dataclass
class PgxGenotypes:
    """Genotypes of every sample at every allele-defining position of the matcher genes.

    Attributes
    ----------
    samples
        Sample IDs in VCF column order.
    calls
        ``{(gene, definition_index): (alleles, gt, phased, ps)}`` (the index into the gene's
        ``variants``; two definitions can share a position) where ``alleles`` are the allele
        strings in the definition's representation (index 0 is the definition's reference; an
        undocumented allele keeps its own normalised string), ``gt`` is an ``(n_samples, 2)``
        int array of indices into ``alleles`` (``-1`` missing, second column ``-2`` for a
        haploid call), ``phased`` a bool array and ``ps`` a list of phase-set labels.
    source
        The file read.
    warnings
        ``{"chr:pos": [messages]}`` about records that could not be matched exactly.
    """

    samples: list[str]
    calls: dict[tuple[str, int], tuple[list[str], np.ndarray, np.ndarray, list]] = field(
        default_factory=dict
    )
    source: str = ""
    warnings: dict[str, list[str]] = field(default_factory=dict)


def _norm_chrom(chrom: str) -> str:
    c = chrom.removeprefix("chr").removeprefix("CHR")
    return "chrM" if c in ("M", "MT") else "chr" + c


class _Index:
    """Definition positions by chromosome, with the spans an input record may overlap."""

    def __init__(self, genes: Iterable[str]) -> None:
        defs = definitions()["genes"]
        self.by_site: dict[tuple[str, int], list[tuple[str, int, int, dict]]] = {}
        self.regions: dict[str, list[int]] = {}
        self.gene_regions: list[tuple[str, int, int]] = []
        for gene in genes:
            gd = defs[gene]
            chrom = gd["chromosome"]
            ps = [int(v["position"]) for v in gd["variants"]]
            self.gene_regions.append(
                (chrom, min(ps), max(p + len(v["ref"]) for p, v in zip(ps, gd["variants"],
                                                                     strict=True)))
            )
            for j, v in enumerate(gd["variants"]):
                p = int(v["position"])
                span = len(v["ref"])
                for q in range(p, p + span + 1):
                    self.by_site.setdefault((chrom, q), []).append((gene, j, p, v))
                lo_hi = self.regions.setdefault(chrom, [p, p + span])
                lo_hi[0] = min(lo_hi[0], p)
                lo_hi[1] = max(lo_hi[1], p + span)
        self.chroms = set(self.regions)


def _window_alleles(
    def_pos: int, def_ref: str, def_alleles: list[str], rec_pos: int, rec_ref: str,
    rec_alleles: list[str],
) -> list[int | None] | None:
    """Map each record allele to an index of ``def_alleles`` by comparing window sequences.

    Returns ``None`` when the two reference strings disagree where they overlap (a sign of a
    different genome build or a malformed record).
    """
    start = min(def_pos, rec_pos)
    end = max(def_pos + len(def_ref), rec_pos + len(rec_ref))
    ref = ["N"] * (end - start)
    for pos, seq in ((def_pos, def_ref), (rec_pos, rec_ref)):
        for i, b in enumerate(seq.upper()):
            j = pos - start + i
            if ref[j] not in ("N", b):
                return None
            ref[j] = b
    refs = "".join(ref)

    def expand(pos: int, r: str, allele: str) -> str:
        a = pos - start
        return refs[:a] + allele.upper() + refs[a + len(r):]

    targets = {}
    for i, a in enumerate(def_alleles):
        targets.setdefault(expand(def_pos, def_ref, a), i)
    out: list[int | None] = []
    for a in rec_alleles:
        if a in (".", "*") or a.startswith("<"):
            out.append(None)
            continue
        out.append(targets.get(expand(rec_pos, rec_ref, a)))
    return out


_GT_SPLIT = re.compile(r"[/|]")
# an allele index: ASCII digits only (``int`` would also take "-1", "+1", " 1" and "1_0")
_ALLELE_INDEX = re.compile(r"[0-9]{1,9}")


def _parse_gt(value: str) -> tuple[list[int | None], bool]:
    """``"0|1"`` → ``([0, 1], True)``; ``ValueError`` for anything that is not a GT."""
    if value in (".", "./.", ".|."):
        return [None, None] if "/" in value or "|" in value else [None], False
    parts = _GT_SPLIT.split(value)
    phased = "|" in value and "/" not in value
    out: list[int | None] = []
    for p in parts:
        if p == ".":
            out.append(None)
        elif _ALLELE_INDEX.fullmatch(p):
            out.append(int(p))
        else:
            raise ValueError(p)  # turned into an InputError naming the line by the caller
    return out, phased


def _detect_build(header: list[str], path: Path) -> None:
    for line in header:
        low = line.lower()
        if low.startswith("##reference") and re.search(r"grch37|hg19|b37|hs37|human_g1k_v37", low):
            raise InputError(
                "the VCF header declares a GRCh37/hg19 reference; pmed's pharmacogene "
                "definitions are GRCh38",
                file=path,
                where=line.strip()[:120],
                fix="lift the VCF over to GRCh38 (e.g. bcftools +liftover or Picard LiftoverVcf) "
                "or re-call against GRCh38",
            )
        if low.startswith("##contig"):
            m = re.search(r"id=(?:chr)?1,.*length=(\d+)", low) or re.search(
                r"length=(\d+),\s*id=(?:chr)?1[,>]", low
            )
            if m and int(m.group(1)) == GRCH37_CHR1_LENGTH:
                raise InputError(
                    f"contig 1 has the GRCh37 length {GRCH37_CHR1_LENGTH:,}; pmed's "
                    "pharmacogene definitions are GRCh38",
                    file=path,
                    where=line.strip()[:120],
                    fix="lift the VCF over to GRCh38 or re-call against GRCh38",
                )


def _iter_lines(path: Path, index: _Index) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of the header and of candidate records."""
    tbi = [Path(str(path) + s) for s in (".tbi", ".csi")]
    if any(p.exists() for p in tbi):
        try:
            import cyvcf2  # noqa: F401
        except ImportError:  # pragma: no cover - cyvcf2 is optional
            pass
        else:
            yield from _iter_indexed(path, index)
            return
    try:
        yield from _iter_text(path, index)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # a truncated .gz ends in EOFError, damaged deflate data in zlib.error
        raise InputError(
            f"the VCF cannot be read to its end ({type(exc).__name__}): the gzip/BGZF data are "
            "truncated or corrupt",
            file=path, fix="re-create or re-download the file (check it with `gzip -t`)",
        ) from None
    except OSError as exc:
        raise InputError(f"the VCF cannot be read ({type(exc).__name__}: {exc.strerror or exc})",
                         file=path, fix="check the file's permissions and the disk") from None


def _iter_text(path: Path, index: _Index) -> Iterator[tuple[int, str]]:
    with open_text(path, errors="replace", newline=None) as fh:
        for n, line in enumerate(fh, 1):
            if line.startswith("#"):
                yield n, line
                continue
            tab1 = line.find("\t")
            tab2 = line.find("\t", tab1 + 1)
            if tab1 < 0 or tab2 < 0:
                if line.strip():
                    raise InputError(
                        "malformed VCF record: fewer than 2 tab-separated columns",
                        file=path, where=f"line {n}",
                        fix="the file must be tab-separated VCF (CHROM POS ID REF ALT ...)",
                    )
                continue
            chrom = line[:tab1]
            c = chrom if chrom.startswith("chr") else _norm_chrom(chrom)
            if c not in index.chroms:
                continue
            try:
                pos = int(line[tab1 + 1:tab2])
            except ValueError:
                raise InputError(
                    f"malformed VCF record: POS {line[tab1 + 1:tab2]!r} is not an integer",
                    file=path, where=f"line {n}, column 'POS'",
                    fix="fix or remove this line",
                ) from None
            if (c, pos) in index.by_site:
                yield n, line


def _iter_indexed(path: Path, index: _Index) -> Iterator[tuple[int, str]]:
    import cyvcf2

    vcf = cyvcf2.VCF(str(path), lazy=True, threads=1)
    try:
        yield from enumerate(vcf.raw_header.splitlines(keepends=True), 1)
        names = set(vcf.seqnames)
        seen: set[tuple[str, int, str, str]] = set()
        for chrom, lo, hi in sorted(index.gene_regions):
            for cand in (chrom, chrom.removeprefix("chr"), "MT" if chrom == "chrM" else None):
                if cand and cand in names:
                    for v in vcf(f"{cand}:{lo}-{hi}"):
                        if (chrom, v.POS) in index.by_site:
                            key = (chrom, v.POS, v.REF, ",".join(v.ALT))
                            if key not in seen:  # overlapping gene regions
                                seen.add(key)
                                yield 0, str(v)
                    break
    finally:
        vcf.close()


def read_pgx_vcf(
    path: str | PathLike,
    *,
    genes: Iterable[str] | None = None,
    samples: Iterable[str] | None = None,
) -> PgxGenotypes:
    """Read the genotypes of the matcher genes' positions from a VCF.

    Parameters
    ----------
    path
        A GRCh38 VCF, plain or gzip/bgzip, single- or multi-sample, with or without ``chr``
        prefixes. With a ``.tbi``/``.csi`` index beside it and ``cyvcf2`` installed, only the
        pharmacogene regions are read.
    genes
        Restrict to these genes (default: every matcher gene).
    samples
        Restrict to these sample IDs (default: all).

    Returns
    -------
    PgxGenotypes
        Genotypes at every definition position that appears in the VCF. Positions absent from
        the file are absent from ``calls`` (the matcher treats them as missing, or as
        reference with ``missing_to_ref``).

    Raises
    ------
    InputError
        For a missing file, a malformed header or record (with its line and column), a VCF
        without samples, or GRCh37 input.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("VCF file not found", file=path, fix="check the path")
    genes = list(genes) if genes is not None else list(ALL_GENES)
    unknown = [g for g in genes if g not in definitions()["genes"]]
    if unknown:
        raise InputError(
            f"no allele definitions for {', '.join(unknown)}",
            fix=f"choose among {', '.join(ALL_GENES)}",
        )
    index = _Index(genes)
    header: list[str] = []
    sample_ids: list[str] | None = None
    keep: np.ndarray | None = None
    result = PgxGenotypes(samples=[], source=str(path))
    # (gene, pos) -> list of (alleles, gt rows, phased, ps)
    raw: dict[tuple[str, int], list] = {}
    ref_checks = [0, 0]  # [records compared, reference mismatches]
    for n, line in _iter_lines(path, index):
        if line.startswith("##"):
            header.append(line)
            continue
        if line.startswith("#"):
            if sample_ids is not None:
                raise InputError(
                    "a header line ('#…') after the #CHROM line", file=path, where=f"line {n}",
                    fix="a VCF has one #CHROM line, after the ## meta-information lines and "
                    "before the records",
                )
            _detect_build(header, path)
            cols = line.rstrip("\n\r").split("\t")
            if len(cols) < 10 or cols[8] != "FORMAT":
                raise InputError(
                    "the VCF has no sample columns (need FORMAT and at least one sample)",
                    file=path, where=f"line {n}",
                    fix="give a VCF with genotypes (GT) for at least one sample",
                )
            sample_ids = cols[9:]
            _check_sample_ids(sample_ids, path, n)
            if samples is not None:
                wanted = list(dict.fromkeys(samples))
                missing = [i for i, s in enumerate(wanted, 1) if s not in sample_ids]
                if missing:
                    # positions in the request, not the IDs: no patient identifier in messages
                    raise InputError(
                        f"{len(missing)} of the {len(wanted)} requested sample(s) are not in "
                        f"the VCF (requested sample(s) number {format_rows(missing)})",
                        file=path, where=f"line {n}",
                        fix=f"the VCF has {len(sample_ids)} sample column(s); check the sample "
                        "names asked for (`bcftools query -l` lists them)",
                    )
                keep = np.array([sample_ids.index(s) for s in wanted], dtype=np.intp)
                result.samples = wanted
            else:
                keep = np.arange(len(sample_ids))
                result.samples = list(sample_ids)
            continue
        if sample_ids is None:
            raise InputError(
                "VCF record before the #CHROM header line",
                file=path, where=f"line {n}", fix="the file needs a #CHROM header line",
            )
        _parse_record(line, n, path, sample_ids, keep, index, raw, result, ref_checks)
    if sample_ids is None:
        raise InputError(
            "no #CHROM header line: this is not a VCF",
            file=path, fix="give a VCF 4.x file with a #CHROM header and sample columns",
        )
    if ref_checks[0] >= 5 and ref_checks[1] / ref_checks[0] > 0.5:
        raise InputError(
            f"{ref_checks[1]} of {ref_checks[0]} records at pharmacogene positions have a "
            "reference base that differs from GRCh38: the VCF looks like GRCh37/hg19",
            file=path,
            fix="lift the VCF over to GRCh38 or re-call against GRCh38",
        )
    for key, entries in raw.items():
        result.calls[key] = _merge(entries)
    return result


def _check_sample_ids(sample_ids: list[str], path: Path, n: int) -> None:
    """Sample names must be non-empty and unique (VCF 4.3, 1.5): they become patient IDs."""
    empty = [10 + i for i, s in enumerate(sample_ids) if not s.strip()]
    if empty:
        raise InputError(
            f"{len(empty)} sample column(s) without a name",
            file=path, where=f"line {n}, column(s) {format_rows(empty)}",
            fix="name every sample column of the #CHROM line (and remove trailing tabs)",
        )
    seen: dict[str, int] = {}
    dup = []
    for i, s in enumerate(sample_ids):
        if s in seen:
            dup.append(10 + i)
        seen.setdefault(s, i)
    if dup:
        raise InputError(
            f"{len(dup)} sample column(s) repeat an earlier sample name",
            file=path, where=f"line {n}, column(s) {format_rows(dup)}",
            fix="give each sample a unique name (bcftools reheader --samples)",
        )


def _parse_record(line, n, path, sample_ids, keep, index, raw, result, ref_checks) -> None:
    cols = line.rstrip("\n\r").split("\t")
    if len(cols) != 9 + len(sample_ids):
        raise InputError(
            f"malformed VCF record: {len(cols)} columns, the header has {9 + len(sample_ids)}",
            file=path, where=f"line {n}",
            fix="every record needs CHROM..FORMAT plus one column per sample",
        )
    chrom = _norm_chrom(cols[0])
    try:
        pos = int(cols[1])
    except ValueError:
        raise InputError(
            f"malformed VCF record: POS {cols[1]!r} is not an integer",
            file=path, where=f"line {n}, column 'POS'", fix="fix or remove this line",
        ) from None
    ref = cols[3].upper()
    if not ref or not re.fullmatch(r"[ACGTN]+", ref):
        raise InputError(
            f"malformed VCF record: REF {cols[3]!r} is not a DNA sequence",
            file=path, where=f"line {n}, column 'REF'", fix="fix or remove this line",
        )
    alts = [] if cols[4] in (".", "") else cols[4].split(",")
    fmt = cols[8].split(":")
    if not fmt or fmt[0] != "GT":
        raise InputError(
            "malformed VCF record: FORMAT must start with GT",
            file=path, where=f"line {n}, column 'FORMAT'",
            fix="pmed needs genotypes (GT) as the first FORMAT key",
        )
    ps_idx = fmt.index("PS") if "PS" in fmt else None
    for gene, def_j, def_pos, v in index.by_site[(chrom, pos)]:
        def_alleles = [v["ref"], *v["alts"]]
        mapping = _window_alleles(def_pos, v["ref"], def_alleles, pos, ref, [ref, *alts])
        if pos == def_pos:
            ref_checks[0] += 1
        if mapping is None:
            if pos == def_pos:
                ref_checks[1] += 1
            result.warnings.setdefault(f"{chrom}:{pos}", []).append(
                f"reference {ref} does not match the {gene} definition ({v['ref']} at "
                f"{def_pos}); record ignored"
            )
            continue
        if pos != def_pos and mapping[0] != 0:
            continue  # an unrelated record that merely overlaps the definition's span
        alleles = list(def_alleles)
        rec_to_def: list[int] = []
        for i, m in enumerate(mapping):
            if m is None:
                if i == 0 or alts[i - 1] in (".", "*") or alts[i - 1].startswith("<"):
                    rec_to_def.append(_MISSING)
                    continue
                alleles.append(alts[i - 1].upper())  # undocumented allele, kept as is
                rec_to_def.append(len(alleles) - 1)
            else:
                rec_to_def.append(m)
        if pos != def_pos and all(m in (0, None) for m in mapping[1:]):
            continue
        n_s = len(keep)
        gt = np.full((n_s, 2), _MISSING, dtype=np.int16)
        phased = np.zeros(n_s, dtype=bool)
        ps: list = [None] * n_s
        for out_i, col_i in enumerate(keep):
            field = cols[9 + col_i]
            parts = field.split(":")
            try:
                calls, is_phased = _parse_gt(parts[0])
            except ValueError:
                raise InputError(
                    f"malformed genotype {parts[0]!r}",
                    file=path, where=f"line {n}, column {sample_ids[col_i]!r}",
                    fix="GT must look like 0/1, 1|0, 0 or ./.",
                ) from None
            if len(calls) > 2:
                raise InputError(
                    f"genotype {parts[0]!r} has more than two alleles",
                    file=path, where=f"line {n}, column {sample_ids[col_i]!r}",
                    fix="pmed calls diploid (or haploid chrX/chrY) genotypes only",
                )
            for k, c in enumerate(calls):
                if c is None:
                    gt[out_i, k] = _MISSING
                elif c >= len(rec_to_def):
                    raise InputError(
                        f"genotype {parts[0]!r} refers to allele {c} but the record has "
                        f"{len(alts)} ALT allele(s)",
                        file=path, where=f"line {n}, column {sample_ids[col_i]!r}",
                        fix="fix the GT or the ALT column",
                    )
                else:
                    gt[out_i, k] = rec_to_def[c]
            if len(calls) == 1:
                gt[out_i, 1] = -2
            phased[out_i] = is_phased
            if ps_idx is not None and ps_idx < len(parts) and parts[ps_idx] not in (".", ""):
                ps[out_i] = parts[ps_idx]
        raw.setdefault((gene, def_j), []).append((alleles, gt, phased, ps))


def _merge(entries: list) -> tuple[list[str], np.ndarray, np.ndarray, list]:
    """Merge several records mapped to one definition position (split multi-allelics)."""
    if len(entries) == 1:
        return entries[0]
    alleles = list(entries[0][0])
    gt = entries[0][1].copy()
    phased = entries[0][2].copy()
    ps = list(entries[0][3])
    for al, g, ph, p in entries[1:]:
        remap = []
        for a in al:
            if a not in alleles:
                alleles.append(a)
            remap.append(alleles.index(a))
        for s in range(g.shape[0]):
            row = g[s]
            if (row > 0).any() and not (gt[s] > 0).any():
                gt[s] = [remap[x] if x >= 0 else x for x in row]
                phased[s] = ph[s]
                ps[s] = p[s]
            elif (gt[s] == _MISSING).all() and (row != _MISSING).any():
                gt[s] = [remap[x] if x >= 0 else x for x in row]
    return alleles, gt, phased, ps
