"""Scores from genotypes as real cohorts hold them: missing calls and imputed dosages.

Known answers come from an independent float64 computation on the values pgenlib itself decodes
(mean imputation from the called samples, plink2's default), and from plink2 ``--score`` run with
one weight-1 column per variant (so its 6 printed digits limit each dosage, not each sum).
"""

import shutil

import numpy as np
import pandas as pd
import pytest

from pmed.genomics.prs import compute_scores, open_target
from pmed.genomics.prs.plink import run_plink2_score
from pmed.genomics.prs.score import (
    DENSE_MISSING,
    Workspace,
    _at_missing,
    _prepare,
    auto_block_size,
    score_targets,
)

pgenlib = pytest.importorskip("pgenlib")

N_SAMPLES, N_VARIANTS = 90, 400


def _write_pgen(stem, geno, *, dosages: bool):
    """A plink2 fileset from ALT dosages (variants × samples, NaN missing)."""
    n_v, n = geno.shape
    rng = np.random.default_rng(1)
    ref = rng.choice(list("AC"), n_v)
    alt = np.where(ref == "A", "G", "T")
    pvar = pd.DataFrame({"#CHROM": 1, "POS": 1000 + 37 * np.arange(n_v),
                         "ID": [f"rs{i}" for i in range(n_v)], "REF": ref, "ALT": alt})
    pvar.to_csv(f"{stem}.pvar", sep="\t", index=False)
    pd.DataFrame({"#IID": [f"ß{i}" for i in range(n)]}).to_csv(f"{stem}.psam", sep="\t", index=False)
    w = pgenlib.PgenWriter(f"{stem}.pgen".encode(), n, n_v, False, dosage_present=dosages)
    if dosages:
        w.append_dosages_batch(np.ascontiguousarray(np.nan_to_num(geno, nan=-9), dtype=np.float32))
    else:
        w.append_biallelic_batch(np.ascontiguousarray(np.nan_to_num(geno, nan=-9), dtype=np.int8))
    w.close()
    return pvar


def _scorefile(path, pvar, rng, *, nonlinear: bool = False):
    """A PGS Catalog file: effect allele ALT or REF at random, weights of either sign."""
    n_v = len(pvar)
    on_alt = rng.random(n_v) < 0.6
    rows = pd.DataFrame({
        "chr_name": 1, "chr_position": pvar["POS"],
        "effect_allele": np.where(on_alt, pvar["ALT"], pvar["REF"]),
        "other_allele": np.where(on_alt, pvar["REF"], pvar["ALT"]),
        "effect_weight": np.round(rng.normal(0, 0.05, n_v), 6),
    })
    if nonlinear:
        kind = rng.choice(3, n_v, p=[0.6, 0.2, 0.2])
        rows["is_dominant"] = kind == 1
        rows["is_recessive"] = kind == 2
    head = "###PGS CATALOG SCORING FILE\n#format_version=2.0\n#pgs_id=PGS_MISS\n#genome_build=GRCh38\n"
    path.write_text(head + rows.to_csv(sep="\t", index=False))
    return rows, on_alt


def _reference(stem, rows, on_alt, *, dosages: bool, impute: str = "mean"):
    """Σ w × effect dosage in float64, from pgenlib's own decoding of the file."""
    r = pgenlib.PgenReader(f"{stem}.pgen".encode())
    n = r.get_raw_sample_ct()
    if dosages:
        G = np.empty((len(rows), n), np.float64)
        r.read_dosages_range(0, len(rows), G)
    else:
        g8 = np.empty((len(rows), n), np.int8)
        r.read_range(0, len(rows), g8)
        G = g8.astype(np.float64)
    r.close()
    miss = G < 0
    G[miss] = np.nan
    E = np.where(on_alt[:, None], G, 2 - G)
    none = pd.Series(False, index=rows.index)
    kind = np.where(rows.get("is_dominant", none), 1, np.where(rows.get("is_recessive", none), 2, 0))
    # a missing call counts 2p (additive) or p (dominant/recessive), p the effect allele's
    # frequency among called samples: plink2's rule
    p = np.nanmean(E, axis=1, keepdims=True) / 2 if impute == "mean" else np.zeros((len(E), 1))
    fill = np.where(kind[:, None] == 0, 2 * p, p)
    E = np.where(kind[:, None] == 1, np.minimum(E, 1), np.where(kind[:, None] == 2, np.maximum(E - 1, 0), E))
    E = np.where(np.isnan(E), fill, E)
    return rows["effect_weight"].to_numpy() @ E, miss


def _genotypes(rng, *, missing: float, fuzzy: float):
    p = rng.uniform(0.05, 0.6, N_VARIANTS)[:, None]
    g = rng.binomial(2, p, (N_VARIANTS, N_SAMPLES)).astype(np.float64)
    if fuzzy:  # imputed: shrunk towards 2p by the imputation quality, with noise
        r2 = rng.uniform(0.3, 1.0, (N_VARIANTS, 1))
        noisy = np.clip(r2 * g + (1 - r2) * 2 * p + rng.normal(0, 0.05, g.shape), 0, 2)
        g = np.where(rng.random(g.shape) < fuzzy, noisy, g)
    g[rng.random(g.shape) < missing] = np.nan
    return g


