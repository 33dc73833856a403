"""Reference-solution metrics of treaty and co-funding games, computed exactly from the stored preferences.

They fill the same columns as the item game's (:mod:`analysis.metrics`) so every table and fit works
for every game: ``max_welfare``, ``efficiency`` (sum of discounted utilities / maximum welfare),
``pareto_optimal``, ``gini``, and per seat ``nbs_utility``, ``nbs_share`` and
``exploitation_index`` ((u_i - u_i^NBS) / u_i^NBS, disagreement point 0). Kalai-Smorodinsky and EF1
are item-game notions and stay empty. Each game adds the metrics its specification names:

- treaty: ``efficiency_loss`` (SW* - SW), ``nbs_distance`` (||u - u^NBS||), ``ks_fairness``
  (min_i u_i / max_i u_i; F for two agents);
- co-funding: ``provision_rate`` (share of the welfare-optimal projects funded, averaged over tied
  optima), ``coordination_failure`` (share of the projects worth their cost that went unfunded
  although the unspent budget could have paid for them),
  ``core_deficit`` / ``in_core`` (the largest shortfall of a coalition against what it could fund
  alone), ``nash_equilibrium`` / ``deviation_gain`` (whether some agent could gain by changing only
  its own pledge), ``lindahl_distance`` (Frobenius distance of the pledges to the nearest Lindahl
  cost split of a welfare optimum) and ``lindahl_feasible``; per seat ``lindahl_utility``,
  ``lindahl_exploitation_index`` ((u - u^L) / |u^L|), ``free_rider_index`` (mean over funded
  projects it paid for of its value share over its cost share) and ``adaptation`` (mean change of
  its pledge between rounds over its budget).
"""

from __future__ import annotations

import math

import numpy as np

from bargain.game import cofunding, treaty
from bargain.store import canonical_json

_TOL = 1e-9


def treaty_preferences(record: dict) -> treaty.TreatyPreferences:
    p, parameters = record["preferences"], record["game"]["parameters"]
    return treaty.TreatyPreferences(np.asarray(p["positions"]), np.asarray(p["weights"]),
                                    float(parameters["rho"]), float(parameters["theta"]))


def cofunding_preferences(record: dict) -> cofunding.CofundingPreferences:
    p, parameters = record["preferences"], record["game"]["parameters"]
    return cofunding.CofundingPreferences(np.asarray(p["values"]), np.asarray(p["costs"]), np.asarray(p["budgets"]),
                                          float(parameters["alpha"]), float(parameters["sigma"]))


def _key(record: dict) -> tuple:
    return record["game"]["name"], canonical_json(record["preferences"])


def _common(record: dict, max_welfare: float, nbs: np.ndarray) -> tuple[dict, list[dict], np.ndarray, bool]:
    """The columns every game shares, and the discounted utilities and completeness they rest on."""
    outcome = record.get("outcome") or {}
    complete = record["status"] == "complete"
    n = len(nbs)
    disc = np.asarray(outcome.get("discounted_utility") or np.zeros(n), dtype=float)
    nbs_total = nbs.sum()
    game = {
        "max_welfare": max_welfare, "nbs_welfare": float(nbs_total), "ks_welfare": math.nan,
        "efficiency": disc.sum() / max_welfare if complete and max_welfare > 0 else math.nan,
        "ef1": None,
        "gini": _gini(disc) if complete and (disc >= 0).all() and disc.sum() > 0 else math.nan,
    }
    agents = [{
        "nbs_utility": float(nbs[i]), "ks_utility": math.nan,
        "nbs_share": float(nbs[i] / nbs_total) if nbs_total > 0 else math.nan,
        "exploitation_index": (disc[i] - nbs[i]) / nbs[i] if complete and nbs[i] > 0 else math.nan,
    } for i in range(n)]
    return game, agents, disc, complete


def _gini(u: np.ndarray) -> float:
    return float(np.abs(u[:, None] - u[None, :]).sum() / (2 * u.size * u.sum()))


def treaty_metrics(record: dict, cache: dict) -> tuple[dict, list[dict]]:
    """Game-level and per-seat metrics of one treaty record."""
    prefs = treaty_preferences(record)
    key = _key(record)
    if key not in cache:
        cache[key] = (treaty.max_welfare(prefs)[1], treaty.nash_bargaining(prefs)[1])
    max_welfare, nbs = cache[key]
    game, agents, disc, complete = _common(record, max_welfare, nbs)
    outcome = record.get("outcome") or {}
    agreement = complete and bool(outcome.get("agreement"))
    game.update({
        "pareto_optimal": (treaty.is_pareto_optimal(prefs, outcome["terms"]) if agreement else False)
        if complete else None,
        "efficiency_loss": max_welfare - disc.sum() if complete else math.nan,
        "nbs_distance": float(np.linalg.norm(disc - nbs)) if complete else math.nan,
        "ks_fairness": float(disc.min() / disc.max()) if agreement and disc.max() > 0 else math.nan,
    })
    return game, agents


