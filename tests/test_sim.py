"""Offline players: a bug inside one fails the game at once, large games play, and the in-process
ladder harness gives exactly the games the served path gives."""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from bargain.runner import run_experiment
from bargain.sim import ladder, strategies


def test_an_exception_in_an_offline_player_fails_the_game_at_once(make_cfg, monkeypatch, caplog):
    """Not retried as a network error: one call, the game recorded as an error, the traceback in the log."""
    calls = []
    propose = strategies.Player.propose

    def broken(self):
        if self.name != "strong":
            return propose(self)
        calls.append(self.sit.round)
        return 1 / 0

    monkeypatch.setattr(strategies.Player, "propose", broken)
    cfg = make_cfg("n_games=1", "counterbalance=false", "run.max_retries=3", "run.backoff_base_s=0.01",
                   "run.backoff_max_s=0.01")
    with caplog.at_level(logging.ERROR):
        summary = run_experiment(cfg)
    (record,) = summary.records
    assert record["status"] == "error"
    assert record["error"]["message"].startswith("model sim-strong (model, sim/strong): litellm.BadRequestError")
    assert "offline player sim/strong failed: ZeroDivisionError: division by zero (at test_sim.py:" in \
        record["error"]["message"]
    assert "not retried" in record["error"]["message"]
    assert calls == [1]  # the first proposal, asked once
    assert "Traceback" in caplog.text and "1 / 0" in caplog.text


def test_ten_agents_and_twelve_items_play_without_enumerating_allocations(make_cfg):
    """10^12 allocations: the offline players decide by greedy search, so the game simply plays."""
    cfg = make_cfg("env.n_agents=10", "env.n_items=12", "env.max_rounds=2", "n_games=1", "counterbalance=false",
                   "model=sim-strong", "model@opponent=sim-base", "+model@opponents.a=sim-weak", "env.vote_rule=majority")
    (record,) = run_experiment(cfg).records
    assert record["status"] == "complete", record["error"]
    proposals = [p for r in record["rounds"] for p in r["proposals"]]
    assert len(proposals) == 10 * len(record["rounds"]) and all(p["valid"] for p in proposals)


def test_in_process_play_gives_the_served_games(make_cfg):
    """The ladder harness skips LiteLLM but not the players' inputs: every reply, vote and outcome agree."""
    cfg = make_cfg("n_games=2", "model=sim-strong", "model@opponent=sim-weak", "env.max_rounds=4")
    served = run_experiment(cfg).records
    direct = ladder.play(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    assert len(served) == len(direct) == 4
    for a, b in zip(served, direct):
        assert a["outcome"] == b["outcome"] and a["rounds"] == b["rounds"]
        assert [c["reply"] for c in a["calls"]] == [c["reply"] for c in b["calls"]]
