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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pmed.errors import InputError

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
        matched rows the target's ``file``, ``var_idx``, ``allele_idx``, ``target_id``, ``ref``,
        ``alt`` and ``effect_is_alt``.
    report : DataFrame
        Per score: counts by status, match type and exclusion reason, and ``overlap``.
    """

    variants: pd.DataFrame
    report: pd.DataFrame

    @property
    def matched(self) -> pd.DataFrame:
        """The rows that will be scored (the columns scoring needs)."""
        cols = [c for c in ("score", "row", "weight", "effect_type", "af", "file", "var_idx",
                            "allele_idx", "effect_is_alt") if c in self.variants.columns]
        return self.variants.loc[(self.variants["match_status"] == "matched").to_numpy(), cols]


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
    i = np.repeat(np.arange(len(lo)), cnt)
    j = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
    return i, j


def _candidates(scoring: pd.DataFrame, target: pd.DataFrame, chr_vocab: pd.Index):
    """Scoring rows × target alleles at the same chromosome and position (a sorted int64 join),
    or with the same ID when the row has no position."""
    s_chr = _codes(scoring["chr"], chr_vocab).astype(np.int64)
    t_chr = _codes(target["chr"], chr_vocab).astype(np.int64)
    pos = scoring["pos"].to_numpy(dtype=np.float64)
    has_pos = ~np.isnan(pos) & (s_chr >= 0)
    s_key = np.where(has_pos, (s_chr << 34) | np.nan_to_num(pos).astype(np.int64), -1)
    t_key = (t_chr << 34) | target["pos"].to_numpy(dtype=np.int64)
    del s_chr, t_chr
    order = np.argsort(t_key, kind="stable")
    tk = t_key[order]
    del t_key
    lo = np.searchsorted(tk, s_key, "left")
    hi = np.searchsorted(tk, s_key, "right")
    del tk, s_key
    hi[~has_pos] = lo[~has_pos]
    si, tj = _ranges(lo, hi)
    del lo, hi
    ti = order[tj]
    del order, tj
    by_id = ~has_pos & scoring["rsid"].notna().to_numpy()
    if by_id.any():  # rows without a position: by ID (rare)
        ids = pd.Series(np.arange(len(target)), index=pd.Index(np.asarray(target["id"], dtype=object)))
        ids = ids[~ids.index.duplicated(keep="first")]
        hit = ids.reindex(np.asarray(scoring["rsid"][by_id], dtype=object))
        ok = hit.notna().to_numpy()
        si = np.concatenate([si, np.flatnonzero(by_id)[ok]])
        ti = np.concatenate([ti, hit.to_numpy()[ok].astype(np.int64)])
    return si, ti


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
        file when scores span several files).
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
    join is a binary search over sorted (chromosome, position) keys, so a million-row scoring
    file is matched in seconds and in a few hundred MB.
    """
    if not isinstance(scoring.index, pd.RangeIndex) or scoring.index.start != 0:
        scoring = scoring.reset_index(drop=True)
    tv = target_variants
    if not isinstance(tv.index, pd.RangeIndex) or tv.index.start != 0:
        tv = tv.reset_index(drop=True)
    file_col = tv["file"].to_numpy() if "file" in tv.columns else np.zeros(len(tv), np.int64)
    chr_vocab = _vocab(scoring["chr"], tv["chr"])
    si, ti = _candidates(scoring, tv, chr_vocab)

    vocab = _vocab(scoring["effect_allele"], scoring["other_allele"], tv["ref"], tv["alt"])
    comp = vocab.get_indexer(pd.Index([v.translate(_COMP) for v in vocab], dtype=object))
    comp_lut = np.append(np.where(comp < 0, -2, comp), -1).astype(np.int32)  # absent → matches nothing
    ea = _codes(scoring["effect_allele"], vocab)[si]
    oa = _codes(scoring["other_allele"], vocab)[si]
    t_ref = _codes(tv["ref"], vocab)
    t_alt = _codes(tv["alt"], vocab)
    ref, alt = t_ref[ti], t_alt[ti]
    eaf, oaf = comp_lut[ea], comp_lut[oa]
    has_oa = oa >= 0
    no_oa = ~has_oa
    # (uses other allele?, scoring-file alleles as given or flipped, effect allele is REF?)
    rules = [(True, False, True), (True, False, False), (True, True, True), (True, True, False),
             (False, False, True), (False, False, False), (False, True, True), (False, True, False)]
    prio = np.full(len(si), -1, np.int8)
    for k in range(len(rules) - 1, -1, -1):  # worst first, so the best type is written last
        with_oa, flip, on_ref = rules[k]
        e, o = (eaf, oaf) if flip else (ea, oa)
        first_ok = e == (ref if on_ref else alt)
        if with_oa:
            hit = has_oa & first_ok & (o == (alt if on_ref else ref))
        else:
            hit = no_oa & first_ok
        prio[hit] = k
    del ea, oa, ref, alt, eaf, oaf, has_oa, no_oa
    ok = prio >= 0
    si, ti, prio = si[ok], ti[ok], prio[ok]
    # best match type per scoring row; ties → first in target order (duplicate_best_match)
    var_idx = tv["var_idx"].to_numpy()
    allele_idx = tv["allele_idx"].to_numpy()
    order = np.lexsort((allele_idx[ti], var_idx[ti], file_col[ti], prio, si))
    si, ti, prio = si[order], ti[order], prio[order]
    first = np.ones(len(si), bool)
    first[1:] = si[1:] != si[:-1]
    si, ti, prio = si[first], ti[first], prio[first]

    # exclusions, in pgsc_calc's order of precedence
    reason = np.zeros(len(si), np.int8)  # index into _EXCLUDE
    score_codes = np.asarray(pd.Categorical(scoring["score"]).codes)[si]
    key = np.lexsort((si, var_idx[ti], file_col[ti], score_codes))
    k_s, k_f, k_v = score_codes[key], file_col[ti][key], var_idx[ti][key]
    same_prev = np.zeros(len(key), bool)
    same_prev[1:] = (k_s[1:] == k_s[:-1]) & (k_f[1:] == k_f[:-1]) & (k_v[1:] == k_v[:-1])
    dup = same_prev.copy()
    if not keep_first_match:  # every member of a duplicated group, not only the later ones
        dup[:-1] |= same_prev[1:]
    dup_rows = np.zeros(len(si), bool)
    dup_rows[key] = dup
    reason[dup_rows] = 1
    ambiguous = comp_lut[t_ref[ti]] == t_alt[ti]
    if not keep_ambiguous:
        reason[ambiguous & (reason == 0)] = 2
    multi = tv["n_alt"].to_numpy()[ti] > 1
    if not keep_multiallelic:
        reason[multi & (reason == 0)] = 3

    n = len(scoring)
    out = scoring.copy(deep=False)
    status = np.zeros(n, np.int8)  # unmatched
    status[si] = np.where(reason == 0, 1, 2)
    out["match_status"] = pd.Categorical.from_codes(status, categories=_STATUS)
    mt = np.full(n, -1, np.int8)
    mt[si] = prio
    out["match_type"] = pd.Categorical.from_codes(mt, categories=list(MATCH_TYPES))
    er = np.zeros(n, np.int8)
    er[si] = reason
    out["exclude_reason"] = pd.Categorical.from_codes(er, categories=list(_EXCLUDE))
    for name, values in (("ambiguous", ambiguous), ("multiallelic", multi),
                         ("effect_is_alt", np.isin(prio, (1, 3, 5, 7)))):
        col = np.zeros(n, bool)
        col[si] = values
        out[name] = col
    for name, values, dtype in (("file", file_col[ti], np.int32), ("var_idx", var_idx[ti], np.int64),
                                ("allele_idx", allele_idx[ti], np.int16)):
        col = np.full(n, -1, dtype)
        col[si] = values
        out[name] = col
    out["target_id"] = _take_ids(tv["id"], si, ti, n)
    for name, codes_t in (("ref", t_ref), ("alt", t_alt)):
        codes = np.full(n, -1, np.int32)
        codes[si] = codes_t[ti]
        out[name] = pd.Categorical.from_codes(codes, categories=vocab)
    return MatchResult(out, _report(out, unscorable))


