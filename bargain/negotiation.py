"""One propose-and-vote game (items or a treaty): the phases of every round, played by agents.

Public discussion is sequential (each speaker sees what was said before it); the independent calls
of thinking, proposals, votes and reflection run concurrently.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np

from bargain.agents.llm import LLMAgent, Move
from bargain.agents.parsing import (
    parse_proposal,
    parse_text,
    parse_treaty,
    parse_votes,
    proposal_schema,
    treaty_schema,
    votes_schema,
)
from bargain.game import (
    Preferences,
    accepted_proposals,
    choose_proposal,
    discounted,
    rule_text,
    speaking_order,
    utilities,
)
from bargain.game import treaty
from bargain.game.treaty import TreatyPreferences
from bargain.perturb import Wording
from bargain.prompts import render


async def together(*calls):
    """Run a phase's independent calls concurrently; if one fails, cancel the rest (no stray spending)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def number(x: float) -> int | float:
    """A value for a prompt's JSON: a whole number as an int, else rounded to 4 decimals."""
    return int(round(x)) if abs(x - round(x)) < 1e-9 else round(float(x), 4)


DEFAULT_ITEMS = ("Apple", "Jewel", "Stone", "Quill", "Pencil", "Book", "Hat", "Camera")


def item_names(n_items: int, custom: Sequence[str] | None = None) -> list[str]:
    if custom:
        return list(custom)
    return [DEFAULT_ITEMS[k] if k < len(DEFAULT_ITEMS) else f"Item_{k + 1}" for k in range(n_items)]


@dataclass(frozen=True)
class VoteTable:
    """What every agent knows about a propose-and-vote game except what is proposed: agents and rules.

    A subclass adds what is negotiated and how a proposal is parsed, shown, scored and recorded
    (under ``proposal_key`` in the round and outcome records).
    """

    agents: list[str]
    max_rounds: int
    gamma: float
    vote_rule: str
    vote_threshold: str  # an exact fraction such as "2/3"
    speaking_order: str
    discussion: bool
    discussion_turns: int
    thinking: bool
    reflection: bool
    reveal_votes: bool
    wording: Wording = field(default=Wording(), kw_only=True)  # how values are shown (bargain/perturb.py)

    proposal_key: ClassVar[str]

    def rule_fields(self, seat: int) -> dict[str, Any]:
        """The system prompt's fields about the seat, the phases, the vote rule, the discount and the unit."""
        n = len(self.agents)
        phases = [p for p, on in (("public discussion", self.discussion), ("private thinking", self.thinking)) if on]
        phases += ["proposals", "private votes"] + (["private reflection"] if self.reflection else [])
        return {
            "name": self.agents[seat],
            "n_agents": n,
            "agent_list": ", ".join(self.agents),
            "max_rounds": self.max_rounds,
            "phase_list": ", ".join(phases),
            "vote_rule_text": rule_text(self.vote_rule, n, self.vote_threshold),
            "gamma": self.gamma,
            "round2_pct": round(100 * self.gamma, 2),
            "round3_pct": round(100 * self.gamma**2, 2),
            "unit": self.wording.unit,
            "total": self.wording.amount(100),
        }


@dataclass(frozen=True)
class Table(VoteTable):
    """The item game: every proposal gives each item to one agent (recorded as ``owners``)."""

    items: list[str]

    proposal_key = "owners"

    def describe(self, owners: Sequence[int]) -> str:
        """A proposal as shown to the agents (JSON)."""
        return json.dumps({a: [self.items[k] for k, o in enumerate(owners) if o == i] for i, a in enumerate(self.agents)})

    def utilities(self, prefs: Preferences, owners: Sequence[int]) -> np.ndarray:
        return utilities(prefs, owners)

    def parse_proposal(self, reply: str) -> tuple[int, ...]:
        return parse_proposal(reply, self.agents, self.items)

    def proposal_schema(self) -> dict[str, Any]:
        return proposal_schema(self.agents, self.items)

    def proposal_instruction(self, header: dict[str, int]) -> str:
        return render("proposal", item_list=", ".join(self.items), agent_list=", ".join(self.agents), **header)

    def system_prompt(self, prefs: Preferences, seat: int) -> str:
        """Rules plus this seat's private valuations."""
        scale, rules = self.wording.scale, self.wording.rules
        if prefs.kind == "vector":
            values = {item: number(v * scale) for item, v in zip(self.items, prefs.values[seat])}
        else:
            values = {
                item: {agent: round(float(prefs.values[seat, k, j]) * scale, 2) for j, agent in enumerate(self.agents)}
                for k, item in enumerate(self.items)
            }
        fields = self.rule_fields(seat)
        return render(
            rules + "system",
            n_items=len(self.items),
            item_list=", ".join(self.items),
            valuations_text=render(rules + f"valuations_{prefs.kind}", values_json=json.dumps(values), **fields),
            **fields,
        )


