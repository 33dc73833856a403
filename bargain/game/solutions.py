"""Reference solutions by exact enumeration of all n^m allocations (vectorised numpy).

Ties: utilities within 1e-9 count as equal (matrix sums of floats differ in the last bits), and
among equally good allocations the first in enumeration order wins, i.e. the lexicographically
smallest owners tuple (item 0 most significant). Every solution below is Pareto-optimal (up to
that tolerance).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from bargain.game.preferences import Preferences
from bargain.game.rules import utilities

MAX_ALLOCATIONS = 1 << 21  # 2,097,152 allocations: ~50 MB of tables, about a second of work
_TOL = 1e-9
_DECIMALS = 9


@lru_cache(maxsize=4)
def all_allocations(n: int, m: int) -> np.ndarray:
    """All n^m allocations of m items to n agents in lexicographic order (cached, read-only).

    Returns an (n^m, m) int8 array (int32 if n > 127): row r is the owners tuple of allocation r.

    Raises:
        ValueError: if n^m exceeds MAX_ALLOCATIONS.
    """
    n, m = int(n), int(m)  # Python ints: n**m must not overflow int64
    if n < 1 or m < 1:
        raise ValueError(f"need n >= 1 agents and m >= 1 items, got n={n}, m={m}")
    if n**m > MAX_ALLOCATIONS:
        raise ValueError(
            f"{n} agents and {m} items give {n**m} allocations, above MAX_ALLOCATIONS={MAX_ALLOCATIONS}: "
            "too many to enumerate"
        )
    agents = np.arange(n, dtype=np.int8 if n <= 127 else np.int32)
    table = np.empty((n**m, m), dtype=agents.dtype)
    for k in range(m):  # item k cycles through the agents in blocks of n^(m-1-k) rows
        table[:, k] = np.tile(np.repeat(agents, n ** (m - 1 - k)), n**k)
    table.flags.writeable = False
    return table


def utility_table(prefs: Preferences) -> np.ndarray:
    """(n^m, n) float array: row r holds every agent's utility under all_allocations(n, m)[r]."""
    n, m = prefs.n_agents, prefs.n_items
    allocations = all_allocations(n, m)
    matrix = prefs.as_matrix()  # [agent, item, owner]
    table = np.zeros((len(allocations), n))
    for k in range(m):
        table += matrix[:, k, :].T[allocations[:, k]]
    return table


def max_welfare(prefs: Preferences) -> tuple[tuple[int, ...], float]:
    """The allocation maximising the sum of utilities, and that sum."""
    table = utility_table(prefs)
    best = _best(table.sum(axis=1))
    return _owners(prefs, best), float(table[best].sum())


def nash_bargaining(prefs: Preferences) -> tuple[tuple[int, ...], np.ndarray]:
    """Nash bargaining solution (disagreement point 0): the allocation maximising the product of utilities.

    If no allocation gives every agent a positive utility (e.g. more agents than items), it first
    maximises the number of agents with positive utility, then the product over those agents.
    """
    table = utility_table(prefs)
    positive = table > _TOL
    log_product = np.where(positive, np.log(np.where(positive, table, 1.0)), 0.0).sum(axis=1)
    best = _best(positive.sum(axis=1), log_product)
    return _owners(prefs, best), table[best].copy()


def kalai_smorodinsky(prefs: Preferences) -> tuple[tuple[int, ...], np.ndarray]:
    """Kalai-Smorodinsky solution: maximise min_i u_i / u_i^max (u_i^max over all allocations).

    Ties on the minimum go to the larger sum of these ratios (so the result is Pareto-optimal). An
    agent who values nothing (u_i^max = 0) is left out of the minimum.
    """
    table = utility_table(prefs)
    ideal = table.max(axis=0)
    ratio = np.where(ideal > 0, table / np.where(ideal > 0, ideal, 1.0), 1.0)
    best = _best(ratio.min(axis=1), ratio.sum(axis=1))
    return _owners(prefs, best), table[best].copy()


def pareto_optimal_mask(table: np.ndarray) -> np.ndarray:
    """Bool mask of the rows of an (N, n) utility table that no other row Pareto-dominates.

    Rows with equal utilities are all kept. Utilities are compared after rounding to 9 decimals.
    """
    points = np.round(np.asarray(table, dtype=float), _DECIMALS)
    # A dominating row has a strictly larger sum, so in this order the head of what remains is
    # undominated: it and its equals join the front, the rows it dominates leave.
    remaining = np.argsort(-points.sum(axis=1), kind="stable")
    mask = np.zeros(len(points), dtype=bool)
    while remaining.size:
        rows = points[remaining]
        head = rows[0]
        better_somewhere = np.any(rows > head, axis=1)
        mask[remaining[~better_somewhere & np.all(rows == head, axis=1)]] = True
        remaining = remaining[better_somewhere]
    return mask


def is_pareto_optimal(prefs: Preferences, owners: tuple[int, ...] | list[int]) -> bool:
    """Whether no allocation makes some agent better off and nobody worse off than ``owners``."""
    u = np.round(utilities(prefs, owners), _DECIMALS)
    table = np.round(utility_table(prefs), _DECIMALS)
    dominated = np.all(table >= u, axis=1) & np.any(table > u, axis=1)
    return not bool(dominated.any())


def _best(*keys: np.ndarray) -> int:
    """Row maximising keys[0], then keys[1] among rows within _TOL of the best, ...; then the lowest index."""
    rows = np.arange(len(keys[0]))
    for key in keys:
        values = key[rows]
        rows = rows[values >= values.max() - _TOL]
    return int(rows[0])


def _owners(prefs: Preferences, row: int) -> tuple[int, ...]:
    return tuple(int(owner) for owner in all_allocations(prefs.n_agents, prefs.n_items)[row])
