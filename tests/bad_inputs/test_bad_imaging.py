"""Bad inputs to ``pmed imaging train | predict | explain | embed | deidentify`` (issue #16).

Tiny synthetic images (16×16, a few dozen), one epoch of a narrow CNN: every case runs in a few
seconds. Each refusal is checked by :func:`badinput.refused` (exit code, one diagnosis line naming
the real cause, no traceback, no identifier echoed, inputs unchanged, nothing written outside
``--out``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input, refused, run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
pydicom = pytest.importorskip("pydicom")

from pmed.errors import OptionError  # noqa: E402
from pmed.imaging.synthetic import make_lesion_images, write_lesion_manifest  # noqa: E402

FAST = ["--arch", "cnn", "--width", "0.25", "--epochs", "1", "--batch-size", "16", "--bootstrap", "10",
        "--no-progress", "--no-augment", "--device", "cpu"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _u8(a):
    return np.round(a[:, 0] * 255).astype(np.uint8)


def _npz(path: Path, *, val: bool = True, train_labels=None) -> Path:
    X, y, _ = make_lesion_images(24, size=16, seed=0)
    Xv, yv, _ = make_lesion_images(12, size=16, seed=1)
    arrays = {"train_images": _u8(X), "train_labels": (y if train_labels is None else train_labels)[:, None],
              "test_images": _u8(Xv), "test_labels": yv[:, None]}
    if val:
        arrays.update(val_images=_u8(Xv), val_labels=yv[:, None])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def _manifest(folder: Path, n: int = 24, n_val: int = 8, labels=None) -> tuple[Path, pd.DataFrame]:
    """PNG images named after their (synthetic) patients plus ``manifest.csv``; balanced labels."""
    y = np.array([0, 1] * (n // 2)) if labels is None else np.asarray(labels)
    X, _, meta = make_lesion_images(labels=np.clip(y, 0, 1), size=16, seed=3,
                                    ids=[f"PAT{i:04d}" for i in range(len(y))])
    splits = ["train"] * (len(y) - n_val) + ["val"] * n_val
    man = write_lesion_manifest(folder, X, y, meta.index.tolist(), splits=splits)
    return folder / "manifest.csv", man


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A trained one-epoch model folder and its npz (shared by the predict/explain/embed cases)."""
    from pmed.imaging.workflow import train_from_file

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("imaging_model")
    npz = _npz(d / "data" / "lesions.npz")
    train_from_file(npz, d / "m", arch="cnn", width=0.25, epochs=1, batch_size=16, n_boot=10, augment=False,
                    device="cpu")
    return d / "m", npz


def _copy_model(model, tmp_path) -> tuple[Path, Path]:
    m, npz = model
    shutil.copytree(m, tmp_path / "m")
    shutil.copy2(npz, tmp_path / "lesions.npz")
    return tmp_path / "m", tmp_path / "lesions.npz"


def _dicom(folder: Path, name: str = "CT_small.dcm") -> Path:
    src = Path(pydicom.__file__).parent / "data" / "test_files" / name
    if not src.exists():
        pytest.skip(f"pydicom test file {name} is absent")
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(src, folder / name))


# ------------------------------------------------------------------------------------- silent

@bad_input("silent")
def test_one_stray_label_in_a_binary_manifest_is_refused(capsys, tmp_path):
    labels = [0, 1] * 12
    labels[6] = 7  # manifest line 8
    man, df = _manifest(tmp_path / "data", labels=labels)
    head = refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST],
                   code=2, says=r"column 'label': class 7 has only 1 training image in all \(line 8\)",
                   out=tmp_path / "out", secrets=[df.loc[6, "patient_id"]])
    assert "manifest.csv" in head and not (tmp_path / "out").exists()


@bad_input("silent")
def test_a_stray_label_trains_only_when_the_classes_are_declared(capsys, tmp_path):
    labels = [0, 1] * 12
    labels[6] = 7
    man, _ = _manifest(tmp_path / "data", labels=labels)
    # declared without 7: the 7 is named as outside the declared classes
    refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST,
                               "--classes", "0,1"],
            code=2, says=r"1 training images have a label \(7\) outside the declared classes \(line 8\)",
            out=tmp_path / "out")
    # declared with 7: the user said so, a 3-class model is trained
    rc, text = run_cli(capsys, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST,
                                "--classes", "0,1,7"])
    assert rc == 0, text
    assert json.loads((tmp_path / "out" / "config.json").read_text())["classes"] == [0, 1, 7]


