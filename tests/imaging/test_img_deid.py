"""DICOM de-identification (basic confidentiality profile) on pydicom's bundled CT/MR files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from img_fixtures import pydicom_file

from pmed.errors import InputError

pydicom = pytest.importorskip("pydicom")
from pmed.imaging.deid import deidentify  # noqa: E402


@pytest.fixture
def phi_folder(tmp_path):
    """CT and MR files with extra identifying attributes (and a private tag) added."""
    src = tmp_path / "in" / "Doe^John"  # the folder name itself identifies the patient
    src.mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        ds = pydicom.dcmread(pydicom_file(name))
        ds.PatientID = "MRN-12345"
        ds.PatientName = "Doe^John"
        ds.PatientBirthDate = "19600102"
        ds.PatientAddress = "1 Main Street, Springfield"
        ds.InstitutionName = "General Hospital"
        ds.ReferringPhysicianName = "Smith^Anna"
        ds.OperatorsName = "Tech^Bob"
        ds.AccessionNumber = "ACC999"
        ds.StudyDate = "20240101"
        ds.SeriesDate = "20240101"
        ds.AcquisitionDate = "20240101"
        ds.add_new(0x00091001, "LO", "private secret")
        ds.save_as(src / f"{name}")
    (src / "notes.txt").write_text("not dicom")
    return tmp_path / "in"


PHI_VALUES = ("MRN-12345", "Doe^John", "19600102", "Springfield", "General Hospital", "Smith^Anna",
              "Tech^Bob", "ACC999", "20240101", "private secret")


def test_deidentify_folder_removes_phi_keeps_pixels(phi_folder, tmp_path):
    out, mapping = tmp_path / "out", tmp_path / "keys" / "mapping.csv"
    before = {p.name: p.read_bytes() for p in phi_folder.rglob("*.dcm")}
    res = deidentify(phi_folder, out, mapping=mapping)
    assert len(res.files) == 2 and len(res.skipped) == 1
    # inputs untouched
    assert {p.name: p.read_bytes() for p in phi_folder.rglob("*.dcm")} == before
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == 2
    pseudonym = res.files["pseudonym"].iloc[0]
    assert res.files["pseudonym"].nunique() == 1 and pseudonym.startswith("PMED")
    for f in written:
        raw = f.read_bytes()
        for v in PHI_VALUES:
            assert v.encode() not in raw, f"{v} left in {f.name}"
        assert b"Doe" not in str(f).encode()
        ds = pydicom.dcmread(f)
        orig_name = "CT_small.dcm" if ds.Modality == "CT" else "MR_small.dcm"
        orig = pydicom.dcmread(phi_folder / "Doe^John" / orig_name)
        np.testing.assert_array_equal(ds.pixel_array, orig.pixel_array)  # pixels kept
        assert ds.PatientID == pseudonym and str(ds.PatientName) == pseudonym
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.PatientBirthDate == "" and ds.StudyDate == "" and ds.AccessionNumber == ""
        assert "InstitutionName" not in ds and "PatientAddress" not in ds and "SeriesDate" not in ds
        assert ds.StudyInstanceUID != orig.StudyInstanceUID and ds.SOPInstanceUID != orig.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == orig.SOPClassUID  # class UIDs are not identifying
        assert not any(e.tag.is_private for e in ds)
    m = pd.read_csv(mapping, dtype=str, keep_default_na=False)
    pat = m[m["kind"] == "patient"].set_index("attribute")
    assert pat.loc["PatientID", "original"] == "MRN-12345" and pat.loc["PatientID", "pseudonym"] == pseudonym
    assert pat.loc["PatientName", "original"] == "Doe^John"
    uids = m[m["kind"] == "uid"]
    ct = pydicom.dcmread(phi_folder / "Doe^John" / "CT_small.dcm")
    assert ct.SOPInstanceUID in set(uids["original"])


def test_mapping_reused_keeps_pseudonym(phi_folder, tmp_path):
    mapping = tmp_path / "keys.csv"
    r1 = deidentify(phi_folder / "Doe^John" / "CT_small.dcm", tmp_path / "o1", mapping=mapping)
    r2 = deidentify(phi_folder / "Doe^John" / "MR_small.dcm", tmp_path / "o2", mapping=mapping)
    assert r1.files["pseudonym"].iloc[0] == r2.files["pseudonym"].iloc[0]
    m = pd.read_csv(mapping, dtype=str, keep_default_na=False)
    assert (m["kind"] == "file").sum() == 2


def test_mapping_inside_output_refused(phi_folder, tmp_path):
    with pytest.raises(InputError, match="mapping") as e:
        deidentify(phi_folder, tmp_path / "out", mapping=tmp_path / "out" / "map.csv")
    assert "outside OUT" in e.value.fix
    with pytest.raises(InputError, match="inside the input"):
        deidentify(phi_folder, phi_folder / "sub", mapping=tmp_path / "m.csv")


def test_non_dicom_single_file_refused(tmp_path):
    f = tmp_path / "x.dcm"
    f.write_bytes(b"garbage")
    with pytest.raises(InputError, match="x.dcm"):
        deidentify(f, tmp_path / "o", mapping=tmp_path / "m.csv")
