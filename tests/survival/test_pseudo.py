"""Jackknife pseudo-observations of 1 − Kaplan–Meier at a horizon (pmed.survival.pseudo).

Reference: tests/fixtures/r/make_pseudo_observations.R (committed CSV, so CI needs no R) on R's
``lung`` at 180/365/730 days and on a small data set with events and censorings tied at the
same times and everyone at risk failing at the last time. ``jackknife`` there is the definition
(survfit refitted without each patient), ``prodlim`` is ``prodlim::jackknife``; ``ij`` is
``survival::pseudo``, the infinitesimal jackknife, a different (approximate) quantity.
"""

from __future__ import annotations

import shutil
import subprocess
import time as clock
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pmed.errors import ValidationError
from pmed.survival.pseudo import pseudo_observations

R_DIR = Path(__file__).parents[1] / "fixtures" / "r"
REF = pd.read_csv(R_DIR / "pseudo_observations.csv")
CASES = sorted({(d, float(h)) for d, h in zip(REF["dataset"], REF["horizon"], strict=True)})


def _km_naive(t: np.ndarray, e: np.ndarray, h: float) -> float:
    """Kaplan–Meier at h by its definition (events before censorings at a tie)."""
    s = 1.0
    for u in np.unique(t[e & (t <= h)]):
        s *= 1.0 - np.sum(e & (t == u)) / np.sum(t >= u)
    return s


@pytest.mark.parametrize(("dataset", "horizon"), CASES)
def test_equals_r_leave_one_out_jackknife(dataset, horizon):
    g = REF[(REF["dataset"] == dataset) & (REF["horizon"] == horizon)]
    p = pseudo_observations(g["time"].to_numpy(), g["event"].to_numpy(), horizon)
    np.testing.assert_allclose(p, g["jackknife"].to_numpy(), rtol=0, atol=1e-10)
    have = g["prodlim"].notna().to_numpy()  # prodlim predicts nothing beyond the last time
    np.testing.assert_allclose(p[have], g["prodlim"].to_numpy()[have], rtol=0, atol=1e-10)


def test_close_to_r_infinitesimal_jackknife_on_lung():
    # survival::pseudo is the first-order (IJ) approximation: close, not equal, on 228 patients
    g = REF[REF["dataset"] == "lung"]
    p = np.concatenate([pseudo_observations(x["time"], x["event"], h) for h, x in g.groupby("horizon")])
    diff = np.abs(p - g.sort_values("horizon", kind="mergesort")["ij"].to_numpy())
    assert 1e-4 < diff.max() < 0.02


def test_equals_naive_leave_one_out_with_heavy_ties():
    rng = np.random.default_rng(3)
    t = rng.integers(1, 12, 150).astype(float)  # 11 distinct times: many ties of both kinds
    e = rng.random(150) < 0.5
    for h in (0.5, 1, 4, 6.5, 11, 20):
        n = len(t)
        f = 1 - _km_naive(t, e, h)
        naive = np.array([n * f - (n - 1) * (1 - _km_naive(np.delete(t, i), np.delete(e, i), h)) for i in range(n)])
        np.testing.assert_allclose(pseudo_observations(t, e, h), naive, rtol=0, atol=1e-11)


def test_no_censoring_gives_the_event_indicator():
    rng = np.random.default_rng(0)
    t = np.round(rng.exponential(5.0, 500), 1)  # rounded: ties
    for h in (0.05, 1.0, 3.3, 5.0, 12.0, 100.0):
        p = pseudo_observations(t, np.ones_like(t), h)
        np.testing.assert_allclose(p, (t <= h).astype(float), rtol=0, atol=1e-12)


def test_censoring_after_the_horizon_changes_nothing():
    # no censoring before h: the indicator is observed for everyone, so the pseudo-values are it
    t = np.array([1, 2, 2, 3, 5, 6, 7, 8], dtype=float)
    e = np.array([1, 1, 0, 1, 0, 1, 0, 1], dtype=bool)
    e_late = e.copy()
    e_late[t > 1.5] = False
    assert pseudo_observations(t, e_late, 1.5).tolist() == pseudo_observations(t, e, 1.5).tolist()
    np.testing.assert_allclose(pseudo_observations(t, e, 1.5), (t <= 1.5).astype(float), atol=1e-12)


def test_horizons_outside_the_data():
    t = np.array([2, 3, 3, 4, 6, 9], dtype=float)
    e = np.array([1, 0, 1, 1, 1, 0])
    assert pseudo_observations(t, e, 1.0).tolist() == [0.0] * 6  # before the first time
    # beyond the last time the curve is carried flat: the values of the last time
    np.testing.assert_array_equal(pseudo_observations(t, e, 50.0), pseudo_observations(t, e, 9.0))
    # mean of the pseudo-values ≈ F(h) (here within 0.1 of it on 6 patients)
    assert abs(pseudo_observations(t, e, 6.0).mean() - (1 - _km_naive(t, e.astype(bool), 6.0))) < 0.1


def test_fast():
    rng = np.random.default_rng(1)
    n = 20_000
    t = rng.integers(1, 3000, n).astype(float)
    e = rng.random(n) < 0.6
    start = clock.perf_counter()
    p = pseudo_observations(t, e, 1000.0)
    assert clock.perf_counter() - start < 2.0
    assert p.shape == (n,) and np.isfinite(p).all()


@pytest.mark.parametrize(("time", "event", "horizon", "says"), [
    ([1.0, np.nan, 3.0], [1, 0, 1], 2.0, "missing (NaN) time at rows 2"),
    ([1.0, 2.0, 3.0], [1, np.nan, 1], 2.0, "missing (NaN) event"),
    ([1.0, 2.0, 3.0], [1, 2, 1], 2.0, "event not 0 or 1"),
    ([1.0, -2.0, 3.0], [1, 0, 1], 2.0, "negative time"),
    ([1.0, np.inf, 3.0], [1, 0, 1], 2.0, "infinite time"),
    ([1.0, 2.0], [1, 0, 1], 2.0, "time has 2 values but event has 3"),
    ([], [], 2.0, "no patients"),
    ([1.0, 2.0, 3.0], [1, 0, 1], float("nan"), "horizon must be a finite time"),
    ([1.0, 2.0, 3.0], [1, 0, 1], -1.0, "horizon must be a finite time"),
    (["a", "b"], [1, 0], 2.0, "must be numbers"),
])
def test_bad_input_refused(time, event, horizon, says):
    with pytest.raises(ValidationError) as err:
        pseudo_observations(time, event, horizon)
    assert says in str(err.value)


@pytest.mark.skipif(shutil.which("Rscript") is None or subprocess.run(
    ["Rscript", "-e", "suppressMessages({library(survival); library(prodlim)})"], capture_output=True,
    timeout=120).returncode != 0, reason="Rscript with survival and prodlim not installed: the CSV is compared")
def test_r_script_reproduces_committed_fixture(tmp_path):
    script = tmp_path / "make_pseudo_observations.R"
    shutil.copy(R_DIR / "make_pseudo_observations.R", script)  # it writes beside itself
    run = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    fresh = pd.read_csv(tmp_path / "pseudo_observations.csv")
    pd.testing.assert_frame_equal(fresh, REF, check_exact=False, rtol=0, atol=1e-12)