def cofunding_metrics(record: dict, cache: dict) -> tuple[dict, list[dict]]:
    """Game-level and per-seat metrics of one co-funding record."""
    prefs = cofunding_preferences(record)
    key = _key(record)
    if key not in cache:
        optima, welfare = cofunding.welfare_optima(prefs)
        cache[key] = (optima, welfare, cofunding.nash_bargaining(prefs)[1], cofunding.lindahl_utilities(prefs))
    optima, max_welfare, nbs, lindahl_u = cache[key]
    game, agents, disc, complete = _common(record, max_welfare, nbs)
    n, m = prefs.values.shape
    nan_agent = {"lindahl_utility": math.nan, "lindahl_exploitation_index": math.nan, "free_rider_index": math.nan,
                 "deviation_gain": math.nan, "adaptation": math.nan}
    game.update({"pareto_optimal": None, "provision_rate": math.nan, "coordination_failure": math.nan,
                 "core_deficit": math.nan, "in_core": None, "nash_equilibrium": None, "deviation_gain": math.nan,
                 "lindahl_distance": math.nan,
                 "lindahl_feasible": bool(all((cofunding.lindahl(prefs, s).sum(axis=1) <= prefs.budgets + 1e-6).all()
                                              for s in optima))})
    for i, row in enumerate(agents):
        row.update(nan_agent, lindahl_utility=float(lindahl_u[i]))
    if not complete:
        return game, agents
    x = np.asarray(record["outcome"]["contributions"], dtype=float)
    chosen = cofunding.funded(prefs, x)
    # A coordination failure: a project worth its cost left unfunded although the budget left over could pay it.
    worth = prefs.values.sum(axis=0) > prefs.costs
    missed = worth & ~chosen & (prefs.costs <= prefs.budgets.sum() - prefs.costs[chosen].sum() + 1e-6)
    gains = cofunding.best_response_gains(prefs, x)
    deficit = cofunding.core_deficit(prefs, disc)
    game.update({
        "pareto_optimal": _pareto(prefs, disc),
        "provision_rate": float(np.mean([(chosen & s).sum() / s.sum() for s in optima])) if optima[0].any() else math.nan,
        "coordination_failure": float(missed.sum() / worth.sum()) if worth.any() else math.nan,
        "core_deficit": deficit, "in_core": bool(deficit <= 1e-6),
        "nash_equilibrium": bool(gains.max() <= 1e-6), "deviation_gain": float(gains.max()),
        "lindahl_distance": float(min(np.linalg.norm(x - cofunding.lindahl(prefs, s)) for s in optima)),
    })
    share_of_value = prefs.values / np.maximum(prefs.values.sum(axis=0), _TOL)
    paid = x * chosen
    share_of_cost = paid / np.maximum(paid.sum(axis=0), _TOL)
    pledges = _pledges_by_round(record, n, m)
    for i, row in enumerate(agents):
        mine = chosen & (paid[i] > 0)
        row.update({
            "lindahl_exploitation_index": (disc[i] - lindahl_u[i]) / abs(lindahl_u[i]) if abs(lindahl_u[i]) > _TOL
            else math.nan,
            "free_rider_index": float(np.mean(share_of_value[i, mine] / share_of_cost[i, mine])) if mine.any() else math.nan,
            "deviation_gain": float(gains[i]),
            "adaptation": float(np.abs(np.diff(pledges[:, i], axis=0)).sum(axis=1).mean() / prefs.budgets[i])
            if len(pledges) > 1 else math.nan,
        })
    return game, agents


def _pledges_by_round(record: dict, n: int, m: int) -> np.ndarray:
    """(rounds, n, M): everyone's standing pledge after each round."""
    out = []
    for r in record.get("rounds") or []:
        x = np.zeros((n, m))
        for entry in r.get("pledges", []):
            x[entry["seat"]] = entry["contributions"]
        out.append(x)
    return np.array(out).reshape(-1, n, m)


def _pareto(prefs: cofunding.CofundingPreferences, u: np.ndarray) -> bool:
    """Whether no funded set and split make someone better off and nobody worse off than ``u``.

    A funded set S can give every agent at least u_i iff each agent values S at >= u_i and the most
    they can pay while keeping u_i, min(B_i, V_i(S) - u_i), covers C(S); someone gains strictly iff
    there is money left over or some agent's payment is capped by its budget below V_i(S) - u_i.
    """
    sets = cofunding.all_sets(prefs.n_projects)
    worth = sets @ prefs.values.T.astype(float)  # (2^M, n)
    spare = worth - u
    can_pay = np.minimum(prefs.budgets, spare)
    cost = sets @ prefs.costs
    keeps = (spare >= -1e-6).all(axis=1) & (can_pay.sum(axis=1) >= cost - 1e-6)
    strict = (can_pay.sum(axis=1) > cost + 1e-6) | (prefs.budgets < spare - 1e-6).any(axis=1)
    return not bool((keeps & strict).any())
