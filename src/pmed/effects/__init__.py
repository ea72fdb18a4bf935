"""Treatment effects: who benefits from which treatment, estimated honestly.

``run_effects(patients, treatment=, outcome=, control=)`` compares every arm with the control:
the doubly robust ATE with cross-fitted nuisance models (:mod:`pmed.effects.estimate`), an
overlap report for observational data, out-of-fold CATE from EconML's learners
(:mod:`pmed.effects.learners`) and checks that the heterogeneity they find is real
(:mod:`pmed.effects.evaluate`). Imports are lazy: ``import pmed.effects`` loads no EconML.
"""

from __future__ import annotations

from pmed._lazy import lazy_attributes

__all__, __getattr__, __dir__ = lazy_attributes(__name__, {
    "api": ["run_effects", "EffectsResult", "DEFAULT_LEARNERS"],
    "_data": ["check_treatment"],
    "estimate": ["aipw_ate", "crossfit_nuisance", "difference_in_means", "overlap_report"],
    "learners": ["LEARNERS", "cate_oof"],
    "evaluate": ["rate", "cate_calibration", "policy_value"],
})
