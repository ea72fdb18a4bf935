"""Bad inputs (issue #16) for ``pmed timeseries features`` and :func:`pmed.timeseries.run_timeseries`.

Tiny long tables written in each test: two or three patients whose IDs (``MRN…``) must never
appear in a message, a window that holds nothing, ``inf`` values, cut files, bad options.
"""

import gzip
import io
import tarfile
import warnings

import numpy as np
import pandas as pd
import pytest
from badinput import bad_input, diagnosis, refused, run_cli

from pmed.errors import OptionError
from pmed.timeseries import run_timeseries
from pmed.timeseries._options import TimeseriesWarning

IDS = ["MRN0042731", "MRN0099120", "MRN0051555"]
HEAD = "patient_id,time,variable,value\n"


def _long(tmp_path, rows, name="long.csv"):
    """A long table from (patient, time, variable, value) rows."""
    p = tmp_path / name
    p.write_text(HEAD + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows), encoding="utf-8")
    return p


def _three_hours(pid):
    return [(pid, t, "heart_rate", 80 + t) for t in (1, 2, 3)]


# ---------------------------------------------------------------------------------------------
# silent wrong answers
# ---------------------------------------------------------------------------------------------

@bad_input("silent")
@pytest.mark.parametrize("window", [["--start", "100", "--end", "200"], ["--start", "-50", "--end", "-10"]])
def test_window_with_no_measurement_is_refused(tmp_path, capsys, window):
    src = _long(tmp_path, _three_hours(IDS[0]) + _three_hours(IDS[1]))
    out = tmp_path / "f.csv"
    head = refused(capsys, tmp_path, ["timeseries", "features", src, "--out", out, *window], code=2,
                   says=r"no measurement lies in the window \[-?\d+, -?\d+\] h: all 6 measurements lie outside",
                   out=out, secrets=IDS)
    assert "1 to 3 h" in head  # where the data are, so the user can choose a window
    assert not out.exists()  # no empty feature table left behind


@bad_input("silent")
def test_window_that_drops_some_patients_warns_with_the_count(tmp_path, capsys):
    rows = _three_hours(IDS[0]) + [(IDS[1], 60, "heart_rate", 90), (IDS[1], 70, "heart_rate", 91)]
    src = _long(tmp_path, rows)
    out = tmp_path / "f.csv"
    rc, text = run_cli(capsys, ["timeseries", "features", src, "--out", out, "--start", "0", "--end", "48"])
    assert rc == 0, text
    assert "1 of 2 patients have no measurement in the window [0, 48] h (2 measurements lie outside it)" in text
    assert not any(i in text for i in IDS)
    f = pd.read_csv(out, index_col="patient_id")
    assert f.loc[IDS[1], "heart_rate__count"] == 0 and np.isnan(f.loc[IDS[1], "heart_rate__mean"])
    assert f.loc[IDS[0], "heart_rate__mean"] == pytest.approx(82.0)


@bad_input("silent")
def test_same_time_twice_warns_with_lines_not_ids(tmp_path, capsys):
    rows = [(IDS[0], 1, "heart_rate", 80), (IDS[0], 1, "heart_rate", 120), (IDS[0], 2, "heart_rate", 82)]
    src = _long(tmp_path, rows)
    rc, text = run_cli(capsys, ["timeseries", "features", src, "--out", tmp_path / "f.csv"])
    assert rc == 0, text
    warn = [ln for ln in text.splitlines() if ln.startswith("warning")]
    assert len(warn) == 1 and "2 measurements share their patient, variable and time" in warn[0]
    assert "lines 2, 3" in warn[0] and IDS[0] not in text
    assert pd.read_csv(tmp_path / "f.csv")["heart_rate__count"].tolist() == [3]  # kept, as said