@dataclass(frozen=True)
class TreatyTable(VoteTable):
    """The treaty game: every proposal sets each issue to a whole percentage (recorded as ``terms``)."""

    issues: list[str]

    proposal_key = "terms"

    def describe(self, terms: Sequence[int]) -> str:
        return json.dumps(dict(zip(self.issues, (int(t) for t in terms))))

    def utilities(self, prefs: TreatyPreferences, terms: Sequence[int]) -> np.ndarray:
        return treaty.utilities(prefs, terms)

    def parse_proposal(self, reply: str) -> tuple[int, ...]:
        return parse_treaty(reply, self.issues)

    def proposal_schema(self) -> dict[str, Any]:
        return treaty_schema(self.issues)

    def proposal_instruction(self, header: dict[str, int]) -> str:
        return render("treaty/proposal", issue_list=", ".join(self.issues), **header)

    def system_prompt(self, prefs: TreatyPreferences, seat: int) -> str:
        """Rules plus this seat's private ideal settings and weights."""
        scale = self.wording.scale
        private = {issue: {"ideal": int(p), "weight": number(w * scale)}
                   for issue, p, w in zip(self.issues, prefs.positions[seat], prefs.weights[seat])}
        return render(self.wording.rules + "treaty/system", n_issues=len(self.issues), issue_list=", ".join(self.issues),
                      preferences_json=json.dumps(private), example_weight=self.wording.amount(30),
                      example_points=self.wording.amount(27), **self.rule_fields(seat))


async def open_round(table: Any, agents: list[LLMAgent], r: int, rng: np.random.Generator,
                     rounds: list[dict[str, Any]], fields: dict[str, Any], thinking: str = "thinking",
                     ) -> tuple[dict[str, Any], list[int], dict[str, int]]:
    """A round's opening: speaking order, public discussion (speakers in turn, each seeing what was said
    before it) and private thinking (template ``thinking``). Returns the round's record, order and header.

    The record, with the game's own round ``fields`` at their empty values, is appended to ``rounds``
    before anyone speaks: a round cut short by a failure is kept with every key and what it got to.
    """
    order = speaking_order(table.speaking_order, len(agents), r, rng)
    record: dict[str, Any] = {"round": r, "speaking_order": order, "discussion": [], **fields}
    rounds.append(record)
    header = {"round": r, "max_rounds": table.max_rounds}
    if table.discussion:
        for _turn in range(table.discussion_turns):
            for spoken, seat in enumerate(order):
                move = await agents[seat].act("discussion", r, render("discussion", spoken=spoken, **header), parse_text)
                record["discussion"].append({"seat": seat, "text": move.raw, "valid": move.error is None})
                for other in agents:
                    if other.seat != seat:
                        other.observe(f"[Round {r}] {table.agents[seat]} says: {move.raw.strip()}")
    if table.thinking:
        await together(*(agents[s].act("thinking", r, render(thinking, **header), parse_text) for s in order))
    return record, order, header


