"""Readers: every source becomes one long table ``patient_id, time, variable, value``.

``time`` is in hours: since admission for ICU records, since the patient's first observation for
FHIR bundles and long tables with date-times (or since midnight of the first day with
``origin="midnight"``, which wearables use so that days are calendar days). Every reader
checks units and plausible ranges (:func:`pmed.timeseries.variables.check_values`) and returns a
:class:`TimeSeriesData` holding the clean table, the per-patient descriptors, the flags of
what was converted or set missing, and outcomes where the source has them.

One module per source: long tables (CSV/Parquet, :func:`read_long`,
:mod:`~pmed.timeseries.readers.long`), the PhysioNet/CinC Challenge 2012 format
(:func:`read_physionet2012`, :mod:`~pmed.timeseries.readers.physionet`), FHIR Observation
bundles (:func:`read_fhir`, :mod:`~pmed.timeseries.readers.fhir`), WFDB waveform records
(:func:`read_wfdb`, :mod:`~pmed.timeseries.readers.waveform`) and wide per-timestamp wearable
tables (:func:`read_wearable`, :mod:`~pmed.timeseries.readers.wearable`). What they share (the
result types, time parsing, order and unit checks) is in :mod:`~pmed.timeseries.readers._base`.
"""

from pmed.timeseries.readers._base import LONG_COLUMNS, TimeSeriesData, Waveform
from pmed.timeseries.readers.fhir import FHIR_LOINC, read_fhir
from pmed.timeseries.readers.long import read_long
from pmed.timeseries.readers.physionet import (
    read_physionet2012,
    read_physionet_outcomes,
    read_physionet_record,
)
from pmed.timeseries.readers.waveform import read_wfdb
from pmed.timeseries.readers.wearable import read_wearable

__all__ = [
    "TimeSeriesData",
    "Waveform",
    "LONG_COLUMNS",
    "read_long",
    "read_physionet2012",
    "read_physionet_record",
    "read_physionet_outcomes",
    "read_fhir",
    "read_wfdb",
    "read_wearable",
    "FHIR_LOINC",
]
