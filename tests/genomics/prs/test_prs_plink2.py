"""pmed's scores equal plink2 --score on the real pgsc_calc test data (pgen, bed and VCF input).

plink2 prints sums with 6 significant digits, so it is run with one weight-1 column per
matched (score, variant): it then reports each sample's effect-allele dosage for each variant
(after dominant/recessive coding and mean imputation), and the weighted sums are formed in
double precision. The direct plink2 SUM is compared too, within its printed precision.
"""

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import shared_dir
from pmed.genomics.prs import compute_scores
from pmed.genomics.prs.plink import run_plink2_score

PRS = shared_dir() / "data" / "prs"
CINECA = PRS / "cineca" / "cineca_synthetic_subset"
SF = PRS / "scorefiles"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not (PRS / "cineca").exists(), reason=f"{PRS}/cineca absent"),
    pytest.mark.skipif(shutil.which("plink2") is None,
                       reason="plink2 not installed (apt-get install plink2; .ci/run installs it)"),
]

CASES = {
    "single": ["PGS001229_22.txt"],
    "duplicate": ["PGS001229_22.txt", "PGS001229_22_duplicate.txt"],
    "dominant_recessive": ["scorefile_dominant_and_recessive.fixedheader.txt"],
    "multiscore": ["multiscore.txt"],
}


def _compare(target, files, tmp_path, impute="mean"):
    res = compute_scores([target], [SF / f for f in files], impute=impute)
    ours = res.scores.pivot(index="IID", columns="PGS", values="SUM")
    ref = run_plink2_score(target, res.match, tmp_path, per_variant=True,
                           no_mean_imputation=impute == "none")
    ref = ref.loc[ours.index, ours.columns]
    return res, ours, ref


@pytest.mark.parametrize("case", list(CASES))
def test_pgen_sums_equal_plink2(case, tmp_path):
    res, ours, ref = _compare(f"{CINECA}.pgen", CASES[case], tmp_path)
    assert len(ours) == 2504
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-6
    # the scores are not trivial: they vary between samples
    assert (ours.std() > 0.01).all()


@pytest.mark.parametrize("suffix", [".bed", ".vcf.gz"])
@pytest.mark.parametrize("case", ["single", "dominant_recessive"])
def test_bed_and_vcf_sums_equal_plink2(suffix, case, tmp_path):
    _, ours, ref = _compare(f"{CINECA}{suffix}", CASES[case], tmp_path)
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-6


def test_no_mean_imputation_equals_plink2(tmp_path):
    res, ours, ref = _compare(f"{CINECA}.pgen", CASES["single"], tmp_path, impute="none")
    assert np.abs(ours.to_numpy() - ref.to_numpy()).max() < 1e-6
    mean = compute_scores([f"{CINECA}.pgen"], [SF / "PGS001229_22.txt"]).scores["SUM"]
    # two scored variants have 42 missing calls, in 41 samples: only those change
    assert (np.abs(mean.to_numpy() - res.scores["SUM"].to_numpy()) > 1e-9).sum() == 41


def test_matches_like_pgsc_calc_and_direct_plink2_output(tmp_path):
    res = compute_scores([f"{CINECA}.pgen"], [SF / "PGS001229_22.txt"], out=tmp_path / "out")
    rep = res.match.report.iloc[0]
    assert (rep["n_variants"], rep["matched"], rep["excluded_strand_ambiguous"], rep["unmatched"]) == (
        835, 782, 47, 6)
    direct = run_plink2_score(f"{CINECA}.pgen", res.match, tmp_path / "direct")
    scores = pd.read_csv(tmp_path / "out" / "scores.tsv", sep="\t")
    assert list(scores.columns) == ["FID", "IID", "PGS", "SUM", "DENOM", "AVG"]
    s = scores.set_index("IID")
    # plink2's own SUM column agrees to its 6 printed significant digits
    d = (s["SUM"] - direct.loc[s.index, "PGS001229"]).abs() / s["SUM"].abs().clip(lower=1e-3)
    assert d.max() < 5e-6
    assert (s["DENOM"] == 2 * 782).all()
    np.testing.assert_allclose(s["AVG"], s["SUM"] / s["DENOM"])
    report = pd.read_csv(tmp_path / "out" / "match_report.tsv", sep="\t")
    assert report.loc[0, "excluded_strand_ambiguous"] == 47
