"""Privacy of patient tables: de-identification and re-identification risk.

- :mod:`pmed.privacy.keys`: the secret key file behind keyed pseudonyms (:func:`load_key`,
  :func:`create_key`): 32 random bytes, owner-only, never beside the released data.
- :mod:`pmed.privacy.identifiers`: which columns are direct identifiers, by column name and by
  value patterns (e-mail, phone, SSN, NHS number, MRN, IP address, URL, person names, free text).
- :mod:`pmed.privacy.deid`: :func:`deidentify_table` — keyed HMAC-SHA-256 pseudonyms, direct
  identifiers removed, dates shifted per patient, ages over 89 grouped as ``90+``, ZIP/postal
  codes truncated → :class:`DeidResult` (``.write(out)``: the table and its column report;
  CLI ``pmed privacy deidentify``).
- :mod:`pmed.privacy.risk`: :func:`check_risk` — k-anonymity and l-diversity of a quasi-identifier
  combination; :func:`enforce_k_anonymity` — generalization hierarchies, then suppression.
- :mod:`pmed.privacy.api`: :func:`run_privacy` → :class:`PrivacyResult` (``privacy.json`` and the
  released table; CLI ``pmed privacy check``).

Imports are lazy: ``import pmed.privacy`` loads nothing until a name is used.
"""

from __future__ import annotations

from pmed._lazy import lazy_attributes

__all__, __getattr__, __dir__ = lazy_attributes(__name__, {
    "keys": ["load_key", "create_key", "key_id", "check_key_location", "KEY_BYTES", "MIN_KEY_BYTES"],
    "identifiers": ["classify_column", "IDENTIFIER_PATTERNS", "RESTRICTED_ZIP3"],
    "deid": ["deidentify_table", "DeidResult", "pseudonym", "date_offset", "truncate_postal",
             "MAX_SHIFT_DAYS"],
    "risk": ["check_risk", "enforce_k_anonymity", "equivalence_classes"],
    "api": ["run_privacy", "PrivacyResult"],
})
