"""Bad inputs (issue #16) for ``pmed prs score`` and :func:`pmed.genomics.prs.run_prs`.

Every case builds its inputs in ``tmp_path``: four variants on chromosome 1 and four samples
named like medical record numbers (``MRN…``, never to appear in a message). With the scoring
file's effect allele the ALT allele and weights 0.1, 0.2, −0.3, 0.4, the scores are known:
−0.4, −0.2, 1.0, 0.6.
"""

import gzip
import json
import re

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input, refused, run_cli

from pmed.errors import OptionError
from pmed.genomics.prs import run_prs

IDS = ["MRN0042731", "MRN0099120", "MRN0033301", "MRN0077702"]
#: chromosome, position, ID, REF, ALT (no strand-ambiguous pair)
VARIANTS = [("1", 100, "rs1", "A", "G"), ("1", 200, "rs2", "C", "T"),
            ("1", 300, "rs3", "G", "A"), ("1", 400, "rs4", "T", "C")]
#: ALT dosages, variants × samples
DOSAGES = np.array([[0, 1, 2, 1], [1, 0, 2, 0], [2, 1, 0, 1], [0, 0, 1, 2]])
WEIGHTS = ["0.1", "0.2", "-0.3", "0.4"]
EXPECTED = np.array([-0.4, -0.2, 1.0, 0.6])
GT = {0: "0/0", 1: "0/1", 2: "1/1"}
PGS_COLUMNS = ["rsID", "chr_name", "chr_position", "effect_allele", "other_allele", "effect_weight"]


def _vcf(tmp_path, *, build="GRCh38", name="g.vcf", samples=IDS, bom=False, n_copies=1):
    """A plain (or, for ``.gz`` names, gzip-compressed) VCF of VARIANTS; ``n_copies`` repeats
    them at later positions, to make a file whose body is larger than its header."""
    head = ["##fileformat=VCFv4.2", *([f"##reference={build}"] if build else []),
            "##contig=<ID=1>", '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples)]
    body = []
    for k in range(n_copies):
        for (c, p, i, r, a), d in zip(VARIANTS, DOSAGES, strict=True):
            gts = [GT[int(x)] for x in d][: len(samples)] + ["0/0"] * (len(samples) - len(d))
            body.append("\t".join([c, str(p + 1000 * k), i if k == 0 else f"{i}_{k}", r, a, ".",
                                   ".", ".", "GT", *gts]))
    data = ("\n".join(head + body) + "\n").encode()
    data = (b"\xef\xbb\xbf" if bom else b"") + data
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def _scorefile(tmp_path, *, weights=WEIGHTS, build="GRCh38", name="PGS_T.txt", bom=False,
               columns=PGS_COLUMNS, rows=None, alleles=None):
    head = ["###PGS CATALOG SCORING FILE - test", "#format_version=2.0", "#pgs_id=PGS_T",
            *([f"#genome_build={build}"] if build else [])]
    if rows is None:
        alleles = alleles or [(a, r) for *_, r, a in VARIANTS]  # effect = ALT
        rows = [[i, c, str(p), ea, oa, w] for (c, p, i, _, _), (ea, oa), w
                in zip(VARIANTS, alleles, weights, strict=True)]
    text = "\n".join([*head, "\t".join(columns), *("\t".join(r[: len(columns)]) for r in rows)]) + "\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def _plink1(tmp_path, *, stem="g", bom_fam=False):
    """A PLINK 1 fileset (.bed/.bim/.fam) of the same genotypes: a build no file declares."""
    n = len(IDS)
    code = {2: 0b00, 1: 0b10, 0: 0b11}  # .bed 2-bit codes; pgenlib counts A1 (= ALT)
    out = bytearray(b"\x6c\x1b\x01")
    for d in DOSAGES:
        for start in range(0, n, 4):
            byte = 0
            for j, x in enumerate(d[start:start + 4]):
                byte |= code[int(x)] << (2 * j)
            out.append(byte)
    (tmp_path / f"{stem}.bed").write_bytes(bytes(out))
    (tmp_path / f"{stem}.bim").write_text("".join(f"{c}\t{i}\t0\t{p}\t{a}\t{r}\n"
                                                  for c, p, i, r, a in VARIANTS))
    fam = "".join(f"{s}\t{s}\t0\t0\t0\t-9\n" for s in IDS).encode()
    (tmp_path / f"{stem}.fam").write_bytes((b"\xef\xbb\xbf" if bom_fam else b"") + fam)
    return tmp_path / f"{stem}.bed"


def _scores(out):
    s = pd.read_csv(out / "scores.tsv", sep="\t", dtype={"IID": str})
    return s.set_index("IID").loc[IDS, "SUM"].to_numpy()


def _score(target, sf, out, *extra):
    return ["prs", "score", "-t", target, "-s", sf, "-o", out, *extra]


# ---------------------------------------------------------------------------------------------
# 1. silent: a weight that is not a finite number
# ---------------------------------------------------------------------------------------------

@bad_input("silent")
@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "NA", "0.2x"])
def test_non_finite_effect_weight_is_refused_with_its_line(tmp_path, capsys, bad):
    vcf = _vcf(tmp_path)
    sf = _scorefile(tmp_path, weights=["0.1", bad, "-0.3", "0.4"])
    head = refused(capsys, tmp_path, _score(vcf, sf, tmp_path / "out"), code=2,
                   says=r"PGS_T\.txt: line\(s\) 7: 1 row\(s\) of column 'effect_weight' hold no "
                        r"finite number", out=tmp_path / "out", secrets=IDS)
    assert repr(bad) in head  # the short offending value, so the user sees what is wrong
    assert not (tmp_path / "out").exists()