@bad_input("silent")
def test_unlabelled_training_images_are_refused_with_their_lines(capsys, tmp_path):
    man, _ = _manifest(tmp_path / "data")
    df = pd.read_csv(man, dtype=str, keep_default_na=False)
    df.loc[[2, 5], "label"] = ["", "NA"]  # lines 4 and 7
    df.to_csv(man, index=False)
    refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST],
            code=2, says=r"column 'label': 2 of 16 training images \(split 'train'\) have no label \(lines 4, 7\)",
            out=tmp_path / "out")


@bad_input("silent")
def test_a_label_column_of_probabilities_is_refused(capsys, tmp_path):
    man, _ = _manifest(tmp_path / "data")
    df = pd.read_csv(man, dtype=str)
    df["label"] = np.where(np.arange(len(df)) % 2 == 0, "0.3", "0.7")
    df.to_csv(man, index=False)
    refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST],
            code=4, says=r"column 'label': 24 values are not an integer class \(lines 2, 3, .*24 in all\)",
            out=tmp_path / "out")


@bad_input("silent")
def test_nan_labels_in_an_npz_are_refused(capsys, tmp_path):
    y = np.array([0, 1] * 12, dtype=float)
    y[[3, 10]] = np.nan
    npz = _npz(tmp_path / "d.npz", train_labels=y)
    refused(capsys, tmp_path, ["imaging", "train", "--data", npz, "--out", tmp_path / "out", *FAST],
            code=4, says=r"key 'train_labels': 2 values are not integer classes .*indices 3, 10",
            out=tmp_path / "out")


@bad_input("silent")
def test_validation_labels_unseen_in_training_are_refused(capsys, tmp_path):
    labels = [0, 1] * 12
    labels[20] = 2  # a val row, line 22
    man, _ = _manifest(tmp_path / "data", labels=labels)
    refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST],
            code=2, says=r"1 validation images have a label \(2\) that no training image has \(line 22\)",
            out=tmp_path / "out")


@bad_input("silent")
def test_partly_unlabelled_validation_split_is_refused(capsys, tmp_path):
    man, _ = _manifest(tmp_path / "data")
    df = pd.read_csv(man, dtype=str, keep_default_na=False)
    df.loc[19, "label"] = ""  # line 21: before, one empty label switched validation off silently
    df.to_csv(man, index=False)
    refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST],
            code=2, says=r"1 of 8 validation images \(split 'val'\) have no label \(line 21\)", out=tmp_path / "out")


@bad_input("silent")
def test_a_misspelt_validation_split_is_refused(capsys, tmp_path):
    npz = _npz(tmp_path / "d.npz")
    refused(capsys, tmp_path, ["imaging", "train", "--data", npz, "--out", tmp_path / "out", *FAST,
                               "--val-split", "valid"],
            code=2, says=r"no split 'valid' \(splits present: 'train', 'val', 'test'\)", out=tmp_path / "out")


# ------------------------------------------------------------------------------------- broken

@bad_input("broken")
def test_truncated_dicom_is_not_deidentified(capsys, tmp_path):
    f = _dicom(tmp_path / "in")
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 3])
    out, mapping = tmp_path / "out", tmp_path / "keys" / "map.csv"
    head = refused(capsys, tmp_path, ["imaging", "deidentify", f, out, "--mapping", mapping], code=2,
                   says=r"CT_small\.dcm: tag \(7FE0,0010\): the DICOM file is truncated: its pixel data holds "
                        r"\d+ of the 32768 bytes", out=[out, mapping])
    assert not out.exists() and not mapping.exists(), head


