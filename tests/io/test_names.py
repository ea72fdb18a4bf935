"""pmed.io.safe_filename / check_inside / check_not_input (issue #16)."""

import os

import pytest

from pmed.errors import InputError
from pmed.io import check_inside, check_not_input, safe_filename

BAD = ["../../x", "a/b", "a\\b", "/etc/passwd", "x" * 300, "CON", "con.txt", "P1", "p1", "Müller",
       "Muller", "", ".", "..", "///", " ", "a_b"]


@pytest.mark.parametrize("value", ["P001", "sample-1.2", "PGS000018", "A_b"])
def test_plain_ids_stay_readable(value):
    assert safe_filename(value) == value


def test_bad_ids_become_distinct_plain_names_inside_the_folder(tmp_path):
    used: set = set()
    names = [safe_filename(v, used=used) for v in BAD]
    assert len({n.casefold() for n in names}) == len(BAD)  # distinct, even ignoring case
    for n in names:
        assert n and n not in (".", "..") and "/" not in n and "\\" not in n and not n.startswith(".")
        assert len(n) <= 100 and n.isascii()
        assert n.split(".")[0].lower() not in ("con", "prn", "aux", "nul")
        p = check_inside(tmp_path / f"{n}.html", tmp_path)
        p.write_text("x")
    assert len(list(tmp_path.iterdir())) == len(BAD)


def test_long_ids_differing_at_the_end_do_not_collide():
    a, b = "x" * 300 + "1", "x" * 300 + "2"
    assert safe_filename(a) != safe_filename(b)
    assert len(safe_filename(a, max_len=40)) == 40


def test_same_value_same_name_without_used():
    assert safe_filename("a/b") == safe_filename("a/b")
    assert safe_filename("Müller").startswith("Muller-")


def test_check_inside_refuses_escape(tmp_path):
    with pytest.raises(InputError):
        check_inside(tmp_path / ".." / "x.html", tmp_path)


def test_check_not_input(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    check_not_input(None, src)
    check_not_input(tmp_path / "out.csv", src)
    with pytest.raises(InputError) as e:
        check_not_input(tmp_path / "." / "in.csv", src)
    assert "\n" not in str(e.value)
    link = tmp_path / "link.csv"
    link.symlink_to(src)
    with pytest.raises(InputError):
        check_not_input(link, src)
    hard = tmp_path / "hard.csv"
    os.link(src, hard)
    with pytest.raises(InputError):
        check_not_input(hard, [src])
    with pytest.raises(InputError):  # folder output that would write in.csv
        check_not_input(tmp_path, src, writes=["in.csv"])
    check_not_input(tmp_path, src, writes=["scores.tsv"])
    with pytest.raises(InputError):  # an existing file inside an input folder
        check_not_input(src, tmp_path)
