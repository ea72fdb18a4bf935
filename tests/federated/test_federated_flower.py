"""Federated training between real Flower processes (SuperLink + one SuperNode per site) on localhost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

from conftest import make_clinical  # noqa: E402
from pmed.federated import learners as L  # noqa: E402
from pmed.federated.launcher import FederatedError  # noqa: E402
from pmed.federated.run import OUTCOME, run_federated, split_sites  # noqa: E402

ROUNDS = 2  # every round of secure aggregation is four message exchanges (~25 s here)


def _live_flower_pids() -> set[int]:
    """Live (not zombie) Flower processes on this machine."""
    pids = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(ln for ln in (d / "status").read_text().splitlines() if ln.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if ("flower-super" in cmd or "flwr-" in cmd or "flwr run" in cmd) and "Z" not in state.split()[1]:
            pids.add(int(d.name))
    return pids


def _study(folder: Path, sizes: dict[str, int], seed: int = 1) -> Path:
    n = sum(sizes.values())
    df = make_clinical(n, seed=seed)
    df["site"] = np.repeat(list(sizes), list(sizes.values()))
    df.to_csv(folder / "patients.csv", index=False)
    path = folder / "study.yaml"
    path.write_text("name: federated\ndata: {patients: patients.csv}\n"
                    "target: {column: event, task: binary}\nfeatures: {exclude: [sbp]}\nseed: 3\n")
    return path


@pytest.fixture(scope="module")
def federated_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fed")
    study = _study(folder, {"A": 450, "B": 280, "C": 170})
    before = _live_flower_pids()
    res = run_federated(study, site_column="site", rounds=ROUNDS, strategy="fedavg", out=folder / "out",
                        timeout=300, secure_aggregation=True, record_rounds=True)
    return study, res, before, folder


def test_federated_logistic_close_to_pooled_fit(federated_run):
    from sklearn.linear_model import LogisticRegression

    from pmed.evaluate.metrics import auroc

    study, res, _, _ = federated_run
    m = res.metrics
    assert m["rounds"] == ROUNDS and len(m["history"]) == ROUNDS
    assert set(m["per_site"]) == {"A", "B", "C"} and m["sites_finished"] == ["A", "B", "C"]
    for site in m["per_site"].values():
        assert 0.5 < site["auroc"] < 1 and site["ci_low"] < site["auroc"] < site["ci_high"]
    # training loss falls round by round
    losses = [h["train_loss"] for h in m["history"]]
    assert losses == sorted(losses, reverse=True)
    # bytes: every round sends the model down and gets one back from each site
    n_par = m["communication"]["parameters_per_model"]
    assert m["communication"]["bytes_total"] > 2 * 3 * ROUNDS * n_par * 8

    # a pooled scikit-learn fit on the same training rows, scored on the same held-out rows
    _, tables = split_sites(study, "site")
    tr_X, tr_y, te_X, te_y = [], [], [], []
    for t in tables.values():
        y = t[OUTCOME].to_numpy()
        test = L.split_rows(y, 0.3, 3)
        X = t.drop(columns=[OUTCOME])
        tr_X.append(X[~test]), tr_y.append(y[~test]), te_X.append(X[test]), te_y.append(y[test])
    import pandas as pd

    Xtr, Xte = pd.concat(tr_X), pd.concat(te_X)
    summary = L.site_summary(Xtr, np.concatenate(tr_y))
    layout = L.build_layout([summary])
    lr = LogisticRegression(max_iter=2000).fit(L.encode(Xtr, layout), np.concatenate(tr_y))
    pooled = auroc(np.concatenate(te_y), lr.predict_proba(L.encode(Xte, layout))[:, 1])
    fed = m["pooled"]["auroc"]
    assert m["pooled"]["n_test"] == len(Xte)
    assert abs(fed - pooled) < 0.03, (fed, pooled)


def test_outputs_and_no_patient_values_in_logs(federated_run):
    study, res, _, folder = federated_run
    out = folder / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    model = json.loads((out / "model.json").read_text())
    assert metrics["per_site"] == res.metrics["per_site"]
    assert model["layout"]["n_features"] == len(np.asarray(model["params"][0]))
    logs = list((out / "flower_logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"superlink", "supernode-A", "supernode-B", "supernode-C", "flwr_run"}
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert f"round {ROUNDS}/{ROUNDS}" in text and "Secure aggregation completed" in text
    ids = make_clinical(900, seed=1)["patient_id"]
    assert not any(i in text for i in ids)
    # the per-site files (patient rows) do not outlive the run
    assert not [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("pmed-federated-*")
                if (p / "site_0").exists()]


def test_secure_aggregation_equals_fedavg_replayed_here(federated_run):
    """SecAgg+ between the processes gives FedAvg's weighted average, up to its quantization."""
    study, res, _, _ = federated_run
    assert res.metrics["secure_aggregation"]["rounds"] == ROUNDS
    _, tables = split_sites(study, "site")
    sites = []
    for t in tables.values():
        y = t[OUTCOME].to_numpy().astype(int)
        test = L.split_rows(y, 0.3, 3)
        sites.append((t.drop(columns=[OUTCOME])[~test], y[~test]))
    layout = L.build_layout([L.site_summary(X, y) for X, y in sites])
    assert layout == res.model["layout"]
    params = L.init_params("logistic", layout["n_features"], seed=3)
    for rnd in range(ROUNDS):
        updates = [L.local_train(params, L.encode(X, layout), y, steps=10, lr=0.5, l2=1e-3) for X, y in sites]
        n = np.array([len(y) for _, y in sites], dtype=float)
        params = [sum(w * u[k] for w, u in zip(n / n.sum(), updates, strict=True)) for k in range(len(params))]
        got = L.params_from_json(res.round_params[rnd])
        # 2^22 quantization levels over +/-16, and the weights quantized as well
        for a, b in zip(params, got, strict=True):
            np.testing.assert_allclose(b, a, atol=1e-4)
        assert max(float(np.max(np.abs(a))) for a in params) > 0.01  # the model moved


