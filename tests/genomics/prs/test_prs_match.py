"""Matching follows pgsc_calc's rules; property-based checks of swap/flip invariants."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmed.genomics.prs import match_variants, score_targets
from pmed.genomics.prs.match import complement
from pmed.genomics.prs.targets import ArrayTarget

COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}


def scoring(rows):
    df = pd.DataFrame(rows, columns=["chr", "pos", "effect_allele", "other_allele", "weight"])
    df.insert(0, "score", "S")
    df.insert(1, "row", np.arange(len(df)) + 2)
    df["rsid"] = [f"rs{i}" for i in range(len(df))]
    df["effect_type"] = "additive"
    df["af"] = np.nan
    df["pos"] = df["pos"].astype(float)
    return df


def target_variants(rows):
    t = pd.DataFrame(rows, columns=["chr", "pos", "ref", "alt"])
    t["id"] = [f"v{i}" for i in range(len(t))]
    t["var_idx"] = np.arange(len(t))
    t["allele_idx"] = 1
    t["n_alt"] = 1
    return t


def test_match_types_ambiguous_and_unmatched():
    t = target_variants([("1", 10, "A", "G"), ("1", 20, "C", "T"), ("1", 30, "A", "T"),
                         ("1", 40, "G", "C"), ("1", 50, "A", "C"), ("1", 70, "G", "T")])
    s = scoring([("1", 10, "A", "G", 0.1),   # refalt
                 ("1", 20, "T", "C", 0.2),   # altref
                 ("1", 30, "A", "T", 0.3),   # ambiguous → excluded
                 ("1", 40, "C", "G", 0.4),   # ambiguous → excluded
                 ("1", 50, "T", "G", 0.5),   # refalt_flip (A/C on the other strand)
                 ("1", 60, "A", "G", 0.6),   # not in the target
                 ("1", 70, "G", None, 0.7)])  # no other allele: no_oa_ref
    r = match_variants(s, t)
    v = r.variants
    assert v["match_type"].astype(object).fillna("").tolist() == ["refalt", "altref", "refalt", "altref", "refalt_flip", "",
                                        "no_oa_ref"]
    assert v["match_status"].tolist() == ["matched", "matched", "excluded", "excluded", "matched",
                                          "unmatched", "matched"]
    assert v["exclude_reason"].iloc[2] == v["exclude_reason"].iloc[3] == "strand_ambiguous"
    rep = r.report.iloc[0]
    assert (rep["matched"], rep["excluded"], rep["unmatched"], rep["excluded_strand_ambiguous"]) == (4, 2, 1, 2)
    kept = match_variants(s, t, keep_ambiguous=True)
    assert (kept.variants["match_status"] == "matched").sum() == 6


def test_two_rows_on_one_variant_are_duplicates():
    t = target_variants([("1", 10, "A", "G")])
    r = match_variants(scoring([("1", 10, "A", "G", 0.1), ("1", 10, "A", None, 0.7)]), t)
    assert r.variants["exclude_reason"].tolist() == ["duplicate_ID", "duplicate_ID"]


def test_duplicate_ids_and_multiallelic_are_excluded():
    t = target_variants([("1", 10, "A", "G"), ("1", 20, "C", "T"), ("1", 20, "C", "G")])
    t.loc[1:, "n_alt"] = 2  # one site with two ALT alleles
    t.loc[2, "var_idx"] = 1
    t.loc[2, "allele_idx"] = 2
    s = scoring([("1", 10, "A", "G", 0.1), ("1", 10, "A", "G", 0.2),  # same variant twice
                 ("1", 20, "C", "T", 0.3)])
    r = match_variants(s, t)
    assert r.variants["exclude_reason"].tolist() == ["duplicate_ID", "duplicate_ID", "multiallelic"]
    first = match_variants(s, t, keep_first_match=True, keep_multiallelic=True).variants
    assert first["match_status"].tolist() == ["matched", "excluded", "matched"]


def test_duplicates_found_whatever_the_order_of_the_target_table():
    """A site's ALT alleles on non-adjacent rows (a hand-made table) are still one variant."""
    t = target_variants([("1", 20, "C", "T"), ("1", 10, "A", "G"), ("1", 20, "C", "G")])
    t["var_idx"] = [1, 0, 1]
    t["allele_idx"] = [1, 1, 2]
    t["n_alt"] = [2, 1, 2]
    s = scoring([("1", 20, "C", "T", 0.3), ("1", 20, "C", "G", 0.4), ("1", 10, "A", "G", 0.1)])
    r = match_variants(s, t, keep_multiallelic=True)
    assert r.variants["exclude_reason"].tolist() == ["duplicate_ID", "duplicate_ID", ""]
    kept = match_variants(s, t, keep_multiallelic=True, keep_first_match=True).variants
    assert kept["match_status"].tolist() == ["matched", "excluded", "matched"]
    assert kept["allele_idx"].tolist() == [1, 2, 1]


