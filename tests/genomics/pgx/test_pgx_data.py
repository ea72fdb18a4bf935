"""The package data is what scripts/build_pgx_data.py makes from ../shared/data/pgx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pmed.datasets._paths import shared_data_dir
from pmed.genomics.pgx._data import ALL_GENES, data_version, definitions

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "src" / "pmed" / "genomics" / "pgx" / "data"


def test_package_data_covers_the_matcher_genes():
    genes = definitions()["genes"]
    assert set(genes) == set(ALL_GENES) and len(ALL_GENES) == 20
    assert data_version() == "pharmcat-3.1.1+definitions-2025-11-05-00-25+guidelines-2.12.0"
    assert (DATA / "ATTRIBUTION.md").is_file()


@pytest.mark.realdata
def test_build_script_reproduces_package_data(tmp_path):
    src = shared_data_dir() / "data" / "pgx"
    if not (src / "pharmcat_v3.1.1").is_dir():
        pytest.skip(f"needs {src / 'pharmcat_v3.1.1'}")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_pgx_data.py"), "--shared",
                    str(src), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("definitions.json", "phenotypes.json", "guidelines.json", "messages.json",
                 "VERSION.json"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
