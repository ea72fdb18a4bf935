"""Read the pharmacogene positions of a VCF, normalised to the allele definitions.

Only the records that touch an allele-defining position are kept, so a whole-genome VCF costs
one pass (or, with a tabix/CSI index and ``cyvcf2`` installed, a few region queries). Each record
is matched to the definitions' *normalised* representation (PharmCAT's
``pharmcat_positions.vcf``): indels that are not left-aligned, that carry extra padding, or that
sit in a multi-allelic record (the UGT1A1 TA repeat rs3064744) are compared as sequences over
the window both representations cover, so ``CAT>CATAT`` at the definition position and
``A>ATA`` one base to the right are the same allele.

The genome build is checked twice (issue #16). A header that declares another build
(``##reference``, ``##assembly``, ``##contig`` ``assembly=`` or a GRCh37 contig length) is refused.
Then every record at an allele-defining position has its REF compared with the GRCh38 reference
of the definitions (PharmCAT's ``pharmcat_positions.vcf``):

* REF equal to GRCh38: the record is read as usual;
* REF/ALT swapped (REF is another allele, an ALT is the GRCh38 reference): the genotype is read
  by allele *sequence*, which is what the VCF's GT says, and the gene's call carries a warning
  naming the position and line (:class:`PgxReferenceWarning`); such a file was not normalised
  against GRCh38 and deserves a look, but its alleles are unambiguous;
* REF matching neither: the record cannot be read; the position is *unreadable* and the gene is
  reported not callable (never filled in as reference by ``missing_to_ref``), with a warning;
* most REFs differing: the file is GRCh37 (or another build) and is refused.

:attr:`PgxGenotypes.build_check` records what was declared and what the REF comparison found;
a VCF that declares no build and whose REFs do not confirm GRCh38 gets a
:class:`PgxBuildWarning`.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from pmed.errors import InputError, OptionError, PmedError, PmedWarning, format_rows
from pmed.genomics.pgx._data import ALL_GENES, definitions
from pmed.io import open_text
from pmed.io.vcf import BGZF_EOF, GRCH38_CONTIG_LENGTHS

__all__ = [
    "PgxGenotypes", "read_pgx_vcf", "PgxReferenceWarning", "PgxBuildWarning",
    "GRCH37_CHR1_LENGTH", "GRCH38_CHR1_LENGTH", "MIN_CONFIRMING_RECORDS",
]

GRCH37_CHR1_LENGTH = 249_250_621
GRCH38_CHR1_LENGTH = 248_956_422
#: GRCh37 lengths of the chromosomes whose GRCh38 length differs (all but the mitochondrion): a
#: ``##contig`` line with one of them declares GRCh37 (hg19 only renames them).
GRCH37_CONTIG_LENGTHS = {
    "1": 249250621, "2": 243199373, "3": 198022430, "4": 191154276, "5": 180915260,
    "6": 171115067, "7": 159138663, "8": 146364022, "9": 141213431, "10": 135534747,
    "11": 135006516, "12": 133851895, "13": 115169878, "14": 107349540, "15": 102531392,
    "16": 90354753, "17": 81195210, "18": 78077248, "19": 59128983, "20": 63025520,
    "21": 48129895, "22": 51304566, "X": 155270560, "Y": 59373566,
}
#: Records at definition positions whose REF must equal GRCh38 (and at least 90 % of those
#: compared) before a VCF that declares no build counts as confirmed GRCh38: by chance a
#: GRCh37 base matches the GRCh38 one about a quarter of the time, so five agree by chance
#: about once in a thousand files.
MIN_CONFIRMING_RECORDS = 5
_MISSING = -1
# values echoed in messages are cut to this many characters (no long data values in messages)
_SHOWN = 20
_DNA = re.compile(r"[ACGTN]+")
_OTHER_BUILD = re.compile(
    r"(?<![a-z0-9])(grch37|hg19|b37|hs37d5|hs37|human_g1k_v37|ncbi37|hg18|ncbi36|chm13|t2t)"
    r"(?![0-9])")
_GRCH38 = re.compile(r"(?<![a-z0-9])(grch38|hg38|hs38|b38|gca_000001405\.15|gcf_000001405\.26)")
_FIX_NORM = ("normalise the VCF against GRCh38: `bcftools norm -c e -f GRCh38.fa` finds wrong "
             "REFs, `bcftools +fixref` swaps REF/ALT back; or re-call against GRCh38")


def _build_name(token: str) -> str:
    """The build a header token stands for (``human_g1k_v37`` → ``GRCh37/hg19 (human_g1k_v37)``)."""
    build = ("NCBI36/hg18" if token in ("hg18", "ncbi36") else
             "T2T-CHM13" if token in ("chm13", "t2t") else "GRCh37/hg19")
    return build if token.lower() in build.lower() else f"{build} ({token})"


class PgxReferenceWarning(PmedWarning):
    """A VCF record's REF is not the GRCh38 base of the allele definition (swapped or wrong)."""