def test_duplicates_are_counted_per_score():
    """The same variant in two scores is no duplicate; twice in one score it is."""
    t = target_variants([("1", 10, "A", "G"), ("1", 20, "C", "T")])
    s = pd.concat([scoring([("1", 10, "A", "G", 0.1), ("1", 20, "C", "T", 0.2)]),
                   scoring([("1", 10, "A", "G", 0.3), ("1", 10, "G", "A", 0.4)]).assign(score="T")],
                  ignore_index=True)
    r = match_variants(s, t)
    assert r.variants["exclude_reason"].tolist() == ["", "", "duplicate_ID", "duplicate_ID"]
    assert r.report.set_index("PGS")["matched"].to_dict() == {"S": 2, "T": 0}


def test_log_names_the_matched_target_variant():
    t = target_variants([("1", 10, "A", "G"), ("1", 20, "C", "T"), ("1", 30, "G", "A")])
    s = scoring([("1", 30, "A", "G", 0.1), ("1", 15, "A", "G", 0.2), ("1", 10, "A", "G", 0.3)])
    r = match_variants(s, t)
    assert "target_id" not in r.variants.columns
    assert r.variants["target_row"].tolist() == [2, -1, 0]
    assert r.log()["target_id"].tolist() == ["v2", None, "v0"]


def test_matching_adds_few_bytes_per_row():
    """Matching a large file must not store strings per row (a million IDs take ~25 MB)."""
    rng = np.random.default_rng(0)
    n = 20_000
    ref = rng.choice(list("ACGT"), n)
    alt = np.array([{"A": "C", "C": "G", "G": "T", "T": "A"}[a] for a in ref])
    t = target_variants(list(zip(["1"] * n, np.arange(n) * 10 + 5, ref, alt, strict=True)))
    s = scoring(list(zip(["1"] * n, np.arange(n) * 10 + 5, alt, ref, rng.normal(size=n), strict=True)))
    r = match_variants(s, t)
    assert (r.variants["match_type"] == "altref").all()
    added = r.variants.drop(columns=s.columns).memory_usage(deep=True, index=False).sum()
    assert added / n <= 24  # 13 columns: int8 codes and flags, int16/int32 indices


alleles = st.sampled_from(list("ACGT"))


@st.composite
def variant_sets(draw):
    n = draw(st.integers(3, 25))
    rows, trows = [], []
    for i in range(n):
        ref = draw(alleles)
        alt = draw(alleles.filter(lambda a, r=ref: a != r))
        trows.append(("1", 100 + i, ref, alt))
        ea_is_ref = draw(st.booleans())
        rows.append(("1", 100 + i, ref if ea_is_ref else alt, alt if ea_is_ref else ref,
                     draw(st.floats(-1, 1, allow_nan=False))))
    return rows, trows


