import numpy as np
import pandas as pd
import pytest
from prs_fixtures import write_pgs_catalog

from conftest import shared_dir
from pmed.errors import InputError
from pmed.genomics.prs import read_scorefile
from pmed.genomics.prs.scorefile import normalize_build, normalize_chrom

PRS = shared_dir() / "data" / "prs"


def test_builds_and_chromosomes_are_normalised():
    assert normalize_build("hg19") == "GRCh37" and normalize_build("GRCh38") == "GRCh38"
    assert normalize_build("NR") is None
    c = normalize_chrom(pd.Series(["chr22", "22", "chrX", "23", "chrM", "MT"]))
    assert c.tolist() == ["22", "22", "X", "X", "MT", "MT"]


@pytest.mark.realdata
def test_pgs_catalog_file_header_and_rows():
    path = PRS / "scorefiles" / "PGS001229_22.txt"
    if not path.exists():
        pytest.skip(f"{path} absent")
    sf = read_scorefile(path)
    assert sf.genome_build == "GRCh37" and sf.header["pgs_id"] == "PGS001229"
    assert sf.scores == ["PGS001229"] and len(sf.variants) == 835 and sf.unscorable.empty
    first = sf.variants.iloc[0]
    assert (first["rsid"], first["chr"], first["pos"], first["effect_allele"], first["other_allele"]) == (
        "rs5746679", "22", 17080378, "G", "A")
    assert first["weight"] == pytest.approx(1.045457e-02) and first["row"] == 16  # 1-based line


@pytest.mark.realdata
def test_dominant_recessive_and_plink_style_multiscore():
    d = read_scorefile(PRS / "scorefiles" / "scorefile_dominant_and_recessive.fixedheader.txt")
    kinds = d.variants["effect_type"].value_counts()
    assert kinds["dominant"] >= 1 and kinds["recessive"] >= 1
    assert d.variants.iloc[0]["effect_type"] == "dominant" and d.variants.iloc[1]["effect_type"] == "recessive"
    m = read_scorefile(PRS / "scorefiles" / "multiscore.txt")
    assert m.scores == ["PGS001229_22", "second_score"]
    v = m.variants[m.variants["score"] == "second_score"].iloc[0]
    # chr:pos:ref:alt IDs are located by position; the other allele is the one that is not effect
    assert (v["chr"], v["pos"], v["effect_allele"], v["other_allele"]) == ("22", 17080378, "G", "A")


def test_unscorable_rows_are_counted_with_reasons(tmp_path):
    rows = pd.DataFrame({
        "rsID": ["rs1", "rs2", "rs3", "rs4", "rs5"], "chr_name": ["1"] * 5,
        "chr_position": [100, 200, 300, 400, 500],
        "effect_allele": ["A", "e4", "HLA-DRB1*15:01", "G", "C"],
        "other_allele": ["G", "e3", None, "A", "T"],
        "effect_weight": [0.1, 0.5, 0.2, None, 0.3],
    })
    sf = read_scorefile(write_pgs_catalog(tmp_path / "s.txt", rows))
    assert sf.variants["rsid"].tolist() == ["rs1", "rs5"]
    reasons = dict(zip(sf.unscorable["rsid"], sf.unscorable["reason"], strict=True))
    assert reasons["rs2"].startswith("complex") and reasons["rs3"].startswith("complex")
    assert "effect_weight" in reasons["rs4"]


def test_dosage_weight_models_are_unscorable(tmp_path):
    rows = pd.DataFrame({"rsID": ["rs1", "rs2"], "chr_name": ["1", "1"], "chr_position": [1, 2],
                         "effect_allele": ["A", "C"], "other_allele": ["G", "T"],
                         "effect_weight": [0.1, None], "dosage_0_weight": [None, 0.0],
                         "dosage_1_weight": [None, 0.2], "dosage_2_weight": [None, 0.5]})
    sf = read_scorefile(write_pgs_catalog(tmp_path / "s.txt", rows))
    assert len(sf.variants) == 1 and sf.unscorable["reason"].str.contains("dosage_N_weight").all()


