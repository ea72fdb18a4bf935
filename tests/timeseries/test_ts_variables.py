"""Units and plausible ranges: unit mistakes converted and flagged, implausible values set missing."""

import numpy as np
import pandas as pd
import pytest

from pmed.errors import ValidationError
from pmed.timeseries.variables import PHYSIONET2012, VITALS, VariableSpec, check_values, registry


def _long(rows):
    return pd.DataFrame(rows, columns=["patient_id", "time", "variable", "value"])


def test_temperature_in_fahrenheit_is_converted_and_flagged():
    d = _long([("p1", 0.0, "Temp", 37.2), ("p1", 1.0, "Temp", 98.6), ("p1", 2.0, "Temp", 102.2)])
    clean, flags = check_values(d, variables=PHYSIONET2012)
    assert clean["value"].tolist() == pytest.approx([37.2, 37.0, 39.0])
    assert flags["action"].tolist() == ["converted", "converted"]
    assert flags["value"].tolist() == [98.6, 102.2]
    assert flags["new_value"].tolist() == pytest.approx([37.0, 39.0])
    assert "°F" in flags["reason"].iloc[0]


def test_implausible_values_are_set_missing_never_kept():
    d = _long([("p1", 0.0, "HR", 0.0), ("p1", 1.0, "HR", 80.0), ("p2", 0.0, "Temp", -17.8),
               ("p2", 0.5, "SysABP", 0.0), ("p2", 1.0, "GCS", 16.0)])
    clean, flags = check_values(d, variables=PHYSIONET2012)
    assert np.isnan(clean["value"]).tolist() == [True, False, True, True, True]
    assert len(clean) == 5  # the rows stay, their values do not
    assert (flags["action"] == "set_missing").sum() == 4
    assert set(flags["variable"]) == {"HR", "Temp", "SysABP", "GCS"}
    assert flags.loc[flags["variable"] == "GCS", "reason"].iloc[0] == "GCS: outside the plausible range 3 to 15 score 3-15"


def test_fraction_percent_and_ph_scale_mistakes():
    d = _long([("p", 0, "FiO2", 0.5), ("p", 1, "FiO2", 40.0), ("p", 2, "pH", 735.0), ("p", 3, "pH", 7.31),
               ("p", 4, "FiO2", 150.0)])
    clean, flags = check_values(d, variables=PHYSIONET2012)
    assert clean["value"].iloc[:4].tolist() == pytest.approx([0.5, 0.4, 7.35, 7.31])
    assert np.isnan(clean["value"].iloc[4])  # 150 % is not a percentage either
    assert flags["action"].tolist() == ["converted", "converted", "set_missing"] or \
        sorted(flags["action"]) == ["converted", "converted", "set_missing"]


def test_missing_codes_are_dropped_without_flags():
    d = _long([("p", 0, "Weight", -1.0), ("p", 0, "Weight", 80.0)])
    clean, flags = check_values(d, variables=PHYSIONET2012)
    assert clean["value"].tolist() == [80.0]
    assert flags.empty


def test_unknown_variables_are_an_error_naming_them_and_their_line():
    d = _long([("p", 0, "HR", 80.0), ("p", 1, "Lactat", 2.0)]).assign(line=[2, 3])
    with pytest.raises(ValidationError) as e:
        check_values(d, variables=PHYSIONET2012, source="x.csv")
    msg = str(e.value)
    assert "x.csv" in msg and "'Lactat'" in msg and "line 3" in msg and "fix:" in msg
    kept, _ = check_values(d, variables=PHYSIONET2012, unknown="keep")
    assert kept["variable"].tolist() == ["HR", "Lactat"]
    dropped, _ = check_values(d, variables=PHYSIONET2012, unknown="drop")
    assert dropped["variable"].tolist() == ["HR"]


def test_registry_merges_and_user_specs_win():
    reg = registry(VITALS, [VariableSpec("heart_rate", "bpm", 30, 200)])
    assert reg["heart_rate"].low == 30 and "sbp" in reg
