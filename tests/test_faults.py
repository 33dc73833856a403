"""One retry policy for every provider route, tested against one fault-injecting server on loopback.

Each route LiteLLM speaks (OpenAI, Anthropic's Messages API, OpenRouter, hosted vLLM, a generic
OpenAI-compatible endpoint) meets every transient fault (408, 409, 429, 5xx, a reset connection, a
truncated or HTML body, no choices, empty content) and must retry it; what cannot succeed must not
be retried, and what no game can escape (a dead endpoint, a 403, a request rejected before any
answer, an unwritable path) must stop the job at its first occurrence.
"""

from __future__ import annotations

import asyncio
import threading
import time

import litellm
import pytest
from faultserver import MIXED, Books, FaultServer, spawn
from test_backend import RUN, call, model

from bargain.backend import Backend, FatalBackendError, ModelCallError
from bargain.backend.core import Failure, MalformedReply, classify
from bargain.runner import run_experiment
from bargain.store import StoreError, load_record

ROUTES = {
    "openai": "openai/test-model",
    "anthropic": "anthropic/claude-test",
    "openrouter": "openrouter/qwen/test-model",
    "hosted_vllm": "hosted_vllm/test-model",
    "openai_compatible": "custom_openai/test-model",
}


@pytest.fixture(scope="module")
def server():
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def fresh(server):
    server.script = []
    server.books = Books()
    return server


def route_backend(route: str, server: FaultServer, **run) -> Backend:
    # generous: on a loaded machine a first call (LiteLLM loading a route's handler) can take seconds, and a
    # client timeout would then be retried where the test expects none
    return Backend({"model": model(ROUTES[route], api_base=server.url)}, {**RUN, "timeout_s": 30.0, **run})


@pytest.mark.parametrize("route", ROUTES)
def test_every_transient_fault_is_retried_on_every_route(route, fresh, sleeps):
    b = route_backend(route, fresh)
    # Empty twice would be the model's answer (below). The Messages API has no choices: an answer
    # without content blocks is an empty answer there.
    empty = {"empty_content", "empty_choices"} if route == "anthropic" else {"empty_content"}
    times = {fault: 1 if fault in empty else 2 for fault in MIXED}
    for turn, fault in enumerate(MIXED):
        fresh.script = [fault] * times[fault]
        reply = call(b, turn=turn)
        assert reply.retries == times[fault] and reply.text.startswith("reply to "), fault
    assert dict(fresh.books.faults) == times
    assert len(sleeps) == sum(times.values())  # every retry waited its backoff
    fresh.script = ["empty_content", "empty_content"]
    assert call(b, turn=len(MIXED)).text == ""  # asked again once, then taken as meant: the agent re-asks


@pytest.mark.parametrize("route", ROUTES)
def test_what_cannot_succeed_is_not_retried(route, fresh, sleeps):
    b = route_backend(route, fresh)
    call(b)  # the model answered once: a rejected request now concerns this game only
    for turn, (fault, failure) in enumerate([("400", Failure.INVALID), ("404", Failure.INVALID),
                                             ("422", Failure.INVALID), ("context", Failure.CONTEXT)], start=1):
        fresh.script = [fault]
        with pytest.raises(ModelCallError) as info:
            call(b, turn=turn)
        assert info.value.failure is failure and info.value.attempts == 1, fault
    assert sleeps == []


@pytest.mark.parametrize("route", ["openai", "anthropic", "openrouter"])
@pytest.mark.parametrize("status", ["401", "403"])
def test_a_refused_key_stops_the_job_at_once(route, status, fresh, sleeps):
    fresh.script = [status]
    with pytest.raises(FatalBackendError, match=rf"test-model \(model, .*\): .* at {fresh.url}; .*model.api_key_env"):
        call(route_backend(route, fresh))
    assert fresh.books.requests and sleeps == []


def test_a_hanging_server_times_out_and_is_retried(fresh, sleeps):
    fresh.hang_s = 1.0
    fresh.script = ["hang"]
    reply = call(route_backend("openai", fresh, timeout_s=0.2))
    assert reply.retries == 1


