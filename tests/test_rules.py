"""Rules: utilities, discounting, allocation parsing, voting, tie-breaks, speaking order."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from bargain.game import (
    InvalidAllocation,
    Preferences,
    accepted_proposals,
    choose_proposal,
    discounted,
    generate_preferences,
    parse_allocation,
    speaking_order,
    utilities,
)

AGENTS = ["Agent_1", "Agent_2"]
ITEMS = ["Apple", "Jewel", "Stone", "Quill", "Pencil"]


def brute_utility(prefs: Preferences, owners) -> list[float]:
    """Independent loop over the definitions in the contract."""
    n, m = prefs.base.shape
    out = []
    for i in range(n):
        total = 0.0
        for k in range(m):
            j = owners[k]
            if prefs.kind == "vector":
                total += prefs.base[i][k] if j == i else 0.0
            else:
                total += prefs.base[i][k] if j == i else prefs.cooperation * prefs.base[j][k]
        out.append(total)
    return out


@pytest.mark.parametrize("kind", ["vector", "matrix"])
@pytest.mark.parametrize(("n", "m"), [(2, 5), (3, 4), (4, 6), (2, 1)])
def test_utilities_match_brute_force(kind, n, m):
    rng = np.random.default_rng([n, m])
    for seed in range(5):
        c = 1.0 if n > m else float(rng.uniform())
        coop = float(rng.uniform()) if kind == "matrix" else 0.0
        prefs = generate_preferences(np.random.default_rng(seed), n, m, c, kind=kind, cooperation=coop)
        for _ in range(40):
            owners = tuple(int(x) for x in rng.integers(n, size=m))
            got = utilities(prefs, owners)
            assert got.shape == (n,)
            np.testing.assert_allclose(got, brute_utility(prefs, owners), rtol=0, atol=1e-9)
            np.testing.assert_allclose(utilities(prefs, list(owners)), got)


def test_matrix_cooperation_zero_equals_vector():
    vec = generate_preferences(np.random.default_rng(3), 3, 5, 0.4)
    mat = generate_preferences(np.random.default_rng(3), 3, 5, 0.4, kind="matrix", cooperation=0.0)
    for owners in itertools.product(range(3), repeat=5):
        np.testing.assert_array_equal(utilities(vec, owners), utilities(mat, owners))


@pytest.mark.parametrize("owners", [(0, 1), (0, 1, 2, 0, 1), (0, 1, 0, 1, -1), (0, 1, 0, 1, 0.5)])
def test_utilities_reject_bad_owners(owners):
    prefs = generate_preferences(np.random.default_rng(0), 2, 5, 0.5)
    with pytest.raises(ValueError, match="owners must list one agent in 0..1 for each of the 5 items"):
        utilities(prefs, owners)


def test_discounted():
    raw = np.array([60.0, 40.0])
    for gamma in (0.9, 0.5, 1.0):
        for r in range(1, 6):
            expected = [u * gamma ** (r - 1) for u in raw]
            np.testing.assert_allclose(discounted(raw, gamma, r), expected, rtol=1e-15)
    np.testing.assert_array_equal(discounted([60, 40], 0.9, 1), raw)  # round 1 undiscounted
    with pytest.raises(ValueError, match="round_=0 must be >= 1"):
        discounted(raw, 0.9, 0)
    with pytest.raises(ValueError, match=r"env.gamma=1.5 must be in \(0, 1\]"):
        discounted(raw, 1.5, 1)


# --- parse_allocation -------------------------------------------------------------------------


def parse(obj):
    return parse_allocation(obj, AGENTS, ITEMS)


def test_parse_accepts_names_indices_and_digit_strings():
    assert parse({"Agent_1": ["Apple", "jewel"], "Agent_2": ["STONE", "Quill", "Pencil"]}) == (0, 0, 1, 1, 1)
    assert parse({"agent_2": [0, "1", " 2 "], " AGENT_1 ": [" quill ", 4]}) == (1, 1, 1, 0, 0)
    assert parse({"Agent_1": [], "Agent_2": [4, 3, 2, 1, 0]}) == (1, 1, 1, 1, 1)
    assert parse({"Agent_2": list(ITEMS)}) == (1, 1, 1, 1, 1)  # an agent left out gets nothing
    assert parse({"Agent_1": (np.int64(0), 1, 2, 3, 4)}) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"Agent_1": ["Apple", "Jewel"], "Agent_2": ["Stone", "Pencil"]}, "item 'Quill' (index 3) is not allocated"),
        (
            {"Agent_1": ["Apple", "Jewel", "apple"], "Agent_2": ["Stone", "Quill", "Pencil"]},
            "item 'Apple' (index 0) is given twice to Agent_1",
        ),
        (
            {"Agent_1": ["Apple", "Jewel"], "Agent_2": ["Stone", "Quill", "Pencil", 1]},
            "item 'Jewel' (index 1) is given to both Agent_1 and Agent_2",
        ),
        (
            {"Agent_1": list(ITEMS), "Agent_3": []},
            "unknown agent 'Agent_3' (agents are Agent_1, Agent_2)",
        ),
        (
            {"Agent_1": ["Apple", "Jewel", "Stone", "Quill", "Pencil", "Banana"]},
            "Agent_1: unknown item 'Banana' (items are Apple, Jewel, Stone, Quill, Pencil)",
        ),
        ({"Agent_1": [0, 1, 2, 3, 7]}, "Agent_1: bad index 7 (items are 0..4)"),
        ({"Agent_1": [0, 1, 2, 3, "7"]}, "Agent_1: bad index 7 (items are 0..4)"),
        ({"Agent_1": [0, 1, 2, 3, 4, -1]}, "Agent_1: negative index -1"),
        ({"Agent_1": [0, 1, 2, 3, 4, "-2"]}, "Agent_1: negative index -2"),
        ({"Agent_1": "Apple, Jewel"}, "Agent_1: expected a list of items, got str 'Apple, Jewel'"),
        ({"Agent_1": {"Apple": 1}}, "Agent_1: expected a list of items, got dict {'Apple': 1}"),
        ({"Agent_1": 3}, "Agent_1: expected a list of items, got int 3"),
        ({"Agent_1": None}, "Agent_1: expected a list of items, got NoneType None"),
        ({"Agent_1": [0, 1, 2, 3, True]}, "Agent_1: True is not an item (use an item name or index)"),
        ({"Agent_1": [0, 1, 2, 3, 4.0]}, "Agent_1: 4.0 is not an item name or index"),
        ({"Agent_1": [0, 1, 2, 3, None]}, "Agent_1: None is not an item name or index"),
        ({"Agent_1": [0, 1, 2, 3, 4], "agent_1": []}, "agent Agent_1 is listed twice"),
        ({1: [0, 1, 2, 3, 4]}, "unknown agent 1 (agents are Agent_1, Agent_2)"),
        ([["Apple"]], "the allocation must map agent names to lists of items, got list"),
        ("Agent_1 gets everything", "the allocation must map agent names to lists of items, got str"),
    ],
)
def test_parse_rejects_with_exact_message(obj, message):
    with pytest.raises(InvalidAllocation) as info:
        parse(obj)
    problems = str(info.value).split("; ")
    assert message in problems
    assert isinstance(info.value, ValueError)


def test_parse_lists_every_problem():
    with pytest.raises(InvalidAllocation) as info:
        parse({"Agent_1": ["Apple", 9], "Agent_2": ["Apple", "Stone"]})
    assert str(info.value) == (
        "Agent_1: bad index 9 (items are 0..4); item 'Apple' (index 0) is given to both Agent_1 and Agent_2; "
        "item 'Jewel' (index 1) is not allocated; item 'Quill' (index 3) is not allocated; "
        "item 'Pencil' (index 4) is not allocated"
    )


# --- voting -----------------------------------------------------------------------------------


def reference_passes(column: tuple[bool | None, ...], rule: str) -> bool:
    """Pass rule in integer arithmetic; supermajority at threshold 2/3."""
    accepts = sum(1 for v in column if v is True)
    n = len(column)
    if rule == "unanimity":
        return accepts == n
    if rule == "majority":
        return 2 * accepts > n
    return 3 * accepts >= 2 * n


@pytest.mark.parametrize("rule", ["unanimity", "supermajority", "majority"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_every_vote_pattern(rule, n):
    """All True/False/None patterns of n voters on one proposal, against an independent count."""
    patterns = list(itertools.product([True, False, None], repeat=n))
    votes = [[pattern[voter] for pattern in patterns] for voter in range(n)]  # one proposal per pattern
    got = accepted_proposals(votes, rule, "2/3")
    expected = [p for p, pattern in enumerate(patterns) if reference_passes(pattern, rule)]
    assert got == expected


def test_vote_rules_by_hand():
    three = [[True, True, None], [True, False, True], [True, True, False]]  # proposals 0, 1, 2
    assert accepted_proposals(three, "unanimity", "2/3") == [0]
    assert accepted_proposals(three, "supermajority", "2/3") == [0, 1]  # 2 of 3 suffice
    assert accepted_proposals(three, "majority", 0.99) == [0, 1]
    assert accepted_proposals(three, "supermajority", 1.0) == [0]
    # None is never an accept: one invalid vote blocks unanimity
    assert accepted_proposals([[True], [None]], "unanimity", 1.0) == []
    # majority is strict: 2 of 4 do not pass, 3 of 4 do
    four = [[True, True], [True, True], [False, True], [None, False]]
    assert accepted_proposals(four, "majority", 0.5) == [1]
    # 0.7 * 10 is 7.000000000000001 in floats: 7 of 10 must pass, not 8
    ten = [[True]] * 7 + [[False]] * 3
    assert accepted_proposals(ten, "supermajority", 0.7) == [0]
    assert accepted_proposals(ten[1:] + [[False]], "supermajority", 0.7) == []
    assert accepted_proposals([[], []], "unanimity", 1.0) == []


def test_vote_validation():
    with pytest.raises(ValueError, match="env.vote_rule='plurality' must be one of unanimity, supermajority, majority"):
        accepted_proposals([[True]], "plurality", 0.5)
    with pytest.raises(ValueError, match=r"env.vote_threshold=0 must be in \(1/2, 1\]"):
        accepted_proposals([[True]], "supermajority", 0)
    with pytest.raises(ValueError, match="one True/False/None per proposal"):
        accepted_proposals([[True, True], [True]], "unanimity", 1.0)
    with pytest.raises(ValueError, match="one True/False/None per proposal"):
        accepted_proposals([["accept"]], "unanimity", 1.0)
    with pytest.raises(ValueError, match="got none"):
        accepted_proposals([], "unanimity", 1.0)


def test_choose_proposal_is_seeded_and_uniform():
    assert choose_proposal(np.random.default_rng(0), []) is None
    assert choose_proposal(np.random.default_rng(0), [2]) == 2
    draws = [choose_proposal(np.random.default_rng(seed), [0, 1, 2]) for seed in range(3000)]
    assert draws == [choose_proposal(np.random.default_rng(seed), [0, 1, 2]) for seed in range(3000)]
    counts = Counter(draws)
    assert set(counts) == {0, 1, 2}
    assert all(900 <= counts[p] <= 1100 for p in range(3)), counts  # 1000 expected, sd ~26
    assert set(choose_proposal(np.random.default_rng(seed), [1, 3]) for seed in range(50)) == {1, 3}


# --- speaking order ---------------------------------------------------------------------------


def test_fixed_reversed_rotate():
    for r in range(1, 6):
        assert speaking_order("fixed", 3, r) == [0, 1, 2]
        assert speaking_order("reversed", 3, r) == [2, 1, 0]
    assert [speaking_order("rotate", 3, r) for r in range(1, 5)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]
    assert [speaking_order("rotate", 2, r) for r in range(1, 4)] == [[0, 1], [1, 0], [0, 1]]


def test_random_order_is_a_seeded_shuffle_each_round():
    rng = np.random.default_rng(7)
    orders = [speaking_order("random", 4, r, rng) for r in range(1, 11)]
    again = np.random.default_rng(7)
    assert orders == [speaking_order("random", 4, r, again) for r in range(1, 11)]
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    assert len({tuple(order) for order in orders}) > 1  # reshuffled, not one order for the game
    seen = Counter(tuple(speaking_order("random", 3, 1, np.random.default_rng(s))) for s in range(600))
    assert len(seen) == math.factorial(3) and min(seen.values()) > 60  # all 6 orders, ~100 each


def test_speaking_order_validation():
    with pytest.raises(ValueError, match="env.speaking_order='alpha' must be one of fixed, reversed, random, rotate"):
        speaking_order("alpha", 2, 1)
    with pytest.raises(ValueError, match="needs an rng"):
        speaking_order("random", 2, 1)
    with pytest.raises(ValueError, match="round_ >= 1"):
        speaking_order("rotate", 2, 0)
