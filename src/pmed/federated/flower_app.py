"""pmed's Flower App: the ServerApp (coordinator) and the ClientApp (one per site).

Flower (``flwr``, Message API) runs these inside its deployment engine: ``flower-superlink``
starts the ServerApp, each ``flower-supernode`` runs the ClientApp against *its own* data file
(``data-path`` in the SuperNode's ``--node-config``). Rounds:

1. ``query``: each site sends aggregates of its rows (counts, sums, sums of squares, level counts)
   and its row count; sites below :data:`~pmed.federated.learners.MIN_SITE_PATIENTS` refuse.
2. ``train`` × ``num-rounds``: each site takes the global parameters, makes ``local-steps``
   gradient steps on its training rows (FedProx adds the proximal term) and returns its
   parameters, which Flower's ``FedAvg``/``FedProx`` average weighted by row count. With
   ``dp-noise-multiplier`` > 0 the strategy is wrapped in Flower's server-side fixed-clipping DP
   (updates clipped to ``dp-clip``, equal weights, Gaussian noise; :mod:`pmed.federated.privacy`).
   With ``record-rounds`` the global parameters after each round go into the result file.
3. ``evaluate``: each site scores its held-out rows with the final model and returns AUROC with
   DeLong's CI (numbers about the site, never a row).

A site that fails or does not answer within ``round-timeout`` seconds is dropped for the rest
of the run; the run goes on with the others (at least ``min-sites``) and says so. Nothing here
logs patient values: only counts, site names and metrics. The result is written to
``out-file`` (when the ServerApp can reach it) and printed as one ``PMED_RESULT {json}`` line in
the run's log stream (how ``flwr run --stream`` brings it back from a remote SuperLink).
"""

from __future__ import annotations

import json
import os
import time
import traceback
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, FedProx

from pmed.federated import learners as L

RESULT_TAG = "PMED_RESULT"
ERROR_TAG = "PMED_ERROR"

# ---------------------------------------------------------------- client (one per site) ------


class SiteError(Exception):
    """A refusal the site explains itself (safe to send: it names no patient value)."""


def _site_data(context: Context, cfg) -> tuple[str, Any, np.ndarray, np.ndarray]:
    import pandas as pd

    path = str(context.node_config.get("data-path", ""))
    site = str(context.node_config.get("site", f"node-{context.node_id}"))
    if not path or not os.path.exists(path):
        raise SiteError(f"site {site}: its data file (node-config data-path) does not exist")
    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    outcome = str(cfg["outcome"])
    if outcome not in df.columns:
        raise SiteError(f"site {site}: its data have no outcome column {outcome!r}")
    exclude = set(json.loads(str(cfg.get("exclude", "[]"))))
    y = pd.to_numeric(df[outcome], errors="coerce")
    keep = y.notna().to_numpy()
    if not set(np.unique(y[keep])) <= {0, 1}:
        raise SiteError(f"site {site}: outcome {outcome!r} must be coded 0/1")
    X = df.loc[keep, [c for c in df.columns if c != outcome and c not in exclude]]
    y = y[keep].to_numpy().astype(int)
    if len(y) < L.MIN_SITE_PATIENTS:
        raise SiteError(f"site {site} has {len(y)} patients with an outcome, fewer than "
                        f"{L.MIN_SITE_PATIENTS}: it cannot take part (its updates would reveal patients)")
    test = L.split_rows(y, float(cfg["test-fraction"]), int(cfg["seed"]))
    return site, X, y, test


def _fail(msg: Message, site: str, e: BaseException) -> Message:
    # only pmed's own refusals are sent in words; other errors by class (their text may quote data)
    text = str(e) if isinstance(e, SiteError) else f"{site}: {type(e).__name__} in the site's computation"
    return Message(RecordDict({"pmed": ConfigRecord({"error": text, "site": site})}), reply_to=msg)


def _maybe_crash(site: str, server_round: int) -> None:
    # test hook: PMED_FEDERATED_CRASH="SITE:ROUND" makes that site's process die from that round on
    spec = os.environ.get("PMED_FEDERATED_CRASH", "")
    if spec and ":" in spec:
        name, r = spec.rsplit(":", 1)
        if name == site and server_round >= int(r):
            os._exit(3)


def _round_inputs(cfg, params: list[np.ndarray], context: Context):
    """What a training or evaluation round works on: the site, its rows, which of them are held
    out, the shared encoding and the global parameters sent this round."""
    site = str(context.node_config.get("site", "?"))
    _maybe_crash(site, int(cfg["server-round"]))
    site, X, y, test = _site_data(context, cfg)
    return site, X, y, test, json.loads(str(cfg["layout"])), params


