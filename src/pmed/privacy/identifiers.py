"""Which columns of a table are direct identifiers, and which are dates, ages or postal codes.

Two tests, either of which marks a column:

- its **name** (lower-cased, every run of non-letters read as ``_``) names an identifier —
  ``name``, ``surname``, ``address``, ``phone``, ``email``, ``mrn``, ``ssn``, ``nhs_number`` …
  (:data:`NAME_RULES`);
- its **values**: a sample (:data:`SAMPLE_SIZE` values by default) is searched with the regular
  expressions of :data:`IDENTIFIER_PATTERNS`. A strong pattern (e-mail, SSN, phone or NHS-style
  number, MRN, URL, IP address) marks the column when any sampled value holds it; NHS numbers
  written as ten bare digits count when most values pass the NHS modulus-11 check; person
  names when most values are two to four capitalised words and the column has many distinct
  values (half the values, or at least ten and a tenth); long free text (which may hold anything) when values average more than 40 characters
  and six words.

Nothing here returns or logs a value: only the rule and the count of values that matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

__all__ = ["classify_column", "ColumnKind", "IDENTIFIER_PATTERNS", "NAME_RULES", "RESTRICTED_ZIP3",
           "SAMPLE_SIZE", "normalize_name", "nhs_checksum_ok"]

#: Values searched per column (all of them in a smaller table).
SAMPLE_SIZE = 5000

#: The 17 three-digit ZIP prefixes whose areas held 20,000 people or fewer in the 2000 US Census:
#: HIPAA Safe Harbor (45 CFR 164.514(b)(2)(i)(B)) replaces them by ``000`` (HHS guidance, 2012).
RESTRICTED_ZIP3 = frozenset({"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830",
                             "831", "878", "879", "884", "890", "893"})


def normalize_name(name: object) -> str:
    """``"Patient E-Mail"`` → ``"patient_e_mail"``: lower case, non-alphanumerics as one ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).casefold()).strip("_")


def _words(pattern: str) -> re.Pattern:
    """A pattern over the ``_``-separated words of a normalized column name."""
    return re.compile(rf"(?:^|_)(?:{pattern})(?:_|$)")


#: rule → (name pattern, reason). Checked in order; the first match wins.
NAME_RULES: list[tuple[str, re.Pattern, str]] = [
    ("name", re.compile(r"^(?:(?:patient|pt|person|subject|first|last|given|family|full|middle|maiden|sur|fore|"
                        r"nick|birth|mother|mothers|mother_s|father|fathers|father_s|spouse|partner|guardian|"
                        r"contact|emergency_contact|next_of_kin|kin|relative|employer|physician|doctor|"
                        r"provider|gp|referrer|referring_physician)_?names?|names?|surname|forename|"
                        r"firstname|lastname|fullname|given|initials|patient_initials)$"), "person name"),
    ("address", _words(r"address(?:es)?|addr|street|street_address|address_line_?\d?|house_number|"
                       r"city|town|county|municipality|village|district|neighbou?rhood|"
                       r"latitude|longitude|lat|lon|lng|gps|coordinates?"),
     "address or geographic unit smaller than a state"),
    ("phone", _words(r"phone|telephone|tel|mobile|mobile_phone|cellphone|cell_phone|fax|phone_number|pager"), "phone or fax number"),
    ("email", _words(r"e_?mail|email_address|mail"), "e-mail address"),
    ("record_number", _words(r"mrn|medical_record(?:_number|_no|_id)?|record_(?:number|no)|chart_(?:number|no)|"
                             r"hospital_(?:number|no|id)|account_(?:number|no)|health_plan(?:_id|_number)?|"
                             r"insurance_(?:id|number|no)|member_(?:id|number)|beneficiary(?:_id|_number)?|"
                             r"policy_(?:number|no)|accession(?:_number|_no)?|encounter_id|visit_id|"
                             r"admission_id|case_number"), "medical record, account or plan number"),
    ("national_id", _words(r"ssn|social_security(?:_number|_no)?|nhs(?:_number|_no|_id)?|chi(?:_number|_no)|"
                           r"national_(?:id|identifier|insurance|number)|nino|ni_number|insurance_number|"
                           r"passport(?:_number|_no)?|driver_?s?_licen[cs]e|licen[cs]e_(?:number|no)|"
                           r"tax_id|bsn|personnummer|steuer_id|medicare(?:_number|_no|_id)?|"
                           r"medicaid(?:_number|_no|_id)?"),
     "national, insurance or licence number"),
    ("online_id", _words(r"ip|ip_address|url|website|web_address|homepage|username|user_name|login|"
                         r"social_media|twitter"), "IP address, URL or online account"),
    ("device_or_vehicle", _words(r"serial_(?:number|no)|device_serial|imei|mac_address|vin|licen[cs]e_plate|"
                                 r"number_plate|plate_number|vehicle_id"), "device or vehicle identifier"),
    ("biometric", _words(r"fingerprint|voiceprint|face_image|photo|photograph|retina_scan"), "biometric or photo"),
]

