"""Transport to models; the only module that imports LiteLLM.

One :meth:`Backend.complete` call = one model reply: exact replay cache lookup, per-endpoint limits,
the budget check and the ledger entry at the moment of sending, the LiteLLM call (with LiteLLM's and
the OpenAI client's own retries off), our retries of transient failures, usage, cost and spend.
Offline negotiators (``sim/<strategy>``) are served through LiteLLM's custom-provider mechanism, so
they take exactly the call path real models take.

**The retry policy** is :func:`classify`: one function decides what a failed call means from the
failure itself (the exception class, the HTTP status, the reply), never from the provider string,
so every route (``openai/``, ``anthropic/``, ``openrouter/``, ``hosted_vllm/``, ``custom_openai/`` ...)
retries the same faults. Transient: 408, 409, 425, 429 and 5xx, connection errors, timeouts, a body
that is not the API's JSON, no choices, empty content. Fatal for the job: 401, 402, 403, an endpoint
that stays unreachable, a request rejected before the model ever answered (a wrong parameter or model
name: every game would fail the same way). The game fails, not retried: a context overflow, another
invalid request, an exception inside an offline player or our own code (a bug).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import email.utils
import enum
import functools
import hashlib
import json
import logging
import os
import random
import re
import socket
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")  # litellm fetches its price map at import otherwise
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import litellm  # noqa: E402
import openai  # noqa: E402
from litellm import CustomLLM  # noqa: E402

from bargain import human, sim  # noqa: E402
from bargain.backend.budget import Budget, Ledger  # noqa: E402
from bargain.backend.cache import ReplayCache, cache_key  # noqa: E402
from bargain.backend.limits import Limiter  # noqa: E402
from bargain.backend.servers import Server, ServerError, expand  # noqa: E402
from bargain.preflight import model_problems, unreachable  # noqa: E402
from bargain.store import canonical_json, ensure_writable, redact_url  # noqa: E402

log = logging.getLogger(__name__)

# Transient whatever their status says (LiteLLM maps some routes' 5xx and bad bodies to these).
_TRANSIENT_CLASSES = (
    litellm.RateLimitError,
    litellm.Timeout,
    litellm.InternalServerError,
    litellm.ServiceUnavailableError,
    litellm.BadGatewayError,
    litellm.APIConnectionError,
    openai.APIResponseValidationError,
)
_TRANSIENT_STATUS = {408, 409, 425, 429}
_FATAL_STATUS = {401, 402, 403}  # bad key, no credit left, no access: no game can succeed
# Context overflows that a route reports as a plain bad request (OpenRouter does).
_CONTEXT = re.compile(r"context.length|context window|maximum context|prompt is too long|too many tokens", re.IGNORECASE)
# What a connection that never opened looks like in the messages of the various clients LiteLLM uses.
_UNREACHABLE = re.compile(
    r"connection refused|cannot connect to host|connection error|failed to establish|name or service not known|"
    r"temporary failure in name resolution|nodename nor servname|no route to host|network is unreachable",
    re.IGNORECASE,
)

# o-series and gpt-5 models take max_completion_tokens instead of max_tokens.
_REASONING = re.compile(r"^(o\d|gpt-5)")
# Room for reasoning on top of the visible reply when an effort is set and no room or budget is given.
EFFORT_ROOM = 16384

_sleep = asyncio.sleep  # backoff waits; tests replace it to run retries instantly


class Failure(str, enum.Enum):
    """What a failed call means; decided by :func:`classify`."""

    TRANSIENT = "transient"  # retried with backoff
    FATAL = "fatal"  # no game can succeed (bad key, no access, dead endpoint): the job stops
    INVALID = "invalid_request"  # the provider rejects this request: the game fails, not retried
    CONTEXT = "context_overflow"  # the conversation outgrew the model's context: the game fails
    BUG = "bug"  # an exception inside an offline player or our own code: the game fails at once

    @property
    def retryable(self) -> bool:
        """Whether the same game can succeed when played again unchanged."""
        return self is Failure.TRANSIENT


class MalformedReply(Exception):
    """The transport answered without a usable reply: no choices, or empty content."""

    def __init__(self, message: str, empty: bool = False) -> None:
        super().__init__(message)
        self.empty = empty


class FatalBackendError(RuntimeError):
    """An error that no other game would escape either (bad key, dead server): stop the job."""


class MissingKeyError(FatalBackendError):
    """A model's API key variable is unset (raised before any game starts)."""