def _secagg_when_asked(msg: Message, context: Context, call_next):
    """Flower's SecAgg+ client mod on the rounds that carry its stage record (plain rounds pass)."""
    from flwr.client.mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


client_app = ClientApp()


@client_app.query()
def _query(msg: Message, context: Context) -> Message:
    site = str(context.node_config.get("site", "?"))
    try:
        cfg = msg.content["config"]
        site, X, y, test = _site_data(context, cfg)
        summary = L.site_summary(X[~test], y[~test])
        summary.update(site=site, n_all=int(len(y)), n_test=int(test.sum()))
        return Message(RecordDict({"pmed": ConfigRecord({"summary": L.dumps(summary), "site": site})}),
                       reply_to=msg)
    except Exception as e:  # noqa: BLE001 - reported to the server, which stops or drops the site
        return _fail(msg, site, e)


@client_app.train(mods=[_secagg_when_asked])
def _train(msg: Message, context: Context) -> Message:
    site = str(context.node_config.get("site", "?"))
    # under secure aggregation the round arrives in Flower's legacy FitIns form (the SecAgg+
    # workflow speaks it) and the answer must be a FitRes, which the mod masks before it leaves
    legacy = "fitins.config" in msg.content.config_records
    try:
        if legacy:
            import flwr.compat.common.recorddict_compat as compat
            from flwr.common import parameters_to_ndarrays

            fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
            cfg, params = fitins.config, parameters_to_ndarrays(fitins.parameters)
        else:
            cfg, params = msg.content["config"], msg.content["arrays"].to_numpy_ndarrays()
        site, X, y, test, layout, params = _round_inputs(cfg, params, context)
        Z = L.encode(X[~test], layout)
        mu = float(cfg.get("proximal-mu", 0.0))
        new = L.local_train(params, Z, y[~test], steps=int(cfg["local-steps"]), lr=float(cfg["lr"]),
                            l2=float(cfg["l2"]), mu=mu)
        p = L.predict_proba(new, Z)
        loss = float(-np.mean(y[~test] * np.log(p + 1e-12) + (1 - y[~test]) * np.log(1 - p + 1e-12)))
        n = int((~test).sum())
        if legacy:
            return _masked_answer(msg, cfg, site, new, n, loss)
        return Message(RecordDict({
            "arrays": ArrayRecord(new),
            # unit-weight: the equal weights of a differentially private run (see _strategy)
            "metrics": MetricRecord({"num-examples": n, "unit-weight": 1, "train-loss": loss}),
            "pmed": ConfigRecord({"site": site}),
        }), reply_to=msg)
    except Exception as e:  # noqa: BLE001
        if legacy:
            raise  # Flower reports the site as failed; SecAgg+ goes on without it (its text stays here)
        return _fail(msg, site, e)


def _masked_answer(msg: Message, cfg, site: str, new: list[np.ndarray], n: int, loss: float) -> Message:
    import flwr.compat.common.recorddict_compat as compat
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

    # SecAgg+ quantizes within +/- the clipping range and would clip larger values silently
    limit = float(cfg["secagg-clip"])
    big = max(float(np.max(np.abs(a))) for a in new)
    if big > limit:
        raise SiteError(f"site {site}: a parameter reached {big:.3g}, beyond the secure-aggregation "
                        f"range +/-{limit:g}; raise --l2 or lower --lr")
    res = FitRes(status=Status(code=Code.OK, message=""), parameters=ndarrays_to_parameters(new),
                 num_examples=n, metrics={"train-loss": loss})
    return Message(compat.fitres_to_recorddict(res, keep_input=True), reply_to=msg)


@client_app.evaluate()
def _evaluate(msg: Message, context: Context) -> Message:
    site = str(context.node_config.get("site", "?"))
    try:
        from pmed.evaluate.discrimination import delong_auc

        site, X, y, test, layout, params = _round_inputs(msg.content["config"],
                                                         msg.content["arrays"].to_numpy_ndarrays(), context)
        p = L.predict_proba(params, L.encode(X[test], layout))
        yt = y[test]
        out = {"site": site, "n_test": int(len(yt)), "n_test_events": int(yt.sum()),
               "n_train": int((~test).sum())}
        if 0 < yt.sum() < len(yt):
            d = delong_auc(yt, p)
            out.update(auroc=d["estimate"], ci_low=d["ci_low"], ci_high=d["ci_high"])
        else:
            out.update(auroc=None, ci_low=None, ci_high=None, note="held-out rows have one class only")
        return Message(RecordDict({"pmed": ConfigRecord({"evaluation": L.dumps(out), "site": site})}),
                       reply_to=msg)
    except Exception as e:  # noqa: BLE001
        return _fail(msg, site, e)


