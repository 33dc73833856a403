"""One negotiation game: the phases of every round, played by agents under the game's rules.

Public discussion is sequential (each speaker sees what was said before it); the independent calls
of thinking, proposals, votes and reflection run concurrently.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from bargain.agents.llm import ContextLimitExceeded, LLMAgent, Move
from bargain.agents.parsing import parse_proposal, parse_text, parse_votes
from bargain.game import (
    Preferences,
    accepted_proposals,
    choose_proposal,
    discounted,
    speaking_order,
    utilities,
)
from bargain.prompts import render

async def together(*calls):
    """Run a phase's independent calls concurrently; if one fails, cancel the rest (no stray spending)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


DEFAULT_ITEMS = ("Apple", "Jewel", "Stone", "Quill", "Pencil", "Book", "Hat", "Camera")


def item_names(n_items: int, custom: Sequence[str] | None = None) -> list[str]:
    if custom:
        return list(custom)
    return [DEFAULT_ITEMS[k] if k < len(DEFAULT_ITEMS) else f"Item_{k + 1}" for k in range(n_items)]


@dataclass(frozen=True)
class Table:
    """What every agent knows about the game (everything but the others' valuations)."""

    items: list[str]
    agents: list[str]
    max_rounds: int
    gamma: float
    vote_rule: str
    vote_threshold: float
    speaking_order: str
    discussion: bool
    discussion_turns: int
    thinking: bool
    reflection: bool
    reveal_votes: bool

    def owners_json(self, owners: Sequence[int]) -> str:
        return json.dumps({a: [self.items[k] for k, o in enumerate(owners) if o == i] for i, a in enumerate(self.agents)})


def system_prompt(table: Table, prefs: Preferences, seat: int) -> str:
    """Rules plus this seat's private valuations."""
    n = len(table.agents)
    if prefs.kind == "vector":
        values = {item: int(v) for item, v in zip(table.items, prefs.values[seat])}
    else:
        values = {
            item: {agent: round(float(prefs.values[seat, k, j]), 2) for j, agent in enumerate(table.agents)}
            for k, item in enumerate(table.items)
        }
    phases = [p for p, on in (("public discussion", table.discussion), ("private thinking", table.thinking)) if on]
    phases += ["proposals", "private votes"] + (["private reflection"] if table.reflection else [])
    rule = {
        "unanimity": "every agent accepts it",
        "supermajority": f"at least {int(np.ceil(table.vote_threshold * n - 1e-9))} of the {n} agents accept it",
        "majority": f"more than half of the {n} agents accept it",
    }[table.vote_rule]
    return render(
        "system",
        name=table.agents[seat],
        n_agents=n,
        n_items=len(table.items),
        agent_list=", ".join(table.agents),
        item_list=", ".join(table.items),
        max_rounds=table.max_rounds,
        phase_list=", ".join(phases),
        vote_rule_text=rule,
        gamma=table.gamma,
        round2_pct=round(100 * table.gamma, 2),
        round3_pct=round(100 * table.gamma**2, 2),
        valuations_text=render(f"valuations_{prefs.kind}", values_json=json.dumps(values)),
    )


async def play(table: Table, prefs: Preferences, agents: list[LLMAgent], rng: np.random.Generator) -> dict[str, Any]:
    """Play rounds until a proposal passes or the rounds run out; returns ``rounds`` and ``outcome``.

    A game that runs out of context window ends with ContextLimitExceeded carrying the rounds played.
    """
    rounds: list[dict[str, Any]] = []
    try:
        return await _play(table, prefs, agents, rng, rounds)
    except ContextLimitExceeded as exc:
        exc.rounds = rounds
        raise


async def _play(
    table: Table, prefs: Preferences, agents: list[LLMAgent], rng: np.random.Generator, rounds: list[dict[str, Any]]
) -> dict[str, Any]:
    n = len(agents)
    for r in range(1, table.max_rounds + 1):
        order = speaking_order(table.speaking_order, n, r, rng)
        record: dict[str, Any] = {"round": r, "speaking_order": order, "discussion": []}
        rounds.append(record)
        header = {"round": r, "max_rounds": table.max_rounds}

        if table.discussion:
            for _turn in range(table.discussion_turns):
                for spoken, seat in enumerate(order):
                    move = await agents[seat].act(
                        "discussion", r, render("discussion", spoken=spoken, **header), parse_text
                    )
                    record["discussion"].append({"seat": seat, "text": move.raw, "valid": move.error is None})
                    for other in agents:
                        if other.seat != seat:
                            other.observe(f"[Round {r}] {table.agents[seat]} says: {move.raw.strip()}")
        if table.thinking:
            await together(*(agents[s].act("thinking", r, render("thinking", **header), parse_text) for s in order))

        parse = partial(parse_proposal, agent_names=table.agents, item_names=table.items)
        instruction = render("proposal", item_list=", ".join(table.items), agent_list=", ".join(table.agents), **header)
        moves = await together(*(agents[s].act("proposal", r, instruction, parse) for s in order))
        record["proposals"] = [
            {"seat": s, "owners": None if m.value is None else list(m.value), "valid": m.error is None, "error": m.error}
            for s, m in zip(order, moves)
        ]
        proposals = [(p["seat"], tuple(p["owners"])) for p in record["proposals"] if p["valid"]]
        record["votes"], record["accepted"], record["chosen"] = [], [], None
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
            proposer, owners = proposals[record["chosen"]]
            raw = utilities(prefs, owners)
            return {
                "rounds": rounds,
                "outcome": {
                    "agreement": True,
                    "round": r,
                    "proposer_seat": proposer,
                    "owners": list(owners),
                    "raw_utility": [float(u) for u in raw],
                    "discounted_utility": [float(u) for u in discounted(raw, table.gamma, r)],
                },
            }
        if table.reflection and r < table.max_rounds:  # nothing is left to learn for after the last round
            await together(*(agents[s].act("reflection", r, render("reflection", **header), parse_text) for s in order))
    zeros = [0.0] * n
    return {
        "rounds": rounds,
        "outcome": {"agreement": False, "round": None, "proposer_seat": None, "owners": None,
                    "raw_utility": zeros, "discounted_utility": zeros},
    }


async def _vote(
    table: Table, prefs: Preferences, agent: LLMAgent, r: int, proposals: list[tuple[int, tuple[int, ...]]]
) -> Move:
    """Ask one agent for its private votes, reminding it what each proposal is worth to it."""
    lines = []
    for i, (proposer, owners) in enumerate(proposals, start=1):
        worth = float(utilities(prefs, owners)[agent.seat])
        lines.append(
            f"Proposal {i} by {table.agents[proposer]}: {table.owners_json(owners)} "
            f"(worth {worth:g} points to you, {worth * table.gamma ** (r - 1):.4g} after this round's discount)"
        )
    instruction = render(
        "vote",
        round=r,
        max_rounds=table.max_rounds,
        proposals_text="\n".join(lines),
        discount_pct=round(100 * table.gamma ** (r - 1), 2),
        vote_keys=", ".join(f'"{i}": "accept" or "reject"' for i in range(1, len(proposals) + 1)),
    )
    return await agent.act("vote", r, instruction, partial(parse_votes, n_proposals=len(proposals)))


def _vote_summary(
    table: Table, proposals: list[tuple[int, tuple[int, ...]]], matrix: list[list[bool | None]], chosen: int | None
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
