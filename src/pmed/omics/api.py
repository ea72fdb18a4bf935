"""One call from single-cell counts to patient-level features: :func:`run_omics`.

``run_omics(input, batch_key=...)`` reads the cells, runs QC → doublets → normalisation/HVG/PCA →
batch correction → Leiden → UMAP → marker-set annotation → signatures → integration metrics →
marker genes → patient level (composition, features, optional pseudobulk DE), and returns an
:class:`OmicsResult`:

- ``result.to_block()``: the patient features (``patient_id`` index) for
  ``cohort.add_block("omics", ...)``;
- ``result.summary()``: counts and the key metrics;
- ``result.write(out)``: every file ``pmed omics pipeline`` writes (``processed.h5ad``, tables,
  plots, ``run.json``) and ``provenance.json``.

:func:`read_block` reads such a folder (or its ``patient_features.csv``) back as the block; it is
the ``omics`` entry of :data:`pmed.cohort.BLOCK_READERS`.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pmed.cohort import Block
from pmed.errors import InputError, OptionError, PmedWarning, ValidationError, require
from pmed.io.jsonio import plain
from pmed.omics._compat import resolve_seed
from pmed.omics._tables import short, short_list
from pmed.omics.result import FEATURES_FILE, OmicsResult
from pmed.progress import Reporter, as_reporter
from pmed.result import block_source, make_provenance

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["run_omics", "OmicsResult", "read_block", "FEATURES_FILE", "HASH_MAX_BYTES"]

#: Inputs larger than this (in all) are listed in the provenance with their size but not hashed:
#: a SHA-256 reads every byte once more (about 2 s per GiB), too slow for atlas-sized h5ad files.
HASH_MAX_BYTES = 2**30

#: Distributions whose versions the provenance records.
LIBRARIES = ("scanpy", "anndata", "harmonypy", "pydeseq2", "igraph", "umap-learn", "pynndescent",
             "numba", "scikit-misc")

# keyword arguments of run_omics that are not options of process()
_NOT_PROCESS = {"adata", "batch_key", "label_key", "seed", "random_state", "timer", "progress"}


def _set_threads(n_jobs: int) -> None:
    """numba's thread count (UMAP, pynndescent, scrublet) for this process."""
    try:
        import numba
    except ImportError:  # numba absent: nothing to set
        return
    try:
        numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    except Exception as e:  # a fixed thread count (already running threads): not fatal
        warnings.warn(f"could not set numba's thread count to {n_jobs} ({type(e).__name__}); "
                      "using its default", PmedWarning, stacklevel=3)


def _check_options(options: dict[str, Any], n_jobs: int) -> None:
    """Refuse unknown or out-of-range options before any data are read."""
    from pmed.omics.integrate import METHODS
    from pmed.omics.pipeline import process

    known = set(inspect.signature(process).parameters) - _NOT_PROCESS
    unknown = sorted(set(options) - known)
    if unknown:
        raise OptionError(f"unknown option(s) {unknown}", fix=f"use among {sorted(known)}")
    method = options.get("method", "harmony")
    if method not in METHODS:
        raise OptionError(f"unknown integration method {short(method)}", where="option method",
                          fix=f"use one of {list(METHODS)}")
    # (name, lowest, highest, whole number): the CLI's --resolution, --n-comps … say the same
    ranges = (("resolution", 0.0, None, False), ("n_neighbors", 2, None, True), ("n_top_genes", 1, None, True),
              ("n_comps", 1, None, True), ("min_genes", 0, None, True), ("max_pct_mt", 0.0, 100.0, False))
    for name, low, high, whole in ranges:
        if name in options:
            _check_number(name, options[name], low=low, high=high, whole=whole,
                          above=name == "resolution")
    for name in ("doublets", "remove_doublets", "umap"):
        if name in options and not isinstance(options[name], bool):
            raise OptionError(f"{name}={short(options[name])} must be True or False", where=f"option {name}")
    if options.get("umap_before") is not None and not isinstance(options["umap_before"], bool):
        raise OptionError(f"umap_before={short(options['umap_before'])} must be True, False or None",
                          where="option umap_before")
    _check_number("n_jobs", n_jobs, low=1, whole=True)


def _check_number(name: str, v: Any, *, low: float, high: float | None = None, whole: bool = False,
                  above: bool = False) -> None:
    """Refuse a value that is not a finite number in range (``> low`` when ``above``, else ``>= low``)."""
    kind = "a whole number" if whole else "a number"
    bound = (f"above {low:g}" if above else f"at least {low:g}") + ("" if high is None else f" and at most {high:g}")
    ok = (isinstance(v, numbers.Integral if whole else numbers.Real) and not isinstance(v, bool)
          and math.isfinite(v) and (v > low if above else v >= low) and (high is None or v <= high))
    if not ok:
        raise OptionError(f"{name}={short(v)} must be {kind} {bound}", where=f"option {name}",
                          fix=f"give --{name.replace('_', '-')} (Python: {name}=) {bound}")


