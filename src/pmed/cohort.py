"""The Cohort: one container for patients, outcomes and modality blocks, aligned by patient ID.

Like AnnData for single cells, a :class:`Cohort` is what every step of pmed reads and writes:

- ``patients``: one row per patient (demographics, history, lifestyle, environment), indexed by ID;
- ``outcomes``: targets aligned to ``patients`` (binary or continuous now; time-to-event later);
- ``blocks``: named feature tables from other modalities (``genotypes``, ``prs``, ``pgx``,
  ``image_embedding``, ``omics``, ``timeseries``…), each with its provenance;
- ``sources``: paths of raw files too large to hold (VCF, images, h5ad) for readers that need them.

On disk a cohort is a folder (see :meth:`Cohort.save`)::

    cohort.json              manifest: format, version, ID name, outcome names, blocks, schema
    patients.parquet
    outcomes.parquet
    blocks/<name>.parquet
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import IDMismatchError, InputError, ValidationError, format_rows, shorten
from pmed.io._atomic import atomic_dir
from pmed.io.jsonio import to_json
from pmed.schema import TableSchema

__all__ = ["Cohort", "Block", "STANDARD_BLOCKS", "COHORT_FORMAT_VERSION", "read_block",
           "register_block_reader", "BLOCK_READERS"]

COHORT_FORMAT_VERSION = 1

#: Block names that pmed's modality packages fill. Any other name is allowed too.
STANDARD_BLOCKS = (
    "genotypes",  # allele dosages, one column per variant
    "prs",  # polygenic scores, one column per score
    "pgx",  # pharmacogene diplotypes / phenotypes
    "images",  # image references (paths)
    "image_embedding",
    "omics",
    "timeseries",
    "spatial",  # spatial transcriptomics: compartment shares, tumour-immune interface
)


@dataclass
class Block:
    """A named feature table indexed by patient ID, with where it came from."""

    data: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)


class Cohort:
    """Patients × (clinical table, outcomes, modality blocks), aligned by patient ID.

    Parameters
    ----------
    patients
        Table indexed by patient ID (unique, non-missing). Outcome columns may be included and
        named in ``outcomes``; they are moved to :attr:`outcomes`.
    outcomes
        Names of outcome columns inside ``patients``, or a table indexed by the same IDs.
    schema
        The :class:`~pmed.schema.TableSchema` the patient table satisfies (kept for prediction).
    blocks
        Name → table (or :class:`Block`), added with :meth:`add_block`.
    sources
        Name → path of raw modality files.
    """

    def __init__(
        self,
        patients: pd.DataFrame,
        *,
        outcomes: pd.DataFrame | Iterable[str] | None = None,
        schema: TableSchema | None = None,
        blocks: Mapping[str, pd.DataFrame | Block] | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        patients = patients.copy()
        patients.index = patients.index.astype(str)
        _check_index(patients.index, "patients")
        if outcomes is None:
            outcome_table = pd.DataFrame(index=patients.index)
        elif isinstance(outcomes, pd.DataFrame):
            outcome_table = outcomes.copy()
            outcome_table.index = outcome_table.index.astype(str)
            _check_same_ids(patients.index, outcome_table.index, "patients", "outcomes")
            outcome_table = outcome_table.loc[patients.index]
        else:
            names = list(outcomes)
            missing = [c for c in names if c not in patients.columns]
            if missing:
                raise ValidationError(
                    [f"outcome column {c!r} not in the patient table" for c in missing],
                    fix=f"available columns: {', '.join(map(str, patients.columns))}",
                )
            outcome_table = patients[names].copy()
            patients = patients.drop(columns=names)
        self.patients: pd.DataFrame = patients
        self.outcomes: pd.DataFrame = outcome_table
        self.schema = schema
        self.blocks: dict[str, Block] = {}
        self.sources: dict[str, str] = dict(sources or {})
        for name, b in (blocks or {}).items():
            if isinstance(b, Block):
                self.add_block(name, b.data, provenance=b.provenance)
            else:
                self.add_block(name, b)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_files(
        cls,
        patients: str | Path,
        *,
        schema: TableSchema | str | Path | None = None,
        outcomes: Iterable[str] = (),
        id: str | None = None,
    ) -> Cohort:
        """Read a patient table (CSV/TSV/Parquet), validate it, and split off outcome columns."""
        from pmed.io.tables import read_table

        if isinstance(schema, (str, Path)):
            schema = TableSchema.read(schema)
        df = read_table(patients, schema=schema, id=id)
        if schema is None:
            schema = TableSchema.infer(df.reset_index(), id=df.index.name or "patient_id")
        return cls(df, outcomes=list(outcomes), schema=schema)

    # ------------------------------------------------------------------ basic properties
    @property
    def ids(self) -> pd.Index:
        """Patient IDs, in order."""
        return self.patients.index

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    def __len__(self) -> int:
        return self.n_patients

    def __repr__(self) -> str:
        lines = [f"Cohort with {self.n_patients} patients"]
        lines.append(f"    patients: {', '.join(map(str, self.patients.columns[:12]))}"
                     + (" …" if self.patients.shape[1] > 12 else ""))
        if self.outcomes.shape[1]:
            lines.append(f"    outcomes: {', '.join(map(str, self.outcomes.columns))}")
        for name, b in self.blocks.items():
            lines.append(f"    block {name!r}: {b.data.shape[1]} features")
        if self.sources:
            lines.append(f"    sources: {', '.join(self.sources)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ blocks
    def add_block(
        self,
        name: str,
        data: pd.DataFrame | Block,
        *,
        provenance: Mapping[str, Any] | None = None,
        allow_missing: bool = False,
    ) -> Cohort:
        """Attach a modality table, aligned to the cohort's patients.

        ``data`` is a table indexed by patient ID, or a :class:`Block` — what every domain
        result's ``to_block()`` returns: ``cohort.add_block("prs", run_prs(...).to_block())``.
        Its provenance is merged under any given here.

        Rows for IDs that are not in the cohort are dropped (and counted in the provenance);
        cohort patients absent from the block are an error unless ``allow_missing``, in which
        case their row is all-missing.

        Raises
        ------
        IDMismatchError
            When cohort patients are absent from the block, or the two share no ID.
        ValidationError
            When the block's IDs are duplicated or its column names clash with the cohort's.
        """
        if isinstance(data, Block):
            provenance = {**data.provenance, **(provenance or {})}
            data = data.data
        data = data.copy()
        data.index = data.index.astype(str)
        _check_index(data.index, f"block {name!r}")
        source = (provenance or {}).get("file")
        common = self.ids.intersection(data.index)
        absent = self.ids.difference(data.index)
        if len(common) == 0:
            # the IDs' shapes (A for a letter, 9 for a digit), not the IDs: enough to see a prefix
            # or padding that differs, without an identifier in the message
            raise IDMismatchError(
                [
                    f"block {shorten(name)} shares no patient ID with the cohort (block IDs look like "
                    f"{_id_shape(data.index)}; cohort IDs like {_id_shape(self.ids)})"
                ],
                file=source,
                fix="use the same patient IDs in every file (check prefixes, FID_IID joins, zero padding)",
            )
        if len(absent) and not allow_missing:
            rows = np.flatnonzero(~self.ids.isin(data.index)) + 1
            raise IDMismatchError(
                [
                    f"{len(absent)} of the cohort's {len(self.ids)} patients are missing from block "
                    f"{shorten(name)} (patient table rows {format_rows(rows)})"
                ],
                file=source,
                # said the command-line way: a CLI user has no allow_missing to pass
                fix="give every patient a row in the block file (its values may be left empty), or "
                    "drop those patients from the patient table",
            )
        clash = [c for c in data.columns if c in self.patients.columns or any(
            c in b.data.columns for n, b in self.blocks.items() if n != name)]
        if clash:
            raise ValidationError(
                [f"block {shorten(name)} has column names already used in the cohort: "
                 f"{', '.join(shorten(c, 30) for c in clash[:8])}{' …' if len(clash) > 8 else ''}"],
                file=source,
                fix="rename the columns so that every feature name is unique",
            )
        prov = dict(provenance or {})
        prov.setdefault("n_extra_ids_dropped", int(len(data.index.difference(self.ids))))
        prov.setdefault("n_patients_missing", int(len(absent)))
        self.blocks[name] = Block(data.reindex(self.ids), prov)
        return self

    # ------------------------------------------------------------------ views
    def features(
        self,
        blocks: Iterable[str] | None = None,
        *,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
    ) -> pd.DataFrame:
        """The model-ready feature table: patient columns and the chosen blocks, side by side.

        Parameters
        ----------
        blocks
            Which tables to use: ``"patients"`` and/or block names. Default: all of them.
        include
            Keep only these columns (after joining).
        exclude
            Drop these columns.

        Returns
        -------
        pandas.DataFrame
            Indexed by patient ID. Nullable integer and boolean columns become floats (NaN for
            missing) so estimators see plain numbers; categories stay categorical.
        """
        names = list(blocks) if blocks is not None else ["patients", *self.blocks]
        parts = []
        for n in names:
            if n == "patients":
                parts.append(self.patients)
            elif n in self.blocks:
                parts.append(self.blocks[n].data)
            else:
                raise ValidationError(
                    [f"unknown block {n!r}"],
                    fix=f"available: patients, {', '.join(self.blocks) or '(no blocks)'}",
                )
        X = (parts[0] if len(parts) == 1 else pd.concat(parts, axis=1)) if parts else pd.DataFrame(index=self.ids)
        if include is not None:
            include = list(include)
            missing = [c for c in include if c not in X.columns]
            if missing:
                raise ValidationError(
                    [f"feature {c!r} not found" for c in missing],
                    fix="check the spelling; features are named as in the input files",
                )
            X = X[include]
        drop = [c for c in exclude if c in X.columns]
        if drop:
            X = X.drop(columns=drop)
        return _model_ready(X)

    def target(self, name: str) -> pd.Series:
        """One outcome column, aligned to the patients."""
        if name not in self.outcomes.columns:
            raise ValidationError(
                [f"outcome {name!r} not found"],
                fix=f"available outcomes: {', '.join(map(str, self.outcomes.columns)) or '(none)'}",
            )
        return self.outcomes[name]

    def subset(self, ids: Iterable[str]) -> Cohort:
        """A new cohort holding only ``ids`` (in that order)."""
        ids = pd.Index([str(i) for i in ids])
        unknown = ~ids.isin(self.ids)
        if unknown.any():
            raise IDMismatchError([f"{int(unknown.sum())} of the {len(ids)} IDs asked for are not patients of "
                                   f"the cohort (positions {format_rows(np.flatnonzero(unknown) + 1)})"])
        out = Cohort(self.patients.loc[ids], outcomes=self.outcomes.loc[ids], schema=self.schema,
                     sources=self.sources)
        for n, b in self.blocks.items():
            out.blocks[n] = Block(b.data.loc[ids], dict(b.provenance))
        return out

    # ------------------------------------------------------------------ on disk
    def save(self, path: str | Path) -> Path:
        """Write the cohort folder atomically (see the module docstring for its layout)."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.patients.to_parquet(tmp / "patients.parquet")
            self.outcomes.to_parquet(tmp / "outcomes.parquet")
            (tmp / "blocks").mkdir()
            blocks = {}
            for name, b in self.blocks.items():
                fname = f"blocks/{name}.parquet"
                b.data.to_parquet(tmp / fname)
                blocks[name] = {"file": fname, "provenance": b.provenance}
            manifest = {
                "format": "pmed.cohort",
                "version": COHORT_FORMAT_VERSION,
                "id": self.patients.index.name,
                "n_patients": self.n_patients,
                "outcomes": list(map(str, self.outcomes.columns)),
                "blocks": blocks,
                "sources": self.sources,
                "schema": self.schema.to_dict() if self.schema else None,
            }
            (tmp / "cohort.json").write_text(to_json(manifest))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Cohort:
        """Read a cohort folder written by :meth:`save`."""
        path = Path(path)
        mf = path / "cohort.json"
        if not mf.exists():
            raise InputError("not a pmed cohort folder (no cohort.json)", file=path,
                             fix="point at a folder written by Cohort.save")
        manifest = json.loads(mf.read_text())
        if manifest.get("format") != "pmed.cohort" or manifest.get("version") != COHORT_FORMAT_VERSION:
            raise InputError(
                f"unsupported cohort format {manifest.get('format')!r} version {manifest.get('version')!r}",
                file=mf, fix=f"this pmed reads version {COHORT_FORMAT_VERSION}",
            )
        patients = pd.read_parquet(path / "patients.parquet")
        outcomes = pd.read_parquet(path / "outcomes.parquet")
        schema = TableSchema.from_dict(manifest["schema"]) if manifest.get("schema") else None
        out = cls(patients, outcomes=outcomes, schema=schema, sources=manifest.get("sources"))
        for name, b in manifest.get("blocks", {}).items():
            out.blocks[name] = Block(pd.read_parquet(path / b["file"]), b.get("provenance", {}))
        return out

    def equals(self, other: Cohort) -> bool:
        """True when data, outcomes, blocks and sources are identical (dtypes included)."""
        return (
            self.patients.equals(other.patients)
            and self.outcomes.equals(other.outcomes)
            and self.blocks.keys() == other.blocks.keys()
            and all(self.blocks[k].data.equals(other.blocks[k].data) for k in self.blocks)
            and self.sources == other.sources
        )


