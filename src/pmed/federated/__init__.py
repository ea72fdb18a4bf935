"""Federated training with Flower: each site keeps its rows (``pmed federated run``).

See docs/federated.md. :mod:`pmed.federated.learners` is NumPy only; the Flower App
(:mod:`pmed.federated.flower_app`) and the process launcher need the ``federated`` extra (``flwr``).
"""

from __future__ import annotations

from pmed._lazy import lazy_attributes

__all__, __getattr__, __dir__ = lazy_attributes(__name__, {
    "run": ["run_federated", "run_sites", "predict", "FederatedResult"],
    "launcher": ["FederatedError"],
})
