"""The co-funding game: agents pool their budgets to fund threshold public goods (projects).

Project j costs ``costs[j]``; agent i values it at ``values[i, j]`` (non-negative integers summing
to 100 per agent) and has a budget ``budgets[i]``. Contributions ``X[i, j]`` fund project j when
they reach its cost; contributions to unfunded projects are refunded, so agent i gets
``U_i = sum_{j funded} (values[i, j] - X[i, j])`` (a quasi-linear utility, with nothing from no
funding at all). Two parameters shape the game:

- alpha, the preference alignment: the target cosine between every pair of valuation vectors,
  drawn by the item game's integer generator (:func:`bargain.game.preferences.draw_vectors`);
- sigma, the budget scarcity: the total budget over the total cost, ``B = sigma * C``, split
  equally (``B_i = B / n``, rounded to cents, so the realised sigma is within ``n * 0.005 / C``).

Measured (``bench/game_preferences.py``, 10,000 draws of 5 projects per level): alpha within 0.0010
(n = 2) and 0.0022 (n = 3) on every draw, sigma within 0.00012.

Costs are integers drawn uniformly from [c_min, c_max]; by default the calibration's burden ratio
of 0.5 with c_max = 3 c_min (:func:`cost_range`: E[c] = 50 n / M, so [10, 30] for n = 2, M = 5).

Reference solutions, exact by enumerating the 2^M funded sets (M <= 12):

- the welfare optimum: the funded sets S* maximising sum_{j in S} (sum_i values[i, j] - costs[j])
  within the total budget (a knapsack; every tied set is kept);
- Lindahl cost shares: on S*, agent i pays costs[j] * values[i, j] / sum_k values[k, j];
- the Nash bargaining solution (disagreement point 0: nothing funded): for each funded set, agents
  keep u_i in [max(0, V_i - B_i), V_i] with sum_i u_i = sum_i V_i - C(S), and the product is
  maximised by water-filling; as in the item game, if no outcome gives everyone a positive utility
  the number of agents with one is maximised first;
- coalition values V(T) (what the agents in T could do with their own budgets) and the core;
- best responses to a contribution profile (each agent completes the projects worth their
  shortfall to it), hence whether the profile is a Nash equilibrium of the contribution game.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bargain.game.preferences import draw_vectors, freeze, pairwise_cosines
from bargain.game.rules import by_seat

PARAMETERS = ("n_projects", "alpha", "sigma", "c_min", "c_max")
TOL = 1e-6  # money: a project is funded when contributions reach its cost up to this much
_EPS = 1e-9


class InvalidPlan(ValueError):
    """A proposed funding plan is malformed; the message says exactly what is wrong (for a re-ask)."""


@dataclass(frozen=True, eq=False)
class CofundingPreferences:
    """The valuations, costs and budgets of one game (arrays are read-only copies).

    Attributes:
        values: (n, M) non-negative integers, each row summing to 100 (private).
        costs: (M,) positive integer project costs (public).
        budgets: (n,) budgets (public).
        alpha: target pairwise cosine of the valuations.
        sigma: target total budget over total cost.
    """

    values: np.ndarray
    costs: np.ndarray
    budgets: np.ndarray
    alpha: float
    sigma: float
    kind = "cofunding"

    def __post_init__(self) -> None:
        freeze(self, "values", "costs", "budgets")
        n, m = self.values.shape
        if self.costs.shape != (m,) or self.budgets.shape != (n,):
            raise ValueError(f"values {self.values.shape} need costs ({m},) and budgets ({n},), "
                             f"got {self.costs.shape} and {self.budgets.shape}")

    @property
    def n_agents(self) -> int:
        return self.values.shape[0]

    @property
    def n_projects(self) -> int:
        return self.values.shape[1]

    def cosines(self) -> dict[str, float]:
        """Pairwise cosine of the valuation vectors, keyed "i-j" for i < j."""
        return pairwise_cosines(self.values)

    def scarcity(self) -> float:
        """The realised sigma: total budget over total cost."""
        return float(self.budgets.sum() / self.costs.sum())


def cost_range(n_agents: int, n_projects: int, c_min: int | None = None, c_max: int | None = None) -> tuple[int, int]:
    """[c_min, c_max], each defaulting to the calibration: burden ratio 0.5 (E[c] = 50 n / M) with c_max = 3 c_min."""
    low = max(1, round(25 * n_agents / n_projects))
    return c_min or low, c_max or max(low, round(75 * n_agents / n_projects))


def generate_cofunding(rng: np.random.Generator, n_agents: int, n_projects: int, alpha: float, sigma: float,
                       c_min: int, c_max: int) -> CofundingPreferences:
    """Draw one game's costs, budgets and valuations (deterministic given ``rng``).

    Raises:
        ValueError: naming the config key, for out-of-range or infeasible settings.
    """
    if n_agents < 2:
        raise ValueError(f"env.n_agents={n_agents} must be >= 2")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"game.alpha={alpha} must be in [0, 1]")
    if not 0.0 < sigma <= 1.0:
        raise ValueError(f"game.sigma={sigma} must be in (0, 1]")
    if not 1 <= c_min <= c_max:
        raise ValueError(f"game.c_min={c_min} and game.c_max={c_max} need 1 <= c_min <= c_max")
    if n_agents > n_projects and alpha < 1.0:
        raise ValueError(f"game.alpha={alpha} < 1 needs game.n_projects >= env.n_agents (one dimension per agent)")
    costs = rng.integers(c_min, c_max + 1, size=n_projects)
    budgets = np.full(n_agents, round(sigma * float(costs.sum()) / n_agents, 2))
    values = draw_vectors(rng, n_agents, n_projects, alpha)
    return CofundingPreferences(values, costs, budgets, float(alpha), float(sigma))


def funded(prefs: CofundingPreferences, contributions: Any) -> np.ndarray:
    """Bool (M,) mask of the projects whose contributions reach their cost."""
    return np.asarray(contributions, dtype=float).sum(axis=0) >= prefs.costs - TOL


def utilities(prefs: CofundingPreferences, contributions: Any) -> np.ndarray:
    """Every agent's utility, shape (n,), for an (n, M) contribution matrix (refunds applied)."""
    x = np.asarray(contributions, dtype=float)
    if x.shape != prefs.values.shape:
        raise ValueError(f"contributions must have shape {prefs.values.shape}, got {x.shape}")
    return ((prefs.values - x) * funded(prefs, x)).sum(axis=1)


