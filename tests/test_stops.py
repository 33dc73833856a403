"""Clean stops: SIGINT and SIGTERM cancel the calls in flight, record the games they cut short as
``interrupted`` with every round played so far, print the summary and one line, and the next run
finishes exactly what was left, without paying twice for a reply it already has."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultserver import FaultServer

from bargain.store import load_record

ROOT = Path(__file__).resolve().parents[1]


def cli(tmp_path: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bargain.run", f"store={tmp_path / 'store'}", f"hydra.run.dir={tmp_path / 'hydra'}",
            "n_games=2", "run.game_concurrency=2", "env.max_rounds=2", "model.litellm_model=openai/test-model",
            f"model.api_base={url}", "model.price_input_per_mtok=1", *extra]


def stop(tmp_path: Path, srv: FaultServer, sig: signal.Signals, env: dict) -> tuple[str, str, int]:
    """Start the job, signal it while a call is being answered; returns its output and the requests sent after."""
    job = subprocess.Popen(cli(tmp_path, srv.url), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    billed = srv.books.billed
    while srv.books.in_progress == 0 or srv.books.billed < billed + 3:  # a few calls in, one being answered
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()
        time.sleep(0.05)
    job.send_signal(sig)
    sent_before = srv.books.requests
    out, err = job.communicate(timeout=120)
    assert job.returncode == 128 + sig, err
    return out, err, srv.books.requests - sent_before


@pytest.mark.slow
def test_signals_stop_the_job_cleanly_and_the_next_run_finishes_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    with FaultServer(delay_s=0.3) as srv:  # 0.3 s a reply: signals land while calls are in flight
        for sig in (signal.SIGINT, signal.SIGTERM):  # the second stop interrupts the run that resumed the first
            out, err, sent_after = stop(tmp_path, srv, sig, env)
            assert "Traceback" not in err and "Traceback" not in out
            (line,) = err.strip().splitlines()  # one line: no traceback, no warning
            assert line.startswith(f"error: stopped by {sig.name}: ")
            assert sent_after <= 2  # nothing new went out; at most the calls already on their way
            assert "records:" in out and "log:" in out  # the usual summary, and where the log is
            records = [load_record(p) for p in (tmp_path / "store").glob("*/games/*.json")]
            interrupted = [r for r in records if r["status"] == "interrupted"]
            assert interrupted and len(records) < 4
            for record in interrupted:
                assert record["error"] == {"type": "Interrupted", "message": f"the job was stopped by {sig.name}",
                                           "kind": "interrupted", "retryable": True}
                assert record["rounds"] and record["calls"]  # what was played before the stop is kept
        ledger = [json.loads(line) for line in (tmp_path / "store" / ".ledger" / "spend.jsonl").read_text().splitlines()]
        assert sum(e["t"] == "send" for e in ledger) == sum(e["t"] == "done" for e in ledger)  # every call settled

        again = subprocess.run(cli(tmp_path, srv.url), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
        done = [load_record(p) for p in (tmp_path / "store").glob("*/games/*.json")]
        assert len(done) == 4 and all(r["status"] == "complete" for r in done)
        cut_off = sum(e.get("how") == "cancelled" for e in ledger)
        assert srv.books.paid_twice <= cut_off <= 4  # asked again: at most the replies the stops cut off


@pytest.fixture
def tiny_disk(tmp_path):
    """A 160 KB file system: room for the experiment and a game or two, then the disk is full."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_a_full_disk_stops_the_job_with_one_line(tmp_path, tiny_disk):
    result = subprocess.run([sys.executable, "-m", "bargain.run", f"store={tiny_disk / 'store'}",
                             f"hydra.run.dir={tmp_path / 'hydra'}", "n_games=20"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write ") and "No space left on device; the disk is full" in line
    for path in tiny_disk.rglob("games/*.json"):
        assert load_record(path)["status"] in ("complete", "interrupted")  # what was written is whole
