"""DICOM de-identification following the Basic Application Level Confidentiality Profile.

Implements DICOM PS3.15 Annex E, Table E.1-1 (basic profile, no options retained) for the
attributes listed in :data:`ACTIONS`, plus catch-all rules: every person name (VR ``PN``) is
emptied, every date/time (``DA``, ``DT``, ``TM``) not listed is removed, every instance UID
(``UI`` not naming a class or transfer syntax) is replaced consistently, private tags, overlays
(group ``60xx``) and curves (``50xx``) are removed; sequences are processed recursively. The
patient ID and name are replaced by one pseudonym per patient. ``PatientIdentityRemoved`` is
set to ``YES`` and ``DeidentificationMethodCodeSequence`` to DCM 113100 (basic profile).

Pixel data are kept bit for bit. Text burned into the pixels cannot be removed here: files whose
``BurnedInAnnotation`` is not ``NO`` are reported. The re-identification mapping (pseudonym →
original patient ID and name, new → original UIDs and file paths) is written to a separate CSV
that must be stored apart from the de-identified images.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pmed.errors import InputError
from pmed.io.names import check_inside, safe_filename

__all__ = ["ACTIONS", "KEEP_UIDS", "DeidResult", "deidentify_dataset", "deidentify", "is_deid_output"]

#: keyword → action of PS3.15 Table E.1-1 (X remove, Z empty, D dummy, U new UID)
ACTIONS: dict[str, str] = {
    # patient
    "PatientName": "D", "PatientID": "D", "PatientBirthDate": "Z", "PatientSex": "Z",
    "PatientBirthTime": "X", "OtherPatientIDs": "X", "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X", "PatientBirthName": "X", "PatientMotherBirthName": "X",
    "PatientAddress": "X", "PatientTelephoneNumbers": "X", "PatientTelecomInformation": "X",
    "PatientAge": "X", "PatientSize": "X", "PatientWeight": "X", "MilitaryRank": "X",
    "BranchOfService": "X", "EthnicGroup": "X", "Occupation": "X", "AdditionalPatientHistory": "X",
    "PatientComments": "X", "MedicalRecordLocator": "X", "MedicalAlerts": "X", "Allergies": "X",
    "CountryOfResidence": "X", "RegionOfResidence": "X", "PatientReligiousPreference": "X",
    "PregnancyStatus": "X", "LastMenstrualDate": "X", "SmokingStatus": "X", "PatientState": "X",
    "PatientInsurancePlanCodeSequence": "X", "InsurancePlanIdentification": "X",
    "PatientPrimaryLanguageCodeSequence": "X", "ResponsiblePerson": "X", "ResponsibleOrganization": "X",
    "IssuerOfPatientID": "X", "PatientSexNeutered": "X", "ReferencedPatientSequence": "X",
    "ReferencedPatientAliasSequence": "X", "PatientBreedDescription": "X",
    # study / visit
    "AccessionNumber": "Z", "StudyID": "Z", "StudyDate": "Z", "StudyTime": "Z", "ContentDate": "Z",
    "ContentTime": "Z", "ReferringPhysicianName": "Z", "StudyDescription": "X", "SeriesDescription": "X",
    "AdmittingDiagnosesDescription": "X", "AdmittingDiagnosesCodeSequence": "X", "AdmissionID": "X",
    "IssuerOfAdmissionIDSequence": "X", "ServiceEpisodeID": "X", "ServiceEpisodeDescription": "X",
    "VisitComments": "X", "CurrentPatientLocation": "X", "PatientInstitutionResidence": "X",
    "ReasonForStudy": "X", "RequestingService": "X", "RequestedProcedureDescription": "X",
    "RequestedProcedureID": "X", "RequestAttributesSequence": "X", "ReasonForTheRequestedProcedure": "X",
    "ScheduledProcedureStepDescription": "X", "ScheduledProcedureStepID": "X",
    "PerformedProcedureStepID": "X", "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepStartDate": "X", "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepEndDate": "X", "PerformedProcedureStepEndTime": "X",
    "ReferencedStudySequence": "X", "ReferencedPerformedProcedureStepSequence": "X",
    "OrderEnteredBy": "X", "OrderEntererLocation": "X", "OrderCallbackPhoneNumber": "X",
    "PlacerOrderNumberImagingServiceRequest": "X", "FillerOrderNumberImagingServiceRequest": "X",
    "ClinicalTrialSponsorName": "X", "ClinicalTrialProtocolID": "X", "ClinicalTrialSiteID": "X",
    "ClinicalTrialSiteName": "X", "ClinicalTrialSubjectID": "X", "ClinicalTrialSubjectReadingID": "X",
    # people and places
    "InstitutionName": "X", "InstitutionAddress": "X", "InstitutionalDepartmentName": "X",
    "InstitutionCodeSequence": "X", "StationName": "X", "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X", "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X", "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X", "OperatorsName": "X",
    "OperatorIdentificationSequence": "X", "RequestingPhysician": "X", "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X", "ReferringPhysicianIdentificationSequence": "X",
    "ConsultingPhysicianName": "X", "PersonName": "X", "PersonAddress": "X", "PersonTelephoneNumbers": "X",
    "VerifyingObserverName": "D", "VerifyingOrganization": "X", "ContentCreatorName": "Z",
    "ReviewerName": "X", "ScheduledPerformingPhysicianName": "X", "NamesOfIntendedRecipientsOfResults": "X",
    # equipment, acquisition, free text
    "DeviceSerialNumber": "X", "DeviceUID": "U", "ProtocolName": "X", "AcquisitionDate": "X",
    "AcquisitionTime": "X", "AcquisitionDateTime": "X", "SeriesDate": "X", "SeriesTime": "X",
    "InstanceCreationDate": "X", "InstanceCreationTime": "X", "OverlayDate": "X", "OverlayTime": "X",
    "CurveDate": "X", "CurveTime": "X", "DerivationDescription": "X", "ImageComments": "X",
    "FrameComments": "X", "TextString": "X", "TextComments": "X", "AcquisitionComments": "X",
    "InterpretationText": "X", "ImpressionsText": "X", "ResultsComments": "X", "IdentifyingComments": "X",
    "ModifiedAttributesSequence": "X", "OriginalAttributesSequence": "X", "DigitalSignaturesSequence": "X",
    "DataSetTrailingPadding": "X", "StorageMediaFileSetID": "X", "ContributionDescription": "X",
    "DetectorID": "X", "GantryID": "X", "GeneratorID": "X", "PlateID": "X", "CassetteID": "X",
    "SourceSerialNumber": "X", "MAC": "X", "IconImageSequence": "X", "AcquisitionDeviceProcessingDescription": "X",
    "DischargeDiagnosisDescription": "X", "ReferencedImageSequence": "K",  # kept; its UIDs replaced
}

#: UI attributes that name a class or syntax (not an instance): never replaced
KEEP_UIDS = {
    "SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "RelatedGeneralSOPClassUID", "OriginalSpecializedSOPClassUID",
    "CodingSchemeUID", "ContextGroupExtensionCreatorUID", "PrivateInformationCreatorUID",
    "ReferencedTransferSyntaxUIDInFile", "ReferencedSOPClassUIDInFile", "RelatedSOPClassUID",
    "ContextUID", "MappingResourceUID", "TemplateExtensionOrganizationUID",
}

METHOD = "pmed: DICOM PS3.15 E.1 Basic Profile"  # LO: at most 64 characters


@dataclass
class DeidResult:
    """What :func:`deidentify` did.

    Attributes
    ----------
    files
        One row per file written: ``source`` (original path), ``output`` (new path),
        ``pseudonym``, ``burned_in_annotation``.
    mapping
        The re-identification table: ``kind`` (``patient``, ``uid``, ``file``), ``pseudonym``
        (or new value), ``original``, ``attribute``.
    skipped
        Files that are not DICOM (left out).
    warnings
        Human-readable warnings (burned-in annotations).
    """

    files: pd.DataFrame
    mapping: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Mapper:
    """Consistent replacement values within (and, given a previous mapping, across) runs."""

    def __init__(self, previous: pd.DataFrame | None = None, prefix: str = "PMED") -> None:
        self.patients: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.uids: dict[str, str] = {}
        self.rows: list[dict] = []
        self.prefix = prefix
        if previous is not None and len(previous):
            for r in previous.itertuples(index=False):
                if r.kind == "patient" and r.attribute == "PatientID":
                    self.patients[str(r.original)] = str(r.pseudonym)
                elif r.kind == "uid":
                    self.uids[str(r.original)] = str(r.pseudonym)
            self.rows = previous.to_dict(orient="records")

    def patient(self, pid: str, name: str) -> str:
        key = pid if pid else f"name:{name}"
        if key not in self.patients:
            taken = set(self.patients.values())
            while True:
                p = f"{self.prefix}{secrets.token_hex(4).upper()}"
                if p not in taken:
                    break
            self.patients[key] = p
            self.rows.append({"kind": "patient", "attribute": "PatientID", "pseudonym": p, "original": pid})
            self.rows.append({"kind": "patient", "attribute": "PatientName", "pseudonym": p, "original": name})
        return self.patients[key]

    def uid(self, value: str, attribute: str) -> str:
        from pydicom.uid import generate_uid

        if not value:
            return value
        if value not in self.uids:
            self.uids[value] = generate_uid(prefix=None)  # 2.25.<uuid>: no root that leaks the site
            self.rows.append({"kind": "uid", "attribute": attribute, "pseudonym": self.uids[value],
                              "original": value})
        return self.uids[value]


def _clean(ds, mapper: _Mapper, pseudonym: str) -> None:
    from pydicom.dataset import Dataset  # noqa: F401  (sequence items are Datasets)

    ds.remove_private_tags()
    for elem in list(ds):
        tag = elem.tag
        group = tag.group
        if 0x5000 <= group <= 0x50FF or (0x6000 <= group <= 0x60FF and tag.element in (0x3000, 0x4000)):
            del ds[tag]  # curves; overlay data and comments
            continue
        kw = elem.keyword
        action = ACTIONS.get(kw)
        if elem.VR == "SQ" and action not in ("X",):
            for item in elem.value:
                _clean(item, mapper, pseudonym)
            continue
        if action == "X":
            del ds[tag]
        elif action == "Z":
            elem.value = ""
        elif action == "D":
            elem.value = pseudonym if kw in ("PatientID", "PatientName") else "ANONYMOUS"
        elif action == "U" or (elem.VR == "UI" and kw not in KEEP_UIDS and action != "K"):
            if elem.VM > 1:
                elem.value = [mapper.uid(str(v), kw) for v in elem.value]
            elif elem.value:
                elem.value = mapper.uid(str(elem.value), kw)
        elif elem.VR == "PN":
            elem.value = ""
        elif elem.VR in ("DA", "DT", "TM") and action is None:
            del ds[tag]


def deidentify_dataset(ds, mapper: _Mapper | None = None):
    """De-identify one pydicom ``Dataset`` in place and return ``(dataset, pseudonym)``."""
    from pydicom.dataset import Dataset

    mapper = mapper or _Mapper()
    pseudonym = mapper.patient(str(ds.get("PatientID", "")), str(ds.get("PatientName", "")))
    _clean(ds, mapper, pseudonym)
    if getattr(ds, "file_meta", None) is not None:
        fm = ds.file_meta
        if "MediaStorageSOPInstanceUID" in fm and "SOPInstanceUID" in ds:
            fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                   "ReceivingApplicationEntityTitle", "PrivateInformation", "PrivateInformationCreatorUID"):
            if kw in fm:
                delattr(fm, kw)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    return ds, pseudonym


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


_PSEUDONYM = re.compile(r"PMED[0-9A-F]{8}")


def is_deid_output(folder: str | Path) -> bool:
    """Whether ``folder`` holds only what :func:`deidentify` writes (an earlier output of it).

    Recognised by its layout, since the folder carries no provenance file (one listing input
    paths would put identifying names beside the de-identified images): ``*.dcm`` files either
    at the top (one file de-identified into a folder) or three levels down under a pseudonym
    folder (``PMED…/<series UID>/<instance UID>.dcm``).
    """
    folder = Path(folder)
    found = False
    for p in folder.rglob("*"):
        if p.is_dir():
            continue
        rel = p.relative_to(folder).parts
        ok = p.suffix == ".dcm" and (len(rel) == 1 or (len(rel) == 3 and _PSEUDONYM.fullmatch(rel[0])))
        if not ok:
            return False
        found = True
    return found


def _check_paths(source: Path, out: Path, mapping: Path, *, file_out: bool, overwrite: bool) -> None:
    """Every refusal about where things go, before a byte is read or written (issue #16)."""
    from pmed.io import check_not_input

    if not source.exists():
        raise InputError("input not found", file=source, fix="check the path")
    if source.resolve() == out.resolve() or (source.is_dir() and _inside(out, source)):
        raise InputError("the output lies inside the input", file=out,
                         fix="write the de-identified copy to a folder outside the input; inputs are never modified")
    if not file_out and _inside(source, out):
        raise InputError("the input lies inside the output folder, which is replaced whole", file=out,
                         fix="choose an output folder outside the input")
    if mapping.is_dir():
        raise InputError("the mapping path is a folder", file=mapping, fix="pass --mapping a CSV file path")
    check_not_input(mapping, source)
    if _inside(mapping, out.parent if file_out else out):
        raise InputError("the re-identification mapping would be stored with the de-identified images",
                         file=mapping, fix="pass --mapping a path outside OUT (kept by the data custodian)")
    if source.is_dir() and _inside(mapping, source):
        raise InputError("the re-identification mapping would be written into the input folder", file=mapping,
                         fix="pass --mapping a path outside the input; inputs are never modified")
    if file_out:
        if out.exists() and not overwrite:
            raise InputError("output file exists", file=out, fix="pass --overwrite or choose another output path")
        return
    if out.exists() and not out.is_dir():
        raise InputError("the output path is a file, not a folder", file=out,
                         fix="give a folder for the de-identified copies of a folder")
    if out.is_dir() and any(out.iterdir()):
        if not is_deid_output(out):
            raise InputError("the output folder is not empty and does not hold an earlier de-identified "
                             "output; pmed replaces the output folder whole", file=out,
                             fix="choose a new or empty folder")
        if not overwrite:
            raise InputError("the output folder holds an earlier de-identified output", file=out,
                             fix="pass --overwrite to replace it whole, or choose another folder")


def _read(f: Path, source: Path, files: list[Path]):
    """The dataset of ``f``; ``None`` for a file of a folder that is not DICOM at all."""
    from pmed.imaging.readers.dicom import NotDicomError, read_dataset

    try:
        return read_dataset(f)
    except NotDicomError:
        if not source.is_dir():
            raise InputError("not a readable DICOM file", file=f,
                             fix="check the file; de-identification only handles DICOM") from None
        return None
    except InputError as e:
        if not source.is_dir():
            raise
        # files of a folder are named by their position, not their path: folder and file names
        # often identify the patient (issue #16)
        k = files.index(f) + 1
        raise InputError(e.message, file=source, where=f"file {k} of {len(files)} (sorted by path)",
                         fix=f"find it with: find SOURCE -type f | LC_ALL=C sort | sed -n {k}p; then "
                             "re-export it from the PACS or move it out") from None


def deidentify(
    source: str | Path,
    out: str | Path,
    *,
    mapping: str | Path,
    overwrite: bool = False,
) -> DeidResult:
    """De-identify a DICOM file or a folder of DICOM files.

    Parameters
    ----------
    source
        A DICOM file or a folder (searched recursively; files that are not DICOM are skipped).
    out
        For a file: the output file (or a folder to put it in). For a folder: the output folder,
        laid out ``<pseudonym>/<new SeriesInstanceUID>/<new SOPInstanceUID>.dcm`` (original
        names may themselves identify the patient). An output folder is written whole into a
        staging folder beside it and swapped in at the end: a failed run leaves the previous
        output, and a re-run never mixes its files with an earlier run's.
    mapping
        The re-identification CSV. Must lie outside ``out`` and the input (it is the key to the
        identities); when it exists its pseudonyms and UIDs are reused and extended, so that a
        patient keeps one pseudonym across batches. Written only when every file succeeded.
    overwrite
        Replace an existing output file, or an output folder holding an earlier de-identified
        output (replaced whole).

    Returns
    -------
    DeidResult

    Raises
    ------
    InputError
        Missing source; ``out`` inside ``source`` or equal to it (or the other way round);
        ``mapping`` inside ``out`` or the input; an existing output without ``overwrite``; a
        non-empty output folder holding something else; a damaged or truncated DICOM file (its
        pixel data shorter than Rows × Columns × SamplesPerPixel × BitsAllocated / 8 × frames);
        no DICOM file found.
    """
    from pmed.errors import require

    require("pydicom", extra="imaging", feature="DICOM de-identification")

    from pmed.io import atomic_path, output_folder, write_table

    source, out, mapping = Path(source), Path(out), Path(mapping)
    file_out = source.is_file() and not out.is_dir() and bool(out.suffix)
    _check_paths(source, out, mapping, file_out=file_out, overwrite=overwrite)
    previous = None
    if mapping.exists():
        try:
            previous = pd.read_csv(mapping, dtype=str, keep_default_na=False)
        except Exception as e:
            raise InputError(f"cannot read the existing mapping ({type(e).__name__})", file=mapping,
                             fix="pass a new mapping path or repair the CSV") from e
        if not {"kind", "attribute", "pseudonym", "original"} <= set(previous.columns):
            raise InputError("the existing mapping lacks columns kind, attribute, pseudonym, original",
                             file=mapping, fix="pass a mapping written by pmed imaging deidentify")
    mapper = _Mapper(previous)
    # sorted as plain strings, the order `LC_ALL=C sort` gives (messages name a file by its position)
    files = sorted((p for p in source.rglob("*") if p.is_file()), key=str) if source.is_dir() else [source]

    def run(work: Path) -> tuple[list, list, list]:
        rows, skipped, warnings = [], [], []
        pending = None
        for f in files:
            ds = _read(f, source, files)
            if ds is None:
                skipped.append(str(f))
                continue
            burned = str(ds.get("BurnedInAnnotation", "")).upper()
            ds, pseudonym = deidentify_dataset(ds, mapper)
            # header values name the files: made safe so that a crafted UID cannot leave ``out``
            if file_out:
                rel = None
            elif source.is_dir():
                rel = (Path(safe_filename(str(pseudonym))) / safe_filename(str(ds.get("SeriesInstanceUID", "series")))
                       / f"{safe_filename(str(ds.get('SOPInstanceUID', 'image')))}.dcm")
            else:
                rel = Path(f"{safe_filename(str(ds.get('SOPInstanceUID', 'image')))}.dcm")
            if rel is None:
                dest, pending = out, ds  # saved below, once the mapping is
            else:
                dest = out / rel
                staged = check_inside(work / rel, work)
                if staged.exists():
                    raise InputError("two input files give the same de-identified instance UID", file=source,
                                     fix="the folder holds the same instance twice; remove the copy")
                staged.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(staged, enforce_file_format=False)
            if burned != "NO":
                warnings.append(f"{dest.name}: BurnedInAnnotation is {burned or 'absent'}; text in the pixels "
                                "(if any) is not removed — review the image")
            rel_src = str(f.relative_to(source)) if source.is_dir() else f.name
            mapper.rows.append({"kind": "file", "attribute": "path", "pseudonym": str(dest), "original": rel_src})
            rows.append({"source": rel_src, "output": str(dest), "pseudonym": pseudonym,
                         "burned_in_annotation": burned or ""})
        if not rows:
            raise InputError("no DICOM file found", file=source, fix="point at a DICOM file or a folder holding some")
        # the key is saved before the images are moved in: never de-identified images without it
        table = pd.DataFrame(mapper.rows, columns=["kind", "attribute", "pseudonym", "original"])
        if pending is None:
            write_table(table, mapping, index=False)
        else:
            with atomic_path(out) as tmp:
                pending.save_as(tmp, enforce_file_format=False)
                write_table(table, mapping, index=False)
        return rows, skipped, warnings

    if file_out:
        rows, skipped, warnings = run(out.parent)
    else:
        # earlier output and overwrite were checked above; `owned` only has to let it be replaced
        with output_folder(out, owned=is_deid_output, inputs=[source], what="de-identified output") as work:
            rows, skipped, warnings = run(work)
    if skipped:
        import warnings as _warnings

        from pmed.errors import PmedWarning

        _warnings.warn(f"{source}: skipped {len(skipped)} file(s) that do not parse as DICOM", PmedWarning,
                       stacklevel=2)
    table = pd.DataFrame(mapper.rows, columns=["kind", "attribute", "pseudonym", "original"])
    return DeidResult(files=pd.DataFrame(rows), mapping=table, skipped=skipped, warnings=warnings)