@pytest.mark.parametrize("missing", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("dosages", [False, True])
@pytest.mark.parametrize("nonlinear", [False, True])
def test_missing_calls_and_dosages_equal_an_independent_float64_sum(tmp_path, missing, dosages, nonlinear):
    rng = np.random.default_rng(int(missing * 100) + 7 * dosages + 3 * nonlinear)
    stem = tmp_path / "cohort ä"
    pvar = _write_pgen(stem, _genotypes(rng, missing=missing, fuzzy=0.5 if dosages else 0), dosages=dosages)
    rows, on_alt = _scorefile(tmp_path / "score.txt", pvar, rng, nonlinear=nonlinear)
    expected, miss = _reference(stem, rows, on_alt, dosages=dosages)
    assert miss.mean() == pytest.approx(missing, abs=0.02)  # the file holds what was asked
    target = open_target(f"{stem}.pgen")
    assert target.dtype == (np.float64 if dosages else np.int8)  # dosages are not read as hard calls
    res = compute_scores([target], [tmp_path / "score.txt"])
    got = res.scores.set_index("IID")["SUM"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert np.ptp(got) > 0.1


@pytest.mark.parametrize("impute", ["mean", "none"])
def test_block_boundaries_threads_and_sample_order_do_not_change_the_sums(tmp_path, impute):
    """Missing calls are handled by their positions inside each block: blocks of 1, 7 and 64
    variants, one or two threads, give the same sums (and the known answer)."""
    rng = np.random.default_rng(11)
    stem = tmp_path / "c"
    pvar = _write_pgen(stem, _genotypes(rng, missing=0.05, fuzzy=0), dosages=False)
    rows, on_alt = _scorefile(tmp_path / "s.txt", pvar, rng, nonlinear=True)
    expected, _ = _reference(stem, rows, on_alt, dosages=False, impute=impute)
    t = open_target(f"{stem}.pgen")
    matched = compute_scores([t], [tmp_path / "s.txt"]).match.matched
    for block, n_jobs in [(1, 1), (7, 2), (64, 1), (None, 2)]:
        long = score_targets([t], matched, ["PGS_MISS"], impute=impute, block_size=block, n_jobs=n_jobs)
        np.testing.assert_allclose(long["SUM"].to_numpy(), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("share", [0.005, 0.2])  # kept as positions, and as a dense matrix
def test_prepared_block_marks_exactly_the_missing_calls(share):
    rng = np.random.default_rng(3)
    B = rng.integers(0, 3, (40, 501)).astype(np.int8)
    B[rng.random(B.shape) < share] = -9
    block = _prepare(B.copy(), Workspace())
    assert (block.M is not None) == (share > DENSE_MISSING)
    assert np.array_equal(block.G, np.where(B < 0, 0, B))
    assert np.array_equal(block.missing_per_row(), (B < 0).sum(axis=1))
    if block.M is None:
        assert np.array_equal(block.missing_rows * 501 + block.missing_cols, np.flatnonzero(B < 0))
    else:
        assert np.array_equal(block.M, (B < 0).astype(np.float32))
    for r in range(40):
        assert np.array_equal(block.missing_in_row(r), B[r] < 0)
    C = rng.normal(size=(40, 2))
    # exact to 36 bits of each column's largest |C| (the dense path's float32 split products)
    np.testing.assert_allclose(_at_missing(block, C), C.T @ (B < 0), rtol=0, atol=1e-9)
    D = np.where(B < 0, np.nan, B / 2.0)  # float dosages: NaN or negative are both missing
    D[0, 0] = -9.0
    want = np.isnan(D) | (D < 0)
    block = _prepare(D, Workspace())  # a float64 block is a reader's buffer: used in place
    assert block.G is D and not np.isnan(D).any() and (D >= 0).all()
    assert np.array_equal(block.missing_per_row(), want.sum(axis=1))


def test_blocks_stay_near_two_and_a_half_million_genotypes():
    assert auto_block_size(10_000) == 250
    assert auto_block_size(1_000) == 2_500  # few samples: long blocks, little per-block Python
    assert auto_block_size(10) == 4_096
    assert auto_block_size(10_000_000) == 64


@pytest.mark.realdata
@pytest.mark.skipif(shutil.which("plink2") is None, reason="plink2 not installed (apt-get install plink2)")
@pytest.mark.parametrize("nonlinear", [False, True])
@pytest.mark.parametrize("dosages", [False, True])
def test_missing_calls_and_dosages_equal_plink2(tmp_path, dosages, nonlinear):
    """plink2 reports each variant's imputed effect dosage (6 digits): the weighted sums agree
    within what that printing allows (Σ|w| × 5e-6, about 1e-4 here) and far inside it."""
    rng = np.random.default_rng(5 + dosages)
    stem = tmp_path / "imputed"
    pvar = _write_pgen(stem, _genotypes(rng, missing=0.05, fuzzy=0.5 if dosages else 0), dosages=dosages)
    rows, _ = _scorefile(tmp_path / "s.txt", pvar, rng, nonlinear=nonlinear)
    res = compute_scores([f"{stem}.pgen"], [tmp_path / "s.txt"])
    ours = res.scores.set_index("IID")["SUM"]
    ref = run_plink2_score(f"{stem}.pgen", res.match, tmp_path / "plink2", per_variant=True)
    ref = ref.loc[ours.index.astype(str), "PGS_MISS"]
    bound = np.abs(rows["effect_weight"]).sum() * 5e-6
    diff = np.abs(ours.to_numpy() - ref.to_numpy())
    assert diff.max() <= bound
    assert diff.max() < 2e-5