def parse_plan(obj: Any, agent_names: Sequence[str], project_names: Sequence[str],
               budgets: Sequence[float]) -> tuple[tuple[float, ...], ...]:
    """Turn {agent name: {project name: amount}} into an (n, M) plan of contributions.

    Names match case-insensitively; a participant's amounts may also be a list in project order.
    Participants and projects left out contribute 0. Every amount must be a non-negative number and
    every participant's row must fit its budget.

    Raises:
        InvalidPlan: listing every problem found, e.g. "Agent_2 would pay 41.5, above its budget 37.5".
    """
    if not isinstance(obj, Mapping):
        raise InvalidPlan(f"the plan must map participant names to contributions, got {type(obj).__name__}")
    projects = {name.strip().casefold(): j for j, name in enumerate(project_names)}
    plan = np.zeros((len(agent_names), len(project_names)))
    problems: list[str] = []
    for seat, agent, row in by_seat(obj, agent_names, "participant", problems):
        if isinstance(row, (list, tuple)):
            if len(row) != len(project_names):
                problems.append(f"{agent}: a list needs one amount per project ({len(project_names)}), got {len(row)}")
                continue
            row = dict(zip(project_names, row))
        if not isinstance(row, Mapping):
            problems.append(f"{agent}: expected project amounts, got {type(row).__name__} {row!r}")
            continue
        for name, amount in row.items():
            j = projects.get(str(name).strip().casefold())
            if j is None:
                problems.append(f"{agent}: unknown project {name!r} (projects are {', '.join(project_names)})")
            elif isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount):
                problems.append(f"{agent}: the amount for {project_names[j]!r} must be a number, got {amount!r}")
            elif amount < 0:
                problems.append(f"{agent}: the amount for {project_names[j]!r} is negative ({amount})")
            else:
                plan[seat, j] += amount
        if plan[seat].sum() > budgets[seat] + TOL:
            problems.append(f"{agent} would pay {plan[seat].sum():g} in total, above its budget {budgets[seat]:g}")
    if problems:
        raise InvalidPlan("; ".join(problems))
    return tuple(tuple(float(a) for a in row) for row in plan)


# -- reference solutions ------------------------------------------------------------------------

@lru_cache(maxsize=16)
def all_sets(n_projects: int) -> np.ndarray:
    """Every funded set as a (2^M, M) bool array, row r holding the bits of r (read-only, cached)."""
    sets = (np.arange(1 << n_projects)[:, None] >> np.arange(n_projects)) & 1
    sets = sets.astype(bool)
    sets.flags.writeable = False
    return sets


def _affordable(prefs: CofundingPreferences, budget: float) -> np.ndarray:
    """Mask of the funded sets whose total cost fits ``budget``."""
    return all_sets(prefs.n_projects) @ prefs.costs <= budget + TOL


def welfare_optima(prefs: CofundingPreferences) -> tuple[list[np.ndarray], float]:
    """Every welfare-maximising affordable funded set (bool masks) and the maximum welfare."""
    sets = all_sets(prefs.n_projects)
    welfare = np.where(_affordable(prefs, prefs.budgets.sum()), sets @ (prefs.values.sum(axis=0) - prefs.costs), -np.inf)
    best = welfare.max()
    return [sets[r] for r in np.flatnonzero(welfare >= best - _EPS)], float(best)


def lindahl(prefs: CofundingPreferences, chosen: np.ndarray) -> np.ndarray:
    """Lindahl contributions (n, M) for funded set ``chosen``: costs split in proportion to value."""
    v = prefs.values.astype(float)
    total = v.sum(axis=0)
    share = np.where(total > 0, v / np.where(total > 0, total, 1.0), 1.0 / prefs.n_agents)
    return share * prefs.costs * np.asarray(chosen, dtype=bool)


