"""What a guideline's recommendation asks the prescriber to do, in one word: the ``pgx_flag``.

CPIC and DPWG write recommendations as sentences ("Avoid standard dose (75 mg) clopidogrel if
possible. Use prasugrel or ticagrelor at standard dose…"). Beside a model's ranked treatment
options a clinician needs the action at a glance, so each recommendation is read into one of
:data:`FLAGS`, from the most to the least severe; a patient with several recommendations for a
drug (one per indication or source) gets the most severe, and the sentence it came from is kept
beside it (``pgx_guidance``), so the flag can always be checked against the guideline's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

__all__ = ["FLAGS", "action_flag", "pgx_flags"]

#: Flags from the most to the least severe. "no guideline": CPIC and DPWG have no
#: recommendation for the drug matched to the patient's calls; "no PGx calls": none were given.
FLAGS = ("avoid", "alternative", "dose change", "monitor", "standard", "no recommendation", "no guideline",
         "no PGx calls")

_RULES = (  # first match in this order of severity
    ("avoid", re.compile(r"\bavoid\b|\bcontraindicated\b|\bdo not (use|prescribe)\b|\bnot recommended\b", re.I)),
    ("alternative", re.compile(r"\balternative\b|\banother (drug|agent)\b|\b(choose|select|use) (a |an )?"
                               r"(different|other)\b", re.I)),
    ("dose change", re.compile(r"\b(reduc|increas|decreas|lower|higher|doubl|halv|adjust|titrat)\w*\b[^.]{0,60}"
                               r"\bdos(e|age|ing)\b|\bdos(e|age|ing)\b[^.]{0,40}\b(reduc|increas|decreas|lower|"
                               r"higher|doubl|halv|adjust|titrat)\w*|\bdo not exceed\b", re.I)),
    ("monitor", re.compile(r"\bmonitor\w*\b|\btherapeutic drug monitoring\b", re.I)),
    ("standard", re.compile(r"\bstandard (starting )?(daily )?dos|\blabel(l)?(ed|-recommended)\b|\bnormal dos|"
                            r"\bno action\b|\brecommended starting dose\b|\bper (the )?label\b|"
                            r"\binitiate therapy with\b", re.I)),
    ("no recommendation", re.compile(r"\bno recommendation\b|\bdoes not provide a recommendation\b|"
                                     r"\bno (dose )?adjustment (is )?(needed|required)\b", re.I)),
)


#: CPIC's wording for "nothing genotype-specific": the dose adjustments it mentions are the
#: disease's, not the genotype's (statins in normal function)
_NOT_GENOTYPE = re.compile(r"desired starting dose and adjust doses [^.]{0,40}based on disease-specific", re.I)


def action_flag(text: str) -> str:
    """The flag (:data:`FLAGS`) of one recommendation's text.

    The recommendation proper is read (CPIC's "Other Considerations" that follow it are not),
    its first sentence first, since that is where CPIC and DPWG put the action ("Avoid…",
    "Initiate therapy with recommended starting dose."); the rest only when the first sentence
    names no action. Within what is read, the most severe action wins.

    >>> action_flag("Avoid standard dose (75 mg) clopidogrel if possible. Use prasugrel or ticagrelor.")
    'avoid'
    >>> action_flag("If considering clopidogrel, use at standard dose (75 mg/day)")
    'standard'
    """
    body = re.split(r"\bOther Considerations\b", str(text), maxsplit=1)[0]
    for part in (_first_sentence(body, limit=None), body):
        if _NOT_GENOTYPE.search(part):
            return "standard"
        for flag, rule in _RULES:
            if rule.search(part):
                return flag
    return "no recommendation"


def _first_sentence(text: str, limit: int | None = 160) -> str:
    s = re.split(r"(?<=[.!?])\s|\n|\s{2,}", str(text).strip(), maxsplit=1)[0].strip()
    return s if limit is None or len(s) <= limit else s[: limit - 1].rstrip() + "…"


def pgx_flags(recommendations: pd.DataFrame | None, patients: Iterable, drugs: Iterable[str]) -> pd.DataFrame:
    """The flag and guidance for every patient and drug.

    Parameters
    ----------
    recommendations
        ``recommendations.tsv`` of ``pmed pgx call`` (columns ``sample``, ``drug``, ``source``,
        ``recommendation``), or ``None`` when no PGx calls were given.
    patients, drugs
        The patients (sample IDs) and drugs (treatment names; matched case-insensitively).

    Returns
    -------
    pandas.DataFrame
        ``patient_id, treatment, pgx_flag, pgx_guidance``: the most severe flag over the
        patient's recommendations for the drug, and per source (CPIC, DPWG) the first sentence
        of its most severe recommendation.
    """
    patients, drugs = list(patients), [str(d) for d in drugs]
    rows = []
    recs = None
    if recommendations is not None:
        recs = recommendations.assign(_drug=recommendations["drug"].astype(str).str.lower(),
                                      _sample=recommendations["sample"].astype(str))
    for p in patients:
        mine = recs[recs["_sample"] == str(p)] if recs is not None else None
        for d in drugs:
            if mine is None:
                rows.append((p, d, "no PGx calls", ""))
                continue
            r = mine[mine["_drug"] == d.lower()]
            if r.empty:
                rows.append((p, d, "no guideline", ""))
                continue
            flags = [action_flag(t) for t in r["recommendation"]]
            worst = min(flags, key=FLAGS.index)
            guidance = []
            for src in dict.fromkeys(r["source"].astype(str)):
                sub = [(FLAGS.index(f), t) for f, t, s in zip(flags, r["recommendation"], r["source"], strict=True)
                       if str(s) == src]
                guidance.append(f"{src}: {_first_sentence(min(sub, key=lambda x: x[0])[1])}")
            rows.append((p, d, worst, " | ".join(guidance)))
    return pd.DataFrame(rows, columns=["patient_id", "treatment", "pgx_flag", "pgx_guidance"])
