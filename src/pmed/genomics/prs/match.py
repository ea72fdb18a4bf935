"""Match scoring-file variants to target variants with pgsc_calc's rules, and report the result.

For every scoring-file row, candidates are the target variants at the same chromosome and position
(or with the same ID when the row has no position). Each candidate gets a match type, best first:

=================  ==========================================================
``refalt``         effect allele = REF, other allele = ALT
``altref``         effect allele = ALT, other allele = REF (weight on the ALT allele)
``refalt_flip``    the same after complementing the scoring-file alleles (strand flip)
``altref_flip``
``no_oa_ref``      no other allele in the file; effect allele = REF
``no_oa_alt``      … = ALT
``no_oa_*_flip``   … after a strand flip
=================  ==========================================================

Then, as pgsc_calc does: the best type wins per row (ties broken by file order:
``duplicate_best_match``), several rows of one score that best-match the same target variant are
all excluded (``duplicate_ID``), strand-ambiguous variants (REF/ALT = A/T or C/G) are excluded
unless asked to keep them, and so are multi-allelic sites. Every row ends with one
``match_status``: ``matched``, ``excluded`` (with the reason), or ``unmatched``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pmed.errors import InputError
from pmed.genomics.prs._memory import in_lean_heap

__all__ = ["match_variants", "MatchResult", "MATCH_TYPES", "complement", "check_overlap"]

MATCH_TYPES = ("refalt", "altref", "refalt_flip", "altref_flip",
               "no_oa_ref", "no_oa_alt", "no_oa_ref_flip", "no_oa_alt_flip")
_PRIORITY = {t: i for i, t in enumerate(MATCH_TYPES)}
_COMP = str.maketrans("ACGTacgt", "TGCAtgca")


def complement(alleles: pd.Series) -> pd.Series:
    """Base-by-base complement (``A↔T``, ``C↔G``) of allele strings; missing stays missing."""
    s = alleles.astype("string")
    return s.where(s.isna(), s.fillna("").str.translate(_COMP))


@dataclass
class MatchResult:
    """What matching produced.

    Attributes
    ----------
    variants : DataFrame
        One row per scoring-file row (all scores): the scoring columns plus ``match_status``
        (``matched``/``excluded``/``unmatched``), ``match_type``, ``exclude_reason``, and for
        matched rows the target's ``file``, ``var_idx``, ``allele_idx``, ``target_row`` (row
        of the target variant table), ``ref``, ``alt`` and ``effect_is_alt``.
        ``allele_mismatch`` marks unmatched rows whose position (or ID) is in the target with
        other alleles, in neither orientation nor strand; their ``target_row``, ``ref`` and
        ``alt`` name that target variant.
    report : DataFrame
        Per score: counts by status, match type and exclusion reason, and ``overlap``.
    target_ids : Series, optional
        The target variant table's ``id`` column (shared, not copied): see :meth:`log`.
    """

    variants: pd.DataFrame
    report: pd.DataFrame
    target_ids: pd.Series | None = None

    @property
    def matched(self) -> pd.DataFrame:
        """The rows that will be scored (the columns scoring needs)."""
        cols = [c for c in ("score", "row", "weight", "effect_type", "af", "file", "var_idx",
                            "allele_idx", "effect_is_alt") if c in self.variants.columns]
        return self.variants.loc[(self.variants["match_status"] == "matched").to_numpy(), cols]

    def log(self, columns: Sequence[str] | None = None, *, rows: slice = slice(None)) -> pd.DataFrame:
        """:attr:`variants` (``columns`` of them, ``rows`` of them) with ``target_id``, the matched
        target variant's ID.

        The IDs are looked up here rather than stored by matching: a million of them take more
        memory than every other column matching adds.
        """
        v = self.variants.iloc[rows]
        cols = list(v.columns) + ["target_id"] if columns is None else list(columns)
        out = {c: v[c] for c in cols if c in v.columns}
        if "target_id" in cols and "target_id" not in v.columns and self.target_ids is not None:
            out["target_id"] = pd.Series(_take_ids(self.target_ids, v["target_row"].to_numpy()),
                                         index=v.index)
        return pd.DataFrame(out, copy=False)[[c for c in cols if c in out]]


def _codes(values, vocab: pd.Index) -> np.ndarray:
    """Positions of values in ``vocab`` (−1 for missing), through the categories only."""
    c = values.array if isinstance(values, pd.Series) else values
    if not isinstance(c, pd.Categorical):
        c = pd.Categorical(np.asarray(c, dtype=object))
    lut = np.append(vocab.get_indexer(pd.Index(c.categories, dtype=object)), -1).astype(np.int32)
    return lut[np.asarray(c.codes)]


def _vocab(*cols) -> pd.Index:
    cats = []
    for c in cols:
        c = c.array if isinstance(c, pd.Series) else c
        cats.extend(c.categories if isinstance(c, pd.Categorical) else pd.unique(np.asarray(c, dtype=object)))
    return pd.Index(pd.unique(np.asarray([x for x in cats if isinstance(x, str)], dtype=object)))


def _ranges(lo: np.ndarray, hi: np.ndarray):
    """(i, j) pairs for every j in [lo[i], hi[i]): the candidate pairs of a sorted join."""
    cnt = hi - lo
    i = np.repeat(np.arange(len(lo), dtype=np.int32), cnt)
    j = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
    return i, j


#: Scoring rows matched per step: the candidate arrays of one step are a few MB, whatever the
#: size of the file.
_CHUNK = 1 << 16

# match types in order of preference: (uses the other allele?, scoring-file alleles flipped?,
# effect allele is REF?) — the index is the position in MATCH_TYPES
_RULES = [(True, False, True), (True, False, False), (True, True, True), (True, True, False),
          (False, False, True), (False, False, False), (False, True, True), (False, True, False)]


class _TargetIndex:
    """The target's variants as integer arrays, sorted by (chromosome, position) for the join."""

    def __init__(self, tv: pd.DataFrame, chr_vocab: pd.Index, vocab: pd.Index) -> None:
        n = len(tv)
        if n >= 2**31:
            raise InputError(f"{n} target variant rows: more than this matcher indexes",
                             fix="score the genotypes one chromosome file at a time")
        key = (_codes(tv["chr"], chr_vocab).astype(np.int64) << 34) | tv["pos"].to_numpy(dtype=np.int64)
        order = np.argsort(key, kind="stable")
        self.order = order.astype(np.int32)
        del order
        self.key = key[self.order]
        del key
        small = np.int16 if len(vocab) < 2**15 - 1 else np.int32
        self.ref = _codes(tv["ref"], vocab).astype(small, copy=False)
        self.alt = _codes(tv["alt"], vocab).astype(small, copy=False)
        self.file = tv["file"].to_numpy() if "file" in tv.columns else np.zeros(n, np.int16)
        self.var_idx = tv["var_idx"].to_numpy()
        self.allele_idx = tv["allele_idx"].to_numpy()
        self.n_alt = tv["n_alt"].to_numpy()
        self._tv = tv
        self._ids: pd.Series | None = None

    def variant_of(self, rows: np.ndarray) -> np.ndarray:
        """A number per target variant (file, ``var_idx``) for the given allele rows.

        Targets list a site's ALT alleles on consecutive rows, so the site's first row numbers
        it; a table in another order gets its (file, variant) pairs numbered instead.
        """
        later = np.flatnonzero(self.allele_idx > 1)
        first = later - (self.allele_idx[later].astype(np.int64) - 1)
        if (first >= 0).all() and (self.var_idx[first] == self.var_idx[later]).all() and (
                self.file[first] == self.file[later]).all() and (self.allele_idx[first] == 1).all():
            return rows - (self.allele_idx[rows].astype(np.int32) - 1)
        pair = (self.file[rows].astype(np.int64) << 32) | self.var_idx[rows].astype(np.int64)
        return pd.factorize(pair)[0].astype(np.int32)

    def by_id(self, ids) -> np.ndarray:
        """Target row of the first variant with each ID (−1 when absent)."""
        if self._ids is None:
            t_ids = pd.Index(np.asarray(self._tv["id"], dtype=object))
            keep = ~t_ids.duplicated(keep="first")
            self._ids = pd.Series(np.flatnonzero(keep), index=t_ids[keep])
        hit = self._ids.reindex(np.asarray(ids, dtype=object))
        return hit.fillna(-1).to_numpy(dtype=np.int64)


