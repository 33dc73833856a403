"""Worker processes (run.workers): the same games and records as one process, one spend journal
whose budgets hold across the processes, and limits divided between them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from faultserver import FaultServer
from test_stops import ROOT, cli

from bargain.runner import run_experiment
from bargain.store import load_record
from bargain.workers import GAMES_PER_WORKER, _share, workers


def _played(summary) -> dict[int, tuple]:
    return {r["game_index"]: (r["status"], r["outcome"], r["rounds"], [c["reply"] for c in r["calls"]])
            for r in summary.records}


@pytest.mark.slow  # spawns worker processes (each imports LiteLLM)
def test_workers_play_the_same_games_as_one_process_and_resume(make_cfg, tmp_path):
    common = ["n_games=3", "env.max_rounds=3", "run.game_concurrency=4", "run.progress=false"]
    one = run_experiment(make_cfg(*common, "run.workers=1"))
    (tmp_path / "store").rename(tmp_path / "one")
    two = run_experiment(make_cfg(*common, "run.workers=2"))
    assert (two.total_games, two.skipped, len(two.records), two.errors) == (6, 0, 6, 0)
    assert _played(two) == _played(one)  # outcomes, rounds and every reply, game by game
    recorded = load_record(next((tmp_path / "store").rglob("games/00000.json")))["config"]["run"]
    assert (recorded["workers"], recorded["game_concurrency"]) == (2, 4)  # the job's config, not a worker's share
    again = run_experiment(make_cfg(*common, "run.workers=2"))  # resumes: nothing left to play
    assert (again.skipped, again.records) == (6, [])


@pytest.mark.slow
def test_the_spend_journal_and_the_budget_hold_across_worker_processes(make_cfg, tmp_path):
    # A game costs ~$0.027 here: one worker's 4 games cannot reach the cap alone, all 8 games pass it.
    with FaultServer() as srv:
        summary = run_experiment(make_cfg(
            "n_games=4", "env.max_rounds=3", "model.litellm_model=openai/test-model", f"model.api_base={srv.url}",
            "model.price_input_per_mtok=2", "run.budget_usd=0.15", "run.cache=false", "run.workers=2",
            "run.game_concurrency=4", "run.progress=false",
        ))
        billed = srv.books.billed
    events = [json.loads(line) for line in (tmp_path / "store" / ".ledger" / "spend.jsonl").read_text().splitlines()]
    sends = [e for e in events if e["t"] == "send"]
    assert len({e["session"] for e in sends}) == 2  # both workers paid for calls, into the one journal
    assert sorted(e["id"] for e in sends) == sorted(e["id"] for e in events if e["t"] == "done")
    assert len(sends) == billed  # every call the provider billed is on record, once
    spent = sum(e["usd"] for e in events if e["t"] == "done")
    costs = [c["cost_usd"] for r in summary.records for c in r["calls"] if c["cost_usd"]]
    assert spent == pytest.approx(sum(costs))  # the journal and the records agree to the call
    assert summary.budget and "run.budget_usd=0.15 reached" in summary.budget
    assert 0.15 <= spent <= 0.15 + 4 * max(costs)  # past the cap by at most the calls in flight (one per game)
    assert summary.unstarted + len(summary.records) == summary.total_games


def _calls_out(store) -> tuple[set[str], int]:
    """From the spend journal: the sessions (one per worker process) with a call sent and not yet settled,
    and how many replies came back."""
    path = store / ".ledger" / "spend.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    events = [json.loads(line) for line in lines if line.endswith("}")]  # a line being written is skipped
    settled = {e["id"] for e in events if e["t"] == "done"}
    calling = {e["session"] for e in events if e["t"] == "send" and e["id"] not in settled}
    return calling, sum(e["t"] == "done" and e["how"] == "reply" for e in events)


@pytest.mark.slow
def test_a_signal_to_the_job_stops_every_worker_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    with FaultServer(delay_s=1.0) as srv:  # 1 s a reply: the signal lands while both first calls are in flight
        job = subprocess.Popen(cli(tmp_path, srv.url, "run.workers=2"), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 300
        while True:  # each worker has a call out (not one game's pair of calls), and some game has a reply
            calling, replies = _calls_out(tmp_path / "store")
            if len(calling) == 2 and replies:
                break
            assert job.poll() is None and time.monotonic() < deadline, job.communicate()
            time.sleep(0.05)
        job.send_signal(signal.SIGTERM)  # to the job only: it tells its workers
        out, err = job.communicate(timeout=180)
        assert job.returncode == 128 + signal.SIGTERM, err
        requests = srv.books.requests
        time.sleep(1)
        assert srv.books.requests == requests and srv.books.in_progress == 0  # no worker is left calling
    assert err.strip().splitlines()[-1].startswith("error: stopped by SIGTERM: ") and "Traceback" not in err
    records = [load_record(p) for p in (tmp_path / "store").glob("*/games/*.json")]
    interrupted = [r for r in records if r["status"] == "interrupted"]
    assert len({r["game_index"] % 2 for r in interrupted}) == 2  # a game of each worker was cut short
    assert all(r["error"]["message"] == "the job was stopped by SIGTERM" for r in interrupted)
    assert any(r["calls"] for r in interrupted)  # kept what was played (a game cut before its first reply has none)
    ledger = [json.loads(line) for line in (tmp_path / "store" / ".ledger" / "spend.jsonl").read_text().splitlines()]
    assert sum(e["t"] == "send" for e in ledger) == sum(e["t"] == "done" for e in ledger)  # every call settled


def test_worker_count_and_limit_shares():
    assert workers({"game_concurrency": 4, "workers": None}) == 1
    assert workers({"game_concurrency": 1000, "workers": None}) >= 1
    assert workers({"game_concurrency": 2 * GAMES_PER_WORKER + 1, "workers": 3}) == 3
    shared = _share({"m": {"max_concurrency": 9, "rpm": 100, "tpm": None, "server": {"command": ["x"]}}}, 2)
    assert shared["m"] == {"max_concurrency": 4, "rpm": 50, "tpm": None, "server": None}


def test_a_bad_worker_count_is_one_clear_error(make_cfg):
    with pytest.raises(Exception, match=r"run.workers=0 must be >= 1 or null"):
        run_experiment(make_cfg("run.workers=0"))
