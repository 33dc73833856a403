"""Game rules: utilities, discounting, allocation parsing, voting, tie-breaks and speaking order."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from bargain.game.preferences import Preferences

VOTE_RULES = ("unanimity", "supermajority", "majority")
SPEAKING_ORDERS = ("fixed", "reversed", "random", "rotate")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class InvalidAllocation(ValueError):
    """A proposed allocation is malformed; the message says exactly what is wrong (for a re-ask)."""


def utilities(prefs: Preferences, owners: Sequence[int]) -> np.ndarray:
    """Raw (undiscounted) utility of every agent, shape (n,), for owners[k] = agent getting item k."""
    n, m = prefs.n_agents, prefs.n_items
    owners = np.asarray(owners)
    if owners.shape != (m,) or not np.issubdtype(owners.dtype, np.integer) or ((owners < 0) | (owners >= n)).any():
        raise ValueError(f"owners must list one agent in 0..{n - 1} for each of the {m} items, got {owners.tolist()}")
    return prefs.as_matrix()[:, np.arange(m), owners].sum(axis=1)


def discounted(raw: Sequence[float] | np.ndarray, gamma: float, round_: int) -> np.ndarray:
    """raw * gamma ** (round_ - 1): a deal in round 1 is undiscounted."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"env.gamma={gamma} must be in (0, 1]")
    if round_ < 1:
        raise ValueError(f"round_={round_} must be >= 1 (rounds are 1-based)")
    return np.asarray(raw, dtype=float) * gamma ** (round_ - 1)


def by_seat(obj: Mapping, agent_names: Sequence[str], noun: str,
            problems: list[str]) -> Iterator[tuple[int, str, Any]]:
    """(seat, name, value) for each entry of ``obj`` keyed by an agent's name (case-insensitive, surrounding
    spaces ignored); an unknown name or a name listed twice adds to ``problems`` instead."""
    seats = {str(name).strip().casefold(): seat for seat, name in enumerate(agent_names)}
    listed: set[int] = set()
    for key, value in obj.items():
        seat = seats.get(key.strip().casefold()) if isinstance(key, str) else None
        if seat is None:
            problems.append(f"unknown {noun} {key!r} ({noun}s are {', '.join(agent_names)})")
        elif seat in listed:
            problems.append(f"{noun} {agent_names[seat]} is listed twice")
        else:
            listed.add(seat)
            yield seat, agent_names[seat], value


def parse_allocation(obj: Any, agent_names: Sequence[str], item_names: Sequence[str]) -> tuple[int, ...]:
    """Turn {agent name: [item name or index, ...]} into owners (one agent per item).

    Agent and item names match case-insensitively (surrounding spaces ignored); an item may also
    be given by its 0-based index, as an int or a digit string. Agents left out get nothing.

    Raises:
        InvalidAllocation: listing every problem found, e.g. "item 'Quill' (index 3) is not allocated".
    """
    if not isinstance(obj, Mapping):
        raise InvalidAllocation(
            f"the allocation must map agent names to lists of items, got {type(obj).__name__}"
        )
    indices = {str(name).strip().casefold(): k for k, name in enumerate(item_names)}
    m = len(item_names)

    def item(k: int) -> str:
        return f"item {item_names[k]!r} (index {k})"

    owners: list[int | None] = [None] * m
    problems: list[str] = []
    for seat, agent, given in by_seat(obj, agent_names, "agent", problems):
        if not isinstance(given, (list, tuple)):
            problems.append(f"{agent}: expected a list of items, got {type(given).__name__} {given!r}")
            continue
        for entry in given:
            k, problem = _item_index(entry, indices, item_names)
            if problem:
                problems.append(f"{agent}: {problem}")
            elif owners[k] is None:
                owners[k] = seat
            elif owners[k] == seat:
                problems.append(f"{item(k)} is given twice to {agent}")
            else:
                problems.append(f"{item(k)} is given to both {agent_names[owners[k]]} and {agent}")
    problems += [f"{item(k)} is not allocated" for k in range(m) if owners[k] is None]
    if problems:
        raise InvalidAllocation("; ".join(problems))
    return tuple(owners)


def _item_index(entry: Any, indices: Mapping[str, int], item_names: Sequence[str]) -> tuple[int, str | None]:
    """(index, None) for a valid item reference, else (-1, what is wrong)."""
    if isinstance(entry, bool):  # bool is an int subclass: true/false must not mean items 1/0
        return -1, f"{entry!r} is not an item (use an item name or index)"
    if isinstance(entry, str):
        text = entry.strip()
        if text.casefold() in indices:
            return indices[text.casefold()], None
        if not _INTEGER.fullmatch(text):
            return -1, f"unknown item {entry!r} (items are {', '.join(item_names)})"
        entry = int(text)
    if not isinstance(entry, (int, np.integer)):
        return -1, f"{entry!r} is not an item name or index"
    if entry < 0:
        return -1, f"negative index {entry}"
    if entry >= len(item_names):
        return -1, f"bad index {entry} (items are 0..{len(item_names) - 1})"
    return int(entry), None