def _best_matches(scoring: pd.DataFrame, t: _TargetIndex, chr_vocab: pd.Index, vocab: pd.Index,
                  comp_lut: np.ndarray, start: int, stop: int):
    """Best match (type, target row) of each scoring row in ``[start, stop)``.

    Candidates are the target alleles at the same chromosome and position (or with the same ID
    when the row has no position); the best type wins, ties go to the first in target order.
    """
    rows = slice(start, stop)
    s_chr = _codes(scoring["chr"].iloc[rows], chr_vocab).astype(np.int64)
    pos = scoring["pos"].to_numpy(dtype=np.float64)[rows]
    has_pos = ~np.isnan(pos) & (s_chr >= 0)
    s_key = np.where(has_pos, (s_chr << 34) | np.nan_to_num(pos).astype(np.int64), -1)
    lo = np.searchsorted(t.key, s_key, "left")
    hi = np.searchsorted(t.key, s_key, "right")
    hi[~has_pos] = lo[~has_pos]
    si, tj = _ranges(lo, hi)
    ti = t.order[tj]
    by_id = ~has_pos & scoring["rsid"].iloc[rows].notna().to_numpy()
    if by_id.any():  # rows without a position: by ID (rare)
        hit = t.by_id(scoring["rsid"].iloc[rows][by_id])
        ok = hit >= 0
        si = np.concatenate([si, np.flatnonzero(by_id)[ok].astype(np.int32)])
        ti = np.concatenate([ti, hit[ok].astype(np.int32)])
    ea = _codes(scoring["effect_allele"].iloc[rows], vocab)[si]
    oa = _codes(scoring["other_allele"].iloc[rows], vocab)[si]
    ref, alt = t.ref[ti], t.alt[ti]
    eaf, oaf = comp_lut[ea], comp_lut[oa]
    has_oa = oa >= 0
    prio = np.full(len(si), -1, np.int8)
    for k in range(len(_RULES) - 1, -1, -1):  # worst first, so the best type is written last
        with_oa, flip, on_ref = _RULES[k]
        e, o = (eaf, oaf) if flip else (ea, oa)
        hit = e == (ref if on_ref else alt)
        hit &= (has_oa & (o == (alt if on_ref else ref))) if with_oa else ~has_oa
        prio[hit] = k
    ok = prio >= 0
    # rows with a target variant at their position (or ID) whose alleles fit no orientation:
    # not "not found" — the build, the strand or the reference allele disagree (reported)
    found = np.zeros(stop - start, bool)
    found[si] = True
    found[si[ok]] = False
    mis_rows = np.flatnonzero(found)
    mis_ti = ti[np.searchsorted(si, mis_rows)] if len(mis_rows) and _sorted(si) else \
        _first_of(si, ti, mis_rows)
    si, ti, prio = si[ok], ti[ok], prio[ok]
    # ties between equally good candidates → first in target order (duplicate_best_match)
    order = np.lexsort((t.allele_idx[ti], t.var_idx[ti], t.file[ti], prio, si))
    si, ti, prio = si[order], ti[order], prio[order]
    first = np.ones(len(si), bool)
    first[1:] = si[1:] != si[:-1]
    return (si[first].astype(np.int64) + start, ti[first], prio[first],
            mis_rows.astype(np.int64) + start, mis_ti)


