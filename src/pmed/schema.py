"""Declared column schemas for patient tables, and their validation.

A schema names the ID column and, for each column, its type, unit, allowed categories and
plausible range. Validation collects *every* problem and reports file, column, line numbers and
the fix in one :class:`~pmed.errors.ValidationError`.

Schemas are plain YAML/JSON::

    id: patient_id
    columns:
      age:    {type: float, unit: years, min: 0, max: 120}
      sex:    {type: category, categories: [F, M]}
      bmi:    {type: float, unit: kg/m2, min: 10, max: 80}
      smoker: {type: bool}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import SchemaError, ValidationError, format_rows, shorten

__all__ = ["ColumnSpec", "TableSchema", "COLUMN_TYPES"]

COLUMN_TYPES = ("float", "int", "bool", "category", "string")

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass(frozen=True)
class ColumnSpec:
    """What one column may hold.

    Parameters
    ----------
    type
        One of ``float``, ``int``, ``bool``, ``category``, ``string``.
    unit
        Free-text unit, carried into reports (``"years"``, ``"kg/m2"``).
    categories
        Allowed values of a ``category`` column.
    min, max
        Inclusive plausible range of a numeric column.
    required
        Whether the column must be present.
    nullable
        Whether missing values are allowed.
    description
        Human-readable meaning.
    code
        The column's concept in a code system, as ``"system|code"`` (``"http://loinc.org|39156-5"``
        for BMI): FHIR input (:mod:`pmed.serve.fhir`) fills the column from the Observations
        coded so, converting their values to ``unit`` (then best a UCUM unit: ``kg/m2``, ``a``,
        ``mmol/L``).
    """

    type: str = "float"
    unit: str | None = None
    categories: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    required: bool = True
    nullable: bool = True
    description: str | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise SchemaError(
                f"unknown column type {self.type!r}",
                fix=f"use one of {', '.join(COLUMN_TYPES)}",
            )
        if self.type == "category" and not self.categories:
            raise SchemaError(
                "a category column needs its allowed 'categories'",
                fix="list them, e.g. categories: [F, M]",
            )
        if self.categories is not None and not isinstance(self.categories, tuple):
            object.__setattr__(self, "categories", tuple(self.categories))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SchemaError(f"min {self.min} is greater than max {self.max}")
        if self.code is not None:
            system, bar, code = str(self.code).partition("|")
            if not (bar and system.strip() and code.strip()):
                raise SchemaError(
                    f"code {shorten(self.code)} is not of the form 'system|code'",
                    fix="write e.g. code: 'http://loinc.org|39156-5'",
                )


@dataclass
class TableSchema:
    """Schema of a patient-indexed table: the ID column and a :class:`ColumnSpec` per column.

    Parameters
    ----------
    id
        Name of the patient ID column.
    columns
        Column name → spec. Columns present in the data but absent here are kept and their
        type inferred, unless ``strict`` is true.
    strict
        Refuse columns that the schema does not declare.
    """

    id: str = "patient_id"
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    strict: bool = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict, *, source: str | None = None) -> TableSchema:
        """Build a schema from its YAML/JSON form, with errors naming the offending key."""
        if not isinstance(d, dict):
            raise SchemaError("a schema must be a mapping with 'id' and 'columns'", file=source)
        unknown = set(d) - {"id", "columns", "strict"}
        if unknown:
            raise SchemaError(
                f"unknown schema keys {sorted(unknown)}",
                file=source,
                fix="a schema has only 'id', 'columns' and 'strict'",
            )
        cols = {}
        for name, spec in (d.get("columns") or {}).items():
            spec = {"type": spec} if isinstance(spec, str) else dict(spec or {})
            try:
                cols[str(name)] = ColumnSpec(**spec)
            except TypeError as e:
                raise SchemaError(
                    f"bad spec for column {name!r}: {e}", file=source, where=f"columns.{name}"
                ) from None
            except SchemaError as e:
                raise SchemaError(
                    e.message, file=source, where=f"columns.{name}", fix=e.fix
                ) from None
        return cls(id=str(d.get("id", "patient_id")), columns=cols, strict=bool(d.get("strict", False)))

    @classmethod
    def read(cls, path: str | Path) -> TableSchema:
        """Read a schema from a YAML or JSON file."""
        from pmed.io.text import read_text

        path = Path(path)
        text = read_text(path, what="schema file", error=SchemaError)
        if path.suffix == ".json":
            try:
                d = json.loads(text)
            except ValueError as e:
                raise SchemaError(f"not valid JSON: {e}", file=path) from None
        else:
            import yaml

            try:
                d = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise SchemaError(f"not valid YAML: {e}", file=path) from None
        return cls.from_dict(d, source=str(path))

    @classmethod
    def infer(cls, df: pd.DataFrame, id: str, *, max_categories: int = 20) -> TableSchema:
        """Infer a schema from data: numeric → float/int, few distinct strings → category."""
        cols = {}
        for name in df.columns:
            if name == id:
                continue
            cols[name] = _infer_spec(df[name], max_categories=max_categories)
        return cls(id=id, columns=cols)

    def to_dict(self) -> dict:
        """The YAML/JSON form (inverse of :meth:`from_dict`)."""
        out = {}
        for name, spec in self.columns.items():
            d = {k: v for k, v in asdict(spec).items() if v is not None}
            if "categories" in d:
                d["categories"] = [_plain(c) for c in d["categories"]]
            if d.get("required") is True:
                d.pop("required")
            if d.get("nullable") is True:
                d.pop("nullable")
            out[name] = d
        return {"id": self.id, "columns": out, "strict": self.strict}

    # ------------------------------------------------------------------ validation
    def validate(
        self, df: pd.DataFrame, *, source: str | None = None, line_offset: int = 2
    ) -> pd.DataFrame:
        """Check ``df`` against the schema and return it typed and indexed by patient ID.

        Parameters
        ----------
        df
            Raw table with the ID as a column (as read from a file).
        source
            File name for error messages.
        line_offset
            Added to the 0-based row position to give the file's line number (2 for a CSV with
            one header line).

        Returns
        -------
        pandas.DataFrame
            Indexed by the ID column (as strings), columns cast to their declared types.

        Raises
        ------
        ValidationError
            Listing every problem: missing/duplicate IDs, missing columns, wrong types, values
            out of range, unknown categories, undeclared columns in strict mode.
        """
        problems: list[str] = []
        lines = np.arange(len(df)) + line_offset

        if self.id not in df.columns:
            raise ValidationError(
                [f"ID column {shorten(self.id)} not found (columns: "
                 f"{', '.join(_short_name(c) for c in df.columns[:10])}{' …' if df.shape[1] > 10 else ''})"],
                file=source,
                fix=f"name the patient ID column {self.id!r} or set 'id:' in the schema",
            )
        ids = df[self.id]
        missing_id = ids.isna() | (ids.astype(str).str.strip() == "")
        if missing_id.any():
            problems.append(
                f"column {self.id!r}: missing patient ID at lines {format_rows(lines[missing_id.to_numpy()])}"
                " — every row needs an ID"
            )
        id_str = ids.astype(str).str.strip()
        dup = id_str.duplicated(keep=False) & ~missing_id
        if dup.any():
            # counts and lines only: an ID in a message is an identifier leaving the data
            n_ids = id_str[dup].nunique()
            problems.append(
                f"column {self.id!r}: {n_ids} patient ID{'s' if n_ids != 1 else ''} repeated, at lines "
                f"{format_rows(lines[dup.to_numpy()])} — IDs must be unique; merge or drop the repeats"
            )

        index = pd.Index(id_str, name=self.id)
        cols: dict[str, Any] = {}
        for name, spec in self.columns.items():
            if name not in df.columns:
                if spec.required:
                    problems.append(f"column {name!r} is declared in the schema but missing from the file")
                continue
            col, col_problems = _coerce(df[name], name, spec, lines)
            problems.extend(col_problems)
            cols[name] = col.array
        extra = [c for c in df.columns if c != self.id and c not in self.columns]
        if extra and self.strict:
            problems.append(
                f"columns not declared in the (strict) schema: {', '.join(_short_name(c) for c in extra[:10])}"
                f"{f' … ({len(extra)} in all)' if len(extra) > 10 else ''}"
                " — declare them or drop them"
            )
        for name in extra:
            cols[name] = df[name].array.copy()

        if problems:
            raise ValidationError(problems, file=source, fix="correct the file or the schema and retry")
        # one construction, not column-by-column insertion: wide tables stay fast; no second
        # copy of the columns either (a million rows: 4 s), as every column above is new — a
        # number column that needed no conversion is the one exception, hence its copy below
        return pd.DataFrame(cols, index=index, copy=False)

    def columns_for(self, df: pd.DataFrame) -> dict[str, ColumnSpec]:
        """Specs for every column of ``df``: declared ones, and inferred ones for the rest."""
        return {
            c: self.columns.get(c) or _infer_spec(df[c]) for c in df.columns if c != self.id
        }


# ---------------------------------------------------------------------- helpers
def _short_name(name: Any, limit: int = 30) -> str:
    """A column name for a list in a message: as written, or cut with its length when long."""
    text = str(name)
    return text if len(text) <= limit else shorten(text, limit)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _infer_spec(s: pd.Series, *, max_categories: int = 20) -> ColumnSpec:
    if pd.api.types.is_bool_dtype(s):
        return ColumnSpec(type="bool")
    if pd.api.types.is_integer_dtype(s):
        return ColumnSpec(type="int")
    if pd.api.types.is_numeric_dtype(s):
        return ColumnSpec(type="float")
    values = s.dropna().unique()
    if isinstance(s.dtype, pd.CategoricalDtype):
        return ColumnSpec(type="category", categories=tuple(_plain(c) for c in s.cat.categories))
    if 0 < len(values) <= max_categories:
        return ColumnSpec(type="category", categories=tuple(sorted(map(str, values))))
    return ColumnSpec(type="string")


def _coerce(
    s: pd.Series, name: str, spec: ColumnSpec, lines: np.ndarray
) -> tuple[pd.Series, list[str]]:
    problems: list[str] = []
    isna = s.isna().to_numpy()
    if spec.type in ("float", "int"):
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            a = s.to_numpy(dtype=float, na_value=np.nan, copy=True)  # already numbers (a service's JSON)
        else:
            a = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(a) & ~isna
        if bad.any():
            examples = ", ".join(shorten(v) for v in pd.unique(s[bad])[:3])
            problems.append(
                f"column {name!r}: expected a number, found {examples} at lines "
                f"{format_rows(lines[bad])} — use digits with '.' as the decimal mark"
            )
        num = pd.Series(a, index=s.index)
        if spec.type == "int":
            frac = ~np.isnan(a) & (np.nan_to_num(a) % 1 != 0)
            if frac.any():
                problems.append(
                    f"column {name!r}: expected whole numbers, found fractions at lines "
                    f"{format_rows(lines[frac])}"
                )
            out = num.astype("Int64") if not frac.any() else num
        else:
            out = num
        for bound, op, word in ((spec.min, np.less, "below"), (spec.max, np.greater, "above")):
            if bound is None:
                continue
            with np.errstate(invalid="ignore"):
                viol = op(a, bound) & ~np.isnan(a)
            if viol.any():
                examples = ", ".join(f"{v:g}" for v in pd.unique(a[viol])[:3])
                unit = f" {spec.unit}" if spec.unit else ""
                problems.append(
                    f"column {name!r}: impossible value {examples} {word} the allowed "
                    f"{spec.min if spec.min is not None else '-inf'}–"
                    f"{spec.max if spec.max is not None else 'inf'}{unit} at lines "
                    f"{format_rows(lines[viol])} — check units and data entry"
                )
    elif spec.type == "bool":
        if pd.api.types.is_bool_dtype(s):
            out = s.astype("boolean")
        else:
            if pd.api.types.is_numeric_dtype(s):  # 1/0, and 1.0/0.0 where a missing value made them floats
                num = s.to_numpy(dtype=float, na_value=np.nan)
                t, f = num == 1, num == 0
            else:
                low = s.astype(str).str.strip().str.lower()
                t = low.isin(_TRUE).to_numpy()
                f = low.isin(_FALSE).to_numpy()
            bad = ~(t | f) & ~isna
            if bad.any():
                problems.append(
                    f"column {name!r}: expected true/false (or 1/0, yes/no), found "
                    f"{', '.join(shorten(v) for v in pd.unique(s[bad])[:3])} at lines {format_rows(lines[bad])}"
                )
            out = pd.Series(pd.array(np.where(isna, None, t), dtype="boolean"), index=s.index)
    elif spec.type == "category":
        cats = list(spec.categories or ())
        as_str = {str(c): c for c in cats}
        # each distinct value is looked up once (a million rows hold a handful of categories)
        values = s.to_numpy(dtype=object)
        codes_of, uniq = pd.factorize(values, use_na_sentinel=True)
        lookup = np.array([v if v in cats else as_str.get(str(v).strip(), np.nan) for v in uniq] + [np.nan],
                          dtype=object)
        mapped = lookup[codes_of]  # the sentinel -1 (missing) takes the last entry: NaN
        bad = pd.isna(mapped) & ~isna
        if bad.any():
            found = ", ".join(shorten(v) for v in pd.unique(s[bad])[:5])
            allowed = ", ".join(shorten(c, 30) for c in cats[:20]) + (" …" if len(cats) > 20 else "")
            problems.append(
                f"column {name!r}: unknown categories {found} at lines {format_rows(lines[bad])}"
                f" — allowed: {allowed}; fix the value or add it to the schema"
            )
        out = pd.Series(pd.Categorical(mapped, categories=cats), index=s.index)
    else:  # string
        out = s.astype("string")
    if not spec.nullable and isna.any():
        problems.append(
            f"column {name!r}: missing values at lines {format_rows(lines[isna])} but the column "
            "is declared not nullable"
        )
    if spec.type in ("float", "int") and not problems and np.isinf(a).any():
        problems.append(f"column {name!r}: infinite values at lines {format_rows(lines[np.isinf(a)])}")
    return out, problems
