"""Reference solutions against naive brute force on random small games (vector and matrix)."""

import itertools

import numpy as np
import pytest

from bargain.game import (
    MAX_ALLOCATIONS,
    Preferences,
    SolutionSet,
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


def naive_optimal(prefs: Preferences, key) -> list[tuple[int, ...]]:
    """Every allocation (in product order) whose key tuple no allocation beats by more than TOL."""
    n, m = prefs.base.shape
    allocations = list(itertools.product(range(n), repeat=m))
    keys = [key(naive_utility(prefs, owners)) for owners in allocations]
    return [a for a, k in zip(allocations, keys) if not any(better(other, k) for other in keys)]


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

    for solve, key in ((max_welfare, welfare_key), (nash_bargaining, nash_key),
                       (kalai_smorodinsky, ks_key_for(prefs))):
        solution = solve(prefs)
        optimal = naive_optimal(prefs, key)
        assert [tuple(o) for o in solution.outcomes.tolist()] == optimal
        np.testing.assert_allclose(solution.utilities, [naive_utility(prefs, o) for o in optimal])
        points = sorted({tuple(round(u, 9) for u in naive_utility(prefs, o)) for o in optimal})
        np.testing.assert_allclose(solution.mean, np.mean(points, axis=0))
        assert all(is_pareto_optimal(prefs, o) for o in optimal)

    mask = pareto_optimal_mask(table)
    assert mask.tolist() == naive_pareto(rows)
    assert [is_pareto_optimal(prefs, a) for a in allocations] == mask.tolist()


def test_solutions_by_hand():
    base = np.array([[70, 30], [40, 60]])
    prefs = Preferences("vector", base, base, 0.0)
    welfare = max_welfare(prefs)
    assert welfare.outcomes.tolist() == [[0, 1]] and welfare.utilities.sum(axis=1).tolist() == [130.0]
    nash = nash_bargaining(prefs)
    assert nash.outcomes.tolist() == [[0, 1]] and nash.mean.tolist() == [70.0, 60.0]
    # ideal points 100 and 100: (0, 1) gives ratios 0.7, 0.6; (1, 0) gives 0.3, 0.4
    assert kalai_smorodinsky(prefs).outcomes.tolist() == [[0, 1]]


def test_mirror_image_ties_are_kept_and_averaged():
    """Identical valuations (competition 1): both mirror-image splits are Nash and KS solutions."""
    base = np.array([[40, 35, 25], [40, 35, 25]])
    prefs = Preferences("vector", base, base, 1.0)
    for solve in (nash_bargaining, kalai_smorodinsky):
        solution = solve(prefs)
        assert sorted(map(tuple, solution.outcomes.tolist())) == [(0, 1, 1), (1, 0, 0)]  # 40 | 60 and 60 | 40
        assert solution.mean.tolist() == [50.0, 50.0]
        assert solution.low.tolist() == [40.0, 40.0] and solution.high.tolist() == [60.0, 60.0]
    assert len(max_welfare(prefs)) == 8  # every allocation sums to 100


def test_nash_when_someone_must_get_nothing():
    """3 agents, 2 items: the product over all agents is always 0, so the rule maximises the number of
    agents with positive utility, then their product; every such allocation is kept."""
    base = np.full((3, 2), 50)
    nash = nash_bargaining(Preferences("vector", base, base, 1.0))
    assert len(nash) == 6 and np.allclose(nash.mean, 100 / 3)
    assert nash.low.tolist() == [0.0] * 3 and nash.high.tolist() == [50.0] * 3
    base = np.array([[90, 10], [10, 90], [50, 50]])
    nash = nash_bargaining(Preferences("vector", base, base, 0.5))
    assert nash.outcomes.tolist() == [[0, 1]] and nash.mean.tolist() == [90.0, 90.0, 0.0]


def test_ks_ignores_an_agent_who_values_nothing():
    base = np.array([[60, 40], [0, 0]])
    ks = kalai_smorodinsky(Preferences("vector", base, base, 0.0))
    assert ks.outcomes.tolist() == [[0, 0]] and ks.mean.tolist() == [100.0, 0.0]


@pytest.mark.parametrize("prefs", GAMES, ids=IDS)
def test_permuting_agents_or_items_permutes_every_figure(prefs):
    """No reference figure depends on enumeration order: relabel agents and items, get the same figures."""
    n, m = prefs.base.shape
    rng = np.random.default_rng(n * 100 + m)
    for _ in range(3):
        agents, items = rng.permutation(n), rng.permutation(m)
        base = prefs.base[agents][:, items]
        values = prefs.values[agents][:, items] if prefs.kind == "vector" else prefs.values[agents][:, items][:, :, agents]
        permuted = Preferences(prefs.kind, values, base, prefs.competition, prefs.cooperation)
        for solve in (max_welfare, nash_bargaining, kalai_smorodinsky):
            before, after = solve(prefs), solve(permuted)
            for figure in ("mean", "low", "high"):
                np.testing.assert_allclose(getattr(after, figure), getattr(before, figure)[agents], atol=1e-9)
            assert len(after) == len(before)


def test_solution_set_validates():
    with pytest.raises(ValueError, match="need k >= 1 outcomes"):
        SolutionSet(np.zeros((0, 3)), np.zeros((0, 2)))


def test_pareto_mask_keeps_ties_and_rounds():
    table = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0], [0.0, 1.0], [1.0 + 1e-12, 1.0], [0.5, 0.5]])
    assert pareto_optimal_mask(table).tolist() == [True, True, True, False, True, False]
    three = np.array([[3, 0, 0], [0, 3, 0], [1, 1, 1], [1, 1, 0], [0, 0, 3]])
    assert pareto_optimal_mask(three).tolist() == [True, True, True, False, True]