def test_classification_is_by_the_failure_not_the_route():
    def status(code: int) -> litellm.APIError:
        return litellm.APIError(status_code=code, message="m", llm_provider="openrouter", model="m")

    assert classify(status(502), "openrouter/x") is Failure.TRANSIENT  # OpenRouter's 5xx arrive as APIError
    assert classify(status(200), "hosted_vllm/x") is Failure.TRANSIENT  # a 200 whose body is not the API's JSON
    assert classify(status(409), "anthropic/x") is Failure.TRANSIENT
    assert classify(status(403), "openai/x") is Failure.FATAL
    assert classify(status(402), "openai/x") is Failure.FATAL
    assert classify(status(400), "openai/x") is Failure.INVALID
    assert classify(MalformedReply("no choices"), "openai/x") is Failure.TRANSIENT
    assert classify(asyncio.TimeoutError(), "openai/x") is Failure.TRANSIENT
    # an offline player has no network: what it raises (LiteLLM wraps it as a connection error) is a bug
    wrapped = litellm.APIConnectionError(message="ValueError: boom", llm_provider="sim", model="sim/strong")
    assert classify(wrapped, "sim/strong") is Failure.BUG
    assert classify(KeyError("x"), "openai/x") is Failure.BUG


def test_an_exception_in_an_offline_player_fails_the_game_at_once(make_cfg, monkeypatch, sleeps):
    from bargain import sim

    def broken(*args, **kwargs):
        raise ValueError("a bug in the player")

    monkeypatch.setattr(sim, "respond", broken)
    (record,) = run_experiment(make_cfg("n_games=1", "counterbalance=false")).records
    assert record["status"] == "error" and record["error"]["kind"] == "bug" and record["error"]["retryable"] is False
    assert sleeps == []


def test_a_dead_endpoint_stops_the_job_before_any_game(make_cfg, tmp_path):
    with FaultServer() as srv:
        dead = srv.url  # a port that refuses connections once the server is gone
    with pytest.raises(FatalBackendError) as info:
        run_experiment(make_cfg("n_games=4", "model.litellm_model=openai/test-model", f"model.api_base={dead}"))
    assert "\n" not in str(info.value)
    assert f"model.api_base={dead} is unreachable (127.0.0.1:" in str(info.value)
    assert "start the server or fix model.api_base" in str(info.value)
    assert not list((tmp_path / "store").rglob("games/*.json"))


def test_an_endpoint_that_dies_mid_job_stops_it_instead_of_failing_game_after_game(make_cfg, tmp_path, sleeps):
    proc, url = spawn(str(tmp_path / "books.json"))
    games = tmp_path / "store"

    def kill_after_the_first_game() -> None:
        while not list(games.rglob("games/00000.json")):
            time.sleep(0.05)
        proc.kill()

    threading.Thread(target=kill_after_the_first_game, daemon=True).start()
    overrides = ["n_games=6", "run.game_concurrency=1", "env.max_rounds=2", "run.max_retries=2",
                 "model.litellm_model=openai/test-model", f"model.api_base={url}"]
    with pytest.raises(FatalBackendError, match=r"cannot reach model.api_base=.* \(3 attempts: .*check that the endpoint is up"):
        run_experiment(make_cfg(*overrides))
    proc.wait()
    records = [load_record(p) for p in games.rglob("games/*.json")]
    assert records and {r["status"] for r in records} <= {"complete", "interrupted"}  # no game was failed for it
    assert len(sleeps) == 2  # one call's retries, not a set per game


def test_an_unwritable_cache_stops_the_job_before_any_call(make_cfg, tmp_path, fresh):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"cannot write .*a-file/cache.*run.cache_dir"):
        run_experiment(make_cfg("n_games=2", "model.litellm_model=openai/test-model", f"model.api_base={fresh.url}",
                                f"run.cache_dir={blocker / 'cache'}"))
    assert fresh.books.requests == 0


def test_an_unwritable_store_stops_the_job_with_one_line(make_cfg, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError) as info:
        run_experiment(make_cfg(f"store={blocker / 'store'}"))
    assert "\n" not in str(info.value) and "point store at" in str(info.value)


def test_a_request_rejected_before_any_answer_is_asked_once_per_job(make_cfg, tmp_path, fresh):
    fresh.script = ["400"] * 50  # e.g. a parameter of the wrong type: every game would be rejected the same way
    with pytest.raises(FatalBackendError, match="rejected the request before answering any"):
        run_experiment(make_cfg("n_games=4", "model.litellm_model=openai/test-model", f"model.api_base={fresh.url}"))
    assert fresh.books.requests == 1
