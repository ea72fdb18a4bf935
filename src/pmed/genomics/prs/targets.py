"""Genotype targets: PLINK 2 (pgen/pvar/psam), PLINK 1 (bed/bim/fam) and VCF/BCF, read in blocks.

A :class:`Target` knows its samples and variants (``chr``, ``pos``, ``id``, ``ref``, ``alt``,
one row per ALT allele so multi-allelic sites appear once per allele) and hands out effect-allele
dosages for any list of variants as a ``variants × samples`` float32 block, with ``NaN`` for
missing calls. Scoring never holds more than one block of the genotype matrix.

The readers are the field's own: pgenlib (plink2's library, for .pgen and .bed) and cyvcf2 (htslib), each
imported only when a file of its kind is opened.
"""

from __future__ import annotations

import glob
import re
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, PmedError, PmedWarning, format_rows, require
from pmed.genomics.prs._memory import in_lean_heap
from pmed.genomics.prs.scorefile import normalize_build, normalize_chrom
from pmed.io.text import open_text

__all__ = ["Target", "open_target", "open_targets", "PgenTarget", "BedTarget", "VcfTarget",
           "ArrayTarget", "check_unique_samples"]

VARIANT_COLUMNS = ["chr", "pos", "id", "ref", "alt", "allele_idx", "n_alt", "var_idx"]


class Target:
    """Base class: a genotype file set with ``samples`` and ``variants`` tables.

    Attributes
    ----------
    path : Path
        The file that was opened (``.pgen``, ``.bed``, ``.vcf.gz``…).
    samples : DataFrame
        ``IID`` (and ``FID`` when the file has it), in file order.
    variants : DataFrame
        One row per ALT allele: ``chr`` (``chr`` prefix removed), ``pos``, ``id``, ``ref``,
        ``alt``, ``allele_idx`` (1 for the first ALT), ``n_alt`` (number of ALT alleles at the
        site) and ``var_idx`` (the record's index in the file).
    genome_build : str or None
        Declared in the file's header (``##reference``/``##contig assembly``), when it is.
    """

    kind = "target"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.samples: pd.DataFrame = pd.DataFrame()
        self.variants: pd.DataFrame = pd.DataFrame(columns=VARIANT_COLUMNS)
        self.genome_build: str | None = None

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    #: ``int8`` for hardcalls (ALT allele count, negative = missing), ``float32`` or ``float64``
    #: for dosages (NaN or negative = missing).
    dtype = np.int8
    #: The value a missing hardcall holds in int8 blocks.
    missing_code = -9

    def read_alt_dosages(self, var_idx: np.ndarray, allele_idx: np.ndarray, out: np.ndarray,
                         samples: slice | None = None) -> None:
        """Fill ``out`` (``len(var_idx) × n`` of :attr:`dtype`) with ALT-allele dosages.

        ``var_idx`` must be increasing; ``allele_idx`` picks the ALT allele at multi-allelic
        sites; ``samples`` restricts to a contiguous range of samples (default: all).
        """
        raise NotImplementedError

    def iter_blocks(self, var_idx: np.ndarray, allele_idx: np.ndarray, block: int = 1000,
                    samples: slice | None = None):
        """Yield ``(start, dosages)`` over ``var_idx`` (sorted) in blocks of ``block`` variants.

        ``dosages`` is a reused buffer of :attr:`dtype`: use it before the next step.
        """
        n = len(range(*(samples or slice(0, self.n_samples)).indices(self.n_samples)))
        buf = np.empty((min(block, max(len(var_idx), 1)), n), dtype=self.dtype)
        for s in range(0, len(var_idx), block):
            e = min(s + block, len(var_idx))
            self.read_alt_dosages(var_idx[s:e], allele_idx[s:e], buf, samples)
            yield s, buf[: e - s]

    def fork(self) -> Target:
        """A copy with its own file handle, for reading from another thread."""
        return self

    def close(self) -> None:  # pragma: no cover - trivial
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {self.n_samples} samples, {len(self.variants)} variants)"


# ---------------------------------------------------------------------- helpers
def _short(e: BaseException, limit: int = 160) -> str:
    """An exception's text, cut short (a parser may quote a long line of the file)."""
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def _parsing(path: Path, fix: str) -> Iterator[None]:
    """A text file of a fileset that its parser chokes on becomes an InputError naming it."""
    import pyarrow as pa

    try:
        yield
    except PmedError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, UnicodeError, OSError, EOFError,
            zlib.error, pa.ArrowException) as e:
        raise InputError(f"cannot parse the file ({type(e).__name__}: {_short(e)})", file=path,
                         fix=fix) from e


