"""Record format 2: lossless in every protocol, small, validated when damaged; stores and replay caches of
the older formats are read as they are and migrated losslessly, and a migrated store resumes and replays
exactly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from faultserver import FaultServer

from bargain.backend.cache import ReplayCache
from bargain.migrate import main as migrate
from bargain.runner import run_experiment
from bargain.store import DamagedRecord, ExperimentStore, atomic_write_json, canonical_json, load_record

HTTP = ["model.litellm_model=openai/test-model", "opponent.litellm_model=openai/test-opponent", "n_games=1",
        "env.max_rounds=2"]


def stored(store: Path) -> dict[Path, dict]:
    return {p: load_record(p) for p in sorted(store.glob("*/games/*.json"))}


@pytest.mark.parametrize("protocol", [
    [],  # the default game
    ["env.memory=stateless", "env.speaking_order=random"],
    ["env.n_agents=3", "+model@opponents.b=sim-weak", "preferences=matrix"],
    ["model.litellm_model=openai/scripted", "model.api_key_env=null", "env.max_rounds=2", "env.max_reasks=1",
     "+model.params.mock_response='I would like the Apple.'"],  # replies that do not parse, re-asks
    ["game=treaty"],
    ["game=cofunding"],
])
def test_every_record_reads_back_exactly_as_it_was_played(make_cfg, protocol):
    summary = run_experiment(make_cfg("n_games=1", *protocol))
    for record in summary.records:
        path = summary.directory / "games" / f"{record['game_index']:05d}.json"
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip-compressed
        assert canonical_json(load_record(path)) == canonical_json(record)
        stored_calls = json.loads(gzip.decompress(path.read_bytes()))["calls"]
        assert not any("reply" in c for c in stored_calls)  # each reply once: in its transcript
        if not protocol or protocol[0].startswith("game="):
            assert path.stat().st_size <= 20_000, path.stat().st_size


def _damaged(path: Path) -> str:
    with pytest.raises(DamagedRecord) as caught:
        load_record(path)
    return str(caught.value)


def test_damaged_compact_records_are_named_and_quarantined(make_cfg):
    summary = run_experiment(make_cfg("n_games=1", "env.max_rounds=1"))
    games = summary.directory / "games"
    good = (games / "00000.json").read_bytes()
    record = json.loads(gzip.decompress(good))
    (games / "00000.json").write_bytes(good[: len(good) // 2])
    assert _damaged(games / "00000.json").startswith("not gzip-compressed JSON")
    record["transcripts"][0] = record["transcripts"][0][:1]  # the replies the calls point at are gone
    (games / "00001.json").write_bytes(gzip.compress(json.dumps(record).encode()))
    assert "calls/0: no reply, and no assistant message" in _damaged(games / "00001.json")
    store = ExperimentStore(summary.directory.parent, summary.directory.name)
    assert store.read_game(0) is None and store.read_game(1) is None
    assert len(list((summary.directory / "quarantine").glob("*.reason"))) == 2
    assert run_experiment(make_cfg("n_games=1", "env.max_rounds=1")).skipped == 0  # both played again


def _write_old_formats(store: Path, cache: Path) -> None:
    """Rewrite a store and its replay cache exactly as the code before format 2 wrote them: indented JSON
    records of schema_version 1, and one JSON file per cached call."""
    for path, record in stored(store).items():
        atomic_write_json(path, {**record, "schema_version": 1})
    for log in cache.glob("log/*/*.log"):
        for line in log.read_bytes().splitlines():
            key, _, payload = line.split(b" ", 2)
            atomic_write_json(cache / key[:2].decode() / f"{key.decode()}.json", json.loads(payload))
        log.unlink()


def test_an_old_store_and_cache_migrate_losslessly_then_resume_and_replay_exactly(make_cfg, tmp_path, capsys):
    store, cache = tmp_path / "store", tmp_path / "store" / ".cache"
    with FaultServer() as srv:
        http = [*HTTP, f"model.api_base={srv.url}", f"opponent.api_base={srv.url}"]
        played = run_experiment(make_cfg(*http))
        _write_old_formats(store, cache)
        old = stored(store)
        old_bytes = sum(p.stat().st_size for p in old)
        legacy = sorted(cache.glob("??/*.json"))
        assert len(legacy) == sum(len(r["calls"]) for r in played.records) > 0

        asked = srv.books.requests
        assert run_experiment(make_cfg(*http)).records == []  # old records are read: nothing is played again
        fresh = run_experiment(make_cfg(*http, f"store={tmp_path / 'fresh'}", f"run.cache_dir={cache}"))
        assert srv.books.requests == asked and all(c["cache_hit"] for r in fresh.records for c in r["calls"])

        assert migrate([str(store)]) == 0
        out = capsys.readouterr().out
        assert f"records in {store}: 2 migrated" in out and f"{len(legacy)} migrated" in out
        assert stored(store) == {p: record for p, record in old.items()}  # the very same dicts
        assert sum(p.stat().st_size for p in old) < old_bytes / 5
        assert not list(cache.glob("??")) and list(cache.glob("log/*/*.log"))
        assert migrate([str(store)]) == 0 and "records in" in capsys.readouterr().out  # twice: nothing to do

        assert run_experiment(make_cfg(*http)).records == []  # resume after migration plays no game twice
        replay = run_experiment(make_cfg(*http, f"store={tmp_path / 'replay'}", f"run.cache_dir={cache}"))
        assert srv.books.requests == asked  # not one provider call
    assert [_outcome(r) for r in replay.records] == [_outcome(r) for r in played.records]
    assert all(c["cache_hit"] for r in replay.records for c in r["calls"])


def _outcome(record: dict) -> dict:
    """What a replay must reproduce exactly: every message, parse, round and the outcome."""
    calls = sorted(({k: c[k] for k in ("seat", "round", "phase", "attempt", "sent", "reply", "parsed", "usage")}
                    for c in record["calls"]), key=canonical_json)
    return {"transcripts": record["transcripts"], "rounds": record["rounds"], "outcome": record["outcome"],
            "calls": calls}


def test_a_job_beside_the_migration_keeps_its_game(make_cfg, tmp_path, capsys):
    summary = run_experiment(make_cfg("n_games=1", "env.max_rounds=1"))
    for path, record in stored(tmp_path / "store").items():
        atomic_write_json(path, {**record, "schema_version": 1})
    store = ExperimentStore(summary.directory.parent, summary.directory.name)
    with store.claim(1):  # a job is playing game 1
        assert migrate([str(tmp_path / "store")]) == 0
    assert "1 busy, 1 migrated" in capsys.readouterr().out
    assert (summary.directory / "games" / "00001.json").read_bytes()[:1] == b"{"  # left as it was


def test_a_cache_entry_put_is_served_before_it_is_written_and_after(tmp_path):
    cache = ReplayCache(tmp_path)
    entry = {"text": "hello", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    cache.put("a" * 64, entry, "exp")
    assert cache.get("a" * 64, "exp") == entry
    cache.close()
    assert ReplayCache(tmp_path).get("a" * 64, "exp") == entry
    assert ReplayCache(tmp_path).get("a" * 64, "other-experiment") is None
