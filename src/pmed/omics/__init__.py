"""Multi-omics and single-cell: read, QC, integrate, cluster, annotate, and reach the patient.

Heavy dependencies (scanpy, anndata, harmonypy, pydeseq2, igraph) are imported inside the
functions that use them (install ``pmed[omics]``). Start with :func:`run_omics` (returns an
:class:`OmicsResult`: ``to_block()``, ``summary()``, ``write(out)``) or the CLI
``pmed omics pipeline``.
"""

from pmed.omics.api import OmicsResult, run_omics
from pmed.omics.cluster import annotate, cluster, load_markers, marker_genes, score_marker_sets
from pmed.omics.integrate import integrate, integration_metrics, kbet_acceptance, lisi
from pmed.omics.patient import (
    SIGNATURES,
    add_to_cohort,
    bulk_features,
    composition,
    patient_features,
    pseudobulk,
    pseudobulk_de,
    signature_scores,
)
from pmed.omics.preprocess import (
    filter_cells_genes,
    flag_doublets,
    normalize_pca,
    preprocess,
    qc_metrics,
)
from pmed.omics.readers import (
    OmicsWarning,
    check_obs_key,
    join_metadata,
    read_10x,
    read_bulk,
    read_counts_table,
    read_h5ad,
    read_omics,
)

__all__ = [
    "run_omics", "OmicsResult",
    "read_omics", "read_h5ad", "read_10x", "read_counts_table", "read_bulk", "join_metadata",
    "check_obs_key", "OmicsWarning",
    "qc_metrics", "filter_cells_genes", "flag_doublets", "normalize_pca", "preprocess",
    "integrate", "integration_metrics", "lisi", "kbet_acceptance",
    "cluster", "load_markers", "score_marker_sets", "annotate", "marker_genes",
    "SIGNATURES", "composition", "pseudobulk", "pseudobulk_de", "signature_scores",
    "patient_features", "bulk_features", "add_to_cohort",
]
