"""Conditions come from the stored experiment identity: a sweep over any identity field is never pooled."""

from __future__ import annotations

import pytest
from synthetic import SIM_LADDER, logistic_law, write_store

from analysis.load import condition_cols, condition_fields, load_store
from analysis.report import analyze
from bargain.runner import run_experiment

# Each condition of the sweep has its own law, so a pooled fit would recover none of them.
LAWS = {(True, 0.0): 1.0, (True, 0.7): 2.5, (False, 0.0): -1.0, (False, 0.7): 0.0}


def test_discussion_and_temperature_sweep_gets_separate_fits(tmp_path):
    store = tmp_path / "store"
    for (discussion, temperature), slope in LAWS.items():
        write_store(store, models=SIM_LADDER, opponent=("sim-base", SIM_LADDER["sim-base"]), competitions=[1.0],
                    n_draws=40, law=logistic_law(-0.5, slope), full=False, env_extra={"discussion": discussion},
                    params={"temperature": temperature})
    result = analyze(store, tmp_path / "out", n_boot=200)
    headline = result.tables["headline"]
    assert {"discussion", "focal.temperature"} <= set(headline.columns)
    assert len(headline) == len(LAWS)
    for (discussion, temperature), slope in LAWS.items():
        row = headline[(headline["discussion"] == discussion) & (headline["focal.temperature"] == temperature)]
        assert len(row) == 1
        assert row["slope_ci_low"].iloc[0] <= slope <= row["slope_ci_high"].iloc[0], (discussion, temperature)
    conditions = result.tables["conditions"]
    assert len(conditions) == len(LAWS) and (conditions["n_games"] == 3 * 40 * 2).all()


def test_condition_is_the_identity_without_focal_model_seed_and_counterbalancing():
    identity = {"schema_version": 1, "seed": 3, "counterbalance": True, "prompts": "abc",
                "env": {"n_agents": 2, "discussion": False, "item_names": ["A", "B"]},
                "preferences": {"kind": "vector", "cooperation": 0.0},
                "lineup": [{"litellm_model": "openai/gpt-5.4", "params": {"temperature": 0.7},
                            "reasoning": {"effort": "high"}},
                           {"litellm_model": "sim/boulware", "params": {"temperature": 0.0, "top_p": 0.9}}]}
    assert condition_fields(identity) == {
        "game": "items", "prompts": "abc", "n_agents": 2, "discussion": False, "item_names": '["A","B"]',
        "preference_kind": "vector", "cooperation": 0.0, "focal.temperature": 0.7, "focal.reasoning.effort": "high",
        "lineup.1.model": "sim/boulware", "lineup.1.temperature": 0.0, "lineup.1.top_p": 0.9}
    other = {**identity, "seed": 4, "counterbalance": False,
             "lineup": [{**identity["lineup"][0], "litellm_model": "x/y"}, identity["lineup"][1]]}
    assert condition_fields(other) == condition_fields(identity)


def test_real_sweep_splits_on_discussion_and_opponent_temperature(make_cfg, tmp_path):
    """Offline games: discussion on/off and the opponent's temperature are conditions; a second seed is not."""
    common = ("model@opponent=boulware", "n_games=1", "env.max_rounds=2")
    for model in ("sim-weak", "sim-strong"):
        for overrides in ((), ("env.discussion=false",), ("opponent.params.temperature=0.5",), ("seed=1",)):
            run_experiment(make_cfg(f"model={model}", *common, *overrides))
    games, _ = load_store(tmp_path / "store")
    assert condition_cols(games) == ["discussion", "lineup.1.temperature"]
    assert games["condition"].nunique() == 3  # seed 1 adds draws to the default condition
    by_condition = games.groupby("condition")
    assert (by_condition["focal_model"].nunique() == 2).all()
    assert sorted(by_condition["draw_id"].nunique()) == [1, 1, 2]


def test_game_and_its_parameters_are_conditions(make_cfg, tmp_path):
    """Offline games: the item game, and the treaty game at two ideal-point correlations, are three conditions."""
    common = ("model=sim-weak", "model@opponent=boulware", "n_games=1", "env.max_rounds=2")
    for overrides in ((), ("game=treaty",), ("game=treaty", "game.rho=-0.5")):
        run_experiment(make_cfg(*common, *overrides))
    games, _ = load_store(tmp_path / "store")
    assert condition_cols(games) == ["rho"]  # competition (a key) already tells the item game apart
    assert games["condition"].nunique() == 3
    assert sorted(games.groupby("condition")["game"].first()) == ["items", "treaty", "treaty"]


@pytest.mark.parametrize(("field", "default", "value"), [("vote_threshold", "2/3", "3/4"), ("max_reasks", 2, 0)])
def test_any_identity_field_splits(tmp_path, field, default, value):
    store = tmp_path / "store"
    for extra in ({}, {field: value}):
        write_store(store, models=SIM_LADDER, opponent=("sim-base", SIM_LADDER["sim-base"]), competitions=[0.5],
                    n_draws=3, law=logistic_law(0.0, 1.0), full=False, env_extra=extra)
    games, _ = load_store(store)
    assert condition_cols(games) == [field]
    assert set(games[field]) == {default, value}
