"""Offline negotiators for the treaty game, with the same styles (skill ladder and reference
strategies) as the item game's.

They read the prompts a model reads. A player estimates the other delegations' ideals from their
proposals and stated positions, and their weights from the issues they name first (how much it
trusts that evidence is its ``modelling``); it then offers the treaty that the least satisfied other
delegation likes best while keeping its own aspiration (a linear program), and accepts any treaty
worth at least that aspiration. Aspirations fall from ``opening`` to ``floor`` over the rounds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from bargain.game.treaty import TreatyPreferences, most_acceptable, nash_bargaining
from bargain.sim.observe import History, max_rounds_of, read_history
from bargain.sim.strategies import STRATEGIES, aspiration


@dataclass(kw_only=True)
class TreatySituation(History):
    """What one delegation knows: the issues, its ideals and weights, and the public history."""

    issues: list[str]
    positions: np.ndarray  # (K,) own ideal settings
    weights: np.ndarray  # (K,) own weights, summing to 100


def read(messages: list[dict]) -> TreatySituation:
    """Recover a delegation's situation from the messages it was sent."""
    system = messages[0]["content"]
    me = re.search(r"You are (.+?), one of", system).group(1)
    agents = re.search(r"Delegations: (.*)\.\n", system).group(1).split(", ")
    issues = re.search(r"Issues: (.*)\.\n", system).group(1).split(", ")
    private = json.loads(system.strip().splitlines()[-1])
    sit = TreatySituation(
        me=agents.index(me), agents=agents, issues=issues,
        max_rounds=max_rounds_of(messages),
        positions=np.array([private[k]["ideal"] for k in issues], dtype=float),
        weights=np.array([private[k]["weight"] for k in issues], dtype=float),
    )
    read_history(sit, messages, lambda terms: tuple(int(terms[k]) for k in issues))
    return sit


def stated_ideals(text: str, issues: list[str]) -> list[tuple[int, float]]:
    """(issue, setting) pairs a message states, as "<issue> ... 35%", in the order they appear."""
    found = []
    for k, issue in enumerate(issues):
        match = re.search(re.escape(issue) + r"[^0-9%]{0,40}?(\d{1,3})\s*%", text, re.IGNORECASE)
        if match:
            found.append((match.start(), k, float(match.group(1))))
    return [(k, setting) for _start, k, setting in sorted(found)]


def estimate(sit: TreatySituation, modelling: float) -> TreatyPreferences:
    """Estimated ideals and weights of every delegation (own row exact), shrunk towards a blank prior."""
    n, K = sit.n, len(sit.issues)
    seen = np.zeros((n, K))
    count = np.zeros((n, K))
    priority = np.zeros((n, K))
    for _round, proposer, terms in sit.proposals:
        seen[proposer] += terms
        count[proposer] += 1
    for _round, speaker, text in sit.messages:
        for rank, (k, setting) in enumerate(stated_ideals(text, sit.issues)):
            seen[speaker, k] += 3 * setting  # a stated ideal counts as three proposals
            count[speaker, k] += 3
            priority[speaker, k] += 1.0 / (rank + 1)
    evidence = np.where(count > 0, seen / np.maximum(count, 1), 50.0)
    positions = np.clip((1 - modelling) * 50.0 + modelling * evidence, 0, 100)
    weights = 1.0 + 2.0 * modelling * priority
    weights = 100 * weights / weights.sum(axis=1, keepdims=True)
    positions[sit.me], weights[sit.me] = sit.positions, sit.weights
    return TreatyPreferences(positions, weights, rho=0.0, theta=0.0)


class TreatyPlayer:
    """One decision of one offline delegation, from the conversation it was sent."""

    def __init__(self, strategy: str, sit: TreatySituation, rng: np.random.Generator, temperature: float) -> None:
        self.name, self.style, self.sit, self.rng = strategy, STRATEGIES[strategy], sit, rng
        self.noise = self.style.noise * max(temperature, 0.0 if strategy != "random" else 1.0)
        self.estimate = estimate(sit, self.style.modelling)

    def utility(self, terms) -> float:
        return float((self.sit.weights * (100.0 - np.abs(self.sit.positions - np.asarray(terms, dtype=float)))).sum() / 100)

    def target(self) -> float:
        """Points this delegation insists on this round."""
        if self.name == "fair":
            return 0.95 * float(nash_bargaining(self.estimate)[1][self.sit.me])
        return aspiration(self.style, self.sit) * 100.0

    def propose(self) -> tuple[int, ...]:
        K = len(self.sit.issues)
        if self.name == "random":
            return tuple(int(t) for t in self.rng.integers(0, 101, K))
        if self.name == "fair":
            terms = nash_bargaining(self.estimate)[0]
        else:
            guess = self.estimate
            if self.noise:
                shaken = guess.positions + self.rng.normal(0.0, 25.0 * self.noise, guess.positions.shape)
                shaken[self.sit.me] = self.sit.positions
                guess = TreatyPreferences(np.clip(shaken, 0, 100), guess.weights, rho=0.0, theta=0.0)
            terms = most_acceptable(guess, self.sit.me, self.target())
        # Round towards its own ideal, so rounding never costs this delegation points.
        own = self.sit.positions
        return tuple(int(np.ceil(t - 1e-9)) if p > t else int(np.floor(t + 1e-9)) for t, p in zip(terms, own))

    def accepts(self, terms: tuple[int, ...]) -> bool:
        if self.name == "random":
            return bool(self.rng.random() < 0.5)
        worth = self.utility(terms)
        if worth <= 0:
            return False
        if self.sit.round >= self.sit.max_rounds and self.name != "greedy":
            return True  # a treaty worth anything beats no treaty
        return worth >= self.target() - 1e-6

    def reply(self) -> str:
        sit = self.sit
        if sit.phase == "discussion":
            if self.style.reveal:
                top = np.argsort(-sit.weights, kind="stable")[:2]
                wants = " and ".join(f"{sit.issues[k]} (I want about {int(sit.positions[k])}%)" for k in top)
                return f"My priorities are {wants}. I can be flexible on the other issues."
            return "I am looking for a treaty every delegation can accept. Which issues matter most to you, and where?"
        if sit.phase == "thinking":
            return f"Round {sit.round}: I want at least {self.target():.0f} points this round."
        if sit.phase == "reflection":
            return "No treaty yet. I will watch what the others propose and adjust."
        if sit.phase == "proposal":
            terms = dict(zip(sit.issues, self.propose()))
            return f"Here is my proposal.\n```json\n{json.dumps({'treaty': terms})}\n```"
        votes = {str(i): "accept" if self.accepts(terms) else "reject" for i, (_by, terms) in enumerate(sit.current, 1)}
        return f"My votes:\n{json.dumps({'votes': votes})}"


def respond(model: str, messages: list[dict], rng: np.random.Generator, temperature: float) -> str:
    """The reply of offline delegation ``model`` (a key of STRATEGIES) to a conversation."""
    return TreatyPlayer(model, read(messages), rng, temperature).reply()
