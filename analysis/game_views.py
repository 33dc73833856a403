"""What the report's transcript viewer shows of a game that is not the item game.

A game describes itself here as text the page lays out as it is: the columns of its private
preferences and a row of cells per seat (and public rows such as costs), its facts (preferences,
parameters with their measured values, rules), per round what each proposal or pledge says and is
worth, and the outcome. The item game is drawn by the page itself (``analysis/web/report.js``).
"""

from __future__ import annotations

import numpy as np

from analysis.game_metrics import treaty_preferences
from bargain.game import treaty


def game_view(record: dict) -> dict | None:
    """The viewer's description of one record, or None for the item game."""
    name = record["game"].get("name", "items")
    return {"treaty": treaty_view, "cofunding": cofunding_view}[name](record) if name != "items" else None


def _measured(values: dict) -> str:
    return ", ".join(f"{pair}: {'-' if v is None else f'{v:.3f}'}" for pair, v in values.items())


def _rules(game: dict, protocol: str) -> str:
    return (f"{game['max_rounds']} rounds, {protocol}, {game['speaking_order']} speaking order, "
            f"memory {game['memory']}")


def _shares(utility: list[float]) -> list[float | None]:
    """Each seat's share of the gains over the disagreement point (losses count as none)."""
    gains = np.maximum(np.asarray(utility, dtype=float), 0.0)
    return [float(g / gains.sum()) if gains.sum() > 0 else None for g in gains]


def treaty_view(record: dict) -> dict:
    game, prefs, outcome = record["game"], record["preferences"], record.get("outcome") or {}
    issues, names = game["issues"], game["agent_names"]
    parameters = game["parameters"]
    rules = treaty_preferences(record)

    def describe(terms: list[int]) -> str:
        return ", ".join(f"{issue} {setting}" for issue, setting in zip(issues, terms))

    rounds = [{"proposals": [{"text": describe(p["terms"]) if p["valid"] else None,
                              "worth": treaty.utilities(rules, p["terms"]).tolist() if p["valid"] else None}
                             for p in r.get("proposals", [])]} for r in record.get("rounds") or []]
    cells = None
    if outcome.get("agreement"):
        title = (f"Treaty in round {outcome['round']}, proposed by {names[outcome['proposer_seat']]}: "
                 f"{describe(outcome['terms'])}")
        points = rules.weights * (1 - np.abs(rules.positions - np.asarray(outcome["terms"])) / 100)
        cells = [", ".join(f"{issue} {x:.1f}" for issue, x in zip(issues, row)) for row in points]
    else:
        title = f"No treaty in {len(record.get('rounds') or [])} rounds: everyone gets 0"
    return {
        "columns": issues,
        "private": [[f"{p}% · weight {w}" for p, w in zip(ideals, weights)]
                    for ideals, weights in zip(prefs["positions"], prefs["weights"])],
        "public": [],
        "facts": [
            ["private values", "each delegation's ideal setting of each issue and its weight (weights sum to 100)"],
            ["parameters", f"rho = {parameters['rho']:g} (ideal correlation; measured {_measured(prefs['correlation'])}), "
                           f"theta = {parameters['theta']:g} (weight cosine; measured {_measured(prefs['cosine'])})"],
            ["rules", _rules(game, f"γ = {game['gamma']}, {game['vote_rule']} vote")],
        ],
        "rounds": rounds,
        "outcome": {"title": title, "label": "points per issue", "cells": cells or ["—"] * len(names),
                    "share": _shares(outcome.get("discounted_utility") or []) if outcome.get("agreement") else None},
    }


def cofunding_view(record: dict) -> dict:
    game, prefs, outcome = record["game"], record["preferences"], record.get("outcome") or {}
    projects, names = game["projects"], game["agent_names"]
    parameters = game["parameters"]

    def amounts(row: list[float], only: set[int] | None = None) -> str:
        return ", ".join(f"{projects[j]} {x:.2f}" for j, x in enumerate(row) if x > 0 and (only is None or j in only)) or "nothing"

    rounds = []
    for r in record.get("rounds") or []:
        pledges = [{"text": " · ".join(f"{names[s]}: {amounts(row)}" for s, row in enumerate(p["plan"]))
                    if p["valid"] else f"invalid: {p['error']}; its pledge stands at {amounts(p['contributions'])}"}
                   for p in r.get("pledges", [])]
        totals = ", ".join(f"{project} {total:.2f} of {cost}" + (" (funded)" if j in r["funded"] else "")
                           for j, (project, total, cost) in enumerate(zip(projects, r["totals"], prefs["costs"])))
        ending = "every plan was the same: the game ends" if r["same_plan"] else "the plans differed"
        rounds.append({"pledges": pledges, "totals": f"Totals: {totals}; {ending}."})
    view = {
        "columns": [*projects, "budget"],
        "private": [[*(str(v) for v in values), f"{budget:g}"] for values, budget in zip(prefs["values"], prefs["budgets"])],
        "public": [["cost", [*(str(c) for c in prefs["costs"]), ""]]],
        "facts": [
            ["private values", "each participant's value of each project if funded (sums to 100); costs and budgets are public"],
            ["parameters", f"alpha = {parameters['alpha']:g} (value cosine; measured {_measured(prefs['cosine'])}), "
                           f"sigma = {parameters['sigma']:g} (budget / cost; measured {prefs['scarcity']:.4f})"],
            ["rules", _rules(game, "talk–pledge–revise, no votes, no discount")],
        ],
        "rounds": rounds,
        "outcome": None,
    }
    if "contributions" in outcome:
        funded = set(outcome["funded"])
        ending = "every plan agreed" if outcome["agreement"] else "the plans still differed"
        chosen = [projects[j] for j in sorted(funded)]
        view["outcome"] = {
            "title": f"After round {outcome['round']} ({ending}), funded: {', '.join(chosen) or 'nothing'}",
            "label": "pledged to funded projects",
            "cells": [amounts(row, funded) for row in outcome["contributions"]],
            "share": _shares(outcome["discounted_utility"]),
        }
    return view

