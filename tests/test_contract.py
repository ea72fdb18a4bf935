"""The domain contract, checked the same way for every domain.

``run_<domain>(...) -> <Domain>Result`` with ``.to_block()``, ``.summary()`` and ``.write(out)``;
``write`` leaves ``provenance.json`` (domain, hashed inputs, options, versions, commit) that
:func:`pmed.cohort.read_block` uses to read the folder back as the same block.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.cohort import Block, Cohort, read_block
from pmed.result import DomainResult

DOMAINS = ["prs", "pgx", "imaging", "omics", "timeseries"]


def _case(domain):
    return importlib.import_module(f"contract_cases.{domain}")


@pytest.fixture(scope="module", params=DOMAINS)
def ran(request, tmp_path_factory):
    domain = request.param
    case = _case(domain)
    tmp = tmp_path_factory.mktemp(f"contract_{domain}")
    res = case.run(tmp)
    out = tmp / "out ü"  # non-ASCII output path, as users have
    files = res.write(out)
    return domain, case, res, out, files


def test_entry_point_is_public(ran):
    domain, case, res, *_ = ran
    module, func = case.ENTRY.rsplit(".", 1)
    mod = importlib.import_module(module)
    assert func == f"run_{domain}" or func.startswith("run_")
    assert func in mod.__all__ and callable(getattr(mod, func))


def test_result_type(ran):
    domain, case, res, *_ = ran
    assert isinstance(res, DomainResult)
    assert res.domain == domain
    assert type(res).__name__.endswith("Result")


def test_block(ran):
    domain, case, res, *_ = ran
    block = res.to_block()
    assert isinstance(block, Block)
    df = block.data
    assert isinstance(df, pd.DataFrame) and len(df) > 0 and df.shape[1] > 0
    assert df.index.name == "patient_id"
    assert df.index.is_unique and all(isinstance(i, str) for i in df.index)
    assert block.provenance.get("domain") == domain
    # the block plugs into a Cohort without a bridge function
    cohort = Cohort(pd.DataFrame({"age": np.arange(len(df), dtype=float)},
                                 index=pd.Index(df.index, name="patient_id")))
    cohort.add_block(res.block_name or domain, block)
    assert cohort.blocks[res.block_name or domain].provenance["domain"] == domain
    pd.testing.assert_frame_equal(cohort.blocks[res.block_name or domain].data, df,
                                  check_names=False)


def test_summary_is_json(ran):
    *_, res, _out, _files = ran
    s = res.summary()
    assert isinstance(s, dict) and s
    json.dumps(s, allow_nan=False)


def test_write_and_provenance(ran):
    domain, case, res, out, files = ran
    assert "provenance" in files
    for p in files.values():
        p = Path(p)
        assert p.exists(), p
        assert p.resolve().is_relative_to(out.resolve()), f"{p} written outside {out}"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["domain"] == domain
    assert {"inputs", "options", "versions", "commit", "created", "summary"} <= set(prov)
    assert prov["versions"]["pmed"] and prov["versions"]["numpy"]
    roles = {i["role"] for i in prov["inputs"]}
    assert set(case.INPUT_ROLES) <= roles, roles
    for entry in prov["inputs"]:
        if entry["role"] in case.INPUT_ROLES and Path(entry["path"]).is_file():
            digest = hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest()
            assert entry["sha256"] == digest
    # no temporary files left behind
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_written_folder_reads_back_as_the_block(ran):
    domain, case, res, out, _ = ran
    expected = res.to_block().data
    got = read_block(out)
    assert got.provenance.get("domain") == domain
    pd.testing.assert_frame_equal(got.data.loc[expected.index, expected.columns], expected,
                                  check_dtype=False, check_names=False, atol=1e-9)


def test_block_source_finds_the_file_and_its_folders_provenance(tmp_path):
    from pmed.errors import PmedWarning
    from pmed.result import block_source

    folder = tmp_path / "run ü"
    folder.mkdir()
    (folder / "features.csv").write_text("patient_id,a\nP1,1\n")
    (folder / "provenance.json").write_text(json.dumps({"domain": "x", "outputs": ["features.csv"]}))
    file, prov = block_source(folder, "features.csv")
    assert file == folder / "features.csv" and prov == {"domain": "x"}  # its outputs left out
    assert block_source(folder / "features.csv", "features.csv")[0] == file
    assert block_source(folder / "provenance.json", "features.csv") is None  # another file
    assert block_source(tmp_path, "features.csv") is None  # a folder without it
    (folder / "provenance.json").write_text("{not json")
    with pytest.warns(PmedWarning, match="unreadable provenance"):
        assert block_source(folder, "features.csv") == (file, {})
