"""The GDSC Nutlin-3a example study on real data: the models must rediscover p53 biology.

Runs ``examples/gdsc_nutlin.yaml`` through the API, trimmed for CI to the two baselines and the
random forest with 100 bootstrap resamples (the full study is in ``docs/results/gdsc.md``).
Nutlin-3a inhibits MDM2, which only kills cells whose p53 is intact, so ``TP53_mut`` must be
the most important feature.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from pmed.datasets import shared_data_dir
from pmed.datasets.gdsc import GDSC_SUBDIR
from pmed.study import run_study
from pmed.study.spec import Study

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gdsc_nutlin.yaml"
KEEP = ("mean", "tissue_only", "random_forest")

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def nutlin(tmp_path_factory: pytest.TempPathFactory):
    root = shared_data_dir() / GDSC_SUBDIR
    needed = [root / "IC50_v17.csv.gz", root / "genomic_features_v17.csv.gz"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        pytest.skip(f"GDSC v17 reference data not found: {', '.join(missing)} (set PMED_SHARED)")
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"] = [m for m in raw["models"] if m.get("name", m["family"]) in KEEP]
    raw["evaluation"]["bootstrap"] = 100
    study = Study.model_validate(raw)
    study.base_dir = EXAMPLE.parent
    study.source_text = yaml.safe_dump(raw, sort_keys=False)
    out = tmp_path_factory.mktemp("gdsc_nutlin")
    return run_study(study, out)


def _r2(result, model: str) -> dict:
    return result.metrics["models"][model]["metrics"]["r2"]


def test_trimmed_study_keeps_the_example_models(nutlin):
    assert list(nutlin.metrics["models"]) == list(KEEP)
    assert nutlin.metrics["cv"]["folds"] == 5
    assert nutlin.metrics["n_patients"] == 846


def test_tp53_mut_ranks_first(nutlin):
    imp = pd.read_csv(nutlin.out_dir / "feature_importance.csv")
    assert nutlin.selected == "random_forest"
    assert imp.loc[imp["rank"] == 1, "feature"].tolist() == ["TP53_mut"]
    assert imp.sort_values("rank")["feature"].iloc[0] == "TP53_mut"


def test_random_forest_beats_both_baselines(nutlin):
    rf, tissue, mean = (_r2(nutlin, m) for m in ("random_forest", "tissue_only", "mean"))
    assert rf["estimate"] > tissue["estimate"] > mean["estimate"]
    # not only the point estimates: the intervals do not overlap
    assert rf["ci_low"] > tissue["ci_high"]


def test_mean_baseline_explains_nothing(nutlin):
    assert _r2(nutlin, "mean")["estimate"] <= 0.01
