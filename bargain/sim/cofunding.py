"""Offline participants for the co-funding game, with the same styles (skill ladder and reference
strategies) as the item game's.

They read the prompts a model reads. A participant estimates the others' project values from what
they say and the plans they announce (trusting that evidence as much as its ``modelling``). Its own plan funds the set of projects with the most estimated surplus that it can
still profit from, splits each cost in proportion to the estimated values (Lindahl shares) and pays
itself at most what keeps its aspiration; aspirations fall from ``opening`` to ``floor`` over the
rounds. It announces its plan in the discussion, and in the pledge phase submits the first plan
announced this round that gives it at least its aspiration (so agreeing participants converge),
else its own. Unlike in the item game, the strong player also says what it values most: in a
public-goods game that helps the others find packages it gains from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from bargain.game.cofunding import CofundingPreferences, all_sets, lindahl
from bargain.sim.observe import History, max_rounds_of, mentioned_items, read_history
from bargain.sim.strategies import STRATEGIES, aspiration

_PLAN = re.compile(r"plan: (\{.*\})")


@dataclass(kw_only=True)
class FundingSituation(History):
    """What one participant knows: projects, costs, budgets, its values and the public history."""

    projects: list[str]
    costs: np.ndarray  # (M,)
    budgets: np.ndarray  # (n,)
    values: np.ndarray  # (M,) own values
    announced: list[tuple[int, np.ndarray]] = field(default_factory=list)  # others' plans this round: (speaker, plan)
    mine: np.ndarray | None = None  # the plan it announced itself this round, if it can see its own reply


def read(messages: list[dict]) -> FundingSituation:
    """Recover a participant's situation from the messages it was sent."""
    system = messages[0]["content"]
    me = re.search(r"You are (.+?), one of", system).group(1)
    agents = re.search(r"Participants: (.*)\.\n", system).group(1).split(", ")
    projects = re.search(r"Projects: (.*)\.\n", system).group(1).split(", ")
    costs = json.loads(re.search(r"Project costs: (.*)\n", system).group(1))
    budgets = json.loads(re.search(r"Budgets: (.*)\n", system).group(1))
    values = json.loads(system.strip().splitlines()[-1])
    sit = FundingSituation(
        me=agents.index(me), agents=agents, projects=projects,
        max_rounds=max_rounds_of(messages),
        costs=np.array([costs[p] for p in projects], dtype=float),
        budgets=np.array([budgets[a] for a in agents], dtype=float),
        values=np.array([values[p] for p in projects], dtype=float),
    )
    read_history(sit, messages, tuple)
    for round_, speaker, text in sit.messages:
        plan = announced_plan(text, agents, projects)
        if round_ == sit.round and plan is not None and (plan.sum(axis=1) <= sit.budgets + 1e-6).all():
            sit.announced.append((speaker, plan))
    own_turn = f"## Round {sit.round}/{sit.max_rounds} · public discussion"
    for asked, replied in zip(messages, messages[1:]):  # its own message follows this round's discussion prompt
        if asked["role"] == "user" and own_turn in asked["content"] and replied["role"] == "assistant":
            sit.mine = announced_plan(replied["content"], agents, projects)
    return sit


def announced_plan(text: str, agents: list[str], projects: list[str]) -> np.ndarray | None:
    """The (n, M) plan a message announces as "plan: {...}", if it has a readable one."""
    found = _PLAN.search(text)
    try:
        plan = json.loads(found.group(1)) if found else None
        return None if plan is None else np.array([[float(plan.get(a, {}).get(p, 0.0)) for p in projects] for a in agents])
    except (ValueError, TypeError, AttributeError):
        return None


