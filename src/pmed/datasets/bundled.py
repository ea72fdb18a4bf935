"""Real clinical data sets that ship inside installed PyPI packages, as :class:`~pmed.Cohort`.

Nothing is downloaded: each loader reads the copy bundled with scikit-learn, scikit-survival or
lifelines. Every cohort has string patient IDs, a :class:`~pmed.schema.TableSchema` (types,
units where known, categories; outcome columns declared but not required, so the schema also
accepts new patients at prediction time), outcomes split off, and ``cohort.sources`` recording
the package, the data set and what to cite.

Survival outcomes are always two columns: ``event`` (1 = the event happened, 0 = censored) and
``time`` (follow-up, unit in the schema).

scikit-survival and lifelines are optional (``pip install 'pmed[survival]'``); they are imported
only inside the loaders that need them.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from pmed.cohort import Cohort
from pmed.errors import DataNotFoundError, InputError, PmedError
from pmed.errors import MissingDependencyError as _MissingDependency
from pmed.schema import ColumnSpec, TableSchema

__all__ = [
    "MissingDependencyError",
    "LIFELINES_DATASETS",
    "load_breast_cancer",
    "load_diabetes",
    "load_gbsg2",
    "load_sksurv_breast_cancer",
    "load_lifelines",
]

_ID = "patient_id"


class MissingDependencyError(_MissingDependency, DataNotFoundError):
    """An optional package that holds a data set is not installed.

    pmed's one :class:`~pmed.errors.MissingDependencyError` (an :class:`ImportError` too), and a
    :class:`~pmed.errors.DataNotFoundError` as before.
    """

    exit_code = _MissingDependency.exit_code

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        PmedError.__init__(self, message, fix=fix)


def _require(module: str, *, dist: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{what} is bundled with {dist}, which is not installed ({e})",
            fix="pip install 'pmed[survival]'",
        ) from None


def _pkg(dist: str) -> str:
    try:
        return f"{dist} {version(dist)}"
    except PackageNotFoundError:  # imported from a source tree
        return dist


def _cohort(
    raw: pd.DataFrame,
    columns: dict[str, ColumnSpec],
    outcomes: list[str],
    sources: dict[str, str],
    *,
    id: str = _ID,
) -> Cohort:
    """Type ``raw`` (indexed by ID) as ``columns`` declare and split off ``outcomes``.

    The dtypes are those :meth:`TableSchema.validate` gives the same data read from a file:
    ``Int64`` for int, ``boolean`` for bool, ``float64``, and categoricals with the declared
    categories (values outside them, such as a data set's "unknown" code, become missing).
    """
    missing = [c for c in columns if c not in raw.columns]
    if missing:  # the package changed its data set under us
        raise InputError(
            f"bundled data set lacks expected columns {', '.join(missing)}",
            fix=f"report this with the installed package versions ({sources.get('package')})",
        )
    raw = raw.set_axis(pd.Index(raw.index.astype(str), name=id), axis=0)
    typed: dict[str, pd.Series] = {}
    for name, spec in columns.items():
        s = raw[name]
        if spec.type == "category":
            cats = list(spec.categories or ())
            typed[name] = pd.Series(
                pd.Categorical(s.astype(object).where(s.notna(), None), categories=cats),
                index=raw.index,
            )
        elif spec.type == "int":
            typed[name] = pd.to_numeric(s).astype("Int64")
        elif spec.type == "bool":
            typed[name] = s.astype("boolean")
        elif spec.type == "float":
            typed[name] = pd.to_numeric(s).astype("float64")
        else:
            typed[name] = s.astype("string")
    df = pd.DataFrame(typed, index=raw.index)
    # outcomes are declared for documentation and file validation, but never required: the
    # schema is also what new patients are checked against at prediction time
    declared = {n: replace(c, required=False) if n in outcomes else c for n, c in columns.items()}
    schema = TableSchema(id=id, columns=declared)
    return Cohort(df, outcomes=outcomes, schema=schema, sources=sources)


def _row_ids(n: int) -> pd.Index:
    # the files have no patient IDs: use the 0-based row so users can find the row upstream
    return pd.Index([str(i) for i in range(n)], name=_ID)


# ---------------------------------------------------------------------- scikit-learn
_WDBC_FEATURES = (
    ("radius", "mean distance from centre to points on the perimeter", "pixels"),
    ("texture", "standard deviation of grey-scale values", None),
    ("perimeter", "nucleus perimeter", "pixels"),
    ("area", "nucleus area", "pixels²"),
    ("smoothness", "local variation in radius lengths", None),
    ("compactness", "perimeter² / area − 1.0", None),
    ("concavity", "severity of concave portions of the contour", None),
    ("concave points", "number of concave portions of the contour", None),
    ("symmetry", "nucleus symmetry", None),
    ("fractal dimension", "'coastline approximation' − 1", None),
)


def load_breast_cancer() -> Cohort:
    """Breast Cancer Wisconsin (Diagnostic): fine-needle aspirates, benign vs malignant.

    Read from the copy bundled with scikit-learn (always installed with pmed).

    Returns
    -------
    Cohort
        569 patients (IDs ``"0"``–``"568"``, the row in scikit-learn's copy) × 30 float
        features named as in scikit-learn (``"mean radius"``, ``"radius error"``,
        ``"worst radius"``…: mean, standard error and mean of the three largest values of ten
        nucleus measurements from a digitised image). Outcome ``malignant`` (``Int64``):
        1 = malignant (212), 0 = benign (357). Note that scikit-learn's own target is the
        reverse (0 = malignant).

    References
    ----------
    Street W.N., Wolberg W.H., Mangasarian O.L. (1993) Nuclear feature extraction for breast
    tumor diagnosis. *Proc. SPIE* 1905, 861–870. UCI Machine Learning Repository, CC BY 4.0.
    """
    from sklearn import datasets

    bunch = datasets.load_breast_cancer(as_frame=True)
    X = bunch.data.copy()
    X.index = _row_ids(len(X))
    names = list(bunch.target_names)
    # sklearn encodes target 0 = "malignant"; check rather than assume, since we invert it
    if names[0] != "malignant":
        raise InputError(f"unexpected target names {names} in scikit-learn's breast cancer data",
                         fix="report this with your scikit-learn version")
    X["malignant"] = (bunch.target.to_numpy() == 0).astype(int)
    cols: dict[str, ColumnSpec] = {}
    for prefix, stat in (("mean", "mean"), ("error", "standard error"), ("worst", "worst")):
        for feat, desc, unit in _WDBC_FEATURES:
            name = f"{prefix} {feat}" if prefix != "error" else f"{feat} error"
            what = "mean of the three largest values" if stat == "worst" else stat
            cols[name] = ColumnSpec(type="float", unit=unit, min=0.0,
                                    description=f"{what} over nuclei of {feat}: {desc}")
    cols["malignant"] = ColumnSpec(type="int", min=0, max=1,
                                   description="outcome: 1 = malignant, 0 = benign")
    return _cohort(X, cols, ["malignant"], {
        "dataset": "Breast Cancer Wisconsin (Diagnostic) (WDBC)",
        "package": _pkg("scikit-learn") + " (sklearn.datasets.load_breast_cancer)",
        "citation": "Street WN, Wolberg WH, Mangasarian OL (1993) Proc SPIE 1905:861-870; "
                    "UCI Machine Learning Repository (CC BY 4.0)",
        "outcomes": "malignant: 1 = malignant, 0 = benign",
    })


_DIABETES_COLUMNS = {
    "age": ColumnSpec(type="float", unit="years", min=0, max=120, description="age at baseline"),
    "sex": ColumnSpec(type="category", categories=(1.0, 2.0), description="sex, coded 1/2 in the source"),
    "bmi": ColumnSpec(type="float", unit="kg/m2", min=10, max=80, description="body mass index"),
    "bp": ColumnSpec(type="float", unit="mmHg", min=40, max=200, description="average blood pressure"),
    "s1": ColumnSpec(type="float", unit="mg/dL", description="tc, total serum cholesterol"),
    "s2": ColumnSpec(type="float", unit="mg/dL", description="ldl, low-density lipoproteins"),
    "s3": ColumnSpec(type="float", unit="mg/dL", description="hdl, high-density lipoproteins"),
    "s4": ColumnSpec(type="float", description="tch, total cholesterol / HDL"),
    "s5": ColumnSpec(type="float", description="ltg, log of serum triglycerides"),
    "s6": ColumnSpec(type="float", unit="mg/dL", description="glu, blood sugar"),
    "progression": ColumnSpec(type="float", description="outcome: disease progression one year after baseline"),
}


def load_diabetes() -> Cohort:
    """Diabetes progression (Efron et al. 2004), from scikit-learn, in original units.

    Returns
    -------
    Cohort
        442 patients (IDs ``"0"``–``"441"``) × 10 baseline measurements (age, sex, BMI, blood
        pressure and six serum measurements ``s1``–``s6``). Continuous outcome
        ``progression``: a quantitative measure of disease progression one year later.

    References
    ----------
    Efron B., Hastie T., Johnstone I., Tibshirani R. (2004) Least angle regression.
    *Annals of Statistics* 32(2), 407–499.
    """
    from sklearn import datasets

    bunch = datasets.load_diabetes(as_frame=True, scaled=False)
    X = bunch.data.copy()
    X.index = _row_ids(len(X))
    X["progression"] = bunch.target.to_numpy()
    return _cohort(X, dict(_DIABETES_COLUMNS), ["progression"], {
        "dataset": "Diabetes (Efron et al. 2004)",
        "package": _pkg("scikit-learn") + " (sklearn.datasets.load_diabetes, scaled=False)",
        "citation": "Efron B, Hastie T, Johnstone I, Tibshirani R (2004) Ann Stat 32:407-499",
        "outcomes": "progression: disease progression one year after baseline",
    })


# ---------------------------------------------------------------------- scikit-survival
def _sksurv() -> ModuleType:
    return _require("sksurv.datasets", dist="scikit-survival", what="this data set")


def _survival_columns(X: pd.DataFrame, y: np.ndarray, event: str, time: str) -> pd.DataFrame:
    X = X.copy()
    X.index = _row_ids(len(X))
    X["event"] = np.asarray(y[event]).astype(int)
    X["time"] = np.asarray(y[time], dtype=float)
    return X


def load_gbsg2() -> Cohort:
    """German Breast Cancer Study Group 2 trial: recurrence-free survival, node-positive patients.

    Read from the copy bundled with scikit-survival (``pip install 'pmed[survival]'``).

    Returns
    -------
    Cohort
        686 patients × 8 features: ``age`` (years), ``estrec`` and ``progrec`` (oestrogen and
        progesterone receptor, fmol/mg), ``horTh`` (hormonal therapy: no/yes), ``menostat``
        (Pre/Post), ``pnodes`` (positive lymph nodes, int), ``tgrade`` (I/II/III), ``tsize``
        (tumour size, mm). Outcomes: ``event`` (1 = recurrence or death, 299 patients;
        0 = censored) and ``time`` (days).

    Raises
    ------
    MissingDependencyError
        When scikit-survival is not installed.

    References
    ----------
    Schumacher M. et al. (1994) Randomized 2 × 2 trial evaluating hormonal treatment and the
    duration of chemotherapy in node-positive breast cancer patients. *J. Clin. Oncol.* 12,
    2086–2093.
    """
    ds = _sksurv()
    X, y = ds.load_gbsg2()
    X = _survival_columns(X, y, "cens", "time")
    cols = {
        "age": ColumnSpec(type="float", unit="years", min=0, max=120, description="age"),
        "estrec": ColumnSpec(type="float", unit="fmol/mg", min=0,
                             description="oestrogen receptor"),
        "horTh": ColumnSpec(type="category", categories=("no", "yes"),
                            description="hormonal therapy (tamoxifen)"),
        "menostat": ColumnSpec(type="category", categories=("Pre", "Post"),
                               description="menopausal status"),
        "pnodes": ColumnSpec(type="int", min=0, description="number of positive lymph nodes"),
        "progrec": ColumnSpec(type="float", unit="fmol/mg", min=0,
                              description="progesterone receptor"),
        "tgrade": ColumnSpec(type="category", categories=("I", "II", "III"),
                             description="tumour grade"),
        "tsize": ColumnSpec(type="float", unit="mm", min=0, description="tumour size"),
        "event": ColumnSpec(type="int", min=0, max=1,
                            description="outcome: 1 = recurrence or death, 0 = censored"),
        "time": ColumnSpec(type="float", unit="days", min=0,
                           description="outcome: recurrence-free survival time"),
    }
    return _cohort(X, cols, ["event", "time"], {
        "dataset": "GBSG2 (German Breast Cancer Study Group 2)",
        "package": _pkg("scikit-survival") + " (sksurv.datasets.load_gbsg2)",
        "citation": "Schumacher M et al. (1994) J Clin Oncol 12:2086-2093",
        "outcomes": "event: 1 = recurrence or death, 0 = censored; time: days",
    })


def load_sksurv_breast_cancer() -> Cohort:
    """TRANSBIG node-negative breast cancer (GSE7390): 76-gene signature and time to metastasis.

    Read from the copy bundled with scikit-survival (``pip install 'pmed[survival]'``).

    Returns
    -------
    Cohort
        198 patients × 80 features: 76 Affymetrix HG-U133A probe sets of the 76-gene signature
        (float, named as in scikit-survival, e.g. ``X200726_at``), ``age`` (years), ``er``
        (oestrogen receptor: negative/positive), ``grade`` (well differentiated/intermediate/
        poorly differentiated; the source's "unkown" code, 2 patients, is missing) and
        ``size`` (tumour size, cm). Outcomes: ``event`` (1 = distant metastasis, 51 patients;
        0 = censored) and ``time`` (days).

    Raises
    ------
    MissingDependencyError
        When scikit-survival is not installed.

    References
    ----------
    Desmedt C. et al. (2007) Strong time dependence of the 76-gene prognostic signature for
    node-negative breast cancer patients in the TRANSBIG multicenter independent validation
    series. *Clin. Cancer Res.* 13, 3207–3214. GEO GSE7390.
    """
    ds = _sksurv()
    X, y = ds.load_breast_cancer()
    X = _survival_columns(X, y, "e.tdm", "t.tdm")
    cols: dict[str, ColumnSpec] = {}
    for c in X.columns:
        if c.startswith("X") and c.endswith("_at"):
            cols[c] = ColumnSpec(type="float", unit="log2 intensity",
                                 description=f"expression of probe set {c[1:]} (HG-U133A)")
    cols.update({
        "age": ColumnSpec(type="float", unit="years", min=0, max=120, description="age"),
        "er": ColumnSpec(type="category", categories=("negative", "positive"),
                         description="oestrogen receptor status"),
        # "unkown" (sic) in the source is not a grade: it becomes missing
        "grade": ColumnSpec(type="category",
                            categories=("well differentiated", "intermediate",
                                        "poorly differentiated"),
                            description="histological grade"),
        "size": ColumnSpec(type="float", unit="cm", min=0, description="tumour size"),
        "event": ColumnSpec(type="int", min=0, max=1,
                            description="outcome: 1 = distant metastasis, 0 = censored"),
        "time": ColumnSpec(type="float", unit="days", min=0,
                           description="outcome: time to distant metastasis"),
    })
    return _cohort(X, cols, ["event", "time"], {
        "dataset": "TRANSBIG breast cancer, 76-gene signature (GEO GSE7390)",
        "package": _pkg("scikit-survival") + " (sksurv.datasets.load_breast_cancer)",
        "citation": "Desmedt C et al. (2007) Clin Cancer Res 13:3207-3214",
        "outcomes": "event: 1 = distant metastasis, 0 = censored; time: days",
    })


# ---------------------------------------------------------------------- lifelines
def _lifelines_rossi(ds: ModuleType) -> Cohort:
    df = ds.load_rossi()
    df.index = _row_ids(len(df))
    df = df.rename(columns={"arrest": "event", "week": "time"})
    yes_no = {"fin": "received financial aid after release",
              "wexp": "full-time work experience before incarceration",
              "mar": "married at the time of release",
              "paro": "released on parole"}
    cols = {
        "fin": ColumnSpec(type="int", min=0, max=1, description="1 = " + yes_no["fin"]),
        "age": ColumnSpec(type="int", unit="years", min=0, max=120,
                          description="age at release"),
        "race": ColumnSpec(type="int", min=0, max=1, description="1 = black, 0 = other"),
        "wexp": ColumnSpec(type="int", min=0, max=1, description="1 = " + yes_no["wexp"]),
        "mar": ColumnSpec(type="int", min=0, max=1, description="1 = " + yes_no["mar"]),
        "paro": ColumnSpec(type="int", min=0, max=1, description="1 = " + yes_no["paro"]),
        "prio": ColumnSpec(type="int", min=0, description="number of prior convictions"),
        "event": ColumnSpec(type="int", min=0, max=1,
                            description="outcome: 1 = re-arrested within the year, 0 = censored"),
        "time": ColumnSpec(type="int", unit="weeks", min=0, max=52,
                           description="outcome: week of first arrest after release (52 if none)"),
    }
    return _cohort(df, cols, ["event", "time"], {
        "dataset": "Rossi recidivism (432 prisoners released in Maryland, 1970s)",
        "package": _pkg("lifelines") + " (lifelines.datasets.load_rossi)",
        "citation": "Rossi PH, Berk RA, Lenihan KJ (1980) Money, Work, and Crime. Academic "
                    "Press; Allison PD (1995) Survival Analysis Using SAS",
        "outcomes": "event: 1 = re-arrest (column 'arrest'); time: weeks (column 'week')",
    })


def _lifelines_lung(ds: ModuleType) -> Cohort:
    df = ds.load_lung()
    df.index = _row_ids(len(df))
    df = df.rename(columns={"status": "event"})
    # institution is a code, not a quantity; sex is coded 1/2 in the source
    df["inst"] = df["inst"].map(lambda v: str(int(v)) if pd.notna(v) else None)
    df["sex"] = df["sex"].map({1: "male", 2: "female"})
    insts = tuple(sorted(df["inst"].dropna().unique(), key=int))
    cols = {
        "inst": ColumnSpec(type="category", categories=insts, description="institution code"),
        "age": ColumnSpec(type="int", unit="years", min=0, max=120, description="age"),
        "sex": ColumnSpec(type="category", categories=("male", "female"), description="sex"),
        "ph.ecog": ColumnSpec(type="int", min=0, max=5,
                              description="ECOG performance score rated by the physician "
                                          "(0 = good … 5 = dead)"),
        "ph.karno": ColumnSpec(type="float", min=0, max=100,
                               description="Karnofsky performance score rated by the physician"),
        "pat.karno": ColumnSpec(type="float", min=0, max=100,
                                description="Karnofsky performance score rated by the patient"),
        "meal.cal": ColumnSpec(type="float", unit="kcal", min=0,
                               description="calories consumed at meals"),
        "wt.loss": ColumnSpec(type="float", unit="lb",
                              description="weight loss in the last six months"),
        "event": ColumnSpec(type="int", min=0, max=1,
                            description="outcome: 1 = died, 0 = censored"),
        "time": ColumnSpec(type="int", unit="days", min=0, description="outcome: survival time"),
    }
    return _cohort(df, cols, ["event", "time"], {
        "dataset": "NCCTG advanced lung cancer (North Central Cancer Treatment Group)",
        "package": _pkg("lifelines") + " (lifelines.datasets.load_lung)",
        "citation": "Loprinzi CL et al. (1994) J Clin Oncol 12:601-607",
        "outcomes": "event: 1 = died (column 'status'); time: days",
    })


_ACTG_ARMS = ("ZDV", "ZDV+ddI", "ZDV+ddC", "ddI")


def _lifelines_actg175(ds: ModuleType) -> Cohort:
    path = Path(ds.__file__).parent / "ACTG175.csv"
    if not path.exists():
        raise DataNotFoundError(
            "ACTG175.csv is not in this lifelines installation", file=path,
            fix="pip install --upgrade lifelines (or pmed[survival])",
        )
    df = pd.read_csv(path, index_col=0)
    df = df.set_index("pidnum")
    df.index = df.index.astype(str)
    df = df.rename(columns={"cens": "event", "days": "time"})
    df["arms"] = df["arms"].map(dict(enumerate(_ACTG_ARMS)))

    def flag(desc: str) -> ColumnSpec:
        return ColumnSpec(type="int", min=0, max=1, description=desc)

    cols = {
        "age": ColumnSpec(type="int", unit="years", min=0, max=120, description="age at baseline"),
        "wtkg": ColumnSpec(type="float", unit="kg", min=0, description="weight at baseline"),
        "hemo": flag("1 = haemophilia"),
        "homo": flag("1 = homosexual activity"),
        "drugs": flag("1 = history of intravenous drug use"),
        "karnof": ColumnSpec(type="int", min=0, max=100, description="Karnofsky score"),
        "oprior": flag("1 = non-zidovudine antiretroviral therapy before the trial"),
        "z30": flag("1 = zidovudine in the 30 days before the trial"),
        "zprior": flag("1 = zidovudine before the trial (1 for everyone in this file)"),
        "preanti": ColumnSpec(type="int", unit="days", min=0,
                              description="days of antiretroviral therapy before the trial"),
        "race": flag("1 = non-white, 0 = white"),
        "gender": flag("1 = male, 0 = female"),
        "str2": flag("antiretroviral history: 1 = experienced, 0 = naive"),
        "strat": ColumnSpec(type="int", min=1, max=3,
                            description="antiretroviral history stratum: 1 = naive, "
                                        "2 = > 1 and ≤ 52 weeks, 3 = > 52 weeks"),
        "symptom": flag("1 = symptomatic, 0 = asymptomatic"),
        "treat": flag("1 = any arm other than zidovudine alone"),
        "arms": ColumnSpec(type="category", categories=_ACTG_ARMS, description="treatment arm"),
        "cd40": ColumnSpec(type="int", unit="cells/mm3", min=0, description="CD4 at baseline"),
        "cd80": ColumnSpec(type="int", unit="cells/mm3", min=0, description="CD8 at baseline"),
        "event": flag("outcome: 1 = ≥ 50 % CD4 decline, AIDS or death, 0 = censored"),
        "time": ColumnSpec(type="int", unit="days", min=0,
                           description="outcome: days to the event or censoring"),
        # measured after randomisation: outcomes, never features (they would leak)
        "cd420": ColumnSpec(type="int", unit="cells/mm3", min=0,
                            description="outcome: CD4 at 20 ± 5 weeks"),
        "cd496": ColumnSpec(type="int", unit="cells/mm3", min=0,
                            description="outcome: CD4 at 96 ± 5 weeks (missing when r = 0)"),
        "r": flag("outcome: 1 = CD4 at 96 weeks observed"),
        "cd820": ColumnSpec(type="int", unit="cells/mm3", min=0,
                            description="outcome: CD8 at 20 ± 5 weeks"),
        "offtrt": flag("outcome: 1 = off treatment before 96 ± 5 weeks"),
    }
    outcomes = ["event", "time", "cd420", "cd496", "r", "cd820", "offtrt"]
    return _cohort(df, cols, outcomes, {
        "dataset": "ACTG 175: HIV-1 trial of zidovudine, didanosine and zalcitabine (4 arms)",
        "package": _pkg("lifelines") + " (lifelines/datasets/ACTG175.csv)",
        "file": str(path),
        "citation": "Hammer SM et al. (1996) N Engl J Med 335:1081-1090",
        "outcomes": "event/time: ≥50% CD4 decline, AIDS or death (days); cd420, cd496, r, "
                    "cd820, offtrt: post-randomisation measurements",
    }, id="pidnum")


#: Names accepted by :func:`load_lifelines` and what each returns.
LIFELINES_DATASETS = {
    "rossi": "Rossi recidivism: 432 × 7; outcomes event (arrest), time (weeks)",
    "lung": "NCCTG lung cancer: 228 × 8; outcomes event (death), time (days)",
    "actg175": "ACTG 175 HIV trial: 2139 × 19; outcomes event, time (days) and 5 "
               "post-randomisation measurements",
}

_LIFELINES_LOADERS = {"rossi": _lifelines_rossi, "lung": _lifelines_lung,
                      "actg175": _lifelines_actg175}


def load_lifelines(name: str) -> Cohort:
    """A data set bundled with lifelines, as a cohort with ``event``/``time`` outcomes.

    Parameters
    ----------
    name
        Case-insensitive, one of:

        ``"rossi"``
            432 prisoners released in Maryland; features ``fin`` (financial aid), ``age``,
            ``race``, ``wexp``, ``mar``, ``paro``, ``prio``. Outcomes ``event`` (1 = re-arrest
            within a year; 114) and ``time`` (weeks). IDs are row numbers.
        ``"lung"``
            228 NCCTG advanced lung cancer patients; features ``inst`` (category), ``age``,
            ``sex`` (male/female), ``ph.ecog``, ``ph.karno``, ``pat.karno``, ``meal.cal``,
            ``wt.loss``. Outcomes ``event`` (1 = died; 165) and ``time`` (days). IDs are row
            numbers.
        ``"actg175"``
            2,139 HIV-1 patients of the ACTG 175 trial (ID ``pidnum``), 19 baseline features
            including ``arms`` (ZDV, ZDV+ddI, ZDV+ddC, ddI), ``cd40``, ``cd80``. Outcomes
            ``event`` (≥ 50 % CD4 decline, AIDS or death; 521), ``time`` (days), and the
            post-randomisation measurements ``cd420``, ``cd496``, ``r``, ``cd820``, ``offtrt``
            (kept out of the features because they would leak).

    Returns
    -------
    Cohort

    Raises
    ------
    MissingDependencyError
        When lifelines is not installed.
    InputError
        For an unknown name.
    """
    key = str(name).strip().lower().replace("_", "").replace("-", "")
    if key not in _LIFELINES_LOADERS:
        raise InputError(
            f"unknown lifelines data set {name!r}",
            fix=f"use one of {', '.join(LIFELINES_DATASETS)}",
        )
    ds = _require("lifelines.datasets", dist="lifelines", what=f"the {key} data set")
    return _LIFELINES_LOADERS[key](ds)
