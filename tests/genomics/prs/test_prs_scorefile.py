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
