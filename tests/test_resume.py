"""What a failed game keeps, and what the next run does with it: errors keep every round played and
their class; a re-run retries what can succeed, keeps deterministic failures unless something that
caused them changed, and plays damaged records again."""

from __future__ import annotations


import pytest
from faultserver import FaultServer

from bargain.run import _problems
from bargain.runner import Summary, run_experiment
from bargain.store import load_record

HTTP_FOCAL = ["n_games=1", "counterbalance=false", "env.max_rounds=3", "model.litellm_model=openai/test-model"]


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv


def test_a_failed_game_keeps_every_round_it_played(make_cfg, server):
    server.script = [None] * 6 + ["context"]  # the focal model's 7th call overflows: round 2
    (record,) = run_experiment(make_cfg(*HTTP_FOCAL, f"model.api_base={server.url}")).records
    assert record["status"] == "error"
    assert record["error"]["kind"] == "context_overflow" and record["error"]["retryable"] is False
    assert [r["round"] for r in record["rounds"]] == [1, 2]
    assert record["rounds"][0]["proposals"] and record["rounds"][0]["votes"]  # round 1 in full
    assert sum(c["seat"] == 0 for c in record["calls"]) == 6 and record["totals"]["calls"] == len(record["calls"])


def test_a_deterministic_failure_is_retried_only_when_something_changed(make_cfg, server):
    overrides = [*HTTP_FOCAL, f"model.api_base={server.url}"]
    server.script = [None] * 6 + ["context"]
    run_experiment(make_cfg(*overrides))
    asked = server.books.requests
    kept = run_experiment(make_cfg(*overrides))  # the same config would overflow the same way
    assert kept.records == [] and kept.kept == 1 and server.books.requests == asked
    changed = run_experiment(make_cfg(*overrides, "model.max_concurrency=2"))  # the model's config changed
    assert [r["status"] for r in changed.records] == ["complete"]
    assert sum(c["cache_hit"] for c in changed.records[0]["calls"]) == 6  # what was paid for is not paid again


def test_the_explicit_flag_retries_a_deterministic_failure(make_cfg, server):
    overrides = [*HTTP_FOCAL, f"model.api_base={server.url}"]
    server.script = ["context"]
    run_experiment(make_cfg(*overrides))
    assert [r["status"] for r in run_experiment(make_cfg(*overrides, "run.retry_deterministic=true")).records] == ["complete"]


def test_a_transient_failure_is_retried_by_the_next_run(make_cfg, server):
    overrides = [*HTTP_FOCAL, f"model.api_base={server.url}", "run.max_retries=0"]
    server.script = [None, "503"]
    (failed,) = run_experiment(make_cfg(*overrides)).records
    assert failed["error"]["kind"] == "transient" and failed["error"]["retryable"] is True
    assert [r["status"] for r in run_experiment(make_cfg(*overrides)).records] == ["complete"]


def test_the_summary_says_which_failures_a_rerun_retries(tmp_path):
    def record(index: int, kind: str, retryable: bool) -> dict:
        return {"game_index": index, "status": "error", "error": {"kind": kind, "retryable": retryable}}

    summary = Summary("e", tmp_path, 3, 0, [record(0, "transient", True), record(1, "context_overflow", False),
                                             record(2, "bug", False)])
    line, code = _problems(summary, 0.0)
    assert code == 1 and "\n" not in line
    assert "3 game(s) failed: 1 retryable (transient errors): re-run the same command to retry them" in line
    assert "2 deterministic (bug x1, context_overflow x1)" in line and "run.retry_deterministic=true" in line


DAMAGE = {
    "half-written": b'{"schema_version": 1, "status": "compl',
    "binary junk": b"\x00\xff\xfe junk",
    "a JSON list": b"[1, 2, 3]",
    "status only": b'{"status": "complete"}',
    "empty file": b"",
}


def test_resume_quarantines_damaged_records_and_plays_exactly_those_games(make_cfg, tmp_path):
    cfg = make_cfg("n_games=4", "env.max_rounds=2")
    first = run_experiment(cfg)
    games = first.directory / "games"
    damaged = {}
    for index, (kind, data) in enumerate(DAMAGE.items()):
        (games / f"{index:05d}.json").write_bytes(data)
        damaged[index] = kind
    (games / "00005.json").unlink()
    (games / "00005.json").mkdir()  # a directory where a record should be
    (games / "00006.json").unlink()
    (games / "00006.json").symlink_to("00006.json")  # a symlink loop
    resumed = run_experiment(cfg)
    assert [r["game_index"] for r in resumed.records] == [0, 1, 2, 3, 4, 5, 6]
    assert all(r["status"] == "complete" for r in resumed.records)
    reasons = sorted((first.directory / "quarantine").glob("*.reason"))
    assert len(reasons) == 7
    assert load_record(games / "00007.json")["status"] == "complete"  # untouched


@pytest.mark.parametrize("game, fields", [
    ("game=treaty", {"proposals", "votes", "accepted", "chosen"}),
    ("game=cofunding", {"pledges", "totals", "funded", "same_plan"}),
])
def test_a_failed_game_of_every_game_keeps_its_rounds_as_a_valid_record(make_cfg, server, game, fields):
    server.script = [None] * 5 + ["context"]  # the focal model's 6th call overflows, in round 2
    summary = run_experiment(make_cfg(*HTTP_FOCAL, game, f"model.api_base={server.url}"))
    (record,) = summary.records
    assert record["status"] == "error" and record["error"]["kind"] == "context_overflow"
    assert [r["round"] for r in record["rounds"]] == [1, 2]  # round 2 cut short, with every key
    assert all(fields <= set(r) for r in record["rounds"]) and record["rounds"][0][sorted(fields)[-1]] is not None
    assert load_record(summary.directory / "games" / "00000.json")["status"] == "error"  # valid, not damaged
