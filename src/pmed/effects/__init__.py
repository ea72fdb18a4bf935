"""Treatment effects: who benefits from which treatment, estimated honestly.

``run_effects(patients, treatment=, outcome=, control=)`` compares every arm with the control:
the doubly robust ATE with cross-fitted nuisance models (:mod:`pmed.effects.estimate`), an
overlap report for observational data, out-of-fold CATE from EconML's learners
(:mod:`pmed.effects.learners`) and checks that the heterogeneity they find is real
(:mod:`pmed.effects.evaluate`). Imports are lazy: ``import pmed.effects`` loads no EconML.
"""

from __future__ import annotations

from pmed._lazy import lazy_attributes

_LAZY = {
    "run_effects": "api",
    "EffectsResult": "api",
    "DEFAULT_LEARNERS": "api",
    "check_treatment": "_data",
    "aipw_ate": "estimate",
    "crossfit_nuisance": "estimate",
    "difference_in_means": "estimate",
    "overlap_report": "estimate",
    "LEARNERS": "learners",
    "cate_oof": "learners",
    "rate": "evaluate",
    "cate_calibration": "evaluate",
    "policy_value": "evaluate",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