def _check_markers(options: dict[str, Any]) -> None:
    """Read the marker set and check ``cell_types`` against it, before any cells are read: a bad
    marker file would otherwise fail only at annotation, after QC, integration and clustering."""
    from pmed.omics.annotation import load_markers

    sets = load_markers(options.get("markers", "pbmc"))
    cell_types = options.get("cell_types")
    if cell_types is not None:
        unknown = [t for t in cell_types if t not in sets]
        if unknown:
            raise OptionError(f"{len(unknown)} cell type(s) not in the marker set: {short_list(unknown)}",
                              where="option cell_types",
                              fix=f"choose among {short_list(sets, 20)} (--cell-types; cell_types=)")


def _provenance(input: Any, *, metadata: Any, markers: Any, options: dict[str, Any]) -> dict:
    inputs: dict[str, Any] = {}
    if isinstance(input, str | Path):
        inputs["input"] = Path(input)
    if isinstance(metadata, str | Path):
        inputs["metadata"] = Path(metadata)
    if isinstance(markers, str | Path) and Path(markers).is_file():
        inputs["markers"] = Path(markers)
    size = 0
    for p in inputs.values():
        if p.is_dir():
            size += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            size += p.stat().st_size
    hashed = size <= HASH_MAX_BYTES
    opts = {**options, "inputs_hashed": hashed}
    if not isinstance(input, str | Path):
        opts["input"] = "AnnData (in memory)"
    return make_provenance("omics", inputs=inputs, options=plain(opts), libraries=LIBRARIES,
                           hash_inputs=hashed)


def _plain_option(v: Any) -> Any:
    return v if isinstance(v, str | int | float | bool | type(None) | list | tuple) else str(v)


