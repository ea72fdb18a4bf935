"""Readers: pydicom's bundled CT/MR files read by path, series geometry, NIfTI, PNG, npz, manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from img_fixtures import pydicom_file

from pmed.errors import InputError, ValidationError
from pmed.imaging import readers as R

pydicom = pytest.importorskip("pydicom")


def test_ct_small_rescale_to_hounsfield_units():
    path = pydicom_file("CT_small.dcm")
    raw = pydicom.dcmread(path).pixel_array
    img = R.read_dicom(path)
    assert img.meta["modality"] == "CT"
    assert img.meta["rescale_slope"] == 1.0 and img.meta["rescale_intercept"] == -1024.0
    # HU = stored * slope + intercept, pixel by pixel
    np.testing.assert_array_equal(img.pixels, raw.astype(np.float32) - 1024.0)
    assert img.pixels.shape == (128, 128)
    assert img.spacing == pytest.approx((0.661468, 0.661468))
    assert img.origin == pytest.approx((-158.135803, -179.035797, -75.699997))
    assert img.orientation == pytest.approx((1, 0, 0, 0, 1, 0))
    # stored values without rescale
    np.testing.assert_array_equal(R.read_dicom(path, rescale=False).pixels, raw)


def test_mr_small_window_from_file_matches_dicom_linear_formula():
    path = pydicom_file("MR_small.dcm")
    raw = pydicom.dcmread(path).pixel_array.astype(float)
    img = R.read_dicom(path, window="dicom")
    c, w = 600.0, 1600.0  # the file's WindowCenter/WindowWidth
    expected = np.clip((raw - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    np.testing.assert_allclose(img.pixels, expected, atol=1e-6)
    assert img.spacing == pytest.approx((0.3125, 0.3125))
    assert img.meta["modality"] == "MR"


def test_apply_window_bounds():
    x = np.array([-1000.0, 39.5, 40.0, 1000.0])
    out = R.apply_window(x, 40, 400)  # CT soft tissue
    assert out[0] == 0.0 and out[-1] == 1.0
    assert out[1] == pytest.approx(0.5)
    with pytest.raises(InputError, match="window width"):
        R.apply_window(x, 40, 0)


def test_ct_without_window_asks_for_one():
    with pytest.raises(InputError, match="WindowCenter") as e:
        R.read_dicom(pydicom_file("CT_small.dcm"), window="dicom")
    assert "window=(40, 400)" in e.value.fix


def test_corrupted_dicom_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\x00" * 50 + b"not dicom at all")
    with pytest.raises(InputError) as e:
        R.read_dicom(bad)
    assert "broken.dcm" in str(e.value) and e.value.fix
    # a real file truncated mid-pixel-data
    data = pydicom_file("CT_small.dcm").read_bytes()
    cut = tmp_path / "truncated.dcm"
    cut.write_bytes(data[: len(data) - 4000])
    with pytest.raises(InputError, match="truncated.dcm"):
        R.read_dicom(cut)


def _write_series(folder: Path, positions, *, orientation=(1, 0, 0, 0, 1, 0)):
    folder.mkdir(parents=True, exist_ok=True)
    src = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    arr = src.pixel_array
    for k, pos in enumerate(positions):
        ds = src.copy()
        ds.ImagePositionPatient = [f"{v:.4f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.InstanceNumber = len(positions) - k  # deliberately misleading order
        ds.PixelData = (arr + 10 * k).astype(arr.dtype).tobytes()  # slice k is identifiable
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"file_{(k * 7) % len(positions)}_{k}.dcm")


def test_dicom_series_sorted_by_position_with_spacing(tmp_path):
    raw = pydicom.dcmread(pydicom_file("CT_small.dcm")).pixel_array.astype(np.float32)
    z = [10.0, -5.0, 2.5, 5.0, -2.5, 0.0, 7.5]  # 2.5 mm apart, shuffled
    _write_series(tmp_path / "s", [(-158.1, -179.0, v) for v in z])
    vol = R.read_dicom_series(tmp_path / "s")
    assert vol.pixels.shape == (7, 128, 128)
    order = np.argsort(z)
    for out_k, in_k in enumerate(order):  # slice in_k carried +10*in_k
        np.testing.assert_array_equal(vol.pixels[out_k], raw + 10 * in_k - 1024)
    assert vol.spacing == pytest.approx((2.5, 0.661468, 0.661468))
    assert vol.origin == pytest.approx((-158.1, -179.0, -5.0))
    # the affine maps voxel (j, i, k) to patient coordinates
    p = vol.affine @ np.array([3, 2, 4, 1.0])
    assert p[:3] == pytest.approx([-158.1 + 3 * 0.661468, -179.0 + 2 * 0.661468, -5.0 + 4 * 2.5])


def test_dicom_series_oblique_orientation_uses_normal(tmp_path):
    # rows along x, columns along (0, cos, sin): the normal is (0, -sin, cos)
    a = np.deg2rad(30)
    ori = (1, 0, 0, 0, np.cos(a), np.sin(a))
    normal = np.array([0, -np.sin(a), np.cos(a)])
    pos = [tuple(np.array([0.0, 0.0, 0.0]) + d * normal) for d in (6.0, 0.0, 3.0)]
    _write_series(tmp_path / "o", pos, orientation=ori)
    vol = R.read_dicom_series(tmp_path / "o")
    assert vol.spacing[0] == pytest.approx(3.0, abs=1e-3)
    np.testing.assert_allclose(vol.direction[:, 2], normal, atol=1e-5)
    assert vol.origin == pytest.approx((0.0, 0.0, 0.0), abs=1e-3)


def test_dicom_series_duplicate_positions_rejected(tmp_path):
    _write_series(tmp_path / "d", [(0, 0, 0), (0, 0, 0), (0, 0, 2)])
    with pytest.raises(InputError, match="same position"):
        R.read_dicom_series(tmp_path / "d")


def test_nifti_roundtrip_geometry(tmp_path):
    nib = pytest.importorskip("nibabel")
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # (i, j, k)
    aff = np.diag([0.8, 0.9, 2.0, 1.0])
    aff[:3, 3] = [-10, 20, 5]
    nib.save(nib.Nifti1Image(data, aff), tmp_path / "v.nii.gz")
    vol = R.read_nifti(tmp_path / "v.nii.gz")
    assert vol.pixels.shape == (6, 5, 4)
    assert vol.pixels[2, 3, 1] == data[1, 3, 2]
    assert vol.spacing == pytest.approx((2.0, 0.9, 0.8))
    assert vol.origin == pytest.approx((-10, 20, 5))
    np.testing.assert_allclose(R.read_image(tmp_path / "v.nii.gz"), data[:, :, 3].T)


def test_png_and_jpeg(tmp_path):
    from PIL import Image as PILImage

    arr = (np.arange(20 * 30) % 256).astype(np.uint8).reshape(20, 30)
    PILImage.fromarray(arr).save(tmp_path / "a.png")
    np.testing.assert_array_equal(R.read_raster(tmp_path / "a.png").pixels, arr)
    rgb = np.stack([arr, arr, arr], -1)
    PILImage.fromarray(rgb).save(tmp_path / "b.jpg", quality=95)
    g = R.read_image(tmp_path / "b.jpg")
    assert g.shape == (20, 30) and np.abs(g - arr).mean() < 3
    (tmp_path / "c.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="c.png"):
        R.read_raster(tmp_path / "c.png")


def test_npz_reader_and_missing_keys(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ok.npz", train_images=rng.integers(0, 256, (5, 8, 8), dtype=np.uint8),
             train_labels=np.array([[0], [1], [0], [1], [1]]),
             val_images=rng.integers(0, 256, (3, 8, 8), dtype=np.uint8), val_labels=np.array([[0], [1], [1]]))
    s = R.read_npz(tmp_path / "ok.npz")
    assert s.splits == ["train", "val"]
    assert s.images["train"].shape == (5, 1, 8, 8) and s.images["train"].max() <= 1.0
    assert s.labels["val"].tolist() == [0, 1, 1]
    assert s.ids["train"][2] == "train_2"
    with pytest.raises(InputError, match="no split 'test'"):
        s.split("test")
    np.savez(tmp_path / "nokeys.npz", x=np.zeros((2, 8, 8)), y=np.zeros(2))
    with pytest.raises(InputError, match="train_images") as e:
        R.read_npz(tmp_path / "nokeys.npz")
    assert "keys: x, y" in str(e.value)
    np.savez(tmp_path / "nolabels.npz", train_images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValidationError, match="no matching 'train_labels'"):
        R.read_npz(tmp_path / "nolabels.npz")


def test_manifest_missing_files_listed_with_lines(tmp_path):
    from PIL import Image as PILImage

    PILImage.fromarray(np.full((10, 12), 100, np.uint8)).save(tmp_path / "p1.png")
    pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "path": ["p1.png", "gone.png", "also_gone.dcm"],
                  "label": [1, 0, 1], "split": ["train", "train", "val"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ValidationError) as e:
        R.read_manifest(tmp_path / "m.csv")
    msg = str(e.value)
    # one summary line: the column, how many, which lines; never the paths (often patient names)
    assert "column 'path': 2 image files are not found" in msg and "lines 3, 4" in msg
    assert "gone.png" not in msg and "also_gone" not in msg
    assert "m.csv" in msg and len(e.value.problems) == 1 and len(msg.splitlines()) == 2  # + the fix


def test_manifest_with_dicom_and_png_loads(tmp_path):
    from PIL import Image as PILImage

    PILImage.fromarray(np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))).save(tmp_path / "a.png")
    man = pd.DataFrame({"patient_id": ["A", "B", "C"],
                        "path": ["a.png", str(pydicom_file("CT_small.dcm")), str(pydicom_file("MR_small.dcm"))],
                        "label": [0, 1, ""], "split": ["train", "train", "test"]})
    man.to_csv(tmp_path / "m.csv", index=False)
    s = R.load_dataset(tmp_path / "m.csv", size=32)
    assert s.images["train"].shape == (2, 1, 32, 32) and s.images["test"].shape == (1, 1, 32, 32)
    assert 0 <= s.images["train"].min() and s.images["train"].max() <= 1
    assert s.labels["test"].tolist() == [-1]
    assert s.ids["train"].tolist() == ["A", "B"]
    # the PNG ramp keeps increasing along columns after resizing
    assert np.all(np.diff(s.images["train"][0, 0, 5]) >= 0)


def test_manifest_missing_column(tmp_path):
    (tmp_path / "m.csv").write_text("id,file\nA,a.png\n")
    with pytest.raises(InputError, match="patient_id, path"):
        R.read_manifest(tmp_path / "m.csv")


def test_dicom_series_two_series_need_a_uid(tmp_path):
    _write_series(tmp_path / "a", [(0, 0, 0), (0, 0, 2)])
    _write_series(tmp_path / "b", [(0, 0, 0), (0, 0, 3)])
    for f in (tmp_path / "b").glob("*.dcm"):  # give folder b its own series
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = "1.2.3.4.5"
        ds.save_as(f)
    with pytest.raises(InputError, match="holds 2 series"):
        R.read_dicom_series(tmp_path)
    vol = R.read_dicom_series(tmp_path, series_uid="1.2.3.4.5")
    assert vol.pixels.shape[0] == 2 and vol.spacing[0] == pytest.approx(3.0)
    files = sorted((tmp_path / "a").glob("*.dcm"))
    assert R.read_dicom_series(files).spacing[0] == pytest.approx(2.0)