def _take_ids(ids: pd.Series, si: np.ndarray, ti: np.ndarray, n: int):
    """Target IDs for the matched rows (missing elsewhere), kept as compact Arrow strings."""
    import pyarrow as pa

    idx = np.full(n, -1, np.int64)
    idx[si] = ti
    arr = ids.array
    if isinstance(arr, pd.arrays.ArrowStringArray):
        taken = pa.array(arr).take(pa.array(np.where(idx < 0, 0, idx), mask=idx < 0))
        return pd.arrays.ArrowStringArray(taken.cast(pa.large_string()) if taken.type == pa.large_string() else taken)
    out = np.full(n, None, dtype=object)
    out[si] = np.asarray(ids, dtype=object)[ti]
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

    def count(mask=None) -> np.ndarray:
        x = code if mask is None else code[mask]
        return np.bincount(x[x >= 0], minlength=k)[:k]

    status = v["match_status"].astype(object) if not isinstance(v["match_status"].dtype, pd.CategoricalDtype) \
        else v["match_status"]
    matched = (status == "matched").to_numpy()
    excluded = (status == "excluded").to_numpy()
    n_unsc = np.zeros(k, np.int64)
    if unscorable is not None and len(unscorable):
        vc = unscorable["score"].astype(str).value_counts()
        n_unsc = np.array([int(vc.get(s, 0)) for s in scores])
    rep = pd.DataFrame({"PGS": scores})
    rep["n_variants"] = count() + n_unsc
    rep["matched"] = count(matched)
    rep["excluded"] = count(excluded)
    rep["unmatched"] = count(~matched & ~excluded)
    rep["unscorable"] = n_unsc
    mt = v["match_type"]
    for t in MATCH_TYPES:
        rep[f"match_{t}"] = count(matched & (mt == t).to_numpy())
    er = v["exclude_reason"]
    for r in ("strand_ambiguous", "multiallelic", "duplicate_ID"):
        rep[f"excluded_{r}"] = count((er == r).to_numpy())
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
    for _, r in bad.iterrows():
        v = result.variants[result.variants["score"] == r["PGS"]]
        lines.append(f"{r['PGS']}: {r['matched']} of {r['n_variants']} variants matched "
                     f"(overlap {r['overlap']:.1%} < {min_overlap:.0%}; "
                     f"{r['excluded']} excluded, {r['unmatched']} not found); "
                     + _diagnose(v, chromosomes, target_ids, (score_builds or {}).get(r["PGS"]),
                               target_build))
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
    if chromosomes is not None and len(un):
        if not chromosomes & set(un["chr"].dropna().astype(str)) and not (
                v["match_status"] == "matched").any():
            return (f"likely cause: no shared chromosome names (genotypes: "
                    f"{', '.join(sorted(chromosomes, key=_chr_key)[:5])}; scoring file: "
                    f"{', '.join(sorted(set(un['chr'].dropna().astype(str)), key=_chr_key)[:5])})")
        chrs = set(un["chr"].dropna().astype(str))
        missing = chrs - chromosomes
        if missing and len(un[un["chr"].isin(missing)]) > 0.5 * len(un):
            return ("likely cause: the genotypes lack chromosome(s) "
                    f"{', '.join(sorted(missing, key=_chr_key)[:6])} — give every chromosome's file")
    if target_ids is not None and len(un):
        found = int(un["rsid"].isin(target_ids).sum())
        if found > 0.5 * max(len(un), 1):
            return (f"likely cause: genome build mismatch ({found} unmatched rsIDs are present in "
                    "the genotypes at other positions)")
    return "likely cause: a different genome build or variant set (check chr naming and build)"


def _chr_key(c: str):
    return (0, int(c)) if c.isdigit() else (1, c)
