"""A study's output folder is replaced whole: never a mix of two runs, never a half bundle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_study
from pmed.errors import BundleError, StudyError
from pmed.study import load_bundle, run_study


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# byte-identical across two runs of one study (the bundle's zip and the HTML carry run times)
_DETERMINISTIC = ("metrics.json", "oof_predictions.csv", "feature_importance.csv")


def _same_run(now: dict[str, bytes], ref: dict[str, bytes]) -> bool:
    return set(now) == set(ref) and all(now[f] == ref[f] for f in _DETERMINISTIC)


def test_rerun_leaves_no_stale_outputs(clinical_files, tmp_path):
    out = tmp_path / "out"
    run_study(write_study(tmp_path, models=("linear",)), out)
    assert (out / "evaluation" / "report.html").exists()  # binary studies write an evaluation
    # a continuous study into the same folder: the binary study's evaluation must not linger
    r = run_study(write_study(tmp_path, target="sbp", task="continuous", models=("linear",)), out)
    assert not (out / "evaluation").exists()
    assert json.loads((out / "metrics.json").read_text())["task"] == "continuous"
    assert r.out_dir == out and r.bundle_path == out / "model"
    assert load_bundle(r.bundle_path).manifest["task"] == "continuous"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp folder left


def test_refuses_a_folder_that_is_not_a_study_output(clinical_files, tmp_path):
    study = write_study(tmp_path, models=("linear",))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(StudyError, match="not empty"):
        run_study(study, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(StudyError, match="is a file"):
        run_study(study, tmp_path / "file")


def test_failed_run_keeps_the_previous_outputs(clinical_files, tmp_path):
    out = tmp_path / "out"
    run_study(write_study(tmp_path, models=("linear",)), out)
    before = _snapshot(out)
    bad = write_study(tmp_path, models=("linear",), extra="features: {include: [no_such_column]}\n")
    with pytest.raises(Exception):  # noqa: B017 - whatever the failure, the folder must survive
        run_study(bad, out)
    assert _snapshot(out) == before


def test_sigkill_during_rerun_leaves_previous_bundle_or_none(clinical_files, tmp_path):
    """kill -9 at several moments of a re-run: the folder is run A's, run B's, or absent."""
    out = tmp_path / "out"
    run_study(write_study(tmp_path, models=("linear",)), out)
    saved_a = tmp_path / "saved_a"
    shutil.copytree(out, saved_a)
    a = _snapshot(out)
    study_b = write_study(tmp_path, target="sbp", task="continuous", models=("linear",))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "pmed", "run", str(study_b), "--out", str(out)]
    # how long an uninterrupted run B takes, then kills spread over that time
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    full = time.monotonic() - t0
    b = _snapshot(out)
    seen = set()
    for frac in (0.4, 0.75, 0.9, 0.97):
        shutil.rmtree(out)
        shutil.copytree(saved_a, out)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * frac)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not out.exists():
            seen.add("none")
            with pytest.raises(BundleError):
                load_bundle(out / "model")
            continue
        now = _snapshot(out)
        assert now == a or _same_run(now, b), (
            f"kill at {frac:.0%} left a folder that is neither run A nor a complete run B")
        seen.add("a" if now == a else "b")
        load_bundle(out / "model")  # a complete run's bundle loads
    assert seen, "no kill was observed"
