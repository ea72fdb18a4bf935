"""EHR and wearable time series: readers → checks → alignment → features and models.

:func:`run_timeseries` does it in one call (source → :class:`TimeseriesResult`, whose
``to_block()`` is the Cohort block ``timeseries`` and ``write(out)`` its files and provenance).
Readers (:mod:`pmed.timeseries.readers`) turn long tables, PhysioNet 2012 stays, FHIR bundles
and wearable tables into one long format ``patient_id, time, variable, value`` with units and
plausible ranges checked (:mod:`pmed.timeseries.variables`); :mod:`pmed.timeseries.align` puts
them on windows and regular grids with masks; :mod:`pmed.timeseries.features` makes
patient-level features for the Cohort block ``timeseries``; :mod:`pmed.timeseries.grud` is a
GRU-D sequence model (PyTorch, imported lazily); :mod:`pmed.timeseries.ecg` and
:mod:`pmed.timeseries.wearables` summarise waveforms and activity streams.
"""

from pmed.timeseries._options import TimeseriesWarning
from pmed.timeseries.align import Grid, rolling_windows, to_grid, window
from pmed.timeseries.api import TimeseriesResult, run_timeseries
from pmed.timeseries.features import (
    STATS,
    add_derived,
    add_timeseries_block,
    detect_format,
    features_from_file,
    output_rates,
    summarize,
    timeseries_block,
)
from pmed.timeseries.readers import (
    TimeSeriesData,
    Waveform,
    read_fhir,
    read_long,
    read_physionet2012,
    read_physionet_outcomes,
    read_physionet_record,
    read_wearable,
    read_wfdb,
)
from pmed.timeseries.variables import (
    PHYSIONET2012,
    VITALS,
    WEARABLE,
    VariableSpec,
    check_values,
    registry,
)

__all__ = [
    "run_timeseries", "TimeseriesResult", "TimeseriesWarning",
    "Grid", "rolling_windows", "to_grid", "window",
    "STATS", "add_derived", "add_timeseries_block", "detect_format", "features_from_file", "output_rates",
    "summarize",
    "timeseries_block",
    "TimeSeriesData", "Waveform", "read_fhir", "read_long", "read_physionet2012",
    "read_physionet_outcomes", "read_physionet_record", "read_wearable", "read_wfdb",
    "PHYSIONET2012", "VITALS", "WEARABLE", "VariableSpec", "check_values", "registry",
]
