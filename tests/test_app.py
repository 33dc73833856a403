"""The app end to end on the offline negotiators: composition, validation, games, records, resume."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf.errors import ValidationError

from bargain.config import ConfigError, validate
from bargain.game import generate_preferences, utilities
from bargain.runner import identity, run_experiment
from bargain.store import experiment_id, load_record

ROOT = Path(__file__).resolve().parents[1]


def check_record(record: dict) -> None:
    """Every invariant a complete record must satisfy, recomputed from what it stores."""
    assert record["status"] == "complete"
    game, outcome = record["game"], record["outcome"]
    n, m = game["n_agents"], game["n_items"]
    assert len(record["agents"]) == n and len(record["transcripts"]) == n
    values = record["preferences"]["values"]
    assert len(values) == n
    if outcome["agreement"]:
        owners = outcome["owners"]
        assert len(owners) == m and all(0 <= o < n for o in owners)
        chosen = record["rounds"][-1]["proposals"]
        assert owners in [p["owners"] for p in chosen if p["valid"]]
        for seat in range(n):
            if record["preferences"]["kind"] == "vector":
                raw = sum(values[seat][k] for k in range(m) if owners[k] == seat)
            else:
                raw = sum(values[seat][k][owners[k]] for k in range(m))
            assert outcome["raw_utility"][seat] == pytest.approx(raw)
            assert outcome["discounted_utility"][seat] == pytest.approx(raw * game["gamma"] ** (outcome["round"] - 1))
    else:
        assert outcome["raw_utility"] == [0.0] * n and len(record["rounds"]) == game["max_rounds"]
    for call in record["calls"]:
        transcript = record["transcripts"][call["seat"]]
        sent = [msg for start, end in call["sent"] for msg in transcript[start:end]]
        assert sent[0]["role"] == "system" and sent[-1]["role"] == "user"
        assert transcript[call["sent"][-1][1]]["content"] == call["reply"]  # the reply follows what was sent
    assert record["totals"]["calls"] == len(record["calls"])


def test_offline_game_two_agents(make_cfg):
    summary = run_experiment(make_cfg("n_games=1"))
    assert len(summary.records) == 2  # one draw, played once per seat
    for record in summary.records:
        check_record(record)
        assert {a["model"] for a in record["agents"]} == {"sim-strong", "boulware"}
        assert record["calls"] and all(c["phase"] in {"discussion", "thinking", "proposal", "vote", "reflection"} for c in record["calls"])
    first, second = summary.records
    assert first["preferences"] == second["preferences"]  # paired: same draw, seats swapped
    assert first["focal_seat"] == 0 and second["focal_seat"] == 1
    stored = load_record(summary.directory / "games" / "00000.json")
    assert stored["outcome"] == first["outcome"]


def test_offline_game_three_agents_matrix(make_cfg):
    cfg = make_cfg("n_games=1", "counterbalance=false", "env.n_agents=3", "preferences=matrix",
                   "+model@opponents.b=sim-weak", "env.speaking_order=rotate")
    (record,) = run_experiment(cfg).records
    check_record(record)
    assert [a["model"] for a in record["agents"]] == ["sim-strong", "sim-weak", "boulware"]
    assert record["preferences"]["kind"] == "matrix"
    assert len(record["preferences"]["values"][0][0]) == 3
    assert record["rounds"][0]["speaking_order"] == [0, 1, 2]
    if len(record["rounds"]) > 1:
        assert record["rounds"][1]["speaking_order"] == [1, 2, 0]


def test_resume_plays_only_missing_games(make_cfg):
    cfg = make_cfg("n_games=2")
    first = run_experiment(cfg)
    assert len(first.records) == 4 and first.skipped == 0
    again = run_experiment(cfg)
    assert again.records == [] and again.skipped == 4
    (first.directory / "games" / "00002.json").unlink()
    resumed = run_experiment(make_cfg("n_games=3"))  # one lost game and one new draw
    assert [r["game_index"] for r in resumed.records] == [2, 4, 5]


def test_identity_ignores_runtime_fields(make_cfg):
    base = experiment_id(identity(_plain(make_cfg())))
    for override in ["n_games=9", "run.max_retries=1", "run.game_concurrency=1", "run.timeout_s=5", "store=/elsewhere"]:
        assert experiment_id(identity(_plain(make_cfg(override)))) == base, override
    for override in ["env.competition=0.5", "seed=1", "model=sim-weak", "model.params.temperature=0.1", "env.memory=stateless"]:
        assert experiment_id(identity(_plain(make_cfg(override)))) != base, override


def _plain(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


@pytest.mark.parametrize(
    "override, message",
    [
        ("env.competition=1.3", "env.competition=1.3 must be in [0, 1]"),
        ("env.gamma=0", "env.gamma=0.0 must be in (0, 1]"),
        ("env.n_agents=11", "env.n_agents=11 must be an integer in [2, 10]"),
        ("preferences.cooperation=0.5", "preferences.cooperation is only used with preferences=matrix"),
        ("+model.params.api_key=sk-x", "keys never go in configs"),
    ],
)
def test_out_of_range_values_name_the_key(make_cfg, override, message):
    with pytest.raises(ConfigError) as excinfo:
        validate(make_cfg(override))
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    "override, allowed",
    [("env.competition=high", "Float"), ("env.vote_rule=plurality", "unanimity"), ("env.memory=partial", "stateless")],
)
def test_wrong_types_fail_at_compose_time(make_cfg, override, allowed):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as excinfo:
        make_cfg(override)
    assert isinstance(excinfo.value.__cause__, ValidationError)
    assert override in str(excinfo.value)  # names the key and the bad value
    assert allowed in str(excinfo.value.__cause__)  # and what is allowed


def _run_cli(*args: str, env_extra: dict | None = None, tmp: Path) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "bargain.run", f"store={tmp / 'store'}", f"hydra.run.dir={tmp / 'hydra'}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_cli_missing_key_stops_before_any_game(tmp_path):
    result = _run_cli("model=qwen72b", "env.competition=1.0", tmp=tmp_path)
    assert result.returncode == 2
    assert "OPENROUTER_API_KEY" in result.stderr
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("games/*.json"))


def test_cli_rejects_out_of_range_competition(tmp_path):
    result = _run_cli("env.competition=1.3", tmp=tmp_path)
    assert result.returncode == 2 and "env.competition=1.3 must be in [0, 1]" in result.stderr


def test_cli_default_prints_summary_and_resumes(tmp_path):
    result = _run_cli(tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "game 0 (Agent_1=sim-strong vs Agent_2=boulware)" in result.stdout
    assert "utility raw" in result.stdout and "records:" in result.stdout
    assert f"log: {tmp_path / 'hydra' / 'run.log'}" in result.stdout and (tmp_path / "hydra" / "run.log").exists()
    again = _run_cli(tmp=tmp_path)
    assert "0 game(s) played, 4 already in the store" in again.stdout


def test_help_opens_with_what_the_tool_does_the_commands_and_the_groups(tmp_path):
    result = _run_cli("--help", tmp=tmp_path)
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("bargain: play multi-agent negotiation games between LLMs")
    assert text.index("== Commands ==") < text.index("== Config groups") < text.index("== Config ==")
    assert "python -m bargain.status" in text and re.search(r"^model: .*sim-strong", text, re.M)


def test_preferences_in_record_match_the_seeded_draw(make_cfg):
    import numpy as np

    (record, _) = run_experiment(make_cfg("n_games=1", "seed=7")).records
    prefs = generate_preferences(np.random.default_rng(np.random.SeedSequence(7, spawn_key=(0,))), 2, 5, 0.9)
    assert record["preferences"]["values"] == prefs.values.tolist()
    if record["outcome"]["agreement"]:
        assert record["outcome"]["raw_utility"] == utilities(prefs, record["outcome"]["owners"]).tolist()


def test_self_hosted_model_without_server_stops_before_any_game(make_cfg, tmp_path):
    from bargain.backend import FatalBackendError

    with pytest.raises(FatalBackendError, match="model.api_base=http://HOST:PORT/v1"):
        run_experiment(make_cfg("model=qwen3b", "model.server=null"))
    assert not list((tmp_path / "store").rglob("games/*.json"))