# ---------------------------------------------------------------- server (coordinator) -------


class FederatedRunError(RuntimeError):
    pass


def _payload_bytes(rd: RecordDict) -> int:
    n = 0
    for rec in rd.values():
        if isinstance(rec, ArrayRecord):
            n += sum(int(a.nbytes) for a in rec.to_numpy_ndarrays())
        elif isinstance(rec, (ConfigRecord, MetricRecord)):
            n += sum(len(str(k)) + len(str(v)) for k, v in rec.items())
    return n


class _Coordinator:
    def __init__(self, grid: Grid, cfg) -> None:
        self.grid, self.cfg = grid, cfg
        self.sites: dict[int, str] = {}  # node id -> site name
        self.events: list[str] = []
        self.bytes_down = self.bytes_up = 0
        self.messages = 0

    def say(self, text: str, level: int = INFO) -> None:
        self.events.append(text)
        log(level, "pmed: %s", text)

    def wait_for_nodes(self, n: int, timeout: float) -> list[int]:
        t0 = time.monotonic()
        while True:
            ids = list(self.grid.get_node_ids())
            if len(ids) >= n:
                return ids
            if time.monotonic() - t0 > timeout:
                raise FederatedRunError(
                    f"only {len(ids)} of {n} sites connected to the SuperLink within {timeout:.0f} s; "
                    "check that each site's flower-supernode runs with --superlink pointing at this SuperLink")
            time.sleep(0.5)

    def _send_and_receive(self, msgs: list[Message], timeout: float) -> list[Message]:
        # Grid.send_and_receive polls every 3 s; a round of a small model takes less than that
        waiting = set(self.grid.push_messages(msgs))
        end, replies, pause = time.monotonic() + timeout, [], 0.1
        while waiting and time.monotonic() < end:
            got = list(self.grid.pull_messages(waiting))
            replies += got
            waiting -= {m.metadata.reply_to_message_id for m in got}
            if waiting:
                time.sleep(pause)
                pause = min(pause * 1.5, 1.0)
        return replies

    def exchange(self, nodes: list[int], kind: str, content: RecordDict, what: str) -> dict[int, Message]:
        msgs = [Message(content=content, message_type=kind, dst_node_id=nid) for nid in nodes]
        self.bytes_down += _payload_bytes(content) * len(msgs)
        self.messages += len(msgs)
        replies = self._send_and_receive(msgs, float(self.cfg["round-timeout"]))
        ok: dict[int, Message] = {}
        for r in replies:
            nid = r.metadata.src_node_id
            if r.has_error():
                self.say(f"{what}: site {self.sites.get(nid, nid)} failed ({r.error.reason or 'no reason'})",
                         WARNING)
                continue
            if "pmed" in r.content and "error" in r.content["pmed"]:
                raise FederatedRunError(str(r.content["pmed"]["error"]))
            self.bytes_up += _payload_bytes(r.content)
            ok[nid] = r
        return ok

    def drop_missing(self, active: list[int], ok: dict[int, Message], what: str) -> list[int]:
        gone = [nid for nid in active if nid not in ok]
        if gone:
            names = ", ".join(self.sites.get(n, str(n)) for n in gone)
            still = [n for n in active if n in ok]
            self.say(f"{what}: site(s) {names} dropped out (no answer within "
                     f"{float(self.cfg['round-timeout']):.0f} s or failed); continuing with "
                     f"{len(still)} site(s): {', '.join(self.sites[n] for n in still)}", WARNING)
            if len(still) < int(self.cfg["min-sites"]):
                raise FederatedRunError(f"{what}: only {len(still)} site(s) left, fewer than min-sites "
                                        f"{int(self.cfg['min-sites'])}; the run stops")
            return still
        return active


