"""Experimental axes end to end on the offline negotiators (n = 2 and n = 3): agent names and personas,
seeded prompt perturbations and access scaling (drafts and a selector)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from bargain.config import ConfigError, validate
from bargain.perturb import permuted
from bargain.prompts import render
from bargain.runner import identity, run_experiment
from bargain.store import experiment_id
from tests.test_games import check_calls, check_cofunding, check_treaty

FAST = ["n_games=1", "env.max_rounds=4"]
NAMES = "env.agent_names=[Claire Becker,Hunter Becker]"


def _id(cfg) -> str:
    validate(cfg)
    return experiment_id(identity(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))


def moves(record: dict) -> dict:
    """The record without its drafts and selections: what check_calls expects of every call."""
    calls = [c for c in record["calls"] if not c.get("access") or c["access"].get("chosen")]
    return {**record, "calls": calls, "totals": {**record["totals"], "calls": len(calls)}}


def test_names_and_personas_play_and_are_recorded(make_cfg):
    persona = "You represent a family business and care most about a fair split."
    records = run_experiment(make_cfg(*FAST, NAMES, f"env.personas=['{persona}',null]", "model@opponent=conceder")).records
    assert [r["focal_seat"] for r in records] == [0, 1]
    for record in records:
        check_calls(record)
        assert record["outcome"]["agreement"]
        assert [a["name"] for a in record["agents"]] == ["Claire Becker", "Hunter Becker"]
        assert record["game"]["agent_names"] == ["Claire Becker", "Hunter Becker"]
        assert record["game"]["personas"] == [persona, None]
        first, second = (t[0]["content"] for t in record["transcripts"])
        assert first.startswith("You are Claire Becker, one of 2 agents") and first.splitlines()[1] == persona
        assert persona not in second and second.startswith("You are Hunter Becker")
        assert any("Hunter Becker says:" in m["content"] for m in record["transcripts"][0] if m["role"] == "user")


def test_names_in_a_three_agent_treaty(make_cfg):
    cfg = make_cfg("game=treaty", *FAST, "counterbalance=false", "env.n_agents=3", "+model@opponents.b=sim-weak",
                   "env.agent_names=[Dawei Li,Taohua Li,Tanisha Washington]", "env.personas=[null,null,Be brief.]")
    (record,) = run_experiment(cfg).records
    check_treaty(record)
    assert [a["name"] for a in record["agents"]] == ["Dawei Li", "Taohua Li", "Tanisha Washington"]
    assert record["transcripts"][2][0]["content"].splitlines()[1] == "Be brief."


def test_names_and_personas_are_part_of_the_identity(make_cfg):
    base = make_cfg()
    assert not {"agent_names", "personas"} & set(identity(OmegaConf.to_container(base, resolve=True))["env"])
    ids = {_id(make_cfg(*o)) for o in ([], [NAMES], ["env.agent_names=[Hunter Becker,Claire Becker]"],
                                       ["env.personas=[Be tough.,null]"])}
    assert len(ids) == 4


@pytest.mark.parametrize("overrides, message", [
    (["env.agent_names=[A]"], "env.agent_names must list 2 distinct non-empty names (env.n_agents=2)"),
    (["env.agent_names=[A,a]"], "env.agent_names must list 2 distinct"),
    (["env.agent_names=['A: B',C]"], "env.agent_names: 'A: B' must be words"),
    (["env.personas=[x]"], "env.personas must list one persona (or null) per seat (env.n_agents=2), got 1"),
    (["perturb.scale=0"], "perturb.scale=0.0 must be > 0"),
    (["perturb.paraphrase=3"], "perturb.paraphrase=3 must be an integer in [0, 2]"),
    (["perturb.names=-1"], "perturb.names=-1 must be >= 0"),
    (["access.k=0"], "access.k=0 must be an integer in [1, 16]"),
    (["access.phases=[bargain]"], "access.phases: 'bargain' must be one of discussion, thinking"),
])
def test_bad_axis_settings_name_the_key(make_cfg, overrides, message):
    with pytest.raises(ConfigError) as excinfo:
        validate(make_cfg(*overrides))
    assert message in str(excinfo.value)


def test_unperturbed_templates_render_the_original_prompts():
    """perturbed/0 at scale 1 in points is the original wording, so a perturbation changes only what it says."""
    fields = {"unit": "points", "total": "100", "values_json": "{}"}
    assert render("perturbed/0/valuations_vector", **fields) == render("valuations_vector", **fields)
    assert permuted(["a", "b", "c"], 0) == ["a", "b", "c"] and sorted(permuted(["a", "b", "c"], 1)) == ["a", "b", "c"]
    assert permuted(list("abcdef"), 1) == permuted(list("abcdef"), 1) != permuted(list("abcdef"), 2)


@pytest.mark.parametrize("game", ["items", "treaty", "cofunding"])
def test_perturbed_prompts_keep_the_game(make_cfg, game):
    """A perturbed game is the same draw told differently; its records stay in the game's own units."""
    plain = run_experiment(make_cfg(f"game={game}", *FAST, "counterbalance=false")).records[0]
    perturbed = make_cfg(f"game={game}", *FAST, "counterbalance=false", "perturb.names=1", "perturb.scale=10",
                         "perturb.unit=dollars", "perturb.paraphrase=2")
    (record,) = run_experiment(perturbed).records
    assert record["preferences"] == plain["preferences"] and record["status"] == "complete"
    assert record["game"]["perturbation"] == {"names": 1, "scale": 10.0, "unit": "dollars", "paraphrase": 2}
    system = record["transcripts"][0][0]["content"]
    assert "dollars" in system and "points" not in system and system != plain["transcripts"][0][0]["content"]
    {"items": check_calls, "treaty": check_treaty, "cofunding": check_cofunding}[game](record)
    if game == "items":
        values = dict(zip(record["game"]["items"], record["preferences"]["values"][0]))
        shown = json.loads(system.strip().splitlines()[-1])
        assert shown == {item: 10 * v for item, v in values.items()}
        assert record["game"]["items"] != plain["game"]["items"] and sorted(record["game"]["items"]) == sorted(plain["game"]["items"])


