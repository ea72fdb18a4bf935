"""One call from a time-series source to the Cohort block: :func:`run_timeseries`.

``run_timeseries(source)`` reads a PhysioNet 2012 set, a long table, a FHIR bundle or a wearable
table, checks units and ranges, and summarises each patient into one row of features. The
:class:`TimeseriesResult` holds the features (``to_block()``), what was read (``series``: the
clean long table, descriptors, flags, outcomes), the study's patient table
(:meth:`~TimeseriesResult.patient_table`: descriptors and outcomes) and the provenance.

``result.write(folder)`` writes ``features.parquet``, ``qc_flags.csv``, ``patients.csv`` and
``provenance.json``; ``result.write_feature_file(path)`` writes the feature table where
``pmed timeseries features --out`` names it, with ``provenance.json`` beside it. Either way
:func:`pmed.cohort.read_block` reads the features back through :func:`read_block`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from pmed.cohort import Block
from pmed.progress import Reporter, as_reporter
from pmed.result import PROVENANCE_FILE, DomainResult, make_provenance
from pmed.timeseries._options import check_choice, check_flag, check_positive, check_window
from pmed.timeseries.features import FORMATS, detect_format, timeseries_block
from pmed.timeseries.readers import TimeSeriesData

__all__ = ["run_timeseries", "TimeseriesResult", "read_block", "FEATURES_FILE"]

#: the feature table in a folder written by :meth:`TimeseriesResult.write`
FEATURES_FILE = "features.parquet"
_FLAGS_FILE = "qc_flags.csv"
_PATIENTS_FILE = "patients.csv"


@dataclass(eq=False)  # tables do not compare with ==
class TimeseriesResult(DomainResult):
    """What :func:`run_timeseries` found.

    Attributes
    ----------
    features
        One row per patient (index ``patient_id``, strings): per-variable summaries of the
        window, derived quantities and charted outputs (EHR sources), or daily activity and
        resting heart rate (wearables); descriptors too unless ``static=False``.
    series
        What was read: the clean long table, descriptors, quality-control flags, outcomes.
    format
        The source's format as read (``physionet2012``, ``long``, ``fhir``, ``wearable``).
    block_provenance
        How the features were made (reader, window, stats, counts): the block's provenance,
        as :func:`~pmed.timeseries.features_from_file` returns it.
    provenance
        :func:`pmed.result.make_provenance` of the run (hashed source, options, versions).
    """

    domain: ClassVar[str] = "timeseries"
    block_name: ClassVar[str] = "timeseries"

    features: pd.DataFrame = field(repr=False)
    series: TimeSeriesData = field(repr=False)
    format: str
    block_provenance: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        n, k = self.features.shape
        return f"TimeseriesResult(format={self.format!r}, {n} patients × {k} features)"

    # -- views --------------------------------------------------------------------------
    @property
    def flags(self) -> pd.DataFrame:
        """Every value converted or set missing (``patient_id, time, variable, value, new_value,
        action, reason``, and ``line``/``file`` where known)."""
        return self.series.flags

    def patient_table(self) -> pd.DataFrame:
        """Descriptors and outcomes per patient (a study's patient table), index ``patient_id``.

        The static descriptors (PhysioNet: Age, Gender, Height, ICUType) joined with the
        outcomes when the source has them; a source with neither gives the patients' IDs alone.
        """
        ts = self.series
        table = ts.static.copy()
        if ts.outcomes is not None:
            table = table.join(ts.outcomes, how="outer") if len(table) else ts.outcomes.copy()
        if table.empty:
            table = pd.DataFrame(index=self.features.index)
        table.index = table.index.astype(str)
        table.index.name = "patient_id"
        return table

    # -- the contract -------------------------------------------------------------------
    def to_block(self) -> Block:
        """The features as the Cohort block ``timeseries``, with this run's provenance."""
        return Block(self.features, {**self.block_provenance, **self.provenance, "domain": self.domain})

    def summary(self) -> dict[str, Any]:
        """Counts: patients, measurements, variables, features, values converted or set missing."""
        s = self.series.summary()
        oc = self.series.outcomes
        window = self.block_provenance.get("window_hours")
        return {
            "format": self.format,
            "n_patients": int(self.features.shape[0]),
            "n_features": int(self.features.shape[1]),
            "n_observations": s["n_observations"],
            "n_variables": s["n_variables"],
            "n_converted": s["n_converted"],
            "n_set_missing": s["n_set_missing"],
            "n_flags": int(len(self.flags)),
            "window_hours": None if window is None else [None if w is None else float(w) for w in window],
            "outcomes": [] if oc is None else [str(c) for c in oc.columns],
        }

    def _write_files(self, out: Path) -> dict[str, Path]:
        return {"features": self.write_features(out / FEATURES_FILE),
                "flags": self.write_flags(out / _FLAGS_FILE),
                "patients": self.write_patient_table(out / _PATIENTS_FILE)}

    # -- single files (what the CLI's --out, --flags and --patients-out name) ------------
    def write_features(self, path: str | Path) -> Path:
        """The feature table (``.parquet``, ``.csv`` or ``.tsv``), ``patient_id`` as a column."""
        from pmed.io import write_table

        # patient_id as a plain column: what `pmed run` reads from CSV and Parquet alike
        return write_table(self.features.reset_index(), path, index=False)

    def write_flags(self, path: str | Path) -> Path:
        """The quality-control flags (values converted or set missing)."""
        from pmed.io import write_table

        return write_table(self.flags, path, index=False)

    def write_patient_table(self, path: str | Path) -> Path:
        """:meth:`patient_table`, ``patient_id`` as a column."""
        from pmed.io import write_table

        return write_table(self.patient_table().reset_index(), path, index=False)

    def write_feature_file(self, path: str | Path, *, flags: str | Path | None = None,
                           patients: str | Path | None = None) -> dict[str, Path]:
        """Write the feature table at ``path`` and ``provenance.json`` beside it.

        What ``pmed timeseries features --out FILE`` does: the provenance (domain
        ``timeseries``, ``features_file`` naming ``path``) lets :func:`pmed.cohort.read_block`
        read ``FILE`` back as this block. A ``provenance.json`` of another domain already in that
        folder is left alone (with a :class:`~pmed.errors.PmedWarning`); the feature file is then
        read as a plain table, which gives the same features.

        Parameters
        ----------
        path
            The feature table (``.parquet``, ``.csv`` or ``.tsv``).
        flags, patients
            Also write the flags and the patient table there.

        Returns
        -------
        dict
            ``features``, ``flags``, ``patients`` (those written) and ``provenance`` → path.
        """
        from pmed.errors import PmedWarning
        from pmed.io import check_not_input, write_text_atomic
        from pmed.io.jsonio import to_json

        path = Path(path)
        # none of the three outputs may replace the source this result was read from
        sources = [e["path"] for e in (self.provenance or {}).get("inputs", []) if e.get("path")]
        for target in (path, flags, patients):
            check_not_input(target, sources)
        files = {"features": self.write_features(path)}
        if flags is not None:
            files["flags"] = self.write_flags(flags)
        if patients is not None:
            files["patients"] = self.write_patient_table(patients)
        folder = path.parent
        prov_path = folder / PROVENANCE_FILE
        other = _domain_in(prov_path)
        if other not in (None, self.domain):
            warnings.warn(f"{prov_path} belongs to the {other!r} output there and is kept; "
                          f"{path.name} will be read as a plain table", PmedWarning, stacklevel=2)
            return files
        prov = {"domain": self.domain, **self.provenance, "summary": self.summary(),
                "features_file": path.name,
                "outputs": sorted(str(Path(p).relative_to(folder)) if Path(p).is_relative_to(folder)
                                  else str(p) for p in files.values())}
        files["provenance"] = write_text_atomic(prov_path, to_json(prov))
        return files


def _domain_in(prov_path: Path) -> str | None:
    if not prov_path.is_file():
        return None
    try:
        return json.loads(prov_path.read_text(encoding="utf-8")).get("domain")
    except (OSError, ValueError, AttributeError):
        return None


def _read_source(source: Path, fmt: str, unknown: str, sort: bool) -> TimeSeriesData:
    from pmed.timeseries import readers

    if fmt == "physionet2012":
        return readers.read_physionet2012(source, unknown=unknown)
    if fmt == "long":
        return readers.read_long(source, unknown=unknown, sort=sort)
    if fmt == "fhir":
        return readers.read_fhir(source, unknown=unknown)  # sorted by time as it is read
    return readers.read_wearable(source, unknown=unknown, sort=sort)


#: longest wearable epoch (minutes): one row per day; a longer one cannot make daily summaries
MAX_EPOCH_MINUTES = 1440.0


def run_timeseries(
    source: str | Path,
    *,
    format: str = "auto",
    start: float | None = 0.0,
    end: float | None = 48.0,
    unknown: str = "error",
    derived: bool = True,
    static: bool = True,
    epoch_minutes: float = 1.0,
    sort: bool = False,
    progress: Reporter | bool | None = None,
) -> TimeseriesResult:
    """Read a time-series source and summarise each patient into one row of features.

    Parameters
    ----------
    source
        A PhysioNet 2012 set (``.tar.gz``, folder of stay files, or one stay file; its
        ``Outcomes-<set>.txt`` beside it is read too), a long table (CSV/TSV/Parquet with
        ``patient_id, time, variable, value``), a FHIR bundle (``.json``, or a folder of them)
        or a wearable table (one row per timestamp, one column per stream).
    format
        ``"auto"`` (from the path and header, :func:`~pmed.timeseries.detect_format`),
        ``"physionet2012"``, ``"long"``, ``"fhir"`` or ``"wearable"``.
    start, end
        The window, hours (EHR sources; ``None`` for all rows).
    unknown
        Variables without a unit and plausible range: ``"error"``, ``"keep"`` or ``"drop"``.
    derived
        Add derived quantities (shock index, PaO2/FiO2, BUN/creatinine) and charted outputs.
    static
        Put the descriptors (age, sex…) in the features too; with ``False`` they are only in
        :meth:`TimeseriesResult.patient_table`.
    epoch_minutes
        Wearables: minutes per row (above 0, at most 1440).
    sort
        Long and wearable tables: sort the rows by patient and time instead of refusing times
        that go backwards within a patient.
    progress
        ``None``/``False`` (silent), ``True`` (a bar) or a :class:`~pmed.progress.Reporter`.

    Returns
    -------
    TimeseriesResult

    Raises
    ------
    OptionError
        An option outside its choices or range (checked before anything is read).
    InputError
        A source that cannot be read (the message names the file, line and fix), or a window
        that holds no measurement.
    ValidationError
        Unknown variables (``unknown="error"``), stays without outcomes.

    Warns
    -----
    TimeseriesWarning
        Patients without any measurement in the window; measurements of one variable repeated
        at the same time.
    """
    check_choice("format", format, FORMATS)
    check_choice("unknown", unknown, ("error", "keep", "drop"))
    check_window(start, end)
    check_positive("epoch_minutes", epoch_minutes, at_most=MAX_EPOCH_MINUTES)
    for name, flag in (("derived", derived), ("static", static), ("sort", sort)):
        check_flag(name, flag)
    reporter = as_reporter(progress)
    source = Path(source)
    fmt = detect_format(source) if format == "auto" else format
    reporter.start(2, f"reading {fmt}")
    ts = _read_source(source, fmt, unknown, sort)
    reporter.advance("summarising patients")
    if fmt == "wearable":
        from pmed.timeseries.wearables import daily_summary, wearable_features

        feats = wearable_features(daily_summary(ts.data, epoch_minutes=epoch_minutes))
        feats.index = feats.index.astype(str)
        feats.index.name = "patient_id"
        block_prov = {"reader": "pmed.timeseries.read_wearable", "format": fmt, **ts.summary(),
                      "epoch_minutes": float(epoch_minutes)}
    else:
        feats, prov = timeseries_block(ts, start=start, end=end, derived=derived, static=static)
        block_prov = {**prov, "format": fmt}
    reporter.advance("done")
    provenance = make_provenance(
        "timeseries", inputs={"source": source},
        options={"format": format, "detected_format": fmt, "start": start, "end": end, "unknown": unknown,
                 "derived": bool(derived), "static": bool(static), "epoch_minutes": float(epoch_minutes),
                 "sort": bool(sort)},
        libraries=["pyarrow"])
    return TimeseriesResult(feats, ts, fmt, block_prov, provenance=provenance)


def read_block(path: str | Path) -> Block | None:
    """The features a time-series run wrote, as a Cohort block (:func:`pmed.cohort.read_block`).

    ``path`` is a folder written by :meth:`TimeseriesResult.write` or the feature file that
    ``provenance.json`` beside it names (``pmed timeseries features --out FILE``). Any other file
    there (the patient table, the flags) gives ``None``: it is read as a plain table.
    """
    from pmed.errors import InputError

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    prov_path = folder / PROVENANCE_FILE
    try:
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {PROVENANCE_FILE}: {type(e).__name__}", file=prov_path,
                         fix="re-run pmed timeseries features to write it again") from None
    if not isinstance(prov, dict):
        return None
    name = prov.get("features_file") or FEATURES_FILE
    feature_file = folder / str(name)
    if path.is_dir():
        if not feature_file.is_file():
            return None
    elif path.name != feature_file.name:
        return None
    if feature_file.name.lower().endswith((".parquet", ".pq")):
        try:
            data = pd.read_parquet(feature_file)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the feature table: {type(e).__name__}", file=feature_file,
                             fix="re-run pmed timeseries features to write it again") from None
        if "patient_id" not in data.columns:
            raise InputError("no patient_id column", file=feature_file,
                             fix="re-run pmed timeseries features to write it again")
        data = data.set_index("patient_id")
        data.index = data.index.astype(str)
    else:
        from pmed.io.tables import read_table

        data = read_table(feature_file, id="patient_id")
    data.index.name = "patient_id"
    meta = {k: v for k, v in prov.items() if k not in ("outputs", "summary")}
    return Block(data, {**meta, "domain": "timeseries", "file": str(feature_file),
                        "reader": "pmed.timeseries.api.read_block"})