server_app = ServerApp()


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    out_file = str(cfg.get("out-file", ""))
    t0 = time.monotonic()
    co = _Coordinator(grid, cfg)
    try:
        result = _coordinate(co, cfg, context)
        result["seconds"] = round(time.monotonic() - t0, 2)
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear line for pmed
        msg = str(e) if isinstance(e, FederatedRunError) else f"{type(e).__name__}: {e}"
        log(WARNING, "%s %s", ERROR_TAG, json.dumps({"error": msg}))
        if not isinstance(e, FederatedRunError):
            log(WARNING, "%s", traceback.format_exc())
        result = {"error": msg, "events": co.events}
    text = L.dumps(result)
    if out_file:
        try:
            with open(out_file + ".tmp", "w") as f:
                f.write(text)
            os.replace(out_file + ".tmp", out_file)
        except OSError:
            pass  # a remote SuperLink cannot write into the caller's folder: the log line carries it
    # the log line leaves out the per-round parameters (record-rounds; they can be long): the
    # out-file written above carries them in local mode
    line = L.dumps({k: v for k, v in result.items() if k != "round_params"}) if "round_params" in result else text
    log(INFO, "%s %s", RESULT_TAG, line)


def _coordinate(co: _Coordinator, cfg, context: Context) -> dict[str, Any]:
    n_sites = int(cfg["num-sites"])
    nodes = co.wait_for_nodes(n_sites, float(cfg["connect-timeout"]))
    base = {k: cfg[k] for k in ("outcome", "exclude", "test-fraction", "seed")}

    # 1. aggregates for the shared encoding
    ok = co.exchange(nodes, "query", RecordDict({"config": ConfigRecord(dict(base))}), "statistics round")
    for nid, r in ok.items():
        co.sites[nid] = str(r.content["pmed"]["site"])
    if len(ok) < len(nodes):
        co.drop_missing(nodes, ok, "statistics round")
    active = [n for n in nodes if n in ok]
    summaries = {nid: json.loads(str(ok[nid].content["pmed"]["summary"])) for nid in active}
    names = [co.sites[n] for n in active]
    if len(set(names)) < len(names):
        raise FederatedRunError(f"two SuperNodes report the same site name ({', '.join(sorted(names))})")
    co.say(f"{len(active)} sites: " + ", ".join(f"{co.sites[n]} ({summaries[n]['n_all']} patients)"
                                                 for n in active))
    layout = L.build_layout([summaries[n] for n in active])
    if layout["n_features"] == 0:
        raise FederatedRunError("no feature column is common to all sites")
    if layout["dropped"]:
        co.say(f"columns left out (not at every site, or numeric at one and categorical at another): "
               f"{', '.join(layout['dropped'])}", WARNING)

    # 2. training rounds with Flower's strategy doing the weighted averaging
    model, strategy_name = str(cfg["model"]), str(cfg["strategy"])
    mu = float(cfg["proximal-mu"])
    strategy, dp = _strategy(cfg, len(active))
    if dp is not None:
        co.say(f"differential privacy: each site's update clipped to norm {dp.clipping_norm:g}, Gaussian noise "
               f"(multiplier {dp.noise_multiplier:.4g}) added to the equally weighted average")
    secure = None
    if bool(cfg.get("secure-aggregation", False)):
        secure = _SecureRounds(co, context, cfg, sum(summaries[n]["n"] for n in active))
        co.say(f"secure aggregation (Flower's SecAgg+): the server sees only the sum of the sites' masked "
               f"updates; {secure.threshold_note(len(active))}")
    record = bool(cfg.get("record-rounds", False))
    round_params = []
    params = L.init_params(model, layout["n_features"], hidden=int(cfg["hidden"]), seed=int(cfg["seed"]))
    arrays = ArrayRecord(params)
    layout_text = L.dumps(layout)
    history = []
    n_rounds = int(cfg["num-rounds"])
    for rnd in range(1, n_rounds + 1):
        conf = ConfigRecord({**base, "layout": layout_text, "server-round": rnd,
                             "local-steps": int(cfg["local-steps"]), "lr": float(cfg["lr"]),
                             "l2": float(cfg["l2"]),
                             "proximal-mu": mu if strategy_name == "fedprox" else 0.0})
        if secure is not None:
            done, agg_arrays, agg_metrics = secure.round(rnd, active, arrays, conf)
            active = co.drop_missing(active, done, f"round {rnd}")
            ok = done
        else:
            ok = co.exchange(active, "train", RecordDict({"arrays": arrays, "config": conf}), f"round {rnd}")
            active = co.drop_missing(active, ok, f"round {rnd}")
            if dp is not None:
                dp.current_arrays = arrays  # Flower clips each site's update relative to these
                dp.num_sampled_clients = len(ok)  # the noise is scaled to the average taken
            agg_arrays, agg_metrics = strategy.aggregate_train(rnd, list(ok.values()))
        if agg_arrays is None:
            raise FederatedRunError(f"round {rnd}: no site returned an update")
        arrays = agg_arrays
        if record:
            round_params.append(L.params_to_json(arrays.to_numpy_ndarrays()))
        loss = float(agg_metrics["train-loss"]) if agg_metrics and "train-loss" in agg_metrics else None
        history.append({"round": rnd, "sites": [co.sites[n] for n in active], "train_loss": loss})
        co.say(f"round {rnd}/{n_rounds}: {len(ok)} site(s), weighted train log-loss {loss:.4f}")

    # 3. each site scores its held-out rows with the final model
    conf = ConfigRecord({**base, "layout": layout_text, "server-round": n_rounds + 1})
    ok = co.exchange(active, "evaluate", RecordDict({"arrays": arrays, "config": conf}), "evaluation")
    active = co.drop_missing(active, ok, "evaluation")
    per_site = {}
    for r in ok.values():
        ev = json.loads(str(r.content["pmed"]["evaluation"]))
        per_site[ev.pop("site")] = ev
    final = arrays.to_numpy_ndarrays()
    return {
        "model": model, "strategy": strategy_name, "proximal_mu": mu if strategy_name == "fedprox" else None,
        "rounds": n_rounds, "local_steps": int(cfg["local-steps"]), "lr": float(cfg["lr"]), "l2": float(cfg["l2"]),
        "sites": {co.sites[n]: {"n_patients": summaries[n]["n_all"], "n_train": summaries[n]["n"],
                                "n_train_events": summaries[n]["n_pos"]} for n in summaries},
        "sites_finished": sorted(co.sites[n] for n in active),
        "layout": layout, "params": L.params_to_json(final),
        "history": history, "per_site": per_site,
        "communication": {"messages": co.messages, "bytes_to_sites": co.bytes_down,
                          "bytes_from_sites": co.bytes_up, "bytes_total": co.bytes_down + co.bytes_up,
                          "parameters_per_model": int(sum(p.size for p in final)),
                          "counted": "payload bytes of the records (arrays as float64, config/metric text); "
                                     "HTTP/protocol overhead not included"},
        "events": co.events,
        "secure_aggregation": None if secure is None else secure.record(),
        "dp": None if dp is None else {"noise_multiplier": dp.noise_multiplier, "clipping_norm": dp.clipping_norm,
                                       "noise_sd_last_round": dp.noise_multiplier * dp.clipping_norm
                                       / dp.num_sampled_clients,
                                       "weights": "equal (unit-weight), as the sensitivity assumes"},
        **({"round_params": round_params} if record else {}),
    }