def _to_cents(plan: np.ndarray, costs: np.ndarray, budgets: np.ndarray) -> np.ndarray | None:
    """A plan rounded to cents, funding what it funded; None if a row does not fit its budget."""
    if (plan.sum(axis=1) > budgets + 1e-9).any():
        return None
    cents = np.floor(plan * 100 + 1e-6)
    room = np.floor(budgets * 100 + 1e-6) - cents.sum(axis=1)
    for j in np.flatnonzero(plan.sum(axis=0) >= costs - 1e-6):  # round up again where a cost fell short
        for _ in range(int(round(costs[j] * 100 - cents[:, j].sum()))):
            payer = int(np.argmax(np.where(plan[:, j] > 0, room, -np.inf)))
            if room[payer] < 1:
                return None
            cents[payer, j] += 1
            room[payer] -= 1
    return cents / 100


def _spread(pays: np.ndarray, chosen: np.ndarray, costs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """An (n, M) plan in which participant i pays pays[i] in total and the chosen projects their costs.

    Each participant in turn covers what is still missing on the projects it values most.
    """
    left = np.where(chosen, costs, 0.0).astype(float)
    plan = np.zeros((len(pays), len(costs)))
    for i in np.argsort(-pays, kind="stable"):
        budget = pays[i]
        for j in np.argsort(-values[i], kind="stable"):
            amount = min(budget, left[j])
            plan[i, j] += amount
            left[j] -= amount
            budget -= amount
    return plan


class FundingPlayer:
    """One decision of one offline participant, from the conversation it was sent."""

    def __init__(self, strategy: str, sit: FundingSituation, rng: np.random.Generator, temperature: float) -> None:
        self.name, self.style, self.sit, self.rng = strategy, STRATEGIES[strategy], sit, rng
        self.noise = self.style.noise * max(temperature, 0.0 if strategy != "random" else 1.0)
        self.sets = all_sets(len(sit.projects))
        self.affordable = self.sets @ sit.costs <= sit.budgets.sum() + 1e-6
        self.estimate = self.estimate_values()

    def estimate_values(self) -> np.ndarray:
        """Estimated (n, M) values of every participant (own row exact), each summing to 100."""
        sit = self.sit
        evidence = np.zeros((sit.n, len(sit.projects)))
        for _round, speaker, text in sit.messages:
            plan = announced_plan(text, sit.agents, sit.projects)
            if plan is not None:  # what a participant offers to pay itself shows what it values
                evidence[speaker] += plan[speaker] / max(sit.budgets[speaker], 1.0)
                text = text[: _PLAN.search(text).start()]
            for rank, j in enumerate(mentioned_items(text, sit.projects)[:3]):
                evidence[speaker, j] += 0.6 / (rank + 1)
        estimate = np.clip(1.0 + self.style.modelling * evidence, 0.1, None)
        if self.noise:
            estimate *= np.exp(self.rng.normal(0.0, self.noise, estimate.shape))
        estimate = 100 * estimate / estimate.sum(axis=1, keepdims=True)
        estimate[sit.me] = sit.values
        return estimate

    def utility(self, plan: np.ndarray) -> float:
        """Own points if every participant pledged its row of ``plan``."""
        funded = plan.sum(axis=0) >= self.sit.costs - 1e-6
        return float(((self.sit.values - plan[self.sit.me]) * funded).sum())

    def least_payments(self) -> tuple[np.ndarray, np.ndarray]:
        """Per funded set: the least this participant must pay if the others pay up to their estimated
        value (within their budgets), and whether that fits its budget."""
        sit = self.sit
        worth = self.sets @ self.estimate.T  # (2^M, n) estimated value of each set to each participant
        others = np.delete(np.minimum(worth, sit.budgets), sit.me, axis=1).sum(axis=1)
        need = np.maximum(self.sets @ sit.costs - others, 0.0)
        return need, self.affordable & (need <= sit.budgets[sit.me] + 1e-9)

    def target(self) -> float:
        """Points this participant insists on this round."""
        if self.name == "fair":
            return 0.95 * self.utility(self.own_plan())
        need, feasible = self.least_payments()
        best = float(np.max(np.where(feasible, self.sets @ self.sit.values - need, 0.0)))
        return aspiration(self.style, self.sit) * best

    def own_plan(self) -> np.ndarray:
        """Its own plan: see the module docstring (``fair``: plain Lindahl shares of the estimated optimum)."""
        sit = self.sit
        if self.name == "random":
            share = self.rng.dirichlet(np.ones(len(sit.projects)), size=sit.n) * self.rng.random((sit.n, 1))
            return np.floor(share * sit.budgets[:, None] * 100) / 100
        prefs = CofundingPreferences(self.estimate, sit.costs, sit.budgets, 0.0, 1.0)
        welfare = self.sets @ (self.estimate.sum(axis=0) - sit.costs)
        if self.name == "fair":
            order = np.argsort(-np.where(self.affordable, welfare, -np.inf), kind="stable")
            plans = (_to_cents(lindahl(prefs, self.sets[r]), sit.costs, sit.budgets) for r in order if welfare[r] > 0)
            return next((plan for plan in plans if plan is not None), np.zeros((sit.n, len(sit.projects))))
        target, (need, feasible) = self.target(), self.least_payments()
        mine = self.sets @ sit.values
        ok = feasible & (mine - need >= target - 1e-9) & (mine > 0)
        if not ok.any():
            return np.zeros((sit.n, len(sit.projects)))
        r = int(np.argmax(np.where(ok, welfare + 1e-6 * mine, -np.inf)))  # the most estimated surplus it can live with
        lindahl_share = lindahl(prefs, self.sets[r])[sit.me].sum()
        pays = np.zeros(sit.n)
        pays[sit.me] = np.clip(min(mine[r] - target, lindahl_share), need[r], sit.budgets[sit.me])
        # The others cover the rest in proportion to their estimated value, none beyond its value or budget.
        others = np.array([i for i in range(sit.n) if i != sit.me])
        cap = np.minimum(self.sets[r] @ self.estimate[others].T, sit.budgets[others])
        rest = self.sets[r] @ sit.costs - pays[sit.me]
        pays[others] = rest * cap / cap.sum() if cap.sum() > 0 else 0.0
        plan = _to_cents(_spread(pays, self.sets[r], sit.costs, self.estimate), sit.costs, sit.budgets)
        return plan if plan is not None else np.zeros((sit.n, len(sit.projects)))

    def choose(self) -> np.ndarray:
        """The plan to submit: the first the others announced this round that meets its aspiration, else
        the one it announced itself (so whoever adopted it matches), else its own."""
        if self.name != "random":
            last = self.sit.round >= self.sit.max_rounds and self.name != "greedy"
            target = self.target()
            for _speaker, plan in self.sit.announced:
                worth = self.utility(plan)
                if worth >= target - 0.5 or (last and worth > 0):
                    return plan
        return self.sit.mine if self.sit.mine is not None else self.own_plan()
    def plan_json(self, plan: np.ndarray) -> str:
        sit = self.sit
        return json.dumps({a: {p: round(float(x), 2) for p, x in zip(sit.projects, row) if x > 0}
                           for a, row in zip(sit.agents, plan)})

    def reply(self) -> str:
        sit = self.sit
        if sit.phase == "discussion":
            plan = self.choose()
            if self.style.reveal:  # telling helps coordinate on public goods
                favourites = " and ".join(sit.projects[j] for j in np.argsort(-sit.values, kind="stable")[:2])
                return f"I value {favourites} most. My plan: {self.plan_json(plan)}"
            return f"Here is a plan I could support. My plan: {self.plan_json(plan)}"
        if sit.phase == "thinking":
            return f"Round {sit.round}: I want at least {self.target():.0f} points from the funded projects."
        if sit.phase == "reflection":
            return "The plans differed. I will look at the totals and revise my plan."
        plan = self.choose()
        return f"My funding plan.\n```json\n{json.dumps({'plan': json.loads(self.plan_json(plan))})}\n```"


def respond(model: str, messages: list[dict], rng: np.random.Generator, temperature: float) -> str:
    """The reply of offline participant ``model`` (a key of STRATEGIES) to a conversation."""
    return FundingPlayer(model, read(messages), rng, temperature).reply()
