"""Fusion on scikit-survival's breast_cancer (genes + clinical): benchmarks/fusion_realdata.py's first part."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sksurv")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fusion_realdata.py"


def _script():
    spec = importlib.util.spec_from_file_location("fusion_realdata", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.realdata
def test_breast_cancer_late_fusion(tmp_path):
    out = _script().run_breast_cancer(tmp_path, ["late"])
    # 5-year distant metastasis: 9 patients censored before day 1826 without it are left out
    assert out["counts"] == {"n_all": 198, "n_excluded": 9, "n": 189, "n_events": 35,
                             "n_grade_unknown": 2, "n_genes": 76}
    run = out["runs"]["late"]
    fu = run["fusion"]
    assert run["n_patients"] == 189 and run["select_by"] == "auroc"
    assert [len(fu["modalities"][m]) for m in ("genes", "clinical")] == [76, 4]
    assert fu["modalities"]["clinical"] == ["age", "er", "grade", "size"]
    assert fu["availability"] == {"genes": 189, "clinical": 189} and fu["n_without_any"] == 0
    auc = {m: s["metrics"]["auroc"]["estimate"] for m, s in fu["single"].items()}
    fused = fu["fused"]["metrics"]["auroc"]["estimate"]
    assert fused > 0.6  # the genes carry signal (0.671 when written)
    p = fu["paired"]
    assert p["best_single"] == max(auc, key=auc.get) and "DeLong" in p["method"]
    assert p["estimate"] == pytest.approx(fused - auc[p["best_single"]], abs=1e-9)
    # two modalities: the fused model without genes is the clinical model alone
    assert fu["without"]["genes"]["metrics"]["auroc"]["estimate"] == auc["clinical"]
    assert set(fu["masked"]) == {"genes", "clinical"}
    assert all(0.2 * 189 < d["n_masked"] < 0.4 * 189 for d in fu["masked"].values())
