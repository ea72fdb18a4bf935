import json

import pytest

from conftest import write_study
from pmed.errors import BundleError
from pmed.study import load_bundle, run_study


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
    with pytest.raises(BundleError, match=r"scikit-learn 0.24.2 \(installed: "):
        load_bundle(d)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a pmed model bundle"):
        load_bundle(tmp_path)