def test_missing_effect_allele_column_is_a_clear_error(tmp_path):
    rows = pd.DataFrame({"rsID": ["rs1"], "chr_name": ["1"], "chr_position": [1],
                         "other_allele": ["G"], "effect_weight": [0.1]})
    with pytest.raises(InputError) as e:
        read_scorefile(write_pgs_catalog(tmp_path / "noea.txt", rows))
    msg = str(e.value)
    assert "effect_allele" in msg and "noea.txt" in msg and "line 5" in msg and "fix:" in msg


def test_harmonized_columns_take_precedence(tmp_path):
    rows = pd.DataFrame({"rsID": ["rs1"], "chr_name": ["1"], "chr_position": [100],
                         "effect_allele": ["A"], "other_allele": ["G"], "effect_weight": [0.1],
                         "hm_chr": ["2"], "hm_pos": [555]})
    sf = read_scorefile(write_pgs_catalog(tmp_path / "hm.txt", rows, build="GRCh37",
                                          extra_header="#HmPOS_build=GRCh38"))
    assert sf.genome_build == "GRCh38"
    assert (sf.variants.iloc[0]["chr"], sf.variants.iloc[0]["pos"]) == ("2", 555)


def test_large_file_is_streamed_and_late_text_in_a_number_column_is_kept(tmp_path):
    """Blocks are converted one at a time; a value that is not a number far down a numeric
    column (after the first block fixed the column's type) turns the column to text, not an error."""
    import gzip

    n = 300_000  # several 4 MB blocks
    rng = np.random.default_rng(0)
    pos = np.arange(1, n + 1) * 10
    w = np.round(rng.normal(size=n), 6)
    lines = ["#pgs_id=PGS_BIG", "#genome_build=GRCh38",
             "rsID\tchr_name\tchr_position\teffect_allele\tother_allele\teffect_weight"]
    alleles = np.array(list("ACGT"))
    ea, oa = alleles[rng.integers(0, 4, n)], alleles[rng.integers(0, 4, n)]
    for i in range(n):
        p = "NA" if i == n - 10 else str(pos[i])
        lines.append(f"rs{i}\t{1 + i % 22}\t{p}\t{ea[i]}\t{oa[i]}\t{w[i]}")
    path = tmp_path / "big.txt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    sf = read_scorefile(path)
    v = sf.variants
    assert len(v) == n and sf.genome_build == "GRCh38"
    got = v["pos"].to_numpy()
    assert np.isnan(got[n - 10]) and np.array_equal(np.delete(got, n - 10), np.delete(pos, n - 10))
    assert np.array_equal(v["weight"].to_numpy(), w)
    assert list(v["effect_allele"].astype(str)[:5]) == list(ea[:5])
    assert v["rsid"].iloc[-1] == f"rs{n - 1}" and v["chr"].iloc[22] == "1"


def test_compact_columns(tmp_path):
    """Line numbers as int32; a frequency column with no value takes no memory."""
    rows = pd.DataFrame({"rsID": ["rs1", "rs2"], "chr_name": ["1", "1"], "chr_position": [10, 20],
                         "effect_allele": ["A", "C"], "other_allele": ["G", "T"],
                         "effect_weight": [0.5, -0.25]})
    sf = read_scorefile(write_pgs_catalog(tmp_path / "a.txt", rows))
    v = sf.variants
    assert v["row"].dtype == np.int32 and v["row"].tolist() == [6, 7]  # 4 header lines
    assert isinstance(v["af"].dtype, pd.SparseDtype) and v["af"].array.nbytes == 0
    assert np.isnan(v["af"].to_numpy(dtype=np.float64)).all()
    with_af = read_scorefile(write_pgs_catalog(tmp_path / "b.txt", rows.assign(
        allelefrequency_effect=[0.1, 0.3])))
    assert with_af.variants["af"].dtype == np.float64
    assert with_af.variants["af"].tolist() == [0.1, 0.3]


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "NA", "1e999", "0.1.2"])
def test_a_weight_that_is_no_finite_number_is_refused_with_its_line(tmp_path, bad):
    rows = pd.DataFrame({"rsID": ["rs1", "rs2", "rs3"], "chr_name": ["1"] * 3,
                         "chr_position": [100, 200, 300], "effect_allele": ["A", "C", "G"],
                         "other_allele": ["G", "T", "A"], "effect_weight": ["0.1", bad, "0.3"]})
    with pytest.raises(InputError) as e:
        read_scorefile(write_pgs_catalog(tmp_path / "w.txt", rows))
    msg = str(e.value)
    # 4 metadata lines, the column header on line 5: the second row is line 7
    assert "w.txt: line(s) 7: 1 row(s) of column 'effect_weight' hold no finite number" in msg
    assert "fix:" in msg


