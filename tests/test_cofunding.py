"""The co-funding game's pure rules: draws hit alpha and sigma, utilities with refunds, plan parsing,
and reference solutions checked against independent brute force."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from analysis.game_metrics import _pareto
from bargain.game import PRECISION
from bargain.game.cofunding import (
    CofundingPreferences,
    InvalidPlan,
    best_response_gains,
    coalition_values,
    core_deficit,
    cost_range,
    funded,
    generate_cofunding,
    lindahl,
    lindahl_utilities,
    nash_bargaining,
    parse_plan,
    utilities,
    welfare_optima,
)


def draw(seed: int, n: int = 2, m: int = 5, alpha: float = 0.5, sigma: float = 0.5) -> CofundingPreferences:
    return generate_cofunding(np.random.default_rng(seed), n, m, alpha, sigma, *cost_range(n, m))


def plain_utilities(prefs: CofundingPreferences, x) -> list[float]:
    """Independent of the module: the specification's utility with refunds, in plain Python."""
    n, m = prefs.values.shape
    paid = [sum(float(x[i][j]) for i in range(n)) for j in range(m)]
    ok = [paid[j] >= prefs.costs[j] - 1e-6 for j in range(m)]
    return [sum(float(prefs.values[i][j]) - float(x[i][j]) for j in range(m) if ok[j]) for i in range(n)]


def subsets(m: int):
    return [frozenset(s) for r in range(m + 1) for s in itertools.combinations(range(m), r)]


def test_draws_are_valid_reproducible_and_on_target():
    assert cost_range(2, 5) == (10, 30) and cost_range(3, 5) == (15, 45) and cost_range(2, 5, 12, None) == (12, 30)
    for n in (2, 3):
        for alpha in (0.0, 0.4, 1.0):
            for seed in range(10):
                prefs = draw(seed, n=n, alpha=alpha, sigma=0.3)
                low, high = cost_range(n, 5)
                assert ((prefs.costs >= low) & (prefs.costs <= high)).all()
                assert prefs.values.sum(axis=1).tolist() == [100] * n and (prefs.values >= 0).all()
                assert len(set(prefs.budgets.tolist())) == 1  # equal budgets
                assert abs(prefs.scarcity() - 0.3) <= n * 0.005 / prefs.costs.sum()  # budgets rounded to cents
                v = prefs.values.tolist()
                for i, j in itertools.combinations(range(n), 2):
                    cos = sum(a * b for a, b in zip(v[i], v[j])) / math.sqrt(sum(a * a for a in v[i]) * sum(b * b for b in v[j]))
                    assert abs(cos - alpha) <= PRECISION[(5, n)]
                again = draw(seed, n=n, alpha=alpha, sigma=0.3)
                assert (again.values == prefs.values).all() and (again.costs == prefs.costs).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha": 1.5}, "game.alpha=1.5 must be in [0, 1]"), ({"sigma": 0.0}, "game.sigma=0.0 must be in (0, 1]"),
     ({"n": 3, "m": 2}, "needs game.n_projects >= env.n_agents")],
)
def test_infeasible_settings_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        draw(0, **kwargs)


def test_utilities_fund_at_cost_and_refund_the_rest():
    prefs = CofundingPreferences(np.array([[60, 40], [10, 90]]), np.array([30, 50]), np.array([40.0, 40.0]), 0.5, 1.0)
    x = [[20.0, 10.0], [10.0, 30.0]]  # project 0 reaches 30; project 1 gets 40 of 50 and is refunded
    assert funded(prefs, x).tolist() == [True, False]
    assert utilities(prefs, x).tolist() == [60 - 20, 10 - 10]
    for seed in range(10):
        prefs = draw(seed, n=3)
        x = np.random.default_rng(seed).uniform(0, prefs.budgets[0] / 3, (3, 5))
        assert utilities(prefs, x) == pytest.approx(plain_utilities(prefs, x))