class _CountingGrid:
    """The Grid as the SecAgg+ workflow sees it: counting the payload bytes and messages it sends,
    and polling for the answers as :meth:`_Coordinator._send_and_receive` does."""

    def __init__(self, grid: Grid, co: _Coordinator) -> None:
        self._grid, self._co = grid, co

    def __getattr__(self, name: str):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        self._co.messages += len(messages)
        self._co.bytes_down += sum(_payload_bytes(m.content) for m in messages)
        # the Coordinator's polling: Grid.send_and_receive waits 3 s between pulls, four stages a round
        replies = self._co._send_and_receive(messages, float(timeout if timeout is not None
                                                             else self._co.cfg["round-timeout"]))
        self._co.bytes_up += sum(_payload_bytes(r.content) for r in replies if not r.has_error())
        return replies


class _SecureRounds:
    """Training rounds through Flower's SecAgg+ workflow (``flwr.server.workflow``).

    Each site masks its quantized, row-count-weighted update with pairwise masks agreed with its
    neighbours and a private mask whose seed it secret-shares; the server only ever holds the sum,
    from which it takes the weighted average. The workflow is written for Flower's legacy
    strategy API, so a ``LegacyContext`` with a legacy ``FedAvg`` carries it; a site that drops
    out mid-round is unmasked from its neighbours' shares while ``threshold`` of them answer.
    """

    def __init__(self, co: _Coordinator, context: Context, cfg, total_rows: int) -> None:
        from flwr.server import ServerConfig
        from flwr.server.client_manager import SimpleClientManager
        from flwr.server.compat.legacy_context import LegacyContext
        from flwr.server.strategy import FedAvg as LegacyFedAvg
        from flwr.server.workflow import SecAggPlusWorkflow

        self.co, self.run_id = co, context.run_id
        self.clip = float(cfg["secagg-clip"])
        outer = self

        class _Strategy(LegacyFedAvg):
            def aggregate_fit(self, server_round, results, failures):
                outer.answered = [proxy.node_id for proxy, _ in results]
                return super().aggregate_fit(server_round, results, failures)

        def loss_mean(metrics):
            n = sum(k for k, _ in metrics)
            return {"train-loss": sum(k * float(m["train-loss"]) for k, m in metrics) / max(n, 1)}

        self.strategy = _Strategy(fraction_fit=1.0, fraction_evaluate=0.0, accept_failures=True,
                                  fit_metrics_aggregation_fn=loss_mean)
        self.manager = SimpleClientManager()
        self.context = LegacyContext(context, config=ServerConfig(num_rounds=int(cfg["num-rounds"])),
                                     strategy=self.strategy, client_manager=self.manager)
        self.workflow = SecAggPlusWorkflow(
            num_shares=1.0, reconstruction_threshold=0.5,  # every other site a neighbour; half must answer
            max_weight=float(max(total_rows, 1)),  # row-count weights scaled into [0, 1]
            clipping_range=self.clip, timeout=float(cfg["round-timeout"]))
        self.grid = _CountingGrid(co.grid, co)
        self.proxies: dict[int, Any] = {}
        self.rounds = 0

    def threshold_note(self, n: int) -> str:
        k = max(round(0.5 * n), 2)
        return f"{k} of {n} sites must answer a round for its sum to be unmasked"

    def round(self, rnd: int, active: list[int], arrays: ArrayRecord, conf: ConfigRecord):
        from flwr.server.compat.grid_client_proxy import GridClientProxy
        from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
        from flwr.server.workflow.constant import Key as WorkflowKey

        for nid in list(self.proxies):
            if nid not in active:
                self.manager.unregister(self.proxies.pop(nid))
        for nid in active:
            if nid not in self.proxies:
                self.proxies[nid] = GridClientProxy(nid, self.co.grid, self.run_id)
                self.manager.register(self.proxies[nid])
        self.strategy.min_fit_clients = self.strategy.min_available_clients = len(active)
        fit_config = {**dict(conf), "secagg-clip": self.clip}
        self.strategy.on_fit_config_fn = lambda _round: fit_config
        state = self.context.state
        state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: rnd})
        state.array_records[MAIN_PARAMS_RECORD] = arrays
        self.answered = None
        self.workflow(self.grid, self.context)
        if self.answered is None:
            raise FederatedRunError(f"round {rnd}: secure aggregation halted (fewer sites answered than "
                                    f"the {self.threshold_note(len(active))}); the run stops")
        self.rounds += 1
        new = state.array_records[MAIN_PARAMS_RECORD]
        metrics = self.context.history.metrics_distributed_fit.get("train-loss", [])
        loss = {"train-loss": metrics[-1][1]} if metrics else None
        return {nid: True for nid in self.answered}, ArrayRecord(new.to_numpy_ndarrays()), loss

    def record(self) -> dict[str, Any]:
        return {"protocol": "SecAgg+ (Flower SecAggPlusWorkflow / secaggplus_mod)", "rounds": self.rounds,
                "clipping_range": self.clip, "reconstruction_threshold": 0.5,
                "note": "parameters are quantized to 2^22 levels over +/- clipping_range before masking"}


def _strategy(cfg, n_sites: int):
    """Flower's FedAvg/FedProx; with ``dp-noise-multiplier`` > 0 wrapped in Flower's server-side
    fixed-clipping DP (each site's update clipped to ``dp-clip``, Gaussian noise of SD
    ``multiplier·clip/n_sites`` added to the average). The DP average weights sites equally: the
    noise is calibrated to one site changing the average by at most ``clip/n_sites``, which a
    row-count weighting would not bound."""
    mu = float(cfg["proximal-mu"])
    z = float(cfg.get("dp-noise-multiplier", 0.0))
    key = "unit-weight" if z > 0 else "num-examples"
    base = (FedProx(proximal_mu=mu, weighted_by_key=key) if str(cfg["strategy"]) == "fedprox"
            else FedAvg(weighted_by_key=key))
    if z <= 0:
        return base, None
    dp = DifferentialPrivacyServerSideFixedClipping(base, noise_multiplier=z, clipping_norm=float(cfg["dp-clip"]),
                                                    num_sampled_clients=n_sites)
    return dp, dp