# ---------------------------------------------------------------------- helpers
def _id_shape(ids: pd.Index) -> str:
    """The commonest form of the IDs with letters as ``A`` and digits as ``9`` (``P0001`` → ``A9999``)."""
    import re
    from collections import Counter

    shapes = Counter(re.sub(r"[0-9]", "9", re.sub(r"[^\W\d_]", "A", str(i))) for i in ids[:200])
    if not shapes:
        return "(none)"
    shape = shapes.most_common(1)[0][0]
    return shorten(shape, 24)


def _check_index(index: pd.Index, what: str) -> None:
    # counts and row numbers, never the IDs themselves: a message must not carry identifiers
    problems = []
    missing = index.isna() | (index.astype(str).str.strip() == "") | (index == "nan")
    if missing.any():
        problems.append(f"{what}: {int(missing.sum())} missing patient ID(s), rows "
                        f"{format_rows(np.flatnonzero(missing) + 1)}")
    dup = index.duplicated(keep=False) & ~missing
    if dup.any():
        problems.append(f"{what}: {index[dup].nunique()} patient ID(s) repeated, rows "
                        f"{format_rows(np.flatnonzero(dup) + 1)}")
    if problems:
        raise ValidationError(problems, fix="every row needs a unique, non-empty patient ID")


def _check_same_ids(a: pd.Index, b: pd.Index, a_name: str, b_name: str) -> None:
    only_a, only_b = ~a.isin(b), ~b.isin(a)
    if only_a.any() or only_b.any():
        problems = []
        if only_a.any():
            problems.append(f"{int(only_a.sum())} ID(s) in {a_name} but not {b_name} (rows "
                            f"{format_rows(np.flatnonzero(only_a) + 1)} of {a_name})")
        if only_b.any():
            problems.append(f"{int(only_b.sum())} ID(s) in {b_name} but not {a_name} (rows "
                            f"{format_rows(np.flatnonzero(only_b) + 1)} of {b_name})")
        raise IDMismatchError(problems, fix="use the same patient IDs in both tables")