def test_secure_aggregation_refusals(tmp_path):
    from pmed.errors import OptionError

    study = _study(tmp_path, {"A": 100, "B": 100, "C": 100})
    with pytest.raises(OptionError, match="cannot be combined"):
        run_federated(study, site_column="site", rounds=2, secure_aggregation=True, dp_epsilon=1.0)
    two = _study(tmp_path, {"A": 150, "B": 150})
    with pytest.raises(OptionError, match="at least 3 sites"):
        run_federated(two, site_column="site", rounds=2, secure_aggregation=True)


def test_no_flower_process_left(federated_run):
    _, _, before, _ = federated_run
    assert _live_flower_pids() <= before


def test_small_site_refused(tmp_path):
    study = _study(tmp_path, {"A": 200, "B": 150, "tiny": 12})
    before = _live_flower_pids()
    with pytest.raises(FederatedError, match=r"fewer than 20 patients: tiny \(12\)"):
        run_federated(study, site_column="site", rounds=2)
    assert _live_flower_pids() <= before


def test_cli_options_and_refusals(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import pmed.federated.run as run_mod
    from pmed.cli.federated import app

    study = _study(tmp_path, {"A": 100, "B": 100})
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(study), "--site-column", "site", "--strategy", "fedsgd"])
    assert r.exit_code == 2 and "fedsgd" in r.output
    r = runner.invoke(app, ["run", str(study), "--site-column", "site", "--dp-epsilon", "0"])
    assert r.exit_code == 2
    seen = {}

    class Stop(Exception):
        pass

    def fake(study_path, **kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(run_mod, "run_federated", fake)  # the options reach run_federated; no Flower run
    r = runner.invoke(app, ["run", str(study), "--site-column", "site", "--dp-epsilon", "2", "--dp-clip", "0.5"])
    assert isinstance(r.exception, Stop)
    assert seen["dp_epsilon"] == 2.0 and seen["dp_clip"] == 0.5 and seen["dp_delta"] == 1e-5
    assert seen["secure_aggregation"] is False
    r = runner.invoke(app, ["run", str(study), "--site-column", "site", "--secure-aggregation"])
    assert isinstance(r.exception, Stop) and seen["secure_aggregation"] is True
    r = runner.invoke(app, ["run", "--help"])
    for opt in ("--site-column", "--rounds", "--strategy", "--dp-epsilon", "--dp-delta", "--dp-clip", "--out",
                "--superlink", "--secure-aggregation"):
        assert opt in r.output


def test_dp_accounting():
    from pmed.errors import OptionError
    from pmed.federated.privacy import epsilon_spent, noise_multiplier_for

    z = noise_multiplier_for(2.0, 1e-5, 10)
    eps = epsilon_spent(z, 10, 1e-5)
    assert 1.9 < eps <= 2.0
    assert noise_multiplier_for(1.0, 1e-5, 10) > z  # a smaller budget needs more noise
    assert noise_multiplier_for(2.0, 1e-5, 40) > z  # and so do more rounds
    assert epsilon_spent(z, 5, 1e-5) < eps
    with pytest.raises(OptionError, match="dp-epsilon"):
        noise_multiplier_for(0.0, 1e-5, 10)


def test_dp_strategy_clips_and_adds_noise(monkeypatch):
    """Flower's server-side clipping wrapper as the ServerApp builds it, on three sites' replies."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from pmed.federated.flower_app import _strategy

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)  # a Message outside a run needs these
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)

    base = {"strategy": "fedavg", "proximal-mu": 0.0}
    plain, dp = _strategy(base, 3)
    assert dp is None and plain.weighted_by_key == "num-examples"
    strategy, dp = _strategy({**base, "dp-noise-multiplier": 0.6, "dp-clip": 1.0}, 3)
    assert dp is strategy and dp.strategy.weighted_by_key == "unit-weight"
    p = 20_000
    dp.current_arrays = ArrayRecord([np.zeros(p), np.zeros(1)])
    # norms 424, 424 and 0.014: the first two are clipped to 1 (a zero update would make Flower 1.42's
    # clipping divide by zero)
    ups = [np.full(p, 3.0), np.full(p, 3.0), np.full(p, 1e-4)]
    replies = [Message(RecordDict({"arrays": ArrayRecord([u, np.zeros(1)]),
                                   "metrics": MetricRecord({"num-examples": n, "unit-weight": 1, "train-loss": 0.1})}),
                       dst_node_id=i + 1, message_type="train")
               for i, (u, n) in enumerate(zip(ups, (10, 10, 1000), strict=True))]
    arrays, _ = strategy.aggregate_train(1, replies)
    w = arrays.to_numpy_ndarrays()[0]
    expected = (2 / np.sqrt(p) + 1e-4) / 3  # equal weights: the large third site does not dominate
    sd = 0.6 * 1.0 / 3
    assert abs(w.mean() - expected) < 5 * sd / np.sqrt(p)
    assert abs(w.std() - sd) < 0.03 * sd


@pytest.mark.slow
def test_site_dropping_out_mid_run_with_dp(tmp_path):
    study = _study(tmp_path, {"A": 300, "B": 250, "C": 200})
    before = _live_flower_pids()
    res = run_federated(study, site_column="site", rounds=3, round_timeout=20, timeout=300,
                        _crash="C:2",  # site C's process dies from round 2 on
                        dp_epsilon=30.0, dp_clip=5.0)  # and the run is differentially private
    assert res.metrics["sites_finished"] == ["A", "B"]
    dp = res.metrics["dp"]
    assert dp["rounds_accounted"] == 3 and 29 < dp["epsilon_spent"] <= 30 and dp["noise_multiplier"] > 0
    # the noise follows the sites still in: 3 at the start, 2 in the last round
    assert dp["noise_sd_on_average"] == pytest.approx(dp["noise_multiplier"] * 5.0 / 3)
    assert dp["noise_sd_last_round"] == pytest.approx(dp["noise_multiplier"] * 5.0 / 2)
    assert "differential privacy (per site): epsilon" in res.summary()
    assert any("differential privacy" in e for e in res.metrics["events"])
    assert any("C dropped out" in w for w in res.metrics["warnings"])
    assert set(res.metrics["per_site"]) == {"A", "B"}
    assert "dropped out" in res.summary()
    assert _live_flower_pids() <= before


@pytest.mark.slow
def test_remote_mode_against_separately_started_superlink_and_supernodes(tmp_path):
    """docs/federated.md's 'Sites on other machines': a SuperLink and one SuperNode per site started
    on their own (here on localhost), each SuperNode given only its site's file; ``pmed federated
    run --superlink HOST:PORT --sites 3`` then reads only the study file and gets the result back
    through Flower's log stream."""
    from typer.testing import CliRunner

    from pmed.cli.federated import app
    from pmed.federated.launcher import Deployment

    study = _study(tmp_path, {"A": 300, "B": 250, "C": 200})
    df = make_clinical(750, seed=1)
    df["site"] = np.repeat(["A", "B", "C"], [300, 250, 200])
    before = _live_flower_pids()
    with Deployment(tmp_path / "coordinator") as sites:
        address = sites.start_superlink()
        for name, rows in df.groupby("site"):
            path = tmp_path / f"{name}.parquet"
            rows.drop(columns=["site"]).to_parquet(path, index=False)  # ids, sbp: left out by the study
            sites.start_supernode(f"supernode-{name}", {"site": name, "data-path": str(path)})
        r = CliRunner().invoke(app, ["run", str(study), "--superlink", address, "--sites", "3", "--rounds", "2",
                                     "--out", str(tmp_path / "out"), "--timeout", "200"])
        assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["sites_finished"] == ["A", "B", "C"] and len(m["history"]) == 2
    assert "pooled" not in m  # the rows are at the sites: no AUROC over all of them here
    for site in m["per_site"].values():
        assert 0.5 < site["auroc"] < 1
    model = json.loads((tmp_path / "out" / "model.json").read_text())
    names = {c["name"] for c in model["layout"]["numeric"]} | {c["name"] for c in model["layout"]["categorical"]}
    assert names.isdisjoint({"patient_id", "sbp", "event"})  # the study's exclusions held at the sites
    assert "site A: AUROC" in r.output
    assert _live_flower_pids() <= before
