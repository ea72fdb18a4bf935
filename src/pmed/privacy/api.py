"""``run_privacy``: the re-identification risk of a table, and a release that meets k and l."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from pmed.cohort import Block
from pmed.result import DomainResult, make_provenance

__all__ = ["PrivacyResult", "run_privacy", "PRIVACY_FILE"]

#: The report's name inside the output folder.
PRIVACY_FILE = "privacy.json"


@dataclass
class PrivacyResult(DomainResult):
    """What :func:`run_privacy` found: ``risk`` (k-anonymity and l-diversity of the table as
    given), and with ``enforce``: ``released`` (the table that meets k and l),
    ``enforcement`` (what was generalized and suppressed, and the information lost) and
    ``risk_after``. ``records`` holds each input record's class size and whether it was
    suppressed. ``write`` gives ``privacy.json`` and, with ``enforce``, ``released.<ext>``."""

    domain: ClassVar[str] = "privacy"
    block_name: ClassVar[str] = "privacy"

    risk: dict[str, Any] = field(default_factory=dict)
    records: pd.DataFrame = field(default_factory=pd.DataFrame)
    released: pd.DataFrame | None = None
    enforcement: dict[str, Any] | None = None
    risk_after: dict[str, Any] | None = None
    released_suffix: str = ".csv"

    def to_block(self) -> Block:
        """Per input record (indexed by patient ID when the table has one, else row number):
        ``class_size``, ``at_risk`` and, after enforcement, ``suppressed``."""
        return Block(self.records.copy(), dict(self.provenance))

    def summary(self) -> dict[str, Any]:
        keys = ("n_records", "n_classes", "k", "k_min", "n_classes_below_k", "n_records_below_k", "l", "l_min",
                "records_at_risk_share")
        out = {k: self.risk[k] for k in keys if k in self.risk}
        if self.enforcement is not None:
            out["records_suppressed"] = self.enforcement["records_suppressed"]
            out["precision_loss"] = self.enforcement["precision_loss"]
            out["levels"] = {q: c["level_name"] for q, c in self.enforcement["columns"].items()}
            if self.risk_after:
                out["k_min_after"] = self.risk_after.get("k_min")
                if "l_min" in self.risk_after:
                    out["l_min_after"] = self.risk_after["l_min"]
        return out

    def report(self) -> dict[str, Any]:
        """Everything ``privacy.json`` holds (counts and levels only, never a value)."""
        return {"risk": self.risk, "enforcement": self.enforcement, "risk_after": self.risk_after}

    def _write_files(self, out: Path) -> dict[str, Path]:
        from pmed.io import write_table, write_text_atomic
        from pmed.io.jsonio import to_json

        files = {"privacy": write_text_atomic(out / PRIVACY_FILE, to_json(self.report()))}
        if self.released is not None:
            files["released"] = write_table(self.released, out / f"released{self.released_suffix}", index=False)
        return files


def run_privacy(
    data: str | Path | pd.DataFrame,
    *,
    quasi: str | list[str],
    k: int,
    l: int | None = None,  # noqa: E741 - the measure's name
    sensitive: str | None = None,
    enforce: bool = False,
    max_suppression: float = 0.05,
    id_col: str | None = None,
) -> PrivacyResult:
    """Measure (and with ``enforce`` reduce) the re-identification risk of a table.

    Parameters
    ----------
    data
        A CSV/TSV/Parquet file (never modified) or a table.
    quasi
        Quasi-identifier columns (a list, or comma-separated).
    k
        Smallest class size wanted (1 … number of records).
    l
        Fewest distinct sensitive values wanted per class (needs ``sensitive``).
    sensitive
        The sensitive column.
    enforce
        Generalize the quasi-identifiers, then suppress the records still at risk, until k (and
        l) hold; the result carries the released table.
    max_suppression
        Share of records that may be suppressed before generalizing further (0 … 1).
    id_col
        The patient ID column (indexes :meth:`PrivacyResult.to_block`). Default: the first of
        :data:`pmed.privacy.deid.ID_CANDIDATES` present.

    Returns
    -------
    PrivacyResult

    Raises
    ------
    NotFoundError
        A named column is not in the table (the columns are listed).
    OptionError
        ``k < 1``, ``k`` larger than the table, ``l < 1``, ``l`` without ``sensitive``.
    InputError
        The file cannot be read.
    """
    from pmed.privacy.deid import _pick_id, _read, split_columns
    from pmed.privacy.risk import _enforce, check_risk, equivalence_classes

    quasi = split_columns(quasi)
    df, source, _ = _read(data)
    risk = check_risk(df, quasi, k=k, l=l, sensitive=sensitive, source=source)
    pid = _pick_id(df, id_col, source)
    cls = equivalence_classes(df, quasi, sensitive if l is not None else None)
    at_risk = cls["class_size"] < k
    if l is not None:
        at_risk |= cls["class_distinct_sensitive"] < l
    records = pd.DataFrame({"class_size": cls["class_size"].to_numpy(), "at_risk": at_risk.to_numpy()})
    released = enforcement = risk_after = None
    if enforce:
        released, enforcement, kept = _enforce(df, quasi, k=k, l=l, sensitive=sensitive,
                                               max_suppression=max_suppression, source=source)
        records["suppressed"] = ~kept
        if len(released) >= k:
            risk_after = check_risk(released, quasi, k=k, l=l, sensitive=sensitive)
        else:
            risk_after = {"n_records": int(len(released)), "note": "fewer records left than k"}
    if pid is not None:
        records.index = pd.Index(df[pid].astype(str).str.strip().to_numpy(), name=pid)
    else:
        records.index = pd.RangeIndex(1, len(records) + 1, name="row")
    options = {"quasi": quasi, "k": k, "l": l, "sensitive": sensitive, "enforce": enforce,
               "max_suppression": max_suppression, "id_col": pid}
    prov = make_provenance("privacy", inputs={"table": source} if source else None, options=options)
    suffix = ".csv"
    if source is not None:
        from pmed.io.tables import _suffix

        suffix = _suffix(Path(source)).lower()
        suffix = ".tsv" if suffix == ".txt" else ".parquet" if suffix == ".pq" else suffix
    return PrivacyResult(risk=risk, records=records, released=released, enforcement=enforcement,
                         risk_after=risk_after, released_suffix=suffix, provenance=prov)