class ModelCallError(RuntimeError):
    """A call failed for good: a non-retryable failure, or a transient one after the last retry."""

    def __init__(self, message: str, attempts: int, failure: Failure = Failure.TRANSIENT) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.failure = failure


def classify(exc: BaseException, litellm_model: str) -> Failure:
    """The retry policy: what a failed call means, from the failure itself, for every provider route."""
    if isinstance(exc, (MalformedReply, asyncio.TimeoutError)):
        return Failure.TRANSIENT
    if litellm_model.startswith("sim/") or not isinstance(exc, openai.OpenAIError):
        # An offline player runs in this process (LiteLLM wraps what it raises as a connection error):
        # there is no network to fail, so an exception there, like any non-API exception, is a bug.
        return Failure.BUG
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.ContextWindowExceededError) or (status == 400 and _CONTEXT.search(str(exc))):
        return Failure.CONTEXT
    if status in _FATAL_STATUS or isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return Failure.FATAL
    if (
        isinstance(exc, _TRANSIENT_CLASSES)
        or status in _TRANSIENT_STATUS
        or not isinstance(status, int)
        or status >= 500
        or 200 <= status < 300  # "success" with a body that is not the API's JSON (an HTML page, cut short)
    ):
        return Failure.TRANSIENT
    return Failure.INVALID