def _scores(rows, trows, G):
    t = ArrayTarget(pd.DataFrame(trows, columns=["chr", "pos", "ref", "alt"]).assign(
        id=[f"v{i}" for i in range(len(trows))]), G, [f"s{j}" for j in range(G.shape[1])])
    r = match_variants(scoring(rows), t.variants)
    return r, score_targets([t], r.matched, ["S"])["SUM"].to_numpy()


@settings(max_examples=40, deadline=None)
@given(variant_sets(), st.integers(0, 2**31 - 1))
def test_strand_flip_and_allele_swap_invariants(vs, seed):
    rows, trows = vs
    G = np.random.default_rng(seed).integers(0, 3, size=(len(trows), 6)).astype(np.int8)
    r0, s0 = _scores(rows, trows, G)
    # 1. the same alleles on the other strand: same matches (as *_flip) and identical scores
    flipped = [(c, p, COMP[e], COMP[o], w) for c, p, e, o, w in rows]
    r1, s1 = _scores(flipped, trows, G)
    assert (r1.variants["match_status"] == r0.variants["match_status"]).all()
    ok = r0.variants["match_status"] == "matched"
    assert r1.variants.loc[ok, "match_type"].str.endswith("_flip").all()
    np.testing.assert_allclose(s1, s0, atol=1e-12)
    # 2. effect and other swapped with the weight negated: refalt ↔ altref, and
    #    SUM changes by the constant −Σ 2w over matched variants
    swapped = [(c, p, o, e, -w) for c, p, e, o, w in rows]
    r2, s2 = _scores(swapped, trows, G)
    m0 = r0.variants.loc[ok, "match_type"].str.replace("refalt", "X").str.replace("altref", "refalt")
    assert (r2.variants.loc[ok, "match_type"] == m0.str.replace("X", "altref")).all()
    const = sum(2 * w for (c, p, e, o, w), k in zip(rows, ok, strict=True) if k)
    np.testing.assert_allclose(s2, s0 - const, atol=1e-9)
    # 3. strand-ambiguous sites never survive the default rules
    amb = np.array([COMP[ref] == alt for _, _, ref, alt in trows])
    assert not ((r0.variants["match_status"] == "matched").to_numpy() & amb).any()
    # 4. row order of the scoring file does not change the scores
    r3, s3 = _scores(rows[::-1], trows, G)
    np.testing.assert_allclose(s3, s0, atol=1e-12)


def test_complement():
    assert complement(pd.Series(["A", "CG", None])).tolist()[:2] == ["T", "GC"]


@pytest.mark.parametrize("impute", ["mean", "none"])
def test_missing_genotypes_mean_imputed_like_plink(impute):
    trows = [("1", 10, "A", "G"), ("1", 20, "C", "T")]
    G = np.array([[0, 1, 2, -9], [2, 2, 0, -9]], dtype=np.int8)  # last sample missing both
    rows = [("1", 10, "G", "A", 1.0), ("1", 20, "C", "T", 0.5)]  # effect ALT, then REF
    r, s = _scores(rows, trows, G)
    if impute == "mean":
        # ALT mean dosages 1.0 and 4/3: imputed 1.0·1.0 + 0.5·(2 − 4/3)
        assert s[3] == pytest.approx(1.0 + 0.5 * (2 - 4 / 3))
    t = ArrayTarget(pd.DataFrame(trows, columns=["chr", "pos", "ref", "alt"]).assign(id=["a", "b"]),
                    G, list("wxyz"))
    out = score_targets([t], r.matched, ["S"], impute=impute)
    expected_last = 1.0 + 0.5 * (2 - 4 / 3) if impute == "mean" else 0.0
    assert out["SUM"].tolist() == pytest.approx([0 + 0.5 * 0, 1 + 0, 2 + 0.5 * 2, expected_last])
    assert out["DENOM"].tolist() == [4.0] * 4