class PgxBuildWarning(PmedWarning):
    """The VCF's genome build can be neither read from its header nor confirmed by its REFs."""


def _shown(value: str) -> str:
    """A data value as echoed in a message: quoted and cut to a few characters."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def _at(n: int | None, chrom: str, pos: int) -> str:
    """Where a record is: its line, or (read through an index) its position."""
    return f"line {n}" if n else f"record {chrom}:{pos}"


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
    ref_issues
        ``{gene: [issue]}``: records whose REF is not the definition's GRCh38 reference. Each
        issue is a dict with ``kind`` (``"swapped"``: read by allele sequence;
        ``"mismatch"``: unreadable), ``position`` (``chr:pos``), ``line`` (``None`` when read
        through an index), ``vcf_ref``, ``vcf_alt`` and ``grch38_ref``.
    unreadable
        ``(gene, definition_index)`` of positions whose only records were unreadable: they are
        neither missing nor reference, and make the gene not callable.
    build_check
        What is known of the genome build: ``declared`` (``"GRCh38"`` or ``None``) and where
        (``declared_by``), the REF comparison (``records_compared``, ``ref_matches``,
        ``ref_swapped``, ``ref_mismatches``), ``status`` (``"declared GRCh38"``,
        ``"GRCh38 confirmed by reference bases"`` or ``"not checked"``) and ``message``.
    """

    samples: list[str]
    calls: dict[tuple[str, int], tuple[list[str], np.ndarray, np.ndarray, list]] = field(
        default_factory=dict
    )
    source: str = ""
    warnings: dict[str, list[str]] = field(default_factory=dict)
    ref_issues: dict[str, list[dict]] = field(default_factory=dict)
    unreadable: set[tuple[str, int]] = field(default_factory=set)
    build_check: dict = field(default_factory=dict)


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


def _contig_fields(line: str) -> dict[str, str]:
    """``##contig=<ID=chr1,length=248956422,assembly=GRCh38>`` → its keys (lower case) and values."""
    inner = line.strip()[len("##contig=<"):].rstrip(">")
    return {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,>]*)', inner)}