def test_many_bad_weights_give_a_count_and_the_first_lines(tmp_path):
    n = 30
    rows = pd.DataFrame({"rsID": [f"rs{i}" for i in range(n)], "chr_name": ["1"] * n,
                         "chr_position": np.arange(n) * 10 + 10, "effect_allele": ["A"] * n,
                         "other_allele": ["G"] * n,
                         "effect_weight": ["inf" if i % 3 == 0 else "0.5" for i in range(n)]})
    with pytest.raises(InputError) as e:
        read_scorefile(write_pgs_catalog(tmp_path / "w.txt", rows))
    assert "10 row(s)" in str(e.value)
    assert "line(s) 6, 9, 12, 15, 18, 21, 24, 27, … (10 in all)" in str(e.value)


def test_missing_effect_weight_is_named_not_blamed_on_a_plink_id(tmp_path):
    rows = pd.DataFrame({"rsID": ["rs1"], "chr_name": ["1"], "chr_position": [1],
                         "effect_allele": ["A"], "beta": [0.1]})
    with pytest.raises(InputError) as e:
        read_scorefile(write_pgs_catalog(tmp_path / "now.txt", rows))
    msg = str(e.value)
    assert "no 'effect_weight' column" in msg and "'ID' column" not in msg.split("fix:")[0]
    assert "columns found: rsID, chr_name, chr_position, effect_allele, beta" in msg


def test_header_only_scoring_file_has_no_variants(tmp_path):
    p = tmp_path / "h.txt"
    p.write_text("#pgs_id=PGS_H\n#genome_build=GRCh38\nrsID\tchr_name\tchr_position\t"
                 "effect_allele\teffect_weight\n")
    with pytest.raises(InputError, match=r"h\.txt: line 3: the scoring file has no variants"):
        read_scorefile(p)


def test_bom_plink2_style_file_keeps_its_id_column(tmp_path):
    p = tmp_path / "m.txt"
    p.write_bytes(b"\xef\xbb\xbfID\teffect_allele\tS1\n1:100:A:G\tG\t0.5\n")
    sf = read_scorefile(p)
    v = sf.variants.iloc[0]
    assert sf.scores == ["S1"] and (v["chr"], v["pos"], v["other_allele"]) == ("1", 100, "A")


@pytest.mark.parametrize("cut", ["header", "body"])
def test_truncated_gzip_scoring_file_says_truncated(tmp_path, cut):
    import gzip

    lines = ["#pgs_id=PGS_G", "rsID\tchr_name\tchr_position\teffect_allele\teffect_weight"]
    lines += [f"rs{i}\t1\t{i + 1}\tA\t{i / 7:.6f}" for i in range(3000 if cut == "body" else 1)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    p = tmp_path / "g.txt.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"g\.txt\.gz: .*truncated"):
        read_scorefile(p)


def test_ragged_row_message_does_not_quote_the_row(tmp_path):
    p = tmp_path / "r.txt"
    long_id = "rs" + "9" * 300
    p.write_text("#pgs_id=PGS_R\nrsID\tchr_name\tchr_position\teffect_allele\teffect_weight\n"
                 f"rs1\t1\t100\tA\t0.1\n{long_id}\t1\t200\tC\t0.2\textra\n")
    with pytest.raises(InputError) as e:
        read_scorefile(p)
    assert "a row of the scoring file has 6 columns where the header has 5" in str(e.value)
    assert "9" * 30 not in str(e.value)