def test_imputation_from_the_scoring_files_allele_frequency():
    trows = [("1", 10, "A", "G"), ("1", 20, "C", "T")]
    G = np.array([[0, 1, 2, -9], [2, 2, 0, 1]], dtype=np.int8)
    s = scoring([("1", 10, "G", "A", 1.0), ("1", 20, "C", "T", 0.5)])
    s["af"] = [0.25, 0.9]
    t = ArrayTarget(pd.DataFrame(trows, columns=["chr", "pos", "ref", "alt"]).assign(id=["a", "b"]),
                    G, list("wxyz"))
    r = match_variants(s, t.variants)
    out = score_targets([t], r.matched, ["S"], impute="file")
    # the missing call counts 2 × 0.25 effect alleles; the complete variant as observed
    assert out["SUM"].iloc[3] == pytest.approx(1.0 * 2 * 0.25 + 0.5 * (2 - 1))
    # dominant coding with a file frequency: the frequency p itself, as plink2 imputes
    # dominant/recessive calls (checked against plink2 in test_prs_missing.py)
    s2 = s.assign(effect_type=pd.Categorical(["dominant", "additive"]))
    r2 = match_variants(s2, t.variants)
    out2 = score_targets([t], r2.matched, ["S"], impute="file")
    assert out2["SUM"].iloc[3] == pytest.approx(1.0 * 0.25 + 0.5 * 1)
    assert out2["SUM"].iloc[2] == pytest.approx(1.0 * 1 + 0.5 * 2)  # dosage 2 → dominant 1


def test_alleles_that_fit_no_orientation_are_counted_apart_from_not_found():
    """A target variant at the row's position whose REF/ALT fit neither the effect/other allele
    nor their strand flip: unmatched, but flagged, logged with the target's alleles, counted."""
    t = target_variants([("1", 10, "A", "G"), ("1", 20, "C", "T"), ("1", 30, "A", "C")])
    s = scoring([("1", 10, "A", "G", 0.1),    # refalt
                 ("1", 20, "A", "G", 0.2),    # C/T there: A/G flipped is T/C → altref_flip
                 ("1", 30, "G", "T", 0.3),    # A/C there: G/T is its strand flip → matched
                 ("1", 30, "A", "G", 0.4),    # A/C there: A/G fits no orientation
                 ("1", 40, "A", "G", 0.5)])   # nothing there: not found
    r = match_variants(s, t)
    v = r.variants
    assert v["match_status"].tolist() == ["matched", "matched", "matched", "unmatched", "unmatched"]
    assert v["allele_mismatch"].tolist() == [False, False, False, True, False]
    row = v.iloc[3]
    assert (row["ref"], row["alt"], row["target_row"]) == ("A", "C", 2)
    assert r.log(["rsid", "target_id"]).iloc[3]["target_id"] == "v2"
    rep = r.report.iloc[0]
    assert (rep["unmatched"], rep["unmatched_allele_mismatch"]) == (2, 1)


def test_many_allele_mismatches_warn_few_do_not():
    from pmed.genomics.prs.match import warn_allele_mismatches
    from pmed.genomics.prs.scorefile import PRSWarning

    rep = pd.DataFrame({"PGS": ["big", "ok"], "n_variants": [1000, 1000],
                        "unmatched_allele_mismatch": [50, 5]})
    with pytest.warns(PRSWarning, match=r"big: 50 of 1000 variants \(5\.0%\)") as rec:
        warn_allele_mismatches(rep)
    assert len(rec) == 1  # 'ok' (0.5 %) stays quiet


def test_mismatches_explain_a_low_overlap():
    from pmed.errors import InputError
    from pmed.genomics.prs.match import check_overlap

    t = target_variants([("1", p, "A", "C") for p in (10, 20, 30, 40)])
    s = scoring([("1", p, "A", "G", 0.1) for p in (10, 20, 30)] + [("1", 40, "A", "C", 0.1)])
    r = match_variants(s, t)
    with pytest.raises(InputError, match=r"likely cause: 3 variants are at their positions in the "
                                         r"genotypes with other alleles"):
        check_overlap(r, min_overlap=0.75, targets_desc="t")
