"""IWPC warfarin dosing: worked examples computed by hand from the published coefficients."""

from __future__ import annotations

import pytest

from pmed.errors import InputError
from pmed.genomics.pgx.warfarin import iwpc_weekly_dose, vkorc1_from_diplotype


def test_reference_patient():
    # 55 y (5 decades), 170 cm, 70 kg, VKORC1 GG, CYP2C9 *1/*1, white, no interacting drugs:
    # 5.6044 - 0.2614*5 + 0.0087*170 + 0.0128*70 = 6.6724 -> 6.6724^2 = 44.5209 mg/week
    d = iwpc_weekly_dose(age=55, height_cm=170, weight_kg=70, cyp2c9="*1/*1", vkorc1="GG")
    assert d.sqrt_weekly == pytest.approx(6.6724, abs=1e-9)
    assert d.weekly_mg == pytest.approx(44.52092176, abs=1e-6)
    assert d.daily_mg == pytest.approx(44.52092176 / 7, abs=1e-6)


def test_sensitive_patient_with_amiodarone():
    # 72 y (7), 160 cm, 60 kg, VKORC1 AA, CYP2C9 *3/*2, Asian, amiodarone:
    # 5.6044 - 1.8298 + 1.392 + 0.768 - 1.6974 - 1.9206 - 0.1092 - 0.5503 = 1.6571
    d = iwpc_weekly_dose(age=72, height_cm=160, weight_kg=60, cyp2c9="*3/*2", vkorc1="AA",
                         race="asian", amiodarone=True)
    assert d.sqrt_weekly == pytest.approx(1.6571, abs=1e-9)
    assert d.weekly_mg == pytest.approx(1.6571 ** 2, abs=1e-9)


def test_inducer_black_unknown_genotypes():
    # 38 y (3), 185 cm, 95 kg, genotypes unknown, Black, enzyme inducer:
    # 5.6044 - 0.7842 + 1.6095 + 1.216 - 0.4854 - 0.2188 - 0.2760 + 1.1816 = 7.8471
    d = iwpc_weekly_dose(age=38, height_cm=185, weight_kg=95, cyp2c9=None, vkorc1=None,
                         race="black", enzyme_inducer=True)
    assert d.sqrt_weekly == pytest.approx(7.8471, abs=1e-9)


def test_pmed_calls_are_accepted_and_other_alleles_warn():
    assert vkorc1_from_diplotype("rs9923231 reference (C)/rs9923231 variant (T)") == "AG"
    assert vkorc1_from_diplotype("rs9923231 variant (T)/rs9923231 variant (T)") == "AA"
    d = iwpc_weekly_dose(age=60, height_cm=175, weight_kg=80, cyp2c9="*1/*8",
                         vkorc1="rs9923231 reference (C)/rs9923231 reference (C)")
    assert d.terms["cyp2c9"] == pytest.approx(-0.2188) and d.terms["vkorc1"] == 0.0
    assert "outside the IWPC categories" in d.warnings[0]


def test_bad_inputs():
    with pytest.raises(InputError, match="height_cm"):
        iwpc_weekly_dose(age=50, height_cm=1.7, weight_kg=70, cyp2c9="*1/*1", vkorc1="GG")
    with pytest.raises(InputError, match="race"):
        iwpc_weekly_dose(age=50, height_cm=170, weight_kg=70, cyp2c9="*1/*1", vkorc1="GG",
                         race="martian")