@bad_input("silent")
@pytest.mark.parametrize("bad", ["inf", "-inf", "1e999"])
def test_infinite_values_are_flagged_never_summarised(tmp_path, capsys, bad):
    # a registered variable and one kept unchecked (--unknown keep): neither may average an inf
    rows = [(IDS[0], 1, "heart_rate", bad), (IDS[0], 1, "pulse_ox_raw", bad),
            (IDS[0], 2, "heart_rate", 80), (IDS[0], 2, "pulse_ox_raw", 97)]
    src = _long(tmp_path, rows)
    out, flags = tmp_path / "f.csv", tmp_path / "flags.csv"
    rc, text = run_cli(capsys, ["timeseries", "features", src, "--out", out, "--flags", flags,
                                "--unknown", "keep"])
    assert rc == 0, text
    assert "2 implausible values set missing" in text
    f = pd.read_csv(out, index_col="patient_id")
    vals = f.to_numpy(dtype=float)
    assert not np.isinf(vals).any()
    assert f.loc[IDS[0], "heart_rate__mean"] == 80 and f.loc[IDS[0], "pulse_ox_raw__mean"] == 97
    assert f.loc[IDS[0], "heart_rate__count"] == 1 and f.loc[IDS[0], "pulse_ox_raw__count"] == 1
    fl = pd.read_csv(flags)
    assert sorted(fl["variable"]) == ["heart_rate", "pulse_ox_raw"] and set(fl["action"]) == {"set_missing"}
    assert sorted(fl["line"]) == [2, 3]


@bad_input("silent")
def test_inf_through_the_api_is_counted_in_the_summary(tmp_path):
    src = _long(tmp_path, [(IDS[0], 1, "pulse_ox_raw", "inf"), (IDS[0], 2, "pulse_ox_raw", 97)])
    res = run_timeseries(src, unknown="keep")
    assert res.summary()["n_set_missing"] == 1
    assert res.features.loc[IDS[0], "pulse_ox_raw__max"] == 97


# ---------------------------------------------------------------------------------------------
# identifiers in messages
# ---------------------------------------------------------------------------------------------

@bad_input("identifiers")
def test_times_going_backwards_name_lines_not_patients(tmp_path, capsys):
    rows = _three_hours(IDS[1]) + [(IDS[0], 5, "heart_rate", 80), (IDS[0], 4, "heart_rate", 81)]
    src = _long(tmp_path, rows)
    head = refused(capsys, tmp_path, ["timeseries", "features", src, "--out", tmp_path / "f.csv"], code=2,
                   says="times go backwards within a patient", secrets=IDS)
    assert "line 6" in head


@bad_input("identifiers")
def test_patient_id_in_the_value_column_is_not_echoed(tmp_path, capsys):
    # a shifted column: the ID lands where a number belongs
    src = _long(tmp_path, [(IDS[0], 1, "heart_rate", IDS[0]), (IDS[0], 2, "heart_rate", 80)])
    head = refused(capsys, tmp_path, ["timeseries", "features", src, "--out", tmp_path / "f.csv"], code=2,
                   says="unparsable value in column 'value': 1 cells are not numbers", secrets=IDS)
    assert "line 2" in head


@bad_input("identifiers")
def test_patient_id_in_the_time_column_is_not_echoed(tmp_path, capsys):
    src = _long(tmp_path, [(IDS[0], "2024-01-01T00:00:00Z", "heart_rate", 80), (IDS[0], IDS[2], "heart_rate", 81)])
    refused(capsys, tmp_path, ["timeseries", "features", src, "--out", tmp_path / "f.csv"], code=2,
            says="unparsable time in column 'time'", secrets=IDS)


@bad_input("identifiers")
def test_a_10000_character_variable_name_is_cut(tmp_path, capsys):
    long_name = "v" * 10_000
    src = _long(tmp_path, [(IDS[0], 1, long_name, 80)])
    rc, text = run_cli(capsys, ["timeseries", "features", src, "--out", tmp_path / "f.csv"])
    assert rc == 4 and "Traceback" not in text
    lines = diagnosis(text)
    assert lines[0].startswith("error") and "unknown variable 'vvvv" in text and "…" in text
    assert max(map(len, lines)) < 300 and "v" * 60 not in text and IDS[0] not in text


