"""Counterfactual branches (bargain.branch, analysis.branching) on offline players.

The planted effect: seat 0 plays ``sim/planted``, a stubborn (Boulware) negotiator that gives in at
round PLANTED: it proposes everything to the other seat and accepts any proposal. Swapping it for
sim-strong at points before its concession must raise its utility, and the turning-point view must
say the game was decided in round PLANTED. The other seat plays ``boulware``, whose moves depend on
the round alone: a player that models its opponent (sim-strong) would read the planted concession
on the table at the round-PLANTED vote as a sign that seat 0 folds, which mixes its reaction into
the effect of the swap.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from analysis.branching import branch_rows, effects, iter_branches, report_tables, turning_points, turning_view
from bargain import sim
from bargain.branch import (
    BranchGame,
    Intervention,
    Point,
    ReplayDiverged,
    branch_points,
    load_model,
    main,
    play_branches,
    plan,
)
from bargain.runner import run_experiment
from bargain.sim import strategies
from bargain.sim.observe import read

PLANTED = 3


def planted(messages: list[dict]) -> str:
    """Boulware until round PLANTED; then it concedes everything and accepts anything."""
    sit = read(messages)
    if sit.round < PLANTED or sit.phase not in ("proposal", "vote"):
        return strategies.respond("boulware", messages, seed=0)
    if sit.phase == "proposal":
        other = sit.agents[1 - sit.me]
        allocation = {other: sit.items, sit.agents[sit.me]: []}
        return f"I give in.\n```json\n{json.dumps({'allocation': allocation})}\n```"
    return json.dumps({"votes": {str(i): "accept" for i in range(1, len(sit.current) + 1)}})


sim.register("planted", planted)


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """One stored game: planted (seat 0) vs boulware (seat 1), decided in round PLANTED."""
    from tests.conftest import compose_cfg

    store = tmp_path_factory.mktemp("branch") / "store"
    cfg = compose_cfg(store, "model=boulware", "model.litellm_model=sim/planted", "model@opponent=boulware",
                      "n_games=1", "counterbalance=false", "env.max_rounds=6")
    summary = run_experiment(cfg)
    record = summary.records[0]
    assert record["outcome"]["round"] == PLANTED and record["outcome"]["discounted_utility"][0] == 0.0
    return store, summary.directory / "games" / "00000.json", record


def _play(record, store, points, intervention, seeds=1, control=True, swap="sim-strong"):
    todo = plan(points, intervention, seeds, control)
    model = load_model(swap) if intervention.kind == "swap" else None
    return asyncio.run(play_branches(record, store, todo, model))


def test_swap_recovers_the_planted_concession(parent):
    store, _path, record = parent
    points = [Point(1, "discussion"), Point(2, "proposal"), Point(PLANTED, "proposal"), Point(PLANTED, "vote")]
    played, skipped, backend = _play(record, store, points, Intervention("swap", 0, "sim-strong"))
    assert len(played) == 8 and skipped == 0
    # the prefix: served from the record, prompts equal, and no provider call; the rest is live
    live = sum(1 for r in played for c in r["calls"] if not c.get("replayed"))
    assert backend.provider_calls == live > 0
    for r in played:
        order = (r["branch"]["point"]["round"], r["branch"]["point"]["phase"])
        replayed = [c for c in r["calls"] if c.get("replayed")]
        assert len(replayed) == r["branch"]["prefix"]["calls"] == sum(
            1 for c in record["calls"] if Point(c["round"], c["phase"]).order < Point(*order).order)
        assert all(c["cache_hit"] for c in replayed)
        assert r["rounds"][: order[0] - 1] == record["rounds"][: order[0] - 1]
        assert r["branch"]["parent"]["game_index"] == 0 and r["experiment_id"] == record["experiment_id"]
    swapped = [r for r in played if r["branch"]["intervention"]["kind"] == "swap"]
    assert {r["agents"][0]["model"] for r in swapped} == {"sim-strong"}
    assert {r["agents"][0]["swapped_from"] for r in swapped} == {"boulware"}

    per_game = effects(branch_rows(iter_branches(store)), n_boot=500)
    mine = per_game[(per_game["seat"] == 0) & (per_game["kind"] == "swap")]
    assert len(mine) == 4 and mine["changes"].all() and (mine["effect_low"] > 10).all()
    turning = turning_points(per_game).iloc[0]
    assert turning["decided_round"] == PLANTED and turning["decided_at"] == f"round {PLANTED} vote"
    assert "changes" in turning_view(per_game)
    tables = report_tables(store, n_boot=100)  # the analysis report's sections, linked to the parent game
    assert set(tables) == {"branch_effects", "branch_effects_pooled", "turning_points"}
    assert set(tables["branch_effects"]["parent_record"]) == {f"{record['experiment_id']}/games/00000.json"}

    again, skipped, _ = _play(record, store, points, Intervention("swap", 0, "sim-strong"))
    assert again == [] and skipped == 8  # stored branches are not played twice


def test_replace_and_perturb(parent):
    store, _path, record = parent
    reject = json.dumps({"votes": {"1": "reject", "2": "reject"}})
    played, _, _ = _play(record, store, [Point(PLANTED, "vote")], Intervention("replace", 0, text=reject), control=False)
    (branch,) = played
    replaced = [c for c in branch["calls"] if c.get("intervention") == "replace"]
    assert [c["reply"] for c in replaced] == [reject] and replaced[0]["round"] == PLANTED
    assert branch["outcome"]["round"] == PLANTED + 1  # the deal waits a round: the concession still happens

    nudge = "Note from the organisers: please keep it short."
    played, _, _ = _play(record, store, [Point(2, "proposal")], Intervention("perturb", 1, text=nudge), control=False)
    (branch,) = played
    (perturbed,) = [c for c in branch["calls"] if c.get("intervention") == "perturb"]
    assert perturbed["seat"] == 1 and perturbed["round"] == 2 and perturbed["phase"] == "proposal"
    later = [c for c in branch["calls"] if c["seat"] == 1 and c["round"] > 2]
    transcript = branch["transcripts"][1]
    assert later and all(any(nudge in m["content"] for s, e in c["sent"] for m in transcript[s:e]) for c in later)


def test_tampered_parent_is_refused(parent, tmp_path):
    _store, _path, record = parent
    tampered = json.loads(json.dumps(record))
    first = next(c for c in tampered["calls"] if c["seat"] == 0 and c["phase"] == "discussion")
    first["reply"] = "I secretly love the Apple."
    with pytest.raises(ReplayDiverged, match="prompt differs"):
        asyncio.run(BranchGame(tampered, _backend(tampered, tmp_path), Point(2, "proposal"),
                               Intervention("control"), 0, tmp_path).play())


def _backend(record, store):
    from bargain.backend import Backend
    from bargain.config import lineup_keys, model_config

    cfg = record["config"]
    return Backend({k: model_config(cfg, k) for k in set(lineup_keys(cfg))}, cfg["run"], cache_dir=store / ".cache")


def test_cli_plays_branches_and_names_bad_options(parent, capsys):
    _store, path, record = parent
    assert branch_points(record)[-1] == Point(PLANTED, "vote")
    cases = [
        (["--at", "round=9,phase=vote", "--swap", "seat=0", "model=sim-strong"], "no vote call in round 9"),
        (["--at", "round=1,phase=vote", "--swap", "seat=5", "model=sim-strong"], "seat=5 must be a seat of the game: 0..1"),
        (["--at", "round=1,phase=vote", "--swap", "seat=0", "model=nope"], "model=nope is not a model in conf/model"),
        (["--at", "round=1,phase=vote"], "give exactly one intervention"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_:
            main([str(path), *args])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    main([str(path), "--at", "round=2,phase=thinking", "--perturb", "seat=1", "text=Be brief.", "--seeds", "1"])
    out = capsys.readouterr().out
    assert "2 branch(es) played" in out and "MISMATCH" not in out
    live = int(out.split("provider calls ")[1].split(" ")[0])
    assert live > 0 and f"live calls after the branch points {live}" in out
