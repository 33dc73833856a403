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
    """Every allocation's utilities, and the reference solutions by their definitions."""
    n, m = values.shape[:2]
    allocs = list(itertools.product(range(n), repeat=m))
    table = np.array([brute_utilities(values, kind, a) for a in allocs])
    product = table.prod(axis=1)
    ideal = table.max(axis=0)
    ks_score = (table / ideal).min(axis=1)
    return {"allocs": allocs, "table": table, "max_welfare": table.sum(axis=1).max(),
            "nbs_product": product.max(), "nbs_set": table[np.isclose(product, product.max())],
            "ks_score": ks_score.max(), "ideal": ideal}


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
        nbs = np.array([a["nbs_utility"] for a in agents])
        assert np.prod(nbs) == pytest.approx(bf["nbs_product"])
        assert any(np.allclose(nbs, row) for row in bf["nbs_set"])
        ks = np.array([a["ks_utility"] for a in agents])
        assert (ks / bf["ideal"]).min() == pytest.approx(bf["ks_score"])
        assert game["pareto_optimal"] == brute_pareto(bf["table"], raw)
        assert game["ef1"] == brute_ef1(np.asarray(prefs.base, float), owners)
        if disc.sum() > 0:
            assert game["gini"] == pytest.approx(brute_gini(disc))
        for i, a in enumerate(agents):
            if nbs[i] > 0:
                assert a["exploitation_index"] == pytest.approx((disc[i] - nbs[i]) / nbs[i])
            else:  # fewer items than agents: someone gets nothing even in the NBS
                assert math.isnan(a["exploitation_index"])
            assert a["nbs_share"] == pytest.approx(nbs[i] / nbs.sum())


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