def vote_threshold(value: str | int | float | Fraction) -> Fraction:
    """``env.vote_threshold`` as an exact fraction of the agents, in (1/2, 1].

    Accepts "p/q", an integer or a decimal, taken exactly as written. A decimal within 0.005 of a
    fraction with a denominator of at most 10 that no decimal can write (2/3, 5/6, 6/7 ...) is
    refused as ambiguous: 0.6667 * 3 = 2.0001 would need 3 of 3 votes where 2/3 needs 2.

    Raises:
        ValueError: naming the key, for anything else.
    """
    text = str(value).strip()
    try:
        threshold = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"env.vote_threshold={text} must be a fraction such as 2/3 or 3/4, in (1/2, 1]") from None
    if not Fraction(1, 2) < threshold <= 1:
        raise ValueError(f"env.vote_threshold={text} must be in (1/2, 1], e.g. 2/3")
    if "/" not in text:
        near = threshold.limit_denominator(10)
        if near != threshold and abs(near - threshold) < Fraction(5, 1000) and _repeating(near):
            raise ValueError(
                f"env.vote_threshold={text} is ambiguous: write the exact fraction ({near}, or the one you mean); "
                f"thresholds are exact, so {text} is not {near}"
            )
    return threshold


def _repeating(fraction: Fraction) -> bool:
    """Whether a fraction has no finite decimal expansion (its denominator has a prime other than 2 and 5)."""
    q = fraction.denominator
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q != 1


def votes_needed(rule: str, n: int, threshold: str | int | float | Fraction = "2/3") -> int:
    """Accept votes a proposal needs among ``n`` agents, in exact integer arithmetic.

    unanimity: n; majority: more than half, n // 2 + 1; supermajority: at least threshold * n, i.e.
    ceil(threshold * n) with the threshold an exact fraction (see :func:`vote_threshold`).
    """
    if rule not in VOTE_RULES:
        raise ValueError(f"env.vote_rule={rule!r} must be one of {', '.join(VOTE_RULES)}")
    if n < 1:
        raise ValueError(f"need n >= 1 voters, got {n}")
    if rule == "unanimity":
        return n
    if rule == "majority":
        return n // 2 + 1
    return math.ceil(vote_threshold(threshold) * n)


def rule_text(rule: str, n: int, threshold: str | int | float | Fraction = "2/3") -> str:
    """How the rules prompt states when a proposal passes."""
    if rule == "unanimity":
        return "every agent accepts it"
    needed = votes_needed(rule, n, threshold)
    why = "more than half" if rule == "majority" else f"at least {vote_threshold(threshold)} of the agents"
    return f"at least {needed} of the {n} agents accept it ({why})"


def accepted_proposals(
    votes: Sequence[Sequence[bool | None]], rule: str, threshold: str | int | float | Fraction = "2/3"
) -> list[int]:
    """Indices of the proposals that pass, in order.

    Args:
        votes: votes[voter][proposal]: True accept, False reject, None invalid (never an accept).
        rule: "unanimity", "supermajority" or "majority"; a proposal passes with at least
            :func:`votes_needed` accepts.
        threshold: used by "supermajority" only: an exact fraction in (1/2, 1].
    """
    n = len(votes)
    if n == 0:
        raise ValueError("votes must hold one row per voter, got none")
    needed = votes_needed(rule, n, threshold)
    n_proposals = len(votes[0])
    for row in votes:
        if len(row) != n_proposals or any(v is not None and not isinstance(v, bool) for v in row):
            raise ValueError(f"every voter needs one True/False/None per proposal ({n_proposals}), got {list(row)}")
    counts = [sum(row[p] is True for row in votes) for p in range(n_proposals)]
    return [p for p, count in enumerate(counts) if count >= needed]


def choose_proposal(rng: np.random.Generator, accepted: Sequence[int]) -> int | None:
    """A uniform seeded draw among the accepted proposals (never by seat); None if there are none."""
    if not accepted:
        return None
    return int(accepted[rng.integers(len(accepted))])


def speaking_order(mode: str, n_agents: int, round_: int, rng: np.random.Generator | None = None) -> list[int]:
    """Seats in speaking order for round ``round_`` (1-based).

    fixed: 0..n-1 every round; reversed: n-1..0; random: a fresh seeded shuffle every call (needs
    ``rng``); rotate: round r starts at seat (r - 1) mod n and continues upwards.
    """
    if mode not in SPEAKING_ORDERS:
        raise ValueError(f"env.speaking_order={mode!r} must be one of {', '.join(SPEAKING_ORDERS)}")
    if n_agents < 1 or round_ < 1:
        raise ValueError(f"need n_agents >= 1 and round_ >= 1 (1-based), got {n_agents} and {round_}")
    if mode == "fixed":
        return list(range(n_agents))
    if mode == "reversed":
        return list(range(n_agents))[::-1]
    if mode == "random":
        if rng is None:
            raise ValueError("speaking_order('random', ...) needs an rng")
        return [int(seat) for seat in rng.permutation(n_agents)]
    start = (round_ - 1) % n_agents
    return [(start + i) % n_agents for i in range(n_agents)]
