"""Reference solutions by exact enumeration of all n^m allocations (vectorised numpy).

A reference solution is a *set*: every allocation that is optimal under its criterion (utilities
within 1e-9 count as equal, since matrix sums of floats differ in the last bits). At competition
1, for example, mirror-image splits tie for the Nash solution. A :class:`SolutionSet` holds them
all; the per-agent reference is the symmetric mean over the distinct optimal utility vectors (each
counts once, whichever and however many allocations reach it), reported with its per-agent min and
max. Permuting agents or items permutes the set, so no figure depends on enumeration order. Every
optimal allocation below is Pareto-optimal (up to the tolerance).

The criteria work on any (outcomes x agents) utility table (:func:`welfare_optimal`,
:func:`nash_optimal`, :func:`ks_optimal`), so games other than the item game can reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, eq=False)
class SolutionSet:
    """Every optimal outcome of a reference solution and the agents' utilities in each.

    Attributes:
        outcomes: (k, ...) the optimal outcomes in enumeration order (item game: owners, (k, m)).
        utilities: (k, n) every agent's utility in each optimal outcome.
    """

    outcomes: np.ndarray
    utilities: np.ndarray

    def __post_init__(self) -> None:
        for name in ("outcomes", "utilities"):
            array = np.array(getattr(self, name))
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        if self.utilities.ndim != 2 or len(self.utilities) != len(self.outcomes) or not len(self.outcomes):
            raise ValueError(f"need k >= 1 outcomes and a (k, n) utility table, got {len(self.outcomes)} "
                             f"outcomes and shape {self.utilities.shape}")

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def points(self) -> np.ndarray:
        """The distinct optimal utility vectors (rounded to 9 decimals), sorted."""
        return np.unique(np.round(self.utilities, _DECIMALS), axis=0)

    @property
    def mean(self) -> np.ndarray:
        """(n,) the per-agent reference: the mean over the distinct optimal utility vectors."""
        return self.points.mean(axis=0)

    @property
    def low(self) -> np.ndarray:
        """(n,) each agent's least utility over the optimal set."""
        return self.utilities.min(axis=0)

    @property
    def high(self) -> np.ndarray:
        """(n,) each agent's greatest utility over the optimal set."""
        return self.utilities.max(axis=0)


def welfare_optimal(table: np.ndarray) -> np.ndarray:
    """Rows of a (N, n) utility table maximising the sum of utilities."""
    return _optimal_rows(np.asarray(table, dtype=float).sum(axis=1))


def nash_optimal(table: np.ndarray) -> np.ndarray:
    """Rows maximising the product of utilities (disagreement point 0).

    If no row gives every agent a positive utility (e.g. more agents than items), the rows first
    maximise the number of agents with positive utility, then the product over those agents.
    """
    table = np.asarray(table, dtype=float)
    positive = table > _TOL
    log_product = np.where(positive, np.log(np.where(positive, table, 1.0)), 0.0).sum(axis=1)
    return _optimal_rows(positive.sum(axis=1), log_product)


def ks_optimal(table: np.ndarray) -> np.ndarray:
    """Rows maximising min_i u_i / u_i^max (Kalai-Smorodinsky; u_i^max over all rows).

    Ties on the minimum go to the larger sum of these ratios (so the rows are Pareto-optimal). An
    agent who values nothing (u_i^max = 0) is left out of the minimum.
    """
    table = np.asarray(table, dtype=float)
    ideal = table.max(axis=0)
    ratio = np.where(ideal > 0, table / np.where(ideal > 0, ideal, 1.0), 1.0)
    return _optimal_rows(ratio.min(axis=1), ratio.sum(axis=1))


def max_welfare(prefs: Preferences) -> SolutionSet:
    """Every allocation maximising the sum of utilities (the maximum is ``utilities.sum(axis=1)[0]``)."""
    return _solution(prefs, welfare_optimal)


def nash_bargaining(prefs: Preferences) -> SolutionSet:
    """Every Nash bargaining allocation (disagreement point 0); see :func:`nash_optimal`."""
    return _solution(prefs, nash_optimal)


def kalai_smorodinsky(prefs: Preferences) -> SolutionSet:
    """Every Kalai-Smorodinsky allocation; see :func:`ks_optimal`."""
    return _solution(prefs, ks_optimal)


def _solution(prefs: Preferences, criterion) -> SolutionSet:
    table = utility_table(prefs)
    rows = criterion(table)
    return SolutionSet(all_allocations(prefs.n_agents, prefs.n_items)[rows], table[rows])


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


def _optimal_rows(*keys: np.ndarray) -> np.ndarray:
    """Rows maximising keys[0], then keys[1] among rows within _TOL of the best, ... (all ties kept)."""
    rows = np.arange(len(keys[0]))
    for key in keys:
        values = key[rows]
        rows = rows[values >= values.max() - _TOL]
    return rows
