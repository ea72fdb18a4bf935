"""Read polygenic scoring files: PGS Catalog format (1.0/2.0, harmonized or not) and plink2-style.

Every file becomes one long table with a row per (score, variant)::

    score  row  rsid  chr  pos  effect_allele  other_allele  weight  effect_type  af

``row`` is the 1-based line number in the file, so every problem can be traced back to it.
Rows that cannot be scored as an allele dosage (``dosage_N_weight`` models, haplotypes, complex
alleles such as APOE ε4 or HLA types, missing weights) go to a separate ``unscorable`` table with
the reason, and are reported in the match report, never silently dropped.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, PmedWarning, format_rows
from pmed.genomics.prs._memory import in_lean_heap, use_system_arrow_pool
from pmed.io.text import is_gzip, open_text

__all__ = ["ScoringFile", "read_scorefile", "normalize_build", "normalize_chrom", "COLUMNS",
           "PRSWarning", "KNOWN_BUILDS"]


class PRSWarning(PmedWarning):
    """A polygenic-score run that went through but whose result deserves a look (genome build
    that could not be checked, many variants found with other alleles…)."""


#: Columns of :attr:`ScoringFile.variants`.
COLUMNS = ["score", "row", "rsid", "chr", "pos", "effect_allele", "other_allele", "weight",
           "effect_type", "af"]

_BUILDS = {
    "grch37": "GRCh37", "hg19": "GRCh37", "b37": "GRCh37", "37": "GRCh37",
    "grch38": "GRCh38", "hg38": "GRCh38", "b38": "GRCh38", "38": "GRCh38",
    "ncbi36": "NCBI36", "hg18": "NCBI36", "36": "NCBI36",
}
#: The builds pmed can name (what :func:`normalize_build` maps the usual spellings to).
KNOWN_BUILDS = ("GRCh37", "GRCh38", "NCBI36")
_ALLELE = re.compile(r"^[ACGT]+$")
_ID_ALLELES = re.compile(r"^(?:chr)?([0-9XYMT]+)[:_](\d+)[:_]([ACGTN]+)[:_]([ACGTN]+)$", re.I)


def normalize_build(build: str | None) -> str | None:
    """``hg19``/``GRCh37``/``37`` → ``GRCh37`` (and likewise for 38, 36); None when unknown."""
    if build is None:
        return None
    b = str(build).strip()
    if not b or b.upper() in ("NR", "NA", "NONE"):
        return None
    return _BUILDS.get(b.lower(), b)


_CHR_ALIASES = {"23": "X", "24": "Y", "25": "XY", "26": "MT", "M": "MT"}


def _chrom_name(x):
    if not isinstance(x, str):
        return x
    c = re.sub(r"^chr", "", x.strip(), flags=re.I).upper()
    return _CHR_ALIASES.get(c, c)


def normalize_chrom(chrom) -> pd.Series:
    """``chr22``/``22``, ``chrX``/``23``/``X``, ``chrM``/``MT`` → one spelling (``22``, ``X``, ``MT``).

    Returns a categorical Series (the work is done once per distinct name).
    """
    if isinstance(chrom, pd.Series) and isinstance(chrom.dtype, pd.CategoricalDtype):
        return pd.Series(cat_map(chrom, _chrom_name), index=chrom.index)
    s = pd.Series(chrom)
    return pd.Series(cat_map(pd.Categorical(s.astype(object).where(s.notna(), None)), _chrom_name),
                     index=s.index)


@dataclass
class ScoringFile:
    """A parsed scoring file.

    Attributes
    ----------
    path : Path
    header : dict
        ``#key=value`` metadata (PGS Catalog format), e.g. ``pgs_id``, ``genome_build``.
    genome_build : str or None
        Normalised build of the positions used (``HmPOS_build`` for harmonized files).
    variants : DataFrame
        One row per scorable (score, variant); columns :data:`COLUMNS`.
    unscorable : DataFrame
        ``score``, ``row``, ``rsid``, ``reason`` for every row that cannot be scored.
    """

    path: Path
    header: dict = field(default_factory=dict)
    genome_build: str | None = None
    variants: pd.DataFrame = field(default_factory=pd.DataFrame)
    unscorable: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def scores(self) -> list[str]:
        """Names of the scores in the file, in file order."""
        col = self.variants["score"]
        if isinstance(col.dtype, pd.CategoricalDtype):
            names = [str(c) for c in col.cat.categories]
        else:
            names = list(dict.fromkeys(col.astype(str)))
        extra = [s for s in dict.fromkeys(self.unscorable.get("score", pd.Series(dtype=str)))
                 if s not in names]
        return names + extra


def read_failure(path: Path, e: BaseException, *, what: str, fix: str) -> InputError:
    """The error for a file that could not be read: a cut-short or damaged gzip stream says so.

    The parsers (Python's gzip, zlib, Arrow) report these with their own words ("Compressed
    file ended before the end-of-stream marker was reached", "Error -3 while decompressing");
    the user needs to hear that the file is truncated or corrupt, and which one it is.
    """
    text = " ".join(str(e).split())
    low = text.lower()
    if isinstance(e, EOFError) or "ended before the end-of-stream" in low or "truncated" in low:
        return InputError(f"the {what} is truncated (its compressed data end early)", file=path,
                          fix="the file was probably cut short: download or copy it again "
                              "(check it with 'gzip -t')")
    if isinstance(e, (zlib.error, gzip.BadGzipFile)) or "crc check failed" in low \
            or "while decompressing" in low or "not a gzipped file" in low:
        return InputError(f"the {what} is corrupt (its gzip data cannot be decompressed)",
                          file=path, fix="download or copy it again (check it with 'gzip -t')")
    if isinstance(e, UnicodeDecodeError):
        return InputError(f"the {what} is not UTF-8 text (byte 0x{e.object[e.start]:02x})",
                          file=path, fix="save it as UTF-8 (or gzip-compressed UTF-8) text")
    ragged = re.search(r"expected (\d+) columns, got (\d+)", low)
    if ragged:  # Arrow quotes the whole row after this: left out
        return InputError(f"a row of the {what} has {ragged.group(2)} columns where the header "
                          f"has {ragged.group(1)}", file=path, fix=fix)
    if len(text) > 120:  # parsers quote the offending line: never echo a long data value
        text = text[:119] + "…"
    return InputError(f"cannot read the {what} ({type(e).__name__}: {text})", file=path, fix=fix)


def columns_found(cols: list[str], limit: int = 8) -> str:
    """A short list of column names for a message (long names cut, at most ``limit`` shown)."""
    shown = [c if len(c) <= 24 else c[:23] + "…" for c in cols[:limit]]
    more = f", … ({len(cols)} in all)" if len(cols) > limit else ""
    return ", ".join(shown) + more


def _read_header(path: Path) -> tuple[dict, int, list[str]]:
    """Metadata lines (``#key=value``), the number of lines before the column header, its names."""
    header: dict[str, str] = {}
    n = 0
    try:
        with open_text(path) as fh:  # gzip by content; a UTF-8 BOM is removed
            for line in fh:
                n += 1
                if line.startswith("#"):
                    body = line.lstrip("#").strip()
                    if "=" in body:
                        k, v = body.split("=", 1)
                        header[k.strip()] = v.strip()
                    continue
                if not line.strip():
                    continue
                return header, n - 1, line.rstrip("\r\n").split("\t")
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as e:
        raise read_failure(path, e, what="scoring file",
                           fix="give a PGS Catalog scoring file (.txt or .txt.gz) or a plink2 "
                               "--score file") from e
    raise InputError("the scoring file has no column header line", file=path,
                     fix="a PGS Catalog scoring file has '#' metadata lines, then a tab-separated header")


@in_lean_heap
def read_scorefile(path: str | Path, *, name: str | None = None) -> ScoringFile:
    """Parse a scoring file.

    Two layouts are recognised from the column header:

    - **PGS Catalog** (``effect_allele`` and ``effect_weight`` columns, located by ``rsID`` and/or
      ``chr_name``/``chr_position``, or by ``hm_chr``/``hm_pos`` in harmonized files). One score
      per file, named by ``pgs_id`` (or ``name``, or the file name). ``is_dominant`` /
      ``is_recessive`` give the effect type; ``allelefrequency_effect`` is kept for imputation.
    - **plink2-style**: an ``ID`` column, an ``effect_allele`` (or ``A1``) column, optional
      ``other_allele``, then one numeric weight column per score. IDs written as
      ``chr:pos:a1:a2`` are also located by position.

    Raises
    ------
    InputError
        Unreadable file, no ``effect_allele`` column, no weight column, or no way to locate variants.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("scoring file not found", file=path, fix="check the path")
    header, skip, cols = _read_header(path)
    lower = {c.lower(): c for c in cols}
    ea_col = lower.get("effect_allele") or lower.get("a1")
    plink_id = lower.get("id") or lower.get("snp") or lower.get("variant_id")
    # a PGS Catalog file needs effect_allele and effect_weight; a plink2-style file an ID and
    # effect_allele (A1): name every missing column of the format the file is closest to
    missing = [] if ea_col else ["effect_allele"]
    if "effect_weight" not in lower and plink_id is None:
        missing.append("effect_weight")
    if missing:
        raise InputError(
            "the scoring file has no " + " and no ".join(f"'{c}'" for c in missing)
            + " column", file=path, where=f"line {skip + 1} (columns found: {columns_found(cols)})",
            fix="PGS Catalog format: columns 'effect_allele' (the allele the weight refers to) "
                "and 'effect_weight'; plink2 style: 'ID', 'effect_allele' (or 'A1'), then one "
                "weight column per score")
    needed = None
    if "effect_weight" in lower:  # PGS Catalog: free-text columns (locus_name, …) are not read
        needed = [c for c in cols if c.lower() in _PGS_COLUMNS
                  or re.fullmatch(r"dosage_\d_weight", c, flags=re.I)]
    df = _read_body(path, skip, cols, needed)
    if not len(df):  # not a build or matching problem: there is nothing to match
        raise InputError("the scoring file has no variants: a column header and no rows below it",
                         file=path, where=f"line {skip + 1}",
                         fix="give the complete scoring file (one row per variant)")
    df["__row"] = np.arange(skip + 2, len(df) + skip + 2, dtype=np.int32)  # 1-based line numbers
    if "effect_weight" in lower:
        sf = _pgs_catalog(path, df, header, lower, ea_col, name, skip, cols)
    else:
        sf = _plink_style(path, df, header, lower, ea_col, skip, cols)
    return sf


_PGS_COLUMNS = {"rsid", "chr_name", "chr_position", "effect_allele", "other_allele", "effect_weight",
                "is_dominant", "is_recessive", "is_haplotype", "is_diplotype",
                "allelefrequency_effect", "hm_chr", "hm_pos", "hm_rsid", "hm_inferotherallele"}


def _read_body(path: Path, skip: int, cols: list[str], needed: list[str] | None = None) -> pd.DataFrame:
    """The table below the header: repeated text as Categoricals, numbers as float64.

    pyarrow's CSV reader streams the file in blocks of a few MB and each block is converted to its
    compact form straight away (dictionary codes, float64, trimmed Arrow strings), so the peak
    memory stays near the size of the result rather than of the parsed text.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if len(set(cols)) != len(cols):
        raise InputError("duplicated column names in the header", file=path,
                         where=f"line {skip + 1}", fix="give every column a distinct name")
    names = needed or cols
    parts: dict[str, list] = {c: [] for c in names}
    kinds: dict[str, str] = {}
    use_system_arrow_pool()  # see pmed.genomics.prs._memory
    raw = None
    try:
        # decompressed by Python's zlib: Arrow's own gzip stream takes its buffers from the
        # default (mimalloc) pool, which keeps them after the read
        raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
        src = pa.PythonFile(raw, mode="r")
        reader = pcsv.open_csv(
            src,
            read_options=pcsv.ReadOptions(skip_rows=skip + 1, column_names=cols, block_size=1 << 22,
                                          use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in cols},
                                                include_columns=names, strings_can_be_null=True))
        for batch in reader:
            for c in names:
                arr = batch.column(c)
                if c not in kinds:  # judged on the first block, as a full hash pass costs more
                    kinds[c] = _kind(arr)
                kinds[c], piece = _compact(arr, kinds[c], parts[c])
                parts[c].append(piece)
            del batch
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as e:
        raise read_failure(path, e, what="scoring file",
                           fix="the file must be tab-separated with one header line and the "
                               "same number of columns on every row") from e
    finally:
        if raw is not None:
            raw.close()
    out = {c: _assemble(parts.pop(c), kinds.get(c, "category")) for c in names}
    release_memory()
    return pd.DataFrame(out, copy=False)


def _kind(arr) -> str:
    """``category`` for low-cardinality text, ``float`` when every value parses, else ``text``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    head = arr.slice(0, 20_000)
    if len(arr) == 0 or pc.count_distinct(head).as_py() <= max(64, len(head) // 10):
        return "category"
    try:
        pc.cast(arr, pa.float64())
        return "float"
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return "text"


def _compact(arr, kind: str, previous: list):
    """One block of a column in its compact form; a numeric column meeting text becomes text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "category":
        return kind, arr.dictionary_encode()
    if kind == "float":
        try:
            return kind, pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. "NA" far down the file
            previous[:] = [pc.cast(p, pa.string()) for p in previous]
            kind = "text"
    return kind, pc.utf8_trim_whitespace(arr)


def _assemble(pieces: list, kind: str):
    import pyarrow as pa

    if not pieces:
        return _na_cat(0)
    if kind == "category":
        return _categorical(pa.chunked_array(pieces).unify_dictionaries())
    if kind == "float":
        return np.concatenate([p.to_numpy(zero_copy_only=False) for p in pieces])
    return pd.arrays.ArrowStringArray(pa.chunked_array(pieces).combine_chunks())


def release_memory() -> None:
    """Give freed parse buffers back to the operating system (Arrow's pool, then glibc's heap)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _categorical(arr) -> pd.Categorical:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_encode()
    d = arr.combine_chunks()
    codes = pc.fill_null(d.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    cats = pd.Index(d.dictionary.to_pylist(), dtype=object)
    return _recode(codes, cats)


def _recode(codes: np.ndarray, cats: pd.Index, fn=None) -> pd.Categorical:
    """A Categorical from codes and (possibly transformed, possibly colliding) categories."""
    if fn is not None:
        cats = pd.Index([fn(c) for c in cats], dtype=object)
    keep = pd.notna(cats) & (cats != "")
    inv, uniq = pd.factorize(np.asarray(cats.where(keep, None), dtype=object), use_na_sentinel=True)
    remap = np.append(inv, -1).astype(np.int32)  # index -1 → -1
    return pd.Categorical.from_codes(remap[codes], categories=pd.Index(uniq, dtype=object))


def cat_map(c, fn) -> pd.Categorical:
    """Apply ``fn`` to the categories of a Categorical (or categorical Series) only."""
    c = c.array if isinstance(c, pd.Series) else c
    return _recode(np.asarray(c.codes, dtype=np.int32), pd.Index(c.categories, dtype=object), fn)


def cat_test(c, fn) -> np.ndarray:
    """Boolean per element: ``fn(category)``; missing values give False."""
    c = c.array if isinstance(c, pd.Series) else c
    if not isinstance(c, pd.Categorical):
        c = pd.Categorical(np.asarray(c, dtype=object))
    ok = np.array([bool(fn(x)) for x in c.categories] + [False], dtype=bool)
    return ok[np.asarray(c.codes)]


def _upper_strip(x):
    return x.strip().upper() if isinstance(x, str) else x


def _bool_col(df: pd.DataFrame, col: str | None) -> np.ndarray:
    if col is None:
        return np.zeros(len(df), dtype=bool)
    return cat_test(df[col], lambda x: str(x).strip().lower() in ("true", "1", "t", "yes"))


def _to_num(s: pd.Series) -> pd.Series:
    if s.dtype == np.float64:
        return s
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return pd.to_numeric(s, errors="coerce").astype(np.float64)
    c = s.array
    vals = pd.to_numeric(pd.Series(c.categories, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    return pd.Series(np.append(vals, np.nan)[np.asarray(c.codes)], index=s.index)


def _raw_text(path: Path, skip: int, cols: list[str], col: str) -> np.ndarray:
    """One column of the file as written (no text read as missing), as an object array.

    Arrow's reader turns ``NA``, ``nan``, ``NULL``… into missing values, as it should for
    every other column; only here the difference with an empty cell matters.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with (gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")) as raw:
        table = pcsv.read_csv(
            pa.PythonFile(raw, mode="r"),
            read_options=pcsv.ReadOptions(skip_rows=skip + 1, column_names=cols, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pcsv.ConvertOptions(column_types={col: pa.string()},
                                                include_columns=[col], strings_can_be_null=False))
    return table.column(col).to_numpy(zero_copy_only=False)


def _weights(path: Path, df: pd.DataFrame, col: str, skip: int, cols: list[str]) -> np.ndarray:
    """A weight column as float64; an empty cell is missing (NaN, then set aside as unscorable).

    Raises
    ------
    InputError
        When a cell holds something other than a finite number (``inf``, ``nan``, ``NA``, text):
        scoring it would turn every sample's score into NaN (or silently drop the variant), so
        the file is refused with the count and the line numbers of those cells.
    """
    w = _to_num(df[col]).to_numpy()
    bad = np.isinf(w)
    na = np.flatnonzero(np.isnan(w))
    if len(na):  # missing after the fast read: an empty cell, or text that is no number
        raw = _raw_text(path, skip, cols, col)[na]
        filled = np.array([bool(str(x).strip()) for x in raw], dtype=bool)
        bad[na[filled]] = True
    if bad.any():
        rows = np.flatnonzero(bad) + skip + 2  # 1-based lines: metadata, header, then the rows
        raw = _raw_text(path, skip, cols, col)[np.flatnonzero(bad)[:200]]
        kinds = list(dict.fromkeys(str(x).strip() for x in raw))
        shown = ", ".join(repr(k if len(k) <= 12 else k[:11] + "…") for k in kinds[:3])
        name = col if len(col) <= 40 else col[:39] + "…"
        raise InputError(
            f"{int(bad.sum())} row(s) of column '{name}' hold no finite number (e.g. {shown}): "
            "every score would be NaN", file=path, where=f"line(s) {format_rows(rows.tolist())}",
            fix=f"give a number in '{name}' on every row; leave the cell empty for a variant "
                "without a weight (it is then reported as unscorable), or remove the row")
    return w


def _frequencies(col: pd.Series | None, n: int):
    """``allelefrequency_effect`` as float64; a column with no value takes no memory (sparse)."""
    af = None if col is None else _to_num(col).to_numpy()
    if af is None or np.isnan(af).all():
        return pd.arrays.SparseArray(np.full(n, np.nan), fill_value=np.nan, kind="integer")
    return af


_REASONS = ["", "dosage_N_weight model (genotype-specific weights)", "haplotype/diplotype effect",
            "complex or missing effect allele (e.g. APOE/HLA)", "missing (empty) effect_weight",
            "both is_dominant and is_recessive", "no position and no rsID", "zero weight"]


def _flag(reasons: np.ndarray, mask: np.ndarray, code: int) -> None:
    reasons[np.asarray(mask, dtype=bool) & (reasons == 0)] = code


def _is_allele(x) -> bool:
    return isinstance(x, str) and _ALLELE.fullmatch(x) is not None


def _text(col: pd.Series):
    """A text column as it was read (categories stripped of spaces)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return cat_map(col, lambda x: x.strip() if isinstance(x, str) else x)
    return col.array


def _na_cat(n: int) -> pd.Categorical:
    return pd.Categorical.from_codes(np.full(n, -1, np.int32), categories=pd.Index([], dtype=object))


def _pgs_catalog(path, df, header, lower, ea_col, name, skip, cols) -> ScoringFile:
    score = name or header.get("pgs_id") or header.get("pgs_name") or path.name.split(".")[0]
    harmonized = "hm_chr" in lower and "hm_pos" in lower
    chr_col = lower.get("hm_chr") if harmonized else lower.get("chr_name")
    pos_col = lower.get("hm_pos") if harmonized else lower.get("chr_position")
    rsid_col = lower.get("hm_rsid") if harmonized and "hm_rsid" in lower else lower.get("rsid")
    if (chr_col is None or pos_col is None) and rsid_col is None:
        raise InputError("the scoring file has neither chr_name/chr_position nor rsID columns",
                         file=path, fix="PGS Catalog files locate variants by chr_name + chr_position "
                                        "(or hm_chr + hm_pos), or by rsID")
    build = normalize_build(header.get("HmPOS_build") if harmonized else header.get("genome_build"))
    n = len(df)
    oa_col = lower.get("other_allele")
    if oa_col is None and harmonized:
        oa_col = lower.get("hm_inferotherallele")
    ea = cat_map(df[ea_col], _upper_strip)
    # other alleles with several options ("A/G") carry no single allele: treat as absent
    oa = cat_map(df[oa_col], lambda x: x.strip().upper() if _is_allele(_upper_strip(x)) else None) \
        if oa_col else _na_cat(n)
    out = pd.DataFrame(copy=False, data={
        "score": pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[score]),
        "row": df["__row"].to_numpy(),
        "rsid": _text(df[rsid_col]) if rsid_col else _na_cat(n),
        "chr": normalize_chrom(df[chr_col]).array if chr_col else _na_cat(n),
        "pos": _to_num(df[pos_col]).to_numpy() if pos_col else np.full(n, np.nan),
        "effect_allele": ea,
        "other_allele": oa,
        "weight": _weights(path, df, lower["effect_weight"], skip, cols),
        "af": _frequencies(df[lower["allelefrequency_effect"]] if "allelefrequency_effect" in lower
                           else None, n),
    })
    dom = _bool_col(df, lower.get("is_dominant"))
    rec = _bool_col(df, lower.get("is_recessive"))
    out["effect_type"] = pd.Categorical.from_codes(
        np.where(dom, 1, np.where(rec, 2, 0)).astype(np.int32), categories=["additive", "dominant", "recessive"])

    reasons = np.zeros(n, np.int8)
    w_na = np.isnan(out["weight"].to_numpy())
    dosage_cols = [c for c in df.columns if re.fullmatch(r"dosage_\d_weight", c, flags=re.I)]
    if dosage_cols:
        has = np.any([_to_num(df[c]).notna().to_numpy() for c in dosage_cols], axis=0)
        _flag(reasons, has & w_na, 1)
    _flag(reasons, _bool_col(df, lower.get("is_haplotype")) | _bool_col(df, lower.get("is_diplotype")), 2)
    _flag(reasons, ~cat_test(ea, _is_allele), 3)
    _flag(reasons, w_na, 4)
    _flag(reasons, dom & rec, 5)
    no_loc = np.isnan(out["pos"].to_numpy()) & out["rsid"].isna().to_numpy()
    _flag(reasons, no_loc, 6)
    return _split(path, header, build, out, reasons)


def _plink_style(path, df, header, lower, ea_col, skip, cols) -> ScoringFile:
    id_col = lower.get("id") or lower.get("snp") or lower.get("variant_id")
    if id_col is None:  # read_scorefile has refused such a file already
        raise InputError("the plink2-style scoring file has no 'ID' column", file=path,
                         where=f"line {skip + 1} (columns found: {columns_found(cols)})",
                         fix="first column 'ID', then 'effect_allele', then one weight column per score")
    oa_col = lower.get("other_allele") or lower.get("a2")
    used = {id_col, ea_col, oa_col, "__row"}
    weight_cols = [c for c in df.columns if c not in used and c.lower() not in ("chr", "pos", "chr_name", "chr_position")]
    # a weight column is one with a number in it; text-only columns (annotations) are not read
    weight_cols = [c for c in weight_cols if _to_num(df[c]).notna().any()]
    if not weight_cols:
        raise InputError("the scoring file has no numeric weight column", file=path,
                         where=f"line {skip + 1} (columns found: {columns_found(cols)})",
                         fix="add one column of effect weights per score after effect_allele")
    weights = {c: _weights(path, df, c, skip, cols) for c in weight_cols}
    n = len(df)
    ids = df[id_col].astype(object)
    parsed = ids.str.extract(_ID_ALLELES)
    ea = cat_map(df[ea_col], _upper_strip)
    if oa_col:
        oa = cat_map(df[oa_col], _upper_strip)
    else:  # chr:pos:a:b IDs name both alleles: the other one is whichever is not the effect allele
        a, b = parsed[2].str.upper(), parsed[3].str.upper()
        e = pd.Series(np.asarray(ea), dtype=object)
        oa = pd.Categorical(np.where(e == a, b, np.where(e == b, a, None)))
    base = pd.DataFrame({
        "row": df["__row"].to_numpy(), "rsid": _text(df[id_col]),
        "chr": normalize_chrom(parsed[0]).array, "pos": pd.to_numeric(parsed[1]).to_numpy(dtype=float),
        "effect_allele": ea, "other_allele": oa,
        "effect_type": pd.Categorical.from_codes(np.zeros(n, np.int32), categories=["additive", "dominant", "recessive"]),
        "af": _frequencies(None, n),
    })
    parts, reasons = [], []
    bad_ea = ~cat_test(ea, _is_allele)
    for c in weight_cols:
        part = base.copy()
        part.insert(0, "score", c)
        w = weights[c]
        part["weight"] = w
        r = np.zeros(n, np.int8)
        _flag(r, bad_ea, 3)
        _flag(r, np.isnan(w), 4)
        # plink2 files list every variant in every column; a zero weight means "not in this score"
        _flag(r, w == 0, 7)
        parts.append(part)
        reasons.append(r)
    out = pd.concat(parts, ignore_index=True)
    out["score"] = pd.Categorical(out["score"], categories=weight_cols)
    build = normalize_build(header.get("genome_build"))
    return _split(path, header, build, out, np.concatenate(reasons))


def _split(path, header, build, out, reasons: np.ndarray) -> ScoringFile:
    zero = reasons == 7  # zero weights are not unscorable: the variant is not in that score
    if zero.any():
        out, reasons = out[~zero].reset_index(drop=True), reasons[~zero]
    bad = reasons > 0
    variants = out.loc[~bad, COLUMNS].reset_index(drop=True) if bad.any() else out[COLUMNS]
    unscorable = out.loc[bad, ["score", "row", "rsid"]].astype({"score": str, "rsid": object})
    unscorable = unscorable.assign(reason=np.asarray(_REASONS, dtype=object)[reasons[bad]])
    return ScoringFile(path=path, header=header, genome_build=build,
                       variants=variants, unscorable=unscorable.reset_index(drop=True))