#: rule → (regular expression searched in the text of each value, reason).
IDENTIFIER_PATTERNS: dict[str, tuple[re.Pattern, str]] = {
    "email": (re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}"), "values hold e-mail addresses"),
    "ssn": (re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"), "values hold US social security numbers"),
    "phone": (re.compile(r"(?:(?<![\w])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]?\d{2,5}){1,3}(?!\w))|"
                         r"(?:(?<![\w-])\(?\d{2,5}\)?[ .-]\d{3,4}[ .-]\d{3,4}(?![\w-]))"),
              "values hold phone numbers or NHS-style numbers"),
    "mrn": (re.compile(r"(?i)(?<![a-z])(?:mrn|mr|hn|hosp|pid|nhs|chi)[ #:_-]*\d{5,}"),
            "values look like medical record numbers"),
    "url": (re.compile(r"(?i)\b(?:https?://|www\.)\S+"), "values hold URLs"),
    "ip": (re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"),
           "values hold IP addresses"),
}

_NAME_VALUE = re.compile(r"(?:[^\W\d_][^\W\d_'’.-]*\.?)(?:[ '’-](?:[^\W\d_][^\W\d_'’.-]*\.?)){1,3}")
_TEN_DIGITS = re.compile(r"\d{10}")


def nhs_checksum_ok(digits: str) -> bool:
    """Whether ten digits pass the NHS number's modulus-11 check (weights 10 … 2)."""
    if not _TEN_DIGITS.fullmatch(digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


@dataclass(frozen=True)
class ColumnKind:
    """What :func:`classify_column` found: ``kind`` is ``identifier``, ``date``, ``age``, ``postal``
    or ``other``; ``rule`` and ``reason`` say why; ``n_matched`` counts the sampled values that
    matched a value pattern (``None`` when the name decided)."""

    kind: str
    rule: str | None = None
    reason: str | None = None
    n_matched: int | None = None
    n_sampled: int | None = None


_DATE_NAME = _words(r"date|dates|dt|dob|birth|birth_?date|date_of_birth|dod|date_of_death|death_date|"
                    r"admission|admitted|discharge|discharged|visit_date|datetime|timestamp|"
                    r"\w*_date|date_\w*|\w*_dt")
_AGE_NAME = re.compile(r"^(?:age|ages|age_years|age_yrs|age_y|patient_age|age_at_\w+|\w+_age|age_\w+)$")
_POSTAL_NAME = _words(r"zip|zipcode|zip_code|zip5|zip3|postcode|post_code|postal_code|postalcode|plz|"
                      r"postleitzahl|code_postal|cp")
_UNIQUE_NAME = re.compile(r"(?:^|_)(?:id|ids|identifier|uid|guid|uuid|number|no|num)$")
_BIRTH_NAME = _words(r"dob|birth|birth_?date|date_of_birth|birthday|born")


def is_birth_date(name: object) -> bool:
    """Whether a column's name says it holds birth dates."""
    return bool(_BIRTH_NAME.search(normalize_name(name)))


def _sample(s: pd.Series, n: int) -> pd.Series:
    vals = s.dropna()
    if len(vals) > n:
        vals = vals.sample(n, random_state=0)
    return vals.astype(str).str.strip()


def _looks_numeric(text: pd.Series) -> bool:
    return len(text) > 0 and bool(pd.to_numeric(text, errors="coerce").notna().all())


def date_share(text: pd.Series) -> float:
    """Share of values (as text) that parse as dates with a year, month and day."""
    if len(text) == 0:
        return 0.0
    shaped = text.str.match(r"^\s*(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})(?:[ T].*)?$")
    if not shaped.any():
        return 0.0
    parsed = pd.to_datetime(text[shaped], errors="coerce", format="mixed")
    return float(parsed.notna().sum()) / len(text)


def classify_column(name: object, values: pd.Series, *, sample: int = SAMPLE_SIZE) -> ColumnKind:
    """Decide what a column holds, from its name and a sample of its values.

    Parameters
    ----------
    name
        The column's name.
    values
        The column.
    sample
        Most values searched.

    Returns
    -------
    ColumnKind
        ``identifier`` (with the rule and reason), ``date``, ``age``, ``postal`` or ``other``.
    """
    norm = normalize_name(name)
    if _POSTAL_NAME.search(norm):
        return ColumnKind("postal", "postal_name", "column name says postal code")
    if _AGE_NAME.match(norm) and not _DATE_NAME.search(norm):
        return ColumnKind("age", "age_name", "column name says age")
    for rule, pattern, reason in NAME_RULES:
        if pattern.search(norm):
            return ColumnKind("identifier", rule, f"column name says {reason}")
    text = _sample(values, sample)
    n = len(text)
    if n == 0:
        return ColumnKind("date" if _DATE_NAME.search(norm) else "other", n_sampled=0)
    numeric = _looks_numeric(text)
    if not numeric:
        for rule, (pattern, reason) in IDENTIFIER_PATTERNS.items():
            hits = int(text.str.contains(pattern, regex=True).sum())
            if hits:
                return ColumnKind("identifier", rule, reason, hits, n)
    digits = text.str.replace(r"[ -]", "", regex=True)
    ten = digits[digits.str.fullmatch(r"\d{10}")]
    if len(ten) >= max(1, n // 2):
        ok = int(sum(nhs_checksum_ok(d) for d in ten))
        if ok >= 0.8 * len(ten):
            return ColumnKind("identifier", "nhs_number", "values are valid NHS numbers", ok, n)
    distinct = text.nunique() / n
    if _UNIQUE_NAME.search(norm) and n >= 10 and distinct >= 0.9:
        return ColumnKind("identifier", "unique_number", "an identifying number (column name says ID or number, "
                          "and nearly every value is distinct)", n, n)
    if numeric:
        return ColumnKind("other", n_sampled=n)
    share = date_share(text)
    if share >= 0.9 or (share >= 0.5 and _DATE_NAME.search(norm)):
        return ColumnKind("date", "date_values", "values are dates", int(round(share * n)), n)
    lengths = text.str.len()
    words = text.str.count(r"\s+") + 1
    if lengths.mean() > 40 and words.mean() > 6:
        return ColumnKind("identifier", "free_text", "free text (may hold names, dates or numbers)", n, n)
    names = text.str.fullmatch(_NAME_VALUE) & text.str.split().map(
        lambda ws: all(w[:1].isupper() for w in ws) if isinstance(ws, list) else False)
    # many distinct values (a patient's name repeats on each of their rows; a category's few values do not)
    if n >= 5 and names.mean() >= 0.8 and (distinct >= 0.5 or text.nunique() >= max(10, 0.1 * n)):
        return ColumnKind("identifier", "person_name", "values look like person names", int(names.sum()), n)
    if _DATE_NAME.search(norm) and share > 0:
        return ColumnKind("date", "date_name", "column name says date", int(round(share * n)), n)
    return ColumnKind("other", n_sampled=n)

