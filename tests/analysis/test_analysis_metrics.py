"""Reference-solution metrics against brute force on small random games (vector and matrix, discounted)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from analysis.metrics import envy_free_up_to_one, game_metrics, gini
from bargain.game import generate_preferences


def brute_utilities(values: np.ndarray, kind: str, owners) -> np.ndarray:
    n = values.shape[0]
    if kind == "vector":
        return np.array([sum(values[i, k] for k, o in enumerate(owners) if o == i) for i in range(n)], float)
    return np.array([sum(values[i, k, o] for k, o in enumerate(owners)) for i in range(n)], float)


def brute_force(values: np.ndarray, kind: str) -> dict:
    """Every allocation's utilities, and the reference solutions' optimal points by their definitions."""
    n, m = values.shape[:2]
    allocs = list(itertools.product(range(n), repeat=m))
    table = np.array([brute_utilities(values, kind, a) for a in allocs])
    product = table.prod(axis=1)
    ideal = table.max(axis=0)
    ratios = table / ideal
    ks_min, ks_sum = ratios.min(axis=1), ratios.sum(axis=1)
    ks_rows = np.isclose(ks_min, ks_min.max(), rtol=0, atol=1e-9)
    ks_rows &= np.isclose(ks_sum, ks_sum[ks_rows].max(), rtol=0, atol=1e-9)

    def points(rows):
        return np.unique(np.round(table[rows], 9), axis=0)

    return {"allocs": allocs, "table": table, "max_welfare": table.sum(axis=1).max(),
            "nbs_points": points(np.isclose(product, product.max(), rtol=1e-12, atol=0)),
            "ks_points": points(ks_rows), "ideal": ideal}


def brute_pareto(table: np.ndarray, u: np.ndarray) -> bool:
    return not any((row >= u - 1e-9).all() and (row > u + 1e-9).any() for row in table)


def brute_ef1(base: np.ndarray, owners) -> bool:
    n = base.shape[0]
    for i, j in itertools.permutations(range(n), 2):
        own = sum(base[i, k] for k, o in enumerate(owners) if o == i)
        theirs = [k for k, o in enumerate(owners) if o == j]
        # Envy must vanish after removing some single item from j's bundle.
        if theirs and all(sum(base[i, k] for k in theirs if k != drop) > own + 1e-9 for drop in theirs):
            return False
    return True


def brute_gini(u: np.ndarray) -> float:
    x = np.sort(u)
    n = len(x)
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * x.sum()))


def make_record(prefs, owners, round_, gamma, status="complete") -> dict:
    n, m = prefs.base.shape
    agreement = owners is not None
    raw = brute_utilities(prefs.values, prefs.kind, owners) if agreement else np.zeros(n)
    disc = raw * gamma ** ((round_ or 1) - 1)
    return {
        "status": status,
        "game": {"n_agents": n, "n_items": m, "competition": prefs.competition, "cooperation": prefs.cooperation,
                 "gamma": gamma},
        "preferences": {"kind": prefs.kind, "values": prefs.values.tolist(), "base": prefs.base.tolist()},
        "outcome": {"agreement": agreement, "round": round_ if agreement else None,
                    "owners": list(owners) if agreement else None,
                    "raw_utility": raw.tolist(), "discounted_utility": disc.tolist()},
    }


CASES = [(n, m, kind) for n, m in ((2, 2), (2, 3), (2, 5), (3, 3), (3, 4), (3, 5)) for kind in ("vector", "matrix")]


@pytest.mark.parametrize("n,m,kind", CASES)
def test_metrics_match_brute_force(n, m, kind):
    rng = np.random.default_rng(100 * n + 10 * m + (kind == "matrix"))
    for _ in range(6):
        competition = float(rng.choice([0.0, 0.3, 0.7, 1.0]))
        cooperation = float(rng.uniform(0, 1)) if kind == "matrix" else 0.0
        prefs = generate_preferences(rng, n, m, competition, kind=kind, cooperation=cooperation)
        values = np.asarray(prefs.values, dtype=float)
        bf = brute_force(values, kind)
        owners = tuple(int(o) for o in rng.integers(0, n, m))
        round_, gamma = int(rng.integers(1, 6)), float(rng.choice([1.0, 0.9, 0.5]))
        game, agents = game_metrics(make_record(prefs, owners, round_, gamma))

        raw = brute_utilities(values, kind, owners)
        disc = raw * gamma ** (round_ - 1)
        assert game["max_welfare"] == pytest.approx(bf["max_welfare"])
        assert game["efficiency"] == pytest.approx(disc.sum() / bf["max_welfare"])
        points = bf["nbs_points"] if (bf["nbs_points"] > 0).all() else None
        if points is None:  # fewer items than agents: the Nash rule first counts who gets something
            continue
        for i, a in enumerate(agents):
            assert a["nbs_utility"] == pytest.approx(points[:, i].mean())
            assert (a["nbs_utility_low"], a["nbs_utility_high"]) == pytest.approx((points[:, i].min(), points[:, i].max()))
            assert a["ks_utility"] == pytest.approx(bf["ks_points"][:, i].mean())
            assert a["nbs_share"] == pytest.approx((points[:, i] / points.sum(axis=1)).mean())
            assert a["exploitation_index"] == pytest.approx((disc[i] - points[:, i].mean()) / points[:, i].mean())
            per_point = (disc[i] - points[:, i]) / points[:, i]
            assert (a["exploitation_index_low"], a["exploitation_index_high"]) == pytest.approx(
                (per_point.min(), per_point.max()))
        assert game["nbs_solutions"] == len(points) and game["ks_solutions"] == len(bf["ks_points"])
        assert game["pareto_optimal"] == brute_pareto(bf["table"], raw)
        assert game["ef1"] == brute_ef1(np.asarray(prefs.base, float), owners)
        if disc.sum() > 0:
            assert game["gini"] == pytest.approx(brute_gini(disc))


def permuted_record(record: dict, agents: np.ndarray, items: np.ndarray) -> dict:
    """The same game with agents and items relabelled: new seat s is old seat agents[s], new item k old items[k]."""
    values = np.asarray(record["preferences"]["values"], dtype=float)[agents][:, items]
    if record["preferences"]["kind"] == "matrix":
        values = values[:, :, agents]
    base = np.asarray(record["preferences"]["base"], dtype=float)[agents][:, items]
    outcome = dict(record["outcome"])
    if outcome["owners"] is not None:
        new_seat = np.argsort(agents)  # old seat -> new seat
        outcome["owners"] = [int(new_seat[record["outcome"]["owners"][k]]) for k in items]
    for key in ("raw_utility", "discounted_utility"):
        outcome[key] = [record["outcome"][key][a] for a in agents]
    return {**record, "preferences": {**record["preferences"], "values": values.tolist(), "base": base.tolist()},
            "outcome": outcome}


@pytest.mark.parametrize(("n", "m", "kind", "competition"), [(2, 5, "vector", 1.0), (3, 4, "vector", 1.0),
                                                             (2, 4, "matrix", 1.0), (3, 5, "vector", 0.9)])
def test_per_seat_figures_do_not_depend_on_labels(n, m, kind, competition):
    """Relabelling agents or items leaves every per-seat and game figure unchanged (ties included)."""
    rng = np.random.default_rng(n * 10 + m)
    ties = 0
    for _ in range(8):
        prefs = generate_preferences(rng, n, m, competition, kind=kind, cooperation=0.5 if kind == "matrix" else 0.0)
        owners = tuple(int(o) for o in rng.integers(0, n, m))
        record = make_record(prefs, owners, int(rng.integers(1, 5)), 0.9)
        game, agents = game_metrics(record)
        ties += game["nbs_solutions"] > 1
        for _ in range(3):
            order, items = rng.permutation(n), rng.permutation(m)
            game2, agents2 = game_metrics(permuted_record(record, order, items))
            assert game2 == pytest.approx(game, nan_ok=True)
            for new_seat, old_seat in enumerate(order):
                assert agents2[new_seat] == pytest.approx(agents[old_seat], nan_ok=True)
    assert ties or competition < 1.0  # identical valuations always tie (mirror-image splits)


def test_no_deal_and_error_games():
    prefs = generate_preferences(np.random.default_rng(1), 2, 5, 0.5)
    game, agents = game_metrics(make_record(prefs, None, None, 0.9))
    assert game["efficiency"] == 0 and game["pareto_optimal"] is False and game["ef1"] is None
    assert all(a["exploitation_index"] == -1 for a in agents)
    game, agents = game_metrics(make_record(prefs, None, None, 0.9, status="error"))
    assert math.isnan(game["efficiency"]) and game["pareto_optimal"] is None
    assert all(math.isnan(a["exploitation_index"]) for a in agents)
    assert all(a["nbs_share"] > 0 for a in agents)  # reference solutions exist regardless


def test_hand_computed_example():
    """Two agents, two items, opposite tastes: giving each their favourite is everything at once."""
    base = np.array([[80, 20], [30, 70]])
    assert envy_free_up_to_one(base, (0, 1))
    assert envy_free_up_to_one(base, (1, 0))  # envy of a one-item bundle vanishes without it
    assert not envy_free_up_to_one(base, (1, 1))  # 80 + 20 - 80 = 20 > 0
    assert not envy_free_up_to_one(np.array([[50, 30, 20], [30, 30, 40]]), (1, 1, 1))
    assert gini([50, 50]) == 0 and gini([100, 0]) == pytest.approx(0.5)
    assert math.isnan(gini([0, 0]))
