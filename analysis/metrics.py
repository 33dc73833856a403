"""Reference-solution metrics of one game, computed exactly from its stored preferences.

The reference solutions (maximum welfare, Nash bargaining with disagreement point 0,
Kalai-Smorodinsky, Pareto optimality) come from ``bargain.game``, which enumerates all n^m
allocations exactly; games with more than ``bargain.game.MAX_ALLOCATIONS`` allocations get NaN
reference metrics and a logged warning (no approximation is passed off as exact).

Nash and Kalai-Smorodinsky solutions are sets (mirror-image splits tie at competition 1): each
per-agent reference figure is the symmetric mean over the distinct optimal utility vectors, with
its min and max over them in ``*_low`` / ``*_high``, so no figure depends on the order in which
allocations or agents are enumerated. Payoff metrics use the discounted utilities the agents
actually received:

- efficiency = sum of discounted utilities / maximum welfare (delay is a real loss),
- exploitation index of agent i = (u_i - u_i^NBS) / u_i^NBS with u_i^NBS the mean over the Nash
  set (-1 on no deal); its range over the set's points in ``exploitation_index_low/high``,
- NBS share = mean over the Nash set's points of u_i^NBS / sum_j u_j^NBS, the share a fair
  bargain would give (range in ``nbs_share_low/high``),
- Pareto optimality of the agreed allocation (raw utilities: discounting scales everyone alike;
  no deal is never Pareto-optimal), envy-freeness up to one item on the agents' own item values
  (the vector part of matrix preferences), and the Gini coefficient of the utilities.

Treaty and co-funding records get the same columns (and their own) from :mod:`analysis.game_metrics`.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from analysis.game_metrics import cofunding_metrics, treaty_metrics
from bargain.game import (
    MAX_ALLOCATIONS,
    Preferences,
    is_pareto_optimal,
    kalai_smorodinsky,
    max_welfare,
    nash_bargaining,
)

log = logging.getLogger(__name__)

def preferences(record: dict) -> Preferences:
    """The game's preferences as a ``bargain.game.Preferences``."""
    p = record["preferences"]
    g = record["game"]
    values = np.asarray(p["values"], dtype=float)
    return Preferences(kind=p["kind"], values=values, base=np.asarray(p.get("base", values), dtype=float),
                       competition=float(g["competition"]), cooperation=float(g.get("cooperation") or 0.0))


def reference(prefs: Preferences, cache: dict | None = None) -> dict:
    """Maximum welfare and the Nash and Kalai-Smorodinsky points (distinct optimal utility vectors).

    Returns ``{"max_welfare": float, "nbs": (k, n) array, "ks": (k', n) array}`` (cached per
    preferences); the point arrays are one row of NaN when the game is too large to enumerate.
    """
    cache = {} if cache is None else cache
    key = _key(prefs)
    if key in cache:
        return cache[key]
    n, m = prefs.base.shape
    if n**m > MAX_ALLOCATIONS:
        log.warning("%d agents x %d items: %d allocations is too many to enumerate; "
                    "reference metrics are NaN for this game", n, m, n**m)
        nan = np.full((1, n), np.nan)
        ref = {"max_welfare": math.nan, "nbs": nan, "ks": nan}
    else:
        ref = {"max_welfare": float(max_welfare(prefs).utilities[0].sum()),
               "nbs": nash_bargaining(prefs).points, "ks": kalai_smorodinsky(prefs).points}
    cache[key] = ref
    return ref


def _pareto(prefs: Preferences, owners: tuple[int, ...], cache: dict) -> bool:
    """Whether ``owners`` is Pareto-optimal (cached: ladder models often reach the same deal)."""
    key = ("pareto", *_key(prefs), owners)
    if key not in cache:
        cache[key] = bool(is_pareto_optimal(prefs, owners))
    return cache[key]


def _key(prefs: Preferences) -> tuple:
    return prefs.kind, prefs.values.shape, prefs.values.tobytes()


def envy_free_up_to_one(base: np.ndarray, owners) -> bool:
    """EF1: nobody values another's bundle, minus its best item, above their own bundle."""
    owners = np.asarray(owners)
    for i in range(base.shape[0]):
        own = base[i, owners == i].sum()
        for j in range(base.shape[0]):
            bundle = base[i, owners == j]
            if j != i and bundle.size and bundle.sum() - bundle.max() > own + 1e-9:
                return False
    return True


def gini(u) -> float:
    """Gini coefficient of non-negative utilities (NaN when all are zero)."""
    u = np.asarray(u, dtype=float)
    total = u.sum()
    if total <= 0:
        return math.nan
    return float(np.abs(u[:, None] - u[None, :]).sum() / (2 * u.size * total))


def game_metrics(record: dict, cache: dict | None = None) -> tuple[dict, list[dict]]:
    """Game-level and per-seat metrics for one record (outcome metrics NaN unless complete)."""
    cache = {} if cache is None else cache
    game = record["game"].get("name", "items")
    if game != "items":
        return {"treaty": treaty_metrics, "cofunding": cofunding_metrics}[game](record, cache)
    prefs = preferences(record)
    ref = reference(prefs, cache)
    n = prefs.base.shape[0]
    nbs, ks = ref["nbs"], ref["ks"]
    outcome = record.get("outcome") or {}
    complete = record["status"] == "complete"
    agreement = complete and bool(outcome.get("agreement"))
    disc = np.asarray(outcome.get("discounted_utility") or np.zeros(n), dtype=float)
    owners = outcome.get("owners")
    enumerable = not math.isnan(ref["max_welfare"])

    game = {
        "max_welfare": ref["max_welfare"], "nbs_welfare": float(nbs.sum(axis=1).mean()),
        "ks_welfare": float(ks.sum(axis=1).mean()),
        "nbs_solutions": len(nbs) if enumerable else 0, "ks_solutions": len(ks) if enumerable else 0,
        "efficiency": disc.sum() / ref["max_welfare"] if complete and ref["max_welfare"] > 0 else math.nan,
        "pareto_optimal": (_pareto(prefs, tuple(owners), cache) if agreement else False)
        if complete and enumerable else None,
        "ef1": envy_free_up_to_one(prefs.base, owners) if agreement else None,
        "gini": gini(disc) if agreement else math.nan,
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        totals = nbs.sum(axis=1, keepdims=True)
        shares = np.where(totals > 0, nbs / totals, np.nan)  # (k, n) the share each Nash point gives
        index = np.where(nbs > 0, (disc - nbs) / nbs, np.nan) if complete else np.full_like(nbs, np.nan)
    agents = []
    for i in range(n):
        reference_utility = float(nbs[:, i].mean())
        agents.append({
            **_summary("nbs_utility", nbs[:, i]), **_summary("ks_utility", ks[:, i]),
            **_summary("nbs_share", shares[:, i]),
            "exploitation_index": (disc[i] - reference_utility) / reference_utility
            if complete and reference_utility > 0 else math.nan,
            "exploitation_index_low": float(index[:, i].min()), "exploitation_index_high": float(index[:, i].max()),
        })
    return game, agents


def _summary(name: str, points: np.ndarray) -> dict:
    """``name`` (the mean over the optimal points), ``name_low`` and ``name_high`` (NaN propagates)."""
    return {name: float(points.mean()), f"{name}_low": float(points.min()), f"{name}_high": float(points.max())}
