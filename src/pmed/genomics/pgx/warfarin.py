"""IWPC pharmacogenetic warfarin dosing algorithm.

International Warfarin Pharmacogenetics Consortium, "Estimation of the warfarin dose with
clinical and pharmacogenetic data", N Engl J Med 2009;360:753-764 (supplementary appendix,
pharmacogenetic algorithm)::

    sqrt(weekly dose, mg) = 5.6044
        - 0.2614 * age in decades (floor(age / 10))
        + 0.0087 * height (cm) + 0.0128 * weight (kg)
        - 0.8677 * VKORC1 -1639 A/G - 1.6974 * A/A - 0.4854 * VKORC1 unknown
        - 0.5211 * CYP2C9 *1/*2 - 0.9357 * *1/*3 - 1.0616 * *2/*2 - 1.9206 * *2/*3
        - 2.3312 * *3/*3 - 0.2188 * CYP2C9 unknown
        - 0.1092 * Asian - 0.2760 * Black or African American - 0.1032 * missing or mixed race
        + 1.1816 * enzyme inducer (carbamazepine, phenytoin, rifampin) - 0.5503 * amiodarone

The algorithm only knows CYP2C9 *1, *2, *3: any other allele is treated as "unknown" (with a
warning), as the IWPC did for genotypes outside its categories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pmed.errors import InputError

__all__ = ["IWPC_COEFFICIENTS", "WarfarinDose", "iwpc_weekly_dose", "vkorc1_from_diplotype"]

IWPC_COEFFICIENTS: dict[str, float] = {
    "intercept": 5.6044,
    "age_decades": -0.2614,
    "height_cm": 0.0087,
    "weight_kg": 0.0128,
    "vkorc1_AG": -0.8677,
    "vkorc1_AA": -1.6974,
    "vkorc1_unknown": -0.4854,
    "cyp2c9_*1/*2": -0.5211,
    "cyp2c9_*1/*3": -0.9357,
    "cyp2c9_*2/*2": -1.0616,
    "cyp2c9_*2/*3": -1.9206,
    "cyp2c9_*3/*3": -2.3312,
    "cyp2c9_unknown": -0.2188,
    "race_asian": -0.1092,
    "race_black": -0.2760,
    "race_missing_or_mixed": -0.1032,
    "enzyme_inducer": 1.1816,
    "amiodarone": -0.5503,
}

_RACES = {"white": None, "asian": "race_asian", "black": "race_black",
          "black or african american": "race_black", "african american": "race_black",
          "missing": "race_missing_or_mixed", "mixed": "race_missing_or_mixed",
          "unknown": "race_missing_or_mixed", None: "race_missing_or_mixed"}


@dataclass
class WarfarinDose:
    """Result of the IWPC algorithm."""

    weekly_mg: float
    daily_mg: float
    sqrt_weekly: float
    terms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def vkorc1_from_diplotype(diplotype: str | None) -> str | None:
    """VKORC1 -1639 genotype (``"GG"``, ``"AG"``, ``"AA"``) from a pmed/PharmCAT call.

    Accepts the matcher's ``rs9923231 reference (C)/rs9923231 variant (T)`` form (C/T on the
    plus strand are G/A at -1639 on the gene's strand) or ``GG``/``G/A``-style genotypes.
    """
    if not diplotype or diplotype in ("no data", "uncallable", "no match"):
        return None
    parts = [p.strip() for p in diplotype.split("/")]
    if len(parts) == 2 and all("rs9923231" in p for p in parts):
        n_a = sum("variant" in p for p in parts)
        return ("GG", "AG", "AA")[n_a]
    g = diplotype.replace("/", "").replace("-1639", "").strip().upper()
    if sorted(g) in (["G", "G"], ["A", "G"], ["A", "A"]):
        return {"GG": "GG", "AG": "AG", "GA": "AG", "AA": "AA"}[g]
    raise InputError(f"cannot read VKORC1 genotype {str(diplotype)[:40]!r}",
                     fix="give the pmed VKORC1 call or GG/AG/AA")


def iwpc_weekly_dose(
    *,
    age: float,
    height_cm: float,
    weight_kg: float,
    cyp2c9: str | None,
    vkorc1: str | None,
    race: str | None = "white",
    enzyme_inducer: bool = False,
    amiodarone: bool = False,
) -> WarfarinDose:
    """Weekly warfarin dose from the IWPC pharmacogenetic algorithm.

    Parameters
    ----------
    age
        Age in years (the algorithm uses whole decades: 45 → 4).
    height_cm, weight_kg
        Height and weight.
    cyp2c9
        CYP2C9 diplotype (``"*1/*3"``; ``None`` when not genotyped).
    vkorc1
        VKORC1 -1639 genotype ``"GG"``/``"AG"``/``"AA"`` or a pmed VKORC1 call (see
        :func:`vkorc1_from_diplotype`); ``None`` when not genotyped.
    race
        ``"white"``, ``"asian"``, ``"black"`` (Black or African American) or
        ``"missing"``/``"mixed"``.
    enzyme_inducer
        Taking carbamazepine, phenytoin, rifampin or rifampicin.
    amiodarone
        Taking amiodarone.

    Returns
    -------
    WarfarinDose
        Weekly and daily dose (mg) and each term's contribution.

    Raises
    ------
    InputError
        Out-of-range age/height/weight or an unknown race category.
    """
    for name, v, lo, hi in (("age", age, 18, 110), ("height_cm", height_cm, 100, 230),
                            ("weight_kg", weight_kg, 25, 300)):
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = None  # a value that is no number at all: the same refusal as one out of range
        if x is None or isinstance(v, bool) or not (lo <= x <= hi):
            raise InputError(f"{name}={str(v)[:20]!r} is outside the algorithm's range {lo}-{hi}",
                             fix=f"give {name} as a number in the stated units")
    key = race.lower().strip() if isinstance(race, str) else race
    if key not in _RACES:
        raise InputError(f"unknown race category {str(race)[:20]!r}",
                         fix="use white, asian, black, mixed or missing")
    c = IWPC_COEFFICIENTS
    warnings: list[str] = []
    terms = {
        "intercept": c["intercept"],
        "age": c["age_decades"] * math.floor(float(age) / 10),
        "height": c["height_cm"] * float(height_cm),
        "weight": c["weight_kg"] * float(weight_kg),
    }
    vk = vkorc1_from_diplotype(vkorc1) if vkorc1 not in ("GG", "AG", "AA") else vkorc1
    terms["vkorc1"] = {"GG": 0.0, "AG": c["vkorc1_AG"], "AA": c["vkorc1_AA"],
                       None: c["vkorc1_unknown"]}[vk]
    dip = None
    if cyp2c9 and cyp2c9 not in ("no data", "uncallable", "no match"):
        a = sorted((x.strip() for x in cyp2c9.split("/")), key=lambda s: (len(s), s))
        dip = "/".join(a)
    if dip is None:
        terms["cyp2c9"] = c["cyp2c9_unknown"]
    elif dip == "*1/*1":
        terms["cyp2c9"] = 0.0
    elif f"cyp2c9_{dip}" in c:
        terms["cyp2c9"] = c[f"cyp2c9_{dip}"]
    else:
        terms["cyp2c9"] = c["cyp2c9_unknown"]
        warnings.append(f"CYP2C9 {dip} is outside the IWPC categories (*1, *2, *3): "
                        "treated as unknown")
    race_key = _RACES[key]
    terms["race"] = c[race_key] if race_key else 0.0
    terms["enzyme_inducer"] = c["enzyme_inducer"] if enzyme_inducer else 0.0
    terms["amiodarone"] = c["amiodarone"] if amiodarone else 0.0
    s = sum(terms.values())
    weekly = max(s, 0.0) ** 2
    return WarfarinDose(weekly_mg=weekly, daily_mg=weekly / 7, sqrt_weekly=s, terms=terms,
                        warnings=warnings)