def lindahl_utilities(prefs: CofundingPreferences) -> np.ndarray:
    """Per-agent utility under Lindahl shares of the welfare optimum, averaged over tied optima."""
    optima, _ = welfare_optima(prefs)
    return np.mean([utilities(prefs, lindahl(prefs, s)) for s in optima], axis=0)


def nash_bargaining(prefs: CofundingPreferences) -> tuple[list[np.ndarray], np.ndarray]:
    """The Nash bargaining funded sets (ties kept) and the utilities, averaged over the tied sets."""
    sets = all_sets(prefs.n_projects)
    values = sets @ prefs.values.T.astype(float)  # (2^M, n): V_i(S)
    costs = sets @ prefs.costs.astype(float)
    best: tuple[float, float] = (-1.0, -np.inf)
    winners: list[tuple[int, np.ndarray]] = []
    for r in np.flatnonzero(_affordable(prefs, prefs.budgets.sum())):
        u = _water_fill(values[r], prefs.budgets, costs[r])
        if u is None:
            continue
        positive = u > _EPS
        key = (float(positive.sum()), float(np.log(u[positive]).sum()))
        if key[0] > best[0] or (key[0] == best[0] and key[1] > best[1] + _EPS):
            best, winners = key, [(r, u)]
        elif key[0] == best[0] and key[1] >= best[1] - _EPS:
            winners.append((r, u))
    return [sets[r] for r, _ in winners], np.mean([u for _, u in winners], axis=0)


def _water_fill(worth: np.ndarray, budgets: np.ndarray, cost: float) -> np.ndarray | None:
    """Utilities maximising the product for one funded set, or None if no agent can stay at >= 0.

    Agent i keeps u_i = worth_i - pays_i with 0 <= pays_i <= budget_i and u_i >= 0, the payments
    covering ``cost``: u_i in [low_i, worth_i] summing to worth.sum() - cost. Agents who can end up
    positive get u_i = clip(level, low_i, worth_i) for the common level that meets the sum.
    """
    low = np.maximum(worth - budgets, 0.0)
    total = worth.sum() - cost
    if total < low.sum() - TOL:
        return None
    # With slack, every agent who values the set can be made positive; without it only those
    # whose budget caps their payment are.
    can = worth > _EPS if total > low.sum() + _EPS else low > _EPS
    fixed = np.where(can, 0.0, low)
    if not can.any():
        return fixed
    # The filled sum is piecewise linear and non-decreasing in the level, with kinks at the bounds:
    # find the segment that meets the target and interpolate.
    low, worth, target = low[can], worth[can], total - fixed.sum()
    kinks = np.unique(np.concatenate([low, worth]))
    sums = np.clip(kinks[:, None], low, worth).sum(axis=1)
    k = int(np.clip(np.searchsorted(sums, target), 1, len(kinks) - 1)) if len(kinks) > 1 else 0
    level = kinks[k]
    if k and sums[k] > sums[k - 1]:
        level = kinks[k - 1] + (target - sums[k - 1]) * (kinks[k] - kinks[k - 1]) / (sums[k] - sums[k - 1])
    fixed[can] = np.clip(level, low, worth)
    return fixed


def coalition_values(prefs: CofundingPreferences) -> np.ndarray:
    """V(T) for every coalition T (index = bitmask over agents): the best welfare T can fund alone."""
    n = prefs.n_agents
    members = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(float)  # (2^n, n)
    sets = all_sets(prefs.n_projects).astype(float)
    worth = sets @ (prefs.values.T.astype(float) @ members.T) - (sets @ prefs.costs)[:, None]  # (2^M, 2^n)
    affordable = (sets @ prefs.costs)[:, None] <= members @ prefs.budgets + TOL
    return np.where(affordable, worth, -np.inf).max(axis=0)


def core_deficit(prefs: CofundingPreferences, utility: Sequence[float]) -> float:
    """max over coalitions T of V(T) - sum_{i in T} u_i: positive iff the outcome is outside the core."""
    n = prefs.n_agents
    members = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(float)
    return float((coalition_values(prefs) - members @ np.asarray(utility, dtype=float))[1:].max())


def best_response_gains(prefs: CofundingPreferences, contributions: Any) -> np.ndarray:
    """How much each agent could gain by changing only its own contributions, shape (n,).

    Given the others' totals o_j, agent i funds any set T by paying the shortfalls max(0, c_j - o_j)
    within its budget; the best such T against its current utility. All zero: a Nash equilibrium.
    """
    x = np.asarray(contributions, dtype=float)
    sets = all_sets(prefs.n_projects)
    current = utilities(prefs, x)
    gains = np.empty(prefs.n_agents)
    for i in range(prefs.n_agents):
        shortfall = np.maximum(prefs.costs - (x.sum(axis=0) - x[i]), 0.0)
        pay = sets @ shortfall
        best = np.where(pay <= prefs.budgets[i] + TOL, sets @ prefs.values[i] - pay, -np.inf).max()
        gains[i] = max(best - current[i], 0.0)
    return gains