@bad_input("broken")
def test_truncated_dicom_in_a_folder_stops_the_whole_batch(capsys, tmp_path):
    good = _dicom(tmp_path / "in" / "Doe^John", "MR_small.dcm")
    bad = _dicom(tmp_path / "in" / "Doe^John", "CT_small.dcm")
    bad.write_bytes(bad.read_bytes()[:-5000])
    out, mapping = tmp_path / "out", tmp_path / "map.csv"
    refused(capsys, tmp_path, ["imaging", "deidentify", tmp_path / "in", out, "--mapping", mapping], code=2,
            says=r"in: file 1 of 2 \(sorted by path\): the DICOM file is truncated", out=[out, mapping],
            secrets=["Doe^John", "CT_small"])
    assert not out.exists() and not mapping.exists() and good.exists()


@bad_input("broken")
def test_truncated_dicom_pixel_data_is_refused_by_the_training_reader(capsys, tmp_path):
    from pmed.imaging.readers import read_dicom

    f = _dicom(tmp_path, "MR_small.dcm")
    f.write_bytes(f.read_bytes()[:-3000])
    with pytest.raises(Exception, match=r"truncated") as e:
        read_dicom(f)
    assert type(e.value).__name__ == "InputError" and "MR_small.dcm" in str(e.value)


@pytest.mark.parametrize("kind", ["corrupt_png", "truncated_png", "truncated_nii"])
@bad_input("broken")
def test_broken_image_in_a_manifest_names_the_manifest_line(capsys, tmp_path, kind):
    man, df = _manifest(tmp_path / "data")
    img = man.parent / df.loc[4, "path"]  # manifest line 6
    if kind == "corrupt_png":
        img.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2)
        says = r"line 6, column 'path': the image file is damaged or not an image"
    elif kind == "truncated_png":
        img.write_bytes(img.read_bytes()[: len(img.read_bytes()) // 2])
        says = r"line 6, column 'path': the image file is truncated"
    else:
        nib = pytest.importorskip("nibabel")
        nii = img.with_suffix(".nii.gz")
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 4)).astype(np.float32), np.eye(4)), nii)
        nii.write_bytes(nii.read_bytes()[: len(nii.read_bytes()) // 2])
        img.unlink()
        m = pd.read_csv(man)
        m.loc[4, "path"] = str(Path(df.loc[4, "path"]).with_suffix(".nii.gz"))
        m.to_csv(man, index=False)
        says = r"line 6, column 'path': the NIfTI file is truncated"
    refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST], code=2,
            says=r"manifest\.csv: " + says, out=tmp_path / "out", secrets=[df.loc[4, "patient_id"]])


@bad_input("broken")
def test_predict_on_a_truncated_dicom_refuses(capsys, tmp_path, model):
    m, _ = _copy_model(model, tmp_path)
    f = _dicom(tmp_path / "data", "MR_small.dcm")
    f.write_bytes(f.read_bytes()[:-2000])
    pd.DataFrame({"patient_id": ["P1"], "path": [f.name], "label": [1], "split": ["test"]}).to_csv(
        tmp_path / "data" / "m.csv", index=False)
    refused(capsys, tmp_path, ["imaging", "predict", "--model", m, "--data", tmp_path / "data" / "m.csv",
                               "--out", tmp_path / "p.csv"],
            code=2, says=r"m\.csv: line 2, column 'path': the DICOM file is truncated", out=tmp_path / "p.csv")


# -------------------------------------------------------------------------------------- mixed

@bad_input("mixed")
def test_train_refuses_a_folder_holding_something_else(capsys, tmp_path):
    npz = _npz(tmp_path / "d.npz")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    refused(capsys, tmp_path, ["imaging", "train", "--data", npz, "--out", tmp_path / "out", *FAST],
            code=2, says="not empty and does not hold an earlier imaging training output")


