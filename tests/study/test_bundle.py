import json

import pandas as pd
import pytest

from conftest import write_study
from pmed.errors import BundleError
from pmed.study import load_bundle, run_study
from pmed.study.bundle import SUMS_NAME, write_sums


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    from conftest import SCHEMA_YAML, make_clinical

    d = tmp_path_factory.mktemp("b")
    make_clinical().to_csv(d / "patients.csv", index=False)
    (d / "schema.yaml").write_text(SCHEMA_YAML)
    return run_study(write_study(d), d / "out").bundle_path


def test_manifest_contents(bundle_dir):
    b = load_bundle(bundle_dir)
    m = b.manifest
    assert m["task"] == "binary" and m["target"] == "event"
    assert len(m["training_data"]["fingerprint_sha256"]) == 64
    assert m["versions"]["scikit-learn"] and m["versions"]["pmed"]
    assert m["features"] == ["age", "sex", "bmi", "smoking", "diabetes", "crp"]
    assert "name: test-event" in (bundle_dir / "study.yaml").read_text()
    assert m["metrics"]["metrics"]["auroc"]["estimate"] > 0.5


def test_tampered_pipeline_is_refused(bundle_dir, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(bundle_dir, d)
    with open(d / "pipeline.skops", "ab") as f:
        f.write(b"x")
    with pytest.raises(BundleError, match="does not match the SHA-256"):
        load_bundle(d)


def test_stale_versions_are_refused(bundle_dir, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(bundle_dir, d)
    m = json.loads((d / "manifest.json").read_text())
    m["versions"]["scikit-learn"] = "0.24.2"
    (d / "manifest.json").write_text(json.dumps(m))
    write_sums(d)  # as a bundle written under those versions would be: sealed, yet stale
    with pytest.raises(BundleError, match=r"scikit-learn 0.24.2 \(installed: "):
        load_bundle(d)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a pmed model bundle"):
        load_bundle(tmp_path)


# ---------------------------------------------------------------- every file is covered (issue 16)

def _copy(bundle_dir, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(bundle_dir, d)
    return d


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_sums_cover_every_file(bundle_dir):
    listed = [line.split("  ", 1)[1] for line in (bundle_dir / SUMS_NAME).read_text().splitlines()]
    assert sorted(listed) == ["manifest.json", "pipeline.skops", "study.yaml"]


def test_threshold_edit_in_manifest_is_refused(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    text = (d / "manifest.json").read_text()
    thr = json.loads(text)["threshold"]
    old = f'"threshold": {json.dumps(thr)}'
    assert old in text
    # one semantic edit, as an attacker or a slip would make it; the JSON stays valid
    (d / "manifest.json").write_text(text.replace(old, '"threshold": 0.9', 1))
    with pytest.raises(BundleError, match="manifest.json does not match the SHA-256") as e:
        load_bundle(d)
    assert "modified after it was written; retrain or restore it" in str(e.value)
    assert e.value.exit_code == 7


@pytest.mark.parametrize("name", ["manifest.json", "pipeline.skops", "study.yaml"])
def test_one_byte_edit_of_any_file_is_refused(bundle_dir, tmp_path, name):
    d = _copy(bundle_dir, tmp_path)
    _flip_byte(d / name, len((d / name).read_bytes()) // 2)
    with pytest.raises(BundleError, match=f"{name} does not match the SHA-256"):
        load_bundle(d)


def test_added_file_is_refused(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    (d / "reference.csv").write_text("a\n1\n")
    with pytest.raises(BundleError, match="not written with the bundle: reference.csv"):
        load_bundle(d)


@pytest.mark.parametrize("name", ["study.yaml", SUMS_NAME])
def test_removed_file_is_refused(bundle_dir, tmp_path, name):
    d = _copy(bundle_dir, tmp_path)
    (d / name).unlink()
    with pytest.raises(BundleError, match=name):
        load_bundle(d)


def test_edited_sums_file_is_refused(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    sums = d / SUMS_NAME
    # dropping a line does not hide a file: it becomes an unlisted (extra) file
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines()
                            if not line.endswith("study.yaml")))
    with pytest.raises(BundleError, match="study.yaml"):
        load_bundle(d)
    sums.write_text("not a checksum line\n")
    with pytest.raises(BundleError, match="line 1"):
        load_bundle(d)


def test_format_1_bundle_is_refused_with_retrain(bundle_dir, tmp_path):
    d = _copy(bundle_dir, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["version"] = 1
    (d / "manifest.json").write_text(json.dumps(m))
    (d / SUMS_NAME).unlink()
    with pytest.raises(BundleError, match="format version 1 is not supported") as e:
        load_bundle(d)
    assert "retrain" in str(e.value)


def test_untouched_bundle_loads_and_predicts(bundle_dir, tmp_path):
    from conftest import make_clinical

    d = _copy(bundle_dir, tmp_path)
    a, b = load_bundle(bundle_dir), load_bundle(d)
    X = make_clinical().set_index("patient_id").head(20)
    pd.testing.assert_frame_equal(a.predict(X), b.predict(X))
