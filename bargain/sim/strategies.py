"""Negotiation strategies for the offline players.

Reference strategies are classic time-dependent tactics (Faratin, Sierra & Jennings 1998): an
aspiration that falls from ``opening`` to ``floor`` of the most the agent could get, along
progress**beta (``boulware`` concedes late, ``conceder`` early, ``greedy`` hardly at all), plus
``fair`` (proposes the Nash bargaining allocation under its estimate of the others' valuations)
and ``random``. Every reference except ``greedy`` accepts anything worth more than nothing in the
last round, since no deal pays 0.

The skill ladder ``weak`` < ``base`` < ``strong`` plays one policy with different capabilities,
not hard-coded outcomes:

- opponent modelling and communication: how much it learns the others' valuations from their
  proposals, votes and messages (weak: nothing), which it needs to offer trades the others accept
  and to judge what a fair (Nash) split would give it, and how many of its favourite items it
  names (weak none, base one, strong three), which lets cooperative others offer it what it values;
- firmness: how high its proposals open and how low they fall by the deadline, how much of its
  estimated Nash split it insists on before late in the game, and how far its tailored offers go
  from what the others rejected towards what they ask;
- timing, i.e. playing the discount as well as the split: an offer is taken once it is worth what
  continuing is worth - the others' best offer raised by their observed pace of concession (pooled
  with a prior that they concede steadily, each projected rise smaller than the last), discounted
  round by round, and the last round, in which others whose offers have come up far enough take
  any positive offer;
- the deadline: how often it forgets that the last round is the last (weak 30%, base 10%), and,
  for ``strong``, brinkmanship: in the last round it turns down an offer when the others have shown
  they will take its own proposal, so that only that passes;
- discipline: how much noise there is in its judgements of the others and of its thresholds.

No player enumerates allocations: each decision is a greedy search over items and agents, so games
with 10 agents and 12 items are as quick to play as small ones (``bench/sim_speed.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from bargain.sim.observe import Situation, mentioned_items, read

_EPS = 1e-9
_LATE = 0.7  # ladder: from this far into the game on, only concessions actually seen count
_SLOWDOWN = 0.8  # ladder: each projected rise of the others' offers is this fraction of the one before


@dataclass(frozen=True)
class Style:
    opening: float  # proposals' aspiration in round 1, as a fraction of the most this agent could get
    floor: float  # the aspiration reached in the last round
    beta: float  # concession curve progress**beta: > 1 concedes late (Boulware), < 1 early (Conceder)
    modelling: float  # weight on evidence about the others' valuations (0 = uniform prior)
    noise: float  # randomness of judgements, scaled by the sampling temperature
    reveal: int  # how many of its favourite items it names in public
    ladder: bool = False  # plays the ladder's policy (below) instead of a fixed time-dependent tactic
    reservation: float = 0.0  # ladder: before the last round, takes nothing worth less than this much of its Nash split
    memory: int = 2  # ladder: rounds of the others' rising offers averaged into their pace
    anticipation: float = 0.0  # ladder: prior share of the gap to its best the others concede over the game
    slip: float = 0.0  # ladder: chance of playing the last round as if another were to come
    split: float = 1.0  # ladder: offers the others this much of the way from what they rejected to what they ask
    brinkmanship: bool = False  # ladder: in the last round, refuses offers when the others will take its own proposal


STRATEGIES: dict[str, Style] = {
    "weak": Style(opening=0.7, floor=0.2, beta=0.5, modelling=0.0, noise=0.6, reveal=0, ladder=True,
                  reservation=0.5, memory=1, anticipation=0.0, slip=0.3, split=1.0),
    "base": Style(opening=0.85, floor=0.45, beta=1.5, modelling=0.5, noise=0.3, reveal=1, ladder=True,
                  reservation=0.75, memory=2, anticipation=0.5, slip=0.1, split=0.75),
    "strong": Style(opening=0.95, floor=0.6, beta=2.0, modelling=1.0, noise=0.05, reveal=3, ladder=True,
                    reservation=0.9, memory=1, anticipation=1.0, slip=0.0, split=0.5, brinkmanship=True),
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
        self._cache: dict[str, float] = {}

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

    # --- the ladder's policy -----------------------------------------------------------------------

    def offers(self) -> list[tuple[int, float]]:
        """(round, worth to this player of the best offer the others made), per round, oldest first."""
        best: dict[int, float] = {}
        for round_, proposer, owners in self.sit.proposals:
            if proposer != self.sit.me:
                best[round_] = max(best.get(round_, 0.0), self.utility(owners))
        return sorted(best.items())

    def demands(self) -> dict[int, float]:
        """Estimated worth to each other agent of its latest proposal (an even split before any)."""
        out = {j: 0.5 * float(self.search.est[j].sum()) for j in self.search.others}
        for _round, proposer, owners in self.sit.proposals:
            if proposer != self.sit.me:
                out[proposer] = float(self.search.est[proposer, np.asarray(owners) == proposer].sum())
        return out

    def pace(self, offers: list[tuple[int, float]]) -> float:
        """How fast the others' best offer is expected to rise per round: the rises of the last
        ``memory`` rounds pooled with two rounds' worth of the prior (``anticipation`` of the gap
        between the first offer and the best, spread over the game), so one flat round proves little;
        late in the game only the rises seen count."""
        rises = [max(b - a, 0.0) for (_ra, a), (_rb, b) in zip(offers[:-1], offers[1:])][-self.style.memory:]
        first = offers[0][1] if offers else 0.0
        prior = self.style.anticipation * (self.best - first) / max(self.sit.max_rounds - 1, 1)
        weight = 0.0 if self.late() and rises else 2.0
        return (sum(rises) + weight * prior) / (len(rises) + weight)

    def trust(self, offers: list[tuple[int, float]]) -> float:
        """How likely the others are to take any positive offer in the last round, judged by how far
        their offers have come up: a wall that has hardly moved will not fold at the end either."""
        rise = (offers[-1][1] - offers[0][1]) / max(self.best, _EPS) if offers else 0.0
        return float(np.clip((rise - 0.1) / 0.2, 0.0, 1.0))

    def continuation(self) -> float:
        """What continuing is worth now: the best discounted value of a later round.

        Before the last round a round is worth the others' best offer raised by their pace, each
        round's rise ``_SLOWDOWN`` of the one before (concessions slow down as they near a floor); the last
        round is worth, as far as the others are trusted to take any positive offer, the average of
        one's own grab and their offers (one passing proposal is drawn), otherwise their offer.
        """
        sit, offers = self.sit, self.offers()
        latest, seen = (offers[-1][1], offers[-1][0]) if offers else (0.0, sit.round)
        pace, trust = self.pace(offers), self.trust(offers)
        grab = self.utility(self.search.grab())
        best = 0.0
        for r in range(sit.round + 1, sit.max_rounds + 1):
            value = min(latest + pace * (1 - _SLOWDOWN ** (r - seen)) / (1 - _SLOWDOWN), self.best)
            if r == sit.max_rounds:
                value = trust * (grab + (sit.n - 1) * value) / sit.n + (1 - trust) * value
            best = max(best, sit.gamma ** (r - sit.round) * value)
        return best

    def nash_value(self) -> float:
        """Worth to this player of the Nash split under its estimates."""
        if "nash" not in self._cache:
            self._cache["nash"] = self.utility(self.search.nash())
        return self._cache["nash"]

    def patience(self) -> float:
        """What holding out is worth: continuing, and, before late in the game, at least
        ``reservation`` of its Nash split."""
        if "patience" not in self._cache:
            reservation = 0.0 if self.late() else self.style.reservation * self.nash_value()
            self._cache["patience"] = max(reservation, self.continuation()) * self.jitter()
        return self._cache["patience"]

    def late(self) -> bool:
        """From ``_LATE`` of the game on only the concessions actually seen count (a wall that has not
        moved by then will not) and the reservation no longer holds."""
        return self.sit.progress >= _LATE

    def target(self) -> float:
        """The least a ladder player accepts: in the last round anything; before it its aspiration,
        or less once waiting no longer pays, but never less than its patience allows."""
        return _EPS if self.last_round else min(self.aspiration(), self.patience())

    def erratic(self) -> bool:
        """Whether some other agent voted against its own proposal: its votes say nothing about worth,
        so a tailored offer buys nothing over a firm one."""
        own = {(r, by, tuple(o)) for r, by, o in self.sit.proposals}
        return any(not accept and (r, voter, tuple(owners)) in own for r, owners, voter, accept in self.sit.votes)

    def asks(self) -> dict[int, float]:
        """What to offer each other agent (estimated worth to it): between the most it rejected from
        this player and what it last asked for itself, ``split`` of the way towards the latter."""
        rejected = {j: 0.0 for j in self.search.others}
        for _round, owners, voter, accept in self.sit.votes:
            if voter in rejected and not accept and any(by == self.sit.me and tuple(o) == tuple(owners)
                                                        for _r, by, o in self.sit.proposals):
                rejected[voter] = max(rejected[voter], float(self.search.est[voter, np.asarray(owners) == voter].sum()))
        demands = self.demands()
        return {j: min(rejected[j] + self.style.split * (demands[j] - rejected[j]), demands[j]) if demands[j] > rejected[j]
                else demands[j] for j in demands}

    def final_proposal(self, match: np.ndarray, met: bool) -> np.ndarray:
        """The last round: the best of matching the others' demands, copying their best offer, and
        grabbing, which pays only if they take any positive offer (then both proposals pass and one
        is drawn: the grab adds trust * (grab - offer), a match that would pass anyway match - offer)."""
        search, offers = self.search, self.offers()
        grab = search.grab()
        best_offer = max((o for r, by, o in self.sit.proposals if by != self.sit.me), key=self.utility, default=None)
        offer = self.utility(best_offer) if best_offer is not None else 0.0
        sure = match if met and (best_offer is None or self.utility(match) >= offer) else best_offer
        if sure is None:
            return grab
        return grab if self.trust(offers) * (self.utility(grab) - offer) > self.utility(sure) - offer else np.asarray(sure)

    def takes_final_offer(self, worth: float) -> bool:
        """Brinkmanship in the last round: turn down an offer when the others are trusted to take this
        player's own proposal, so that only it passes, unless taking the offer is worth more: taking
        it, one of the two proposals is drawn (trust * (own + offer) / 2 + (1 - trust) * offer);
        refusing it, the own proposal passes with the others' trust (trust * own)."""
        own = [owners for by, owners in self.sit.current if by == self.sit.me]
        mine = self.utility(own[0]) if own else 0.0
        trust = self.trust(self.offers())
        return trust * (mine + worth) / 2 + (1 - trust) * worth >= trust * mine

    # --- moves ----------------------------------------------------------------------------------

    def propose(self) -> np.ndarray:
        sit, search = self.sit, self.search
        if self.name == "random":
            return self.rng.integers(0, sit.n, sit.m)
        if self.name == "fair":
            return search.nash()
        if not self.style.ladder:
            return search.acceptable(self.aspiration())
        if self.last_round:
            return self.final_proposal(*search.constrained(self.demands()))
        deal, met = search.constrained(self.asks())
        if met and not self.erratic() and self.utility(deal) >= self.patience():
            return deal
        return search.acceptable(self.aspiration() * self.jitter())

    def accepts(self, owners: tuple[int, ...]) -> bool:
        if self.name == "random":
            return bool(self.rng.random() < 0.5)
        worth = self.utility(owners)
        if worth <= 0:
            return False  # a worthless share is no better than no deal
        if self.style.ladder:
            if self.last_round and self.style.brinkmanship:
                return self.takes_final_offer(worth)
            return worth >= self.target() - _EPS
        if self.last_round and self.name != "greedy":
            return True
        return worth >= self.aspiration() - _EPS

    def favourites(self) -> list[str]:
        order = np.argsort(-self.sit.values[:, self.sit.me], kind="stable")
        return [self.sit.items[k] for k in order[: self.style.reveal]]

    def reply(self) -> str:
        sit = self.sit
        if sit.phase == "discussion":
            if self.style.reveal:
                named = self.favourites()
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