@bad_input("identifiers")
def test_a_header_of_long_names_is_listed_short(tmp_path, capsys):
    names = [f"{i}{'c' * 10_000}" for i in range(30)]
    src = tmp_path / "wide.csv"
    src.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    head = refused(capsys, tmp_path, ["timeseries", "features", src, "--format", "long", "--out",
                                      tmp_path / "f.csv"], code=2, says="missing column", secrets=["c" * 60])
    assert "(30 in all)" in head


# ---------------------------------------------------------------------------------------------
# misleading diagnoses
# ---------------------------------------------------------------------------------------------

@bad_input("diagnosis")
def test_unsorted_times_suggest_the_cli_option_and_it_works(tmp_path, capsys):
    src = _long(tmp_path, [(IDS[0], 5, "heart_rate", 80), (IDS[0], 4, "heart_rate", 70)])
    out = tmp_path / "f.csv"
    rc, text = run_cli(capsys, ["timeseries", "features", src, "--out", out])
    fix = [ln for ln in diagnosis(text) if ln.startswith("fix:")]
    assert rc == 2 and fix and "--sort" in fix[0]
    rc, text = run_cli(capsys, ["timeseries", "features", src, "--out", out, "--sort"])
    assert rc == 0, text
    f = pd.read_csv(out, index_col="patient_id")
    assert f.loc[IDS[0], "heart_rate__first"] == 70 and f.loc[IDS[0], "heart_rate__last"] == 80


@bad_input("diagnosis")
def test_unknown_variable_fix_names_the_cli_option(tmp_path, capsys):
    src = _long(tmp_path, [(IDS[0], 1, "bp_sys", 120)])
    rc, text = run_cli(capsys, ["timeseries", "features", src, "--out", tmp_path / "f.csv"])
    fix = [ln for ln in diagnosis(text) if ln.startswith("fix:")]
    assert rc == 4 and fix and "--unknown keep" in fix[0] and "--unknown drop" in fix[0]


