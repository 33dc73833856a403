"""Reference solutions against naive brute force on random small games (vector and matrix)."""

import itertools

import numpy as np
import pytest

from bargain.game import (
    MAX_ALLOCATIONS,
    Preferences,
    all_allocations,
    generate_preferences,
    is_pareto_optimal,
    kalai_smorodinsky,
    max_welfare,
    nash_bargaining,
    pareto_optimal_mask,
    utility_table,
)

TOL = 1e-9


def naive_utility(prefs: Preferences, owners) -> list[float]:
    n, m = prefs.base.shape
    if prefs.kind == "vector":
        return [float(sum(prefs.values[i][k] for k in range(m) if owners[k] == i)) for i in range(n)]
    return [float(sum(prefs.values[i][k][owners[k]] for k in range(m))) for i in range(n)]


def naive_best(prefs: Preferences, key):
    """First allocation (in product order) whose key tuple beats all earlier ones by more than TOL."""
    n, m = prefs.base.shape
    best, best_key = None, None
    for owners in itertools.product(range(n), repeat=m):
        k = key(naive_utility(prefs, owners))
        if best is None or better(k, best_key):
            best, best_key = owners, k
    return best


def better(a, b) -> bool:
    for x, y in zip(a, b):
        if x > y + TOL:
            return True
        if x < y - TOL:
            return False
    return False


def welfare_key(u):
    return (sum(u),)


def nash_key(u):
    positive = [x for x in u if x > TOL]
    return (len(positive), float(np.sum(np.log(positive))) if positive else 0.0)


def ks_key_for(prefs: Preferences):
    n, m = prefs.base.shape
    ideal = [max(naive_utility(prefs, o)[i] for o in itertools.product(range(n), repeat=m)) for i in range(n)]

    def key(u):
        ratios = [u[i] / ideal[i] if ideal[i] > 0 else 1.0 for i in range(n)]
        return (min(ratios), sum(ratios))

    return key


def naive_pareto(rows) -> list[bool]:
    def dominates(b, a):
        return all(y >= x - TOL for x, y in zip(a, b)) and any(y > x + TOL for x, y in zip(a, b))

    return [not any(dominates(b, a) for b in rows) for a in rows]


def random_games():
    rng = np.random.default_rng(2024)
    games = []
    for n, m in [(2, 1), (2, 3), (2, 5), (3, 3), (3, 4), (4, 3), (3, 2), (2, 6)]:
        levels = [1.0] if n > m else [0.0, 1.0, float(rng.uniform()), float(rng.uniform())]
        for c in levels:
            seed = int(rng.integers(1 << 30))
            games.append(generate_preferences(np.random.default_rng(seed), n, m, c))
            coop = float(rng.choice([0.0, 1.0, rng.uniform()]))
            games.append(generate_preferences(np.random.default_rng(seed), n, m, c, kind="matrix", cooperation=coop))
    return games


GAMES = random_games()
IDS = [f"{p.kind}-n{p.n_agents}-m{p.n_items}-c{p.competition:.2f}-k{p.cooperation:.2f}" for p in GAMES]


def test_all_allocations():
    assert all_allocations(2, 2).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    table = all_allocations(3, 4)
    assert table.shape == (81, 4) and np.issubdtype(table.dtype, np.integer)
    assert [tuple(row) for row in table.tolist()] == list(itertools.product(range(3), repeat=4))
    with pytest.raises(ValueError):
        table[0, 0] = 1  # shared (cached) array is read-only
    assert 10**6 <= MAX_ALLOCATIONS
    all_allocations(2, 20)  # 1,048,576 allocations are fine
    with pytest.raises(ValueError, match=r"10 agents and 12 items give 1000000000000 allocations, above MAX_ALL"):
        all_allocations(10, 12)


@pytest.mark.parametrize("prefs", GAMES, ids=IDS)
def test_solutions_match_brute_force(prefs):
    n, m = prefs.base.shape
    allocations = list(itertools.product(range(n), repeat=m))
    rows = [naive_utility(prefs, a) for a in allocations]
    table = utility_table(prefs)
    np.testing.assert_allclose(table, rows, rtol=0, atol=1e-9)

    owners, welfare = max_welfare(prefs)
    assert owners == naive_best(prefs, welfare_key)
    assert welfare == pytest.approx(sum(naive_utility(prefs, owners)))

    owners, utils = nash_bargaining(prefs)
    assert owners == naive_best(prefs, nash_key)
    np.testing.assert_allclose(utils, naive_utility(prefs, owners))

    owners, utils = kalai_smorodinsky(prefs)
    assert owners == naive_best(prefs, ks_key_for(prefs))
    np.testing.assert_allclose(utils, naive_utility(prefs, owners))

    mask = pareto_optimal_mask(table)
    assert mask.tolist() == naive_pareto(rows)
    assert [is_pareto_optimal(prefs, a) for a in allocations] == mask.tolist()
    for solve in (nash_bargaining, kalai_smorodinsky):
        assert is_pareto_optimal(prefs, solve(prefs)[0])
    assert is_pareto_optimal(prefs, max_welfare(prefs)[0])


def test_solutions_by_hand():
    base = np.array([[70, 30], [40, 60]])
    prefs = Preferences("vector", base, base, 0.0)
    assert max_welfare(prefs) == ((0, 1), 130.0)
    owners, utils = nash_bargaining(prefs)
    assert owners == (0, 1) and utils.tolist() == [70.0, 60.0]
    # ideal points 100 and 100: (0, 1) gives ratios 0.7, 0.6; (1, 0) gives 0.3, 0.4
    assert kalai_smorodinsky(prefs)[0] == (0, 1)


def test_nash_when_someone_must_get_nothing():
    """3 agents, 2 items: the product over all agents is always 0, so the rule maximises the number of
    agents with positive utility, then their product; ties go to the first allocation."""
    base = np.full((3, 2), 50)
    owners, utils = nash_bargaining(Preferences("vector", base, base, 1.0))
    assert owners == (0, 1) and utils.tolist() == [50.0, 50.0, 0.0]
    base = np.array([[90, 10], [10, 90], [50, 50]])
    owners, utils = nash_bargaining(Preferences("vector", base, base, 0.5))
    assert owners == (0, 1) and utils.tolist() == [90.0, 90.0, 0.0]


def test_ks_ignores_an_agent_who_values_nothing():
    base = np.array([[60, 40], [0, 0]])
    owners, utils = kalai_smorodinsky(Preferences("vector", base, base, 0.0))
    assert owners == (0, 0) and utils.tolist() == [100.0, 0.0]


def test_pareto_mask_keeps_ties_and_rounds():
    table = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0], [0.0, 1.0], [1.0 + 1e-12, 1.0], [0.5, 0.5]])
    assert pareto_optimal_mask(table).tolist() == [True, True, True, False, True, False]
    three = np.array([[3, 0, 0], [0, 3, 0], [1, 1, 1], [1, 1, 0], [0, 0, 3]])
    assert pareto_optimal_mask(three).tolist() == [True, True, True, False, True]
