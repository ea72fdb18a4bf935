"""``pmed federated``: train a study's model across sites with Flower, each site keeping its rows.

Parsing and printing only; the work is in :mod:`pmed.federated` (docs/federated.md). Nothing
printed here holds a patient value: site names, counts, metrics and process logs' tails only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import choice, finite

__all__ = ["app"]

app = typer.Typer(help="Federated training with Flower (a SuperLink and one SuperNode per site): "
                       "each site keeps its own rows.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Federated training with Flower."""


def _address(value: str | None) -> str | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter("give the SuperLink as HOST:PORT, e.g. 10.0.0.5:9091")
    return value


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be > 0, not {value}")
    return value


def _probability(value: float) -> float:
    if not 0 < value < 1:
        raise typer.BadParameter(f"must be in (0, 1), not {value}")
    return value


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="study file (YAML); its table is split by --site-column",
                                          exists=True, dir_okay=False)],
    site_column: Annotated[str | None, typer.Option("--site-column", help="column naming each patient's "
                                                    "site (one Flower SuperNode per site)")] = None,
    rounds: Annotated[int, typer.Option("--rounds", help="federated training rounds", min=1,
                                        max=10_000)] = 20,
    strategy: Annotated[str, typer.Option("--strategy", help="aggregation strategy (Flower's FedAvg or "
                                                             "FedProx)", **choice("fedavg", "fedprox"))] = "fedavg",
    dp_epsilon: Annotated[float | None, typer.Option("--dp-epsilon", help="site-level differential privacy "
                                                     "budget of the training rounds (Flower's server-side "
                                                     "clipping + Gaussian noise, RDP accountant)",
                                                     callback=_positive)] = None,
    dp_delta: Annotated[float, typer.Option("--dp-delta", help="with --dp-epsilon: the delta of (epsilon, delta), "
                                            "in (0, 1)", callback=_probability)] = 1e-5,
    dp_clip: Annotated[float, typer.Option("--dp-clip", help="with --dp-epsilon: L2 norm each site's update "
                                           "is clipped to", callback=_positive)] = 1.0,
    secure_aggregation: Annotated[bool, typer.Option("--secure-aggregation", help="Flower's SecAgg+: the "
                                                     "server sees only the sum of the sites' masked updates "
                                                     "(3 sites or more; not with --dp-epsilon)")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder: metrics.json, model.json, "
                                             "flower_logs/", file_okay=False)] = None,
    superlink: Annotated[str | None, typer.Option("--superlink", help="HOST:PORT of an existing SuperLink "
                                                  "whose SuperNodes run at the sites (default: start a "
                                                  "SuperLink and one SuperNode per site here)",
                                                  callback=_address)] = None,
    sites: Annotated[int | None, typer.Option("--sites", help="with --superlink: how many sites to wait "
                                              "for", min=2)] = None,
    model: Annotated[str, typer.Option("--model", help="logistic regression or a one-hidden-layer MLP",
                                       **choice("logistic", "mlp"))] = "logistic",
    local_steps: Annotated[int, typer.Option("--local-steps", help="gradient steps per site per round",
                                             min=1, max=10_000)] = 10,
    proximal_mu: Annotated[float, typer.Option("--proximal-mu", help="FedProx proximal weight",
                                               min=0.0, callback=finite())] = 0.1,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds the whole run may take",
                                           min=10.0, callback=finite())] = 900.0,
    round_timeout: Annotated[float, typer.Option("--round-timeout", help="seconds to wait for a site in "
                                                 "a round before it counts as dropped out", min=5.0, callback=finite())] = 120.0,
) -> None:
    """Train across sites with Flower; print per-site AUROC (DeLong 95% CI) on held-out rows."""
    from rich.markup import escape

    from pmed.cli._common import console
    from pmed.federated.run import run_federated

    err = console(stderr=True)
    res = run_federated(study, site_column=site_column, rounds=rounds, strategy=strategy, model=model,
                        dp_epsilon=dp_epsilon, dp_delta=dp_delta, dp_clip=dp_clip,
                        secure_aggregation=secure_aggregation, out=out, superlink=superlink, n_sites=sites,
                        local_steps=local_steps, proximal_mu=proximal_mu, timeout=timeout,
                        round_timeout=round_timeout, on_event=lambda s: err.print(escape(s), soft_wrap=True))
    console().print(escape(res.summary()), soft_wrap=True)
    if res.out is not None:
        console().print(f"wrote {escape(str(res.out))}/metrics.json and model.json")
