"""The replay cache's logs: SIGKILLed writers never leave an entry that is served wrong and lose no entry
whose put returned; damaged or torn lines are skipped; processes sharing a cache find each other's
entries."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
import time
import zlib
from pathlib import Path

import pytest

from bargain.backend.cache import ReplayCache
from bargain.store import atomic_write_text

ROUND = 1_000_000  # each writer process puts keys of its own range


def key(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def entry(i: int) -> dict:
    return {"text": f"reply {i} " + "é\n" * (i % 300), "usage": {"prompt_tokens": i, "completion_tokens": 1}, "i": i}


def _writer(root: Path, start: int, marker: Path) -> None:
    """Put entries without end, fsyncing every 20 and noting the last fsynced one, until killed."""
    cache = ReplayCache(root)
    i = start
    while True:
        cache.put(key(i), entry(i), "exp")
        if i % 20 == 19:
            cache.flush()
            atomic_write_text(marker, str(i))
        i += 1


@pytest.mark.slow
def test_sigkilled_writers_lose_no_returned_put_and_never_serve_a_wrong_entry(tmp_path):
    reader = ReplayCache(tmp_path / "cache")
    assert reader.get(key(0), "exp") is None  # indexed before any writer ran: later entries are found on a miss
    rng = random.Random(3)
    flushed = {}
    for r in range(1, 9):
        marker = tmp_path / f"marker-{r}"
        job = multiprocessing.get_context("fork").Process(target=_writer, args=(tmp_path / "cache", r * ROUND, marker))
        job.start()
        while not marker.exists():
            time.sleep(0.005)
        time.sleep(rng.uniform(0.05, 0.3))
        job.kill()
        job.join()
        flushed[r] = int(marker.read_text())
    logs = sorted((tmp_path / "cache" / "log" / "exp").iterdir())
    assert len(logs) == 8
    # damage: a line cut short, a line whose JSON changed after it was written, and junk
    payload = json.dumps(entry(7)).encode()
    with open(logs[0], "ab") as fh:
        fh.write(f"{key(7)} {zlib.crc32(payload):08x} ".encode() + payload[: len(payload) // 2])
    data = bytearray(logs[1].read_bytes())
    first_line = bytes(data[: data.index(b"\n")])
    damaged = json.loads(first_line.split(b" ", 2)[2])["i"]
    data[first_line.index(b'"text":"reply') + 10] ^= 1  # "reply" becomes "reqly"
    logs[1].write_bytes(bytes(data))
    (logs[0].parent / "junk.log").write_bytes(b"\x00\xffnot a line\n" * 3)

    served = unflushed = 0
    for r, last in flushed.items():
        present = []
        for i in range(r * ROUND, last + 500):
            got = reader.get(key(i), "exp")
            assert got is None or got == json.loads(json.dumps(entry(i))), f"entry {i} served wrong"
            if got is not None:
                present.append(i)
        # every put that returned is there: the entries form an unbroken run from the first (the damaged
        # line aside), reaching past the last fsync; only a put the kill cut short may be missing
        assert sorted({*present, damaged} & set(range(r * ROUND, last + 500))) == list(range(r * ROUND, max(present) + 1))
        assert max(present) >= last
        served += len(present)
        unflushed += max(present) - last
    assert reader.get(key(7), "exp") is None and reader.get(key(damaged), "exp") is None
    print(f"\ncache kills: 8, entries served {served} ({unflushed} put after their writer's last fsync), "
          "wrong 0, missing from the middle 0")


def test_processes_sharing_a_cache_find_each_others_entries(tmp_path):
    first, second = ReplayCache(tmp_path), ReplayCache(tmp_path)  # two jobs: each writes its own log
    assert second.get(key(1), "exp") is None
    first.put(key(1), entry(1), "exp")
    second.put(key(2), entry(2), "exp")
    second.put(key(1), entry(1), "exp")  # the same call made by both: either line serves it
    first.close()
    second.close()
    assert first.get(key(2), "exp") == json.loads(json.dumps(entry(2)))
    assert second.get(key(1), "exp") == json.loads(json.dumps(entry(1)))
    assert len(list((tmp_path / "log" / "exp").iterdir())) == 2
