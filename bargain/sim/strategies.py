"""Negotiation strategies for the offline players.

Reference strategies are classic time-dependent tactics (Faratin, Sierra & Jennings 1998): an
aspiration that falls from ``opening`` to ``floor`` of the most the agent could get, along
progress**beta (``boulware`` concedes late, ``conceder`` early, ``greedy`` hardly at all), plus
``fair`` (proposes the Nash bargaining allocation under its estimate of the others' valuations)
and ``random``. Every reference except ``greedy`` accepts anything worth more than nothing in the
last round, since no deal pays 0.

The skill ladder ``weak`` < ``base`` < ``strong`` plays one policy with different capabilities,
not hard-coded outcomes. It models each other agent's acceptance threshold from what it is sent
(never from the agent's name or hidden values) and best-responds to it:

- the threshold: an agent's demand is the estimated worth to it of its own latest proposal; it is
  projected forward along the agent's pace of concession (its demand's fall over the last
  ``memory`` rounds, pooled with a prior that it concedes ``anticipation`` of its demand over the
  game), never below what the agent turned down, and in the last round it falls, as far as the
  player expects (``endgame``), to a token: others fold at the deadline unless, late in the game,
  their demands have hardly moved (a wall); agents whose votes and demands contradict any threshold
  (each contradiction counts, ``modelling`` makes fewer enough) are offered a token;
- proposing: the allocation best for the player that every other agent is predicted to accept this
  round (threshold plus ``margin``; before the last round, less ``shading``: strong tests how far
  below its demand an agent really goes, since an offer turned down then costs a round, not the
  deal), if it is worth at least waiting; else a probe that offers each other agent, as far as
  ``empathy`` goes, what the player would take in its place (the same share of its total as
  waiting is worth to the player); else the deal planned for the best later round;
- hardball: while every other agent has named nothing it values, there are no stated interests to
  meet halfway, so the player asks ``anchor`` of its best in round 1 (weak: no anchor, it probes)
  and, with ``holdout`` (strong), everything until late in the game, taking only an offer worth
  its ask a round later: a coherent wall takes no mid-game offer anyway, and an agent that votes
  regardless of the offer takes everything as often as anything else (keeping everything then
  passes half the time, worth about 91 of 100 points at the default discount);
- accepting, i.e. playing the discount as well as the split: an offer is taken if it is worth what
  waiting is worth (the best later round's predicted deal, discounted), and turned down when the
  player's own proposal, worth more, is predicted to pass (believed with ``confidence``), since
  taking both leaves a fair draw between them;
- opponent modelling and communication: how much it learns the others' valuations from their
  proposals, votes and messages (``modelling``; weak: nothing), and how many favourite items it
  names (weak none, base one, strong three);
- the deadline and discipline: how often it forgets that the last round is the last (weak 30%,
  base 10%), and how much noise there is in its estimates and in what it thinks waiting is worth.

No player enumerates allocations: each decision is a greedy search over items and agents, so games
with 10 agents and 12 items are as quick to play as small ones (``bench/sim_speed.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from bargain.sim.observe import Situation, mentioned_items, read

_EPS = 1e-9
_LATE = 0.7  # ladder: from this far into the game on, only concessions actually seen count
_TOKEN = 0.05  # ladder: the least share of its total another agent is offered
_SLOWDOWN = 0.8  # ladder: each projected drop of the others' demands is this fraction of the one before


@dataclass(frozen=True)
class Style:
    opening: float  # proposals' aspiration in round 1, as a fraction of the most this agent could get
    floor: float  # the aspiration reached in the last round
    beta: float  # concession curve progress**beta: > 1 concedes late (Boulware), < 1 early (Conceder)
    modelling: float  # weight on evidence about the others' valuations (0 = uniform prior)
    noise: float  # randomness of judgements, scaled by the sampling temperature
    reveal: int  # how many of its favourite items it names in public
    ladder: bool = False  # plays the ladder's policy (below) instead of a fixed time-dependent tactic
    memory: int = 0  # ladder: rounds of the others' concessions averaged into their pace (0: assumes they stand still)
    anticipation: float = 0.0  # ladder: prior share of its demand each other agent concedes over the game
    margin: float = 0.0  # ladder: offers each other agent this share of its total above its projected threshold
    shading: float = 0.0  # ladder: before the last round, offers this share of its total less (tests its threshold)
    endgame: float = 0.0  # ladder: how far it expects others that have come down to take any positive offer in the last round
    empathy: float = 0.0  # ladder: how far it expects the others to take, like itself, what beats waiting for them
    confidence: float = 0.0  # ladder: how far it trusts its prediction that its own proposal passes when voting
    slip: float = 0.0  # ladder: chance of playing the last round as if another were to come
    anchor: float = 0.0  # ladder: its round-1 ask, as a share of its best, from others that named nothing they value
    holdout: bool = False  # ladder: asks such others for everything from round 2 until late in the game


STRATEGIES: dict[str, Style] = {
    "weak": Style(opening=0.7, floor=0.2, beta=0.5, modelling=0.0, noise=0.6, reveal=0, ladder=True,
                  memory=0, anticipation=0.0, margin=0.1, endgame=0.0, empathy=0.0, confidence=0.0, slip=0.3),
    "base": Style(opening=0.85, floor=0.45, beta=1.5, modelling=0.5, noise=0.3, reveal=1, ladder=True,
                  memory=1, anticipation=0.5, margin=0.05, endgame=0.5, empathy=0.9, confidence=0.5, slip=0.1,
                  anchor=0.8),
    "strong": Style(opening=0.95, floor=0.6, beta=2.0, modelling=1.0, noise=0.05, reveal=3, ladder=True,
                    memory=2, anticipation=1.0, margin=0.0, endgame=1.0, empathy=1.0, confidence=1.0, slip=0.0,
                    shading=0.1, anchor=1.0, holdout=True),
    "boulware": Style(opening=1.0, floor=0.0, beta=5.0, modelling=0.0, noise=0.0, reveal=0),
    "conceder": Style(opening=1.0, floor=0.0, beta=0.5, modelling=0.0, noise=0.0, reveal=2),
    "greedy": Style(opening=1.0, floor=0.9, beta=1.0, modelling=0.0, noise=0.0, reveal=2),
    "fair": Style(opening=0.0, floor=0.0, beta=1.0, modelling=1.0, noise=0.0, reveal=2),
    "random": Style(opening=0.0, floor=0.0, beta=1.0, modelling=0.0, noise=1.0, reveal=0),
}


def estimate_others(sit: Situation, modelling: float) -> np.ndarray:
    """Estimated (n, m) valuations of every agent (own row exact for vector games), summing to 100."""
    evidence = np.zeros((sit.n, sit.m))
    for _round, proposer, owners in sit.proposals:
        kept = np.array(owners) == proposer
        evidence[proposer] += np.where(kept, 1.0, -0.5)
    for _round, speaker, text in sit.messages:
        for rank, k in enumerate(mentioned_items(text, sit.items)[:3]):
            evidence[speaker, k] += 1.5 / (rank + 1)
    for _round, owners, voter, accept in sit.votes:
        if accept:
            evidence[voter] += 0.3 * (np.array(owners) == voter)
    estimate = np.clip(1.0 + modelling * evidence, 0.1, None)
    estimate = 100 * estimate / estimate.sum(axis=1, keepdims=True)
    estimate[sit.me] = sit.values[:, sit.me]
    return estimate


def aspiration(style: Style, sit: Situation) -> float:
    """The time-dependent aspiration, as a fraction of the best: from ``opening`` to ``floor`` along progress**beta."""
    return style.opening - (style.opening - style.floor) * sit.progress**style.beta


class Allocations:
    """Greedy searches over allocations for agent ``me``, never enumerating them.

    ``own[k, j]`` is what ``me`` gets when item k goes to agent j; ``est[j, k]`` what agent j is
    believed to get from item k (row ``me``: its own item values).
    """

    def __init__(self, own: np.ndarray, est: np.ndarray, me: int) -> None:
        self.own, self.est, self.me = own, est, me
        self.m, self.n = own.shape
        self.others = [j for j in range(self.n) if j != me]
        self.items = np.arange(self.m)

    def mine(self, owners: np.ndarray) -> float:
        return float(self.own[self.items, owners].sum())

    def theirs(self, owners: np.ndarray) -> np.ndarray:
        """(n,) estimated utility of every agent (own entry: its exact utility)."""
        out = np.array([self.est[j, owners == j].sum() for j in range(self.n)])
        out[self.me] = self.mine(owners)
        return out

    def favourite_owners(self) -> np.ndarray:
        """Each item to the agent ``me`` most likes to see it go to (ties: the agent valuing it most)."""
        return np.argmax(self.own + 1e-6 * self.est.T, axis=1)

    def grab(self) -> np.ndarray:
        """The most ``me`` can get while every other agent still gets something it (seemingly) values."""
        return self.constrained({j: 0.5 for j in self.others})[0]

    def constrained(self, floors: dict[int, float]) -> tuple[np.ndarray, bool]:
        """The allocation best for ``me`` that gives each other agent j at least floors[j] (estimated).

        Greedy: start from ``me``'s favourite owner per item, hand items to the agent furthest below
        its floor at the least cost per point, then take back what no floor needs. Returns the
        allocation and whether every floor is met.
        """
        owners = self.favourite_owners()
        for _ in range(2 * self.m):
            gap = {j: floors[j] - self.est[j, owners == j].sum() for j in floors}
            short = [j for j, g in gap.items() if g > _EPS]
            if not short:
                break
            best, choice = np.inf, None
            for j in short:
                for k in self.items[(owners != j) & (self.est[j] > _EPS)]:
                    holder = owners[k]
                    if holder in floors and gap[holder] + self.est[holder, k] > _EPS:
                        continue  # would push another agent below its floor
                    cost = max(self.own[k, holder] - self.own[k, j], 0.0) + _EPS
                    ratio = cost / min(self.est[j, k], gap[j])
                    if ratio < best:
                        best, choice = ratio, (k, j)
            if choice is None:
                return owners, False
            owners[choice[0]] = choice[1]
        # Take back, most valuable first, every item some agent holds beyond its floor.
        for k in np.argsort(-(self.own[self.items, self.me] - self.own[self.items, owners]), kind="stable"):
            j = owners[k]
            if j in floors and self.own[k, self.me] > self.own[k, j] + _EPS and \
                    self.est[j, owners == j].sum() - self.est[j, k] >= floors[j] - _EPS:
                owners[k] = self.me
        met = all(self.est[j, owners == j].sum() >= floors[j] - _EPS for j in floors)
        return owners, met

    def acceptable(self, aspiration: float) -> np.ndarray:
        """The allocation most acceptable to the least satisfied other agent that leaves ``me`` >= aspiration."""
        owners = self.grab()
        total = np.maximum(self.est.sum(axis=1), _EPS)
        while True:
            worth = self.mine(owners)
            ratios = np.array([self.est[j, owners == j].sum() / total[j] for j in self.others])
            j = self.others[int(np.argmin(ratios))]
            candidates = [k for k in self.items[owners == self.me]
                          if self.est[j, k] > _EPS and worth - self.own[k, self.me] + self.own[k, j] >= aspiration - _EPS]
            if not candidates:
                return owners
            k = max(candidates, key=lambda k: self.est[j, k] / (self.own[k, self.me] - self.own[k, j] + 1.0))
            owners[k] = j

    def nash(self) -> np.ndarray:
        """A local maximum of the product of (estimated) utilities, by single-item moves, starting
        from each item with the agent valuing it most relative to its total."""
        owners = np.argmax(self.est.T / np.maximum(self.est.sum(axis=1), _EPS), axis=1)

        def score(o: np.ndarray) -> float:
            return float(np.log(np.maximum(self.theirs(o), 1e-6)).sum())

        current = score(owners)
        for _ in range(4 * self.m):
            best, move = current, None
            for k in self.items:
                for j in range(self.n):
                    if j != owners[k]:
                        trial = owners.copy()
                        trial[k] = j
                        value = score(trial)
                        if value > best + 1e-12:
                            best, move = value, (k, j)
            if move is None:
                break
            owners[move[0]] = move[1]
            current = best
        return owners


class Player:
    """One decision of one offline player, from the conversation it was sent."""

    def __init__(self, strategy: str, sit: Situation, rng: np.random.Generator, temperature: float) -> None:
        self.name = strategy
        self.style = STRATEGIES[strategy]
        self.sit = sit
        self.rng = rng
        self.noise = self.style.noise * max(temperature, 0.0 if strategy != "random" else 1.0)
        est = estimate_others(sit, self.style.modelling)
        if self.noise:  # a noisy player misjudges what the others want
            est = est * np.exp(self.noise * rng.normal(0.0, 0.3, est.shape))
            est[sit.me] = sit.values[:, sit.me]
        self.search = Allocations(sit.values, est, sit.me)
        self.best = float(sit.values.max(axis=1).sum())
        # a ladder player that slips plays the last round as if another were to come
        self.last_round = sit.round >= sit.max_rounds and not (self.style.ladder and rng.random() < self.style.slip)
        self._cache: dict[str, Any] = {}

    def utility(self, owners) -> float:
        return self.search.mine(np.asarray(owners))

    def jitter(self) -> float:
        """A multiplicative judgement error (1 for a disciplined player)."""
        return 1.0 + self.noise * self.rng.normal(0.0, 0.1)

    def aspiration(self) -> float:
        """The time-dependent aspiration (see :func:`aspiration`) times the best."""
        if self.name == "fair":  # holds to its own Nash proposal, or to the Nash split before it made one
            mine = [owners for by, owners in self.sit.current if by == self.sit.me]
            return 0.95 * self.utility(mine[0] if mine else self.search.nash())
        return aspiration(self.style, self.sit) * self.best

    # --- the ladder's policy: a model of each other agent's acceptance threshold, best-responded to ---

    def worth_to(self, j: int, owners) -> float:
        """Estimated worth of an allocation to agent j."""
        return float(self.search.est[j, np.asarray(owners) == j].sum())

    def demand_history(self) -> dict[int, list[tuple[int, float]]]:
        """Per other agent: (round, estimated worth to it of its own proposal), oldest first."""
        out: dict[int, list[tuple[int, float]]] = {j: [] for j in self.search.others}
        for round_, proposer, owners in self.sit.proposals:
            if proposer != self.sit.me:
                out[proposer].append((round_, self.worth_to(proposer, owners)))
        return out

    def erratic(self) -> set[int]:
        """Other agents whose moves no threshold explains: each vote against its own proposal after
        accepting an earlier one of its own, and each jump of its demand by a quarter of its total,
        is a contradiction; ``2 - modelling`` of them (rounded up) give an agent away."""
        own = {(r, by, tuple(o)) for r, by, o in self.sit.proposals}
        verdicts: dict[int, list[bool]] = {}
        for r, owners, voter, accept in self.sit.votes:
            if voter != self.sit.me and (r, voter, tuple(owners)) in own:
                verdicts.setdefault(voter, []).append(accept)
        out = set()
        for j, seen in self.demand_history().items():
            total = float(self.search.est[j].sum())
            votes = verdicts.get(j, [])
            flips = sum(not a for a in votes[votes.index(True):]) if True in votes else 0
            jumps = sum(b - a > 0.25 * total for (_ra, a), (_rb, b) in zip(seen[:-1], seen[1:]))
            if flips + jumps >= np.ceil(2 - self.style.modelling):
                out.add(j)
        return out

    def trust(self, history: list[tuple[int, float]], total: float) -> float:
        """How far an agent is expected to take any positive offer in the last round: as far as
        ``endgame`` until its demands have been seen late in the game; from then on as far as they
        have come down (a wall that has hardly moved by then will not fold at the end either)."""
        if not history or (history[-1][0] - 1) / max(self.sit.max_rounds - 1, 1) < _LATE:
            return self.style.endgame
        drop = (history[0][1] - history[-1][1]) / max(total, _EPS)
        return self.style.endgame * float(np.clip((drop - 0.1) / 0.2, 0.0, 1.0))

    def thresholds(self, r: int) -> dict[int, float]:
        """Each other agent's projected acceptance threshold in round ``r`` (estimated worth to it).

        Its latest demand (the worth to it of its own proposal; before any, everything), lowered by
        its pace of concession: its demand's fall over the last ``memory`` rounds pooled with two
        rounds' worth of the prior (``anticipation`` of the demand conceded over the game), so one
        flat round proves little; late in the game only the fall seen counts; each projected drop is
        ``_SLOWDOWN`` of the one before. It is never below what the agent turned down from this
        player (projected on the same way), and in the last round falls, as far as the agent is
        trusted to fold, to a token (``_TOKEN`` of its total), as it does for erratic agents.
        """
        sit, style = self.sit, self.style
        key = f"thresholds{r}"
        if key in self._cache:
            return self._cache[key]
        history, erratic, out = self.demand_history(), self.erratic(), {}
        for j in self.search.others:
            total = float(self.search.est[j].sum())
            token = _TOKEN * total  # the least an agent surely values: more than an item it keeps giving away
            if j in erratic:
                out[j] = token
                continue
            seen = history[j]
            last, demand = seen[-1] if seen else (0, total)
            first, before = seen[max(len(seen) - style.memory - 1, 0)] if style.memory and seen else (last, demand)
            prior = style.anticipation * demand / max(sit.max_rounds - 1, 1)
            weight = 0.0 if self.late() and last > first else 2.0
            pace = (max(before - demand, 0.0) + weight * prior) / (last - first + weight) if last - first + weight else 0.0

            def projected(start: int, level: float) -> float:
                return level - pace * (1 - _SLOWDOWN ** max(r - start, 0)) / (1 - _SLOWDOWN)

            threshold = projected(last, demand)
            for rv, owners, voter, accept in sit.votes:
                if voter == j and not accept and rv <= r:
                    threshold = max(threshold, projected(rv, self.worth_to(j, owners) + 0.5))
            if r >= sit.max_rounds:
                trust = self.trust(seen, total)
                threshold = (1 - trust) * threshold + trust * token
            out[j] = max(threshold, token)
        self._cache[key] = out
        return out

    def deal(self, r: int) -> tuple[np.ndarray, bool]:
        """The allocation best for this player that every other agent is predicted to accept in
        round ``r`` (its projected threshold plus ``margin`` of its estimated total, less ``shading``
        before the last round), and whether the search met every threshold."""
        key = f"deal{r}"
        if key not in self._cache:
            # before the last round an offer turned down costs a round, not the deal: it tests how low they go
            margin = self.style.margin - (self.style.shading if r < self.sit.max_rounds else 0.0)
            floors = {j: t + margin * float(self.search.est[j].sum()) for j, t in self.thresholds(r).items()}
            self._cache[key] = self.search.constrained(floors)
        return self._cache[key]

    def probe(self, later: float) -> tuple[np.ndarray, bool]:
        """The allocation best for this player that gives each other agent, instead of its projected
        threshold, as far as ``empathy`` goes what this player would take in its place: the same
        share of its total as waiting is worth to this player."""
        share = later / max(self.best, _EPS)
        floors = {}
        for j, t in self.thresholds(self.sit.round).items():
            mirror = share * float(self.search.est[j].sum())
            floors[j] = t - self.style.empathy * max(t - mirror, 0.0)
        return self.search.constrained(floors)

    def latest_offer(self) -> float:
        """Worth to this player of the best offer the others made in the latest round they proposed
        in (0 before any): it counts on getting as much again, not on older offers they withdrew."""
        offers = [(r, by, o) for r, by, o in self.sit.proposals if by != self.sit.me]
        last = max((r for r, _by, _o in offers), default=0)
        return max((self.utility(o) for r, _by, o in offers if r == last), default=0.0)

    def value(self, r: int) -> float:
        """What closing in round ``r`` is worth (undiscounted): the best deal predicted to pass, or,
        if none is, the others' best offer so far."""
        owners, met = self.deal(r)
        return max(self.utility(owners) if met else 0.0, self.latest_offer())

    def plan(self) -> tuple[int, float]:
        """The round after this one worth most to close in, and its value discounted to now
        (this round and 0 if none is left: the last round, unless this player forgets it is)."""
        sit = self.sit
        if "plan" not in self._cache:
            last = sit.max_rounds + 1 if sit.round >= sit.max_rounds and not self.last_round else sit.max_rounds
            options = [(sit.gamma ** (r - sit.round) * self.value(r), r) for r in range(sit.round + 1, last + 1)]
            value, r = max(options, default=(0.0, sit.round))
            self._cache["plan"] = (r, value * self.jitter())
        return self._cache["plan"]

    def hardball(self) -> float:
        """The share of its best this player holds out for (0: none): while every other agent has named
        nothing it values, ``anchor`` in round 1 and, with ``holdout``, until late in the game (a
        coherent wall takes no mid-game offer anyway; an agent that votes regardless of the offer
        takes everything as often as a fair split)."""
        sit, style = self.sit, self.style
        if not style.anchor or self.late() or (sit.round > 1 and not style.holdout):
            return 0.0
        if any(mentioned_items(text, sit.items) for _r, by, text in sit.messages if by != sit.me):
            return 0.0
        return style.anchor

    def late(self) -> bool:
        """From ``_LATE`` of the game on only the concessions actually seen count: a wall that has not
        moved by then will not."""
        return self.sit.progress >= _LATE

    def passes(self, owners) -> float:
        """How sure this player is that its own proposal passes: every other agent is predicted to
        take it (worth to it at least its demand in this round), believed with ``confidence``."""
        thresholds = self.thresholds(self.sit.round)
        return self.style.confidence * float(all(self.worth_to(j, owners) >= t - _EPS for j, t in thresholds.items()))

    # --- moves ----------------------------------------------------------------------------------

    def propose(self) -> np.ndarray:
        sit, search = self.sit, self.search
        if self.name == "random":
            return self.rng.integers(0, sit.n, sit.m)
        if self.name == "fair":
            return search.nash()
        if not self.style.ladder:
            return search.acceptable(self.aspiration())
        ask = self.hardball()
        if ask:  # round 1: its ask, leaving the others what they seemingly value at least cost; later: everything
            return search.acceptable(ask * self.best) if sit.round == 1 else np.full(sit.m, sit.me)
        now, met = self.deal(sit.round)
        target, later = self.plan()
        if met and self.utility(now) >= max(later, _EPS):
            return now
        probe, met = self.probe(later)
        if met and self.utility(probe) >= max(later, _EPS):
            return probe
        if target > sit.round:
            firm, met = self.deal(target)
            if met and self.utility(firm) >= max(later, _EPS):  # the deal it waits for, not the best offer it recalls
                return firm
        offers = [o for _r, by, o in sit.proposals if by != sit.me]
        if self.last_round and offers:  # the others' best offer passes, as their own
            return np.asarray(max(offers, key=self.utility))
        return search.acceptable(self.aspiration())

    def accepts(self, owners: tuple[int, ...]) -> bool:
        if self.name == "random":
            return bool(self.rng.random() < 0.5)
        worth = self.utility(owners)
        if worth <= 0:
            return False  # a worthless share is no better than no deal
        if self.style.ladder:
            if worth < self.sit.gamma * self.hardball() * self.best:  # holding out: worth its ask a round later
                return False
            own = [o for by, o in self.sit.current if by == self.sit.me]
            if not own:
                return True
            if tuple(own[0]) == tuple(owners):  # its own, unless it takes a better offer its proposer wants too
                return not any(by != self.sit.me and self.utility(o) > worth and self.worth_to(by, o) > 0
                               and self.accepts(o) for by, o in self.sit.current)
            # taking the offer while its own proposal passes too leaves a fair draw between them
            mine, later = self.utility(own[0]), self.plan()[1]
            sure = self.passes(own[0]) if mine > 0 else 0.0  # it votes down its own worthless proposal
            return (1 - sure / 2) * worth >= sure * mine / 2 + (1 - sure) * later - _EPS
        if self.last_round and self.name != "greedy":
            return True
        return worth >= self.aspiration() - _EPS

    def favourites(self) -> list[str]:
        order = np.argsort(-self.sit.values[:, self.sit.me], kind="stable")
        return [self.sit.items[k] for k in order[: self.style.reveal]]

    def reply(self) -> str:
        sit = self.sit
        if sit.phase == "discussion":
            named = self.favourites()
            if named:
                listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
                return f"I care most about {listed}. I am open to a split that gives you what you value."
            return "I am looking for a deal that works for everyone. Which items matter most to you?"
        if sit.phase == "thinking":
            return f"Round {sit.round}: I will weigh every offer against what waiting would cost."
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
