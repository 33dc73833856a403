"""The store never holds a partial record, two claims on one game exclude each other, and a job
killed mid-way loses nothing that was written: the next run completes exactly the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bargain.store import ExperimentStore, atomic_write_json, load_record

ROOT = Path(__file__).resolve().parents[1]


class Unserialisable:
    def __str__(self) -> str:
        raise RuntimeError("boom while writing")


def test_atomic_write_leaves_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "games" / "00000.json"
    atomic_write_json(path, {"status": "complete"})
    with pytest.raises(RuntimeError, match="boom"):
        atomic_write_json(path, {"status": "error", "bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"status": "complete"}
    assert [p.name for p in path.parent.iterdir()] == ["00000.json"]


def test_claims_exclude_each_other_until_released(tmp_path):
    store = ExperimentStore(tmp_path, "abc")
    with store.claim(3) as first:
        assert first
        with ExperimentStore(tmp_path, "abc").claim(3) as second:  # another job, same game
            assert not second
        with store.claim(4) as other_game:
            assert other_game
    with store.claim(3) as again:
        assert again


def test_killed_job_resumes_with_exactly_the_missing_games(tmp_path):
    args = [sys.executable, "-m", "bargain.run", f"store={tmp_path / 'store'}", f"hydra.run.dir={tmp_path / 'hydra'}",
            "n_games=6", "run.game_concurrency=1", "run.game_delay_s=0.5", "env.max_rounds=3"]
    job = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    games = tmp_path / "store"
    deadline = time.monotonic() + 240
    while len(list(games.glob("*/games/*.json"))) < 3 and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.1)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    written = {p: p.stat().st_mtime_ns for p in games.glob("*/games/*.json")}
    assert 3 <= len(written) < 12, "the job must be killed mid-way"
    for path in written:
        assert load_record(path)["status"] == "complete"  # every file present is whole

    done = subprocess.run([a for a in args if not a.startswith("run.game_delay_s")], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{12 - len(written)} game(s) played, {len(written)} already in the store" in done.stdout
    records = sorted(games.glob("*/games/*.json"))
    assert [load_record(p)["game_index"] for p in records] == list(range(12))
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in written.items())  # nothing rewritten
