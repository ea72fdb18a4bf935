"""Tests of the synthetic cohort generator (pmed.datasets.synthetic)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.datasets.synthetic import (
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PHARMACOGENE_VARIANTS,
    TRAIT_VARIANTS,
    make_synthetic_cohort,
    sample_new_patients,
    synthetic_schema,
    write_synthetic_cohort,
)
from pmed.io.vcf import read_vcf
from pmed.schema import TableSchema

REPO = Path(__file__).resolve().parents[2]


def _shared() -> Path:
    return Path(os.environ.get("PMED_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="module")
def big():
    # Large enough that frequencies and response rates are estimated tightly.
    return make_synthetic_cohort(4000, seed=11)


def _dosage(cohort, vid: str) -> np.ndarray:
    i = cohort.variants.index[cohort.variants["id"] == vid][0]
    g = cohort.genotypes[i]
    d = g.sum(axis=1).astype(float)
    d[(g < 0).any(axis=1)] = np.nan
    return d


# ---------------------------------------------------------------------- shape and content
def test_tables_have_the_documented_layout():
    c = make_synthetic_cohort(300, n_background=50, seed=3)
    assert c.patients.index.name == "patient_id"
    assert list(c.patients.columns) == list(PATIENT_COLUMNS)
    assert c.patients.index[0] == "P0001" and c.patients.index[-1] == "P0300"
    assert c.patients.index.is_unique
    n_var = len(PHARMACOGENE_VARIANTS) + len(TRAIT_VARIANTS) + 50
    assert len(c.variants) == n_var and c.variants["id"].is_unique
    assert {"chrom", "pos", "id", "ref", "alt", "gene", "role", "effect"} <= set(c.variants)
    assert c.variants["role"].value_counts().to_dict() == {
        "background": 50,
        "trait": len(TRAIT_VARIANTS),
        "pharmacogene": len(PHARMACOGENE_VARIANTS),
    }
    assert 18 <= len(TRAIT_VARIANTS) <= 25
    assert c.genotypes.dtype == np.int8 and c.genotypes.shape == (n_var, 300, 2)
    assert set(np.unique(c.genotypes)) <= {-1, 0, 1}
    assert c.truth_table.index.equals(c.patients.index)
    assert c.samples == list(c.patients.index)
    # sorted by chromosome then position, like the VCF
    key = c.variants["chrom"].str.removeprefix("chr").astype(int) * 10**9 + c.variants["pos"]
    assert key.is_monotonic_increasing
    assert (c.variants["pos"] > 0).all()
    assert c.variants["chrom"].str.fullmatch(r"chr([1-9]|1[0-9]|2[0-2])").all()


def test_values_are_plausible_and_categorical_levels_are_right():
    p = make_synthetic_cohort(1000, seed=0).patients
    assert set(p["sex"].dropna()) == {"F", "M"}
    assert set(p["smoking"].dropna()) == {"never", "former", "current"}
    assert set(p["site"]) == {"A", "B", "C"}
    assert set(p["drug"]) == {"clopidogrel", "ticagrelor"}
    for col in ("diabetes", "hypertension", "prior_mi", "response", "cad"):
        assert set(p[col].dropna().astype(int)) == {0, 1}
    assert p["age"].dropna().between(30, 90).all()
    assert p["bmi"].dropna().between(16, 60).all()
    assert p["deprivation_index"].dropna().between(0, 10).all()
    assert (p["pm25_ug_m3"].dropna() > 0).all()
    assert p["ldl_mmol_l"].between(0.5, 9).all()
    assert 0.6 < p["response"].mean() < 0.95
    assert 0.15 < p["cad"].mean() < 0.6
    # the schema accepts the table as written to CSV
    schema = TableSchema.from_dict(synthetic_schema())
    assert set(schema.columns) == set(PATIENT_COLUMNS)


def test_missingness_rates(big):
    p = big.patients
    masked = [c for c in big.truth["missingness"]["clinical_columns"]]
    rate = p[masked].isna().to_numpy().mean()
    assert 0.02 < rate < 0.04
    assert not p[list(OUTCOME_COLUMNS) + ["site", "drug"]].isna().any().any()
    call_rate = (big.genotypes < 0).any(axis=2).mean()
    assert 0.003 < call_rate < 0.007


# ---------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_cohorts():
    a = make_synthetic_cohort(200, n_background=30, seed=5)
    b = make_synthetic_cohort(200, n_background=30, seed=5)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.variants, b.variants)
    pd.testing.assert_frame_equal(a.truth_table, b.truth_table)
    np.testing.assert_array_equal(a.genotypes, b.genotypes)
    assert a.truth == b.truth
    c = make_synthetic_cohort(200, n_background=30, seed=6)
    assert not c.patients.equals(a.patients)


def test_variant_set_does_not_depend_on_cohort_size():
    a = make_synthetic_cohort(50, seed=2)
    b = make_synthetic_cohort(500, seed=2)
    pd.testing.assert_frame_equal(a.variants, b.variants)


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = write_synthetic_cohort(tmp_path / "a", n_patients=150, n_new=3, seed=4)
    b = write_synthetic_cohort(tmp_path / "b", n_patients=150, n_new=3, seed=4)
    assert set(a) == {
        "patients", "new_patients", "schema", "genotypes", "variants", "truth", "truth_table",
        "cad_scorefile",
    }  # fmt: skip
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key
    assert "##fileDate" not in read_text_gz(a["genotypes"])


def test_cad_scorefile_reads_as_a_pgs_catalog_file(tmp_path):
    from pmed.genomics.prs import read_scorefile

    files = write_synthetic_cohort(tmp_path, n_patients=50, n_new=1, seed=0)
    sf = read_scorefile(files["cad_scorefile"])
    assert sf.genome_build == "GRCh38" and sf.scores == ["PGS_SYNTH_CAD"]
    variants = pd.read_csv(files["variants"])
    trait = variants[(variants["role"] == "trait") & (variants["logor_cad"] != 0)]
    assert len(sf.variants) == len(trait)
    # every other row weights the REF allele with the sign reversed
    v = sf.variants.set_index("rsid").loc[trait["id"]]
    on_ref = (v["effect_allele"] == trait.set_index("id")["ref"]).to_numpy()
    assert on_ref.sum() == len(trait) // 2


def read_text_gz(path: Path) -> str:
    import gzip

    with gzip.open(path, "rt") as fh:
        return fh.read()


# ---------------------------------------------------------------------- genetics
def test_allele_frequencies_match_the_declared_ones(big):
    n = big.genotypes.shape[1]
    worst = 0.0
    for i, p in enumerate(big.variants["alt_freq"]):
        g = big.genotypes[i]
        called = g[g >= 0]
        freq = called.mean()
        se = np.sqrt(p * (1 - p) / (2 * n)) + 1e-3
        worst = max(worst, abs(freq - p) / se)
    assert worst < 5.0, f"an allele frequency is {worst:.1f} standard errors off"
    # spot checks of the headline frequencies
    freqs = dict(zip(big.variants["id"], big.variants["alt_freq"], strict=True))
    assert freqs["rs4244285"] == pytest.approx(0.15) and freqs["rs12248560"] == pytest.approx(0.21)
    assert np.nanmean(_dosage(big, "rs4244285")) / 2 == pytest.approx(0.15, abs=0.015)
    assert np.nanmean(_dosage(big, "rs12248560")) / 2 == pytest.approx(0.21, abs=0.015)


def test_hardy_weinberg_heterozygosity(big):
    for vid in ("rs1333049", "rs4244285", "rs9923231"):
        d = _dosage(big, vid)
        d = d[~np.isnan(d)]
        p = d.mean() / 2
        assert (d == 1).mean() == pytest.approx(2 * p * (1 - p), abs=0.03), vid


def test_cyp2c19_star2_and_star17_never_share_a_haplotype(big):
    ids = big.variants["id"].tolist()
    s2 = big.genotypes[ids.index("rs4244285")]
    s17 = big.genotypes[ids.index("rs12248560")]
    assert not ((s2 == 1) & (s17 == 1)).any()


def test_cyp2c19_lof_lowers_response_under_clopidogrel_only(big):
    p = big.patients
    lof = _dosage(big, "rs4244285") + _dosage(big, "rs4986893")
    ok = ~np.isnan(lof)
    carrier = lof > 0
    rates = {}
    for drug in ("clopidogrel", "ticagrelor"):
        on = (p["drug"] == drug).to_numpy() & ok
        rates[drug] = (
            p["response"].to_numpy()[on & ~carrier].mean(),
            p["response"].to_numpy()[on & carrier].mean(),
        )
    non, car = rates["clopidogrel"]
    assert non - car > 0.25, rates
    non_t, car_t = rates["ticagrelor"]
    assert abs(non_t - car_t) < 0.06, rates
    # and the truth says the same: the genotype matters only for clopidogrel
    t = big.truth_table
    assert t.loc[t["cyp2c19_lof_alleles"] == 2, "p_response_clopidogrel"].max() < 0.5
    tica_by_lof = t.groupby("cyp2c19_lof_alleles")["p_response_ticagrelor"].mean()
    assert tica_by_lof.max() - tica_by_lof.min() < 0.05


def test_cad_and_ldl_follow_their_genetic_scores(big):
    p, t = big.patients, big.truth_table
    hi = t["prs_cad"] > t["prs_cad"].quantile(0.8)
    lo = t["prs_cad"] < t["prs_cad"].quantile(0.2)
    assert p.loc[hi, "cad"].mean() - p.loc[lo, "cad"].mean() > 0.15
    apoe = t["apoe_genotype"]
    assert p.loc[apoe == "e4/e4", "ldl_mmol_l"].mean() > p.loc[apoe == "e2/e3", "ldl_mmol_l"].mean()
    r = np.corrcoef(t["ldl_genetic_mmol_l"], p["ldl_mmol_l"])[0, 1]
    assert r > 0.3


def test_time_to_event_outcome_follows_its_weibull_model(big):
    """chd_years/chd_event: censored follow-up with ties, and a Cox fit on the true terms
    recovers the generating log hazard ratios (1 per unit of cad_logit, 0.8 per SD of fitness)."""
    from lifelines import CoxPHFitter

    p, t = big.patients, big.truth_table
    time, event = p["chd_years"].to_numpy(), p["chd_event"].to_numpy()
    assert time.min() >= 0.01 and time.max() < 12
    assert set(np.unique(event)) == {0, 1} and 0.2 < event.mean() < 0.45
    assert len(np.unique(time)) < len(time)  # ties, as recorded to 0.01 years
    # administrative censoring starts at 4 years: before it, censoring is loss to follow-up only
    early = time < 4
    assert event[early].mean() > event[~early].mean()
    df = pd.DataFrame({"cad_logit": t["cad_logit"], "low_fitness_z": t["low_fitness_z"],
                       "T": time, "E": event})
    fit = CoxPHFitter().fit(df, "T", "E")
    assert fit.params_["cad_logit"] == pytest.approx(1.0, abs=0.1)
    assert fit.params_["low_fitness_z"] == pytest.approx(0.8, abs=0.1)
    # the true 5-year risk agrees with the Kaplan–Meier estimate in its top and bottom fifths
    from sksurv.nonparametric import kaplan_meier_estimator

    for q in (t["p_chd_5y"] <= t["p_chd_5y"].quantile(0.2), t["p_chd_5y"] >= t["p_chd_5y"].quantile(0.8)):
        x, s = kaplan_meier_estimator(event[q.to_numpy()].astype(bool), time[q.to_numpy()])
        observed = 1 - s[np.searchsorted(x, 5.0, side="right") - 1]
        assert observed == pytest.approx(t.loc[q, "p_chd_5y"].mean(), abs=0.05)


def test_truth_is_json_serialisable_and_complete(big):
    text = json.dumps(big.truth)
    back = json.loads(text)
    assert back["seed"] == 11 and back["n_patients"] == 4000
    models = back["models"]
    assert set(models) == {"response", "cad", "chd", "ldl_mmol_l"}
    assert models["response"]["coefficients"]["clopidogrel_x_cyp2c19_lof_alleles"] < -1
    assert set(back["causal_variants"]["response"]) == {"rs4244285", "rs4986893", "rs12248560"}
    assert "rs1333049" in back["causal_variants"]["cad"]
    assert "rs7412" in back["causal_variants"]["ldl_mmol_l"]
    t = big.truth_table
    assert set(t["cyp2c19_phenotype"]) <= {"PM", "IM", "NM", "RM", "UM"}
    assert re.fullmatch(r"\*\d+/\*\d+", t["cyp2c19_diplotype"].iloc[0])
    clop = (big.patients["drug"] == "clopidogrel").to_numpy()
    np.testing.assert_allclose(
        t["p_response"].to_numpy()[clop], t["p_response_clopidogrel"].to_numpy()[clop]
    )


# ---------------------------------------------------------------------- files
def test_written_files(tmp_path):
    cohort = make_synthetic_cohort(120, n_background=20, seed=9)
    paths = write_synthetic_cohort(tmp_path / "out", cohort, n_new=4)
    for p in paths.values():
        assert p.exists() and p.parent == tmp_path / "out"
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind

    schema = TableSchema.read(paths["schema"])
    train = schema.validate(pd.read_csv(paths["patients"], dtype=object), source="patients.csv")
    assert len(train) == 120 and train.index[0] == "P0001"
    assert train["response"].dtype == "boolean"
    new_raw = pd.read_csv(paths["new_patients"], dtype=object)
    assert not set(OUTCOME_COLUMNS) & set(new_raw.columns)
    new = schema.validate(new_raw, source="new_patients.csv")
    assert new.index.tolist() == ["P0121", "P0122", "P0123", "P0124"]

    variants, dos = read_vcf(paths["genotypes"])
    assert dos.index.tolist() == [*cohort.patients.index, *new.index]
    assert variants["id"].tolist() == cohort.variants["id"].tolist()
    expected = cohort.genotypes.sum(axis=2).astype(float)
    expected[(cohort.genotypes < 0).any(axis=2)] = np.nan
    np.testing.assert_array_equal(dos.iloc[:120].to_numpy(), expected.T)
    _, new_g, _ = sample_new_patients(cohort, 4)
    assert np.nansum(dos.iloc[120:].to_numpy()) == new_g[new_g > 0].sum()

    ann = pd.read_csv(paths["variants"])
    assert ann["id"].tolist() == cohort.variants["id"].tolist()
    truth = json.loads(paths["truth"].read_text())
    assert truth["n_new"] == 4 and truth["seed"] == 9
    tt = pd.read_csv(paths["truth_table"], index_col="patient_id")
    assert tt["set"].value_counts().to_dict() == {"train": 120, "new": 4}


@pytest.mark.realdata
def test_pharmacogene_positions_match_pharmcat():
    path = _shared() / "data/pgx/pharmcat_v3.1.1/pharmcat_positions.vcf"
    if not path.exists():
        pytest.skip(f"reference file absent: {path} (set PMED_SHARED to the shared/ folder)")
    # Parse independently of pmed.io.vcf, so a reader bug cannot hide a position error.
    sites = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        chrom, pos, vid, ref, alt = line.split("\t")[:5]
        for one in vid.split(";"):
            sites[one] = (chrom, int(pos), ref, alt.split(","))
    for v in PHARMACOGENE_VARIANTS:
        assert v["id"] in sites, v["id"]
        chrom, pos, ref, alts = sites[v["id"]]
        assert (v["chrom"], v["pos"], v["ref"]) == (chrom, pos, ref), v["id"]
        assert v["alt"] in alts, v["id"]
    for gene in ("CYP2C19", "CYP2C9", "VKORC1", "SLCO1B1"):
        assert any(v["gene"] == gene for v in PHARMACOGENE_VARIANTS)