def test_perturbed_three_agent_cofunding(make_cfg):
    cfg = make_cfg("game=cofunding", *FAST, "counterbalance=false", "env.n_agents=3", "+model@opponents.b=sim-weak",
                   "game.n_projects=4", "perturb.scale=0.5", "perturb.paraphrase=1")
    (record,) = run_experiment(cfg).records
    check_cofunding(record)
    costs = json.loads(record["transcripts"][0][0]["content"].split("Project costs: ")[1].splitlines()[0])
    assert list(costs.values()) == [c / 2 for c in record["preferences"]["costs"]]


def test_perturbation_is_part_of_the_identity(make_cfg):
    assert "perturb" not in identity(OmegaConf.to_container(make_cfg(), resolve=True))
    ids = {_id(make_cfg(*o)) for o in ([], ["perturb.names=1"], ["perturb.scale=10"], ["perturb.unit=dollars"],
                                       ["perturb.paraphrase=1"], ["perturb.paraphrase=2"])}
    assert len(ids) == 6


def test_drafts_and_selector_are_recorded_and_paid(make_cfg):
    """k = 3 drafts per move for the focal seat of a three-agent game, picked by another model."""
    cfg = make_cfg("game=treaty", *FAST, "counterbalance=false", "env.n_agents=3", "+model@opponents.b=sim-weak",
                   "access.k=3", "+model@access.selector=sim-base", "model.price_input_per_mtok=1",
                   "model.price_output_per_mtok=1")
    (record,) = run_experiment(cfg).records
    check_treaty(moves(record))
    assert record["agents"][0]["access"] == {"k": 3, "phases": ["discussion", "proposal", "pledge", "vote"],
                                             "selector": "sim-base"}
    assert "access" not in record["agents"][1]
    drafting = [c for c in record["calls"] if c.get("access")]
    assert {c["seat"] for c in drafting} == {0} and {c["phase"] for c in drafting} == {"discussion", "proposal", "vote"}
    for phase in ("discussion", "proposal", "vote"):
        turns = {(c["round"], c["attempt"]) for c in drafting if c["phase"] == phase}
        for turn in turns:
            group = [c for c in drafting if c["phase"] == phase and (c["round"], c["attempt"]) == turn]
            drafts = [c for c in group if c["access"]["role"] == "draft"]
            assert len(drafts) == 3 and sum(c["access"]["chosen"] for c in drafts) == 1
            (select,) = [c for c in group if c["access"]["role"] == "select"] or [None]
            if select:  # several usable drafts: the selector picked one of them
                chosen = next(c for c in drafts if c["access"]["chosen"])
                assert select["parsed"] == chosen["access"]["index"] and select["access"]["model"] == "access.selector"
    paid = [c for c in record["calls"] if c["seat"] == 0]
    assert all(c["cost_usd"] > 0 for c in paid if not (c.get("access") or {}).get("role") == "select")
    assert record["totals"]["cost_usd"] == pytest.approx(sum(c["cost_usd"] or 0 for c in record["calls"]))
    assert record["totals"]["calls"] == len(record["calls"]) > 3 * len([c for c in record["calls"] if c["seat"] == 1])