@bad_input("silent")
def test_infinite_weight_in_a_plink2_style_column_is_refused(tmp_path, capsys):
    vcf = _vcf(tmp_path)
    sf = tmp_path / "multi.txt"
    sf.write_text("ID\teffect_allele\tscore_a\tscore_b\n"
                  "1:100:A:G\tG\t0.1\t0.5\n1:200:C:T\tT\t0.2\tinf\n1:300:G:A\tA\t-0.3\t1\n")
    refused(capsys, tmp_path, _score(vcf, sf, tmp_path / "out"), code=2,
            says=r"line\(s\) 3: 1 row\(s\) of column 'score_b' hold no finite number",
            out=tmp_path / "out")


def test_an_empty_weight_is_counted_as_unscorable_not_refused(tmp_path, capsys):
    """The PGS Catalog's way to say "no weight" (dosage models) stays a reported unscorable row."""
    vcf = _vcf(tmp_path)
    sf = _scorefile(tmp_path, weights=["0.1", "", "-0.3", "0.4"])
    rc, text = run_cli(capsys, _score(vcf, sf, tmp_path / "out", "--min-overlap", "0.5"))
    assert rc == 0, text
    rep = pd.read_csv(tmp_path / "out" / "match_report.tsv", sep="\t").iloc[0]
    assert (rep["unscorable"], rep["matched"]) == (1, 3)
    np.testing.assert_allclose(_scores(tmp_path / "out"), EXPECTED - 0.2 * DOSAGES[1], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# 2. silent: a genome build that could not be checked
# ---------------------------------------------------------------------------------------------

@bad_input("silent")
@pytest.mark.parametrize("kind", ["vcf", "plink"])
def test_unknown_genotype_build_is_warned_and_recorded(tmp_path, capsys, kind):
    target = _vcf(tmp_path, build=None) if kind == "vcf" else _plink1(tmp_path)
    sf = _scorefile(tmp_path, build="GRCh37")
    rc, text = run_cli(capsys, _score(target, sf, tmp_path / "out"))
    assert rc == 0, text
    # the CLI prints pmed's warnings as one line each
    assert re.search(r"^warning genome build of the genotypes unknown: cannot check the scoring "
                     r"file's build GRCh37", text, re.M), text
    assert "genome build check: not possible" in " ".join(text.split())
    rep = pd.read_csv(tmp_path / "out" / "match_report.tsv", sep="\t")
    assert rep["build_check"].tolist() == ["not possible"]
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert prov["build_check"] == "not possible" and prov["genome_build"] is None
    np.testing.assert_allclose(_scores(tmp_path / "out"), EXPECTED, atol=1e-9)
    # the build given on the command line is checked, and recorded as checked
    rc, text = run_cli(capsys, _score(target, sf, tmp_path / "out", "--build", "GRCh37"))
    assert rc == 0, text
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["build_check"] == "ok"


@bad_input("silent")
def test_known_builds_that_differ_are_refused(tmp_path, capsys):
    vcf = _vcf(tmp_path, build="GRCh38")
    sf = _scorefile(tmp_path, build="GRCh37")
    refused(capsys, tmp_path, _score(vcf, sf, tmp_path / "out"), code=2,
            says=r"genome build mismatch: the scoring file is GRCh37, the genotypes are GRCh38",
            out=tmp_path / "out")
    # a --build that contradicts the file's own header is not believed either
    refused(capsys, tmp_path, _score(vcf, _scorefile(tmp_path, name="s38.txt"), tmp_path / "out",
                                     "--build", "GRCh37"), code=2,
            says=r"--build GRCh37.*declares \(GRCh38\)", out=tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# 3. silent: alleles that fit neither orientation at the scoring file's position
# ---------------------------------------------------------------------------------------------

@bad_input("silent")
def test_variants_found_with_other_alleles_are_counted_reported_and_warned(tmp_path, capsys):
    vcf = _vcf(tmp_path)
    # rs1 is A/G in the genotypes; C/A fits neither orientation nor a strand flip
    alleles = [("C", "A"), ("T", "C"), ("A", "G"), ("C", "T")]
    sf = _scorefile(tmp_path, alleles=alleles)
    rc, text = run_cli(capsys, _score(vcf, sf, tmp_path / "out"))
    assert rc == 0, text
    assert re.search(r"^warning PGS_T: 1 of 4 variants \(25\.0%\) are at their position in the "
                     r"genotypes with other alleles", text, re.M), text
    rep = pd.read_csv(tmp_path / "out" / "match_report.tsv", sep="\t").iloc[0]
    assert (rep["matched"], rep["unmatched"], rep["unmatched_allele_mismatch"]) == (3, 1, 1)
    log = pd.read_parquet(tmp_path / "out" / "match_variants.parquet")
    row = log[log["rsid"] == "rs1"].iloc[0]
    assert bool(row["allele_mismatch"]) and (row["ref"], row["alt"]) == ("A", "G")
    assert row["match_status"] == "unmatched"
    # not scored: the score is the other three variants'
    np.testing.assert_allclose(_scores(tmp_path / "out"), EXPECTED - 0.1 * DOSAGES[0], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# 4. diagnosis: BOMs, missing columns, empty files
# ---------------------------------------------------------------------------------------------

@bad_input("diagnosis")
@pytest.mark.parametrize("layout", ["pgs", "bare", "plink2"])
def test_bom_scoring_file_is_read_as_without_it(tmp_path, capsys, layout):
    vcf = _vcf(tmp_path)
    if layout == "plink2":
        sf = tmp_path / "bom.txt"
        sf.write_bytes(b"\xef\xbb\xbf" + b"ID\teffect_allele\tPGS_T\n" + "".join(
            f"{c}:{p}:{r}:{a}\t{a}\t{w}\n" for (c, p, _, r, a), w in zip(VARIANTS, WEIGHTS,
                                                                          strict=True)).encode())
    else:
        sf = _scorefile(tmp_path, bom=True, build="GRCh38" if layout == "pgs" else None)
        if layout == "bare":  # the BOM right before the column header
            sf.write_bytes(b"\xef\xbb\xbf" + b"\n".join(sf.read_bytes().splitlines()[3:]) + b"\n")
    rc, text = run_cli(capsys, _score(vcf, sf, tmp_path / "out"))
    assert rc == 0, text
    np.testing.assert_allclose(_scores(tmp_path / "out"), EXPECTED, atol=1e-9)


@bad_input("diagnosis")
def test_bom_sample_file_keeps_the_first_sample_id(tmp_path, capsys):
    bed = _plink1(tmp_path, bom_fam=True)
    sf = _scorefile(tmp_path, build=None)
    rc, text = run_cli(capsys, _score(bed, sf, tmp_path / "out"))
    assert rc == 0, text
    s = pd.read_csv(tmp_path / "out" / "scores.tsv", sep="\t", dtype=str)
    assert s["IID"].tolist() == IDS and s["FID"].tolist() == IDS  # no '\ufeff' on the first
    np.testing.assert_allclose(_scores(tmp_path / "out"), EXPECTED, atol=1e-9)


@bad_input("diagnosis")
def test_bom_vcf_is_named_as_the_cause(tmp_path, capsys):
    vcf = _vcf(tmp_path, bom=True)
    refused(capsys, tmp_path, _score(vcf, _scorefile(tmp_path), tmp_path / "out"), code=2,
            says=r"g\.vcf: line 1: the VCF starts with a UTF-8 byte-order mark \(BOM\)",
            out=tmp_path / "out", secrets=IDS)


@bad_input("diagnosis")
def test_missing_effect_weight_column_is_named_with_the_columns_found(tmp_path, capsys):
    sf = _scorefile(tmp_path, columns=[*PGS_COLUMNS[:5], "weight"])
    head = refused(capsys, tmp_path, _score(_vcf(tmp_path), sf, tmp_path / "out"), code=2,
                   says=r"columns found: rsID, chr_name, chr_position, effect_allele, "
                        r"other_allele, weight\): the scoring file has no 'effect_weight' column",
                   out=tmp_path / "out")
    assert "'ID'" not in head


@bad_input("diagnosis")
def test_header_only_scoring_file_says_no_variants(tmp_path, capsys):
    sf = _scorefile(tmp_path, rows=[])
    head = refused(capsys, tmp_path, _score(_vcf(tmp_path), sf, tmp_path / "out"), code=2,
                   says=r"PGS_T\.txt: line 5: the scoring file has no variants",
                   out=tmp_path / "out")
    assert "build" not in head


@bad_input("diagnosis")
def test_all_zero_plink2_column_says_no_variants_not_build(tmp_path, capsys):
    sf = tmp_path / "zero.txt"
    sf.write_text("ID\teffect_allele\tA\tB\n1:100:A:G\tG\t0.1\t0\n1:200:C:T\tT\t0.2\t0\n")
    head = refused(capsys, tmp_path, _score(_vcf(tmp_path), sf, tmp_path / "out"), code=2,
                   says=r"B: the score has no variants", out=tmp_path / "out")
    assert "genome build" not in head


# ---------------------------------------------------------------------------------------------
# 5. broken: truncated gzip files
# ---------------------------------------------------------------------------------------------

@bad_input("broken")
@pytest.mark.parametrize("where", ["header", "body"])
def test_truncated_gzip_scoring_file(tmp_path, capsys, where):
    weights = [f"{w:.6f}" for w in np.random.default_rng(0).normal(size=4000)]
    rows = [[f"rs{i}", "1", str(100 + i), "A", "G", w] for i, w in enumerate(weights)]
    whole = _scorefile(tmp_path, rows=rows if where == "body" else None, name="full.txt.gz")
    data = whole.read_bytes()
    whole.unlink()
    sf = tmp_path / "PGS_T.txt.gz"
    sf.write_bytes(data[: len(data) // 2])
    refused(capsys, tmp_path, _score(_vcf(tmp_path), sf, tmp_path / "out"), code=2,
            says=r"PGS_T\.txt\.gz: .*truncated", out=tmp_path / "out")


@bad_input("broken")
@pytest.mark.parametrize("copies", [1, 400])
def test_truncated_gzip_vcf(tmp_path, capsys, copies):
    whole = _vcf(tmp_path, name="full.vcf.gz", n_copies=copies)
    data = whole.read_bytes()
    whole.unlink()
    vcf = tmp_path / "g.vcf.gz"
    vcf.write_bytes(data[: len(data) // 2])
    refused(capsys, tmp_path, _score(vcf, _scorefile(tmp_path), tmp_path / "out"), code=2,
            says=r"g\.vcf\.gz: .*truncated", out=tmp_path / "out", secrets=IDS)


@bad_input("broken")
def test_truncated_bed_file(tmp_path, capsys):
    bed = _plink1(tmp_path)
    bed.write_bytes(bed.read_bytes()[:-2])
    refused(capsys, tmp_path, _score(bed, _scorefile(tmp_path, build=None), tmp_path / "out"),
            code=2, says=r"g\.bed: the genotype file holds 2 variants but g\.bim lists 4: it is "
                         r"truncated", out=tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# 6. options: numbers and names refused before any data is read
# ---------------------------------------------------------------------------------------------

@bad_input("options")
@pytest.mark.parametrize(("option", "value"), [
    ("--block-size", "-5"), ("--block-size", "0"), ("--n-jobs", "0"), ("--seed", "-1"),
    ("--min-overlap", "1.5"), ("--min-overlap", "nan"), ("--build", "hg99"),
    ("--scheduler", "not an address"), ("--impute", "median")])
def test_bad_option_values_are_usage_errors(tmp_path, capsys, option, value):
    # the inputs do not exist: a refusal that names the option was made before reading them
    argv = ["prs", "score", "-t", tmp_path / "none.vcf", "-s", __file__, "-o", tmp_path / "out",
            option, value]
    refused(capsys, tmp_path, argv, code=2, says=rf"Invalid value for '{option}'",
            out=tmp_path / "out")


@pytest.mark.parametrize("kwargs", [
    {"block_size": -5}, {"block_size": 0}, {"block_size": 2.5}, {"block_size": True},
    {"n_jobs": 0}, {"seed": -1}, {"min_overlap": float("nan")}, {"target_build": "hg99"},
    {"scheduler": "not an address"}, {"keep_ambiguous": "no"}, {"impute": "median"}])
def test_run_prs_refuses_the_same_values_before_reading(tmp_path, kwargs):
    with pytest.raises(OptionError):
        run_prs(tmp_path / "none.vcf", tmp_path / "none.txt", **kwargs)


# ---------------------------------------------------------------------------------------------
# 7. identifiers: counts and places, never sample IDs or long values
# ---------------------------------------------------------------------------------------------

@bad_input("identifiers")
def test_duplicate_sample_ids_are_refused_without_naming_them(tmp_path, capsys):
    vcf = _vcf(tmp_path, samples=[IDS[0], IDS[1], IDS[0], IDS[3]])
    refused(capsys, tmp_path, _score(vcf, _scorefile(tmp_path), tmp_path / "out"), code=2,
            says=r"g\.vcf: sample columns 10, 12: 1 sample ID\(s\) appear more than once",
            out=tmp_path / "out", secrets=IDS)


@bad_input("identifiers")
def test_long_weight_value_is_not_echoed(tmp_path, capsys):
    long_value = "7" * 40 + "x" * 300
    sf = _scorefile(tmp_path, weights=["0.1", long_value, "-0.3", "0.4"])
    refused(capsys, tmp_path, _score(_vcf(tmp_path), sf, tmp_path / "out"), code=2,
            says=r"line\(s\) 7: .*'effect_weight'", out=tmp_path / "out",
            secrets=[long_value[:20], "x" * 20])


# ---------------------------------------------------------------------------------------------
# 8. mixed: an output folder holds one run, whole
# ---------------------------------------------------------------------------------------------

@bad_input("mixed")
def test_rerun_leaves_no_optional_file_of_an_earlier_run(tmp_path, capsys):
    vcf, sf, out = _vcf(tmp_path), _scorefile(tmp_path), tmp_path / "out"
    assert run_cli(capsys, _score(vcf, sf, out))[0] == 0
    # what a run with --reference adds; this run has none
    (out / "ancestry.tsv").write_text("IID\tMostSimilarPop\nMRN0042731\tEUR\n")
    (out / "scores_adjusted.tsv").write_text("stale\n")
    (out / "plots").mkdir()
    (out / "plots" / "ancestry_pca.png").write_bytes(b"stale")
    rc, text = run_cli(capsys, _score(vcf, sf, out))
    assert rc == 0, text
    assert sorted(p.name for p in out.iterdir()) == [
        "match_report.tsv", "match_variants.parquet", "provenance.json", "scores.tsv",
        "unscorable.tsv"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@bad_input("mixed")
def test_refused_run_leaves_the_earlier_output_and_a_foreign_folder_untouched(tmp_path, capsys):
    vcf, out = _vcf(tmp_path), tmp_path / "out"
    assert run_cli(capsys, _score(vcf, _scorefile(tmp_path), out))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # refused while scoring, when the per-variant log is already being written: a missing call
    # to impute from the scoring file's frequencies, which it does not have
    lines = vcf.read_text().splitlines()
    lines[-1] = lines[-1].replace("0/0", "./.", 1)
    holey = tmp_path / "holey.vcf"
    holey.write_text("\n".join(lines) + "\n")
    refused(capsys, tmp_path, _score(holey, _scorefile(tmp_path), out, "--impute", "file"),
            code=2, says=r"--impute file\) needs allelefrequency_effect", out=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # refused after matching (too few variants)
    moved = _scorefile(tmp_path, name="moved.txt",
                       rows=[[i, c, str(p + 7), a, r, w] for (c, p, i, r, a), w
                             in zip(VARIANTS, WEIGHTS, strict=True)])
    refused(capsys, tmp_path, _score(vcf, moved, out), code=2, says="too few scoring-file variants",
            out=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a folder of something else is refused before any work, nothing added to it
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    refused(capsys, tmp_path, _score(vcf, _scorefile(tmp_path), foreign), code=2,
            says="not empty and does not hold an earlier prs output", out=foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
