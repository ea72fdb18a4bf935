"""Multimodal fusion: models over several modalities (clinical, genomic, wearable …).

Early fusion puts every modality's columns in one model, with a ``has_<modality>`` indicator
per modality (:class:`ModalityIndicators`). Late fusion fits one model per modality and stacks
their inner out-of-fold predictions, with a meta-learner per subset of modalities so a patient
missing some is predicted from the ones they have (:class:`LateFusion`). Joint fusion trains one
PyTorch network end to end, an encoder per modality (an MLP for tables, GRU-D for series grids)
with masks and modality dropout (:class:`JointFusion`; PyTorch is imported only when it is
fitted or used). All take modalities as column names or glob patterns
(:func:`resolve_modalities`); :func:`availability` says which patients have which modality.
"""

from __future__ import annotations

from pmed.fusion.early import ModalityIndicators
from pmed.fusion.joint import JointFusion
from pmed.fusion.late import MAX_MODALITIES, LateFusion
from pmed.fusion.modalities import availability, resolve_modalities

__all__ = ["JointFusion", "LateFusion", "MAX_MODALITIES", "ModalityIndicators", "availability",
           "resolve_modalities"]
