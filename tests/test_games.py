"""The treaty and co-funding games end to end on the offline negotiators (n = 2 and n = 3): records
recomputed from what they store, identity, validation, invalid moves, and the analysis of a store
holding all three games."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from analysis.behaviour.gaslighting import check_game
from analysis.behaviour.messages import public_messages
from analysis.browser import Chromium, find_chromium
from analysis.game_metrics import treaty_preferences
from analysis.html_report import write_report
from analysis.load import frames, iter_records
from analysis.report import analyze
from bargain import schema
from bargain.config import ConfigError, register, validate
from bargain.game.treaty import utilities as utilities_of
from bargain.run import summarize
from bargain.runner import identity, run_experiment
from bargain.status import render, scan_store

FAST = ["n_games=1", "env.max_rounds=4"]
CONF = str(Path(__file__).resolve().parents[1] / "conf")


def _plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def check_calls(record: dict) -> None:
    """Every call's reply follows what it was sent, and the totals count the calls."""
    assert record["status"] == "complete"
    n = record["game"]["n_agents"]
    assert len(record["agents"]) == n and len(record["transcripts"]) == n
    for call in record["calls"]:
        transcript = record["transcripts"][call["seat"]]
        assert transcript[call["sent"][-1][1]]["content"] == call["reply"]
    assert record["totals"]["calls"] == len(record["calls"])


def check_treaty(record: dict) -> None:
    """The outcome recomputed from the stored ideals and weights (the specification's formula)."""
    check_calls(record)
    game, prefs, outcome = record["game"], record["preferences"], record["outcome"]
    n, k = game["n_agents"], game["parameters"]["n_issues"]
    assert np.array(prefs["weights"]).sum(axis=1).tolist() == [100] * n and len(prefs["positions"][0]) == k
    assert {c["phase"] for c in record["calls"]} <= {"discussion", "thinking", "proposal", "vote", "reflection"}
    if outcome["agreement"]:
        terms = outcome["terms"]
        assert terms in [p["terms"] for p in record["rounds"][-1]["proposals"] if p["valid"]]
        for seat in range(n):
            raw = sum(w * (1 - abs(p - a) / 100) for p, w, a in zip(prefs["positions"][seat], prefs["weights"][seat], terms))
            assert outcome["raw_utility"][seat] == pytest.approx(raw)
            assert outcome["discounted_utility"][seat] == pytest.approx(raw * game["gamma"] ** (outcome["round"] - 1))
    else:
        assert outcome["raw_utility"] == [0.0] * n and len(record["rounds"]) == game["max_rounds"]


def check_cofunding(record: dict) -> None:
    """Pledges, totals, funding and utilities recomputed from the stored values, costs and budgets."""
    check_calls(record)
    game, prefs, outcome = record["game"], record["preferences"], record["outcome"]
    n = game["n_agents"]
    values, costs, budgets = np.array(prefs["values"]), np.array(prefs["costs"]), np.array(prefs["budgets"])
    assert {c["phase"] for c in record["calls"]} <= {"discussion", "thinking", "pledge", "reflection"}
    standing = np.zeros(values.shape)
    for r in record["rounds"]:
        assert "votes" not in r and len(r["pledges"]) == n
        for entry in r["pledges"]:
            if entry["valid"]:
                plan = np.array(entry["plan"])
                assert (plan >= 0).all() and (plan.sum(axis=1) <= budgets + 1e-6).all()
                standing[entry["seat"]] = plan[entry["seat"]]
            assert entry["contributions"] == pytest.approx(standing[entry["seat"]].tolist())
        assert r["totals"] == pytest.approx(standing.sum(axis=0).tolist())
        assert r["funded"] == np.flatnonzero(standing.sum(axis=0) >= costs - 1e-6).tolist()
        plans = [np.array(e["plan"]) for e in r["pledges"] if e["valid"]]
        same = len(plans) == n and all(np.abs(p - plans[0]).max() <= 0.005 for p in plans)
        assert r["same_plan"] == same
    assert outcome["agreement"] == record["rounds"][-1]["same_plan"]
    assert outcome["agreement"] or len(record["rounds"]) == game["max_rounds"]
    assert np.array(outcome["contributions"]) == pytest.approx(standing)
    chosen = standing.sum(axis=0) >= costs - 1e-6
    raw = [float(((values[i] - standing[i]) * chosen).sum()) for i in range(n)]
    assert outcome["raw_utility"] == pytest.approx(raw) and outcome["discounted_utility"] == outcome["raw_utility"]


