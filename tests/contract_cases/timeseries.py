"""Contract case for EHR time series: six PhysioNet 2012 stays in a small ``set-a.tar.gz``.

The stays are the first six of the real set A when ../shared/data has it (with their lines of
``Outcomes-a.txt``), else six made here in the same ``Time,Parameter,Value`` format.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

ENTRY = "pmed.timeseries.run_timeseries"
INPUT_ROLES = ("source",)

N_STAYS = 6
OUTCOMES_HEADER = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"


def _made_stays() -> tuple[dict[str, str], list[str]]:
    stays, outcomes = {}, []
    for i in range(N_STAYS):
        rid = str(140000 + i)
        hr = 70 + 9 * i
        stays[rid] = (f"Time,Parameter,Value\n00:00,RecordID,{rid}\n00:00,Age,{50 + 4 * i}\n00:00,Gender,{i % 2}\n"
                      f"00:00,Height,-1\n00:00,ICUType,{1 + i % 4}\n00:00,Weight,{70 + i}\n"
                      f"00:10,HR,{hr}\n00:10,NISysABP,{120 - 3 * i}\n01:30,Temp,{36.5 + 0.2 * i}\n"
                      f"02:00,HR,{hr + 5}\n05:00,Urine,{80 + 10 * i}\n12:45,HR,{hr - 2}\n"
                      f"13:00,Urine,{60 + 5 * i}\n30:00,Temp,{98.6 if i == 0 else 37.0}\n")
        outcomes.append(f"{rid},{10 + i},{i},{5 + i},-1,{i % 2}")
    return stays, outcomes


def _real_stays() -> tuple[dict[str, str], list[str]] | None:
    from pmed.datasets._paths import shared_data_dir

    root = shared_data_dir() / "data" / "ehr" / "physionet2012"
    if not ((root / "set-a.tar.gz").is_file() and (root / "Outcomes-a.txt").is_file()):
        return None
    stays = {}
    with tarfile.open(root / "set-a.tar.gz") as tar:
        for m in tar:
            if m.isfile() and m.name.endswith(".txt"):
                stays[Path(m.name).stem] = tar.extractfile(m).read().decode("utf-8")
                if len(stays) == N_STAYS:
                    break
    lines = (root / "Outcomes-a.txt").read_text().splitlines()
    return stays, [x for x in lines[1:] if x.split(",")[0] in stays]


def run(tmp_path: Path):
    from pmed.timeseries import run_timeseries

    stays, outcomes = _real_stays() or _made_stays()
    folder = tmp_path / "stays"
    folder.mkdir()
    for rid, text in stays.items():
        (folder / f"{rid}.txt").write_text(text)
    archive = tmp_path / "set-a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(folder.iterdir()):
            tar.add(f, arcname=f"set-a/{f.name}")
    (tmp_path / "Outcomes-a.txt").write_text("\n".join([OUTCOMES_HEADER, *outcomes]) + "\n")
    return run_timeseries(archive, start=0.0, end=48.0)