def run_omics(
    input: str | Path | anndata.AnnData,
    *,
    batch_key: str,
    label_key: str | None = None,
    metadata: str | Path | pd.DataFrame | None = None,
    metadata_on: str | None = None,
    counts_layer: str | None = None,
    sample_key: str | None = None,
    patient_key: str | None = None,
    condition_key: str | None = None,
    test: str | None = None,
    reference: str | None = None,
    pair_key: str | None = None,
    de_by_cell_type: bool = True,
    plots: bool = True,
    seed: int = 0,
    n_jobs: int = 1,
    progress: Reporter | bool | None = None,
    random_state: int | None = None,
    **options: Any,
) -> OmicsResult:
    """Run the single-cell pipeline from counts to patient-level features.

    Parameters
    ----------
    input
        File or folder (see :func:`pmed.omics.readers.read_omics`) or an AnnData (not modified).
    batch_key
        ``obs`` column corrected for (sample, donor, run, chemistry…).
    label_key
        Known cell types, for the before/after conservation metrics.
    metadata, metadata_on
        Table joined onto the cells before anything else (see
        :func:`pmed.omics.metadata.join_metadata`).
    counts_layer
        Layer of an ``.h5ad`` that holds raw counts (default ``X``).
    sample_key
        Sample column for composition and pseudobulk (default ``batch_key``).
    patient_key
        Patient column for patient features (default ``sample_key``).
    condition_key, test, reference
        Pseudobulk differential expression of ``test`` against ``reference`` in this sample-level
        column (e.g. ``response``, ``"responder"``, ``"non_responder"``).
    pair_key
        Sample-level column added to the DE design (``~ pair_key + condition``), e.g. the patient
        for paired before/after samples.
    de_by_cell_type
        Also run the pseudobulk DE within each cell type.
    plots
        Draw the figures when the result is written.
    seed
        Seed of every random step (doublet simulation, PCA, Harmony, Leiden, UMAP, subsampling).
    n_jobs
        Threads for numba, and processes for doublet detection (the same scores) and PyDESeq2.
    progress
        ``True`` for a progress bar, or a :class:`pmed.progress.Reporter` (the CLI's bar); one
        step per stage: read, QC, …, markers, patient level.
    random_state
        Deprecated alias of ``seed``.
    **options
        Options of :func:`pmed.omics.pipeline.process` (``method``, ``resolution``,
        ``n_neighbors``, ``markers``, ``cell_types``, ``signatures``, ``n_top_genes``, ``n_comps``,
        ``min_genes``, ``max_pct_mt``, ``doublets``, ``remove_doublets``, ``umap``,
        ``umap_before``).

    Returns
    -------
    OmicsResult

    Raises
    ------
    InputError
        Unreadable input, missing or single-valued batch key, unknown columns or levels.
    OptionError
        An unknown option or a value out of range (before anything is read).
    MissingDependencyError
        scanpy/anndata/harmonypy/pydeseq2/igraph are not installed (``pip install "pmed[omics]"``).
    """
    seed = resolve_seed(seed, random_state, "run_omics")
    _check_options(options, n_jobs)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise OptionError(f"seed={short(seed)} must be a whole number from 0 to 2**32 - 1", where="option seed",
                          fix="give --seed (Python: seed=) a whole number ≥ 0")
    ad = require("anndata", extra="omics", feature="single-cell data")
    require("scanpy", extra="omics", feature="the single-cell pipeline")
    _check_markers(options)
    from pmed.omics.markers import marker_genes
    from pmed.omics.metadata import check_obs_key, join_metadata
    from pmed.omics.patient import composition, patient_features, pseudobulk, pseudobulk_de
    from pmed.omics.pipeline import _Timer, process, process_steps
    from pmed.omics.readers import read_h5ad, read_omics

    reporter = as_reporter(progress)
    timer = _Timer(reporter)
    _set_threads(n_jobs)
    is_adata = isinstance(input, ad.AnnData)
    src = input if is_adata else Path(input)
    # reading is timed but not a progress step: the bar starts once the cell count is known
    with timer.step("read", report=False):
        if is_adata:
            adata = input.copy()
            if "counts" not in adata.layers:
                from scipy import sparse

                adata.layers["counts"] = sparse.csr_matrix(adata.X)
        elif src.suffix.lower() == ".h5ad":
            adata = read_h5ad(src, counts_layer=counts_layer)
        else:
            adata = read_omics(src)
        if metadata is not None:
            join_metadata(adata, metadata, on=metadata_on)
    file = None if is_adata else src
    # check every key up front: fail before minutes of work
    check_obs_key(adata, batch_key, what="batch key", file=file, min_levels=2)
    if label_key:
        check_obs_key(adata, label_key, what="label key", file=file)
    sample_key = sample_key or batch_key
    patient_key = patient_key or sample_key
    for k, what in ((sample_key, "sample key"), (patient_key, "patient key"),
                    (condition_key, "condition key"), (pair_key, "pair key")):
        if k:
            check_obs_key(adata, k, what=what, file=file)
    if condition_key is not None:
        levels = set(adata.obs[condition_key].astype(str))
        missing = [v for v in (test, reference) if v is None or v not in levels]
        if missing:
            # the column's values are not listed: a wrong --condition-key may name the patients
            raise InputError(f"condition level(s) {short_list(missing)} not found in obs[{short(condition_key)}] "
                             f"({len(levels)} distinct values)", file=file,
                             fix="pass --test and --reference (test=, reference=) among that column's values")
    n_in = (int(adata.n_obs), int(adata.n_vars))
    # one bar for the run: process()'s steps (QC … integration metrics), markers, patient level
    n_steps = process_steps(n_cells=n_in[0], label_key=label_key,
                            doublets=options.get("doublets", True), umap=options.get("umap", True),
                            umap_before=options.get("umap_before"))
    reporter.start(n_steps + 2, "single-cell pipeline")
    adata, metrics = process(adata, batch_key=batch_key, label_key=label_key, timer=timer,
                             seed=seed, n_jobs=n_jobs, **options)

    info: dict[str, Any] = {}
    markers = {}
    with timer.step("markers", "marker genes"):
        markers["leiden"] = marker_genes(adata, "leiden", seed=seed)
        if adata.obs["cell_type"].nunique() > 1:
            markers["cell_type"] = marker_genes(adata, "cell_type", seed=seed)
    scores = adata.uns["pmed_annotation_scores"]
    ann = pd.DataFrame(scores["scores"], index=pd.Index(scores["clusters"], name="leiden"),
                       columns=scores["types"])
    ann["cell_type"] = ann.idxmax(axis=1)

    biomarkers = by_type = None
    with timer.step("patient_level", "patient level"):
        comp = composition(adata, sample_key=sample_key)
        feats = patient_features(adata, patient_key=patient_key)
        if condition_key is not None:
            assert test is not None and reference is not None
            cov = [pair_key] if pair_key else []
            counts, meta = pseudobulk(adata, sample_key=sample_key)
            for c in [condition_key, *cov]:
                if c not in meta.columns:
                    raise ValidationError(
                        [f"obs column {c!r} varies within a sample of {sample_key!r}"], file=file,
                        fix="condition and pair keys must be constant within each sample")
            biomarkers = pseudobulk_de(counts, meta, condition=condition_key, test=test,
                                       reference=reference, covariates=cov, n_cpus=n_jobs)
            info["de_design"] = str(biomarkers["design"].iloc[0])
            info["de_n_fdr_0.05"] = int((biomarkers["fdr"] < 0.05).sum())
            if de_by_cell_type:
                by_type, info["de_by_cell_type_skipped"] = _de_by_cell_type(
                    adata, sample_key=sample_key, condition=condition_key, test=test,
                    reference=reference, covariates=cov, n_jobs=n_jobs)

    info.update({
        "input": "AnnData" if is_adata else str(input),
        "n_cells_in": n_in[0], "n_genes_in": n_in[1],
        "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars),
        "n_clusters": int(adata.obs["leiden"].nunique()),
        "cell_types": adata.obs["cell_type"].astype(str).value_counts().to_dict(),
        "batch_key": batch_key, "label_key": label_key, "sample_key": sample_key,
        "patient_key": patient_key, "qc": adata.uns.get("pmed_qc", {}),
        "options": {**{k: _plain_option(v) for k, v in options.items()}, "seed": seed},
        "metrics": metrics, "timings_s": timer.steps,
    })
    prov_options = {"batch_key": batch_key, "label_key": label_key, "sample_key": sample_key,
                    "patient_key": patient_key, "condition_key": condition_key, "test": test,
                    "reference": reference, "pair_key": pair_key,
                    "de_by_cell_type": de_by_cell_type, "counts_layer": counts_layer,
                    "metadata_on": metadata_on, "plots": plots, "seed": seed, "n_jobs": n_jobs,
                    **{k: _plain_option(v) for k, v in options.items()}}
    prov = _provenance(input if not is_adata else None, metadata=metadata,
                       markers=options.get("markers"), options=prov_options)
    return OmicsResult(adata=adata, features=feats, composition=comp, metrics=metrics,
                       markers=markers, annotation_scores=ann, biomarkers=biomarkers,
                       biomarkers_by_cell_type=by_type, info=info, plots=plots, provenance=prov)


