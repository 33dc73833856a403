"""The treaty game's pure rules: preference draws hit rho and theta, utilities, parsing, and reference
solutions checked against brute force over the integer agreement lattice and an independent optimiser."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from bargain.game import PRECISION
from bargain.game.treaty import (
    InvalidTerms,
    TreatyPreferences,
    generate_treaty,
    is_pareto_optimal,
    max_welfare,
    min_rho,
    most_acceptable,
    nash_bargaining,
    parse_terms,
    utilities,
)



def lattice(k: int) -> np.ndarray:
    """Every integer treaty of k issues, (101^k, k)."""
    return np.indices((101,) * k, dtype=float).reshape(k, -1).T


LATTICES = {2: lattice(2), 3: lattice(3)}  # n agents play on n issues (theta < 1 needs one issue per agent)


def draw(seed: int, n: int = 2, k: int = 5, rho: float = 0.0, theta: float = 0.5) -> TreatyPreferences:
    return generate_treaty(np.random.default_rng(seed), n, k, rho, theta)


def plain_utility(prefs: TreatyPreferences, seat: int, terms) -> float:
    """Independent of the module: the specification's formula in plain Python."""
    return sum(float(w) * (1 - abs(float(p) - float(a)) / 100)
               for p, w, a in zip(prefs.positions[seat], prefs.weights[seat], terms))


def lattice_utilities(prefs: TreatyPreferences, points: np.ndarray) -> np.ndarray:
    """(points, n) utilities of many treaties at once."""
    return (prefs.weights[None] * (100 - np.abs(prefs.positions[None] - points[:, None, :]))).sum(axis=2) / 100


def test_draws_are_valid_and_reproducible():
    for seed in range(20):
        prefs = draw(seed, n=3, k=6, rho=-0.3, theta=0.4)
        assert prefs.positions.shape == prefs.weights.shape == (3, 6)
        assert np.issubdtype(prefs.positions.dtype, np.integer) and np.issubdtype(prefs.weights.dtype, np.integer)
        assert ((prefs.positions >= 0) & (prefs.positions <= 100)).all()
        assert (prefs.weights >= 0).all() and prefs.weights.sum(axis=1).tolist() == [100] * 3
        again = draw(seed, n=3, k=6, rho=-0.3, theta=0.4)
        assert (again.positions == prefs.positions).all() and (again.weights == prefs.weights).all()
    assert not (draw(0).positions == draw(1).positions).all()


@pytest.mark.parametrize("n, k", [(2, 5), (3, 5), (4, 8)])
def test_theta_within_the_measured_precision(n, k):
    for theta in (0.0, 0.3, 0.7, 1.0):
        for seed in range(15):
            w = draw(seed, n=n, k=k, theta=theta).weights.tolist()
            for i, j in itertools.combinations(range(n), 2):
                cos = sum(a * b for a, b in zip(w[i], w[j])) / math.sqrt(sum(a * a for a in w[i]) * sum(b * b for b in w[j]))
                assert abs(cos - theta) <= PRECISION[(k, n)], (theta, seed, w)


@pytest.mark.parametrize("rho", [-0.8, 0.5])
def test_rho_is_the_population_correlation_of_the_positions(rho):
    """Pooled over 300 draws of 12 issues (3600 pairs), within 4 standard errors of the target."""
    positions = np.concatenate([draw(seed, k=12, rho=rho, theta=1.0).positions for seed in range(300)], axis=1)
    positions = positions.astype(float)
    r = np.corrcoef(positions)[0, 1]
    assert abs(r - rho) < 4 * (1 - rho**2) / math.sqrt(positions.shape[1]), r


def test_extreme_correlations_are_exact():
    for seed in range(10):
        same, opposite = draw(seed, rho=1.0), draw(seed, rho=-1.0)
        assert (same.positions[0] == same.positions[1]).all()
        assert np.abs(opposite.positions[0] + opposite.positions[1] - 100).max() <= 1  # p2 = 1 - p1, rounded
    low = min_rho(3)
    assert low == pytest.approx(6 / math.pi * math.asin(-0.25))
    prefs = draw(0, n=3, rho=low)  # the least correlation three agents can share: singular but valid
    assert prefs.positions.shape == (3, 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"n": 3, "rho": -0.6}, "game.rho=-0.6 must be in [-0.4826, 1]"),
     ({"theta": 1.2}, "game.theta=1.2 must be in [0, 1]"),
     ({"n": 3, "k": 2}, "needs game.n_issues >= env.n_agents")],
)
def test_infeasible_settings_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        draw(0, **kwargs)


def test_utilities_follow_the_specification():
    prefs = TreatyPreferences(np.array([[80, 20], [30, 30]]), np.array([[30, 70], [40, 60]]), 0.0, 0.5)
    assert utilities(prefs, [70, 30]).tolist() == pytest.approx([27 + 63, 0.6 * 40 + 60])  # the prompt's example: 27
    for seed in range(10):
        prefs = draw(seed, n=3)
        terms = np.random.default_rng(seed).integers(0, 101, 5)
        assert utilities(prefs, terms) == pytest.approx([plain_utility(prefs, i, terms) for i in range(3)])
    assert utilities(prefs, prefs.positions[0])[0] == pytest.approx(100)
    with pytest.raises(ValueError, match="one setting in \\[0, 100\\]"):
        utilities(prefs, [101, 0, 0, 0, 0])