def test_treaty_two_agents(make_cfg):
    first, second = run_experiment(make_cfg("game=treaty", *FAST)).records
    for record in (first, second):
        check_treaty(record)
        assert record["outcome"]["agreement"]  # sim-strong and boulware settle within the 4 rounds
    assert first["preferences"] == second["preferences"] and [first["focal_seat"], second["focal_seat"]] == [0, 1]
    assert first["game"]["name"] == "treaty" and first["game"]["parameters"] == {
        "n_issues": 5, "rho": 0.0, "theta": 0.5, "issue_names": None}
    system = first["transcripts"][0][0]["content"]
    assert "negotiating a treaty over 5 issues" in system and '"Tariff rate": {"ideal": ' in system


def test_treaty_three_agents(make_cfg):
    cfg = make_cfg("game=treaty", *FAST, "counterbalance=false", "env.n_agents=3", "+model@opponents.b=sim-weak",
                   "env.speaking_order=rotate", "game.rho=-0.3", "game.n_issues=4")
    (record,) = run_experiment(cfg).records
    check_treaty(record)
    assert [a["model"] for a in record["agents"]] == ["sim-strong", "sim-weak", "boulware"]
    assert len(record["preferences"]["positions"]) == 3 and len(record["game"]["issues"]) == 4
    assert len(record["rounds"][0]["proposals"]) == 3


def test_cofunding_two_agents(make_cfg):
    records = run_experiment(make_cfg("game=cofunding", *FAST, "model@opponent=sim-base")).records
    assert len(records) == 2
    for record in records:
        check_cofunding(record)
        assert record["outcome"]["funded"]  # they fund something together
    assert records[0]["game"]["parameters"]["c_min"] == 10 and records[0]["game"]["parameters"]["c_max"] == 30


def test_cofunding_three_agents(make_cfg):
    cfg = make_cfg("game=cofunding", *FAST, "counterbalance=false", "env.n_agents=3", "+model@opponents.b=sim-weak",
                   "game.alpha=0.3", "game.sigma=0.4", "game.n_projects=4")
    (record,) = run_experiment(cfg).records
    check_cofunding(record)
    assert np.array(record["preferences"]["costs"]).tolist() == record["preferences"]["costs"]
    assert record["preferences"]["scarcity"] == pytest.approx(0.4, abs=3 * 0.005 / sum(record["preferences"]["costs"]))


def test_fair_players_make_efficient_deals(make_cfg):
    """Two Nash-bargaining players agree within three rounds, near the welfare optimum."""
    for game in ("treaty", "cofunding"):
        summary = run_experiment(make_cfg(f"game={game}", "model=fair", "model@opponent=fair", "n_games=2",
                                          "counterbalance=false", "env.max_rounds=3"))
        games, _ = frames(iter_records(summary.directory.parent))  # the experiment: records with its identity
        assert games["agreement"].all(), game
        assert games["efficiency"].min() > (0.97 if game == "treaty" else 0.8), games["efficiency"].tolist()


def test_invalid_pledges_keep_the_standing_pledge(make_cfg):
    cfg = make_cfg("game=cofunding", "model.litellm_model=openai/scripted", "model.api_key_env=null", "n_games=1",
                   "counterbalance=false", "env.max_rounds=2", "env.max_reasks=1",
                   "+model.params.mock_response='{\"plan\": {\"Agent_1\": {\"Library\": 999}}}'")
    (record,) = run_experiment(cfg).records
    assert record["status"] == "complete" and record["invalid_moves"][0] == 2
    for r in record["rounds"]:
        (mine,) = [p for p in r["pledges"] if p["seat"] == 0]
        assert mine["plan"] is None and not mine["valid"] and "above its budget" in mine["error"]
        assert mine["contributions"] == [0.0] * 5  # nothing pledged: nothing filled in
    check_cofunding(record)


