"""The judge path end to end on real offline stores: ``python -m analysis judge`` through the Backend
(the offline rules judge and a real HTTP server on loopback), resume, retries, failures, budgets,
re-asks, bad input, and the behaviour tables of ``python -m analysis``."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import pandas as pd
import pytest
from test_http_server import OpenAICompatible

from analysis.__main__ import main
from analysis.behaviour.judge import iter_judgements, judges, prompt_version
from analysis.behaviour.tables import SUMMARY_TABLES
from bargain import sim
from bargain.backend.budget import Ledger
from bargain.store import load_record


@pytest.fixture
def store(make_cfg, tmp_path):
    from bargain.runner import run_experiment

    summary = run_experiment(make_cfg("model=sim-weak", "model@opponent=sim-base", "n_games=2", "env.max_rounds=3"))
    assert all(r["status"] == "complete" for r in summary.records)
    return tmp_path / "store"


def n_messages(store) -> int:
    return sum(len(r["discussion"]) for f in store.glob("*/games/*.json") for r in load_record(f)["rounds"])


def judge_files(store):
    return sorted((store / "judgements").glob("*/*/games/*.json"))


def test_offline_judge_labels_every_message_and_resumes(store, capsys):
    main(["judge", str(store), "judge=sim-judge"])
    assert "message(s) judged now" in capsys.readouterr().out
    (meta,) = judges(store / "judgements")
    assert meta["name"] == "sim-judge" and meta["prompt_version"] == prompt_version()
    assert "misrepresentation:" in meta["system_prompt"]
    entries = list(iter_judgements(store / "judgements"))
    assert len(entries) == n_messages(store) > 0
    for e in entries:
        assert e["labels"] is not None and e["error"] is None and e["prompt_version"] == meta["prompt_version"]
        assert e["raw"].startswith("{") and "Message to label:" in e["prompt"]
    # the sim players reveal their true favourites: the judge found those claims, all true
    claims = [c for e in entries for c in e["claims"]]
    assert claims and not any(c["false"] for c in claims)

    main(["judge", str(store), "judge=sim-judge"])  # resume: nothing left to judge
    assert "0 message(s) judged now" in capsys.readouterr().out
    path = judge_files(store)[0]
    doc = json.loads(path.read_text())
    dropped = sorted(doc["messages"])[1]
    del doc["messages"][dropped]
    path.write_text(json.dumps(doc))
    main(["judge", str(store), "judge=sim-judge"])  # only the missing message is judged again
    assert "1 message(s) judged now" in capsys.readouterr().out
    assert dropped in json.loads(path.read_text())["messages"]

    n = len(json.loads(path.read_text())["messages"])
    path.write_bytes(b'{"messages": {')  # a judgements file cut short: skipped and quarantined, never a crash
    assert len(list(iter_judgements(store / "judgements"))) == n_messages(store) - n
    assert not path.exists() and len(list(path.parent.parent.glob("quarantine/*.reason"))) == 1
    main(["judge", str(store), "judge=sim-judge"])  # and judged again
    assert f"{n} message(s) judged now" in capsys.readouterr().out


def test_the_report_reads_the_judgements_keyed_to_the_calls_that_said_each_message(store):
    from analysis.html_report import load_judge_labels

    main(["judge", str(store)])
    labels = load_judge_labels(store / "judgements")
    records = {(r["experiment_id"], r["game_index"]): r
               for r in (load_record(f) for f in store.glob("*/games/*.json"))}
    assert labels.keys() == records.keys()
    for key, entries in labels.items():
        calls = {(c["round"], c["phase"], c["seat"], c["attempt"]) for c in records[key]["calls"]}
        assert len(entries) == sum(len(r["discussion"]) for r in records[key]["rounds"])
        assert all((e["round"], e["phase"], e["seat"], e["attempt"]) in calls and e["judge"] == "sim-judge" for e in entries)


def test_analysis_writes_behaviour_tables_when_judgements_exist(store, tmp_path):
    out = tmp_path / "without"
    main([str(store), "--out", str(out), "--bootstrap", "50"])
    rates = pd.read_csv(out / "behaviour_rates.csv")
    assert set(rates["source"]) == {"record"}  # ledger and gaslighting need no judge
    main(["judge", str(store)])  # default judge: sim-judge
    out = tmp_path / "with"
    main([str(store), "--out", str(out), "--bootstrap", "50"])
    for name in (*SUMMARY_TABLES, "claims", "gaslighting", "behaviour_messages"):
        csv, parquet = pd.read_csv(out / f"{name}.csv"), pd.read_parquet(out / f"{name}.parquet")
        assert len(csv) == len(parquet), name
    rates = pd.read_csv(out / "behaviour_rates.csv")
    judge_id = judges(store / "judgements")[0]["judge_id"]
    assert set(rates["source"]) == {"record", judge_id}
    assert set(rates.loc[rates["source"] == judge_id, "behaviour"]) >= {"anchoring", "concession", "coalition"}
    assert ((rates["rate_low"] <= rates["rate"]) & (rates["rate"] <= rates["rate_high"])).all()
    truth = pd.read_csv(out / "truthfulness.csv")
    assert set(truth["extractor"]) == {"rules", judge_id} and (truth["misrep_rate"] == 0).all()
    assert "# Behaviour" in (out / "report.md").read_text()


class JudgeServer(OpenAICompatible):
    players = {"test-model": "judge"}  # the offline rules judge answers for the served model
    seen: list[dict] = []


@pytest.fixture
def judge_server():
    JudgeServer.seen, JudgeServer.fail_first, JudgeServer.fail_after = [], 0, None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), JudgeServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def http_judge(port: int, *extra: str) -> list[str]:
    return ["judge=sim-judge", "judge.name=http-judge", "judge.litellm_model=openai/test-model",
            f"judge.api_base=http://127.0.0.1:{port}/v1", "judge.price_input_per_mtok=1",
            "judge.price_output_per_mtok=2", "run.backoff_base_s=0.01", "run.backoff_max_s=0.02", *extra]


def test_judge_calls_are_retried_counted_cached_and_resumed_after_failure(store, judge_server, capsys):
    port = judge_server.server_address[1]
    total = n_messages(store)
    JudgeServer.fail_after = 3  # the server falls over after three replies: the games in flight fail
    with pytest.raises(SystemExit) as exit_:
        main(["judge", str(store), *http_judge(port, "run.max_retries=1", "run.game_concurrency=1")])
    assert exit_.value.code == 1
    docs = [json.loads(p.read_text()) for p in judge_files(store)]
    failed = [d for d in docs if d["status"] == "error"]
    assert failed and "server fell over" in failed[0]["error"]["message"]
    kept = sum(len(d["messages"]) for d in docs)
    assert kept == 3  # every reply that came back is stored

    JudgeServer.fail_after, JudgeServer.fail_first = None, len(JudgeServer.seen) + 2  # two transient 503s first
    before = len(JudgeServer.seen)
    main(["judge", str(store), *http_judge(port)])
    assert "3 already in" in capsys.readouterr().out
    assert all(json.loads(p.read_text())["status"] == "complete" for p in judge_files(store))
    entries = list(iter_judgements(store / "judgements"))
    assert len(entries) == total and all(e["labels"] is not None for e in entries)
    assert len(JudgeServer.seen) - before == total - kept + 2  # the missing messages, plus the two retried 503s
    assert sum(c["retries"] for e in entries for c in e["calls"]) == 2
    assert all(c["cost_usd"] > 0 for e in entries for c in e["calls"])
    ledger = Ledger(store / ".ledger" / "spend.jsonl")  # the store's spend journal, the judge's spend under its id
    ledger.open()
    ledger.close()
    assert ledger.calls == len(JudgeServer.seen) and ledger.open_sends == {}  # every request, failed ones too
    assert ledger.spent[entries[0]["judge_id"]] == pytest.approx(sum(c["cost_usd"] for e in entries for c in e["calls"]))
    assert sum(len(p.read_bytes().splitlines()) for p in (store / ".cache").rglob("*.log")) == total  # one entry each


def test_budget_stops_judging_cleanly_and_a_rerun_finishes(store, judge_server, capsys):
    port = judge_server.server_address[1]
    with pytest.raises(SystemExit):
        main(["judge", str(store), *http_judge(port, "run.budget_usd=0.000001", "run.game_concurrency=1",
                                                     "judge.max_concurrency=1")])
    assert "budget stop: run.budget_usd=1e-06 reached" in capsys.readouterr().out
    statuses = [json.loads(p.read_text())["status"] for p in judge_files(store)]
    assert statuses == ["budget_exceeded"]  # the first game stopped mid-way, the others were not begun
    assert len(list(iter_judgements(store / "judgements"))) == 1  # the one call made before the cap was seen
    main(["judge", str(store), *http_judge(port)])
    assert len(list(iter_judgements(store / "judgements"))) == n_messages(store)


def test_unparseable_judgements_are_reasked_then_kept_with_their_raw_text(store, capsys):
    sim.register("babble", lambda messages: "This message seems friendly to me.")
    main(["judge", str(store), "judge=sim-judge", "judge.name=babble", "judge.litellm_model=sim/babble", "max_reasks=1"])
    assert f"{n_messages(store)} unparseable" in capsys.readouterr().out
    for e in iter_judgements(store / "judgements"):
        assert e["labels"] is None and "no JSON object" in e["error"]
        assert [c["attempt"] for c in e["calls"]] == [0, 1] and e["raw"] == "This message seems friendly to me."


@pytest.mark.parametrize("args, message", [
    (["judge=nosuchmodel"], "judge=<model> takes one of:"),
    (["max_reasks=-1"], "max_reasks=-1 must be >= 0"),
    (["run.budget_usd=0"], "run.budget_usd=0.0 must be > 0 or null"),
    (["+judge.params.api_key=sk-x"], "judge.params.api_key: keys never go in configs"),
    (["judge.paramz=1"], "Could not override 'judge.paramz'"),
    (["+run.max_retry=3"], "run.max_retry is not a config key (did you mean run.max_retries?"),
    (["judge.api_base=http://user:PASS@127.0.0.1:9/v1"], "judge.api_base has credentials in a URL"),
    (["judge.rpm=-5"], "judge.rpm=-5 must be >= 1 or null"),
])
def test_bad_judge_settings_fail_with_one_line_naming_the_key(tmp_path, capsys, args, message):
    store = tmp_path / "store"
    store.mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(["judge", str(store), *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err
    assert not (store / "judgements").exists()


def test_judge_refuses_a_store_without_games(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main(["judge", str(tmp_path / "empty")])
    assert "no complete game with public messages" in capsys.readouterr().err


def test_judgements_parse_strictly_for_labels_and_leniently_for_claims():
    from analysis.behaviour.judge import parse_judgement, response_schema
    from analysis.behaviour.taxonomy import NAMES
    from bargain.agents.parsing import ParseError

    items = ("Apple", "Jewel", "Stone")
    reply = ('Here you go:\n```json\n{"labels": ["Flattery", "none", "flattery"], "claims": [{"item": "jewel", '
             '"kind": "low", "value": null}, {"item": "<tactic>", "kind": "top", "value": 3}], "rationale": "praise"}\n```')
    assert parse_judgement(reply, items) == {"labels": ["flattery"], "claims": [{"item": "Jewel", "kind": "low", "value": None}],
                                             "dropped_claims": 1, "rationale": "praise"}
    with pytest.raises(ParseError, match="unknown tactic"):
        parse_judgement('{"labels": ["bribery"]}', items)
    with pytest.raises(ParseError, match='no JSON object with a "labels" list'):
        parse_judgement("It is friendly.", items)
    assert response_schema()["properties"]["labels"]["items"]["enum"] == list(NAMES)
