"""Made-up patient tables for the privacy tests: realistic identifiers, none of them real."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

FIRST = ["José", "Zoë", "Łukasz", "Søren", "Ana", "Björn", "Chloé", "Dmitrij", "Émile", "François", "Grzegorz",
         "Hélène", "Íñigo", "Jürgen", "Kateřina", "Léa", "Małgorzata", "Nuño", "Ørjan", "Siobhán"]
LAST = ["García", "Müller", "Nowak", "Østergård", "Dvořák", "Ñúñez", "O'Brien", "Çelik", "Šimić", "Lefèvre",
        "Håkansson", "Žukauskas", "Brontë", "Fernández", "Kowalczyk"]
ZIPS = ["02134", "03601", "10001", "59001", "94110", "12345-6789", "20301", "88400"]

#: Regular expressions that must find nothing in a de-identified export.
LEAK_PATTERNS = {
    "email": re.compile(r"[\w.%+-]+@[\w-]+\.[\w.]+"),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "phone": re.compile(r"\+\d{1,3} \d{2,4} \d{3,4} \d{3,4}|\(\d{3}\) \d{3}-\d{4}"),
    "mrn": re.compile(r"MRN-\d{6}"),
    "nhs": re.compile(r"\b\d{3} \d{3} \d{4}\b"),
}


def nhs_number(rng: np.random.Generator) -> str:
    """A made-up ten-digit number that passes the NHS modulus-11 check, as ``ddd ddd dddd``."""
    while True:
        d = rng.integers(0, 10, 9)
        check = 11 - int(sum(int(x) * w for x, w in zip(d, range(10, 1, -1), strict=True))) % 11
        check = 0 if check == 11 else check
        if check != 10:
            s = "".join(map(str, d)) + str(check)
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def make_patients(n: int = 40, seed: int = 0, visits: int = 3) -> pd.DataFrame:
    """``n`` patients, ``visits`` rows each: identifiers of every kind, dates, ages, ZIP codes."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        pid = f"MRN-{100000 + i * 37:06d}"
        age = int(rng.integers(25, 100))
        dob = pd.Timestamp("2020-06-01") - pd.Timedelta(days=int(age * 365.25 + rng.integers(0, 300)))
        admit = pd.Timestamp("2019-01-01") + pd.Timedelta(days=int(rng.integers(0, 900)))
        ssn = f"{rng.integers(100, 899)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}"
        phone = f"+44 20 {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}"
        for v in range(visits):
            a = admit + pd.Timedelta(days=30 * v + int(rng.integers(0, 10)))
            rows.append({
                "patient_id": pid,
                "full_name": f"{first} {last}",
                "e-mail": f"{first.lower()}.{i}@example.org",
                "phone": phone,
                "ssn": ssn,
                "nhs_number": nhs_number(rng),
                "address": f"{int(rng.integers(1, 200))} Rue de la Paix",
                "zip": ZIPS[i % len(ZIPS)],
                "age": age,
                "sex": "F" if i % 2 else "M",
                "dob": dob.strftime("%Y-%m-%d"),
                "admit_date": a.strftime("%Y-%m-%d"),
                "discharge_date": (a + pd.Timedelta(days=int(rng.integers(1, 15)))).strftime("%Y-%m-%d"),
                "icd10": str(rng.choice(["E11.9", "I10", "C50.9", "J45.0", "N18.3"])),
                "crp": round(float(rng.lognormal(0.5, 0.8)), 2),
                # identifiers in columns whose names say nothing: found by their values
                "contact": f"{first.lower()}@mail.example.com" if v == 0 else phone,
                "ref": pid.replace("MRN-", "MRN ") if v == 1 else f"MRN{100000 + i * 37}",
                "kin": f"{FIRST[(i + 3) % len(FIRST)]} {LAST[(i + 5) % len(LAST)]}",
                "notes": (f"Seen by Dr {last}; patient {first} {last} reports chest pain since Monday, "
                          f"call back on {phone}"),
            })
    return pd.DataFrame(rows)


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def identifier_values(df: pd.DataFrame) -> set[str]:
    """Every identifying value of a made-up table (to search the export for)."""
    vals: set[str] = set()
    for col in ("patient_id", "full_name", "e-mail", "phone", "ssn", "nhs_number", "address", "contact", "ref",
                "kin"):
        vals |= {str(v) for v in df[col].dropna().unique()}
    vals |= {n for n in FIRST + LAST}
    return vals
