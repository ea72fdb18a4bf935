import pandas as pd
import pytest

from pmed.errors import InputError, ValidationError
from pmed.io import read_table, write_table


def test_csv_tsv_parquet_give_the_same_table(clinical_files, tmp_path):
    a = read_table(clinical_files["patients"], schema=clinical_files["schema"])
    raw = pd.read_csv(clinical_files["patients"])
    raw.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    raw.to_parquet(tmp_path / "p.parquet", index=False)
    b = read_table(tmp_path / "p.tsv", schema=clinical_files["schema"])
    c = read_table(tmp_path / "p.parquet", schema=clinical_files["schema"])
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_without_schema_types_are_inferred(clinical_files):
    df = read_table(clinical_files["patients"])
    assert df["age"].dtype == "float64"
    assert df.index.name == "patient_id"


def test_bad_value_names_file_column_and_line(clinical_files, tmp_path):
    lines = clinical_files["patients"].read_text().splitlines()
    parts = lines[5].split(",")
    parts[1] = "-4"  # age
    lines[5] = ",".join(parts)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as e:
        read_table(bad, schema=clinical_files["schema"])
    msg = str(e.value)
    assert str(bad) in msg and "column 'age'" in msg and "lines 6" in msg


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(InputError, match="unknown table format '.xlsx'"):
        read_table(tmp_path / "x.xlsx")


def test_write_table_is_atomic_and_leaves_no_temp(tmp_path):
    df = pd.DataFrame({"a": [1, 2]})
    write_table(df, tmp_path / "out.csv", index=False)
    assert (tmp_path / "out.csv").read_text().splitlines() == ["a", "1", "2"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize("data, where", [
    (b"id,x\nP1,1.5e4000000000\n", "line 2, column 4"),
    (b"id,x\n1e12345678901,2\n", "line 2, column 1"),
    (b'id,x\nP1,"-2.5E+12345678901"\n', "line 2, column 5"),
    (b"id,x\npsn-f744e6473016701277a5,1\n", None),  # a hexadecimal pseudonym is text, not a number
    (b"id\tx\nab1e12345678901\t1.5e300\n", None),
])
def test_numbers_with_huge_exponents_are_refused_and_words_are_not(data, where):
    from pmed.io.tables import check_number_text

    if where is None:
        check_number_text(data)
    else:
        with pytest.raises(InputError, match="exponent") as e:
            check_number_text(data)
        assert e.value.where == where