@bad_input("mixed")
def test_train_rerun_replaces_the_earlier_output_whole(capsys, tmp_path):
    out = tmp_path / "out"
    rc, text = run_cli(capsys, ["imaging", "train", "--data", _npz(tmp_path / "a.npz"), "--out", out, *FAST])
    assert rc == 0 and (out / "val_predictions.csv").exists() and (out / "evaluation").is_dir(), text
    # the second data set has no validation split: the first run's validation files must go
    with pytest.warns(UserWarning, match="no split 'val'"):
        rc, text = run_cli(capsys, ["imaging", "train", "--data", _npz(tmp_path / "b.npz", val=False),
                                    "--out", out, *FAST])
    assert rc == 0, text
    assert not (out / "val_predictions.csv").exists() and not (out / "evaluation").exists()
    assert json.loads((out / "provenance.json").read_text())["inputs"][0]["path"].endswith("b.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "out"]  # no staging left


@bad_input("mixed")
def test_explain_rerun_replaces_and_refuses_a_foreign_folder(capsys, tmp_path, model):
    m, npz = _copy_model(model, tmp_path)
    out = tmp_path / "maps"
    assert run_cli(capsys, ["imaging", "explain", "--model", m, "--data", npz, "--n", "3", "--out", out])[0] == 0
    assert run_cli(capsys, ["imaging", "explain", "--model", m, "--data", npz, "--n", "1", "--out", out])[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["provenance.json", "val_0_gradcam.png"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.csv").write_text("a\n1\n")
    refused(capsys, tmp_path, ["imaging", "explain", "--model", m, "--data", npz, "--out", tmp_path / "other"],
            code=2, says="not empty and does not hold an earlier explain output")


@bad_input("mixed")
def test_deidentify_replaces_an_earlier_output_whole_only_with_overwrite(capsys, tmp_path):
    _dicom(tmp_path / "a", "CT_small.dcm")
    _dicom(tmp_path / "a", "MR_small.dcm")
    _dicom(tmp_path / "b", "MR_small.dcm")
    out, mapping = tmp_path / "out", tmp_path / "keys" / "map.csv"
    assert run_cli(capsys, ["imaging", "deidentify", tmp_path / "a", out, "--mapping", mapping])[0] == 0
    assert len(list(out.rglob("*.dcm"))) == 2
    refused(capsys, tmp_path, ["imaging", "deidentify", tmp_path / "b", out, "--mapping", mapping],
            code=2, says="holds an earlier de-identified output", out=[out, mapping])
    assert run_cli(capsys, ["imaging", "deidentify", tmp_path / "b", out, "--mapping", mapping,
                            "--overwrite"])[0] == 0
    assert len(list(out.rglob("*.dcm"))) == 1  # the first batch's CT is not mixed in
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    refused(capsys, tmp_path, ["imaging", "deidentify", tmp_path / "b", tmp_path / "mine", "--mapping", mapping,
                               "--overwrite"],
            code=2, says="not empty and does not hold an earlier de-identified output", out=[mapping])


# ---------------------------------------------------------------------------------- overwrite

@bad_input("overwrite")
def test_train_out_holding_the_data_is_refused(capsys, tmp_path):
    npz = _npz(tmp_path / "work" / "d.npz")
    refused(capsys, tmp_path, ["imaging", "train", "--data", npz, "--out", tmp_path / "work", *FAST],
            code=2, says=r"the input 'd\.npz' lies inside the output folder")


@bad_input("overwrite")
def test_train_out_holding_manifest_images_is_refused(capsys, tmp_path):
    man, _ = _manifest(tmp_path / "data")
    shutil.move(man, tmp_path / "manifest.csv")
    m = pd.read_csv(tmp_path / "manifest.csv")
    m["path"] = "data/" + m["path"]
    m.to_csv(tmp_path / "manifest.csv", index=False)
    refused(capsys, tmp_path, ["imaging", "train", "--data", tmp_path / "manifest.csv", "--out", tmp_path / "data",
                               *FAST], code=2, says=r"24 image files the manifest lists \(lines 2, 3, .*\) lie inside the output folder",
            secrets=["PAT0000"])


@pytest.mark.parametrize("cmd", ["predict", "embed"])
@bad_input("overwrite")
def test_table_out_may_not_replace_the_data_or_sit_in_the_model(capsys, tmp_path, model, cmd):
    m, npz = _copy_model(model, tmp_path)
    man, _ = _manifest(tmp_path / "data")
    refused(capsys, tmp_path, ["imaging", cmd, "--model", m, "--data", man, "--out", man],
            code=2, says="this output is the input 'manifest.csv'")
    refused(capsys, tmp_path, ["imaging", cmd, "--model", m, "--data", npz, "--out", m / "p.csv"],
            code=2, says="inside the model folder")


@bad_input("overwrite")
def test_explain_out_holding_the_model_is_refused(capsys, tmp_path, model):
    m, npz = _copy_model(model, tmp_path)
    refused(capsys, tmp_path, ["imaging", "explain", "--model", m, "--data", npz, "--out", tmp_path],
            code=2, says=r"the input 'm' lies inside the output folder")
    refused(capsys, tmp_path, ["imaging", "explain", "--model", m, "--data", npz, "--out", m / "maps"],
            code=2, says="inside the model folder")


@bad_input("overwrite")
def test_deidentify_refuses_outputs_over_its_inputs(capsys, tmp_path):
    f = _dicom(tmp_path / "in")
    refused(capsys, tmp_path, ["imaging", "deidentify", f, tmp_path / "o.dcm", "--mapping", f],
            code=2, says="this output is the input 'CT_small.dcm'")
    refused(capsys, tmp_path, ["imaging", "deidentify", tmp_path / "in", tmp_path, "--mapping",
                               tmp_path.parent / f"{tmp_path.name}-map.csv"],
            code=2, says="the input lies inside the output folder")
    refused(capsys, tmp_path, ["imaging", "deidentify", tmp_path / "in", tmp_path / "out", "--mapping",
                               tmp_path / "in" / "map.csv"],
            code=2, says="mapping would be written into the input folder")


# ------------------------------------------------------------------------------------ options

GARBAGE = b"not an npz: the options must be refused before this is read"


@pytest.mark.parametrize(("opt", "value", "says"), [
    ("--epochs", "0", "epochs"), ("--lr", "-1", "lr"), ("--lr", "0", "lr"), ("--batch-size", "0", "batch-size"),
    ("--size", "0", "size"), ("--size", "2", "size"), ("--width", "0", "width"), ("--width", "100", "width"),
    ("--seed", "-1", "seed"), ("--n-jobs", "0", "n-jobs"), ("--bootstrap", "-1", "bootstrap"),
    ("--patience", "-1", "patience"), ("--classes", "1", "classes"), ("--classes", "0,x", "classes"),
    ("--classes", "0,0", "classes"), ("--arch", "vgg", "arch"), ("--class-weight", "x", "class-weight"),
    ("--val-split", "train", "val_split and train_split"), ("--device", "gpu", "device"),
])
@bad_input("options")
def test_train_options_are_checked_before_the_data(capsys, tmp_path, opt, value, says):
    (tmp_path / "d.npz").write_bytes(GARBAGE)
    refused(capsys, tmp_path, ["imaging", "train", "--data", tmp_path / "d.npz", "--out", tmp_path / "o",
                               opt, value], code=2, says=says)


@pytest.mark.parametrize(("cmd", "opt", "value", "says"), [
    ("predict", "--batch-size", "0", "batch-size"), ("predict", "--out", "p.xlsx", "extension"),
    ("predict", "--device", "gpu", "device"), ("embed", "--components", "0", "components"),
    ("embed", "--out", "e.json", "extension"), ("explain", "--n", "0", "'--n'"),
    ("explain", "--method", "lime", "method"),
])
@bad_input("options")
def test_inference_options_are_checked_before_the_model(capsys, tmp_path, cmd, opt, value, says):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pt").write_bytes(GARBAGE)  # a read would say "damaged", not the option
    (tmp_path / "d.npz").write_bytes(GARBAGE)
    argv = ["imaging", cmd, "--model", tmp_path / "m", "--data", tmp_path / "d.npz"]
    if opt == "--out":
        argv += ["--out", tmp_path / value]
    else:
        argv += ["--out", tmp_path / ("maps" if cmd == "explain" else "t.csv"), opt, value]
    refused(capsys, tmp_path, argv, code=2, says=says)


@bad_input("options")
def test_the_api_checks_the_same_values(tmp_path):
    from pmed.imaging.api import run_imaging
    from pmed.imaging.workflow import (
        embed_from_file,
        explain_from_file,
        predict_from_file,
        train_from_file,
    )

    d = tmp_path / "absent.npz"
    cases = [
        (lambda: train_from_file(d, tmp_path / "o", epochs=0), "epochs"),
        (lambda: train_from_file(d, tmp_path / "o", width=100.0), "width"),
        (lambda: train_from_file(d, tmp_path / "o", classes=[1]), "classes"),
        (lambda: run_imaging(d, val_split="train"), "val_split"),
        (lambda: run_imaging(d, classes=[0, True]), "classes"),
        (lambda: predict_from_file(tmp_path, d, tmp_path / "p.csv", batch_size=0), "batch_size"),
        (lambda: predict_from_file(tmp_path, d, tmp_path / "p.xlsx"), "extension"),
        (lambda: explain_from_file(tmp_path, d, tmp_path / "x", n=0), "n must"),
        (lambda: embed_from_file(tmp_path, d, tmp_path / "e.csv", n_components=0), "n_components"),
        (lambda: embed_from_file(tmp_path, d, tmp_path / "e.csv", device="gpu"), "device"),
    ]
    for call, says in cases:
        with pytest.raises(OptionError, match=says):
            call()
    assert not (tmp_path / "o").exists()


# -------------------------------------------------------------------------------- identifiers

@bad_input("identifiers")
def test_missing_manifest_images_are_counted_not_named(capsys, tmp_path):
    man, df = _manifest(tmp_path / "data")
    for i in (3, 9):
        (man.parent / df.loc[i, "path"]).unlink()
    refused(capsys, tmp_path, ["imaging", "train", "--data", man, "--out", tmp_path / "out", *FAST], code=4,
            says=r"column 'path': 2 image files are not found .*lines 5, 11\)", out=tmp_path / "out",
            secrets=[df.loc[3, "patient_id"], df.loc[9, "patient_id"]])


@bad_input("identifiers")
def test_explain_does_not_echo_an_unknown_id(capsys, tmp_path, model):
    m, npz = _copy_model(model, tmp_path)
    refused(capsys, tmp_path, ["imaging", "explain", "--model", m, "--data", npz, "--id", "val_1",
                               "--id", "MRN-0042-SMITH", "--out", tmp_path / "maps"],
            code=2, says=r"1 of 2 --id values is not in split 'val' \(--id number 2\)", out=tmp_path / "maps",
            secrets=["MRN-0042-SMITH", "val_0"])


# ------------------------------------------------------------------------ integrity, diagnosis

@bad_input("integrity")
def test_predict_refuses_a_model_edited_after_training(capsys, tmp_path, model):
    m, npz = _copy_model(model, tmp_path)
    with open(m / "model.pt", "ab") as f:
        f.write(b"\0")
    refused(capsys, tmp_path, ["imaging", "predict", "--model", m, "--data", npz, "--out", tmp_path / "p.csv"],
            code=7, says=r"model\.pt does not match the SHA-256", out=tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()


@bad_input("diagnosis")
def test_an_unknown_device_is_not_reported_as_a_damaged_model(capsys, tmp_path, model):
    m, npz = _copy_model(model, tmp_path)
    head = refused(capsys, tmp_path, ["imaging", "predict", "--model", m, "--data", npz, "--out", tmp_path / "p.csv",
                                      "--device", "gpu"], code=2, says=r"unknown device 'gpu'")
    assert "damaged" not in head


@bad_input("diagnosis")
def test_truncated_native_dicom_is_not_blamed_on_a_missing_decoder(capsys, tmp_path):
    f = _dicom(tmp_path / "data", "MR_small.dcm")
    # the pixel data element claims fewer bytes than Rows×Columns×… need: a cut re-sized by a tool
    ds = pydicom.dcmread(f)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(f)
    pd.DataFrame({"patient_id": ["P1", "P2"], "path": [f.name, f.name], "label": [0, 1]}).to_csv(
        tmp_path / "data" / "m.csv", index=False)
    head = refused(capsys, tmp_path, ["imaging", "train", "--data", tmp_path / "data" / "m.csv", "--out",
                                      tmp_path / "out", *FAST],
                   code=2, says=r"line 2, column 'path': the DICOM file is truncated: its pixel data hold 4096 of "
                                r"the 8192 bytes", out=tmp_path / "out")
    assert "decoder" not in head
