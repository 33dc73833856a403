"""Behaviour tables on a synthetic ladder with planted lies: rates are recovered exactly per agent and
game, their scaling with capability uses the utility outcomes' fits, and they line up with exploitation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import SIM_LADDER, logistic_law, write_store

from analysis import fits
from analysis.behaviour.tables import agent_rates, behaviour_tables, judged_frames, record_frames
from analysis.load import capability, load_store


def plant_lies(store, rate_of) -> dict:
    """Rewrite every public message: the focal agent lies about its best item with probability
    rate_of(skill), otherwise it tells the truth; the opponent always tells the truth. Returns the
    planted misrepresentation rate per (experiment, game, seat)."""
    rng = np.random.default_rng(7)
    planted = {}
    for path in sorted(store.glob("*/games/*.json")):
        record = json.loads(path.read_text())
        items = record["game"]["items"]
        for seat, agent in enumerate(record["agents"]):
            best = items[int(np.argmax(record["preferences"]["values"][seat]))]
            p = rate_of(agent["metadata"]["skill"]) if seat == record["focal_seat"] else 0.0
            lies = []
            for r in record["rounds"]:
                for d in r["discussion"]:
                    if d["seat"] == seat:
                        lie = bool(rng.random() < p)
                        d["text"] = f"The {best} is worth nothing to me." if lie else f"The {best} matters most to me."
                        lies.append(lie)
            planted[(record["experiment_id"], record["game_index"], seat)] = float(np.mean(lies)) if lies else np.nan
        path.write_text(json.dumps(record))
    return planted


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    store = write_store(tmp_path_factory.mktemp("ladder") / "store", models=SIM_LADDER,
                        opponent=("sim-base", SIM_LADDER["sim-base"]), competitions=[1.0], n_draws=30,
                        law=logistic_law(-1.0, 2.0))
    return store, plant_lies(store, rate_of=lambda skill: skill)


def test_planted_lies_are_recovered_exactly(ladder):
    store, planted = ladder
    messages, claims, flags = record_frames(store)
    judged, _ = judged_frames(store / "judgements")
    rates = agent_rates(messages, judged)
    lies = rates[rates["behaviour"] == "misrepresentation"]
    got = {(e, int(g), int(s)): r for e, g, s, r in lies[["experiment_id", "game_index", "seat", "rate"]].itertuples(index=False)}
    want = {k: v for k, v in planted.items() if not np.isnan(v)}
    assert got.keys() == want.keys() and all(got[k] == pytest.approx(want[k]) for k in want)
    assert (claims["false"] == claims["kind"].eq("low")).all()  # every lie is a false "low" claim, every truth true
    assert flags.empty and (rates.loc[rates["behaviour"] == "gaslighting", "rate"] == 0).all()


def test_rates_scale_with_capability_and_go_with_exploitation(ladder):
    store, _ = ladder
    _games, agents = load_store(store)
    focal = fits.focal_rows(agents, capability(agents, "skill"))
    tables = behaviour_tables(store, agents, focal, ["opponent", "competition"], n_boot=300)
    rates = tables["behaviour_rates"].query("behaviour == 'misrepresentation' and source == 'record'")
    rates = rates.set_index(["model", "opponent"])
    # planted: the focal seat lies at rate = skill, the opponent never; sim-base also meets itself (both seats)
    for (model, opponent), expected in {("sim-weak", "sim-base"): 0.2, ("sim-strong", "sim-base"): 0.9,
                                        ("sim-base", "sim-base"): 0.25, ("sim-base", "sim-strong"): 0.0}.items():
        row = rates.loc[(model, opponent)]
        assert row["rate_low"] <= expected <= row["rate_high"], (model, opponent, row["rate"])
    law = tables["behaviour_scaling"].query("behaviour == 'misrepresentation' and source == 'record'").iloc[0]
    assert law["slope"] > 0 and law["slope_ci_low"] > 0 and law["slope_boot_low"] > 0  # the fits' own intervals
    truth = tables["truthfulness"].set_index("model")
    assert truth.loc["sim-strong", "misrep_rate"] > truth.loc["sim-weak", "misrep_rate"]
    assert (tables["truthfulness_by_round"]["misrep_rate"].between(0, 1)).all()
    exploit = tables["behaviour_exploitation"].query("behaviour == 'misrepresentation' and outcome == 'exploitation_index'")
    assert exploit.iloc[0]["slope"] > 0  # the stronger models lie more and extract more
