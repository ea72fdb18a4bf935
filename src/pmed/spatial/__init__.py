"""Spatial omics and histology: where the cells of a tissue sit, and what that says of the patient.

Readers for Space Ranger folders, h5ad files with spatial coordinates and cell tables (MERFISH,
Xenium, CosMx); spatial neighbour graphs, spatially variable genes (Moran's I), neighbourhood
enrichment, co-occurrence and niches; spatially aware tissue domains; cell-type proportions of
spots; H&E tiles as image features; circulating-tumour-cell scoring; and patient-level spatial
features as a Cohort block. scanpy/anndata come with the ``omics`` extra and are imported inside
the functions that use them.
"""

from pmed.spatial.api import (
    DeconvolutionResult,
    SectionResult,
    SpatialResult,
    read_block,
    run_deconvolution,
    run_spatial,
)
from pmed.spatial.domains import (
    COMPARTMENT_MARKERS,
    domain_markers,
    domain_metrics,
    spatial_domains,
)
from pmed.spatial.graph import spatial_neighbors
from pmed.spatial.io import read_cell_table, read_spatial
from pmed.spatial.patient import compartments_of_cells, compartments_of_domains, section_features

__all__ = [
    "run_spatial", "SpatialResult", "SectionResult", "run_deconvolution", "DeconvolutionResult", "read_block",
    "read_spatial", "read_cell_table", "spatial_neighbors", "spatial_domains", "domain_metrics",
    "domain_markers", "COMPARTMENT_MARKERS", "compartments_of_cells", "compartments_of_domains",
    "section_features",
]
