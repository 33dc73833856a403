"""`python -m bargain.status`: per-cell counts and spend on stores written in the contract format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bargain.status import main

REPO = Path(__file__).resolve().parents[1]


def _config(focal: str, opponent: str, competition: float, n_games: int, counterbalance: bool,
            n_agents: int = 2, opponents: dict[str, str] | None = None) -> dict:
    def model(name: str) -> dict:
        return {"name": name, "litellm_model": f"sim/{name}", "params": {"temperature": 0.0}}

    return {
        "seed": 0, "n_games": n_games, "counterbalance": counterbalance,
        "model": model(focal), "opponent": model(opponent),
        "opponents": {k: model(v) for k, v in (opponents or {}).items()},
        "env": {"n_agents": n_agents, "n_items": 5, "max_rounds": 3, "gamma": 0.9, "competition": competition},
    }


def _record(exp_id: str, index: int, status: str, cost: float, config: dict) -> dict:
    """A minimal record with every contract key (a 2-agent game that ended without a deal)."""
    n = config["env"]["n_agents"]
    return {
        "schema_version": 1, "experiment_id": exp_id, "game_index": index,
        "draw_index": index // n if config["counterbalance"] else index,
        "focal_seat": index % n if config["counterbalance"] else 0,
        "status": status,
        "error": {"type": "ModelCallError", "message": "429", "kind": "transient", "retryable": True} if status == "error" else None,
        "started_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:00:01Z",
        "seeds": {"root": 0, "preferences": [0, index], "play": [0, index, 1]},
        "config": config,
        "game": {"n_items": 5, "n_agents": n, "max_rounds": 3, "gamma": 0.9,
                 "competition": config["env"]["competition"], "items": list("ABCDE"),
                 "agent_names": [f"Agent_{i + 1}" for i in range(n)], "vote_rule": "unanimity",
                 "vote_threshold": 1.0, "speaking_order": "fixed", "memory": "full",
                 "preference_kind": "vector", "cooperation": 0.0},
        "agents": [{"seat": i, "name": f"Agent_{i + 1}", "role": "focal" if i == 0 else "opponent",
                    "model": config["model" if i == 0 else "opponent"]["name"], "litellm_model": "sim/x",
                    "params": {}, "metadata": {}} for i in range(n)],
        "preferences": {"kind": "vector", "values": [[20] * 5] * n, "base": [[20] * 5] * n, "cosine": {"0-1": 1.0}},
        "rounds": [],
        "outcome": {"agreement": False, "round": None, "proposer_seat": None, "owners": None,
                    "raw_utility": [0.0] * n, "discounted_utility": [0.0] * n},
        "calls": [], "transcripts": [[] for _ in range(n)], "invalid_moves": [0] * n,
        "totals": {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "cost_usd": cost},
        "versions": {"bargain": "0.1.0", "python": "3.11", "litellm": "x", "numpy": "2", "git": None},
    }


def _experiment(store: Path, exp_id: str, config: dict, games: dict[int, tuple[str, float]]) -> Path:
    exp_dir = store / exp_id
    (exp_dir / "games").mkdir(parents=True)
    meta = {"schema_version": 1, "experiment_id": exp_id, "identity": {}, "config": config}
    (exp_dir / "experiment.json").write_text(json.dumps(meta))
    for index, (status, cost) in games.items():
        record = _record(exp_id, index, status, cost, config)
        (exp_dir / "games" / f"{index:05d}.json").write_text(json.dumps(record))
    return exp_dir


def _rows(out: str) -> dict[str, list[str]]:
    """experiment id -> [n, competition, expected, complete, error, budget, context, interrupted, other, missing,
    damaged, spend]."""
    rows = {}
    for line in out.splitlines():
        tokens = line.split()
        if tokens and len(tokens[0]) == 16 and not line.startswith(("store", "total", "problem", "errors", "beyond")):
            rows[tokens[0]] = tokens[-12:]
    return rows


def _total(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("total:"))


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    # 2 draws x 2 seats = 4 expected: one of each status, game 3 missing
    _experiment(store, "aaaaaaaaaaaaaaaa", _config("sim-strong", "sim-base", 0.5, 2, True),
                {0: ("complete", 0.125), 1: ("error", 0.25), 2: ("budget_exceeded", 1.0)})
    # 3 draws, one seat order: all complete
    _experiment(store, "bbbbbbbbbbbbbbbb", _config("sim-weak", "sim-base", 1.0, 3, False),
                {0: ("complete", 0.5), 1: ("complete", 0.5), 2: ("complete", 0.5)})
    # three agents, two distinct opponents, nothing played yet: 1 draw x 3 seats missing
    _experiment(store, "cccccccccccccccc",
                _config("qwen7b", "claude-3-7-sonnet", 0.9, 1, True, n_agents=3, opponents={"third": "gpt-4o"}), {})
    return store


def test_counts_and_spend_per_cell(tmp_path: Path, capsys) -> None:
    assert main([str(_store(tmp_path))]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["aaaaaaaaaaaaaaaa"] == ["2", "0.5", "4", "1", "1", "1", "0", "0", "0", "1", "0", "1.3750"]
    assert rows["bbbbbbbbbbbbbbbb"] == ["2", "1", "3", "3", "0", "0", "0", "0", "0", "0", "0", "1.5000"]
    assert rows["cccccccccccccccc"] == ["3", "0.9", "3", "0", "0", "0", "0", "0", "0", "3", "0", "0.0000"]
    assert "sim-strong vs sim-base" in out
    assert "qwen7b vs claude-3-7-sonnet, gpt-4o" in out
    assert _total(out) == ("total: 3 cells, 10 expected, 4 complete, 1 error, 1 budget_exceeded, "
                           "0 context_limit, 0 interrupted, 4 missing, 0 damaged, 0 other; spend $2.8750")
    assert "errors in aaaaaaaaaaaaaaaa: transient x1" in out


def test_expected_override(tmp_path: Path, capsys) -> None:
    assert main([str(_store(tmp_path)), "--expected", "5"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [rows[e][2] for e in sorted(rows)] == ["5", "5", "5"]
    assert [rows[e][9] for e in sorted(rows)] == ["2", "2", "5"]


def test_damaged_records_are_listed_quarantined_and_counted_missing(tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    config = _config("sim-strong", "sim-base", 0.25, 3, True)
    exp_dir = _experiment(store, "dddddddddddddddd", config, {0: ("complete", 0.5), 5: ("complete", 0.25)})
    (exp_dir / "experiment.json").write_text('{"schema_version": 1, "conf')  # half-written
    games = exp_dir / "games"
    (games / "00001.json").write_text('{"status": "compl')                  # half-written
    (games / "00002.json").write_text("[1, 2]")                             # not a record
    (games / "00003.json").write_text('{"status": "complete"}')             # parses, but is no record
    (games / "00004.json").mkdir()                                          # a directory
    (games / "00006.json.tmp").write_text("{")                              # atomic write in progress
    assert main([str(store)]) == 0
    out = capsys.readouterr().out
    # described from a readable record's config: 2 complete, games 1-4 damaged and so missing
    assert _rows(out)["dddddddddddddddd"] == ["2", "0.25", "6", "2", "0", "0", "0", "0", "0", "4", "4", "0.7500"]
    assert "sim-strong vs sim-base" in out
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 5 and any("experiment.json" in p for p in problems)
    for index, reason in [(1, "not JSON"), (2, "not a JSON object"), (3, "schema_version=None"), (4, "Is a directory")]:
        line = next(p for p in problems if f"{index:05d}.json" in p)
        assert reason in line and "moved to" in line and "the next run plays it again" in line
    quarantined = sorted(p.name.split(".json")[0] for p in (exp_dir / "quarantine").glob("*.reason"))
    assert quarantined == ["00001", "00002", "00003", "00004"]
    assert sorted(p.name for p in games.iterdir()) == ["00000.json", "00005.json", "00006.json.tmp"]
    assert main([str(store)]) == 0  # again: nothing left to quarantine, the games stay missing
    assert _rows(capsys.readouterr().out)["dddddddddddddddd"][9:11] == ["4", "0"]


def test_expected_never_shrinks_and_records_beyond_the_latest_run_are_reported(tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    config = _config("sim-strong", "sim-base", 0.5, 1, True)  # the latest run asked for 1 draw = 2 games
    exp_dir = _experiment(store, "eeeeeeeeeeeeeeee", config, {0: ("complete", 0.0), 1: ("complete", 0.0),
                                                              2: ("complete", 0.0)})
    (exp_dir / "runs.jsonl").write_text('{"n_games": 3, "total_games": 6}\n{"n_games": 1, "total_games": 2}\n')
    assert main([str(store)]) == 0
    out = capsys.readouterr().out
    assert _rows(out)["eeeeeeeeeeeeeeee"][2] == "6" and _rows(out)["eeeeeeeeeeeeeeee"][9] == "3"  # 3, 4, 5 missing
    assert "beyond the latest run in eeeeeeeeeeeeeeee: 1 record(s) (games 2-2) past the 2 games it asked for" in out


def test_empty_store_via_module(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    proc = subprocess.run([sys.executable, "-m", "bargain.status", str(store)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "(no experiments yet)" in proc.stdout
    assert _total(proc.stdout) == ("total: 0 cells, 0 expected, 0 complete, 0 error, 0 budget_exceeded, "
                                   "0 context_limit, 0 interrupted, 0 missing, 0 damaged, 0 other; spend $0.0000")


def test_sweep_dir_finds_its_store(tmp_path: Path, capsys) -> None:
    store = _store(tmp_path)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    # what Hydra writes: the composed config with the store relative to the launch directory
    (sweep / "multirun.yaml").write_text(
        f"store: ${{hydra:runtime.cwd}}/{store.name}\nhydra:\n  runtime:\n    cwd: {tmp_path}\n")
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert f"store {store}" in out
    assert len(_rows(out)) == 3
