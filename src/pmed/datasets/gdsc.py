"""Genomics of Drug Sensitivity in Cancer (GDSC) release 17, read from the shared reference data.

The files are those bundled with the PyPI package ``gdsctools`` 1.0.1 and kept under
``<shared>/data/drug_response/gdsc_v17/`` (see :func:`~pmed.datasets._paths.shared_data_dir`):

``genomic_features_v17.csv.gz``
    988 cell lines (``COSMIC_ID``) × ``TISSUE_FACTOR``, ``MSI_FACTOR`` and 677 binary genomic
    features: 270 mutations (``<GENE>_mut``) and 407 recurrent copy-number alterations
    (``gain_cnaPANCAN…`` / ``loss_cnaPANCAN…``).
``IC50_v17.csv.gz``
    Natural-log IC50 (µM) of 265 drugs (``Drug_<id>_IC50``); NaN = line not screened.
``DRUG_DECODE.csv``
    Name and target of 11 of the drugs (e.g. ``Drug_1047_IC50`` = Nutlin-3a, MDM2).

Cell lines play the part of patients: the cohort's ID is the COSMIC ID (as a string) and the
genomic features keep the file's column names, so that importances name ``TP53_mut`` directly.

References
----------
Yang W. et al. (2013) Genomics of Drug Sensitivity in Cancer (GDSC). *Nucleic Acids Res.* 41,
D955–D961. Iorio F. et al. (2016) A landscape of pharmacogenomic interactions in cancer. *Cell*
166, 740–754. Cokelaer T. et al. (2018) GDSCTools for mining pharmacogenomic interactions in
cancer. *Bioinformatics* 34, 1226–1228.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pandas as pd

from pmed.cohort import Cohort
from pmed.datasets._paths import require_path, shared_data_dir
from pmed.errors import InputError
from pmed.schema import ColumnSpec, TableSchema

__all__ = [
    "GDSC_SUBDIR",
    "GDSC_ID",
    "gdsc_dir",
    "load_gdsc",
    "gdsc_drugs",
    "resolve_gdsc_drug",
    "write_gdsc_table",
]

#: Location of the release inside the shared folder.
GDSC_SUBDIR = Path("data") / "drug_response" / "gdsc_v17"
#: ID column of every GDSC table.
GDSC_ID = "COSMIC_ID"

_FEATURES_FILE = "genomic_features_v17.csv.gz"
_IC50_FILE = "IC50_v17.csv.gz"
_DECODE_FILE = "DRUG_DECODE.csv"
_IC50_UNIT = "ln(µM)"
_CITATION = (
    "Yang W et al. (2013) Nucleic Acids Res 41:D955; Iorio F et al. (2016) Cell 166:740; "
    "data as bundled in gdsctools 1.0.1 (Cokelaer T et al. (2018) Bioinformatics 34:1226)"
)
_DRUG_COLUMN = re.compile(r"^Drug_(\d+)_IC50$")


# ---------------------------------------------------------------------- locating and reading
def gdsc_dir(root: str | Path | None = None) -> Path:
    """The folder holding the GDSC v17 files.

    Parameters
    ----------
    root
        The ``gdsc_v17`` folder itself, or a shared folder that contains
        ``data/drug_response/gdsc_v17``. Default: under :func:`shared_data_dir`.

    Returns
    -------
    pathlib.Path
        The folder (not checked for existence; the loaders do that file by file).
    """
    if root is None:
        return shared_data_dir() / GDSC_SUBDIR
    root = Path(root).expanduser()
    # accept the shared folder too: it is what PMED_SHARED names, so users will pass it
    if not (root / _IC50_FILE).exists() and (root / GDSC_SUBDIR).is_dir():
        return root / GDSC_SUBDIR
    return root


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    require_path(path, what=what)
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(
            f"cannot parse {what}: {first}", file=path,
            fix="restore the file from the gdsctools 1.0.1 package",
        ) from None


def _indexed(df: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    """Index a GDSC table by COSMIC ID (string), refusing missing or repeated IDs."""
    if GDSC_ID not in df.columns:
        raise InputError(f"{what} has no {GDSC_ID} column", file=path,
                         fix="restore the file from the gdsctools 1.0.1 package")
    ids = df[GDSC_ID]
    if ids.isna().any():
        raise InputError(f"{what} has rows without a {GDSC_ID}", file=path)
    # COSMIC IDs are integers in the files; go through int so "683665.0" never appears
    ids = ids.astype("int64").astype(str) if pd.api.types.is_numeric_dtype(ids) else ids.astype(str)
    if ids.duplicated().any():
        raise InputError(
            f"{what} repeats {GDSC_ID}s: {', '.join(ids[ids.duplicated()].unique()[:5])}",
            file=path,
        )
    return df.drop(columns=[GDSC_ID]).set_axis(pd.Index(ids, name=GDSC_ID), axis=0)


def _read_features(folder: Path) -> pd.DataFrame:
    path = folder / _FEATURES_FILE
    df = _indexed(_read_csv(path, "GDSC v17 genomic features"), path, "GDSC v17 genomic features")
    if "TISSUE_FACTOR" not in df.columns:
        raise InputError("no TISSUE_FACTOR column", file=path,
                         fix="restore the file from the gdsctools 1.0.1 package")
    binary = [c for c in df.columns if c != "TISSUE_FACTOR"]
    values = df[binary]
    if not values.apply(pd.api.types.is_numeric_dtype).all() or not values.isin([0, 1]).all().all():
        bad = [c for c in binary if not df[c].isin([0, 1]).all()]
        raise InputError(
            f"genomic features must be 0/1; not so in {', '.join(bad[:5])}", file=path,
            fix="restore the file from the gdsctools 1.0.1 package",
        )
    return df


def _read_ic50(folder: Path) -> pd.DataFrame:
    path = folder / _IC50_FILE
    df = _indexed(_read_csv(path, "GDSC v17 IC50 table"), path, "GDSC v17 IC50 table")
    bad = [c for c in df.columns if not _DRUG_COLUMN.match(str(c))]
    if bad or not df.apply(pd.api.types.is_numeric_dtype).all():
        raise InputError(
            "IC50 table must hold only numeric Drug_<id>_IC50 columns"
            + (f"; unexpected: {', '.join(map(str, bad[:5]))}" if bad else ""),
            file=path, fix="restore the file from the gdsctools 1.0.1 package",
        )
    return df.astype("float64")


def _read_decode(folder: Path) -> pd.DataFrame:
    """Drug names and targets, indexed by drug column; empty when the file is absent."""
    path = folder / _DECODE_FILE
    if not path.exists():
        # names are a convenience: numeric IDs still work without them
        return pd.DataFrame(columns=["name", "target"], index=pd.Index([], name="drug"))
    df = _read_csv(path, "GDSC drug decode table")
    need = {"DRUG_ID", "DRUG_NAME", "DRUG_TARGET"}
    if not need <= set(df.columns):
        raise InputError(f"drug decode table lacks {', '.join(sorted(need - set(df.columns)))}",
                         file=path)
    ids = df["DRUG_ID"].astype(str).str.strip()
    # accept "Drug_1047" as well as "Drug_1047_IC50" so the index always matches IC50 columns
    ids = ids.where(ids.str.endswith("_IC50"), ids + "_IC50")
    return pd.DataFrame(
        {"name": df["DRUG_NAME"].astype(str).str.strip().to_numpy(),
         "target": df["DRUG_TARGET"].astype(str).str.strip().to_numpy()},
        index=pd.Index(ids, name="drug"),
    )


def _norm(s: str) -> str:
    # "Nutlin-3a", "nutlin 3a" and "NUTLIN3A" are the same drug to a user
    return re.sub(r"[^0-9a-z]", "", s.lower())


def resolve_gdsc_drug(
    drug: str | int, columns: list[str] | pd.Index, decode: pd.DataFrame | None = None
) -> str:
    """The IC50 column a user means by ``drug``.

    Parameters
    ----------
    drug
        ``"Drug_1047_IC50"``, ``"Drug_1047"``, ``"1047"`` (or ``1047``), or a drug name from
        ``DRUG_DECODE.csv`` such as ``"Nutlin-3a"``; case, spaces and hyphens are ignored.
    columns
        The IC50 table's drug columns.
    decode
        Names and targets indexed by drug column (see :func:`gdsc_drugs`).

    Returns
    -------
    str
        The column name, e.g. ``"Drug_1047_IC50"``.

    Raises
    ------
    InputError
        When no column matches, with the closest names and IDs as suggestions.
    """
    cols = [str(c) for c in columns]
    by_id = {m.group(1): c for c in cols if (m := _DRUG_COLUMN.match(c))}
    text = str(drug).strip()
    m = re.fullmatch(r"(?i)(?:drug_?)?(\d+)(?:_ic50)?", text)
    if m and m.group(1) in by_id:
        return by_id[m.group(1)]
    names: dict[str, str] = {}
    if decode is not None:
        names = {_norm(name): col for col, name in decode["name"].items()}
    col = names.get(_norm(text)) or (f"Drug_{m.group(1)}_IC50" if m else None)
    if col in cols:
        return col
    if col is not None and decode is not None and col in decode.index:
        # DRUG_DECODE.csv names drugs that this release's IC50 table does not hold
        # (v17: Drug_999 = Erlotinib); say so instead of suggesting look-alikes
        raise InputError(
            f"GDSC drug {text!r} ({decode.loc[col, 'name']}, {col}) is named in "
            f"{_DECODE_FILE} but has no IC50 column in this release",
            fix="pick a screened drug; pmed.datasets.gdsc_drugs() lists them",
        )
    options = [*(decode["name"].tolist() if decode is not None else []), *cols]
    close = difflib.get_close_matches(text, options, n=5, cutoff=0.5)
    raise InputError(
        f"unknown GDSC drug {text!r}",
        fix=(f"did you mean {', '.join(close)}? " if close else "")
        + "use Drug_<id>, <id> or a named drug; pmed.datasets.gdsc_drugs() lists them all",
    )


# ---------------------------------------------------------------------- public API
def gdsc_drugs(root: str | Path | None = None) -> pd.DataFrame:
    """Every drug of the GDSC v17 IC50 table with how many cell lines were screened.

    Parameters
    ----------
    root
        See :func:`gdsc_dir`.

    Returns
    -------
    pandas.DataFrame
        One row per IC50 column (265 in v17), indexed by the column name (``drug``), in file
        order, with columns ``drug_id`` (int), ``name`` and ``target`` (from
        ``DRUG_DECODE.csv``; missing for the drugs it does not name) and ``n_screened`` (cell
        lines with a measured IC50).

    Raises
    ------
    DataNotFoundError
        When the IC50 file is absent.
    """
    folder = gdsc_dir(root)
    ic50 = _read_ic50(folder)
    decode = _read_decode(folder)
    out = pd.DataFrame(index=pd.Index(ic50.columns, name="drug"))
    out["drug_id"] = [int(_DRUG_COLUMN.match(c).group(1)) for c in ic50.columns]
    out["name"] = decode["name"].reindex(out.index).astype("string")
    out["target"] = decode["target"].reindex(out.index).astype("string")
    out["n_screened"] = ic50.notna().sum().astype("int64")
    return out


def _schema(features: pd.DataFrame, outcomes: list[str], drug_label: str | None) -> TableSchema:
    cols: dict[str, ColumnSpec] = {
        "TISSUE_FACTOR": ColumnSpec(
            type="category",
            categories=tuple(sorted(features["TISSUE_FACTOR"].dropna().astype(str).unique())),
            description="tissue of origin of the cell line (GDSC TISSUE_FACTOR)",
        ),
    }
    for c in features.columns:
        if c == "TISSUE_FACTOR":
            continue
        if c == "MSI_FACTOR":
            desc = "microsatellite instability: 1 = MSI-high, 0 = stable"
        elif c.endswith("_mut"):
            desc = f"1 = {c[:-4]} carries a cancer-driver mutation (GDSC CFE), 0 = not"
        elif c.startswith(("gain_", "loss_")):
            desc = f"1 = recurrent copy-number {c[:4]} {c[5:]} (GDSC CFE), 0 = not"
        else:
            desc = "binary genomic feature (GDSC CFE)"
        cols[c] = ColumnSpec(type="int", min=0, max=1, description=desc)
    for c in outcomes:
        what = drug_label if c == "ln_ic50" else c.removesuffix("_IC50")
        # outcomes are not required: a schema kept for prediction must accept new lines
        # for which no IC50 was measured
        cols[c] = ColumnSpec(type="float", unit=_IC50_UNIT, required=False,
                             description=f"outcome: natural-log IC50 of {what} (NaN = not screened)")
    return TableSchema(id=GDSC_ID, columns=cols)


def load_gdsc(drug: str | int | None = None, *, root: str | Path | None = None) -> Cohort:
    """GDSC v17 cell lines as a :class:`~pmed.cohort.Cohort` with drug response as outcomes.

    Parameters
    ----------
    drug
        ``None`` for every drug, or one drug: ``"Drug_1047"``, ``"Drug_1047_IC50"``,
        ``"1047"`` or a name from ``DRUG_DECODE.csv`` such as ``"Nutlin-3a"`` (case-insensitive).
    root
        See :func:`gdsc_dir`. Default: ``$PMED_SHARED`` or ``../shared``.

    Returns
    -------
    Cohort
        Indexed by COSMIC ID (string). ``patients``: ``TISSUE_FACTOR`` (category, 27 tissues),
        ``MSI_FACTOR`` and the 677 binary genomic features (``Int64`` 0/1, names as in the
        file, e.g. ``TP53_mut``); 988 × 679 in v17. ``outcomes``: without ``drug``, the 265
        ``Drug_<id>_IC50`` columns (ln IC50 in µM, NaN = not screened); with ``drug``, one
        column ``ln_ic50`` and only the lines screened for it (846 for Nutlin-3a). ``sources``
        records the files, the drug (name and target when known) and the citation.

    Raises
    ------
    DataNotFoundError
        When a GDSC file is absent (the message names the path and ``PMED_SHARED``).
    InputError
        When a file is malformed or the drug is unknown.
    """
    folder = gdsc_dir(root)
    features = _read_features(folder)
    ic50 = _read_ic50(folder)
    decode = _read_decode(folder)
    # lines need both their genomics (features) and their screen (outcomes)
    common = features.index.intersection(ic50.index, sort=False)
    features, ic50 = features.loc[common], ic50.loc[common]

    sources = {
        "dataset": "GDSC release 17 (Genomics of Drug Sensitivity in Cancer)",
        "genomic_features": str(folder / _FEATURES_FILE),
        "ic50": str(folder / _IC50_FILE),
        "package": "gdsctools 1.0.1 (BSD-3-Clause); data under cancerrxgene.org terms",
        "citation": _CITATION,
    }
    if drug is None:
        outcome_names = list(ic50.columns)
        outcomes = ic50
        label = None
    else:
        col = resolve_gdsc_drug(drug, ic50.columns, decode)
        screened = ic50[col].notna()
        features = features.loc[screened]
        outcomes = ic50.loc[screened, [col]].rename(columns={col: "ln_ic50"})
        outcome_names = ["ln_ic50"]
        name = decode["name"].get(col)
        target = decode["target"].get(col)
        label = f"{name} ({col})" if name else col
        sources["drug"] = col
        if name:
            sources["drug_name"] = str(name)
        if target:
            sources["drug_target"] = str(target)
        sources["n_screened"] = str(int(screened.sum()))

    schema = _schema(features, outcome_names, label)
    patients = _typed(features, schema)
    return Cohort(patients, outcomes=outcomes, schema=schema, sources=sources)


def _typed(features: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Give the features the dtypes :meth:`TableSchema.validate` would give the same data read
    from a file, so that a cohort loaded here equals one read back from :func:`write_gdsc_table`.
    """
    out = {}
    for c in features.columns:
        spec = schema.columns[c]
        if spec.type == "category":
            out[c] = pd.Categorical(features[c].astype(str), categories=list(spec.categories))
        else:
            out[c] = features[c].astype("Int64")
    # build in one go: inserting ~680 columns one by one fragments the frame
    return pd.DataFrame(out, index=features.index)