def test_parse_plan_reads_names_lists_and_rejects_what_is_wrong():
    agents, projects, budgets = ["Agent_1", "Agent_2"], ["Bike lane", "Library"], [30.0, 30.0]
    plan = parse_plan({"agent_1": {"bike LANE": 10, "Library": 2.5}, "Agent_2": [0, 7]}, agents, projects, budgets)
    assert plan == ((10.0, 2.5), (0.0, 7.0))
    assert parse_plan({"Agent_2": {"Library": 1}}, agents, projects, budgets) == ((0.0, 0.0), (0.0, 1.0))
    with pytest.raises(InvalidPlan) as excinfo:
        parse_plan({"Agent_1": {"Bike lane": 25, "Library": 6}, "Agent_9": {}, "Agent_2": {"Pool": 1, "Library": -1}},
                   agents, projects, budgets)
    text = str(excinfo.value)
    assert "Agent_1 would pay 31 in total, above its budget 30" in text and "unknown participant 'Agent_9'" in text
    assert "unknown project 'Pool'" in text and "is negative (-1)" in text
    for obj, message in (([1, 2], "must map participant names"), ({"Agent_1": [1]}, "one amount per project"),
                         ({"Agent_1": {"Library": "ten"}}, "must be a number")):
        with pytest.raises(InvalidPlan, match=message):
            parse_plan(obj, agents, projects, budgets)


def test_welfare_optima_match_brute_force_and_keep_ties():
    for seed in range(20):
        prefs = draw(seed, n=3, alpha=0.3, sigma=0.4)
        surplus = prefs.values.sum(axis=0) - prefs.costs
        affordable = [s for s in subsets(5) if sum(prefs.costs[j] for j in s) <= prefs.budgets.sum() + 1e-9]
        best = max(sum(surplus[j] for j in s) for s in affordable)
        optima, welfare = welfare_optima(prefs)
        assert welfare == pytest.approx(best)
        assert {frozenset(np.flatnonzero(o)) for o in optima} == {s for s in affordable if sum(surplus[j] for j in s) == best}
    tied = CofundingPreferences(np.array([[50, 50], [50, 50]]), np.array([20, 20]), np.array([10.0, 10.0]), 1.0, 0.5)
    optima, welfare = welfare_optima(tied)  # one project affordable, either one: two optima
    assert len(optima) == 2 and welfare == 80
    assert lindahl_utilities(tied).tolist() == [40.0, 40.0]


def test_lindahl_splits_each_cost_by_value():
    prefs = draw(3, n=3)
    chosen = welfare_optima(prefs)[0][0]
    x = lindahl(prefs, chosen)
    assert x.sum(axis=0) == pytest.approx(np.where(chosen, prefs.costs, 0))
    for j in np.flatnonzero(chosen):
        assert x[:, j] == pytest.approx(prefs.costs[j] * prefs.values[:, j] / prefs.values[:, j].sum())


@pytest.mark.parametrize("n", [2, 3])
def test_nash_bargaining_matches_brute_force(n):
    """Every funded set, and a grid of payments (0.05 for two agents, 0.5 for three) with utilities >= 0."""
    step = 0.05 if n == 2 else 0.5
    for seed in range(6):
        prefs = draw(seed, n=n, m=4 if n == 2 else 3, alpha=0.4, sigma=0.6)
        best = (-1, -np.inf)
        for s in subsets(prefs.n_projects):
            cost = float(sum(prefs.costs[j] for j in s))
            worth = np.array([sum(prefs.values[i][j] for j in s) for i in range(n)], dtype=float)
            grids = [np.arange(0, min(prefs.budgets[i], cost) + 1e-9, step) for i in range(n - 1)]
            for head in itertools.product(*grids):
                pays = np.array([*head, cost - sum(head)])
                u = worth - pays
                if pays[-1] < -1e-9 or pays[-1] > prefs.budgets[-1] + 1e-9 or (u < -1e-9).any():
                    continue
                positive = u > 1e-9
                best = max(best, (int(positive.sum()), float(np.log(u[positive]).sum())))
        _, u = nash_bargaining(prefs)
        positive = u > 1e-9
        ours = (int(positive.sum()), float(np.log(u[positive]).sum()))
        assert ours[0] == best[0] and ours[1] >= best[1] - 1e-9
        # A grid point lies within a step of every payment but the last, which then moves by up to (n - 1) steps.
        assert ours[1] <= best[1] + (n * step / u[positive]).sum()