def _header_lines(path: Path, prefix: str = "##") -> tuple[list[str], int]:
    """Leading lines starting with ``prefix`` and how many there are."""
    lines = []
    with open_text(path, errors="replace") as fh:
        for line in fh:
            if line.startswith(prefix):
                lines.append(line.rstrip("\r\n"))
            else:
                break
    return lines, len(lines)


def _build_from_header(lines: Sequence[str]) -> str | None:
    for line in lines:
        low = line.lower()
        if low.startswith("##reference=") or "assembly=" in low:
            for key in ("grch38", "hg38", "grch37", "hg19", "b37", "hs37", "ncbi36", "hg18"):
                if key in low:
                    return normalize_build({"hs37": "GRCh37"}.get(key, key))
    return None


def _explode_alts(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ALT allele; ``allele_idx`` counts ALT alleles from 1. Strings → categoricals.

    Columns are put together without copies: the table of a biobank's variants is the largest
    object of a scoring run.
    """
    from pmed.genomics.prs.scorefile import cat_test

    cols = {c: df[c] for c in ("chr", "pos", "id", "ref", "alt")}
    n = len(df)
    del df
    for c in ("chr", "ref", "alt"):
        if not isinstance(cols[c].dtype, pd.CategoricalDtype):
            cols[c] = pd.Categorical(cols[c].astype(object))
        else:
            cols[c] = cols[c].array
    cols["pos"] = _positions(np.asarray(cols["pos"]))
    cols["id"] = cols["id"].array
    cols["allele_idx"] = np.ones(n, np.int8)
    cols["n_alt"] = np.ones(n, np.int8)
    cols["var_idx"] = np.arange(n, dtype=np.int32)
    df = pd.DataFrame({c: cols.pop(c) for c in VARIANT_COLUMNS}, copy=False)
    multi = cat_test(df["alt"], lambda a: "," in str(a))
    if multi.any():  # rare: expand those rows only
        ex = df.loc[multi].copy()
        parts = ex["alt"].astype(object).str.split(",")
        ex["n_alt"] = parts.str.len().astype(np.int8)
        ex = ex.assign(alt=parts).explode("alt")
        ex["allele_idx"] = (ex.groupby(level=0).cumcount() + 1).astype(np.int8)
        df["alt"] = df["alt"].astype(object)
        df = pd.concat([df.loc[~multi], ex]).sort_values(["var_idx", "allele_idx"], kind="stable")
        df = df.reset_index(drop=True)
        df["alt"] = pd.Categorical(df["alt"].astype(object))
    df["chr"] = normalize_chrom(df["chr"])
    return df[VARIANT_COLUMNS] if list(df.columns) != VARIANT_COLUMNS else df


def _read_variant_table(path: Path, names: list[str], usecols: list[int], skip: int) -> pd.DataFrame:
    """Read selected columns of a .pvar/.bim with pyarrow: strings become categoricals."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from pmed.genomics.prs._memory import use_system_arrow_pool
    from pmed.genomics.prs.scorefile import _categorical, release_memory

    with open(path, "rb") as fh:
        for _ in range(skip):
            fh.readline()
        first = fh.readline().decode("utf-8", "replace")
    delim = "\t" if "\t" in first else " "
    n_cols = len(first.rstrip("\n").split(delim))
    col_names = [f"c{i}" for i in range(n_cols)]
    want = dict(zip(usecols, names, strict=True))
    use_system_arrow_pool()  # see pmed.genomics.prs._memory
    cols = [f"c{i}" for i in sorted(want)]
    parts: dict[str, list] = {c: [] for c in cols}
    try:
        # streamed in blocks, each turned into its compact form at once (see scorefile._read_body)
        with open(path, "rb") as raw:
            reader = pcsv.open_csv(
                pa.PythonFile(raw, mode="r"),
                read_options=pcsv.ReadOptions(skip_rows=skip, column_names=col_names,
                                              block_size=1 << 23),
                parse_options=pcsv.ParseOptions(delimiter=delim, quote_char=False,
                                                ignore_empty_lines=True),
                convert_options=pcsv.ConvertOptions(
                    include_columns=cols,
                    column_types={f"c{i}": (pa.int64() if want[i] == "pos" else pa.string())
                                  for i in want}))
            for batch in reader:
                for c in cols:
                    arr = batch.column(c)
                    if want[int(c[1:])] in ("chr", "ref", "alt"):
                        arr = arr.dictionary_encode()
                    elif want[int(c[1:])] == "pos" and arr.null_count:
                        raise InputError("missing position", file=path,
                                         fix="positions must be integers")
                    parts[c].append(arr)
                del batch
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"cannot parse the variant file ({_short(e, 100)})", file=path,
                         fix="regenerate it with plink2 (--make-pgen / --make-bed)") from e
    out = {}
    for c in cols:
        name, pieces = want[int(c[1:])], parts.pop(c)
        if not pieces:  # an empty file
            out[name] = np.zeros(0, np.int64) if name == "pos" else pd.Categorical([])
        elif name == "pos":
            out[name] = _positions(np.concatenate([p.to_numpy() for p in pieces]))
        elif name == "id":  # left in its blocks: joining them would double it for a moment
            out[name] = pd.arrays.ArrowStringArray(pa.chunked_array(pieces))
        else:
            out[name] = _categorical(pa.chunked_array(pieces).unify_dictionaries())
        del pieces
    release_memory()
    return pd.DataFrame(out, copy=False)[names]