def test_parse_terms_accepts_names_lists_and_percent_strings():
    issues = ["Tariff rate", "Aid budget"]
    assert parse_terms({" tariff RATE ": "35%", "Aid budget": 100.0}, issues) == (35, 100)
    assert parse_terms([0, 7], issues) == (0, 7)
    for obj, message in (("x", "must map issue names to settings"), ([1, 2, 3], "exactly 2 entries")):
        with pytest.raises(InvalidTerms, match=message):
            parse_terms(obj, issues)
    with pytest.raises(InvalidTerms) as excinfo:
        parse_terms({"Tariff rate": 35.5, "Fish": 3, "aid budget": True}, issues)
    text = str(excinfo.value)
    assert "'Tariff rate': 35.5 is not a whole percentage" in text and "unknown issue 'Fish'" in text
    assert "'Aid budget': True is not a number" in text
    with pytest.raises(InvalidTerms, match="'Aid budget' has no setting"):
        parse_terms({"Tariff rate": 101}, issues)


@pytest.mark.parametrize("n", [2, 3])
def test_max_welfare_matches_brute_force(n):
    for seed in range(6 if n == 2 else 2):
        prefs = draw(seed, n=n, k=n, rho=-0.3, theta=0.2)
        terms, best = max_welfare(prefs)
        assert best == pytest.approx(lattice_utilities(prefs, LATTICES[n]).sum(axis=1).max())
        assert utilities(prefs, terms).sum() == pytest.approx(best)
        wide = draw(seed, n=n, k=6)  # welfare is separable: the best setting of each issue on its own
        per_issue = sum(max(sum(w * (100 - abs(p - a)) for p, w in zip(wide.positions[:, k], wide.weights[:, k]))
                            for a in range(101)) for k in range(6)) / 100
        assert max_welfare(wide)[1] == pytest.approx(per_issue)


def test_max_welfare_reports_the_midpoint_of_tied_settings():
    prefs = TreatyPreferences(np.array([[20, 50], [60, 50]]), np.array([[50, 50], [50, 50]]), 0.0, 1.0)
    terms, best = max_welfare(prefs)  # equal weights at 20 and 60: every setting between is optimal
    assert terms.tolist() == [40.0, 50.0] and best == pytest.approx(80 + 100)


@pytest.mark.parametrize("n", [2, 3])
def test_nash_bargaining_matches_brute_force(n):
    """Against every integer treaty of n issues, then a finer grid around the best of them."""
    step = 0.01 if n == 2 else 0.05
    for seed in range(5 if n == 2 else 2):
        prefs = draw(seed, n=n, k=n, rho=-0.5 if n == 2 else -0.4, theta=0.3)
        terms, u = nash_bargaining(prefs)
        assert utilities(prefs, terms) == pytest.approx(u)
        log_lattice = np.log(lattice_utilities(prefs, LATTICES[n])).sum(axis=1)
        best = LATTICES[n][np.argmax(log_lattice)]
        assert np.log(u).sum() >= log_lattice.max() - 1e-9
        # A setting is at most 0.5 from an integer and utilities move by at most weight/100 per unit.
        assert np.log(u).sum() <= log_lattice.max() + (0.5 / u).sum()
        fine = np.array(list(itertools.product(*(np.arange(b - 1, b + 1 + step / 2, step) for b in best))))
        fine = fine[((fine >= 0) & (fine <= 100)).all(axis=1)]
        refined = lattice_utilities(prefs, fine)
        assert np.log(u).sum() >= np.log(refined).sum(axis=1).max() - 1e-9
        assert u == pytest.approx(refined[np.argmax(np.log(refined).sum(axis=1))], abs=n * step)


def test_nash_bargaining_is_certified_optimal():
    """The duality bound: by concavity, no treaty beats u on sum log U by more than
    max_a sum_i U_i(a) / u_i - n, which an issue-by-issue search over the positions computes exactly."""
    for seed in range(10):
        prefs = draw(seed, n=4, k=6, rho=-0.2, theta=0.3)
        u = nash_bargaining(prefs)[1]
        bound = sum(max(sum(w / ui * (100 - abs(p - a)) for p, w, ui in zip(prefs.positions[:, k], prefs.weights[:, k], u))
                        for a in prefs.positions[:, k]) for k in range(6)) / 100
        assert 0 <= bound - 4 <= 1e-9


def test_pareto_optimality_agrees_with_brute_force():
    rng = np.random.default_rng(0)
    for seed in range(4):
        prefs = draw(seed, n=2, k=2, rho=-0.5, theta=0.3)
        table = lattice_utilities(prefs, LATTICES[2])
        assert is_pareto_optimal(prefs, max_welfare(prefs)[0])
        assert is_pareto_optimal(prefs, nash_bargaining(prefs)[0])
        for terms in rng.integers(0, 101, (15, 2)):
            u = utilities(prefs, terms)
            dominated = ((table >= u - 1e-9).all(axis=1) & (table.sum(axis=1) > u.sum() + 1e-9)).any()
            if dominated:  # an integer treaty beats it, so it is not Pareto-optimal
                assert not is_pareto_optimal(prefs, terms)
            if is_pareto_optimal(prefs, terms):
                assert not dominated


def test_most_acceptable_keeps_the_floor_and_serves_the_others():
    for seed in range(5):
        prefs = draw(seed, n=3, rho=-0.4, theta=0.3)
        terms = most_acceptable(prefs, 0, 70.0)
        u = utilities(prefs, terms)
        assert u[0] >= 70.0 - 1e-6
        assert u[1:].min() >= utilities(prefs, prefs.positions[0])[1:].min() - 1e-6  # better than its own ideal
