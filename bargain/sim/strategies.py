"""Negotiation strategies for the offline players.

The skill ladder differs in three real capabilities, not in hard-coded outcomes:
- opponent modelling: how much an agent learns the others' valuations from their proposals, votes
  and messages (weak: none, strong: full), which lets it offer trades the others actually accept;
- concession timing: how high it opens and how late it concedes towards its floor, given the deadline;
- discipline: how much noise there is in its choices and whether it gives away what it values.
Every player accepts anything worth more than nothing in the last round (no deal pays 0), except
``greedy``, which is the classic stubborn baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from bargain.game import all_allocations
from bargain.sim.observe import Situation, mentioned_items, read


@dataclass(frozen=True)
class Style:
    opening: float  # aspiration in round 1, as a fraction of the most this agent could get
    floor: float  # aspiration reached in the last round
    beta: float  # concession curve progress**beta: > 1 concedes late (Boulware), < 1 early (Conceder)
    modelling: float  # weight on evidence about the others' valuations (0 = uniform prior)
    noise: float  # randomness of choices, scaled by the sampling temperature
    reveal: bool  # states its favourite items in public
    reads_concessions: bool = False  # takes the best offer once the others concede too slowly to beat the discount


STRATEGIES: dict[str, Style] = {
    "weak": Style(opening=0.65, floor=0.2, beta=0.5, modelling=0.0, noise=0.6, reveal=True),
    "base": Style(opening=0.8, floor=0.3, beta=1.5, modelling=0.5, noise=0.3, reveal=True),
    "strong": Style(opening=0.92, floor=0.4, beta=3.0, modelling=1.0, noise=0.05, reveal=False, reads_concessions=True),
    "boulware": Style(opening=1.0, floor=0.0, beta=5.0, modelling=0.0, noise=0.0, reveal=False),
    "conceder": Style(opening=1.0, floor=0.0, beta=0.5, modelling=0.0, noise=0.0, reveal=True),
    "greedy": Style(opening=1.0, floor=0.9, beta=1.0, modelling=0.0, noise=0.0, reveal=True),
    "fair": Style(opening=0.0, floor=0.0, beta=1.0, modelling=1.0, noise=0.0, reveal=True),
    "random": Style(opening=0.0, floor=0.0, beta=1.0, modelling=0.0, noise=1.0, reveal=False),
}


def estimate_others(sit: Situation, modelling: float) -> np.ndarray:
    """Estimated (n, m) valuations of every agent (own row exact for vector games), summing to 100."""
    evidence = np.zeros((sit.n, sit.m))
    for _round, proposer, owners in sit.proposals:
        kept = np.array(owners) == proposer
        evidence[proposer] += np.where(kept, 1.0, -0.5)
    for _round, speaker, text in sit.messages:
        for rank, k in enumerate(mentioned_items(text, sit.items)[:3]):
            evidence[speaker, k] += 0.6 / (rank + 1)
    for _round, owners, voter, accept in sit.votes:
        if accept:
            evidence[voter] += 0.3 * (np.array(owners) == voter)
    estimate = np.clip(1.0 + modelling * evidence, 0.1, None)
    estimate = 100 * estimate / estimate.sum(axis=1, keepdims=True)
    estimate[sit.me] = sit.values[:, sit.me]
    return estimate


def aspiration(style: Style, sit: Situation) -> float:
    return style.opening - (style.opening - style.floor) * sit.progress**style.beta


class Player:
    """One decision of one offline player, from the conversation it was sent."""

    def __init__(self, strategy: str, sit: Situation, rng: np.random.Generator, temperature: float) -> None:
        self.name = strategy
        self.style = STRATEGIES[strategy]
        self.sit = sit
        self.rng = rng
        self.noise = self.style.noise * max(temperature, 0.0 if strategy != "random" else 1.0)
        self.table = all_allocations(sit.n, sit.m)
        self.mine = sit.values[np.arange(sit.m), self.table].sum(axis=1)  # own utility of every allocation
        self.best = float(self.mine.max())
        estimate = estimate_others(sit, self.style.modelling)
        self.theirs = np.stack([(self.table == j) @ estimate[j] for j in range(sit.n)], axis=1)  # estimated utilities

    def utility(self, owners: tuple[int, ...]) -> float:
        return float(sum(self.sit.values[k, j] for k, j in enumerate(owners)))

    def target(self) -> float:
        """Points this player insists on this round."""
        if self.name == "fair":
            return 0.95 * self.mine[self._nash()]
        return aspiration(self.style, self.sit) * self.best

    def _nash(self) -> int:
        """Index of the Nash bargaining allocation under the estimated valuations."""
        gains = self.theirs.copy()
        gains[:, self.sit.me] = self.mine
        return int(np.argmax(np.prod(np.clip(gains, 1e-9, None), axis=1)))

    def propose(self) -> tuple[int, ...]:
        if self.name == "random":
            return tuple(int(j) for j in self.rng.integers(0, self.sit.n, self.sit.m))
        if self.name == "fair":
            return tuple(int(j) for j in self.table[self._nash()])
        others = [j for j in range(self.sit.n) if j != self.sit.me]
        acceptability = (self.theirs[:, others] / self.theirs[:, others].max(axis=0)).min(axis=1)
        score = acceptability + 1e-3 * self.mine / max(self.best, 1e-9)
        score = score + self.noise * self.rng.normal(0.0, 0.15, len(score))
        score[self.mine < self.target() - 1e-9] = -np.inf
        return tuple(int(j) for j in self.table[int(np.argmax(score))])

    def offers_by_round(self) -> list[float]:
        """The most valuable offer the others made to this player, per past round, oldest first."""
        best: dict[int, float] = {}
        for round_, proposer, owners in self.sit.proposals:
            if proposer != self.sit.me:
                best[round_] = max(best.get(round_, 0.0), self.utility(owners))
        return [best[r] for r in sorted(best)]

    def worth_waiting(self, worth: float) -> bool:
        """Whether the others' recent pace of concession beats the discount on waiting another round."""
        offers = self.offers_by_round()
        if len(offers) < 2 or worth < max(offers) - 1e-9:
            return True
        pace = max(offers[-1] - offers[-2], 0.0)
        return self.sit.gamma * (worth + pace) > worth

    def accepts(self, owners: tuple[int, ...]) -> bool:
        if self.name == "random":
            return bool(self.rng.random() < 0.5)
        worth = self.utility(owners)
        if worth <= 0:
            return False  # a worthless share is no better than no deal
        if self.sit.round >= self.sit.max_rounds and self.name != "greedy":
            return True
        if self.style.reads_concessions and worth >= self.mine[self._nash()] and not self.worth_waiting(worth):
            return True  # at least its Nash share, and holding out would cost more than it gains
        return worth >= self.target() - 1e-9

    def favourites(self) -> list[str]:
        order = np.argsort(-self.sit.values[:, self.sit.me], kind="stable")
        return [self.sit.items[k] for k in order[:2]]

    def reply(self) -> str:
        sit = self.sit
        if sit.phase == "discussion":
            if self.style.reveal:
                return f"I care most about {' and '.join(self.favourites())}. I am open to a split that gives you what you value."
            return "I am looking for a deal that works for everyone. Which items matter most to you?"
        if sit.phase == "thinking":
            return f"Round {sit.round}: I want at least {self.target():.0f} points this round."
        if sit.phase == "reflection":
            return "No deal yet. I will watch what the others keep for themselves and adjust."
        if sit.phase == "proposal":
            owners = self.propose()
            allocation = {a: [sit.items[k] for k, o in enumerate(owners) if o == i] for i, a in enumerate(sit.agents)}
            return f"Here is my proposal.\n```json\n{json.dumps({'allocation': allocation})}\n```"
        votes = {str(i): "accept" if self.accepts(owners) else "reject" for i, (_by, owners) in enumerate(sit.current, 1)}
        return f"My votes:\n{json.dumps({'votes': votes})}"


def respond(model: str, messages: list[dict], seed: int | None = None, temperature: float = 0.0) -> str:
    """The reply of offline player ``model`` (a key of STRATEGIES) to a conversation."""
    if model not in STRATEGIES:
        raise ValueError(f"unknown offline model sim/{model}; choose one of: {', '.join(f'sim/{s}' for s in STRATEGIES)}")
    rng = np.random.default_rng(seed)
    return Player(model, read(messages), rng, temperature).reply()
