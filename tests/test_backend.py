"""The model backend: retry policy per error class, cost, budgets, replay cache, limits, parameters.

Unit tests drive :class:`Backend` with a scripted in-process LiteLLM provider (and LiteLLM's
``mock_response`` error strings); end-to-end tests play offline experiments through ``run_experiment``.
Backoff sleeps are replaced, so no test waits for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json

import httpx
import litellm
import pytest
from litellm import CustomLLM

from bargain.backend import SIM_PROVIDER, Backend, BudgetExceeded, FatalBackendError, MissingKeyError, ModelCallError
from bargain.backend import core
from bargain.backend.budget import Budget, Ledger
from bargain.backend.limits import Limiter
from bargain.runner import run_experiment

MESSAGES = [{"role": "system", "content": "You negotiate."}, {"role": "user", "content": "Your move."}]
RUN = {"timeout_s": 5.0, "max_retries": 3, "backoff_base_s": 1.0, "backoff_max_s": 8.0, "cache": True}


class Scripted(CustomLLM):
    """A provider whose next outcomes are scripted: an exception to raise or a reply text."""

    def __init__(self) -> None:
        super().__init__()
        self.script: list = []
        self.calls: list[dict] = []
        self.counter = itertools.count()

    async def acompletion(self, model, messages, *args, **kwargs):
        self.calls.append({"model": model, "messages": messages, "params": kwargs.get("optional_params", {})})
        outcome = self.script.pop(0) if self.script else f"reply {next(self.counter)}"
        if isinstance(outcome, BaseException):
            raise outcome
        return litellm.ModelResponse(
            choices=[{"message": {"role": "assistant", "content": outcome}}],
            model=model,
            usage=litellm.Usage(prompt_tokens=1000, completion_tokens=100, prompt_tokens_details={"cached_tokens": 600}),
        )


@pytest.fixture
def scripted():
    provider = Scripted()
    litellm.custom_provider_map.append({"provider": "scripted", "custom_handler": provider})
    yield provider
    litellm.custom_provider_map[:] = [p for p in litellm.custom_provider_map if p["provider"] != "scripted"]


@pytest.fixture
def acompletion_calls(monkeypatch):
    """Every litellm.acompletion call the backend makes."""
    seen: list[dict] = []
    real = litellm.acompletion

    async def counting(**kwargs):
        seen.append(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(litellm, "acompletion", counting)
    return seen


def model(litellm_model: str = "scripted/m", **over) -> dict:
    cfg = {
        "name": "test-model", "litellm_model": litellm_model, "api_key_env": None, "api_base": None, "params": {},
        "unsupported_params": [], "max_concurrency": 8, "rpm": None, "tpm": None,
        "price_input_per_mtok": None, "price_output_per_mtok": None, "server": None,
    }
    return {**cfg, **over}


def backend(cfg: dict | None = None, tmp_path=None, **run) -> Backend:
    return Backend({"model": cfg or model()}, {**RUN, **run}, cache_dir=tmp_path / "cache" if tmp_path else None)


def call(b: Backend, game: int = 0, messages=MESSAGES, turn: int = 0):
    key = {"experiment": "e", "game": game, "seat": 0, "turn": turn, "attempt": 0}
    return asyncio.run(b.complete("model", messages, key))


def status_error(cls, status: int):
    response = httpx.Response(status, request=httpx.Request("POST", "http://provider.test/v1"))
    if cls is litellm.PermissionDeniedError:
        return cls(message="no access", llm_provider="scripted", model="m", response=response)
    return cls(message="boom", llm_provider="scripted", model="m")


TRANSIENT = [
    (litellm.RateLimitError, 429),
    (litellm.Timeout, 408),
    (litellm.InternalServerError, 500),
    (litellm.ServiceUnavailableError, 503),
    (litellm.BadGatewayError, 502),
    (litellm.APIConnectionError, 500),
]
FAIL_FAST = [
    (litellm.BadRequestError, 400),
    (litellm.ContextWindowExceededError, 400),
    (litellm.NotFoundError, 404),
]


@pytest.mark.parametrize("cls,status", TRANSIENT, ids=[c.__name__ for c, _ in TRANSIENT])
def test_transient_errors_are_retried_then_succeed(scripted, sleeps, cls, status):
    scripted.script = [status_error(cls, status), status_error(cls, status)]
    reply = call(backend())
    assert reply.text == "reply 0"
    assert reply.retries == 2
    assert len(scripted.calls) == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # exponential, jittered within [cap/2, cap]


@pytest.mark.parametrize("cls,status", TRANSIENT, ids=[c.__name__ for c, _ in TRANSIENT])
def test_transient_errors_give_up_after_max_retries(scripted, sleeps, cls, status):
    scripted.script = [status_error(cls, status) for _ in range(10)]
    with pytest.raises(ModelCallError) as info:
        call(backend(max_retries=3))
    assert info.value.attempts == 4
    assert len(scripted.calls) == 4
    assert len(sleeps) == 3
    assert cls.__name__ in str(info.value) and "4 attempts" in str(info.value)


@pytest.mark.parametrize("cls,status", FAIL_FAST, ids=[c.__name__ for c, _ in FAIL_FAST])
def test_permanent_errors_fail_the_game_at_once(scripted, sleeps, cls, status):
    b = backend()
    call(b)  # the model has answered in this job: a rejected request is about this game only
    scripted.script = [status_error(cls, status)]
    with pytest.raises(ModelCallError) as info:
        call(b, turn=1)
    assert info.value.attempts == 1 and not info.value.failure.retryable
    assert len(scripted.calls) == 2
    assert sleeps == []


@pytest.mark.parametrize("cls,status", [(litellm.BadRequestError, 400), (litellm.NotFoundError, 404)])
def test_a_request_rejected_before_any_answer_stops_the_job(scripted, sleeps, cls, status):
    scripted.script = [status_error(cls, status)]
    with pytest.raises(FatalBackendError, match=r"rejected the request before answering any .* check model.litellm_model and model.params"):
        call(backend())
    assert len(scripted.calls) == 1 and sleeps == []


@pytest.mark.parametrize("cls,status", [(litellm.AuthenticationError, 401), (litellm.PermissionDeniedError, 403)])
def test_auth_errors_stop_the_job_with_one_line(scripted, sleeps, monkeypatch, cls, status):
    monkeypatch.setenv("BARGAIN_TEST_KEY", "sk-secret-123")
    scripted.script = [status_error(cls, status)]
    with pytest.raises(FatalBackendError) as info:
        call(backend(model(api_key_env="BARGAIN_TEST_KEY")))
    message = str(info.value)
    assert "\n" not in message
    assert "test-model" in message and "BARGAIN_TEST_KEY" in message
    assert "sk-secret-123" not in message
    assert len(scripted.calls) == 1 and sleeps == []


@pytest.mark.parametrize(
    "mock,attempts",
    [("litellm.RateLimitError", 4), ("litellm.InternalServerError", 4), ("litellm.ContextWindowExceededError", 1)],
)
def test_litellm_mock_response_errors(acompletion_calls, sleeps, mock, attempts):
    b = backend(model("openai/mock-model", params={"mock_response": mock}), max_retries=3)
    with pytest.raises(ModelCallError) as info:
        call(b)
    assert info.value.attempts == attempts
    assert len(acompletion_calls) == attempts
    assert all(kw["num_retries"] == 0 for kw in acompletion_calls)  # LiteLLM's own retries stay off


def test_a_hanging_provider_times_out_and_is_retried(scripted, sleeps):
    async def hang(*args, **kwargs):
        await asyncio.sleep(30)

    scripted.acompletion = hang
    with pytest.raises(ModelCallError) as info:
        call(backend(timeout_s=0.05, max_retries=2))
    assert info.value.attempts == 3
    assert "Timeout" in str(info.value)
    # a model's own timeout_s (a local server on a busy CPU) wins over run.timeout_s
    with pytest.raises(ModelCallError, match=r"no reply within model.timeout_s=0.05"):
        call(backend(model(timeout_s=0.05), timeout_s=60, max_retries=0))


def test_retry_after_is_honoured(scripted, sleeps):
    headers = {"retry-after-ms": "50"}  # the limiter also holds the endpoint that long (real time), so keep it short
    response = httpx.Response(429, headers=headers, request=httpx.Request("POST", "http://provider.test"))
    scripted.script = [litellm.RateLimitError(message="slow down", llm_provider="scripted", model="m", response=response)]
    reply = call(backend(backoff_base_s=0.001))
    assert reply.retries == 1
    assert sleeps == [0.05]
    assert core._retry_after(litellm.RateLimitError(message="m", llm_provider="p", model="m", headers={"Retry-After": "7"})) == 7.0


def test_backoff_is_capped_and_jittered():
    import random

    rng = random.Random(0)
    delays = [core.backoff_delay(r, 1.0, 8.0, None, rng) for r in range(10)]
    assert all(0.5 * min(8.0, 2**r) <= d <= min(8.0, 2**r) for r, d in enumerate(delays))
    assert len(set(delays)) == len(delays)
    assert core.backoff_delay(0, 1.0, 8.0, 30.0, rng) == 30.0


def test_usage_cost_and_cached_tokens(scripted, sleeps):
    reply = call(backend(model(price_input_per_mtok=3.0, price_output_per_mtok=15.0)))
    assert reply.usage == {"prompt_tokens": 1000, "completion_tokens": 100, "reasoning_tokens": 0, "cached_tokens": 600}
    assert reply.cost_usd == pytest.approx((1000 * 3.0 + 100 * 15.0) / 1e6)
    assert call(backend()).cost_usd is None  # unmapped model without configured prices: unknown, not an error


def test_cost_from_litellm_price_map(acompletion_calls):
    reply = call(backend(model("openai/gpt-4o-mini", params={"mock_response": "I offer the Apple."})))
    assert reply.cost_usd and reply.cost_usd > 0


def test_anthropic_prompt_cache_markers(scripted):
    reply = call(backend(model("scripted/claude-test")))
    sent = scripted.calls[0]["messages"]
    assert sent[0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent[-1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert reply.usage["cached_tokens"] == 600
    call(backend(model("scripted/other")))
    assert scripted.calls[1]["messages"] == MESSAGES  # other providers get plain messages


def test_reasoning_model_parameters(acompletion_calls):
    cfg = model(
        "openai/o3-mini", params={"temperature": 0.7, "max_tokens": 50, "mock_response": "ok"},
        unsupported_params=["temperature"],
    )
    reply = call(backend(cfg))
    assert reply.sent_params == {"max_completion_tokens": 50, "mock_response": "ok"}
    assert "temperature" not in acompletion_calls[0] and acompletion_calls[0]["max_completion_tokens"] == 50
    assert core.sent_params(model("openai/gpt-4o", params={"max_tokens": 9}), {}) == {"max_tokens": 9}


def test_replay_cache_hits_same_call_and_keeps_repeats_distinct(scripted, tmp_path):
    b = backend(tmp_path=tmp_path)
    first, repeat_in_other_game = call(b, game=0), call(b, game=1)
    assert first.text != repeat_in_other_game.text  # same prompt at temperature > 0 in two games: two answers
    assert len(scripted.calls) == 2
    again = call(backend(tmp_path=tmp_path), game=0)  # a new job, same call: from the cache
    assert again.cache_hit and again.text == first.text and again.usage == first.usage
    assert len(scripted.calls) == 2
    assert call(backend(tmp_path=tmp_path, cache=False), game=0).text != first.text  # cache off: asks again


def test_offline_players_get_a_distinct_seed_per_game():
    keys = [{"experiment": "e", "game": g, "seat": 0, "turn": 0, "attempt": 0} for g in range(5)]
    seeds = [core.sent_params(model("sim/random", params={"temperature": 1.0}), k)["seed"] for k in keys]
    assert len(set(seeds)) == 5
    assert seeds == [core.sent_params(model("sim/random"), k)["seed"] for k in keys]  # and the same on a re-run


def test_missing_key_and_unpriced_budget_fail_before_any_game(monkeypatch):
    monkeypatch.delenv("BARGAIN_TEST_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="BARGAIN_TEST_KEY"):
        backend(model(api_key_env="BARGAIN_TEST_KEY")).check_keys()
    with pytest.raises(FatalBackendError, match="model.price_input_per_mtok"):
        backend(model("openai/smollm2"), budget_usd=1.0).check_keys()
    backend(model("openai/smollm2", price_input_per_mtok=0.0), budget_usd=1.0).check_keys()
    backend(model("openai/gpt-4o-mini"), budget_usd=1.0).check_keys()


def test_job_budget_stops_new_calls(scripted):
    b = backend(model(price_input_per_mtok=1.0, price_output_per_mtok=0.0), budget_usd=0.0025)  # 0.001 per call
    for turn in range(3):
        call(b, turn=turn)
    with pytest.raises(BudgetExceeded) as info:
        call(b, turn=3)
    assert info.value.status == "budget_exceeded"
    assert len(scripted.calls) == 3 and b.budget.spent_usd == pytest.approx(0.003)


def _open(b: Backend) -> Backend:
    b.ledger.open()
    return b


def test_sweep_ledger_is_shared_between_jobs(scripted, tmp_path):
    ledger = tmp_path / "store" / ".ledger" / "sweep.jsonl"
    priced = model(price_input_per_mtok=1.0)
    first = _open(Backend({"model": priced}, {**RUN, "sweep_budget_usd": 0.0025}, ledger=ledger, experiment="a"))
    for turn in range(3):
        call(first, turn=turn)
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [e["t"] for e in events] == ["send", "done"] * 3  # each call on record before it went out
    second = _open(Backend({"model": priced}, {**RUN, "sweep_budget_usd": 0.0025}, ledger=ledger, experiment="b"))
    with pytest.raises(BudgetExceeded, match="sweep_budget_usd"):
        call(second)
    assert len(scripted.calls) == 3
    reread = Ledger(ledger)
    reread.open()
    assert reread.total == pytest.approx(0.003) and reread.calls == 3
    assert Budget(None, reread, 1.0).exceeded is None


def test_job_budget_holds_across_reruns(scripted, tmp_path):
    ledger = tmp_path / "store" / ".ledger" / "spend.jsonl"
    priced = model(price_input_per_mtok=1.0)  # 0.001 per call
    for _rerun in range(3):  # the same command three times: the cap counts what earlier runs spent
        b = _open(Backend({"model": priced}, {**RUN, "budget_usd": 0.0025}, ledger=ledger, experiment="e"))
        with contextlib.suppress(BudgetExceeded):
            for turn in range(5):
                call(b, turn=turn)
        b.ledger.close()
    assert len(scripted.calls) == 3
    other = _open(Backend({"model": priced}, {**RUN, "budget_usd": 0.0025}, ledger=ledger, experiment="f"))
    call(other)  # another experiment in the same store has its own job cap
    assert len(scripted.calls) == 4


def test_queued_calls_do_not_pass_the_cap(scripted, tmp_path):
    """Calls waiting for a concurrency slot are checked when they go out, not when they queued."""
    async def slow(model, messages, *args, **kwargs):
        await asyncio.sleep(0.01)
        return litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": "ok"}}], model=model,
                                     usage=litellm.Usage(prompt_tokens=1000, completion_tokens=0))

    scripted.acompletion = slow
    b = _open(Backend({"model": model(price_input_per_mtok=1.0, max_concurrency=2)}, {**RUN, "budget_usd": 0.0035},
                      ledger=tmp_path / "ledger" / "spend.jsonl", experiment="e"))

    async def many():
        keys = [{"experiment": "e", "game": g, "seat": 0, "turn": 0, "attempt": 0} for g in range(20)]
        return await asyncio.gather(*(b.complete("model", MESSAGES, k) for k in keys), return_exceptions=True)

    results = asyncio.run(many())
    sent = [r for r in results if not isinstance(r, BudgetExceeded)]
    # 0.001 a call, cap 0.0035: the 4th call starts at 0.003 spent; at most the 2 in flight then pass the cap
    assert 4 <= len(sent) <= 5 and b.budget.spent_usd <= 0.0035 + 2 * 0.001
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 20 - len(sent)


def test_concurrency_limit_per_model(scripted):
    running, peak = 0, 0

    async def slow(model, messages, *args, **kwargs):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": "ok"}}], model=model)

    scripted.acompletion = slow
    b = backend(model(max_concurrency=3))

    async def many():
        keys = [{"experiment": "e", "game": g, "seat": 0, "turn": 0, "attempt": 0} for g in range(12)]
        await asyncio.gather(*(b.complete("model", MESSAGES, k) for k in keys))

    asyncio.run(many())
    assert peak == 3


def test_rpm_and_tpm_windows():
    clock = [0.0]
    waits: list[float] = []

    async def fake_sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    async def go(limiter: Limiter, n: int, tokens: int) -> list[float]:
        starts = []
        for _ in range(n):
            async with limiter.slot(tokens):
                starts.append(clock[0])
        return starts

    rpm = asyncio.run(go(Limiter(8, rpm=2, clock=lambda: clock[0], sleep=fake_sleep), 5, 0))
    assert rpm == [0.0, 0.0, 60.0, 60.0, 120.0]
    clock[0] = 0.0
    tpm = asyncio.run(go(Limiter(8, tpm=1000, clock=lambda: clock[0], sleep=fake_sleep), 3, 600))
    assert tpm == [0.0, 60.0, 120.0]
    clock[0] = 0.0
    limiter = Limiter(8, clock=lambda: clock[0], sleep=fake_sleep)
    limiter.pause(5.0)
    assert asyncio.run(go(limiter, 1, 0)) == [5.0]


# --- end to end through run_experiment --------------------------------------------------------------


def test_budget_cap_stops_the_job_at_the_limit(make_cfg):
    # the offline player priced at $1 per million input tokens: about a tenth of a cent per call
    cfg = make_cfg(
        "n_games=4", "env.max_rounds=3", "run.game_concurrency=2", "model.price_input_per_mtok=1", "model.max_concurrency=2",
        "run.budget_usd=0.05",
    )
    summary = run_experiment(cfg)
    statuses = [r["status"] for r in summary.records]
    assert "budget_exceeded" in statuses
    assert len(summary.records) < summary.total_games  # games not begun were not played
    paid = [c["cost_usd"] for r in summary.records for c in r["calls"] if c["cost_usd"]]
    # the cap is crossed only by calls already in flight when it was reached (at most max_concurrency)
    assert sum(paid) >= 0.05 and sum(paid) - 0.05 <= 2 * max(paid)
    stopped = next(r for r in summary.records if r["status"] == "budget_exceeded")
    assert stopped["error"]["type"] == "BudgetExceeded" and "run.budget_usd" in stopped["error"]["message"]


def test_calls_of_different_games_overlap(make_cfg, monkeypatch):
    monkeypatch.setattr(SIM_PROVIDER, "latency_s", 0.02)
    summary = run_experiment(make_cfg("n_games=2", "env.max_rounds=2", "run.game_concurrency=4"))
    calls = [(r["game_index"], c["started"], c["finished"]) for r in summary.records for c in r["calls"]]
    across = sum(
        1
        for (g1, s1, f1), (g2, s2, f2) in itertools.combinations(calls, 2)
        if g1 != g2 and s1 < f2 and s2 < f1
    )
    assert len(summary.records) == 4 and across > 0
    assert all(c["cost_usd"] == 0.0 and not c["cache_hit"] for r in summary.records for c in r["calls"])  # free, uncached
