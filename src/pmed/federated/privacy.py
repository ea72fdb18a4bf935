"""Site-level differential privacy of a federated run: the noise for an ε budget, and the ε spent.

The mechanism is Flower's ``DifferentialPrivacyServerSideFixedClipping`` (DP-FedAvg, McMahan et
al. 2018, central DP: the server is trusted with the sites' updates): each round, every site's
update (its parameters minus the global ones) is clipped to L2 norm ``C``, the clipped updates are
averaged with *equal* weights over the ``n`` sites, and Gaussian noise of SD ``z·C/n`` is added to
the average. Adding or removing one site's whole contribution changes the sum by at most ``C``, so
each round is a Gaussian mechanism with noise multiplier ``z`` and every site takes part in every
round (no subsampling, sampling rate 1). ``rounds`` such releases are composed with Opacus' RDP
accountant (:class:`opacus.accountants.RDPAccountant`); :func:`noise_multiplier_for` finds the
smallest ``z`` (to Opacus' tolerance) whose composed ε at ``δ`` is at most the budget.

The unit protected is a **site** (all its patients at once); a single patient is protected at
least as well. Not covered: the statistics round before training (each site's counts, sums and
sums of squares, which set the shared encoding) and the evaluation metrics each site returns;
they are released without noise.
"""

from __future__ import annotations

from typing import Any

from pmed.errors import MissingDependencyError, OptionError

__all__ = ["noise_multiplier_for", "epsilon_spent", "dp_record"]


def _opacus():
    try:
        from opacus.accountants import RDPAccountant
        from opacus.accountants.utils import get_noise_multiplier
    except ImportError as e:
        raise MissingDependencyError("opacus", extra="privacy",
                                     feature="the privacy accountant of --dp-epsilon") from e
    return RDPAccountant, get_noise_multiplier


def noise_multiplier_for(epsilon: float, delta: float, rounds: int) -> float:
    """The noise multiplier ``z`` whose ``rounds`` full-participation Gaussian releases spend ≤ ``epsilon``."""
    if not epsilon > 0:
        raise OptionError(f"--dp-epsilon must be > 0, not {epsilon}")
    if not 0 < delta < 1:
        raise OptionError(f"--dp-delta must be in (0, 1), not {delta}")
    _, get_noise_multiplier = _opacus()
    return float(get_noise_multiplier(target_epsilon=float(epsilon), target_delta=float(delta),
                                      sample_rate=1.0, steps=int(rounds), accountant="rdp"))


def epsilon_spent(noise_multiplier: float, rounds: int, delta: float) -> float:
    """ε at ``delta`` after ``rounds`` Gaussian releases with multiplier ``noise_multiplier`` (RDP)."""
    RDPAccountant, _ = _opacus()
    acc = RDPAccountant()
    acc.history.append((float(noise_multiplier), 1.0, int(rounds)))
    return float(acc.get_epsilon(delta=float(delta)))


def dp_record(epsilon: float, delta: float, clip: float, rounds: int, noise_multiplier: float,
              rounds_run: int, n_sites: int) -> dict[str, Any]:
    """What ``metrics.json`` says about the privacy of a run."""
    return {
        "epsilon_budget": float(epsilon), "epsilon_spent": epsilon_spent(noise_multiplier, rounds_run, delta),
        "delta": float(delta), "noise_multiplier": float(noise_multiplier), "clipping_norm": float(clip),
        "rounds_accounted": int(rounds_run), "sites": int(n_sites),
        "noise_sd_on_average": float(noise_multiplier * clip / n_sites),
        "unit": "site (adding or removing one site's whole update); a patient is protected at least as well",
        "mechanism": "Flower DifferentialPrivacyServerSideFixedClipping (central DP: the server sees the "
                     "sites' updates), equal site weights, every site in every round (sampling rate 1)",
        "accountant": "opacus.accountants.RDPAccountant (Gaussian mechanism, Renyi DP composition)",
        "not_covered": ["the statistics round (per-site counts, sums, sums of squares: the shared encoding)",
                        "the evaluation metrics each site returns"],
    }