def _de_by_cell_type(adata: anndata.AnnData, *, sample_key: str, condition: str, test: str,
                     reference: str, covariates: list[str],
                     n_jobs: int) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """Pseudobulk DE within each cell type; types without enough samples are skipped (and said)."""
    from pmed.omics.patient import pseudobulk, pseudobulk_de

    counts, meta = pseudobulk(adata, sample_key=sample_key, cell_type_key="cell_type")
    parts, skipped = [], {}
    for ct in sorted(meta["cell_type"].unique()):
        sel = (meta["cell_type"] == ct).to_numpy()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PyDESeq2's per-fit chatter on small groups
                r = pseudobulk_de(counts[sel], meta[sel], condition=condition, test=test,
                                  reference=reference, covariates=covariates, n_cpus=n_jobs)
        except (ValidationError, ValueError) as e:  # too few samples, singular design
            skipped[ct] = str(e).splitlines()[0]
            continue
        r.insert(0, "cell_type", ct)
        parts.append(r.reset_index())
    return (pd.concat(parts, ignore_index=True) if parts else None), skipped


def read_block(path: str | Path) -> Block | None:
    """Read an output folder of :func:`run_omics` (or its ``patient_features.csv``) as the block.

    Parameters
    ----------
    path
        The folder ``write(out)`` filled, or the feature file in it.

    Returns
    -------
    pmed.cohort.Block or None
        The patient features indexed by ``patient_id`` with the run's provenance; ``None`` for
        any other file (the caller then reads it as a plain table).

    Raises
    ------
    InputError
        The feature file exists but cannot be read.
    """
    from pmed.io import open_text

    found = block_source(path, FEATURES_FILE)
    if found is None:
        return None
    file, prov = found
    try:
        with open_text(file) as fh:
            df = pd.read_csv(fh, dtype={"patient_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the omics patient features ({type(e).__name__})",
                         file=file, fix="write the folder again with pmed omics pipeline") from e
    id_col = "patient_id" if "patient_id" in df.columns else df.columns[0]
    df[id_col] = df[id_col].astype(str)
    df = df.set_index(id_col)
    df.index.name = "patient_id"

    prov.update({"domain": "omics", "reader": "pmed.omics.api.read_block", "file": str(file),
                 "modality": "single-cell RNA-seq", "producer": "pmed.omics",
                 "n_features": int(df.shape[1])})
    return Block(df, prov)
