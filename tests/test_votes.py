"""Vote thresholds: exact fractions, the votes each rule needs, validation, the prompt and the README table."""

import itertools
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bargain.config import ConfigError, validate
from bargain.game import accepted_proposals, generate_preferences, vote_threshold, votes_needed
from bargain.negotiation import Table

README = Path(__file__).resolve().parent.parent / "README.md"


def needed_by_counting(rule: str, n: int, p: int, q: int) -> int:
    """The smallest k that passes, by trying every k (threshold p/q in integers)."""
    passes = {
        "unanimity": lambda k: k == n,
        "majority": lambda k: 2 * k > n,
        "supermajority": lambda k: q * k >= p * n,
    }[rule]
    return next(k for k in range(n + 1) if passes(k))


@pytest.mark.parametrize("n", [3, 6, 9])
def test_shipped_supermajority_needs_two_thirds(make_cfg, n):
    """The default config's threshold passes a proposal with exactly 2n/3 accepts (0.6667 needed one more)."""
    cfg = make_cfg("env.vote_rule=supermajority")
    validate(cfg)
    k = 2 * n // 3
    votes = [[True]] * k + [[False]] * (n - k)
    assert accepted_proposals(votes, "supermajority", cfg.env.vote_threshold) == [0]
    assert accepted_proposals(votes[1:] + [[False]], "supermajority", cfg.env.vote_threshold) == []


@pytest.mark.parametrize(("text", "p", "q"), [("2/3", 2, 3), ("3/4", 3, 4), ("0.7", 7, 10), ("1", 1, 1),
                                              ("5/6", 5, 6), ("0.55", 11, 20), ("6/7", 6, 7), (0.75, 3, 4)])
def test_votes_needed_is_exact(text, p, q):
    assert vote_threshold(text) == Fraction(p, q)
    for n, rule in itertools.product(range(1, 11), ("unanimity", "majority", "supermajority")):
        assert votes_needed(rule, n, text) == needed_by_counting(rule, n, p, q), (rule, n)


def test_every_vote_pattern_at_exact_thresholds():
    """All accept/reject/invalid patterns of up to 6 voters, at thresholds where floats round badly."""
    for n, threshold in itertools.product(range(1, 7), ("2/3", "5/6", "0.7", "3/5")):
        f = Fraction(threshold)
        patterns = list(itertools.product([True, False, None], repeat=n))
        votes = [[pattern[voter] for pattern in patterns] for voter in range(n)]
        expected = [i for i, pattern in enumerate(patterns) if f.denominator * pattern.count(True) >= f.numerator * n]
        assert accepted_proposals(votes, "supermajority", threshold) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.6667", r"env.vote_threshold=0.6667 is ambiguous: write the exact fraction \(2/3"),
        ("0.67", r"env.vote_threshold=0.67 is ambiguous"),
        ("0.833", r"\(5/6"),
        ("0.5", r"env.vote_threshold=0.5 must be in \(1/2, 1\]"),
        ("1/2", r"must be in \(1/2, 1\]"),
        ("4/3", r"must be in \(1/2, 1\]"),
        ("two thirds", r"env.vote_threshold=two thirds must be a fraction such as 2/3"),
        ("1/0", r"must be a fraction"),
    ],
)
def test_threshold_validation(make_cfg, value, message):
    with pytest.raises(ValueError, match=message):
        vote_threshold(value)
    with pytest.raises(ConfigError, match=message):
        validate(make_cfg(f"env.vote_threshold='{value}'"))


@pytest.mark.parametrize(("rule", "n", "text"), [
    ("supermajority", 3, "at least 2 of the 3 agents accept it (at least 2/3 of the agents)"),
    ("supermajority", 9, "at least 6 of the 9 agents accept it"),
    ("majority", 4, "at least 3 of the 4 agents accept it (more than half)"),
    ("unanimity", 3, "every agent accepts it"),
])
def test_rules_prompt_states_the_exact_count(rule, n, text):
    table = Table(items=["A", "B", "C"], agents=[f"Agent_{i + 1}" for i in range(n)], max_rounds=3, gamma=0.9,
                  vote_rule=rule, vote_threshold="2/3", speaking_order="fixed", discussion=True,
                  discussion_turns=1, thinking=True, reflection=True, reveal_votes=True)
    prefs = generate_preferences(np.random.default_rng(0), n, 3, 1.0)
    assert f"A proposal passes if {text}" in table.system_prompt(prefs, 0)


def test_readme_table_matches_the_rules():
    """The README's table of votes needed for n = 2..10 is what the code counts."""
    text = README.read_text()
    rows = re.findall(r"^ *\| *([a-z]+(?: [0-9/]+)?) *\|((?: *\d+ *\|){9})$", text, flags=re.MULTILINE)
    assert rows, "no vote table in the README"
    table = {name: [int(x) for x in cells.strip(" |").split("|")] for name, cells in rows if name != "rule"}
    expected = {"unanimity": ("unanimity", None), "majority": ("majority", None),
                "supermajority 2/3": ("supermajority", "2/3"), "supermajority 3/4": ("supermajority", "3/4")}
    assert set(table) == set(expected)
    for name, (rule, threshold) in expected.items():
        assert table[name] == [votes_needed(rule, n, threshold or "2/3") for n in range(2, 11)], name


def test_unaffected_experiments_keep_their_ids(make_cfg):
    """Under unanimity and majority the threshold plays no part: their identity keeps the old default
    (0.6667), so stores written before thresholds were exact resume instead of replaying every game."""
    from omegaconf import OmegaConf

    from bargain.runner import identity

    for rule, expected in (("unanimity", 0.6667), ("majority", 0.6667), ("supermajority", "2/3")):
        cfg = OmegaConf.to_container(make_cfg(f"env.vote_rule={rule}"), resolve=True, enum_to_str=True)
        assert identity(cfg)["env"]["vote_threshold"] == expected
