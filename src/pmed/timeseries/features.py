"""Patient-level features from long tables: per-variable summaries and derived quantities.

:func:`summarize` turns each variable's measurements in a window into ``first, last, min, max,
mean, std, slope, count`` and ``time_since_last`` (hours from the last measurement to the end of
the window), named ``<variable>__<stat>``. A variable never measured has count 0 and missing
summaries, so the missingness itself reaches the model (the study's imputer adds indicators).
:func:`add_derived` adds clinical quantities computed from several variables (shock index,
PaO2/FiO2); :func:`output_rates` turns charted volumes (urine) into totals and mL/kg/h.
:func:`timeseries_block` and :func:`add_timeseries_block` produce the Cohort block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pmed.timeseries._options import TimeseriesOptionError, check_window
from pmed.timeseries.align import _check_long

__all__ = ["STATS", "DerivedRule", "DERIVED", "OutputRule", "OUTPUTS", "FORMATS", "summarize",
           "add_derived", "output_rates", "timeseries_block", "add_timeseries_block", "detect_format",
           "features_from_file"]

#: the per-variable summaries :func:`summarize` computes by default
STATS = ("first", "last", "min", "max", "mean", "std", "slope", "count", "time_since_last")


@dataclass(frozen=True)
class DerivedRule:
    """``name = numerator / denominator``, the denominator taken as of the numerator's time.

    ``denominators`` are tried in order (the first measured within ``tolerance`` hours before
    the numerator wins: invasive blood pressure before non-invasive).
    """

    name: str
    numerator: str
    denominators: tuple[str, ...]
    tolerance: float = 0.0
    scale: float = 1.0
    description: str = ""


#: derived quantities known to pmed (used when their variables are present)
DERIVED = (
    DerivedRule("ShockIndex", "HR", ("SysABP", "NISysABP"), 0.0, 1.0, "heart rate / systolic blood pressure"),
    DerivedRule("PFRatio", "PaO2", ("FiO2",), 6.0, 1.0, "PaO2 / FiO2 (FiO2 as of the last 6 h)"),
    DerivedRule("BUNCreatRatio", "BUN", ("Creatinine",), 0.0, 1.0, "BUN / creatinine"),
    DerivedRule("shock_index", "heart_rate", ("sbp",), 0.0, 1.0, "heart rate / systolic blood pressure"),
)


@dataclass(frozen=True)
class OutputRule:
    """A volume charted as "amount since the last chart" (urine output), per kg of ``weight``."""

    volume: str
    weight: str
    description: str = ""


#: charted outputs known to pmed (used when their variables are present)
OUTPUTS = (OutputRule("Urine", "Weight", "urine output, mL since the last chart; weight in kg"),)


def output_rates(
    data: pd.DataFrame,
    *,
    start: float,
    end: float,
    patients: Iterable[str] | None = None,
    rules: Iterable[OutputRule] = OUTPUTS,
) -> pd.DataFrame:
    """Totals of charted volumes in each half of the window ``[start, end]``, and mL/kg/h.

    Volumes are summed, not averaged: a sum is what oliguria (< 0.5 mL/kg/h) is defined on, and
    it does not depend on how often the nurse charted. Columns per rule: ``<volume>__total_1st_half``,
    ``__total_2nd_half`` (mL), ``__per_kg_h`` (whole window) and ``__per_kg_h_2nd_half``, with the
    weight as the median in the window. A patient with no chart of the volume gets missing values
    (an absent chart is not a zero output).
    """
    _check_long(data)
    check_window(start, end)
    d = data.dropna(subset=["value"])
    d = d[(d["time"] >= start) & (d["time"] <= end)]
    mid = (start + end) / 2
    ids = pd.Index(pd.unique(data["patient_id"].astype(str)) if patients is None
                   else [str(p) for p in patients], name="patient_id")
    out = {}
    for r in rules:
        v = d[d["variable"] == r.volume]
        if v.empty:
            continue
        pid = v["patient_id"].astype(str)
        late = v["time"].to_numpy() > mid
        first = v["value"][~late].groupby(pid[~late]).sum().reindex(ids)
        second = v["value"][late].groupby(pid[late]).sum().reindex(ids)
        charted = pid.drop_duplicates()
        first[ids.isin(charted) & first.isna()] = 0.0  # charted, but only in the other half
        second[ids.isin(charted) & second.isna()] = 0.0
        w = d[d["variable"] == r.weight]
        kg = w["value"].groupby(w["patient_id"].astype(str)).median().reindex(ids)
        half = (end - start) / 2
        out[f"{r.volume}__total_1st_half"] = first
        out[f"{r.volume}__total_2nd_half"] = second
        out[f"{r.volume}__per_kg_h"] = (first + second) / kg / (end - start)
        out[f"{r.volume}__per_kg_h_2nd_half"] = second / kg / half
    return pd.DataFrame(out, index=ids)


def add_derived(data: pd.DataFrame, *, rules: Iterable[DerivedRule] = DERIVED) -> pd.DataFrame:
    """Append derived variables as new rows of the long table (rules whose inputs are absent are skipped)."""
    _check_long(data)
    d = data.dropna(subset=["value"])
    present = set(d["variable"].unique())
    parts = [data]
    for r in rules:
        if r.numerator not in present or not present.intersection(r.denominators):
            continue
        num = d[d["variable"] == r.numerator][["patient_id", "time", "value"]].sort_values("time")
        den_val = pd.Series(np.nan, index=num.index)
        for den_name in r.denominators:
            den = d[(d["variable"] == den_name) & (d["value"] > 0)][["patient_id", "time", "value"]]
            if den.empty:
                continue
            m = pd.merge_asof(num.reset_index(), den.sort_values("time").rename(columns={"value": "den"}),
                              on="time", by="patient_id", direction="backward", tolerance=r.tolerance,
                              allow_exact_matches=True).set_index("index")
            den_val = den_val.fillna(m["den"])
        ok = den_val.notna()
        if ok.any():
            parts.append(pd.DataFrame({"patient_id": num.loc[ok, "patient_id"].to_numpy(),
                                       "time": num.loc[ok, "time"].to_numpy(), "variable": r.name,
                                       "value": r.scale * num.loc[ok, "value"].to_numpy() / den_val[ok].to_numpy()}))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["patient_id", "time"], kind="mergesort").reset_index(drop=True)


def summarize(
    data: pd.DataFrame,
    *,
    variables: Sequence[str] | None = None,
    stats: Sequence[str] = STATS,
    start: float | None = None,
    end: float | None = None,
    patients: Iterable[str] | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Per-patient (or per patient and window) summaries of each variable.

    Parameters
    ----------
    data
        Long table ``patient_id, time, variable, value`` (NaN values are ignored).
    variables
        Variables to summarise (default: all present, sorted); absent ones give empty columns.
    stats
        Any of :data:`STATS`. ``slope`` is the least-squares change per hour (needs two distinct
        times); ``std`` needs two values; ``time_since_last`` is ``end`` minus the last time.
    start, end
        The window (hours); default: all rows, with ``end`` the patient's last observation.
    patients
        Rows of the result (default: every patient in ``data``); patients without data get
        count 0 and missing summaries.
    by
        An extra grouping column (``"window"`` from :func:`~pmed.timeseries.align.rolling_windows`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``patient_id`` (or ``patient_id, by``), columns ``<variable>__<stat>``.
    """
    _check_long(data)
    bad = [s for s in stats if s not in STATS]
    if bad:
        raise TimeseriesOptionError(f"unknown stat(s) {', '.join(map(repr, bad))}", where="option stats",
                                    fix=f"use any of {', '.join(STATS)}")
    keys = ["patient_id"] + ([by] if by else [])
    all_rows = data[keys].drop_duplicates()
    d = data.dropna(subset=["value"])
    t = d["time"].to_numpy(float)
    sel = np.ones(len(d), bool)
    if start is not None:
        sel &= t >= start
    if end is not None:
        sel &= t <= end
    d = d[sel].sort_values(keys + ["time"], kind="mergesort")
    variables = sorted(d["variable"].unique()) if variables is None else list(variables)
    d = d[d["variable"].isin(variables)]
    g = d.groupby(keys + ["variable"], sort=False)
    res = {}
    if "first" in stats:
        res["first"] = g["value"].first()
    if "last" in stats:
        res["last"] = g["value"].last()
    if "min" in stats:
        res["min"] = g["value"].min()
    if "max" in stats:
        res["max"] = g["value"].max()
    if "mean" in stats:
        res["mean"] = g["value"].mean()
    if "std" in stats:
        res["std"] = g["value"].std(ddof=1)
    if "count" in stats:
        res["count"] = g["value"].size().astype(float)
    if "slope" in stats:
        tt = d["time"].to_numpy(float)
        vv = d["value"].to_numpy(float)
        aux = pd.DataFrame({"n": 1.0, "t": tt, "v": vv, "tt": tt * tt, "tv": tt * vv}, index=d.index)
        s = aux.groupby([d[k] for k in keys + ["variable"]], sort=False).sum()
        den = s["n"] * s["tt"] - s["t"] ** 2
        scale = s["n"] * s["tt"]
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (s["n"] * s["tv"] - s["t"] * s["v"]) / den
        res["slope"] = slope.where(den > 1e-9 * scale.clip(lower=1.0))
    if "time_since_last" in stats:
        last_t = g["time"].max()
        if end is not None:
            ref = pd.Series(float(end), index=last_t.index)
        else:
            pt = d.groupby(keys, sort=False)["time"].max()
            ref = pd.Series(pt.reindex(last_t.index.droplevel("variable")).to_numpy(), index=last_t.index)
        res["time_since_last"] = ref - last_t
    if not res:
        return pd.DataFrame(index=pd.MultiIndex.from_frame(all_rows) if by else pd.Index(all_rows["patient_id"]))
    long = pd.DataFrame(res)
    wide = long.unstack("variable")
    wide.columns = [f"{v}__{s}" for s, v in wide.columns]
    cols = [f"{v}__{s}" for v in variables for s in stats]
    if by:
        idx = pd.MultiIndex.from_frame(all_rows.sort_values(keys))
    else:
        ids = pd.unique(all_rows["patient_id"].astype(str)) if patients is None else [str(p) for p in patients]
        idx = pd.Index(ids, name="patient_id")
        wide.index = wide.index.astype(str)
    out = wide.reindex(index=idx, columns=cols)
    for c in [f"{v}__count" for v in variables if "count" in stats]:
        out[c] = out[c].fillna(0.0)
    return out