def test_access_is_part_of_the_identity_and_its_drafts_hit_the_budget(make_cfg):
    assert "access" not in identity(OmegaConf.to_container(make_cfg(), resolve=True))
    assert len({_id(make_cfg(*o)) for o in ([], ["access.k=2"], ["access.k=3"], ["access.k=3", "access.seats=all"],
                                            ["access.k=3", "+model@access.selector=sim-base"])}) == 5
    priced = ["n_games=1", "counterbalance=false", "env.max_rounds=3", "model.price_input_per_mtok=1",
              "model.price_output_per_mtok=1"]
    one = run_experiment(make_cfg(*priced, "access.k=1")).records[0]
    (capped,) = run_experiment(make_cfg(*priced, "access.k=3", f"run.budget_usd={one['totals']['cost_usd'] * 1.5}")).records
    assert capped["status"] == "budget_exceeded"  # the drafts cost more than the same game without them


def test_mixed_ecology_lineups_are_seeded_draws_from_the_roster(make_cfg):
    roster = "ecology.roster=[sim-weak,sim-base,boulware,conceder,fair]"
    pair = make_cfg(roster, "ecology.lineup=3", *FAST)
    validate(pair)
    assert pair.opponent.name in {"sim-weak", "sim-base", "boulware", "conceder", "fair"} and not pair.opponents
    lineups = []
    for lineup in range(4):
        cfg = make_cfg(roster, f"ecology.lineup={lineup}", "env.n_agents=5")
        validate(cfg)
        validate(cfg)  # idempotent: the sweeper validates, then the job again
        lineups.append([cfg.opponents[k].name for k in sorted(cfg.opponents)] + [cfg.opponent.name])
    assert all(len(lineup) == 4 for lineup in lineups) and len({tuple(lineup) for lineup in lineups}) > 1
    again = make_cfg(roster, "ecology.lineup=2", "env.n_agents=5")
    validate(again)
    assert [again.opponents[k].name for k in sorted(again.opponents)] + [again.opponent.name] == lineups[2]


def test_ecologies_play_end_to_end(make_cfg):
    """A mixed pair (n = 2) and a mixed ecology of three; the records name the drawn models."""
    roster = "ecology.roster=[sim-weak,boulware,conceder]"
    (pair,) = run_experiment(make_cfg(roster, "ecology.lineup=1", *FAST, "counterbalance=false")).records
    check_calls(pair)
    cfg = make_cfg(roster, "ecology.lineup=0", "game=cofunding", "env.n_agents=3", *FAST, "counterbalance=false")
    validate(cfg)
    drawn = [cfg.opponents[k].name for k in sorted(cfg.opponents)] + [cfg.opponent.name]
    (three,) = run_experiment(cfg).records
    check_cofunding(three)
    assert [a["model"] for a in three["agents"]] == ["sim-strong", *drawn]


@pytest.mark.parametrize("overrides, message", [
    (["ecology.roster=[sim-weak,nosuchmodel]"], "ecology.roster: 'nosuchmodel' is not a model config"),
    (["ecology.roster=[sim-weak]", "env.n_agents=3", "+model@opponents.b=sim-base"],
     "ecology.roster draws every seat beside the model; leave opponents empty (got opponents.b)"),
    (["ecology.roster=[sim-weak]", "ecology.lineup=-1"], "ecology.lineup=-1 must be >= 0"),
])
def test_bad_ecology_settings_name_the_key(make_cfg, overrides, message):
    with pytest.raises(ConfigError) as excinfo:
        validate(make_cfg(*overrides))
    assert message in str(excinfo.value)


def test_selector_replies_parse():
    from bargain.agents.access import parse_choice
    from bargain.agents.parsing import ParseError

    assert parse_choice('I prefer the second. {"choice": 2}', 3) == 1 and parse_choice("Draft 3", 3) == 2
    for bad in ('{"choice": 4}', "2 or 3", "none"):
        with pytest.raises(ParseError):
            parse_choice(bad, 3)