def _detect_build(header: list[tuple[int, str]], path: Path) -> tuple[str | None, str | None]:
    """The build the header declares: ``("GRCh38", where)`` or ``(None, None)``.

    Raises
    ------
    InputError
        When the header declares GRCh37/hg19 or another build (``##reference``, ``##assembly``,
        ``##contig`` ``assembly=`` or a GRCh37 contig length).
    """
    declared: tuple[str | None, str | None] = (None, None)
    fix = ("lift the VCF over to GRCh38 (e.g. `bcftools +liftover` or Picard LiftoverVcf) or "
           "re-call it against GRCh38")
    for n, line in header:
        low = line.strip().lower()
        key = low[2:].split("=", 1)[0]
        if key in ("reference", "assembly"):
            m = _OTHER_BUILD.search(low)
            if m:
                raise InputError(
                    f"the VCF header's ##{key} line declares {_build_name(m.group(1))}, not "
                    "GRCh38: pmed's pharmacogene definitions are GRCh38", file=path,
                    where=f"line {n}", fix=fix)
            if _GRCH38.search(low) and declared[0] is None:
                declared = ("GRCh38", f"##{key} (line {n})")
        elif key == "contig":
            f = _contig_fields(line)
            name = _norm_chrom(f.get("id", "")).removeprefix("chr")
            length = f.get("length", "")
            m = _OTHER_BUILD.search(f.get("assembly", "").lower())
            if m:
                raise InputError(
                    f"the VCF header's ##contig line declares assembly {_build_name(m.group(1))}, "
                    "not GRCh38: pmed's pharmacogene definitions are GRCh38", file=path,
                    where=f"line {n}", fix=fix)
            if length.isdigit() and int(length) == GRCH37_CONTIG_LENGTHS.get(name):
                raise InputError(
                    f"contig {name} has its GRCh37 length ({int(length):,}); pmed's pharmacogene "
                    "definitions are GRCh38", file=path, where=f"line {n}", fix=fix)
            if declared[0] is None and (
                    _GRCH38.search(f.get("assembly", "").lower())
                    or (length.isdigit() and name != "M"
                        and int(length) == GRCH38_CONTIG_LENGTHS.get(name))):
                declared = ("GRCh38", f"##contig (line {n})")
    return declared