def _unreachable(exc: BaseException) -> bool:
    """Whether a failure means the endpoint could not be reached at all (refused, unknown host ...)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, socket.gaierror)) or _UNREACHABLE.search(str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reply_text(response: Any, accept_empty: bool = False) -> str:
    """The reply's text; raises MalformedReply when the transport gave none (retried as transient).

    Empty content may also be what the model means: asked again and empty again, it is the answer
    (``accept_empty``), and the agent treats it as an invalid move instead of the game failing.
    """
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedReply("the reply has no choices")
    text = getattr(getattr(choices[0], "message", None), "content", None)
    if not isinstance(text, str) or not text.strip():
        if accept_empty:
            return ""
        reason = getattr(choices[0], "finish_reason", None)
        raise MalformedReply(f"the reply has empty content (finish_reason={reason!r})", empty=True)
    return text


@dataclass
class Completion:
    """One model reply and what it cost (on a cache hit: what it cost when it was first made)."""

    text: str
    usage: dict[str, int]
    cost_usd: float | None
    latency_s: float
    started: float
    finished: float
    retries: int = 0
    cache_hit: bool = False
    sent_params: dict[str, Any] = field(default_factory=dict)
    model_id: str | None = None  # the model the provider says answered (snapshots behind aliases, reroutes)


def call_seed(call_key: dict[str, Any]) -> int:
    """A stable 31-bit seed for one call, derived from its identity (game, seat, turn, attempt)."""
    digest = hashlib.sha256(json.dumps(call_key, sort_keys=True).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


class _SimProvider(CustomLLM):
    """Serves ``sim/<strategy>`` models from :mod:`bargain.sim` inside this process.

    ``latency_s`` > 0 makes every reply wait uniformly 0.5-1.5 times that long, to stand in for a
    network model in concurrency tests and benchmarks; it never changes a reply.
    """

    latency_s: float = 0.0

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
        params = kwargs.get("optional_params", {})
        try:
            text = sim.respond(model, messages, seed=params.get("seed"), temperature=params.get("temperature", 0.0))
        except Exception as exc:
            raise _player_bug(model, exc) from exc
        # token counts at ~4 characters a token, so offline runs exercise cost, budgets and tpm at real scale
        prompt_tokens = sum(len(str(m["content"])) for m in messages) // 4
        return litellm.ModelResponse(
            model=f"sim/{model}",
            choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            usage=litellm.Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text) // 4 + 1,
                                total_tokens=prompt_tokens + len(text) // 4 + 1),
        )

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
        if self.latency_s:
            await asyncio.sleep(self.latency_s * random.uniform(0.5, 1.5))
        return self.completion(model, messages, *args, **kwargs)


def _player_bug(model: str, exc: Exception) -> litellm.BadRequestError:
    """An exception inside an offline player is a bug, never a transient error: log its traceback and
    turn it into an error the call path does not retry (LiteLLM would wrap a plain exception raised in a
    custom provider as APIConnectionError, which is retried)."""
    log.error("offline player sim/%s failed", model, exc_info=exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    where = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
    return litellm.BadRequestError(
        message=f"offline player sim/{model} failed: {type(exc).__name__}: {exc} (at {where}; traceback in the log)",
        model=f"sim/{model}", llm_provider="sim",
    )


class _HumanProvider(CustomLLM):
    """Serves ``human/terminal``: a person types the seat's replies (:mod:`bargain.human`)."""

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
        text = await asyncio.to_thread(human.TERMINAL.ask, messages)
        prompt_tokens = sum(len(str(m["content"])) for m in messages) // 4  # counted like the offline players'
        return litellm.ModelResponse(
            model="human/terminal",
            choices=[{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            usage=litellm.Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text) // 4 + 1,
                                total_tokens=prompt_tokens + len(text) // 4 + 1),
        )


SIM_PROVIDER = _SimProvider()
litellm.custom_provider_map = [{"provider": "sim", "custom_handler": SIM_PROVIDER},
                               {"provider": "human", "custom_handler": _HumanProvider()}]
# No LiteLLM logging callback is set, so nothing of a call is logged anywhere; its redaction switch would
# only deep-copy every growing conversation on every call (a tenth of a call's CPU) to redact a log no one writes.
litellm.turn_off_message_logging = False
litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on stdout for every error
# A call cancelled by a clean stop can leave the provider coroutine LiteLLM made in a worker thread
# unawaited; Python then warns at exit about a call that was meant to be dropped.
warnings.filterwarnings("ignore", message=r"coroutine '\w+\.acompletion' was never awaited", category=RuntimeWarning)
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    if logging.getLogger(_name).level == logging.NOTSET:  # one INFO line per call would flood job logs
        logging.getLogger(_name).setLevel(logging.WARNING)


def reasoning_room(reasoning: dict[str, Any]) -> int:
    """Tokens a reply may spend reasoning before its visible text (providers count both in one limit)."""
    room = max(reasoning.get("budget_tokens") or 0, reasoning.get("max_tokens") or 0)
    if room or reasoning.get("max_tokens") is not None:
        return room
    return EFFORT_ROOM if reasoning.get("effort") not in (None, "none") else 0


def response_format(form: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as a ``response_format`` in the form a server reads (``model.structured_output``):
    ``json_schema`` is OpenAI's (also vLLM, llama.cpp's llama-server; LiteLLM translates it for other
    providers), ``json_object`` is llama-cpp-python's server (a JSON object constrained to ``schema``)."""
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "move", "schema": schema}}
    return {"type": "json_object", "schema": schema}


