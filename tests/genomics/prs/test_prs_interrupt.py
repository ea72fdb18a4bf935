"""Ctrl-C during a long `pmed prs score`: exit 130, one line, no half-written outputs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pgenlib = pytest.importorskip("pgenlib")


def _cohort(folder: Path, n: int = 3_000, m: int = 40_000) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    pos = 1000 + 11 * np.arange(m)
    pd.DataFrame({"#CHROM": 1, "POS": pos, "ID": [f"v{i}" for i in range(m)], "REF": "A",
                  "ALT": "G"}).to_csv(folder / "c.pvar", sep="\t", index=False)
    pd.DataFrame({"#IID": [f"s{i}" for i in range(n)]}).to_csv(folder / "c.psam", sep="\t", index=False)
    w = pgenlib.PgenWriter(str(folder / "c.pgen").encode(), n, m, False)
    for s in range(0, m, 2_000):
        g = rng.integers(0, 3, (min(2_000, m - s), n)).astype(np.int8)
        g[rng.random(g.shape) < 0.02] = -9
        w.append_biallelic_batch(g)
    w.close()
    rows = pd.DataFrame({"chr_name": 1, "chr_position": pos, "effect_allele": "G", "other_allele": "A",
                         "effect_weight": np.round(rng.normal(0, 0.01, m), 4)})
    sf = folder / "s.txt"
    sf.write_text("#format_version=2.0\n#pgs_id=PGS_INT\n#genome_build=GRCh38\n"
                  + rows.to_csv(sep="\t", index=False))
    return folder / "c.pgen", sf


def test_ctrl_c_while_scoring_leaves_nothing_half_written(tmp_path):
    target, sf = _cohort(tmp_path)
    out = tmp_path / "out"
    # a log, not a terminal: progress comes as lines (every step here), one tells that scoring began
    cmd = [sys.executable, "-m", "pmed", "prs", "score", "-t", str(target), "-s", str(sf),
           "--out", str(out), "--block-size", "64", "--threads", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PMED_PROGRESS_INTERVAL": "0"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("scoring variants: started") or time.monotonic() > deadline:
            break
    assert any(line.startswith("scoring variants: started") for line in lines), lines
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "Traceback" not in rest
    assert "interrupted" in rest
    # nothing written, or only whole files: no temporary leftovers, no scores file cut short
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not [p for p in written if p.name.startswith(".") or ".tmp" in p.name], written
    assert not (out / "scores.tsv").exists()
