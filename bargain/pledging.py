"""One co-funding game under the talk–pledge–revise protocol.

Each round: public discussion (sequential), private thinking, pledges (every participant submits a
joint funding plan, one row of amounts per participant, and its own row is its pledge), public
feedback (the total pledged to each project and which projects reached their cost; who pledged what
stays private) and private reflection. Pledges are revisable: only the last round's count, i.e.
round ``max_rounds``, or the first round in which every plan is the same (within half a cent),
which ends the game at once. Nothing is discounted. A participant whose plan is still invalid after
the re-asks keeps its standing pledge (nothing in round 1), and the move is recorded as invalid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from bargain.agents.llm import LLMAgent
from bargain.agents.parsing import parse_funding_plan, parse_text, plan_schema
from bargain.game.cofunding import CofundingPreferences, funded, utilities
from bargain.negotiation import number, open_round, together
from bargain.perturb import Wording
from bargain.prompts import render

SAME_PLAN = 0.005  # plans agree when every amount is within half a cent


@dataclass(frozen=True)
class FundingTable:
    """What every agent knows about a co-funding game besides costs and budgets (drawn per game)."""

    agents: list[str]
    projects: list[str]
    max_rounds: int
    speaking_order: str
    discussion: bool
    discussion_turns: int
    thinking: bool
    reflection: bool
    wording: Wording = field(default=Wording(), kw_only=True)  # values, costs and budgets are shown scaled

    def system_prompt(self, prefs: CofundingPreferences, seat: int) -> str:
        """Rules, costs and budgets, plus this seat's private values."""
        phases = [p for p, on in (("public discussion", self.discussion), ("private thinking", self.thinking)) if on]
        phases += ["pledges", "feedback"] + (["private reflection"] if self.reflection else [])
        scale = self.wording.scale
        return render(
            self.wording.rules + "cofunding/system",
            name=self.agents[seat],
            n_agents=len(self.agents),
            n_projects=len(self.projects),
            agent_list=", ".join(self.agents),
            project_list=", ".join(self.projects),
            costs_json=json.dumps(dict(zip(self.projects, (number(c * scale) for c in prefs.costs)))),
            budgets_json=json.dumps(dict(zip(self.agents, (float(b) * scale for b in prefs.budgets)))),
            max_rounds=self.max_rounds,
            phase_list=", ".join(phases),
            values_json=json.dumps(dict(zip(self.projects, (number(v * scale) for v in prefs.values[seat])))),
            unit=self.wording.unit,
            total=self.wording.amount(100),
        )

    def parse_plan(self, prefs: CofundingPreferences):
        """The parser of a plan reply (in the amounts shown), returning the plan in the game's own units."""
        scale = self.wording.scale
        parse = partial(parse_funding_plan, agent_names=self.agents, project_names=self.projects,
                        budgets=[float(b) * scale for b in prefs.budgets])
        if scale == 1:
            return parse
        return lambda reply: tuple(tuple(x / scale for x in row) for row in parse(reply))

    def pledge_instruction(self, prefs: CofundingPreferences, header: dict[str, int], own: np.ndarray,
                           totals: np.ndarray | None) -> str:
        """The pledge prompt, reminding a seat of its own pledge and everyone's totals last round."""
        if totals is None:
            status = "Nobody has pledged yet."
        else:
            s = self.wording.scale
            lines = [f"- {name}: {mine * s:.2f}, {total * s:.2f} of {number(cost * s)} ({_verdict(total, cost, s)})"
                     for name, mine, total, cost in zip(self.projects, own, totals, prefs.costs)]
            status = "Last round, per project: your pledge, everyone's total, the cost:\n" + "\n".join(lines)
        return render("cofunding/pledge", status_text=status, agent_list=", ".join(self.agents),
                      project_list=", ".join(self.projects), **header)

    def feedback(self, prefs: CofundingPreferences, r: int, totals: np.ndarray, same: bool) -> str:
        """The public announcement after the pledges of round r."""
        s = self.wording.scale
        parts = [f"{name} {total * s:.2f} of {number(cost * s)} ({_verdict(total, cost, s)})"
                 for name, total, cost in zip(self.projects, totals, prefs.costs)]
        if same:
            verdict = "Every plan was the same, so the game ends with these pledges."
        elif r == self.max_rounds:
            verdict = "This was the last round, so these pledges are final."
        else:
            verdict = "The plans differed, so the game goes on."
        return f"[Round {r}] Pledge totals: {', '.join(parts)}. {verdict}"


def _verdict(total: float, cost: float, scale: float) -> str:
    return "funded" if total >= cost - 1e-6 else f"short by {(cost - total) * scale:.2f}"


async def play(table: FundingTable, prefs: CofundingPreferences, agents: list[LLMAgent], rng: np.random.Generator,
               rounds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Play rounds until the plans agree or the rounds run out; returns ``rounds`` and ``outcome``.

    Each round is appended to ``rounds`` (when given) as soon as it starts and filled in as it is
    played, so a game that fails part-way leaves the caller every round played up to the failure.
    """
    rounds = [] if rounds is None else rounds
    n = len(agents)
    parse, schema = table.parse_plan(prefs), plan_schema(table.agents, table.projects)
    pledges = np.zeros(prefs.values.shape)  # the standing pledges: everyone's own row of its last valid plan
    totals = None
    for r in range(1, table.max_rounds + 1):
        record, order, header = await open_round(
            table, agents, r, rng, rounds, {"pledges": [], "totals": None, "funded": [], "same_plan": False},
            thinking="cofunding/thinking")
        moves = await together(*(
            agents[s].act("pledge", r, table.pledge_instruction(prefs, header, pledges[s], totals), parse, schema)
            for s in order
        ))
        plans = {s: np.array(m.value) for s, m in zip(order, moves) if m.value is not None}
        for s, plan in plans.items():
            pledges[s] = plan[s]
        record["pledges"] = [
            {"seat": s, "plan": None if m.value is None else [list(row) for row in m.value],
             "contributions": pledges[s].tolist(), "valid": m.error is None, "error": m.error}
            for s, m in zip(order, moves)
        ]
        totals = pledges.sum(axis=0)
        same = len(plans) == n and all(np.abs(plan - plans[order[0]]).max() <= SAME_PLAN for plan in plans.values())
        record.update(totals=totals.tolist(), funded=np.flatnonzero(funded(prefs, pledges)).tolist(), same_plan=same)
        announcement = table.feedback(prefs, r, totals, same)
        for agent in agents:
            agent.observe(announcement)
        if same or r == table.max_rounds:
            break
        if table.reflection:
            await together(*(agents[s].act("reflection", r, render("cofunding/reflection", **header), parse_text)
                             for s in order))
    raw = [float(u) for u in utilities(prefs, pledges)]
    return {
        "rounds": rounds,
        "outcome": {
            "agreement": bool(same),
            "round": r,
            "contributions": pledges.tolist(),
            "funded": record["funded"],
            "raw_utility": raw,
            "discounted_utility": raw,  # the co-funding game has no discount
        },
    }
