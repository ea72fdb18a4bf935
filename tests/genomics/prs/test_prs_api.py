"""compute_scores end to end on synthetic files with known answers; errors; Dask; ancestry; CLI."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prs_fixtures import balding_nichols, random_snvs, write_pgs_catalog, write_target

from conftest import shared_dir
from pmed.errors import InputError
from pmed.genomics.prs import compute_scores, scores_to_block


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("prs")
    rng = np.random.default_rng(1)
    v = random_snvs(300, rng)
    geno, _ = balding_nichols({"A": 80}, 300, rng)
    geno[rng.random(geno.shape[:2]) < 0.01] = -1  # 1% missing calls
    vcf = write_target(d / "cohort.vcf.gz", v, geno, [f"p{i}" for i in range(80)])
    sc = v.iloc[:200].copy()
    ea_alt = rng.random(200) < 0.5
    rows = pd.DataFrame({"rsID": sc["id"], "chr_name": "chr" + sc["chrom"], "chr_position": sc["pos"],
                         "effect_allele": np.where(ea_alt, sc["alt"], sc["ref"]),
                         "other_allele": np.where(ea_alt, sc["ref"], sc["alt"]),
                         "effect_weight": rng.normal(0, 0.1, 200).round(6)})
    sf = write_pgs_catalog(d / "PGS_TEST.txt", rows)
    return d, vcf, sf, geno, rows, ea_alt


def test_known_answer_from_vcf(cohort_files, tmp_path):
    d, vcf, sf, geno, rows, ea_alt = cohort_files
    res = compute_scores([vcf], [sf], out=tmp_path)  # 'chr1' in the scoring file, '1' in the VCF
    assert res.match.report.loc[0, "matched"] == 200
    alt = geno[:200].sum(axis=2).astype(float)
    alt[(geno[:200] < 0).any(axis=2)] = np.nan
    alt = np.where(np.isnan(alt), np.nanmean(alt, axis=1, keepdims=True), alt)
    eff = np.where(ea_alt[:, None], alt, 2 - alt)
    expected = rows["effect_weight"].to_numpy() @ eff
    np.testing.assert_allclose(res.scores["SUM"], expected, atol=1e-9)
    assert (tmp_path / "scores.tsv").exists() and (tmp_path / "match_report.tsv").exists()
    block = scores_to_block(res.scores)
    assert list(block.columns) == ["prs_PGS_TEST"] and block.index.name == "patient_id"


def test_wrong_build_is_refused(cohort_files, tmp_path):
    d, vcf, _, _, rows, _ = cohort_files
    sf37 = write_pgs_catalog(tmp_path / "b37.txt", rows, build="GRCh37")
    with pytest.raises(InputError) as e:
        compute_scores([vcf], [sf37])
    assert "genome build mismatch" in str(e.value) and "GRCh37" in str(e.value) and "GRCh38" in str(e.value)


def test_zero_overlap_names_score_and_cause(cohort_files, tmp_path):
    d, vcf, _, _, rows, _ = cohort_files
    moved = rows.assign(chr_position=rows["chr_position"] + 7)  # another build's coordinates
    sf = write_pgs_catalog(tmp_path / "moved.txt", moved, pgs_id="PGS_MOVED", build=None)
    with pytest.raises(InputError) as e:
        compute_scores([vcf], [sf])
    msg = str(e.value)
    assert "PGS_MOVED: 0 of 200" in msg and "overlap 0.0%" in msg
    assert "genome build mismatch" in msg and "rsIDs" in msg
    other_chr = rows.assign(chr_name="7")
    sf2 = write_pgs_catalog(tmp_path / "chr7.txt", other_chr, pgs_id="PGS_CHR7", build=None)
    with pytest.raises(InputError, match="chromosome"):
        compute_scores([vcf], [sf2])


def test_truncated_vcf_is_a_clear_error(cohort_files, tmp_path):
    d, vcf, sf, *_ = cohort_files
    raw = gzip.decompress(vcf.read_bytes())
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    with pytest.raises(InputError) as e:
        compute_scores([cut], [sf])
    assert "truncated" in str(e.value) and "cut.vcf.gz" in str(e.value)


def test_truncated_bed_is_a_clear_error(tmp_path):
    import shutil

    src = shared_dir() / "data" / "prs" / "cineca" / "cineca_synthetic_subset"
    if not Path(f"{src}.bed").exists():
        pytest.skip(f"{src}.bed absent")
    for ext in (".bim", ".fam"):
        shutil.copy(f"{src}{ext}", tmp_path / f"cut{ext}")
    (tmp_path / "cut.bed").write_bytes(Path(f"{src}.bed").read_bytes()[:100_000])
    sf = shared_dir() / "data" / "prs" / "scorefiles" / "PGS001229_22.txt"
    with pytest.raises(InputError) as e:
        compute_scores([tmp_path / "cut.bed"], [sf])
    msg = str(e.value)
    assert "cut.bed" in msg and "file size" in msg and ".bim" in msg


def test_dosage_field_and_split_chromosome_files(cohort_files, tmp_path):
    from pmed.io import write_vcf

    d, vcf, sf, geno, rows, ea_alt = cohort_files
    rng = np.random.default_rng(3)
    v = random_snvs(120, rng)
    g, _ = balding_nichols({"A": 30}, 120, rng)
    one = compute_scores([write_vcf(tmp_path / "all.vcf.gz", v, g, [f"s{i}" for i in range(30)],
                                    file_date=None)],
                         [write_pgs_catalog(tmp_path / "s.txt", pd.DataFrame({
                             "rsID": v["id"], "chr_name": v["chrom"], "chr_position": v["pos"],
                             "effect_allele": v["alt"], "other_allele": v["ref"],
                             "effect_weight": np.linspace(-1, 1, 120)}))])
    # the same variants split over two "chromosome" files: same scores
    write_vcf(tmp_path / "part1.vcf.gz", v.iloc[:60], g[:60], [f"s{i}" for i in range(30)], file_date=None)
    write_vcf(tmp_path / "part2.vcf.gz", v.iloc[60:].reset_index(drop=True), g[60:],
              [f"s{i}" for i in range(30)], file_date=None)
    two = compute_scores([str(tmp_path / "part*.vcf.gz")], [tmp_path / "s.txt"])
    np.testing.assert_allclose(two.scores["SUM"], one.scores["SUM"], atol=1e-12)


def test_dask_local_cluster_gives_identical_scores(cohort_files):
    pytest.importorskip("dask.distributed")
    from pmed.genomics.prs.distributed import score_targets_dask
    from pmed.genomics.prs.targets import open_targets

    d, vcf, sf, *_ = cohort_files
    local = compute_scores([vcf], [sf], block_size=64)
    targets = open_targets([vcf])
    out = score_targets_dask(targets, local.match.matched, ["PGS_TEST"], scheduler="local",
                             n_workers=2, block_size=64, sample_chunk=30)
    np.testing.assert_allclose(out["SUM"], local.scores["SUM"], atol=1e-12)
    assert out["DENOM"].tolist() == local.scores["DENOM"].tolist()


def test_ancestry_against_a_reference_panel(tmp_path):
    from pmed.io import write_vcf

    rng = np.random.default_rng(7)
    n_var = 1500
    v = random_snvs(n_var, rng)
    pops = {"AFR": 120, "EUR": 120, "EAS": 120}
    geno, labels = balding_nichols({k: n + 20 for k, n in pops.items()}, n_var, rng, fst=0.1)
    ref_idx = np.concatenate([np.arange(i * 140, i * 140 + 120) for i in range(3)])
    tgt_idx = np.setdiff1d(np.arange(420), ref_idx)
    ids = np.array([f"s{i}" for i in range(420)])
    write_vcf(tmp_path / "ref.vcf.gz", v, geno[:, ref_idx], ids[ref_idx], file_date=None)
    write_vcf(tmp_path / "tgt.vcf.gz", v, geno[:, tgt_idx], ids[tgt_idx], file_date=None)
    pd.DataFrame({"IID": ids[ref_idx], "SuperPop": labels[ref_idx]}).to_csv(
        tmp_path / "pops.tsv", sep="\t", index=False)
    sc = v.iloc[::5]
    sf = write_pgs_catalog(tmp_path / "s.txt", pd.DataFrame({
        "rsID": sc["id"], "chr_name": sc["chrom"], "chr_position": sc["pos"],
        "effect_allele": sc["alt"], "other_allele": sc["ref"],
        "effect_weight": rng.normal(0, 0.2, len(sc))}))
    res = compute_scores([tmp_path / "tgt.vcf.gz"], [sf], reference=tmp_path / "ref.vcf.gz",
                         reference_populations=tmp_path / "pops.tsv", out=tmp_path / "out")
    anc = res.ancestry
    assert (anc.assignment.loc[ids[tgt_idx], "MostSimilarPop"].to_numpy() == labels[tgt_idx]).all()
    adj = pd.read_csv(tmp_path / "out" / "scores_adjusted.tsv", sep="\t")
    assert {"percentile_MostSimilarPop", "Z_MostSimilarPop", "Z_norm1", "Z_norm2"} <= set(adj.columns)
    assert len(adj) == len(tgt_idx)
    # raw sums differ by population (drifted frequencies); Z within the most similar one do not
    raw = adj.groupby("MostSimilarPop")["SUM"].mean()
    z = adj.groupby("MostSimilarPop")["Z_MostSimilarPop"].mean()
    assert raw.max() - raw.min() > 3 * adj["SUM"].std() / np.sqrt(20) and z.abs().max() < 0.8
    assert (tmp_path / "out" / "plots" / "ancestry_pca.png").exists()


def test_cli_prs_score(cohort_files, tmp_path):
    from pmed.cli import main

    d, vcf, sf, *_ = cohort_files
    assert main(["prs", "score", "-t", str(vcf), "-s", str(sf), "-o", str(tmp_path / "o")]) == 0
    s = pd.read_csv(tmp_path / "o" / "scores.tsv", sep="\t")
    assert list(s.columns) == ["IID", "PGS", "SUM", "DENOM", "AVG"] and len(s) == 80
    assert main(["prs", "score", "-t", str(vcf), "-s", str(shared_dir() / "nope.txt"),
                 "-o", str(tmp_path / "o2")]) == 2


def test_scores_become_a_study_block(cohort_files, tmp_path):
    from pmed.study.run import read_block

    d, vcf, sf, *_ = cohort_files
    compute_scores([vcf], [sf], out=tmp_path)
    block, prov = read_block(tmp_path / "scores.tsv")
    assert list(block.columns) == ["prs_PGS_TEST"] and len(block) == 80
    assert prov["reader"] == "pmed.genomics.prs.scores_to_block" and prov["scores"] == ["PGS_TEST"]


def test_run_prs_result_block_summary_and_folder(cohort_files, tmp_path):
    import json

    from pmed.cohort import Block
    from pmed.genomics.prs import read_block, run_prs
    from pmed.result import file_sha256

    d, vcf, sf, *_ = cohort_files
    seen = []

    class Recorder:
        def start(self, total, description=""):
            seen.append((description, total))

        def advance(self, description=None, n=1):
            seen.append(n)

    res = run_prs(vcf, sf, progress=Recorder())
    assert [s[0] for s in seen if isinstance(s, tuple)] == [
        "reading inputs", "matching variants", "scoring variants"]
    assert sum(n for n in seen if isinstance(n, int)) == 2 + 1 + 200
    block = res.to_block()
    assert isinstance(block, Block) and list(block.data.columns) == ["prs_PGS_TEST"]
    assert block.provenance["domain"] == "prs" and block.provenance["value"] == "SUM"
    assert res.to_block(value="AVG").data.iloc[0, 0] == pytest.approx(
        block.data.iloc[0, 0] / (2 * 200))
    s = res.summary()
    assert s["n_samples"] == 80 and s["scores"]["PGS_TEST"]["matched"] == 200
    files = res.write(tmp_path / "out")
    prov = json.loads(files["provenance"].read_text())
    hashed = {e["role"]: e["sha256"] for e in prov["inputs"]}
    assert hashed["scorefiles"] == file_sha256(sf) and hashed["targets"] == file_sha256(vcf)
    assert prov["options"]["n_jobs"] == 1 and prov["scores"] == ["PGS_TEST"]
    # the folder, its scores.tsv: the same block; any other file of it: not a PRS block
    for p in (tmp_path / "out", tmp_path / "out" / "scores.tsv"):
        back = read_block(p)
        pd.testing.assert_frame_equal(back.data, block.data, check_exact=False, atol=1e-9)
    assert read_block(tmp_path / "out" / "match_report.tsv") is None


def test_options_are_checked_first_and_old_names_still_work(cohort_files, recwarn):
    from pmed.errors import OptionError, PmedWarning
    from pmed.genomics.prs import run_prs

    d, vcf, sf, *_ = cohort_files
    for bad in ({"impute": "median"}, {"min_overlap": 1.5}, {"dosage_field": "GP"},
                {"n_jobs": 0}, {"block_size": -3}):
        with pytest.raises(OptionError):
            run_prs(vcf, sf, **bad)
    done = []
    res = compute_scores([vcf], [sf], threads=2, progress=lambda a, b: done.append((a, b)))
    assert done[-1] == (200, 200) and res.provenance["options"]["n_jobs"] == 2
    assert any(issubclass(w.category, PmedWarning) and "n_jobs" in str(w.message) for w in recwarn)


def test_one_iid_twice_is_a_clear_error():
    scores = pd.DataFrame({"FID": ["a", "b"], "IID": ["x", "x"], "PGS": ["S", "S"],
                           "SUM": [1.0, 2.0]})
    with pytest.raises(InputError, match="twice"):
        scores_to_block(scores)


def _array_target(build, name="<array>"):
    from pmed.genomics.prs.targets import ArrayTarget

    v = pd.DataFrame({"chr": ["1", "1"], "pos": [10, 20], "id": ["a", "b"], "ref": ["A", "C"],
                      "alt": ["G", "T"]})
    return ArrayTarget(v, np.array([[0, 1, 2], [2, 1, 0]], np.int8), ["s1", "s2", "s3"],
                       name=name, genome_build=build)


def _small_scorefile(path, build):
    write_pgs_catalog(path, pd.DataFrame({
        "rsID": ["a", "b"], "chr_name": ["1", "1"], "chr_position": [10, 20],
        "effect_allele": ["G", "T"], "other_allele": ["A", "C"], "effect_weight": [1.0, 10.0]}),
        pgs_id="PGS_S", build=build)
    return path


def test_build_check_is_recorded_ok_or_not_possible(tmp_path):
    from pmed.genomics.prs import run_prs
    from pmed.genomics.prs.scorefile import PRSWarning

    sf = _small_scorefile(tmp_path / "s.txt", "GRCh38")
    ok = run_prs([_array_target("GRCh38")], sf)
    assert ok.provenance["build_check"] == "ok" and ok.match.report["build_check"].tolist() == ["ok"]
    assert ok.scores["SUM"].tolist() == [20.0, 11.0, 2.0]
    with pytest.warns(PRSWarning, match="genome build of the genotypes unknown: cannot check the "
                                        "scoring file's build GRCh38"):
        unknown = run_prs([_array_target(None)], sf)
    assert unknown.provenance["build_check"] == "not possible"
    assert unknown.match.report["build_check"].tolist() == ["not possible"]
    assert unknown.scores["SUM"].tolist() == ok.scores["SUM"].tolist()
    given = run_prs([_array_target(None)], sf, target_build="hg38")
    assert given.provenance["build_check"] == "ok" and given.provenance["genome_build"] == "GRCh38"
    with pytest.warns(PRSWarning, match="genome build of the scoring file unknown"):
        nr = run_prs([_array_target("GRCh38")], _small_scorefile(tmp_path / "nr.txt", None))
    assert nr.provenance["build_check"] == "not possible"


def test_contradictory_genotype_builds_are_refused(tmp_path):
    from pmed.genomics.prs import run_prs

    sf = _small_scorefile(tmp_path / "s.txt", "GRCh38")
    with pytest.raises(InputError, match=r"--build GRCh37\) is not the build the genotype file "
                                         r"declares \(GRCh38\)"):
        run_prs([_array_target("GRCh38")], sf, target_build="GRCh37")
    with pytest.raises(InputError, match=r"declare different genome builds \(GRCh38 and GRCh37\)"):
        run_prs([_array_target("GRCh38", "a"), _array_target("GRCh37", "b")], sf)


@pytest.mark.parametrize("bad", [{"target_build": "hg99"}, {"seed": -1}, {"seed": 2**32},
                                 {"scheduler": "x y"}, {"keep_multiallelic": 1},
                                 {"block_size": 0}, {"block_size": 1.5}])
def test_more_options_are_checked_before_any_file_is_read(tmp_path, bad):
    from pmed.errors import OptionError
    from pmed.genomics.prs import run_prs

    with pytest.raises(OptionError):
        run_prs(tmp_path / "missing.vcf", tmp_path / "missing.txt", **bad)


def test_out_folder_of_something_else_is_refused_before_reading(tmp_path):
    from pmed.genomics.prs import run_prs

    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="does not hold an earlier prs output"):
        run_prs(tmp_path / "missing.vcf", tmp_path / "missing.txt", out=out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_write_results_without_variant_log_keeps_the_log_already_there(cohort_files, tmp_path):
    """The earlier API: the log was written into the folder first; the folder is replaced whole
    now, and the log comes along."""
    from pmed.genomics.prs import write_results
    from pmed.genomics.prs.api import _write_variant_log

    d, vcf, sf, *_ = cohort_files
    res = compute_scores([vcf], [sf])
    out = tmp_path / "o"
    out.mkdir()
    _write_variant_log(res.match, res.scorefiles, out)
    (out / "provenance.json").write_text('{"domain": "prs"}')  # an earlier prs output
    log = (out / "match_variants.parquet").read_bytes()
    files = write_results(res, out, variant_log=False)
    assert (out / "match_variants.parquet").read_bytes() == log
    assert files["match_variants"] == out / "match_variants.parquet"
