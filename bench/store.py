"""Benchmark: the store and the replay cache, each beside the format it replaces, in one run.

- Bytes per default game (the games of ``python -m bargain.run``): record format 2 (gzip-compressed
  compact JSON, each reply once) against format 1 (indented JSON, what the store wrote before), from
  the very same records; and the time to write one record (atomically, fsynced) and to read one back.
- The replay cache: append-only logs fsynced by a thread against a JSON file per call (atomic write
  and fsync inside ``put``, the former cache), for the same entries: the time ``put`` holds the event
  loop, the time until an entry is durable (fsynced), and ``get`` in a new reader (its first lookup
  indexes the logs).

    python bench/store.py            # 2 draws x 2 seats of the default game, 1,000 cache entries
    python bench/store.py --smoke    # 1 game, 50 entries (seconds; CI)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/store.py` finds bench.*

from bargain.backend.cache import ReplayCache  # noqa: E402
from bargain.runner import run_experiment  # noqa: E402
from bargain.store import atomic_write_bytes, atomic_write_json, load_record, pack_record  # noqa: E402
from bench.concurrency import config  # noqa: E402


REPEAT = 5  # each record written and read this many times: single timings are noise on a shared machine


def row(figure: str, ours: float, baseline: float, unit: str, target: str = "", met: bool | None = None
        ) -> dict[str, Any]:
    return {"figure": figure, "ours": round(ours, 4), "baseline": round(baseline, 4),
            "ratio": round(ours / baseline, 4) if baseline else None, "unit": unit, "target": target, "met": met}


def _ms(fn: Callable[[], Any], items: list[Any] | None = None) -> float:
    """Mean milliseconds of ``fn(item)`` over ``items`` (or of one ``fn()``)."""
    started = time.perf_counter()
    if items is None:
        fn()
        return (time.perf_counter() - started) * 1e3
    for item in items:
        fn(item)
    return (time.perf_counter() - started) * 1e3 / len(items)


def records_rows(tmp: Path, smoke: bool) -> list[dict[str, Any]]:
    summary = run_experiment(config(f"store={tmp / 'store'}", f"hydra.run.dir={tmp / 'run'}",
                                    *(["n_games=1", "counterbalance=false"] if smoke else [])))
    games = sorted((summary.directory / "games").glob("*.json"))
    old_dir = tmp / "old" / summary.directory.name / "games"
    old = [old_dir / p.name for p in games]
    records = [load_record(p) for p in games]  # also imports and builds the validators: not timed below
    each = list(range(len(games))) * REPEAT
    old_write = _ms(lambda i: atomic_write_json(old[i], {**records[i], "schema_version": 1}), each)
    new_write = _ms(lambda i: atomic_write_bytes(games[i], pack_record(records[i])), each)
    old_kb = statistics.mean(p.stat().st_size for p in old) / 1e3
    new_kb = statistics.mean(p.stat().st_size for p in games) / 1e3
    return [
        row(f"Store: KB per default game ({len(games)} games, format 2 vs 1)", new_kb, old_kb, "KB", "<= 20 KB",
            new_kb <= 20),
        row("Store: write one record (atomic, fsynced)", new_write, old_write, "ms"),
        row("Store: read and validate one record", _ms(load_record, games * REPEAT), _ms(load_record, old * REPEAT),
            "ms"),
    ]


def _entries(n: int) -> list[tuple[str, dict[str, Any]]]:
    """Cache entries the size of a real negotiation reply (~600 characters)."""
    text = "I propose that I take the Apple and the Jewel, and you take the Stone, the Quill and the Pencil. " * 6
    return [(hashlib.sha256(str(i).encode()).hexdigest(), {
        "text": f"{i}: {text}", "usage": {"prompt_tokens": 900 + i, "completion_tokens": 150, "reasoning_tokens": 0,
                                          "cached_tokens": 0},
        "cost_usd": 0.0004, "retries": 0, "model": "openai/gpt-5.4", "model_id": "gpt-5.4-2026-03-05",
        "call": {"experiment": "491d897e309a02a4", "game": i // 88, "seat": i % 2, "turn": i % 44, "attempt": 0}})
        for i in range(n)]


def cache_rows(tmp: Path, smoke: bool) -> list[dict[str, Any]]:
    entries = _entries(50 if smoke else 1000)
    experiment = entries[0][1]["call"]["experiment"]
    files = tmp / "files"

    def old_put(item: tuple[str, dict[str, Any]]) -> None:  # the former ReplayCache.put, verbatim
        atomic_write_json(files / item[0][:2] / f"{item[0]}.json", item[1])

    old_put_ms = _ms(old_put, entries)
    cache = ReplayCache(tmp / "logs")
    put_ms = _ms(lambda item: cache.put(item[0], item[1], experiment), entries)
    durable_ms = put_ms + _ms(cache.flush) / len(entries)
    cache.close()
    old_reader = ReplayCache(files)  # reads the file-per-call layout (the former ``get``)
    old_get_ms = _ms(lambda item: old_reader.get(item[0], experiment), entries)
    reader = ReplayCache(tmp / "logs")
    get_ms = _ms(lambda item: reader.get(item[0], experiment), entries)
    assert all(reader.get(k, experiment) == json.loads(json.dumps(e)) for k, e in entries)
    n = len(entries)
    return [
        row(f"Replay cache: put, time the event loop is held ({n} entries)", put_ms, old_put_ms, "ms",
            "no fsync in the loop", put_ms < old_put_ms),
        row("Replay cache: put until the entry is fsynced (batched by the fsync thread)", durable_ms, old_put_ms,
            "ms"),
        row("Replay cache: get (a new reader; its first lookup indexes the logs)", get_ms, old_get_ms, "ms"),
    ]


def measure(smoke: bool = False) -> list[dict[str, Any]]:
    """Every figure of this module (see the module docstring); ``smoke`` shrinks each run to seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        return records_rows(Path(tmp), smoke) + cache_rows(Path(tmp), smoke)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny runs (seconds), nothing about time asserted")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for r in measure(args.smoke):
        print(f"{r['figure']}: {r['ours']} {r['unit']} (baseline {r['baseline']}, ratio {r['ratio']}, "
              f"target {r['target'] or '-'}, met {r['met']})")
