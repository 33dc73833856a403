"""The spend ledger: every paid call on record before it goes out, reconciled after a kill, rebuilt
when damaged; and budgets checked against it, so caps hold across re-runs."""

from __future__ import annotations

import json
import logging
import os

import pytest
from faultserver import FaultServer
from test_backend import RUN, call, model

from bargain.backend import Backend
from bargain.backend.budget import Ledger
from bargain.runner import run_experiment


def events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def opened(path, cached_cost=lambda key, exp: None) -> Ledger:
    ledger = Ledger(path, cached_cost)
    ledger.open()
    return ledger


def die(ledger: Ledger) -> None:
    """What a SIGKILL leaves: the session's lock released, its file and its open calls left behind."""
    ledger._session_file.close()


def test_a_call_is_on_record_before_the_provider_sees_it(tmp_path):
    path = tmp_path / "store" / ".ledger" / "spend.jsonl"
    seen_open: list[int] = []
    with FaultServer() as srv:
        srv.on_request = lambda body: seen_open.append(
            sum(e["t"] == "send" for e in events(path)) - sum(e["t"] == "done" for e in events(path)))
        b = Backend({"model": model("openai/test-model", api_base=srv.url, price_input_per_mtok=1.0)}, RUN,
                    ledger=path, experiment="e")
        b.ledger.open()
        for turn in range(3):
            call(b, turn=turn)
    assert seen_open == [1, 1, 1]  # each request arrived with its own call already on record, and only it
    assert [e["t"] for e in events(path)] == ["send", "done"] * 3


def test_calls_of_a_killed_job_are_reconciled_by_the_next(tmp_path, caplog):
    path = tmp_path / ".ledger" / "spend.jsonl"
    killed = opened(path)
    answered = killed.send("e", 0.5, "cache-key-of-an-answered-call", lambda: None)
    killed.send("e", 0.25, "cache-key-of-a-call-in-flight", lambda: None)
    killed.send("e", 0.125, None, lambda: None)
    killed.done(answered, 0.01, "reply")
    die(killed)
    with caplog.at_level(logging.WARNING):
        reconciled = opened(path, lambda key, exp: {("cache-key-of-a-call-in-flight", "e"): 0.02}.get((key, exp)))
    # the answered call at its cost; the one whose reply reached the cache at that cost; the other at its maximum
    assert reconciled.reconciled == 2 and reconciled.spent["e"] == pytest.approx(0.01 + 0.02 + 0.125)
    assert [e.get("how") for e in events(path) if e["t"] == "done"] == ["reply", "cache", "max"]
    assert "2 call(s) of stopped jobs" in caplog.text
    assert not list((path.parent / "spend.sessions").glob(f"{killed.session}.*"))
    again = opened(path)  # reconciled once, never twice
    assert again.reconciled == 0 and again.total == pytest.approx(reconciled.total)


def test_a_live_job_is_not_taken_for_a_dead_one(tmp_path):
    path = tmp_path / ".ledger" / "spend.jsonl"
    running = opened(path)
    running.send("e", 0.5, None, lambda: None)
    other = opened(path)
    assert other.reconciled == 0 and len(other.open_sends) == 1
    running.close()


def test_the_job_cap_counts_every_run_of_the_experiment(make_cfg, tmp_path):
    with FaultServer() as srv:
        overrides = ["n_games=4", "env.max_rounds=3", "model.litellm_model=openai/test-model",
                     f"model.api_base={srv.url}", "model.price_input_per_mtok=2", "run.budget_usd=0.01",
                     "run.cache=false"]
        first = run_experiment(make_cfg(*overrides))
        requests = srv.books.requests
        again = run_experiment(make_cfg(*overrides))  # the same command: the cap is spent, nothing is sent
        assert srv.books.requests == requests
    assert first.budget and "run.budget_usd=0.01 reached" in first.budget
    assert again.records == [] and again.unstarted == first.unstarted + sum(
        r["status"] == "budget_exceeded" for r in first.records)
    spent = opened(tmp_path / "store" / ".ledger" / "spend.jsonl").spent[first.experiment_id]
    largest = max(c["cost_usd"] for r in first.records for c in r["calls"] if c["cost_usd"])
    assert 0.01 <= spent <= 0.01 + 4 * largest  # past the cap by at most the calls in flight (one per game)


@pytest.mark.parametrize("damage", ["junk", "json list", "a directory", "truncated line", "unknown event", "bad number"])
def test_a_damaged_ledger_is_rebuilt_from_the_records(make_cfg, tmp_path, caplog, damage):
    cheap = ["n_games=1", "counterbalance=false", "env.max_rounds=2", "model.price_input_per_mtok=1"]
    cfg = make_cfg(*cheap)  # an offline player at a price: its records carry costs
    summary = run_experiment(cfg)
    cost = sum(r["totals"]["cost_usd"] for r in summary.records)
    path = tmp_path / "store" / ".ledger" / "spend.jsonl"
    path.unlink()
    if damage == "a directory":
        path.mkdir()
    else:
        path.write_bytes({
            "junk": b"\x00\x9f\xff garbage\n", "json list": b"[1, 2]\n",
            "truncated line": b'{"t": "done", "id": "x", "usd": 1.0}\n{"t": "se\n{"t": "done", "id": "y", "usd": 1.0}\n',
            "unknown event": b'{"t": "refund", "usd": 1}\n', "bad number": b'{"t": "done", "id": "x", "usd": "lots"}\n',
        }[damage])
    with caplog.at_level(logging.WARNING):
        ledger = opened(path)
    assert ledger.spent[summary.experiment_id] == pytest.approx(cost)
    assert "was damaged" in caplog.text and "rebuilt from the records' call costs" in caplog.text
    assert list((path.parent / "quarantine").glob("spend.jsonl.*.reason"))
    assert run_experiment(make_cfg(*cheap)).skipped == 1  # and the store works on


def test_a_line_cut_short_at_the_end_is_dropped(tmp_path):
    path = tmp_path / ".ledger" / "spend.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"t": "done", "id": "a", "exp": "e", "usd": 1.0}\n{"t": "send", "id": "b", "ses')
    ledger = opened(path)
    assert ledger.total == 1.0 and ledger.open_sends == {}
    ledger.done(ledger.send("e", 0.5, None, lambda: None), 0.25, "reply")
    assert opened(path).total == 1.25


def test_an_older_ledger_is_carried_over(tmp_path):
    old = tmp_path / ".ledger" / "spend.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"cost_usd": 3.5, "calls": 7}))
    ledger = opened(old.with_suffix(".jsonl"))
    assert ledger.total == 3.5 and ledger.calls == 7


def test_files_are_readable_by_the_group_unless_the_umask_says_otherwise(make_cfg, tmp_path):
    import subprocess
    import sys

    for umask, mode in [(0o022, 0o644), (0o027, 0o640)]:
        store = tmp_path / f"store-{umask:o}"
        code = ("import os, sys; os.umask(int(sys.argv[1], 8)); from bargain.store import atomic_write_json, append_line;"
                "from pathlib import Path; atomic_write_json(Path(sys.argv[2]) / 'r.json', {}); "
                "append_line(Path(sys.argv[2]) / 'l.jsonl', {})")
        subprocess.run([sys.executable, "-c", code, f"{umask:o}", str(store)], check=True, env=os.environ)
        assert {p.name: p.stat().st_mode & 0o777 for p in store.iterdir()} == {"r.json": mode, "l.jsonl": mode}
