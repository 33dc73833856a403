"""Competence apart from strategy, and capability sensitivity, on planted data with known laws."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import logistic_law, write_store

from analysis.__main__ import main
from analysis.report import analyze

# Competence (format-following) rises steeply with skill; bargaining strategy *falls* with skill.
VALID_A, VALID_B = -1.0, 4.0
SHARE_A, SHARE_B = 0.5, -1.0
LADDER = {f"m{k}": {"skill": s} for k, s in enumerate((0.0, 0.25, 0.5, 0.75, 1.0))}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    store = write_store(root / "store", models=LADDER, opponent=("ref", {"skill": 0.5}), competitions=[1.0],
                        n_draws=150, law=logistic_law(SHARE_A, SHARE_B), valid_law=logistic_law(VALID_A, VALID_B),
                        invalid_p=0.05, full=False)
    return analyze(store, root / "out", capability_name="skill", n_boot=300)


def row(table, sample: str, outcome: str) -> dict:
    rows = table[(table["sample"] == sample) & (table["outcome"] == outcome)]
    assert len(rows) == 1, rows
    return rows.iloc[0].to_dict()


def test_two_part_model_recovers_competence_and_strategy(planted):
    """Part 1 finds the competence law, part 2 the strategy law; the all-games fit finds neither."""
    competence = planted.tables["competence"]
    part1 = row(competence, "all", "valid_game")
    assert part1["slope_ci_low"] <= VALID_B <= part1["slope_ci_high"], part1
    part2 = row(competence, "valid", "share")
    assert part2["slope_ci_low"] <= SHARE_B <= part2["slope_ci_high"], part2
    assert part2["slope_ci_high"] < 0  # strategy gets worse with skill ...
    pooled = row(competence, "all", "share")
    assert pooled["slope_ci_low"] > 0  # ... while all games together say the opposite
    assert row(competence, "valid", "exploitation_index")["n_obs"] == part2["n_obs"]
    headline = planted.tables["headline"]
    assert headline["slope"].iloc[0] == pytest.approx(pooled["slope"])  # (a) is the headline law


def test_ratings_separate_competence_from_strategy(planted):
    ratings = planted.tables["ratings"].set_index("model")
    valid_rate = ratings.loc[list(LADDER), "valid_rate"].to_numpy()
    expected = 1 / (1 + np.exp(-(VALID_A + VALID_B * np.array([m["skill"] for m in LADDER.values()]))))
    assert np.abs(valid_rate - expected).max() < 0.08
    assert (ratings.loc[list(LADDER), "valid_rate_low"] <= ratings.loc[list(LADDER), "valid_rate"]).all()
    strategy = ratings.loc[list(LADDER), "rating_valid"].to_numpy()
    overall = ratings.loc[list(LADDER), "rating"].to_numpy()
    assert strategy[0] > strategy[-1]  # given valid play the least skilled model bargains hardest
    assert overall[0] < overall[-1]  # with format failures counted it ranks last


def test_sensitivity_flags_an_axis_that_reverses_the_conclusion(tmp_path, capsys):
    """Share rises with parameters and the Arena score; release dates run the other way: flagged."""
    models = {
        "a": {"skill": 0.1, "params_b": 1.0, "arena_elo": 1100, "release_date": "2025-06-01"},
        "b": {"skill": 0.4, "params_b": 7.0, "arena_elo": 1200, "release_date": "2024-06-01"},
        "c": {"skill": 0.7, "params_b": 30.0, "arena_elo": 1300, "release_date": "2023-06-01"},
        "d": {"skill": 1.0, "params_b": 70.0, "arena_elo": 1350, "release_date": "2022-06-01"},
    }
    store = write_store(tmp_path / "store", models=models, opponent=("ref", {}), competitions=[1.0], n_draws=60,
                        law=logistic_law(-1.0, 2.0), full=False)
    main([str(store), "--out", str(tmp_path / "out"), "--bootstrap", "200"])
    printed = capsys.readouterr().out
    assert "Capability sensitivity" in printed and "sign changes" in printed
    table = analyze(store, tmp_path / "out2", n_boot=200).tables["sensitivity"].set_index("axis")
    assert set(table.index) == {"params_b", "release_date", "arena_elo", "skill", "bt_rating"}
    assert table.loc[["params_b", "arena_elo", "skill", "bt_rating"], "conclusion"].eq("+").all()
    assert table.loc["release_date", "conclusion"] == "-"
    assert table["flag"].eq("sign changes").all()
    assert table["slope_per_sd"].notna().all() and table["r2"].between(0, 1).all()


def test_sensitivity_needs_two_models_per_axis(tmp_path):
    models = {"a": {"skill": 0.1, "params_b": 3.0}, "b": {"skill": 0.9}}
    store = write_store(tmp_path / "store", models=models, opponent=("ref", {}), competitions=[1.0], n_draws=20,
                        law=logistic_law(-1.0, 2.0), full=False)
    table = analyze(store, tmp_path / "out", n_boot=50).tables["sensitivity"]
    assert set(table["axis"]) == {"skill", "bt_rating"}  # one model has a size: no params_b law
    assert table["flag"].eq("").all()
