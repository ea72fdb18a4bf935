"""Bad inputs (issue #16) for ``pmed evaluate --task survival`` (issue #17, evaluation part).

Every case writes a small predictions file in ``tmp_path`` (times 10 … 200, events and
censorings, a risk score and ``surv_<t>`` columns) and changes one thing.
"""

import numpy as np
import pandas as pd
from badinput import bad_input, refused

N = 40


def _predictions(tmp_path, **change):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "pid": [f"MRN{100000 + i}" for i in range(N)],
        "time": np.linspace(10, 200, N).round(1),
        "status": (rng.random(N) < 0.6).astype(int),
        "risk": rng.normal(size=N).round(4),
    })
    df.loc[0, "status"] = 1
    df["surv_50"] = np.clip(1 - 0.2 * (1 + np.tanh(df["risk"])), 0.01, 0.99).round(4)
    for col, (row, value) in change.items():
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
    path = tmp_path / "pred.csv"
    df.to_csv(path, index=False)
    return path


def _argv(path, out, *extra):
    return ["evaluate", "--task", "survival", "--predictions", path, "--time", "time", "--event", "status",
            "--score", "risk", "--bootstrap", "0", "--out", out, *extra]


@bad_input("silent")
def test_negative_time_refused(tmp_path, capsys):
    p = _predictions(tmp_path, time=(5, -3))
    msg = refused(capsys, tmp_path, _argv(p, tmp_path / "o"), code=4,
                  says=r"column 'time': negative time -3.* at lines 7", secrets=["MRN100005"])
    assert "swapped dates" in msg


@bad_input("silent")
def test_zero_time_refused(tmp_path, capsys):
    p = _predictions(tmp_path, time=(2, 0))
    refused(capsys, tmp_path, _argv(p, tmp_path / "o"), code=4, says=r"column 'time': time 0 at lines 4")


@bad_input("diagnosis")
def test_event_coded_1_2_refused_with_r_hint(tmp_path, capsys):
    p = _predictions(tmp_path)
    df = pd.read_csv(p)
    df["status"] = df["status"] + 1  # R's Surv coding 1 = censored, 2 = dead
    df.to_csv(p, index=False)
    msg = refused(capsys, tmp_path, _argv(p, tmp_path / "o"), code=4,
                  says=r"column 'status': event must be 0 \(censored\) or 1 \(event\), found 2")
    assert "subtract 1" in msg


@bad_input("silent")
def test_event_text_refused(tmp_path, capsys):
    p = _predictions(tmp_path, status=(3, "dead"))
    refused(capsys, tmp_path, _argv(p, tmp_path / "o"), code=4,
            says=r"column 'status': event must be 0 .* found 'dead' at lines 5")


@bad_input("silent")
def test_no_events_refused(tmp_path, capsys):
    p = _predictions(tmp_path)
    df = pd.read_csv(p)
    df["status"] = 0
    df.to_csv(p, index=False)
    refused(capsys, tmp_path, _argv(p, tmp_path / "o"), code=4,
            says=r"column 'status': no events \(all 40 subjects censored\)")


@bad_input("diagnosis")
def test_horizon_beyond_follow_up_refused(tmp_path, capsys):
    p = _predictions(tmp_path)
    refused(capsys, tmp_path, _argv(p, tmp_path / "o", "--horizon", "250"), code=2,
            says=r"horizon 250 is beyond the follow-up: the last follow-up time in column 'time' is 200")


@bad_input("options")
def test_horizon_not_positive_refused(tmp_path, capsys):
    p = _predictions(tmp_path)
    refused(capsys, tmp_path, _argv(p, tmp_path / "o", "--horizon", "0"), code=2,
            says=r"--horizon.*must be > 0")


@bad_input("options")
def test_tau_not_positive_refused(tmp_path, capsys):
    p = _predictions(tmp_path)
    refused(capsys, tmp_path, _argv(p, tmp_path / "o", "--tau", "-5"), code=2, says=r"--tau.*must be > 0")


@bad_input("options")
def test_survival_without_time_column_refused(tmp_path, capsys):
    p = _predictions(tmp_path)
    argv = [a for a in _argv(p, tmp_path / "o") if a not in ("--time", "time")]
    refused(capsys, tmp_path, argv, code=2, says=r"--time is required for --task survival")


@bad_input("options")
def test_binary_without_outcome_refused(tmp_path, capsys):
    p = _predictions(tmp_path)
    refused(capsys, tmp_path, ["evaluate", "--predictions", p, "--score", "risk", "--out", tmp_path / "o"],
            code=2, says=r"--outcome is required for --task binary")