def _schema_path(path: Path) -> Path:
    name = path.name
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        name = name.removesuffix(suffix)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return path.with_name(f"{stem}.schema.yaml")


def write_gdsc_table(
    path: str | Path, drug: str | int, *, root: str | Path | None = None
) -> tuple[Path, Path]:
    """Write one drug's GDSC table and its schema, for study files to point at.

    Parameters
    ----------
    path
        Output table (``.csv``, ``.tsv`` or ``.parquet``; the format follows the suffix).
    drug
        Which drug (see :func:`load_gdsc`).
    root
        See :func:`gdsc_dir`.

    Returns
    -------
    tuple of pathlib.Path
        The table (ID column ``COSMIC_ID``, ``TISSUE_FACTOR``, ``MSI_FACTOR``, the binary
        features, then ``ln_ic50``; one row per screened line) and the schema written beside it
        as ``<stem>.schema.yaml``. ``Cohort.from_files(table, schema=schema,
        outcomes=["ln_ic50"])`` reads them back into the cohort :func:`load_gdsc` returns.
    """
    import yaml

    from pmed.io import write_table, write_text_atomic

    path = Path(path)
    cohort = load_gdsc(drug, root=root)
    table = cohort.patients.join(cohort.outcomes)
    write_table(table, path, index=True)

    src = cohort.sources
    header = [
        f"# Schema of {path.name}: GDSC v17 cell lines screened for "
        f"{src.get('drug_name', src['drug'])} ({src['drug']}"
        + (f"; target {src['drug_target']}" if "drug_target" in src else "") + ").",
        "# Written by pmed.datasets.write_gdsc_table; outcome: ln_ic50 (natural-log IC50, µM).",
        f"# Source: {src['package']}.",
        f"# Cite: {src['citation']}.",
    ]
    body = yaml.safe_dump(cohort.schema.to_dict(), sort_keys=False, allow_unicode=True,
                          width=100)
    schema_path = write_text_atomic(_schema_path(path), "\n".join(header) + "\n" + body)
    return path, schema_path