def _check_complete(path: Path) -> None:
    """Refuse a BGZF file without its end-of-file block: it was cut short.

    A BGZF file cut at a block boundary decompresses without error, just without its last
    records, which the caller would then see as missing (or, with ``missing_to_ref``, as
    reference); htslib reading such a file through an index can even hang. Plain gzip cut
    short fails when read (EOFError), which :func:`_iter_lines` reports.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(18)
            # gzip magic, FLG.FEXTRA and the BGZF "BC" subfield: a BGZF file
            if len(head) < 18 or head[:2] != b"\x1f\x8b" or not head[3] & 4 or head[12:14] != b"BC":
                return
            size = fh.seek(0, 2)
            fh.seek(max(0, size - len(BGZF_EOF)))
            tail = fh.read()
    except OSError as exc:
        raise InputError(f"the VCF cannot be read ({type(exc).__name__}: {exc.strerror or exc})",
                         file=path, fix="check the file's permissions and the disk") from None
    if tail != BGZF_EOF:
        raise InputError(
            "the BGZF-compressed VCF is truncated: its end-of-file block is missing, so records "
            "may be lost", file=path,
            fix="re-create or re-download the file (`bgzip -t FILE` tests it)")


def _iter_lines(path: Path, index: _Index) -> Iterator[tuple[int | None, str]]:
    """Yield ``(line_number, line)`` of the header and of candidate records.

    Records read through a tabix/CSI index have no line number (``None``).
    """
    idx = [p for p in (Path(str(path) + s) for s in (".tbi", ".csi")) if p.exists()]
    if idx and idx[0].stat().st_mtime < path.stat().st_mtime:
        # an index older than its file may point into another version of it: read it all
        warnings.warn(f"{path}: the index {idx[0].name} is older than the VCF; the whole file is "
                      "read instead", PmedWarning, stacklevel=4)
        idx = []
    if idx:
        try:
            import cyvcf2  # noqa: F401
        except ImportError:  # pragma: no cover - cyvcf2 is optional
            pass
        else:
            try:
                yield from _iter_indexed(path, index)
            except PmedError:
                raise
            except Exception as exc:  # noqa: BLE001 - htslib's errors carry no class of their own
                raise InputError(
                    f"the indexed VCF cannot be read ({type(exc).__name__}): the file or its "
                    f"index {idx[0].name} is damaged or does not belong to it", file=path,
                    fix="re-create the index (`tabix -p vcf FILE`) or remove it to read the whole "
                    "file") from None
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
                    f"malformed VCF record: POS {_shown(line[tab1 + 1:tab2])} is not an integer",
                    file=path, where=f"line {n}, column 'POS'",
                    fix="fix or remove this line",
                ) from None
            if (c, pos) in index.by_site:
                yield n, line


def _iter_indexed(path: Path, index: _Index) -> Iterator[tuple[int | None, str]]:
    """The header and the candidate records, read through the index (records: no line number).

    htslib reports a damaged BGZF block on stderr and ends the region early, without an error
    Python can see: the records read would silently be fewer. Its stderr is therefore read
    while the regions are queried, and an ``[E::…]`` message refuses the file.
    """
    with _htslib_stderr() as errors:
        lines = _read_indexed(path, index)
    if errors:
        raise InputError(
            f"htslib could not read the indexed VCF ({errors[0][:60]}): the compressed data are "
            "corrupt or the index does not belong to the file", file=path,
            fix="re-create or re-download the file and its index (`bgzip -t FILE` tests the "
            "file, `tabix -p vcf FILE` rebuilds the index)")
    yield from lines


@contextlib.contextmanager
def _htslib_stderr() -> Iterator[list[str]]:
    """Collect the ``[E::…]`` messages htslib writes to file descriptor 2 inside the block.

    Everything else written there meanwhile (htslib's ``[W::…]`` notes) is passed on.
    """
    import os
    import sys
    import tempfile

    found: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (embedded interpreters)
        yield found
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield found
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            for ln in text.splitlines():
                m = re.match(r"\[E::(\w+)\]", ln)
                if m:
                    found.append(m.group(1))
            if text and not found:
                sys.stderr.write(text)


def _read_indexed(path: Path, index: _Index) -> list[tuple[int | None, str]]:
    import cyvcf2

    vcf = cyvcf2.VCF(str(path), lazy=True, threads=1)
    out: list[tuple[int | None, str]] = list(
        enumerate(vcf.raw_header.splitlines(keepends=True), 1))
    try:
        with warnings.catch_warnings():
            # cyvcf2 warns "no intervals found" for a region without records: nothing to say
            warnings.simplefilter("ignore", UserWarning)
            names = set(vcf.seqnames)
            if not names:
                # without ##contig lines the names come from the index, and an index htslib
                # cannot load gives none: every region would be skipped and the file read as if
                # it held no pharmacogene record. A query loads the index and fails loudly.
                chrom, lo, _ = sorted(index.gene_regions)[0]
                next(iter(vcf(f"{chrom}:{lo}-{lo}")), None)
            seen: set[tuple[str, int, str, str]] = set()
            for chrom, lo, hi in sorted(index.gene_regions):
                for cand in (chrom, chrom.removeprefix("chr"), "MT" if chrom == "chrM" else None):
                    if cand and cand in names:
                        for v in vcf(f"{cand}:{lo}-{hi}"):
                            if (chrom, v.POS) in index.by_site:
                                key = (chrom, v.POS, v.REF, ",".join(v.ALT))
                                if key not in seen:  # overlapping gene regions
                                    seen.add(key)
                                    out.append((None, str(v)))
                        break
    finally:
        vcf.close()
    return out


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
        reference with ``missing_to_ref``); positions whose REF is not GRCh38 are in
        ``ref_issues`` (and ``unreadable`` when they could not be read); ``build_check`` says
        how the genome build was checked.

    Raises
    ------
    OptionError
        For a gene without allele definitions.
    InputError
        For a missing or truncated file, a malformed header or record (with its line and
        column), a VCF without samples, or GRCh37 (or another build's) input.

    Warns
    -----
    PgxReferenceWarning
        Records whose REF is not the GRCh38 base (swapped, or unreadable).
    PgxBuildWarning
        The VCF declares no build and its REFs cannot confirm GRCh38.
    """
    path = Path(path)
    for name, value in (("genes", genes), ("samples", samples)):
        if isinstance(value, (str, bytes)):  # would be read letter by letter
            raise OptionError(f"{name} must be a list of names, not a string",
                              fix=f"pass {name}=[...]")
    genes = list(genes) if genes is not None else list(ALL_GENES)
    unknown = [g for g in genes if g not in definitions()["genes"]]
    if unknown:
        raise OptionError(
            f"no allele definitions for {len(unknown)} gene(s): "
            f"{', '.join(_shown(str(g)) for g in unknown[:5])}",
            fix=f"choose among {', '.join(ALL_GENES)}",
        )
    if not path.is_file():
        raise InputError("VCF file not found" if not path.exists() else
                         "a folder was given where the VCF file is expected", file=path,
                         fix="check the path")
    _check_complete(path)
    index = _Index(genes)
    header: list[tuple[int, str]] = []
    sample_ids: list[str] | None = None
    keep: np.ndarray | None = None
    result = PgxGenotypes(samples=[], source=str(path))
    # (gene, pos) -> list of (alleles, gt rows, phased, ps)
    raw: dict[tuple[str, int], list] = {}
    counts = {"records_compared": 0, "ref_matches": 0, "ref_swapped": 0, "ref_mismatches": 0}
    declared: tuple[str | None, str | None] = (None, None)
    read_ok: set[tuple[str, int]] = set()
    for n, line in _iter_lines(path, index):
        if line.startswith("##"):
            header.append((n or 0, line))
            continue
        if line.startswith("#"):
            if sample_ids is not None:
                raise InputError(
                    "a header line ('#…') after the #CHROM line", file=path, where=f"line {n}",
                    fix="a VCF has one #CHROM line, after the ## meta-information lines and "
                    "before the records",
                )
            declared = _detect_build(header, path)
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
        _parse_record(line, n, path, sample_ids, keep, index, raw, result, counts, read_ok)
    if sample_ids is None:
        raise InputError(
            "no #CHROM header line: this is not a VCF",
            file=path, fix="give a VCF 4.x file with a #CHROM header and sample columns",
        )
    compared, mism, swapped = (counts["records_compared"], counts["ref_mismatches"],
                               counts["ref_swapped"])
    # a GRCh37 base at a GRCh38 position is another base (now and then the GRCh38 one, by
    # chance an ALT): most REFs differ, and more of them match neither allele than are swapped
    if compared >= MIN_CONFIRMING_RECORDS and (mism + swapped) * 2 > compared and mism >= swapped:
        raise InputError(
            f"{mism + swapped} of {compared} records at pharmacogene positions have a REF that "
            "differs from GRCh38: the VCF looks like GRCh37/hg19 (or another build)",
            file=path,
            fix="lift the VCF over to GRCh38 or re-call against GRCh38",
        )
    for key, entries in raw.items():
        result.calls[key] = _merge(entries)
    # a position with a readable record as well (a split multi-allelic) is not unreadable
    result.unreadable -= read_ok
    result.build_check = _build_check(declared, counts, path)
    _warn_ref_issues(result, path)
    return result


def _build_check(declared: tuple[str | None, str | None], counts: dict[str, int],
                 path: Path) -> dict:
    """What is known of the build (``PgxGenotypes.build_check``); warn when nothing is."""
    matches = counts["ref_matches"]
    out: dict = {"declared": declared[0], "declared_by": declared[1], **counts}
    if declared[0] == "GRCh38":
        out["status"] = "declared GRCh38"
        out["message"] = (f"the header declares GRCh38 ({declared[1]}); {matches} of "
                          f"{counts['records_compared']} records at pharmacogene positions carry "
                          "the GRCh38 REF")
    elif matches >= MIN_CONFIRMING_RECORDS and matches * 10 >= counts["records_compared"] * 9:
        out["status"] = "GRCh38 confirmed by reference bases"
        out["message"] = (f"the header declares no build; {matches} of "
                          f"{counts['records_compared']} records at pharmacogene positions carry "
                          "the GRCh38 REF")
    else:
        out["status"] = "not checked"
        out["message"] = (
            "the VCF declares no genome build (##reference, ##contig assembly or length) and "
            f"only {matches} of its records at pharmacogene positions carry the GRCh38 REF "
            f"(at least {MIN_CONFIRMING_RECORDS} are needed): GRCh38 cannot be checked")
        warnings.warn(f"{path}: {out['message']}; add ##reference or ##contig lines, or check "
                      "that the VCF is GRCh38", PgxBuildWarning, stacklevel=3)
    return out


def _warn_ref_issues(result: PgxGenotypes, path: Path) -> None:
    """One warning per kind of REF problem, with the lines (or positions) and the genes."""
    for kind, what in (
        ("swapped", "have REF/ALT swapped against GRCh38 (an ALT is the GRCh38 base): their "
                    "genotypes are read by allele sequence"),
        ("mismatch", "have a REF that is neither the GRCh38 base nor one of their ALTs: they "
                     "cannot be read and their genes are not callable"),
    ):
        hits = {(i["line"], i["position"]): g for g, issues in result.ref_issues.items()
                for i in issues if i["kind"] == kind}
        if not hits:
            continue
        genes = sorted(set(hits.values()))
        lines = [ln for ln, _ in hits if ln]
        plural = "s" if len(lines) > 1 else ""
        where = (f"line{plural} {format_rows(sorted(lines))}" if lines else
                 f"positions {', '.join(sorted({p for _, p in hits})[:5])}")
        warnings.warn(f"{path}: {len(hits)} record(s) ({where}; genes {', '.join(genes)}) {what}; "
                      f"{_FIX_NORM}", PgxReferenceWarning, stacklevel=4)


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


def _swapped(def_pos: int, def_ref: str, def_alleles: list[str], pos: int,
             rec_alleles: list[str]) -> tuple[int, list[int | None]] | None:
    """``(k, mapping)`` when record allele ``k`` (an ALT) is the GRCh38 reference: a swap."""
    for k, a in enumerate(rec_alleles[1:], 1):
        if not _DNA.fullmatch(a.upper()):
            continue
        mapping = _window_alleles(def_pos, def_ref, def_alleles, pos, a.upper(), rec_alleles)
        if mapping is not None and mapping[k] == 0:
            return k, mapping
    return None


def _parse_record(line, n, path, sample_ids, keep, index, raw, result, counts, read_ok) -> None:
    cols = line.rstrip("\n\r").split("\t")
    if len(cols) != 9 + len(sample_ids):
        raise InputError(
            f"malformed VCF record: {len(cols)} columns, the header has {9 + len(sample_ids)}",
            file=path, where=f"line {n}" if n else f"record {cols[0][:_SHOWN]}",
            fix="every record needs CHROM..FORMAT plus one column per sample",
        )
    chrom = _norm_chrom(cols[0])
    try:
        pos = int(cols[1])
    except ValueError:
        raise InputError(
            f"malformed VCF record: POS {_shown(cols[1])} is not an integer",
            file=path, where=f"{_at(n, chrom, 0)}, column 'POS'", fix="fix or remove this line",
        ) from None
    at = _at(n, chrom, pos)
    ref = cols[3].upper()
    if not ref or not _DNA.fullmatch(ref):
        raise InputError(
            f"malformed VCF record: REF {_shown(cols[3])} is not a DNA sequence",
            file=path, where=f"{at}, column 'REF'", fix="fix or remove this line",
        )
    alts = [] if cols[4] in (".", "") else cols[4].split(",")
    rec_alleles = [ref, *alts]
    fmt = cols[8].split(":")
    if not fmt or fmt[0] != "GT":
        raise InputError(
            "malformed VCF record: FORMAT must start with GT",
            file=path, where=f"{at}, column 'FORMAT'",
            fix="pmed needs genotypes (GT) as the first FORMAT key",
        )
    ps_idx = fmt.index("PS") if "PS" in fmt else None
    for gene, def_j, def_pos, v in index.by_site[(chrom, pos)]:
        def_alleles = [v["ref"], *v["alts"]]
        at_def = pos == def_pos
        mapping = _window_alleles(def_pos, v["ref"], def_alleles, pos, ref, rec_alleles)
        ref_i = 0  # the record allele that carries the GRCh38 reference sequence
        issue = {"position": f"{chrom}:{pos}", "line": n, "vcf_ref": ref[:_SHOWN],
                 "vcf_alt": cols[4][:_SHOWN], "grch38_ref": v["ref"][:_SHOWN]}
        if at_def:
            counts["records_compared"] += 1
        if mapping is None:
            swap = _swapped(def_pos, v["ref"], def_alleles, pos, rec_alleles)
            if swap is None:
                # REF matches neither the GRCh38 base nor an ALT: which allele GT 0 stands for
                # is unknown, so the position can be neither read nor assumed reference
                if at_def:
                    counts["ref_mismatches"] += 1
                result.unreadable.add((gene, def_j))
                _note(result, gene, {"kind": "mismatch", **issue})
                result.warnings.setdefault(f"{chrom}:{pos}", []).append(
                    f"{at}: REF {_shown(ref)} is not the GRCh38 reference of the {gene} "
                    f"definition ({_shown(v['ref'])} at {def_pos}): record unreadable, {gene} not "
                    "callable")
                continue
            ref_i, mapping = swap
            if at_def:
                counts["ref_swapped"] += 1
        elif at_def:
            counts["ref_matches"] += 1
        if pos != def_pos and mapping[ref_i] != 0:
            continue  # an unrelated record that merely overlaps the definition's span
        if pos != def_pos and all(m in (0, None) for i, m in enumerate(mapping) if i != ref_i):
            continue
        if ref_i:
            _note(result, gene, {"kind": "swapped", **issue})
            result.warnings.setdefault(f"{chrom}:{pos}", []).append(
                f"{at}: REF/ALT swapped against GRCh38 ({gene} reference {_shown(v['ref'])} is "
                "the ALT): genotype read by allele sequence")
        alleles = list(def_alleles)
        rec_to_def: list[int] = []
        for i, m in enumerate(mapping):
            a = rec_alleles[i]
            if m is None:
                if i == ref_i or a in (".", "*") or a.startswith("<"):
                    rec_to_def.append(_MISSING)
                    continue
                alleles.append(a.upper())  # undocumented allele, kept as is
                rec_to_def.append(len(alleles) - 1)
            else:
                rec_to_def.append(m)
        n_s = len(keep)
        gt = np.full((n_s, 2), _MISSING, dtype=np.int16)
        phased = np.zeros(n_s, dtype=bool)
        ps: list = [None] * n_s
        for out_i, col_i in enumerate(keep):
            field = cols[9 + col_i]
            parts = field.split(":")
            # the column number, not the sample's name: no patient identifier in messages
            where = f"{at}, column {10 + col_i} (sample {col_i + 1})"
            try:
                calls, is_phased = _parse_gt(parts[0])
            except ValueError:
                raise InputError(
                    f"malformed genotype {_shown(parts[0])}", file=path, where=where,
                    fix="GT must look like 0/1, 1|0, 0 or ./.",
                ) from None
            if len(calls) > 2:
                raise InputError(
                    f"genotype {_shown(parts[0])} has more than two alleles",
                    file=path, where=where,
                    fix="pmed calls diploid (or haploid chrX/chrY) genotypes only",
                )
            for k, c in enumerate(calls):
                if c is None:
                    gt[out_i, k] = _MISSING
                elif c >= len(rec_to_def):
                    raise InputError(
                        f"genotype {_shown(parts[0])} refers to allele {c} but the record has "
                        f"{len(alts)} ALT allele(s)",
                        file=path, where=where,
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
        read_ok.add((gene, def_j))


def _note(result: PgxGenotypes, gene: str, issue: dict) -> None:
    """Record one REF issue of a gene (once per record)."""
    issues = result.ref_issues.setdefault(gene, [])
    if not any(i["position"] == issue["position"] and i["line"] == issue["line"]
               and i["kind"] == issue["kind"] for i in issues):
        issues.append(issue)


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
