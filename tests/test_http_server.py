"""A real HTTP round trip: an OpenAI-compatible server on 127.0.0.1, reached through ``api_base``.

The server answers with the offline negotiator's replies, so whole games complete. Run as a script
(``python tests/test_http_server.py PORT PIDFILE [MODE]``) it is the self-hosted server a job starts
and stops itself through ``model.server``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

KEY = "sk-test-9f8e7d6c5b4a"


class OpenAICompatible(BaseHTTPRequestHandler):
    """POST /v1/chat/completions (and Anthropic's /v1/messages) and GET /v1/models, recording what arrives."""

    seen: list[dict] = []
    mode = "ok"
    fail_after: int | None = None  # answer 500 once this many replies were given
    reasoning_tokens = 0  # reported as hidden reasoning, on top of the reply's own tokens
    served_model: str | None = None  # the model id the reply names (default: the one requested)
    players: dict[str, str] = {}  # requested model -> offline strategy that answers for it (default: base)
    fail_first = 0  # answer 503 to this many requests first (transient errors the backend retries)

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})

    def do_POST(self) -> None:
        from bargain import sim

        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "model": request["model"], "body": request,
                          "authorization": self.headers.get("Authorization") or self.headers.get("x-api-key")})
        replies = sum(1 for s in self.seen if s.get("ok"))
        if len(self.seen) <= self.fail_first:
            self._json(503, {"error": {"message": "overloaded, try again", "type": "server_error"}})
            return
        if self.fail_after is not None and replies >= self.fail_after:
            self._json(500, {"error": {"message": "server fell over", "type": "server_error"}})
            return
        if self.mode == "unauthorized":
            self._json(401, {"error": {"message": "invalid api key", "type": "invalid_request_error", "code": "invalid_api_key"}})
            return
        self.seen[-1]["ok"] = True
        messages = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
                     else "".join(part["text"] for part in m["content"])} for m in request["messages"]]
        if "system" in request:  # Anthropic's messages API sends the system prompt on its own
            system = request["system"]
            messages.insert(0, {"role": "system", "content": system if isinstance(system, str)
                                else "".join(part["text"] for part in system)})
        seed = int(hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:8], 16)  # same prompt, same reply
        player = self.players.get(request["model"], "base")
        text = sim.respond(player, messages, seed=seed, temperature=request.get("temperature", 0.0))
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4
        model = self.served_model or request["model"]
        if self.path.endswith("/messages"):
            self._json(200, {
                "id": f"msg_{len(self.seen)}", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "thinking", "thinking": "weighing the offers", "signature": "sig"},
                            {"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": len(text) // 4 + self.reasoning_tokens},
            })
            return
        self._json(200, {
            "id": f"chatcmpl-{len(self.seen)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text) // 4 + self.reasoning_tokens,  # OpenAI counts reasoning in here
                "total_tokens": prompt_tokens + len(text) // 4 + self.reasoning_tokens,
                "prompt_tokens_details": {"cached_tokens": prompt_tokens // 2},
                "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            },
        })


@pytest.fixture
def server():
    OpenAICompatible.seen = []
    OpenAICompatible.fail_after = None
    OpenAICompatible.reasoning_tokens = 0
    OpenAICompatible.served_model = None
    OpenAICompatible.players = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), OpenAICompatible)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_round_trip_through_api_base(make_cfg, server, tmp_path, monkeypatch):
    from bargain.runner import run_experiment

    monkeypatch.setenv("BARGAIN_TEST_KEY", KEY)
    port = server.server_address[1]
    cfg = make_cfg(
        "n_games=1", "counterbalance=false", "env.max_rounds=3",
        "model.name=http-model", "model.litellm_model=openai/test-model", "model.api_key_env=BARGAIN_TEST_KEY",
        f"model.api_base=http://127.0.0.1:{port}/v1", "model.price_input_per_mtok=2", "model.price_output_per_mtok=8",
    )
    summary = run_experiment(cfg)
    record = summary.records[0]
    assert record["status"] == "complete", record["error"]
    seen = OpenAICompatible.seen
    assert seen and {s["model"] for s in seen} == {"test-model"}
    assert {s["authorization"] for s in seen} == {f"Bearer {KEY}"}
    assert {s["path"] for s in seen} == {"/v1/chat/completions"}
    focal = [c for c in record["calls"] if c["seat"] == record["focal_seat"]]
    assert len(focal) == len(seen)
    for c in focal:
        assert c["usage"]["cached_tokens"] == c["usage"]["prompt_tokens"] // 2
        assert c["cost_usd"] == pytest.approx((c["usage"]["prompt_tokens"] * 2 + c["usage"]["completion_tokens"] * 8) / 1e6)
    assert record["totals"]["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in focal))
    assert _files_containing(tmp_path, KEY) == []  # records, replay cache, ledger: the key is nowhere
    ledger = [json.loads(line) for line in (tmp_path / "store" / ".ledger" / "spend.jsonl").read_text().splitlines()]
    assert sum(e["t"] == "send" for e in ledger) == sum(e["t"] == "done" for e in ledger) == len(seen)


def test_self_hosted_server_never_receives_a_provider_key(make_cfg, server, monkeypatch):
    from bargain.runner import run_experiment

    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # LiteLLM would send this to any openai/ model by default
    port = server.server_address[1]
    cfg = make_cfg(
        "n_games=1", "counterbalance=false", "env.max_rounds=1",
        "model.litellm_model=openai/test-model", f"model.api_base=http://127.0.0.1:{port}/v1",
    )
    assert run_experiment(cfg).records[0]["status"] == "complete"
    assert {s["authorization"] for s in OpenAICompatible.seen} == {"Bearer no-key"}


def _http_lineup(port: int) -> list[str]:
    """Both seats played by the HTTP model, so every call of a game is a provider call."""
    return [
        f"{seat}.{key}" for seat in ("model", "opponent") for key in (
            "name=http-model", "litellm_model=openai/test-model", "api_key_env=BARGAIN_TEST_KEY",
            f"api_base=http://127.0.0.1:{port}/v1", "params.temperature=0.9",
        )
    ]


def _strip_timing(record: dict) -> dict:
    """A record without what a replay legitimately changes: timestamps, latencies, cache flags, paths."""
    record = json.loads(json.dumps(record))
    for key in ("started_at", "finished_at"):
        record.pop(key)
    for c in record["calls"]:
        for key in ("started", "finished", "latency_s", "cache_hit"):
            c.pop(key)
    # concurrent calls are listed in completion order, which timing decides; a seat's own calls keep theirs
    record["calls"].sort(key=lambda c: (c["round"], c["phase"], c["seat"]))
    record["config"]["store"] = None
    return record


def test_a_cached_experiment_replays_identically_with_zero_provider_calls(make_cfg, server, tmp_path, monkeypatch):
    import litellm

    from bargain.runner import run_experiment

    monkeypatch.setenv("BARGAIN_TEST_KEY", KEY)
    litellm_calls = []
    real = litellm.acompletion

    async def counting(**kwargs):
        litellm_calls.append(kwargs["model"])
        return await real(**kwargs)

    monkeypatch.setattr(litellm, "acompletion", counting)
    overrides = [*_http_lineup(server.server_address[1]), "n_games=2", "env.max_rounds=3", f"run.cache_dir={tmp_path / 'cache'}"]
    first = run_experiment(make_cfg(*overrides))
    made = len(OpenAICompatible.seen)
    assert made == len(litellm_calls) > 0 and all(r["status"] == "complete" for r in first.records)
    replay = run_experiment(make_cfg(*overrides, f"store={tmp_path / 'fresh-store'}"))
    assert len(OpenAICompatible.seen) == made and len(litellm_calls) == made  # not a single call
    assert [_strip_timing(r) for r in replay.records] == [_strip_timing(r) for r in first.records]
    assert all(c["cache_hit"] for r in replay.records for c in r["calls"])
    assert _files_containing(tmp_path, KEY) == []


def test_a_crashed_game_resumes_without_paying_twice(make_cfg, server, tmp_path, monkeypatch):
    from bargain.runner import run_experiment

    monkeypatch.setenv("BARGAIN_TEST_KEY", KEY)
    overrides = [*_http_lineup(server.server_address[1]), "n_games=1", "counterbalance=false", "env.max_rounds=3"]
    # the server breaks for good after the two (sequential) opening statements: the game fails part-way
    OpenAICompatible.fail_after = 2
    crashed = run_experiment(make_cfg(*overrides, "run.max_retries=0")).records[0]
    assert crashed["status"] == "error" and "InternalServerError" in crashed["error"]["message"]
    OpenAICompatible.fail_after = None
    before = len(OpenAICompatible.seen)
    resumed = run_experiment(make_cfg(*overrides)).records[0]
    assert resumed["status"] == "complete"
    fresh = [c for c in resumed["calls"] if not c["cache_hit"]]
    assert sum(c["cache_hit"] for c in resumed["calls"]) == 2  # the replies already paid for
    assert len(OpenAICompatible.seen) - before == len(fresh)


def _server_overrides(tmp_path: Path, mode: str = "ok") -> list[str]:
    """model=smollm2 (server on a free port, api_base with {port}), with this file as the server."""
    command = json.dumps(["{python}", str(Path(__file__).resolve()), "{port}", str(tmp_path / "server.pid"), mode])
    return [
        "model=smollm2", f"model.server.command={command}", "model.server.startup_timeout_s=30",
        "model.litellm_model=openai/test-model", "model.api_key_env=BARGAIN_TEST_KEY",
        "n_games=1", "counterbalance=false", "env.max_rounds=2",
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_job_starts_and_stops_its_server(make_cfg, tmp_path, monkeypatch):
    from bargain.runner import run_experiment

    monkeypatch.setenv("BARGAIN_TEST_KEY", KEY)
    summary = run_experiment(make_cfg(*_server_overrides(tmp_path)))
    assert summary.records[0]["status"] == "complete", summary.records[0]["error"]
    pid = int((tmp_path / "server.pid").read_text())
    assert not _alive(pid)
    logs = list((tmp_path / "store" / ".servers").glob("*.log"))
    assert len(logs) == 1 and "serving" in logs[0].read_text()
    assert _files_containing(tmp_path, KEY) == []


def test_auth_failure_stops_the_job_and_its_server(make_cfg, tmp_path, monkeypatch):
    from bargain.backend import FatalBackendError
    from bargain.runner import run_experiment

    monkeypatch.setenv("BARGAIN_TEST_KEY", KEY)
    with pytest.raises(FatalBackendError, match="authentication failed at http:[^;]*; check the key in BARGAIN_TEST_KEY"):
        run_experiment(make_cfg(*_server_overrides(tmp_path, "unauthorized")))
    assert not _alive(int((tmp_path / "server.pid").read_text()))
    assert _files_containing(tmp_path, KEY) == []


def test_a_server_that_dies_at_start_is_a_clear_fatal_error(make_cfg, tmp_path, monkeypatch):
    from bargain.backend import FatalBackendError
    from bargain.runner import run_experiment

    monkeypatch.setenv("BARGAIN_TEST_KEY", KEY)
    broken = [o.replace(str(Path(__file__).resolve()), "-c") for o in _server_overrides(tmp_path)]
    with pytest.raises(FatalBackendError, match="server exited with code"):  # `python -c PORT ...` exits at once
        run_experiment(make_cfg(*broken))


if __name__ == "__main__":
    port, pidfile, *mode = sys.argv[1:]
    Path(pidfile).write_text(str(os.getpid()))
    OpenAICompatible.mode = mode[0] if mode else "ok"
    print(f"serving on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(port)), OpenAICompatible).serve_forever()