def test_identity_holds_the_game_and_only_what_it_uses(make_cfg):
    items = identity(_plain(make_cfg()))
    assert set(items) == {"schema_version", "seed", "counterbalance", "env", "preferences", "lineup", "prompts"}
    treaty = identity(_plain(make_cfg("game=treaty")))
    assert treaty["game"]["name"] == "treaty" and "preferences" not in treaty
    assert "competition" not in treaty["env"] and "gamma" in treaty["env"]
    cofunding = identity(_plain(make_cfg("game=cofunding")))
    assert not {"gamma", "vote_rule", "competition"} & set(cofunding["env"])
    assert len({items["prompts"], treaty["prompts"], cofunding["prompts"]}) == 3
    from bargain.store import experiment_id

    base = experiment_id(treaty)
    assert experiment_id(identity(_plain(make_cfg("game=treaty", "env.competition=0.2", "n_games=7")))) == base
    for override in ("game.rho=0.5", "game.theta=0.1", "env.gamma=0.5", "game.n_issues=6"):
        assert experiment_id(identity(_plain(make_cfg("game=treaty", override)))) != base, override


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["game=treaty", "game.rho=-0.7", "env.n_agents=3"], "game.rho=-0.7 must be in [-0.4826, 1] for env.n_agents=3"),
        (["game=treaty", "game.theta=1.5"], "game.theta=1.5 must be in [0, 1]"),
        (["game=treaty", "game.n_issues=2", "env.n_agents=3"], "needs game.n_issues >= env.n_agents"),
        (["game=treaty", "game.issue_names=[a,b]"], "game.issue_names must list 5 distinct non-empty names"),
        (["game=treaty", "preferences=matrix"], "preferences=matrix belongs to the item game"),
        (["game=cofunding", "game.sigma=0"], "game.sigma=0.0 must be in (0, 1]"),
        (["game=cofunding", "game.alpha=-0.1"], "game.alpha=-0.1 must be in [0, 1]"),
        (["game=cofunding", "game.c_min=40"], "game.c_min=40 must be <= game.c_max=30"),
        (["game=cofunding", "env.item_names=[a,b,c,d,e]"], "env.item_names names the item game's items"),
        (["game=cofunding", "game.n_projects=13"], "game.n_projects=13 must be an integer in [2, 12]"),
        (["game.name=treaty"], "game.name='treaty' does not match the game chosen"),
    ],
)
def test_bad_game_settings_name_the_key(make_cfg, overrides, message):
    with pytest.raises(ConfigError) as excinfo:
        validate(make_cfg(*overrides))
    assert message in str(excinfo.value)


@pytest.mark.parametrize("overrides, expected", [(["game=treaty", "game.rho=high"], "game.rho=high"),
                                                 (["game.rho=0.5"], "not in 'ItemsGameConfig'")])
def test_game_keys_are_typed_at_compose_time(make_cfg, overrides, expected):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as excinfo:
        make_cfg(*overrides)
    assert expected in str(excinfo.value) + str(excinfo.value.__cause__)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, list]:
    """A store holding all three games (sim-weak and sim-strong against sim-weak, 2 draws, 3 rounds)."""
    store = tmp_path_factory.mktemp("mixed") / "store"
    register()
    summaries = []
    for game in (["game=items"], ["game=treaty", "game.rho=-0.5"], ["game=cofunding", "game.alpha=0.8"]):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"store={store}", *game, "n_games=2", "counterbalance=false",
                                                           "env.max_rounds=3", "model@opponent=sim-weak"])
        summaries.append(run_experiment(cfg))
    GlobalHydra.instance().clear()
    return store, summaries


def test_analysis_status_and_summary_cover_every_game(mixed, tmp_path):
    store, summaries = mixed
    text = "\n".join(summarize(s) for s in summaries)
    assert "ideals" in text and ("treaty in round" in text or "no treaty after" in text)
    assert "pledged" in text and "funded:" in text
    result = analyze(store, tmp_path / "analysis", n_boot=20)
    games, agents = result.tables["games"], result.tables["agents"]
    assert sorted(games["game"].unique()) == ["cofunding", "items", "treaty"]
    for name in ("treaty", "cofunding"):
        rows = games[games["game"] == name]
        assert (rows["max_welfare"] > 0).all() and rows["efficiency"].notna().all() and rows["competition"].isna().all()
        assert agents.loc[agents["experiment_id"].isin(rows["experiment_id"]), "nbs_utility"].notna().all()
    co = games[games["game"] == "cofunding"]
    assert co["in_core"].notna().all() and co["nash_equilibrium"].notna().all() and (co["alpha"] == 0.8).all()
    assert games.loc[games["game"] == "treaty", "nbs_distance"].notna().all()
    assert (result.out / "report.md").exists() and (result.out / "heatmap.png").exists()
    assert {"items", "treaty", "cofunding"} <= set(result.tables["competition"]["game"])
    cells, problems = scan_store(store)
    table = render(store, cells, problems)
    assert "treaty n_issues=5 rho=-0.5 theta=0.5" in table and "cofunding n_projects=5 alpha=0.8 sigma=0.5" in table