@bad_input("diagnosis")
@pytest.mark.parametrize("fmt", ["auto", "long"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_utf8_bom_is_read_as_a_bom(tmp_path, capsys, fmt, suffix):
    text = "\ufeff" + HEAD + "".join(f"{IDS[0]},{t},heart_rate,{80 + t}\n" for t in (1, 2))
    src = tmp_path / f"bom{suffix}"
    data = text.encode("utf-8")
    src.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    out = tmp_path / "f.csv"
    rc, msg = run_cli(capsys, ["timeseries", "features", src, "--format", fmt, "--out", out])
    assert rc == 0, msg
    assert pd.read_csv(out, index_col="patient_id").loc[IDS[0], "heart_rate__mean"] == pytest.approx(81.5)


@bad_input("diagnosis")
def test_utf8_bom_in_a_wearable_table(tmp_path, capsys):
    src = tmp_path / "watch.csv"
    src.write_text("\ufeffpatient_id,timestamp,steps,heart_rate\n"
                   f"{IDS[0]},2024-01-01T00:00:00Z,10,70\n{IDS[0]},2024-01-01T00:01:00Z,0,71\n", encoding="utf-8")
    rc, msg = run_cli(capsys, ["timeseries", "features", src, "--out", tmp_path / "f.csv"])
    assert rc == 0, msg
    assert "(wearable)" in msg


@bad_input("diagnosis")
@pytest.mark.parametrize("fmt", ["auto", "long"])
def test_utf16_text_is_named_as_such(tmp_path, capsys, fmt):
    src = tmp_path / "u16.csv"
    src.write_bytes((HEAD + f"{IDS[0]},1,heart_rate,80\n").encode("utf-16"))
    refused(capsys, tmp_path, ["timeseries", "features", src, "--format", fmt, "--out", tmp_path / "f.csv"],
            code=2, says="UTF-16 text .*byte-order mark", secrets=IDS)


# ---------------------------------------------------------------------------------------------
# option values, checked before the data are read
# ---------------------------------------------------------------------------------------------

@bad_input("options")
@pytest.mark.parametrize("argv, says", [
    (["--start", "nan"], "--start.*not a finite number"),
    (["--end", "inf"], "--end.*not a finite number"),
    (["--start", "-inf"], "--start.*not a finite number"),
    (["--start", "5", "--end", "1"], "--end.*later than --start"),
    (["--start", "3", "--end", "3"], "--end.*later than --start"),
    (["--epoch-minutes", "0"], "--epoch-minutes"),
    (["--epoch-minutes", "-1"], "--epoch-minutes"),
    (["--epoch-minutes", "nan"], "--epoch-minutes"),
    (["--epoch-minutes", "5000"], "--epoch-minutes"),
    (["--format", "csv"], "--format"),
    (["--unknown", "ignore"], "--unknown"),
])
def test_cli_options_refused_before_reading(tmp_path, capsys, argv, says):
    # the source is not a table at all: an option error proves nothing was read
    src = tmp_path / "junk.csv"
    src.write_bytes(b"\x00\xff" * 50)
    refused(capsys, tmp_path, ["timeseries", "features", src, "--out", tmp_path / "f.csv", *argv],
            code=2, says=says)


@bad_input("options")
@pytest.mark.parametrize("kw", [
    {"start": float("nan")}, {"end": float("inf")}, {"start": 5.0, "end": 1.0}, {"epoch_minutes": 0},
    {"epoch_minutes": float("inf")}, {"epoch_minutes": 1441}, {"epoch_minutes": True}, {"derived": "no"},
    {"static": 1}, {"sort": "yes"}, {"format": "csv"}, {"unknown": "skip"},
])
def test_api_options_refused_before_reading(tmp_path, kw):
    with pytest.raises(OptionError):
        run_timeseries(tmp_path / "absent.csv", **kw)  # reading would raise InputError (not found)


# ---------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------

def _table_bytes():
    rows = [(IDS[i % 2], t, "heart_rate", 60 + (t * 7) % 50) for i in range(2) for t in range(400)]
    return (HEAD + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows)).encode()


@bad_input("broken")
@pytest.mark.parametrize("fmt", ["auto", "long"])
def test_truncated_csv_gz_is_named(tmp_path, capsys, fmt):
    whole = gzip.compress(_table_bytes())
    src = tmp_path / "long.csv.gz"
    src.write_bytes(whole[: len(whole) // 2])
    refused(capsys, tmp_path, ["timeseries", "features", src, "--format", fmt, "--out", tmp_path / "f.csv"],
            code=2, says=r"long\.csv\.gz: .*truncated", secrets=IDS)


@bad_input("broken")
@pytest.mark.parametrize("fmt", ["auto", "long"])
@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_parquet_is_named(tmp_path, capsys, fmt, cut):
    buf = io.BytesIO()
    pd.read_csv(io.BytesIO(_table_bytes())).to_parquet(buf)
    whole = buf.getvalue()
    src = tmp_path / "long.parquet"
    src.write_bytes(whole[: int(len(whole) * cut)])
    refused(capsys, tmp_path, ["timeseries", "features", src, "--format", fmt, "--out", tmp_path / "f.csv"],
            code=2, says=r"long\.parquet: .*Parquet file is truncated or corrupt", secrets=IDS)


@bad_input("broken")
def test_truncated_physionet_archive_is_named(tmp_path, capsys):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rid in range(5):
            body = (f"Time,Parameter,Value\n00:00,RecordID,{130000 + rid}\n"
                    + "".join(f"{h:02d}:00,HR,{70 + h}\n" for h in range(48))).encode()
            info = tarfile.TarInfo(f"set-a/{130000 + rid}.txt")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    whole = buf.getvalue()
    src = tmp_path / "set-a.tar.gz"
    src.write_bytes(whole[: len(whole) // 2])
    refused(capsys, tmp_path, ["timeseries", "features", src, "--out", tmp_path / "f.csv"], code=2,
            says=r"set-a\.tar\.gz: the archive is truncated or corrupt")


def test_no_timeseries_warning_on_clean_data(tmp_path):
    """The warnings above are specific: a clean table, all in the window, raises none."""
    src = _long(tmp_path, _three_hours(IDS[0]) + _three_hours(IDS[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeseriesWarning)
        res = run_timeseries(src)
    assert res.features["heart_rate__count"].tolist() == [3, 3]
