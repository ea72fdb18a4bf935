"""WFDB waveform records (``.hea`` + signal files) → :class:`Waveform` (package ``wfdb``)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from pmed.errors import InputError, require
from pmed.timeseries._options import short_list
from pmed.timeseries.readers._base import Waveform

__all__ = ["read_wfdb"]


def read_wfdb(record: str | Path, *, channels: Iterable[str] | None = None) -> Waveform:
    """Read a WFDB record (``.hea`` + ``.dat``) with the ``wfdb`` package.

    Parameters
    ----------
    record
        The record path with or without ``.hea``.
    channels
        Signal names to keep (default: all).

    Raises
    ------
    InputError
        Missing or unreadable record, unknown channel, or a record without samples.
    MissingDependencyError
        The ``wfdb`` package is not installed (extra ``timeseries``).
    """
    wfdb = require("wfdb", extra="timeseries", feature="reading WFDB records")
    rec = Path(record)
    if rec.suffix in (".hea", ".dat"):
        rec = rec.with_suffix("")
    hea = rec.with_suffix(".hea")
    if not hea.exists():
        raise InputError("WFDB header not found", file=hea,
                         fix="give the record path (the .hea file and its signal files side by side)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # wfdb's own warnings on odd headers: the error below says it
            r = wfdb.rdrecord(str(rec))
    except Exception as e:  # noqa: BLE001 - wfdb raises plain exceptions of many kinds on bad files
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot read the WFDB record: {msg}", file=hea,
                         fix="check the header and signal files") from None
    if r.p_signal is None or r.sig_len == 0 or r.p_signal.shape[0] == 0:
        raise InputError("empty record: no samples", file=hea, fix="check the recording")
    names = list(r.sig_name)
    sig = pd.DataFrame(r.p_signal, columns=names)
    if channels is not None:
        channels = list(channels)
        miss = [c for c in channels if c not in names]
        if miss:
            raise InputError(f"channel(s) {short_list(miss)} not in the record", file=hea,
                             fix=f"available: {short_list(names)}")
        sig = sig[channels]
    units = {n: u for n, u in zip(names, r.units, strict=True) if n in sig.columns}
    return Waveform(sig, float(r.fs), units, rec.name, {"comments": list(r.comments or []),
                                                        "n_samples": int(r.sig_len)})