def test_behaviour_reads_the_private_values_of_every_game(mixed):
    """The truthfulness ledger checks claims against each game's own private values."""
    store, _summaries = mixed
    seen = set()
    for record in iter_records(store):
        game, prefs = record["game"], record["preferences"]
        for msg in public_messages(record):
            if "issues" in game:
                assert msg.items == tuple(game["issues"]) and msg.values == tuple(prefs["weights"][msg.seat])
            elif "projects" in game:
                assert msg.items == tuple(game["projects"]) and msg.values == tuple(prefs["values"][msg.seat])
            seen.add(game["name"])
        check_game(record)  # statements about treaty terms or pledges are not allocations: no error, no false flag
    assert seen == {"items", "treaty", "cofunding"}

@pytest.mark.slow
def test_report_shows_every_game(mixed, tmp_path):
    """The HTML report's viewer: a treaty's proposals with their worth, a co-funding game's pledges and totals."""
    store, summaries = mixed
    path = write_report(analyze(store, tmp_path / "analysis", n_boot=20), store, tmp_path / "report.html")
    if not find_chromium():
        if os.environ.get("BARGAIN_REQUIRE_BROWSER") == "1":
            pytest.fail("BARGAIN_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium installed (apt-get install chromium)")
    treaty, cofunding = summaries[1].records[0], summaries[2].records[0]
    with Chromium(width=1400, height=1000) as browser:
        browser.open(path, ready="document.body.dataset.ready")
        for record in (treaty, cofunding):
            key = f"{record['experiment_id']}:{record['game_index']}"
            browser.eval(f"location.hash = {json.dumps('game=' + key)}")
            browser.wait_for(f"document.querySelector('#transcript') && document.querySelector('#transcript').dataset.game === {json.dumps(key)}")
            columns = browser.eval("[...document.querySelectorAll('#transcript table.game')[0].rows[0].cells].map(c => c.textContent)")
            utilities = browser.eval("[...document.querySelectorAll('#outcome tbody tr')].map(r => r.cells[3].textContent)")
            assert [float(u) for u in utilities] == pytest.approx(record["outcome"]["raw_utility"], abs=0.005)
            if record is treaty:
                assert columns[4:] == record["game"]["issues"]
                first = record["rounds"][0]["proposals"][0]
                row = browser.eval("[...document.querySelectorAll('#transcript table.proposals tbody tr')[0].cells].map(c => c.textContent)")
                assert row[2].startswith(f"{record['game']['issues'][0]} {first['terms'][0]},")
                prefs = treaty_preferences(record)
                assert float(row[3].split(" → ")[0]) == pytest.approx(utilities_of(prefs, first["terms"])[0], abs=0.005)
            else:
                assert columns[4:] == [*record["game"]["projects"], "budget"]
                plans = browser.eval("document.querySelectorAll('#transcript table.pledges tbody tr').length")
                assert plans == sum(len(r["pledges"]) for r in record["rounds"])
                totals = browser.eval("[...document.querySelectorAll('#transcript p.totals')].map(e => e.textContent)")
                assert len(totals) == len(record["rounds"]) and all(t.startswith("Totals: ") for t in totals)
        assert browser.errors == [] and browser.requests == []


def test_dry_run_estimates_every_game_from_its_own_prompts(make_cfg):
    from bargain.estimate import upper_bound

    bounds = {game: upper_bound(_plain(make_cfg(f"game={game}", "model=claude-sonnet-4-6")), "model")
              for game in ("items", "treaty", "cofunding")}
    assert all(prompt > 0 and completion > 0 for prompt, completion in bounds.values())
    assert bounds["cofunding"][1] < bounds["treaty"][1]  # no votes: fewer replies
    capped = upper_bound(_plain(make_cfg("game=cofunding", "model=claude-sonnet-4-6", "env.max_tokens.pledge=100")),
                         "model")
    assert capped[1] < bounds["cofunding"][1]  # pledges have their own reply cap


@pytest.mark.parametrize("game, block, key", [
    ("items", "outcome", "owners"), ("treaty", "outcome", "terms"), ("treaty", "preferences", "weights"),
    ("treaty", "game", "issues"), ("cofunding", "preferences", "costs"), ("cofunding", "outcome", "contributions"),
])
def test_every_game_has_a_record_schema(mixed, game, block, key):
    """Records of every game are valid; one missing a field its game needs is damaged (status, resume
    and analysis then list, quarantine and replay it)."""
    _store, summaries = mixed
    records = [r for s in summaries for r in s.records if r["game"].get("name", "items") == game]
    assert records and all(schema.problem(r) is None for r in records)
    damaged = copy.deepcopy(records[0])
    del damaged[block][key]
    assert f"'{key}' is a required property" in schema.problem(damaged)