async def play(
    table: VoteTable, prefs: Any, agents: list[LLMAgent], rng: np.random.Generator,
    rounds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Play rounds until a proposal passes or the rounds run out; returns ``rounds`` and ``outcome``.

    Each round is appended to ``rounds`` (when given) as soon as it starts and filled in as it is
    played, so a game that fails part-way leaves the caller every round played up to the failure.
    """
    n = len(agents)
    rounds = [] if rounds is None else rounds
    for r in range(1, table.max_rounds + 1):
        record, order, header = await open_round(
            table, agents, r, rng, rounds, {"proposals": [], "votes": [], "accepted": [], "chosen": None})
        key, instruction = table.proposal_key, table.proposal_instruction(header)
        schema = table.proposal_schema()
        moves = await together(*(agents[s].act("proposal", r, instruction, table.parse_proposal, schema) for s in order))
        record["proposals"] = [
            {"seat": s, key: None if m.value is None else list(m.value), "valid": m.error is None, "error": m.error}
            for s, m in zip(order, moves)
        ]
        proposals = [(p["seat"], tuple(p[key])) for p in record["proposals"] if p["valid"]]
        if proposals:
            ballots = await together(*(_vote(table, prefs, agents[s], r, proposals) for s in range(n)))
            record["votes"] = [
                {"seat": s, "votes": None if b.value is None else ["accept" if a else "reject" for a in b.value],
                 "valid": b.error is None, "error": b.error}
                for s, b in enumerate(ballots)
            ]
            matrix = [[None] * len(proposals) if b.value is None else list(b.value) for b in ballots]
            record["accepted"] = accepted_proposals(matrix, table.vote_rule, table.vote_threshold)
            record["chosen"] = choose_proposal(rng, record["accepted"])
            if table.reveal_votes:
                summary = _vote_summary(table, proposals, matrix, record["chosen"])
                for agent in agents:
                    agent.observe(f"[Round {r}] {summary}")
        if record["chosen"] is not None:
            proposer, chosen = proposals[record["chosen"]]
            raw = table.utilities(prefs, chosen)
            return {
                "rounds": rounds,
                "outcome": {
                    "agreement": True,
                    "round": r,
                    "proposer_seat": proposer,
                    key: list(chosen),
                    "raw_utility": [float(u) for u in raw],
                    "discounted_utility": [float(u) for u in discounted(raw, table.gamma, r)],
                },
            }
        if table.reflection and r < table.max_rounds:  # nothing is left to learn for after the last round
            await together(*(agents[s].act("reflection", r, render("reflection", **header), parse_text) for s in order))
    zeros = [0.0] * n
    return {
        "rounds": rounds,
        "outcome": {"agreement": False, "round": None, "proposer_seat": None, table.proposal_key: None,
                    "raw_utility": zeros, "discounted_utility": zeros},
    }


async def _vote(table: VoteTable, prefs: Any, agent: LLMAgent, r: int, proposals: list[tuple[int, tuple]]) -> Move:
    """Ask one agent for its private votes."""
    instruction = vote_instruction(table, prefs, agent.seat, r, proposals)
    return await agent.act("vote", r, instruction, partial(parse_votes, n_proposals=len(proposals)),
                           votes_schema(len(proposals)))


def vote_instruction(table: VoteTable, prefs: Any, seat: int, r: int, proposals: list[tuple[int, tuple]]) -> str:
    """The vote prompt of one seat, reminding it what each proposal is worth to it."""
    lines = []
    scale, unit = table.wording.scale, table.wording.unit
    for i, (proposer, proposal) in enumerate(proposals, start=1):
        worth = float(table.utilities(prefs, proposal)[seat]) * scale
        lines.append(
            f"Proposal {i} by {table.agents[proposer]}: {table.describe(proposal)} "
            f"(worth {worth:g} {unit} to you, {worth * table.gamma ** (r - 1):.4g} after this round's discount)"
        )
    return render(
        "vote",
        round=r,
        max_rounds=table.max_rounds,
        proposals_text="\n".join(lines),
        discount_pct=round(100 * table.gamma ** (r - 1), 2),
        vote_keys=", ".join(f'"{i}": "accept" or "reject"' for i in range(1, len(proposals) + 1)),
    )


def _vote_summary(
    table: VoteTable, proposals: list[tuple[int, tuple]], matrix: list[list[bool | None]], chosen: int | None
) -> str:
    """The public announcement of how everyone voted on each proposal."""
    parts = []
    for i, (proposer, _owners) in enumerate(proposals):
        cast = ", ".join(
            f"{table.agents[s]} {'invalid' if v[i] is None else 'accept' if v[i] else 'reject'}" for s, v in enumerate(matrix)
        )
        parts.append(f"Proposal {i + 1} by {table.agents[proposer]}: {cast}.")
    verdict = "No proposal passed." if chosen is None else f"Proposal {chosen + 1} passed."
    return "Votes: " + " ".join(parts) + " " + verdict