def timeseries_block(
    ts,
    *,
    start: float | None = 0.0,
    end: float | None = 48.0,
    stats: Sequence[str] = STATS,
    derived: bool = True,
    static: bool = True,
    variables: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Features and provenance for a :class:`~pmed.timeseries.readers.TimeSeriesData`.

    Summaries of every variable (and derived quantity) in ``[start, end]`` hours, charted
    outputs as totals and mL/kg/h (:func:`output_rates`, with ``derived``), plus the static
    descriptors; returns ``(table indexed by patient_id, provenance)``.

    Raises
    ------
    InputError
        No measurement lies in the window (every summary would be missing: a silent empty
        feature table otherwise); the message gives the window, how many measurements lie
        outside it and the hours they span.

    Warns
    -----
    TimeseriesWarning
        Some patients have measurements, none of them in the window: their summaries are
        missing and their counts 0 (the count of such patients, never their IDs).
    """
    _check_window_has_data(ts, start, end)
    data = add_derived(ts.data) if derived else ts.data
    feats = summarize(data, variables=variables, stats=stats, start=start, end=end, patients=ts.patients)
    if derived and start is not None and end is not None:
        rates = output_rates(ts.data, start=start, end=end, patients=feats.index)
        feats = feats.join(rates) if len(rates.columns) else feats
    if static and len(ts.static):
        st = ts.static.copy()
        st.index = st.index.astype(str)
        feats = st.reindex(feats.index).join(feats)
    feats.index = feats.index.astype(str)
    feats.index.name = "patient_id"
    prov = {"reader": "pmed.timeseries", "source": ts.source, "window_hours": [start, end],
            "stats": list(stats), "derived": bool(derived), **{k: v for k, v in ts.summary().items() if k != "source"}}
    return feats, prov


def _check_window_has_data(ts, start: float | None, end: float | None) -> None:
    """Refuse a window that holds no measurement; warn when it leaves patients without any."""
    import warnings

    from pmed.errors import InputError
    from pmed.timeseries._options import TimeseriesWarning

    d = ts.data[ts.data["value"].notna()]
    t = d["time"].to_numpy(float)
    inside = np.ones(len(d), bool)
    if start is not None:
        inside &= t >= start
    if end is not None:
        inside &= t <= end
    shown = f"[{'-inf' if start is None else f'{start:g}'}, {'inf' if end is None else f'{end:g}'}] h"
    if len(d) == 0:
        n_flagged = int((ts.flags["action"] == "set_missing").sum()) if len(ts.flags) else 0
        raise InputError("no measurement with a value to summarise" + (
            f" ({n_flagged} implausible values were set missing, see the flags)" if n_flagged else ""),
            file=ts.source, fix="check the export: the source holds descriptors or empty values only")
    if not inside.any():
        raise InputError(
            f"no measurement lies in the window {shown}: all {len(d)} measurements lie outside it "
            f"(they span {t.min():g} to {t.max():g} h)", file=ts.source, where="options start, end",
            fix="choose a window within the hours measured (--start/--end, start=/end=); times count from "
                "each patient's admission or first measurement")
    if inside.all():
        return
    pid = d["patient_id"].astype(str).to_numpy()
    with_data = pd.unique(pid)
    kept = pd.unique(pid[inside])
    n_lost = len(with_data) - len(kept)
    if n_lost:
        n_out = int((~inside).sum())
        warnings.warn(
            f"{ts.source + ': ' if ts.source else ''}{n_lost} of {len(with_data)} patients have no measurement in "
            f"the window {shown} ({n_out} measurements lie outside it): their summaries are missing and their "
            "counts 0", TimeseriesWarning, stacklevel=3)


def add_timeseries_block(cohort, ts, *, name: str = "timeseries", allow_missing: bool = False, **kwargs):
    """Summarise ``ts`` (see :func:`timeseries_block`) and attach it to ``cohort`` as block ``name``."""
    feats, prov = timeseries_block(ts, **kwargs)
    return cohort.add_block(name, feats, provenance=prov, allow_missing=allow_missing)


FORMATS = ("auto", "physionet2012", "long", "fhir", "wearable")


def detect_format(path) -> str:
    """Guess a source's format: folder/archive → PhysioNet 2012, JSON → FHIR, tables by header.

    Raises
    ------
    InputError
        The path does not exist, or a table's header cannot be read, or its name says nothing
        of its format (then pass ``format=``).
    """
    from pathlib import Path

    from pmed.errors import InputError
    from pmed.io.tables import TABLE_SUFFIXES, _suffix

    p = Path(path)
    name = p.name.lower()
    if not p.exists():
        raise InputError("not found", file=p, fix="check the path")
    if p.is_dir():
        return "fhir" if any(p.glob("*.json")) and not any(p.glob("*.txt")) else "physionet2012"
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return "physionet2012"
    if name.endswith((".json", ".ndjson")):
        return "fhir"
    fix = "pass the format (format= or --format): physionet2012, long, fhir or wearable"
    if name.endswith((".txt", ".txt.gz")):
        from pmed.io.text import open_text

        try:
            with open_text(p, errors="replace") as fh:
                head = fh.readline(4096)
        except (OSError, EOFError):
            raise InputError("cannot read the first line", file=p, fix=fix) from None
        if head.strip().replace(" ", "") == "Time,Parameter,Value":
            return "physionet2012"
    suffix = _suffix(p).lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"cannot tell the format from the file name (suffix {suffix or 'none'!r})", file=p,
                         fix=fix)
    import zlib

    from pmed.timeseries.readers._base import _UTF16_32, _check_parquet

    if TABLE_SUFFIXES[suffix] is None:
        _check_parquet(p)  # a cut or damaged file is named as such, not as a delimiter problem
        import pyarrow.parquet as pq

        return "long" if {"variable", "value"} <= set(pq.read_schema(p).names) else "wearable"
    try:
        head = _head_bytes(p)
        for bom, enc in _UTF16_32.items():
            if head.startswith(bom):
                raise InputError(f"the file is {enc} text (its byte-order mark says so), not UTF-8",
                                 file=p, where="byte 1", fix="save the table as UTF-8 text (CSV UTF-8)")
        cols = pd.read_csv(p, sep=TABLE_SUFFIXES[suffix], nrows=0).columns
    except (EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError, handled below
        raise InputError(f"the compressed file is truncated or corrupt ({type(e).__name__})", file=p,
                         fix="the file is incomplete or damaged: create or copy it again") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            ValueError) as e:
        import gzip

        if isinstance(e, gzip.BadGzipFile):
            raise InputError("the compressed file is corrupt (not a valid gzip stream)", file=p,
                             fix="the file is incomplete or damaged: create or copy it again") from None
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot read the header: {first}", file=p,
                         fix="check the delimiter, quoting and encoding (UTF-8), or " + fix) from None
    return "long" if {"variable", "value"} <= set(cols) else "wearable"


def _head_bytes(path) -> bytes:
    """The first 4 bytes of a file, decompressed when it is gzip (a cut stream raises EOFError)."""
    import gzip

    with open(path, "rb") as fh:
        magic = fh.read(2)
    with (gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")) as fh:
        return fh.read(4)


def features_from_file(
    path,
    *,
    format: str = "auto",
    start: float | None = 0.0,
    end: float | None = 48.0,
    unknown: str = "error",
    derived: bool = True,
    static: bool = True,
    epoch_minutes: float = 1.0,
):
    """Read a source and make its patient-level features (the tuple form of
    :func:`~pmed.timeseries.api.run_timeseries`, kept for its callers).

    EHR sources (PhysioNet 2012, long tables, FHIR) give :func:`timeseries_block` summaries in
    ``[start, end]`` hours (with the static descriptors unless ``static=False``); wearable tables
    give daily activity and resting heart rate (:func:`pmed.timeseries.wearables.wearable_features`).

    Returns
    -------
    features : DataFrame
        Indexed by ``patient_id``.
    ts : TimeSeriesData
        What was read (clean long table, descriptors, flags, outcomes).
    provenance : dict
        How the features were made (``format``, window, stats, counts).
    """
    from pmed.timeseries.api import run_timeseries

    res = run_timeseries(path, format=format, start=start, end=end, unknown=unknown, derived=derived,
                         static=static, epoch_minutes=epoch_minutes)
    return res.features, res.series, dict(res.block_provenance)
