"""Reasoning as an experimental axis, over real HTTP: the dial and the per-phase caps reach the provider in
its own format (OpenAI and Anthropic routes), reasoning tokens are recorded apart and priced as output,
and every call records the model id the provider reports back."""

from __future__ import annotations

import pytest
from test_http_server import KEY, OpenAICompatible, server  # noqa: F401 - the fixture

from bargain.runner import run_experiment

pytestmark = pytest.mark.usefixtures("server")


def _game(make_cfg, server, *overrides):  # noqa: F811
    port = server.server_address[1]
    cfg = make_cfg("n_games=1", "counterbalance=false", "env.max_rounds=2", "env.max_tokens.vote=64",
                   f"model.api_base=http://127.0.0.1:{port}", *overrides)
    (record,) = run_experiment(cfg).records
    assert record["status"] == "complete", record["error"]
    return record


def test_openai_effort_caps_reasoning_tokens_and_model_id(make_cfg, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    OpenAICompatible.reasoning_tokens = 50
    OpenAICompatible.served_model = "gpt-5.4-2026-03-05-internal"
    record = _game(make_cfg, server, "model=gpt-5.4", "model.reasoning.effort=low")
    focal = record["agents"][0]
    assert focal["model"] == "gpt-5.4-effort-low" and focal["reasoning"]["effort"] == "low"
    bodies = [s["body"] for s in OpenAICompatible.seen]
    assert bodies and all(b["reasoning_effort"] == "low" and "temperature" not in b for b in bodies)
    calls = [c for c in record["calls"] if c["seat"] == 0]
    assert len(calls) == len(bodies)
    room = 16384  # an effort with no room given gets the default room for hidden reasoning
    for call, body in zip(calls, bodies):
        cap = 64 if call["phase"] == "vote" else 1024
        assert body["max_completion_tokens"] == cap + room == call["params"]["max_completion_tokens"]
        usage = call["usage"]
        assert usage["reasoning_tokens"] == 50 and usage["completion_tokens"] > 50
        # reasoning is billed as output: completion tokens (which include it) at the output price
        assert call["cost_usd"] == pytest.approx((usage["prompt_tokens"] * 2.5 + usage["completion_tokens"] * 15) / 1e6)
        assert call["model_id"] == "gpt-5.4-2026-03-05-internal"
    assert record["totals"]["reasoning_tokens"] == 50 * len(calls)


def test_anthropic_thinking_budget_over_the_messages_api(make_cfg, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    record = _game(make_cfg, server, "model=claude-sonnet-4-6", "model.reasoning.budget_tokens=2048",
                   "model.params.temperature=1")
    assert record["agents"][0]["model"] == "claude-sonnet-4-6-thinking-2048"
    seen = OpenAICompatible.seen
    assert seen and {s["path"] for s in seen} == {"/v1/messages"} and {s["authorization"] for s in seen} == {KEY}
    for s in seen:
        body = s["body"]
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and body["temperature"] == 1
        assert body["max_tokens"] in (1024 + 2048, 64 + 2048)  # the reply cap plus the budget
    assert all(c["model_id"] == "claude-sonnet-4-6" for c in record["calls"] if c["seat"] == 0)


def test_litellm_model_record_is_its_own(make_cfg, server):  # noqa: F811
    record = _game(make_cfg, server, "model=litellm", "model.litellm_model=openai/test-model",
                   "model.metadata.arena_elo=1234")
    focal = record["agents"][0]
    assert focal["model"] == "test-model" and focal["litellm_model"] == "openai/test-model"
    assert {k: v for k, v in focal["metadata"].items() if v is not None} == {"arena_elo": 1234}
    assert {c["model_id"] for c in record["calls"] if c["seat"] == 0} == {"test-model"}