def sent_params(model: dict[str, Any], call_key: dict[str, Any], reply_cap: int | None = None,
                schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters one call actually sends: config params minus unsupported ones, renamed where needed.

    ``reply_cap`` (the phase's cap, env.max_tokens.<phase>) lowers the visible reply's ``max_tokens``;
    the reasoning room is added on top, and the reasoning dial becomes ``reasoning_effort`` and/or
    ``thinking`` (LiteLLM maps both to each provider's own parameters). ``schema`` (the JSON schema of
    the move asked for) is sent as ``response_format`` if the model has ``structured_output`` set.
    """
    drop = set(model.get("unsupported_params") or [])
    params = {k: v for k, v in (model.get("params") or {}).items() if k not in drop}
    reasoning = model.get("reasoning") or {}
    cap = params.get("max_tokens")
    if reply_cap is not None:
        cap = min(cap, reply_cap) if cap else reply_cap
    if cap is not None:
        params["max_tokens"] = cap + reasoning_room(reasoning)
    if reasoning.get("effort") is not None:
        params["reasoning_effort"] = reasoning["effort"]
    budget = reasoning.get("budget_tokens")
    if budget is not None:
        off = budget == 0 and model["litellm_model"].startswith("anthropic/")  # Anthropic: no zero budget, a switch
        params["thinking"] = {"type": "disabled"} if off else {"type": "enabled", "budget_tokens": budget}
    if _REASONING.match(model["litellm_model"].rsplit("/", 1)[-1]) and "max_tokens" in params:
        params["max_completion_tokens"] = params.pop("max_tokens")
    if schema is not None and model.get("structured_output"):
        params["response_format"] = response_format(model["structured_output"], schema)
    if model["litellm_model"].startswith("sim/"):
        params["seed"] = call_seed(call_key)  # distinct per game and turn, identical on a re-run
    return params


def _prompt_cache_markers(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic: mark the system prompt and the last message as cacheable prefixes.

    Conversations are append-only, so the prefix ending at this call's last message is the start of
    the next call's prompt: the next call reads it from the provider's cache.
    """
    marked = [dict(m) for m in messages]
    for i in sorted({0, len(marked) - 1}):
        if i == len(marked) - 1 or marked[i]["role"] == "system":
            marked[i]["content"] = [{"type": "text", "text": marked[i]["content"], "cache_control": {"type": "ephemeral"}}]
    return marked


def _usage(response: Any) -> dict[str, int]:
    """Token counts of one reply. completion_tokens include the reasoning tokens (billed as output by
    every provider; LiteLLM reports them the OpenAI way), which are also recorded on their own."""
    usage = getattr(response, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", None) or 0
    reasoning = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", None)
    return {
        "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        "reasoning_tokens": int(reasoning or getattr(usage, "reasoning_tokens", None) or 0),
        "cached_tokens": int(cached),
    }


def _has_config_price(model: dict[str, Any]) -> bool:
    return model.get("price_input_per_mtok") is not None or model.get("price_output_per_mtok") is not None


def _free(model: dict[str, Any]) -> bool:
    """Calls cost nothing for sure (an offline player, or a configured price of 0): no money is at risk."""
    if _has_config_price(model):
        return not (model.get("price_input_per_mtok") or model.get("price_output_per_mtok"))
    return model["litellm_model"].startswith("sim/")


@functools.lru_cache(maxsize=None)
def _map_price(litellm_model: str) -> tuple[float, float] | None:
    """USD per input and output token in LiteLLM's price map, or None if it has none.

    Looked up once per model: a lookup that fails scans the whole map with regexes, which cost more
    CPU than the rest of a call when it was done on every call.
    """
    try:
        info = litellm.get_model_info(litellm_model)
    except Exception:  # noqa: BLE001 - unmapped model
        return None
    if info.get("input_cost_per_token") is None:
        return None
    return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)


# LiteLLM prices every call for its own logging: against its whole price map when it has no price for
# the model, and when the price is 0 it scans the map again to explain why. Handing it a price with each
# call skips both; the nominal price is LiteLLM's alone (our costs come from _cost).
_NOMINAL_PRICE = 1e-12


def _pricing(model: dict[str, Any]) -> dict[str, float]:
    """Per-token prices handed to LiteLLM with each call: the configured ones, else a nominal one for a
    model its map does not price; nothing for a mapped model (LiteLLM knows its cached-input and tier prices)."""
    if _has_config_price(model):
        return {"input_cost_per_token": (model.get("price_input_per_mtok") or 0.0) / 1e6 or _NOMINAL_PRICE,
                "output_cost_per_token": (model.get("price_output_per_mtok") or 0.0) / 1e6 or _NOMINAL_PRICE}
    if model["litellm_model"].startswith("sim/") or _map_price(model["litellm_model"]) is None:
        return {"input_cost_per_token": _NOMINAL_PRICE, "output_cost_per_token": _NOMINAL_PRICE}
    return {}


def _cost(model: dict[str, Any], response: Any, usage: dict[str, int]) -> float | None:
    """USD for one call: configured per-token prices first, else LiteLLM's price map, else None (unknown)."""
    if _has_config_price(model):
        return (
            usage["prompt_tokens"] * (model.get("price_input_per_mtok") or 0.0)
            + usage["completion_tokens"] * (model.get("price_output_per_mtok") or 0.0)
        ) / 1e6
    if model["litellm_model"].startswith("sim/"):
        return 0.0
    if _map_price(model["litellm_model"]) is None:
        return None
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # noqa: BLE001 - a response LiteLLM cannot price after all: the price is unknown, not an error
        return None


def _price_known(model: dict[str, Any]) -> bool:
    return model["litellm_model"].startswith("sim/") or _has_config_price(model) or _map_price(model["litellm_model"]) is not None


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (Retry-After / retry-after-ms headers), if it said."""
    for headers in (
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
    ):
        if not headers:
            continue
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        with contextlib.suppress(ValueError, TypeError):
            if "retry-after-ms" in lower:
                return max(0.0, float(lower["retry-after-ms"]) / 1000)
            if "retry-after" in lower:
                value = lower["retry-after"]
                try:
                    return max(0.0, float(value))
                except ValueError:
                    when = email.utils.parsedate_to_datetime(value)
                    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
    return None


def backoff_delay(retry: int, base_s: float, max_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Capped exponential backoff with equal jitter (never zero, never in lockstep); Retry-After wins if longer."""
    cap = min(max_s, base_s * 2**retry)
    delay = cap / 2 + rng.uniform(0, cap / 2)
    return max(delay, retry_after) if retry_after is not None else delay


class Backend:
    """Calls models by config key (``model``, ``opponent``, ``opponents.x``).

    Holds the job's limits, spend and cache; holds no global LiteLLM state beyond the provider map.
    Use it inside :meth:`session`, which checks the endpoints and paths, opens the spend ledger and
    starts self-hosted servers before the first game.
    """

    def __init__(
        self,
        models: dict[str, dict[str, Any]],
        run: dict[str, Any],
        *,
        cache_dir: str | Path | None = None,
        ledger: str | Path | None = None,
        experiment: str | None = None,
    ) -> None:
        self.models = copy.deepcopy(models)  # api_base gets the real port of a started server
        self.run = run
        self.cache = ReplayCache(cache_dir) if cache_dir is not None and run.get("cache", True) else None
        self.experiment = experiment  # the replay cache keeps each experiment's entries apart
        self.ledger = Ledger(ledger, self._cached_cost) if ledger else None
        self.budget = Budget(run.get("budget_usd"), self.ledger, run.get("sweep_budget_usd"), experiment)
        self.in_flight = 0
        self.provider_calls = 0
        self.cache_hits = 0
        self._answered: set[str] = set()  # models that answered at least once in this job
        self.stopped: FatalBackendError | None = None  # once a call found a dead end, every call stops there
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limiters: dict[tuple[str, str | None], Limiter] = {}
        self._first_calls: dict[str, asyncio.Lock] = {}
        self._servers: dict[str, Server] = {}

    def _label(self, key: str) -> str:
        model = self.models[key]
        return f"{model['name']} ({key}, {model['litellm_model']})"

    def _cached_cost(self, key: str, experiment: str | None) -> float | None:
        entry = self.cache.get(key, experiment) if self.cache else None
        return None if entry is None else float(entry.get("cost_usd") or 0.0)

    def check_keys(self) -> None:
        """Fail before any game if a key variable or endpoint is missing, or a budget cannot be enforced for lack of a price."""
        for key, model in self.models.items():
            if problems := model_problems(key, model):
                raise (MissingKeyError if problems[0].missing_key else FatalBackendError)(problems[0].message)
            capped = self.run.get("budget_usd") is not None or self.run.get("sweep_budget_usd") is not None
            if capped and not _price_known(model):
                raise FatalBackendError(
                    f"a budget is set but model {self._label(key)} has no price in LiteLLM's map: "
                    f"set {key}.price_input_per_mtok and {key}.price_output_per_mtok (USD per million tokens)"
                )

    def check_endpoints(self) -> None:
        """Before the first game: every ``api_base`` accepts a connection (no request is sent, nothing is paid).

        A refused connection, an unknown host or silence stops the job here instead of failing every game.
        """
        for key, model in self.models.items():
            base = model.get("api_base")
            if base and not model["litellm_model"].startswith("sim/") and (reason := unreachable(base)):
                raise FatalBackendError(
                    f"model {self._label(key)}: {key}.api_base={redact_url(base)} is unreachable ({reason}); "
                    f"start the server or fix {key}.api_base"
                )

    @contextlib.contextmanager
    def session(self, log_dir: str | Path) -> Iterator[None]:
        """The job's lifetime: prove the cache and ledger writable, open the ledger, start self-hosted
        servers and wait until they answer, check every endpoint; stop the servers (by process group)
        and close the ledger on the way out, whatever happens."""
        if self.cache is not None:
            ensure_writable(self.cache.root, "run.cache_dir")
        if self.ledger is not None:
            ensure_writable(self.ledger.path.parent, "store")
            self.ledger.open()
        servers: dict[str, Server] = {}
        try:
            for key, model in self.models.items():
                if not model.get("server"):
                    continue
                ident = canonical_json({"model": model["litellm_model"], "server": model["server"]})
                if ident not in servers:
                    servers[ident] = Server(model["name"], model["server"], Path(log_dir))
                    servers[ident].start()
                self._servers[key] = servers[ident]
                model["api_base"] = expand(model.get("api_base") or "http://127.0.0.1:{port}/v1", servers[ident].port)
            self.check_endpoints()
            yield
        except ServerError as exc:
            raise FatalBackendError(str(exc)) from None
        finally:
            for server in servers.values():
                server.stop()
            self._servers.clear()
            if self.ledger is not None:
                self.ledger.close()
            if self.cache is not None:
                self.cache.close()

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # asyncio primitives belong to one loop
            self._loop, self._limiters, self._first_calls = loop, {}, {}

    def _limiter(self, model: dict[str, Any]) -> Limiter:
        """The limiter of the model's endpoint; models sharing an endpoint share the tightest limits."""
        self._same_loop()
        endpoint = (model["litellm_model"], model.get("api_base"))
        if endpoint not in self._limiters:
            same = [m for m in self.models.values() if (m["litellm_model"], m.get("api_base")) == endpoint]
            rpms = [m["rpm"] for m in same if m.get("rpm")]
            tpms = [m["tpm"] for m in same if m.get("tpm")]
            self._limiters[endpoint] = Limiter(
                min(m.get("max_concurrency") or 8 for m in same), min(rpms, default=None), min(tpms, default=None)
            )
        return self._limiters[endpoint]

    def prompt_room(self, model: str, reply_cap: int | None = None) -> int | None:
        """Tokens a prompt may take so that it and the reply's token limit fit the context window (None: unknown)."""
        cfg = self.models[model]
        if not cfg.get("context_window"):
            return None
        params = sent_params(cfg, {}, reply_cap)
        return cfg["context_window"] - int(params.get("max_tokens") or params.get("max_completion_tokens") or 0)

    async def complete(
        self, model: str, messages: list[dict[str, str]], call_key: dict[str, Any], reply_cap: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        """One reply from the model under config key ``model`` (from the replay cache if it holds it).

        ``reply_cap`` is the phase's cap on the visible reply, ``schema`` the JSON schema of the move
        asked for (see :func:`sent_params`). Raises BudgetExceeded (nothing was sent), ModelCallError
        (this game fails) or FatalBackendError (the job stops).
        """
        cfg = self.models[model]
        params = sent_params(cfg, call_key, reply_cap, schema)
        # offline players are not cached: they are free and seeded, and a cache would freeze their old code
        cacheable = self.cache is not None and not cfg["litellm_model"].startswith("sim/")
        key = cache_key(cfg["litellm_model"], messages, params, call_key) if cacheable else None
        if key and (entry := self.cache.get(key, self.experiment)) is not None:
            self.cache_hits += 1
            now = time.time()
            return Completion(
                text=entry["text"], usage=entry["usage"], cost_usd=entry.get("cost_usd"), latency_s=0.0,
                started=now, finished=now, retries=entry.get("retries", 0), cache_hit=True, sent_params=params,
                model_id=entry.get("model_id"),
            )
        answer = None
        try:
            if model not in self._answered:
                # Until a model has answered once, its calls go one at a time: a dead key, a wrong parameter
                # or model name is then found by one request, not by one request per game running at once.
                self._same_loop()
                async with self._first_calls.setdefault(model, asyncio.Lock()):
                    if model not in self._answered:
                        answer = await self._call(model, messages, params, key, call_key)
            return answer or await self._call(model, messages, params, key, call_key)
        except FatalBackendError as exc:
            self.stopped = self.stopped or exc
            raise

    def _max_cost(self, cfg: dict[str, Any], messages: list[dict[str, str]], params: dict[str, Any]) -> float | None:
        """The most one call can cost: every prompt character a token, and the full ``max_tokens``."""
        if not _has_config_price(cfg):
            if (per_token := _map_price(cfg["litellm_model"])) is None:
                return None  # unmapped model: the price is unknown
            prices = per_token[0] * 1e6, per_token[1] * 1e6
        else:
            prices = cfg.get("price_input_per_mtok") or 0.0, cfg.get("price_output_per_mtok") or 0.0
        out = int(params.get("max_tokens") or params.get("max_completion_tokens") or 4096)
        return (sum(len(str(m["content"])) for m in messages) * prices[0] + out * prices[1]) / 1e6

    async def _call(
        self, key: str, messages: list[dict[str, str]], params: dict[str, Any], cache: str | None,
        call_key: dict[str, Any],
    ) -> Completion:
        """The LiteLLM call under the retry policy; the reply goes into the replay cache under ``cache``."""
        if self.stopped is not None:  # the job is stopping: no call goes out to the same dead end
            raise FatalBackendError(str(self.stopped))
        cfg = self.models[key]
        timeout = float(cfg.get("timeout_s") or self.run.get("timeout_s", 120.0))
        timeout_key = f"{key}.timeout_s" if cfg.get("timeout_s") else "run.timeout_s"
        secret = os.environ.get(cfg["api_key_env"]) if cfg.get("api_key_env") else None
        kwargs: dict[str, Any] = dict(
            model=cfg["litellm_model"],
            messages=_prompt_cache_markers(messages) if "claude" in cfg["litellm_model"].lower() else messages,
            num_retries=0,  # LiteLLM retries blindly (every class, no wait, needs tenacity): ours below
            max_retries=0,  # and so would the OpenAI client inside it, hidden from our count and backoff
            timeout=timeout,
            **_pricing(cfg),
            **params,
        )
        if cfg.get("api_base"):
            kwargs["api_base"] = cfg["api_base"]
            # a self-hosted server gets a placeholder, never a provider key LiteLLM finds in the environment
            kwargs["api_key"] = secret or "no-key"
        elif secret:
            kwargs["api_key"] = secret
        limiter = self._limiter(cfg)
        est_tokens = sum(len(str(m["content"])) for m in messages) // 4 + int(
            params.get("max_tokens") or params.get("max_completion_tokens") or 0
        )
        free = _free(cfg)
        max_usd = None if free else self._max_cost(cfg, messages, params)
        max_retries = int(self.run.get("max_retries", 6))
        attempt, unreachable, empty = 0, 0, False
        while True:
            async with limiter.slot(est_tokens) as record_tokens:
                # the caps are checked now, as the call goes out, not when it joined the queue; a paid
                # call is put on record in the ledger before it is sent
                if free:
                    self.budget.check()
                    ticket = None
                else:
                    ticket = self.budget.start(max_usd, cache)
                self.in_flight += 1
                self.provider_calls += 1
                started = time.time()
                cost: float | None = 0.0
                how = "error"
                try:
                    response = await asyncio.wait_for(litellm.acompletion(**kwargs), timeout)
                    finished = time.time()
                    usage = _usage(response)
                    record_tokens(usage["prompt_tokens"] + usage["completion_tokens"])
                    cost, how = _cost(cfg, response, usage), "reply"  # a reply with empty content is billed too
                    text = reply_text(response, accept_empty=empty)
                except asyncio.CancelledError:
                    cost, how = max_usd, "cancelled"  # the provider may bill a call cut off mid-way
                    raise
                except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                    error: BaseException = exc
                else:
                    model_id = getattr(response, "model", None)  # the model the provider says answered
                    if cache:  # before the ledger settles it: a kill in between is reconciled at this cost
                        self.cache.put(cache, {"text": text, "usage": usage, "cost_usd": cost, "retries": attempt,
                                               "model": cfg["litellm_model"], "model_id": model_id, "call": call_key},
                                       self.experiment)
                    self._answered.add(key)
                    return Completion(text=text, usage=usage, cost_usd=cost, latency_s=finished - started,
                                      started=started, finished=finished, retries=attempt, sent_params=params,
                                      model_id=model_id)
                finally:
                    self.in_flight -= 1
                    if not free:
                        self.budget.finish(ticket, cost, how)
            if isinstance(error, asyncio.TimeoutError):
                error = litellm.Timeout(f"no reply within {timeout_key}={timeout:g}", model=cfg["litellm_model"],
                                        llm_provider="bargain")
            failure = classify(error, cfg["litellm_model"])
            what = self._describe(error, secret)
            if failure is Failure.FATAL:
                raise FatalBackendError(self._fatal_message(key, error)) from None
            if failure is Failure.INVALID and key not in self._answered:
                raise FatalBackendError(
                    f"model {self._label(key)} rejected the request before answering any ({what}); every game "
                    f"would fail the same way: check {key}.litellm_model and {key}.params"
                ) from None
            if failure is Failure.BUG:
                log.error("model %s: %s", self._label(key), what, exc_info=error)
            if not failure.retryable:
                raise ModelCallError(f"model {self._label(key)}: {what} ({failure.value}, not retried)", attempt + 1,
                                     failure) from None
            unreachable = unreachable + 1 if _unreachable(error) else 0
            empty = isinstance(error, MalformedReply) and error.empty
            server = self._servers.get(key)
            if server is not None and not server.alive():
                raise FatalBackendError(
                    f"model {self._label(key)}: its server exited (code {server.proc.returncode}); see {server.log_path}"
                )
            if attempt == max_retries:
                if unreachable == attempt + 1:  # never got through: every other game would wait just as long
                    where = f"{key}.api_base={redact_url(cfg['api_base'])}" if cfg.get("api_base") else "its provider"
                    raise FatalBackendError(
                        f"model {self._label(key)}: cannot reach {where} ({attempt + 1} attempts: {what}); "
                        f"check that the endpoint is up and {key}.api_base"
                    ) from None
                raise ModelCallError(
                    f"model {self._label(key)}: {what} ({attempt + 1} attempts; run.max_retries={max_retries})",
                    attempt + 1,
                )
            retry_after = _retry_after(error)
            if retry_after is not None:
                limiter.pause(retry_after)  # the provider throttles the endpoint, not just this call
            delay = backoff_delay(
                attempt, float(self.run.get("backoff_base_s", 1.0)), float(self.run.get("backoff_max_s", 60.0)),
                retry_after, self._rng,
            )
            log.info("%s: %s; retry %d/%d in %.1f s", self._label(key), type(error).__name__, attempt + 1, max_retries, delay)
            await _sleep(delay)
            attempt += 1

    def _describe(self, exc: BaseException, secret: str | None) -> str:
        """One line about an error, with the key (should a provider echo it) and URL credentials removed."""
        text = str(exc)
        if not text.startswith("litellm."):
            text = f"{type(exc).__name__}: {text}"
        if secret:
            text = text.replace(secret, "***")
        text = " ".join(redact_url(text).split())
        return text if len(text) <= 500 else text[:497] + "..."

    def _fatal_message(self, key: str, exc: BaseException) -> str:
        cfg = self.models[key]
        var = cfg.get("api_key_env")
        secret = os.environ.get(var) if var else None
        where = f"check the key in {var}" if var else f"{key}.api_key_env is null; name the variable holding the key"
        status = getattr(exc, "status_code", None)
        problem = {401: "authentication failed", 402: "payment required (no credit left)"}.get(status, "permission denied")
        if isinstance(exc, litellm.AuthenticationError):
            problem = "authentication failed"
        at = f" at {redact_url(cfg['api_base'])}" if cfg.get("api_base") else ""
        return f"model {self._label(key)}: {problem}{at}; {where} ({self._describe(exc, secret)})"