def test_nash_bargaining_gives_nothing_when_no_one_can_gain_without_someone_losing():
    # Each values only its own project, which costs more than its budget: no individually rational deal.
    prefs = CofundingPreferences(np.array([[100, 0], [0, 100]]), np.array([30, 30]), np.array([20.0, 20.0]), 0.0, 2 / 3)
    optima, u = nash_bargaining(prefs)
    assert u.tolist() == [0.0, 0.0] and [o.tolist() for o in optima] == [[False, False]]


def test_coalition_values_and_core_match_brute_force():
    for seed in range(5):
        prefs = draw(seed, n=3, alpha=0.3, sigma=0.5)
        values = coalition_values(prefs)
        for mask in range(1, 8):
            members = [i for i in range(3) if mask >> i & 1]
            budget = sum(prefs.budgets[i] for i in members)
            best = max(sum(prefs.values[members][:, j].sum() - prefs.costs[j] for j in s)
                       for s in subsets(5) if sum(prefs.costs[j] for j in s) <= budget + 1e-9)
            assert values[mask] == pytest.approx(best)
        optima, welfare = welfare_optima(prefs)
        assert values[7] == pytest.approx(welfare)
        assert core_deficit(prefs, [0.0, 0.0, 0.0]) == pytest.approx(max(values[1:]))
        assert core_deficit(prefs, np.full(3, welfare / 3) + 100) < 0  # everyone above anything a coalition can do


def test_best_responses_match_brute_force():
    """Against every deviation on a grid of 1 (costs and values are integers, so it contains the best)."""
    rng = np.random.default_rng(1)
    for seed in range(6):
        prefs = draw(seed, n=2, m=3, alpha=0.5, sigma=0.6)
        x = np.floor(rng.uniform(0, prefs.budgets[0] / 3, (2, 3)))
        gains = best_response_gains(prefs, x)
        rows = np.indices([int(c) + 1 for c in prefs.costs]).reshape(3, -1).T  # every integer pledge up to the costs
        for i in range(2):
            mine = rows[rows.sum(axis=1) <= prefs.budgets[i] + 1e-9]
            reached = mine + (x.sum(axis=0) - x[i]) >= prefs.costs
            best = ((prefs.values[i] - mine) * reached).sum(axis=1).max()
            assert gains[i] == pytest.approx(max(best - utilities(prefs, x)[i], 0.0))
    prefs = draw(0)
    stingy = np.zeros((2, 5))  # nobody pays: someone can fund a project it values alone
    assert best_response_gains(prefs, stingy).max() > 0


def test_pareto_check_matches_brute_force():
    """Two agents: every funded set and a 0.25 grid of splits, against random outcomes."""
    rng = np.random.default_rng(2)
    for seed in range(4):
        prefs = draw(seed, n=2, m=3, alpha=0.5, sigma=0.7)
        reachable = []
        for s in subsets(3):
            cost = float(sum(prefs.costs[j] for j in s))
            worth = np.array([sum(prefs.values[i][j] for j in s) for i in range(2)], dtype=float)
            for pay in np.arange(0, min(prefs.budgets[0], cost) + 1e-9, 0.25):
                if cost - pay <= prefs.budgets[1] + 1e-9:
                    reachable.append(worth - [pay, cost - pay])
        reachable = np.array(reachable)
        for _ in range(20):
            x = np.round(rng.uniform(0, prefs.budgets[0] / 2, (2, 3)) * 4) / 4
            u = utilities(prefs, x)
            dominated = ((reachable >= u - 1e-9).all(axis=1) & (reachable > u + 1e-9).any(axis=1)).any()
            if dominated:
                assert not _pareto(prefs, u)
            if _pareto(prefs, u):
                assert not dominated