def _model_ready(X: pd.DataFrame, *, copy: bool = True) -> pd.DataFrame:
    # copy=False: the columns that need no conversion are shared with X (whose owner gives it up)
    out = {}
    for c in X.columns:
        s = X[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            # text levels: imputers and encoders need one kind of value (levels like 1.0/2.0
            # would otherwise clash with the "missing" level)
            cats = s.cat.categories
            out[c] = s if cats.dtype == object and all(isinstance(v, str) for v in cats) else (
                s.cat.rename_categories([str(v) for v in cats]))
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[c] = s.astype("float64") if s.dtype != "float64" else s
        else:  # free text / strings are categories for the model
            out[c] = s.astype("object").astype("category")
    return pd.DataFrame(out, index=X.index, copy=copy)


# ---------------------------------------------------------------------- block readers
#: Domain → ``"module:function"`` reading that domain's output (a folder written by
#: ``Result.write`` or one file in it) into a :class:`Block`; the function returns ``None``
#: for a file it does not recognise (the file is then read as a plain table). Imported lazily
#: so that the core never imports a domain package.
BLOCK_READERS: dict[str, str | Callable[[Path], Block | None]] = {
    "prs": "pmed.genomics.prs.api:read_block",
    "pgx": "pmed.genomics.pgx.api:read_block",
    "imaging": "pmed.imaging.api:read_block",
    "omics": "pmed.omics.api:read_block",
    "timeseries": "pmed.timeseries.api:read_block",
    "spatial": "pmed.spatial.api:read_block",
}


def register_block_reader(domain: str, reader: str | Callable[[Path], Block | None]) -> None:
    """Teach :func:`read_block` a domain's outputs (a plug-in adds its own this way)."""
    BLOCK_READERS[domain] = reader


def _domain_of(path: Path) -> str | None:
    import json

    folder = path if path.is_dir() else path.parent
    prov = folder / "provenance.json"
    domain = None
    if prov.is_file():
        try:
            domain = json.loads(prov.read_text(encoding="utf-8")).get("domain")
        except (OSError, ValueError, AttributeError):
            domain = None
    if domain is None and path.is_file() and path.name.lower().endswith((".tsv", ".txt")):
        # Outputs of pmed prs score written before provenance.json named its domain: the long
        # scores table (IID, PGS, SUM …) is recognised by its header so that old studies still run.
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as fh:
                head = set(fh.readline().rstrip("\r\n").split("\t"))
        except OSError:
            return None
        if {"IID", "PGS", "SUM"} <= head:
            return "prs"
    return domain


def read_block(path: str | Path, *, id: str = "patient_id") -> Block:
    """Read one modality output or table into a patient-indexed :class:`Block`.

    The writer decides the reader: a folder written by a domain's ``Result.write`` (or a file in
    it) carries ``provenance.json`` naming the domain, whose registered reader
    (:data:`BLOCK_READERS`) turns it into features — ``pmed prs score``'s ``scores.tsv``
    becomes one ``prs_<PGS>`` column per score, for example. VCF names give allele dosages;
    any other table (CSV/TSV/Parquet) is read as it is, indexed by ``id``.
    """
    import importlib

    from pmed.errors import InputError

    path = Path(path)
    if not path.exists():
        raise InputError("block file not found", file=path,
                         fix="check the path (relative paths are resolved from the study file)")
    domain = _domain_of(path)
    if domain is not None and domain in BLOCK_READERS:
        reader = BLOCK_READERS[domain]
        if isinstance(reader, str):
            module, func = reader.split(":")
            reader = getattr(importlib.import_module(module), func)
        block = reader(path)
        if block is not None:
            return block
    if path.is_dir():
        raise InputError("a folder was given as a block but no domain output was found in it",
                         file=path, fix="name a table file, or a folder written by a pmed command")
    name = path.name.lower()
    if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
        from pmed.io.vcf import read_vcf

        variants, dosages = read_vcf(path)
        return Block(dosages, {"reader": "pmed.io.read_vcf", "file": str(path),
                               "n_variants": int(len(variants)), "values": "ALT allele dosage"})
    from pmed.io.tables import read_table

    return Block(read_table(path, id=id), {"reader": "pmed.io.read_table", "file": str(path)})