def _positions(pos: np.ndarray) -> np.ndarray:
    """Positions as int32 when they fit (every human chromosome does), else int64."""
    if len(pos) and (pos.max() >= 2**31 or pos.min() < 0):
        return pos.astype(np.int64, copy=False)
    return pos.astype(np.int32)


def _fileset(path: Path, variants: str, samples: str, kind: str) -> tuple[Path, Path]:
    """The variant and sample files beside a genotype file; all three must exist."""
    stem = path.with_suffix("")
    v, s = stem.with_suffix(variants), stem.with_suffix(samples)
    for f in (path, v, s):
        if not f.exists():
            raise InputError(f"{kind} fileset incomplete: missing file", file=f,
                             fix=f"a {path.suffix} needs its {variants} and {samples} beside it "
                                 "(same name)")
    return v, s


# ---------------------------------------------------------------------- PLINK 2
class PgenTarget(Target):
    """PLINK 2 fileset (``.pgen`` + ``.pvar``/``.pvar.zst`` is not supported + ``.psam``), via pgenlib."""

    kind = "pgen"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        pvar, psam = _fileset(path, ".pvar", ".psam", "PLINK 2")
        with _parsing(pvar, "regenerate the .pvar with plink2 (--make-pgen)"):
            self._read_pvar(pvar)
        with _parsing(psam, "regenerate the .psam with plink2 (--make-pgen)"):
            self.samples = _read_psam(psam)
        check_unique_samples(self.samples, psam, first_line=1 + _has_header(psam))
        self._open_reader(pvar)
        if _pgen_may_hold_dosages(self.path):  # imputed data: score the dosages, as plink2 does
            self.dtype = np.float64

    def _read_pvar(self, pvar: Path) -> None:
        lines, skip = _header_lines(pvar)
        self.genome_build = _build_from_header(lines)
        with open(pvar, encoding="utf-8-sig") as fh:  # a BOM must not hide the '#CHROM' line
            for _ in range(skip):
                fh.readline()
            head = fh.readline().rstrip("\r\n").split("\t")
        if head and head[0].startswith("#"):
            cols = [c.lstrip("#").upper() for c in head]
            want = {"CHROM": "chr", "POS": "pos", "ID": "id", "REF": "ref", "ALT": "alt"}
            missing = [k for k in want if k not in cols]
            if missing:
                raise InputError(f"the .pvar header lacks {', '.join(missing)}", file=pvar,
                                 where=f"line {skip + 1}", fix="regenerate the .pvar with plink2")
            usecols = [cols.index(k) for k in want]
            order = sorted(range(5), key=lambda i: usecols[i])
            names = [list(want.values())[i] for i in order]
            table = _read_variant_table(pvar, names, sorted(usecols), skip + 1)
        else:  # header-less .pvar is a .bim in disguise
            table = _read_variant_table(pvar, ["chr", "id", "pos", "alt", "ref"], [0, 1, 3, 4, 5], skip)
        self.variants = _explode_alts(table)

    def _open_reader(self, variant_file: Path) -> None:
        try:
            self._reader = self._new_reader()
        except PmedError:
            raise
        except Exception as e:  # pgenlib raises RuntimeError with plink2's text (as bytes)
            text = e.args[0].decode("utf-8", "replace") if e.args and isinstance(
                e.args[0], bytes) else str(e)
            raise InputError(f"the genotype file is truncated, corrupt or does not fit its "
                             f"{variant_file.suffix} and sample file ({_short(text, 200)})",
                             file=self.path,
                             fix="regenerate the fileset with plink2 (or copy it again) and check "
                                 "it with 'plink2 --validate'") from e
        n_file, n_listed = self._reader.get_variant_ct(), self.variants["var_idx"].nunique()
        if n_file != n_listed:
            raise InputError(
                f"the genotype file holds {n_file} variants but {variant_file.name} lists "
                f"{n_listed}: it is truncated, or the files come from different runs",
                file=self.path, fix="regenerate (or copy again) the genotype, variant and sample "
                                    "files together")
        self._subset_readers: dict = {}

    def _new_reader(self, sample_subset: np.ndarray | None = None):
        pgenlib = require("pgenlib", extra="genomics", feature="reading .pgen and .bed files")
        return pgenlib.PgenReader(str(self.path).encode(), raw_sample_ct=self.n_samples,
                                  sample_subset=sample_subset)

    def fork(self) -> PgenTarget:
        import copy

        twin = copy.copy(self)
        twin._reader = self._new_reader()
        twin._subset_readers = {}
        return twin

    def _reader_for(self, samples: slice | None):
        if samples is None or (samples.start in (0, None) and samples.stop in (None, self.n_samples)):
            return self._reader
        key = (samples.start, samples.stop)
        if key not in self._subset_readers:
            subset = np.arange(self.n_samples, dtype=np.uint32)[samples]
            self._subset_readers[key] = self._new_reader(subset)
        return self._subset_readers[key]

    def read_alt_dosages(self, var_idx, allele_idx, out, samples=None) -> None:
        try:
            self._read(var_idx, allele_idx, out, samples)
        except RuntimeError as e:  # pgenlib's message for a damaged genotype block
            raise InputError(f"the genotype file is truncated or corrupt: {_short(e)}", file=self.path,
                             fix="the file was probably damaged or cut short: regenerate it "
                                 "with plink2 and check it with 'plink2 --validate'") from e

    def _read(self, var_idx, allele_idx, out, samples=None) -> None:
        n = len(var_idx)
        reader = self._reader_for(samples)
        idx = np.ascontiguousarray(var_idx, dtype=np.uint32)
        buf = out[:n]
        if out.dtype != np.int8:
            self._read_dosages(reader, idx, np.asarray(allele_idx), buf)
            return
        if np.all(allele_idx == 1):
            if n and idx[-1] - idx[0] == n - 1:
                reader.read_range(int(idx[0]), int(idx[-1]) + 1, buf)
            else:
                reader.read_list(idx, buf)
            return
        for k in np.unique(allele_idx):
            sel = np.flatnonzero(allele_idx == k)
            tmp = np.empty((len(sel), out.shape[1]), dtype=np.int8)
            reader.read_list(idx[sel], tmp, int(k))
            buf[sel] = tmp

    @staticmethod
    def _read_dosages(reader, idx: np.ndarray, allele_idx: np.ndarray, buf: np.ndarray) -> None:
        """ALT dosages; a missing call reads as pgenlib's -9 (any negative dosage is missing)."""
        n = len(idx)
        if np.all(allele_idx == 1) and n and idx[-1] - idx[0] == n - 1:
            reader.read_dosages_range(int(idx[0]), int(idx[-1]) + 1, buf)
        elif np.all(allele_idx == 1):
            reader.read_dosages_list(idx, buf)
        else:
            for k in np.unique(allele_idx):
                sel = np.flatnonzero(allele_idx == k)
                tmp = np.empty((len(sel), buf.shape[1]), dtype=buf.dtype)
                reader.read_dosages_list(idx[sel], tmp, int(k))
                buf[sel] = tmp

    def close(self) -> None:
        self._reader.close()
        for r in self._subset_readers.values():
            r.close()