def _sorted(a: np.ndarray) -> bool:
    return bool(len(a) < 2 or (a[1:] >= a[:-1]).all())


def _first_of(si: np.ndarray, ti: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The first candidate target row of each of ``rows`` (``si`` in any order)."""
    if not len(rows):
        return np.zeros(0, ti.dtype)
    order = np.argsort(si, kind="stable")
    s = si[order]
    return ti[order][np.searchsorted(s, rows)]


@in_lean_heap
def match_variants(
    scoring: pd.DataFrame,
    target_variants: pd.DataFrame,
    *,
    keep_ambiguous: bool = False,
    keep_multiallelic: bool = False,
    keep_first_match: bool = False,
    unscorable: pd.DataFrame | None = None,
) -> MatchResult:
    """Match scoring-file rows to target variants.

    Parameters
    ----------
    scoring
        Long table from :func:`~pmed.genomics.prs.read_scorefile` (several files concatenated).
    target_variants
        ``chr, pos, id, ref, alt, allele_idx, n_alt, var_idx`` and ``file`` (index of the target
        file when scores span several files; 0 when absent).
    keep_ambiguous
        Keep strand-ambiguous variants (A/T, C/G), scored on the target's strand as given.
    keep_multiallelic
        Keep matches at multi-allelic sites (the matched ALT allele's dosage is used).
    keep_first_match
        Of several rows of one score that match the same target variant, keep the first instead
        of excluding them all.
    unscorable
        Rows the scoring-file reader set aside; counted in the report.

    Notes
    -----
    Alleles and chromosomes are compared as integer codes of one shared vocabulary and the
    join is a binary search over sorted (chromosome, position) keys, done for a slice of
    scoring rows at a time, so a million-row scoring file is matched in about a second with
    little more memory than the columns it adds.
    """
    if not isinstance(scoring.index, pd.RangeIndex) or scoring.index.start != 0:
        scoring = scoring.reset_index(drop=True)
    tv = target_variants
    if not isinstance(tv.index, pd.RangeIndex) or tv.index.start != 0:
        tv = tv.reset_index(drop=True)
    chr_vocab = _vocab(scoring["chr"], tv["chr"])
    vocab = _vocab(scoring["effect_allele"], scoring["other_allele"], tv["ref"], tv["alt"])
    comp = vocab.get_indexer(pd.Index([v.translate(_COMP) for v in vocab], dtype=object))
    comp_lut = np.append(np.where(comp < 0, -2, comp), -1).astype(np.int32)  # absent → matches nothing
    t = _TargetIndex(tv, chr_vocab, vocab)

    n = len(scoring)
    target_row = np.full(n, -1, np.int32)
    mt = np.full(n, -1, np.int8)
    mismatch = np.zeros(n, bool)
    for start in range(0, n, _CHUNK):
        si, ti, prio, mis, mis_ti = _best_matches(scoring, t, chr_vocab, vocab, comp_lut, start,
                                                  min(start + _CHUNK, n))
        target_row[si], mt[si] = ti, prio
        mismatch[mis] = True
        target_row[mis] = mis_ti  # the target variant found there, for the log
    del t.order, t.key
    matched = mt >= 0
    rows = target_row[matched]
    mis_rows = target_row[mismatch]
    # columns are added as soon as they can be, and what they came from is freed at once
    out = scoring.copy(deep=False)
    out["match_type"] = pd.Categorical.from_codes(mt, categories=list(MATCH_TYPES))
    out["effect_is_alt"] = matched & (mt % 2 == 1)  # altref, altref_flip, no_oa_alt(_flip)
    del mt
    small = np.int8 if len(vocab) < 127 else np.int32
    for name in ("ref", "alt"):
        codes = np.full(n, -1, small)
        codes[matched] = getattr(t, name)[rows]
        codes[mismatch] = getattr(t, name)[mis_rows]
        out[name] = pd.Categorical.from_codes(codes, categories=vocab)
        del codes
    out["allele_mismatch"] = mismatch
    del mis_rows
    ambiguous = comp_lut[t.ref[rows]] == t.alt[rows]
    del t.ref, t.alt

    # exclusions, in pgsc_calc's order of precedence
    reason = np.zeros(len(rows), np.int8)  # index into _EXCLUDE
    reason[_duplicated(scoring["score"], matched, t.variant_of(rows), len(tv), keep_first_match)] = 1
    if not keep_ambiguous:
        reason[ambiguous & (reason == 0)] = 2
    multi = t.n_alt[rows] > 1
    if not keep_multiallelic:
        reason[multi & (reason == 0)] = 3

    status = np.zeros(n, np.int8)  # unmatched
    status[matched] = np.where(reason == 0, np.int8(1), np.int8(2))
    out["match_status"] = pd.Categorical.from_codes(status, categories=_STATUS)
    del status
    er = np.zeros(n, np.int8)
    er[matched] = reason
    out["exclude_reason"] = pd.Categorical.from_codes(er, categories=list(_EXCLUDE))
    del er, reason
    for name, values in (("ambiguous", ambiguous), ("multiallelic", multi)):
        col = np.zeros(n, bool)
        col[matched] = values
        out[name] = col
    del ambiguous, multi
    for name, values, dtype in (("file", t.file, np.int16), ("var_idx", t.var_idx, np.int32),
                                ("allele_idx", t.allele_idx, np.int16)):
        col = np.full(n, -1, dtype)
        col[matched] = values[rows]
        out[name] = col
    out["target_row"] = target_row
    del t, rows, matched
    return MatchResult(out, _report(out, unscorable), target_ids=tv["id"])


def _duplicated(score, matched: np.ndarray, variant: np.ndarray, n_rows: int,
                keep_first: bool) -> np.ndarray:
    """Which matched rows share their target variant with another row of the same score.

    ``variant`` is each matched row's target variant (its first allele's row), rows in file
    order; with ``keep_first`` the first row of each such group is not flagged. Counted in
    int32 arrays over the target's rows, which take less memory than sorting the rows.
    """
    codes = np.asarray(pd.Categorical(score).codes)[matched]
    dup = np.zeros(len(variant), bool)
    if not len(codes):
        return dup
    for code in np.unique(codes):
        sel = np.flatnonzero(codes == code) if codes.min() != codes.max() else slice(None)
        v = variant[sel]
        count = np.zeros(n_rows, np.int32)
        np.add.at(count, v, 1)
        d = count[v] > 1
        if keep_first and d.any():
            first = np.full(n_rows, np.iinfo(np.int32).max, np.int32)
            np.minimum.at(first, v, np.arange(len(v), dtype=np.int32))
            d &= first[v] != np.arange(len(v), dtype=np.int32)
        dup[sel] = d
    return dup


def _take_ids(ids: pd.Series, target_row: np.ndarray):
    """Target IDs by row (missing where −1), kept as compact Arrow strings when they are."""
    import pyarrow as pa

    missing = target_row < 0
    arr = ids.array
    if isinstance(arr, pd.arrays.ArrowStringArray):
        taken = pa.chunked_array(pa.array(arr)).take(
            pa.array(np.where(missing, 0, target_row), mask=missing))
        return pd.arrays.ArrowStringArray(taken)
    out = np.full(len(target_row), None, dtype=object)
    out[~missing] = np.asarray(ids, dtype=object)[target_row[~missing]]
    return out


_STATUS = ["unmatched", "matched", "excluded"]
_EXCLUDE = ["", "duplicate_ID", "strand_ambiguous", "multiallelic", "not_in_reference"]


def _report(v: pd.DataFrame, unscorable: pd.DataFrame | None) -> pd.DataFrame:
    """Per score: counts by status, match type and exclusion reason; the overlap."""
    sc = v["score"].array if isinstance(v["score"].dtype, pd.CategoricalDtype) else pd.Categorical(v["score"].astype(str))
    scores = [str(x) for x in sc.categories]
    if unscorable is not None and len(unscorable):
        scores += [s for s in dict.fromkeys(unscorable["score"].astype(str)) if s not in scores]
    k = len(scores)
    code = np.asarray(sc.codes)

    def count(mask=None) -> np.ndarray:  # in slices: bincount widens its input to int64
        x = code if mask is None else code[mask]
        out = np.zeros(k, np.int64)
        for i in range(0, len(x), _CHUNK):
            part = x[i:i + _CHUNK]
            out += np.bincount(part[part >= 0], minlength=k)[:k]
        return out

    def is_(col: str, value: str) -> np.ndarray:  # through the categories: no temporary copies
        c = v[col].array
        if isinstance(c, pd.Categorical):
            return np.asarray(c.codes) == c.categories.get_loc(value) if value in c.categories \
                else np.zeros(len(c), bool)
        return np.asarray(c, dtype=object) == value

    matched = is_("match_status", "matched")
    excluded = is_("match_status", "excluded")
    n_unsc = np.zeros(k, np.int64)
    if unscorable is not None and len(unscorable):
        vc = unscorable["score"].astype(str).value_counts()
        n_unsc = np.array([int(vc.get(s, 0)) for s in scores])
    rep = pd.DataFrame({"PGS": scores})
    rep["n_variants"] = count() + n_unsc
    rep["matched"] = count(matched)
    rep["excluded"] = count(excluded)
    rep["unmatched"] = count(~matched & ~excluded)
    rep["unmatched_allele_mismatch"] = count(v["allele_mismatch"].to_numpy(dtype=bool)) \
        if "allele_mismatch" in v.columns else 0
    rep["unscorable"] = n_unsc
    for t in MATCH_TYPES:
        rep[f"match_{t}"] = count(matched & is_("match_type", t))
    for r in ("strand_ambiguous", "multiallelic", "duplicate_ID"):
        rep[f"excluded_{r}"] = count(is_("exclude_reason", r))
    rep["matched_ambiguous_kept"] = count(matched & v["ambiguous"].to_numpy(dtype=bool))
    with np.errstate(invalid="ignore", divide="ignore"):
        rep["overlap"] = np.where(rep["n_variants"] > 0, rep["matched"] / rep["n_variants"], 0.0)
    return rep


def check_overlap(result: MatchResult, *, min_overlap: float, targets_desc: str,
                  target_variants: pd.DataFrame | None = None,
                  score_builds: dict | None = None, target_build: str | None = None) -> None:
    """Refuse scores whose overlap is below ``min_overlap``, naming the most likely cause.

    Raises
    ------
    InputError
        For the first failing score, with its overlap and a diagnosis: genome build mismatch
        (rsIDs found at other positions), chromosome subset, or ``chr`` naming.
    """
    bad = result.report[result.report["overlap"] < min_overlap]
    if bad.empty:
        return
    chromosomes = target_ids = None
    if target_variants is not None:
        chromosomes = set(target_variants["chr"].astype(str))
        target_ids = set(target_variants["id"].astype(str))
    lines = []
    for _, r in bad.head(3).iterrows():  # the first few: one readable line, however many fail
        name = str(r["PGS"]) if len(str(r["PGS"])) <= 40 else str(r["PGS"])[:39] + "…"
        if r["n_variants"] == 0:  # nothing to match: not a build problem
            lines.append(f"{name}: the score has no variants (every weight in its column is 0)")
            continue
        if r["unscorable"] == r["n_variants"]:
            lines.append(f"{name}: all {r['n_variants']} variants are unscorable (complex "
                         "alleles, dosage models or missing weights: see unscorable.tsv)")
            continue
        v = result.variants[result.variants["score"] == r["PGS"]]
        lines.append(f"{name}: {r['matched']} of {r['n_variants']} variants matched "
                     f"(overlap {r['overlap']:.1%} < {min_overlap:.0%}; "
                     f"{r['excluded']} excluded, {r['unmatched']} not found); "
                     + _diagnose(v, chromosomes, target_ids, (score_builds or {}).get(r["PGS"]),
                               target_build))
    if len(bad) > 3:
        lines.append(f"and {len(bad) - 3} more scores")
    raise InputError(
        "too few scoring-file variants found in the genotypes: " + " | ".join(lines),
        file=targets_desc,
        fix="check the genome build of the scoring file and the genotypes (use a harmonized "
            "PGS Catalog file for your build), that all chromosomes are given, or lower "
            "--min-overlap if a partial score is really intended")


def _diagnose(v: pd.DataFrame, chromosomes: set | None, target_ids: set | None,
              score_build, target_build) -> str:
    if score_build and target_build and score_build != target_build:
        return f"likely cause: genome build mismatch (scoring file {score_build}, genotypes {target_build})"
    un = v[v["match_status"] == "unmatched"]
    n_mis = int(v["allele_mismatch"].sum()) if "allele_mismatch" in v.columns else 0
    if len(un) and n_mis > 0.5 * len(un):
        return (f"likely cause: {n_mis} variants are at their positions in the genotypes with "
                "other alleles (REF/ALT fit neither the effect/other allele nor their strand "
                "flip): a different genome build or reference")
    if chromosomes is not None and len(un):
        if not chromosomes & set(un["chr"].dropna().astype(str)) and not (
                v["match_status"] == "matched").any():
            return (f"likely cause: no shared chromosome names (genotypes: "
                    f"{_names(chromosomes)}; scoring file: "
                    f"{_names(set(un['chr'].dropna().astype(str)))})")
        chrs = set(un["chr"].dropna().astype(str))
        missing = chrs - chromosomes
        if missing and len(un[un["chr"].isin(missing)]) > 0.5 * len(un):
            return ("likely cause: the genotypes lack chromosome(s) "
                    f"{_names(missing, 6)} — give every chromosome's file")
    if target_ids is not None and len(un):
        found = int(un["rsid"].isin(target_ids).sum())
        if found > 0.5 * max(len(un), 1):
            return (f"likely cause: genome build mismatch ({found} unmatched rsIDs are present in "
                    "the genotypes at other positions)")
    return "likely cause: a different genome build or variant set (check chr naming and build)"


#: Share of a score's variants found with other alleles above which a run warns (a few such
#: sites, e.g. indels written differently, are usual; many point at a build or reference problem).
MISMATCH_WARN = 0.01


def warn_allele_mismatches(report: pd.DataFrame, *, stacklevel: int = 2) -> None:
    """Warn for each score where many variants were found with other alleles (see
    ``unmatched_allele_mismatch`` of the report)."""
    import warnings

    from pmed.genomics.prs.scorefile import PRSWarning

    if "unmatched_allele_mismatch" not in report.columns:
        return
    for _, r in report.iterrows():
        n, total = int(r["unmatched_allele_mismatch"]), int(r["n_variants"])
        if n and n > MISMATCH_WARN * total:
            warnings.warn(
                f"{r['PGS']}: {n} of {total} variants ({n / total:.1%}) are at their position in "
                "the genotypes with other alleles (REF/ALT fit neither the effect/other allele "
                "nor their strand flip) and were not scored; check the genome build and "
                "reference of both files (match_variants.parquet: allele_mismatch)",
                PRSWarning, stacklevel=stacklevel + 1)


def _names(chroms: set, limit: int = 5) -> str:
    """A few chromosome names for a message, each cut short (they come from the files)."""
    shown = [c if len(c) <= 12 else c[:11] + "…" for c in sorted(chroms, key=_chr_key)[:limit]]
    return ", ".join(shown) + (f", … ({len(chroms)} in all)" if len(chroms) > limit else "")


def _chr_key(c: str):
    return (0, int(c)) if c.isdigit() else (1, c)
