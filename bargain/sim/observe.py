"""Read a simulated negotiator's situation back out of the conversation it was sent.

The offline negotiators see exactly the messages a real model sees; this module recovers the
facts those messages state (rules, own valuations, round, proposals, votes, public messages).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

_HEADER = re.compile(r"## Round (\d+)/(\d+) · (public discussion|private thinking|proposal|pledge|private vote|private reflection)")
# Agent names may hold spaces (env.agent_names), never commas or colons.
_PROPOSAL = re.compile(r"Proposal (\d+) by ([^:,]+?): (\{.*?\}) \(worth")
_SAYS = re.compile(r"\[Round (\d+)\] ([^:,]+?) says: (.*)")
_VOTES = re.compile(r"Proposal (\d+) by ([^:,]+?): ((?:[^:,]+? (?:accept|reject|invalid)(?:, )?)+)\.")
PHASES = {
    "public discussion": "discussion",
    "private thinking": "thinking",
    "proposal": "proposal",
    "pledge": "pledge",
    "private vote": "vote",
    "private reflection": "reflection",
}


@dataclass(kw_only=True)
class History:
    """What any negotiator knows besides its game's rules and private values: the public history so far."""

    me: int
    agents: list[str]
    max_rounds: int
    round: int = 1
    phase: str = "discussion"
    proposals: list[tuple[int, int, tuple]] = field(default_factory=list)  # (round, proposer, proposal)
    votes: list[tuple[int, tuple, int, bool]] = field(default_factory=list)  # (round, proposal, voter, accept)
    messages: list[tuple[int, int, str]] = field(default_factory=list)  # (round, speaker, text)
    current: list[tuple[int, tuple]] = field(default_factory=list)  # proposals in this vote prompt

    @property
    def n(self) -> int:
        return len(self.agents)

    @property
    def progress(self) -> float:
        """0 in the first round, 1 in the last."""
        return (self.round - 1) / max(self.max_rounds - 1, 1)


@dataclass(kw_only=True)
class Situation(History):
    """What one item-game negotiator knows: rules, its valuations, and the public history so far."""

    items: list[str]
    gamma: float
    values: np.ndarray  # (m, n): points this agent gets when item k goes to agent j

    @property
    def m(self) -> int:
        return len(self.items)


def max_rounds_of(messages: list[dict]) -> int:
    """The game's round limit, from the round headers of the instructions (the rules' wording may vary)."""
    return int(next(m for m in map(_HEADER.search, (m["content"] for m in messages[1:] if m["role"] == "user")) if m).group(2))


def _owners(allocation: dict, agents: list[str], items: list[str]) -> tuple[int, ...]:
    owners = [0] * len(items)
    for agent, names in allocation.items():
        for name in names:
            owners[items.index(name)] = agents.index(agent)
    return tuple(owners)


def read(messages: list[dict]) -> Situation:
    """Recover the situation from the system prompt and every instruction received so far."""
    system = messages[0]["content"]
    me_name = re.search(r"You are (.+?), one of", system).group(1)
    agents = re.search(r"Participants: (.*)\.\n", system).group(1).split(", ")
    items = re.search(r"Items: (.*)\.\n", system).group(1).split(", ")
    max_rounds = max_rounds_of(messages)
    gamma = float(re.search(r"multiplied by ([\d.]+)\^", system).group(1))
    raw = json.loads(system.strip().splitlines()[-1])
    me = agents.index(me_name)
    values = np.zeros((len(items), len(agents)))
    for k, item in enumerate(items):
        if isinstance(raw[item], dict):
            values[k] = [raw[item][a] for a in agents]
        else:
            values[k, me] = raw[item]
    sit = Situation(me=me, agents=agents, items=items, max_rounds=max_rounds, gamma=gamma, values=values)
    read_history(sit, messages, lambda proposal: _owners(proposal, agents, items))
    return sit


def read_history(sit: History, messages: list[dict], decode: Callable[[dict], tuple]) -> list[str]:
    """Fill in the round, phase, public messages, proposals and votes; returns the instructions received.

    ``decode`` turns a proposal's JSON, as shown in a vote prompt, into the game's proposal tuple.
    """
    agents = sit.agents
    prompts = [m["content"] for m in messages[1:] if m["role"] == "user"]
    for text in prompts:
        header = _HEADER.search(text)
        if header:
            sit.round, sit.phase = int(header.group(1)), PHASES[header.group(3)]
        for line in text.splitlines():
            said = _SAYS.match(line)
            if said:
                sit.messages.append((int(said.group(1)), agents.index(said.group(2)), said.group(3)))
            proposal = _PROPOSAL.match(line)
            if proposal:
                sit.proposals.append((sit.round, agents.index(proposal.group(2)), decode(json.loads(proposal.group(3)))))
        if "[Round" in text and "Votes:" in text:
            voted_round = int(re.search(r"\[Round (\d+)\] Votes:", text).group(1))
            listed = [p for p in sit.proposals if p[0] == voted_round]
            for number, _by, cast in _VOTES.findall(text):
                if int(number) > len(listed):  # that round's proposals were left out of a compacted prompt
                    continue
                owners = listed[int(number) - 1][2]
                for entry in cast.split(", "):
                    voter, verdict = entry.rsplit(" ", 1)
                    if verdict != "invalid":
                        sit.votes.append((voted_round, owners, agents.index(voter), verdict == "accept"))
    if sit.phase == "vote":
        vote_prompt = next(t for t in reversed(prompts) if _HEADER.search(t))
        sit.current = [(agents.index(b), decode(json.loads(j))) for _n, b, j in _PROPOSAL.findall(vote_prompt)]
    return prompts


def mentioned_items(text: str, items: list[str]) -> list[int]:
    """Items named in a public message, in the order they appear."""
    lowered = text.lower()
    found = [(lowered.find(name.lower()), k) for k, name in enumerate(items) if name.lower() in lowered]
    return [k for _pos, k in sorted(found)]