def _read_psam(psam: Path) -> pd.DataFrame:
    # utf-8-sig: a byte-order mark must not hide the '#' of the header line (nor join the
    # first sample's ID)
    with open(psam, encoding="utf-8-sig") as fh:
        first = fh.readline()
    if first.startswith("#"):
        df = pd.read_csv(psam, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig")
        df.columns = [c.lstrip("#") for c in df.columns]
        if "IID" not in df.columns:
            raise InputError("the .psam header has no IID column", file=psam, where="line 1",
                             fix="the first line must be '#FID IID ...' or '#IID ...'")
        cols = [c for c in ("FID", "IID") if c in df.columns]
        return df[cols].reset_index(drop=True)
    df = pd.read_csv(psam, sep=r"\s+", header=None, dtype=str, usecols=[0, 1], names=["FID", "IID"],
                     keep_default_na=False, encoding="utf-8-sig")
    return df


def _has_header(psam: Path) -> bool:
    with open(psam, encoding="utf-8-sig", errors="replace") as fh:
        return fh.readline().startswith("#")


def _read_fam(fam: Path) -> pd.DataFrame:
    return pd.read_csv(fam, sep=r"\s+", header=None, dtype=str, usecols=[0, 1],
                       names=["FID", "IID"], keep_default_na=False, encoding="utf-8-sig")


def check_unique_samples(samples: pd.DataFrame, path: Path, *, first_line: int = 1,
                         unit: str = "line") -> None:
    """Refuse a sample list with an ID twice (``FID`` + ``IID`` when there is a family column).

    Two samples with one ID would get one row each in the scores, and any join on the ID (a
    Cohort's patients) would silently take one of them. The message gives the count and where
    they are, never the IDs themselves.

    Parameters
    ----------
    first_line
        The line (or column) number of the first sample in ``path``.
    unit
        What the numbers count: ``line`` (.psam, .fam) or ``column`` (a VCF's sample columns).
    """
    key = [c for c in ("FID", "IID") if c in samples.columns]
    if not key or samples.empty:
        return
    dup = samples.duplicated(key, keep=False).to_numpy()
    if dup.any():
        at = (np.flatnonzero(dup) + first_line).tolist()
        n_ids = int(samples[dup].drop_duplicates(key).shape[0])
        raise InputError(f"{n_ids} sample ID(s) appear more than once ({int(dup.sum())} samples)",
                         file=path, where=f"{unit}s {format_rows(at)}",
                         fix="give every sample a distinct ID (rename samples with 'bcftools "
                             "reheader -s' or 'plink2 --update-ids')")


# ---------------------------------------------------------------------- PLINK 1
class BedTarget(PgenTarget):
    """PLINK 1 fileset (``.bed/.bim/.fam``).

    pgenlib reads SNP-major .bed files natively (a .bed is a PLINK 2 "mode 0x01" file), so PLINK 1
    and PLINK 2 inputs share one decoder; it counts A1 (the .bim's 5th column), which plink writes
    as the ALT allele.
    """

    kind = "bed"

    def __init__(self, path: Path) -> None:
        Target.__init__(self, path)
        bim, fam = _fileset(path, ".bim", ".fam", "PLINK 1")
        with _parsing(bim, "regenerate the .bim with plink (--make-bed)"):
            # .bim: chr id cm pos A1 A2; plink writes A1 = ALT (minor/counted), A2 = REF
            table = _read_variant_table(bim, ["chr", "id", "pos", "alt", "ref"], [0, 1, 3, 4, 5], 0)
            self.variants = _explode_alts(table)
        with _parsing(fam, "regenerate the .fam with plink (--make-bed)"):
            self.samples = _read_fam(fam)
        check_unique_samples(self.samples, fam)
        self._open_reader(bim)


def _pgen_may_hold_dosages(path: Path) -> bool:
    """Whether a .pgen's header allows dosages (8-bit variant record types).

    A plink2 ``.pgen`` (mode 0x10) stores 4-bit record types when no variant carries phase or
    dosage, and 8-bit ones otherwise (byte 11, bits 0-3 ≥ 4): hardcall-only files keep the fast
    integer path, files that may hold dosages are read as dosages (a file that only holds
    phased hardcalls then gives the same values, read more slowly).
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
    return len(head) == 12 and head[:2] == b"\x6c\x1b" and head[2] == 0x10 and (head[11] & 0x0F) >= 4


# ---------------------------------------------------------------------- VCF / BCF
_CONTIG = re.compile(r"^##contig=<(?:[^\n]*?[<,])?ID=([^,>\n]+)", re.M)
_CONTIG_NAME = re.compile(r"[^\s,<>\"'=]+")  # (and ASCII): what a ##contig ID can hold


def _cyvcf2_VCF():
    return require("cyvcf2", extra="genomics", feature="reading VCF/BCF files").VCF


class VcfTarget(Target):
    """VCF/BCF (bgzipped or plain) via cyvcf2: GT hardcalls by default, ``DS`` dosages on request.

    The variant table comes from one pass over the file; genotypes are decoded in a second pass,
    only for the records a score uses.
    """

    kind = "vcf"

    def __init__(self, path: Path, *, field: str = "GT", threads: int = 1) -> None:
        super().__init__(path)
        self.dtype = np.float32 if field == "DS" else np.int8
        if field not in ("GT", "DS"):
            raise InputError(f"unknown genotype field {field!r}", file=path, fix="use GT or DS")
        self.field = field
        self.threads = threads
        VCF = _cyvcf2_VCF()
        vcf = self._open(VCF, gts012=True)
        try:
            self.genome_build = _build_from_header(vcf.raw_header.splitlines())
            if field == "DS" and "DS" not in {h.info().get("ID") for h in vcf.header_iter()
                                              if h.type == "FORMAT"}:
                raise InputError("the VCF has no FORMAT/DS field", file=path,
                                 fix="score hardcalls (GT, the default) or add dosages (e.g. "
                                     "from imputation)")
            self.samples = pd.DataFrame({"IID": list(vcf.samples)})
            check_unique_samples(self.samples, path, first_line=10, unit="sample column")
            declared = self._declare_contigs(vcf)
        except PmedError:
            vcf.close()
            raise
        except Exception as e:  # cyvcf2 decoding a damaged header (not UTF-8, …)
            vcf.close()
            raise InputError(f"cannot read the VCF header ({type(e).__name__}: {_short(e)})",
                             file=path, where="header",
                             fix="check the file with 'bcftools view -h'; the header must be "
                                 "UTF-8 text ending in the #CHROM line") from e
        chrom, pos, ids, ref, alt = [], [], [], [], []
        n = 0
        try:
            for rec in vcf:
                c = rec.CHROM
                if c not in declared:
                    # htslib hands over a record of an undeclared contig even when the rest of
                    # its line failed to parse, and reading such a record crashes the process
                    raise InputError(
                        "the record is on a chromosome that the header does not declare",
                        file=path, where=f"record {n + 1}",
                        fix="declare every chromosome in ##contig header lines (bcftools "
                            "reheader), or check the file is not damaged")
                chrom.append(c)
                pos.append(rec.POS)
                ids.append(rec.ID or ".")
                ref.append(rec.REF)
                alt.append(",".join(rec.ALT) if rec.ALT else ".")
                n += 1
        except InputError:
            raise
        except Exception as e:
            raise self._truncated(e, n, chrom, pos) from e
        finally:
            vcf.close()
        if not vcf.samples:
            raise InputError("the VCF has no samples", file=path, fix="give a VCF with genotype columns")
        table = pd.DataFrame({"chr": chrom, "pos": pos, "id": ids, "ref": ref, "alt": alt})
        self.variants = _explode_alts(table)

    def _declare_contigs(self, vcf) -> set[str]:
        """The chromosomes the header declares; for a text VCF without ``##contig`` lines, those
        its records use, found in a first pass and added to the header (see the check above)."""
        declared = set(_CONTIG.findall(vcf.raw_header))
        if declared or self.path.suffix.lower() == ".bcf":
            return declared
        order: dict[str, None] = {}
        try:
            with open_text(self.path, errors="replace") as fh:
                for line in fh:
                    if not line.startswith("#"):
                        order.setdefault(line.partition("\t")[0].rstrip("\r\n"), None)
        except (OSError, EOFError, zlib.error) as e:
            raise self._truncated(e, 0, [], []) from e
        for i, c in enumerate(order):
            if not c.isascii() or not _CONTIG_NAME.fullmatch(c):
                raise InputError("a record has an empty or invalid chromosome name",
                                 file=self.path, where=f"chromosome {i + 1} of the file",
                                 fix="chromosome names have no spaces, commas, quotes or <>")
            vcf.add_to_header(f"##contig=<ID={c}>")
        return set(order)

    def _open(self, VCF, **kw):
        try:
            return VCF(str(self.path), threads=self.threads, lazy=True, **kw)
        except (OSError, ValueError, Exception) as e:
            raise _vcf_open_problem(self.path) or InputError(
                f"cannot open the VCF ({_short(e, 100)})", file=self.path,
                fix="give a bgzipped or plain VCF, or a BCF") from e

    def _truncated(self, e, n, chrom, pos) -> InputError:
        after = f" after record {n} ({chrom[-1]}:{pos[-1]})" if n else " before the first record"
        return InputError(f"the VCF is truncated or corrupt: reading stopped{after}: {_short(e, 100)}",
                          file=self.path, where=f"record {n + 1}",
                          fix="the file was probably cut short: re-download or re-export it and "
                              "check it with 'bgzip -t' / 'bcftools view'")

    def read_alt_dosages(self, var_idx, allele_idx, out, samples=None) -> None:
        for s, blk in self.iter_blocks(var_idx, allele_idx, block=len(var_idx), samples=samples):
            out[s: s + len(blk)] = blk

    def iter_blocks(self, var_idx, allele_idx, block: int = 1000, samples=None):
        """One pass over the file: decode only the wanted records, yield them in blocks."""
        var_idx = np.asarray(var_idx)
        cols = samples if samples is not None else slice(None)
        n = len(range(*(samples or slice(0, self.n_samples)).indices(self.n_samples)))
        buf = np.empty((min(block, max(len(var_idx), 1)), n), dtype=self.dtype)
        k = 0  # position in var_idx
        start = 0
        records = self._iter(np.unique(var_idx).tolist())
        rec_i, rec = next(records, (None, None))
        while k < len(var_idx):
            # several rows may share a record (multi-allelic sites)
            while rec_i is not None and rec_i < var_idx[k]:
                rec_i, rec = next(records, (None, None))
            if rec_i != var_idx[k]:  # pragma: no cover - var_idx come from our own table
                raise InputError("the VCF changed while it was read", file=self.path,
                                 fix="do not modify input files during scoring")
            try:
                self._fill(rec, int(allele_idx[k]), buf[k - start], cols)
            except Exception as e:  # cyvcf2/htslib: a record whose genotypes cannot be parsed
                records.close()
                raise InputError(
                    f"the genotypes of record {int(var_idx[k]) + 1} cannot be read: {_short(e)}",
                    file=self.path, where=f"record {int(var_idx[k]) + 1}",
                    fix="check the file with 'bcftools view'; every record needs a FORMAT "
                        "column and one genotype per sample") from e
            k += 1
            if k - start == len(buf) or k == len(var_idx):
                yield start, buf[: k - start]
                start = k
        records.close()

    def _iter(self, sorted_idx: Sequence[int]):
        """Yield (var_idx, record) for the wanted records, in file order."""
        vcf = self._open(_cyvcf2_VCF(), gts012=True)
        want = iter(sorted_idx)
        nxt = next(want, None)
        i = -1
        chrom, pos = [], []
        try:
            for rec in vcf:
                i += 1
                if nxt is None:
                    break
                if i == nxt:
                    chrom.append(rec.CHROM)
                    pos.append(rec.POS)
                    yield i, rec
                    nxt = next(want, None)
        except InputError:
            raise
        except Exception as e:
            raise self._truncated(e, i, chrom or ["?"], pos or ["?"]) from e
        finally:
            vcf.close()

    def _fill(self, rec, allele: int, row: np.ndarray, cols: slice) -> None:
        if self.field == "DS":
            ds = rec.format("DS")
            if ds is None:
                row[:] = np.nan
                return
            v = ds[cols, allele - 1].astype(np.float32)
            v[(v < -1e30) | np.isnan(v)] = np.nan  # htslib's missing float
            row[:] = v
            return
        if len(rec.ALT) <= 1:
            gt = rec.gt_types[cols]  # 0 hom-ref, 1 het, 2 hom-alt, 3 unknown (gts012)
            row[:] = gt
            row[gt == 3] = -9
            return
        arr = rec.genotype.array()[cols, :-1]  # allele indices per ploidy slot; -1 missing
        miss = (arr < 0).any(axis=1)
        row[:] = (arr == allele).sum(axis=1)
        row[miss] = -9


def _vcf_open_problem(path: Path) -> InputError | None:
    """Why htslib could not open a VCF, when the cause is one pmed can name: a gzip stream cut
    short or damaged, or a UTF-8 byte-order mark before ``##fileformat`` (htslib reads neither).

    Only called once opening has failed, so reading the compressed file to its end costs a
    successful run nothing.
    """
    import gzip

    from pmed.genomics.prs.scorefile import read_failure

    samples: list[str] | None = None
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            head = fh.read(3)
            fh.seek(0)
            for line in fh:  # the header: htslib refuses a sample named twice
                if not line.startswith(b"#"):
                    break
                if line.startswith(b"#CHROM"):
                    samples = line.rstrip(b"\r\n").split(b"\t")[9:]
                    break
            while gz and fh.read(1 << 20):  # to the end: a cut or a bad block shows up here
                pass
    except (OSError, EOFError, zlib.error) as e:
        return read_failure(path, e, what="VCF", fix="give a bgzipped or plain VCF, or a BCF")
    if head == b"\xef\xbb\xbf":
        return InputError("the VCF starts with a UTF-8 byte-order mark (BOM), which htslib "
                          "cannot read", file=path, where="line 1",
                          fix="remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE (then bgzip)")
    if samples:
        try:
            check_unique_samples(pd.DataFrame({"IID": samples}), path, first_line=10,
                                 unit="sample column")
        except InputError as e:
            return e
    return None


# ---------------------------------------------------------------------- in memory
class ArrayTarget(Target):
    """Genotypes already in memory: ALT dosages (variants × samples, int8 with negative =
    missing, or float with NaN), e.g. a Cohort's ``genotypes`` block or a test fixture."""

    kind = "array"

    def __init__(self, variants: pd.DataFrame, dosages: np.ndarray, samples, *, name: str = "<array>",
                 genome_build: str | None = None) -> None:
        super().__init__(Path(name))
        dosages = np.asarray(dosages)
        if dosages.shape != (len(variants), len(samples)):
            raise InputError(f"dosages have shape {dosages.shape}, expected "
                             f"{(len(variants), len(samples))} (variants × samples)", file=name)
        self.dtype = np.int8 if np.issubdtype(dosages.dtype, np.integer) else np.float32
        self._G = dosages.astype(self.dtype)
        v = variants.rename(columns={"chrom": "chr"})[["chr", "pos", "id", "ref", "alt"]].copy()
        self.variants = _explode_alts(v.astype({"pos": "int64", "chr": str}))
        self.samples = pd.DataFrame({"IID": [str(x) for x in samples]})
        check_unique_samples(self.samples, Path(name), unit="sample")
        self.genome_build = genome_build

    def read_alt_dosages(self, var_idx, allele_idx, out, samples=None) -> None:
        cols = samples if samples is not None else slice(None)
        out[: len(var_idx)] = self._G[np.asarray(var_idx)][:, cols]


# ---------------------------------------------------------------------- opening
_SUFFIXES = {".pgen": "pgen", ".bed": "bed", ".vcf": "vcf", ".bcf": "vcf", ".gz": "vcf", ".bgz": "vcf"}


@in_lean_heap
def open_target(path: str | Path, *, dosage_field: str = "GT", n_jobs: int | None = None,
                threads: int | None = None) -> Target:
    """Open one genotype file set, recognised by its suffix (``.pgen``, ``.bed``, ``.vcf[.gz]``, ``.bcf``).

    A path without a suffix is tried as a PLINK prefix (``PREFIX.pgen``, then ``PREFIX.bed``).
    ``n_jobs`` are htslib's decompression threads for a VCF (``threads`` is its deprecated name).

    Raises
    ------
    InputError
        A missing, incomplete, truncated or unparsable file set.
    MissingDependencyError
        pgenlib (PLINK) or cyvcf2 (VCF) is not installed.
    """
    if threads is not None:
        warnings.warn("threads= is deprecated; use n_jobs=", PmedWarning, stacklevel=3)
        n_jobs = n_jobs or threads
    path = Path(path)
    if not path.exists():
        for suffix in (".pgen", ".bed", ".vcf.gz", ".bcf"):
            alt = Path(str(path) + suffix)
            if alt.exists():
                path = alt
                break
        else:
            raise InputError("genotype file not found", file=path,
                             fix="give a .pgen, .bed, .vcf.gz or .bcf file (or a PLINK prefix)")
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind == "vcf" and path.suffix.lower() in (".gz", ".bgz") and not re.search(r"\.vcf\.b?gz$", path.name, re.I):
        kind = None
    if kind == "pgen":
        return PgenTarget(path)
    if kind == "bed":
        return BedTarget(path)
    if kind == "vcf":
        return VcfTarget(path, field=dosage_field, threads=max(1, n_jobs or 1))
    raise InputError(f"unrecognised genotype file type {path.suffix!r}", file=path,
                     fix="supported: PLINK 2 .pgen, PLINK 1 .bed, VCF (.vcf, .vcf.gz) and .bcf")


def open_targets(paths: str | Path | Sequence[str | Path], **kw) -> list[Target]:
    """Open several files (e.g. one per chromosome; glob patterns allowed) sharing the same samples."""
    if isinstance(paths, str | Path):
        paths = [paths]
    expanded: list[str] = []
    for p in paths:
        hits = sorted(glob.glob(str(p))) if any(ch in str(p) for ch in "*?[") else [str(p)]
        if not hits:
            raise InputError("no genotype file matches the pattern", file=p, fix="check the pattern")
        expanded.extend(hits)
    targets = [open_target(p, **kw) for p in expanded]
    first = targets[0]
    for t in targets[1:]:
        if not t.samples["IID"].equals(first.samples["IID"]):
            raise InputError(
                "genotype files do not list the same samples in the same order",
                file=t.path, fix=f"split files must share their samples with {first.path.name}")
    return targets
