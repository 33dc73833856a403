"""Transport to models; the only module that imports LiteLLM.

One :meth:`Backend.complete` call = one model reply: exact replay cache lookup, budget check,
per-endpoint limits, the LiteLLM call (with LiteLLM's own retries off), our retries of transient
errors, usage, cost and the spend totals. Offline negotiators (``sim/<strategy>``) are served through
LiteLLM's custom-provider mechanism, so they take exactly the call path real models take.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import email.utils
import hashlib
import json
import logging
import os
import random
import re
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")  # litellm fetches its price map at import otherwise
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import litellm  # noqa: E402
from litellm import CustomLLM  # noqa: E402

from bargain import sim  # noqa: E402
from bargain.backend.budget import Budget, Ledger  # noqa: E402
from bargain.backend.cache import ReplayCache, cache_key  # noqa: E402
from bargain.backend.limits import Limiter  # noqa: E402
from bargain.backend.servers import Server, ServerError, expand  # noqa: E402
from bargain.preflight import model_problems  # noqa: E402
from bargain.store import canonical_json  # noqa: E402

log = logging.getLogger(__name__)

# Retried with backoff; everything else fails the call at once (bad request, context window, not found ...).
TRANSIENT = (
    litellm.RateLimitError,
    litellm.Timeout,
    litellm.InternalServerError,  # also what "connection refused" to an api_base becomes
    litellm.ServiceUnavailableError,
    litellm.BadGatewayError,
    litellm.APIConnectionError,  # also any plain exception raised inside a custom provider
)
# Every other game would fail the same way: stop the job.
FATAL = (litellm.AuthenticationError, litellm.PermissionDeniedError)

# o-series and gpt-5 models take max_completion_tokens instead of max_tokens.
_REASONING = re.compile(r"^(o\d|gpt-5)")
# Room for reasoning on top of the visible reply when an effort is set and no room or budget is given.
EFFORT_ROOM = 16384

_sleep = asyncio.sleep  # backoff waits; tests replace it to run retries instantly


class FatalBackendError(RuntimeError):
    """An error that no other game would escape either (bad key, dead server): stop the job."""


class MissingKeyError(FatalBackendError):
    """A model's API key variable is unset (raised before any game starts)."""


class ModelCallError(RuntimeError):
    """A call failed for good: a non-transient error, or a transient one after the last retry."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


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


SIM_PROVIDER = _SimProvider()
litellm.custom_provider_map = [{"provider": "sim", "custom_handler": SIM_PROVIDER}]
litellm.turn_off_message_logging = True
litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on stdout for every error
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    if logging.getLogger(_name).level == logging.NOTSET:  # one INFO line per call would flood job logs
        logging.getLogger(_name).setLevel(logging.WARNING)


def reasoning_room(reasoning: dict[str, Any]) -> int:
    """Tokens a reply may spend reasoning before its visible text (providers count both in one limit)."""
    room = max(reasoning.get("budget_tokens") or 0, reasoning.get("max_tokens") or 0)
    if room or reasoning.get("max_tokens") is not None:
        return room
    return EFFORT_ROOM if reasoning.get("effort") not in (None, "none") else 0


def sent_params(model: dict[str, Any], call_key: dict[str, Any], reply_cap: int | None = None) -> dict[str, Any]:
    """The parameters one call actually sends: config params minus unsupported ones, renamed where needed.

    ``reply_cap`` (the phase's cap, env.max_tokens.<phase>) lowers the visible reply's ``max_tokens``;
    the reasoning room is added on top, and the reasoning dial becomes ``reasoning_effort`` and/or
    ``thinking`` (LiteLLM maps both to each provider's own parameters).
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


def _cost(model: dict[str, Any], response: Any, usage: dict[str, int]) -> float | None:
    """USD for one call: configured per-token prices first, else LiteLLM's price map, else None (unknown)."""
    if _has_config_price(model):
        return (
            usage["prompt_tokens"] * (model.get("price_input_per_mtok") or 0.0)
            + usage["completion_tokens"] * (model.get("price_output_per_mtok") or 0.0)
        ) / 1e6
    if model["litellm_model"].startswith("sim/"):
        return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # noqa: BLE001 - ModelNotMappedError and friends: the price is unknown, not an error
        return None


def _price_known(model: dict[str, Any]) -> bool:
    if model["litellm_model"].startswith("sim/") or _has_config_price(model):
        return True
    try:
        return litellm.get_model_info(model["litellm_model"]).get("input_cost_per_token") is not None
    except Exception:  # noqa: BLE001 - unmapped model
        return False


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


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


class Backend:
    """Calls models by config key (``model``, ``opponent``, ``opponents.x``).

    Holds the job's limits, spend and cache; holds no global LiteLLM state beyond the provider map.
    """

    def __init__(
        self,
        models: dict[str, dict[str, Any]],
        run: dict[str, Any],
        *,
        cache_dir: str | Path | None = None,
        ledger: str | Path | None = None,
    ) -> None:
        self.models = copy.deepcopy(models)  # api_base gets the real port of a started server
        self.run = run
        self.cache = ReplayCache(cache_dir) if cache_dir is not None and run.get("cache", True) else None
        self.budget = Budget(run.get("budget_usd"), Ledger(ledger) if ledger else None, run.get("sweep_budget_usd"))
        self.in_flight = 0
        self.provider_calls = 0
        self.cache_hits = 0
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limiters: dict[tuple[str, str | None], Limiter] = {}
        self._servers: dict[str, Server] = {}

    def _label(self, key: str) -> str:
        model = self.models[key]
        return f"{model['name']} ({key}, {model['litellm_model']})"

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

    @contextlib.contextmanager
    def serving(self, log_dir: str | Path) -> Iterator[None]:
        """Start the servers of self-hosted models, wait until they answer, and stop them on the way out.

        Servers are stopped by process group on success, on errors, and on SIGTERM (turned into
        SystemExit here when nothing else handles it, e.g. a scheduler's kill).
        """
        servers: dict[str, Server] = {}
        restore = None
        wanted = [key for key, model in self.models.items() if model.get("server")]
        if wanted and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                restore = signal.signal(signal.SIGTERM, _terminate)
        try:
            for key in wanted:
                model = self.models[key]
                ident = canonical_json({"model": model["litellm_model"], "server": model["server"]})
                if ident not in servers:
                    servers[ident] = Server(model["name"], model["server"], Path(log_dir))
                    servers[ident].start()
                self._servers[key] = servers[ident]
                model["api_base"] = expand(model.get("api_base") or "http://127.0.0.1:{port}/v1", servers[ident].port)
            yield
        except ServerError as exc:
            raise FatalBackendError(str(exc)) from None
        finally:
            for server in servers.values():
                server.stop()
            self._servers.clear()
            if restore is not None:
                signal.signal(signal.SIGTERM, restore)

    def _limiter(self, model: dict[str, Any]) -> Limiter:
        """The limiter of the model's endpoint; models sharing an endpoint share the tightest limits."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # asyncio primitives belong to one loop
            self._loop, self._limiters = loop, {}
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
        self, model: str, messages: list[dict[str, str]], call_key: dict[str, Any], reply_cap: int | None = None
    ) -> Completion:
        """One reply from the model under config key ``model`` (from the replay cache if it holds it).

        ``reply_cap`` is the phase's cap on the visible reply. Raises BudgetExceeded (nothing was
        sent), ModelCallError (this game fails) or FatalBackendError (the job stops).
        """
        cfg = self.models[model]
        params = sent_params(cfg, call_key, reply_cap)
        # offline players are not cached: they are free and seeded, and a cache would freeze their old code
        cacheable = self.cache is not None and not cfg["litellm_model"].startswith("sim/")
        key = cache_key(cfg["litellm_model"], messages, params, call_key) if cacheable else None
        if key and (entry := self.cache.get(key)) is not None:
            self.cache_hits += 1
            now = time.time()
            return Completion(
                text=entry["text"], usage=entry["usage"], cost_usd=entry["cost_usd"], latency_s=0.0,
                started=now, finished=now, retries=entry["retries"], cache_hit=True, sent_params=params,
                model_id=entry.get("model_id"),
            )
        response, usage, started, finished, retries = await self._call(model, messages, params)
        cost = _cost(cfg, response, usage)
        await self.budget.add(cost)
        text = response.choices[0].message.content or ""
        model_id = getattr(response, "model", None)
        if key:
            self.cache.put(key, {"text": text, "usage": usage, "cost_usd": cost, "retries": retries,
                                 "model": cfg["litellm_model"], "model_id": model_id, "call": call_key})
        return Completion(
            text=text, usage=usage, cost_usd=cost, latency_s=finished - started, started=started,
            finished=finished, retries=retries, sent_params=params, model_id=model_id,
        )

    async def _call(
        self, key: str, messages: list[dict[str, str]], params: dict[str, Any]
    ) -> tuple[Any, dict[str, int], float, float, int]:
        """The LiteLLM call with our retry policy; returns (response, usage, started, finished, retries)."""
        cfg = self.models[key]
        timeout = float(self.run.get("timeout_s", 120.0))
        secret = os.environ.get(cfg["api_key_env"]) if cfg.get("api_key_env") else None
        kwargs: dict[str, Any] = dict(
            model=cfg["litellm_model"],
            messages=_prompt_cache_markers(messages) if "claude" in cfg["litellm_model"].lower() else messages,
            num_retries=0,  # LiteLLM retries blindly (every class, no wait, needs tenacity): ours below
            timeout=timeout,
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
        max_retries = int(self.run.get("max_retries", 6))
        attempt = 0
        while True:
            self.budget.check()
            async with limiter.slot(est_tokens) as record_tokens:
                self.in_flight += 1
                self.provider_calls += 1
                started = time.time()
                try:
                    response = await asyncio.wait_for(litellm.acompletion(**kwargs), timeout)
                except asyncio.TimeoutError:
                    error: Exception = litellm.Timeout(
                        f"no reply within run.timeout_s={timeout:g}", model=cfg["litellm_model"], llm_provider="bargain"
                    )
                except FATAL as exc:
                    raise FatalBackendError(self._fatal_message(key, exc)) from None
                except TRANSIENT as exc:
                    error = exc
                except Exception as exc:  # noqa: BLE001 - bad request, context window, not found ...: no retry
                    raise ModelCallError(
                        f"model {self._label(key)}: {self._describe(exc, secret)} (1 attempt, not retried)", 1
                    ) from None
                else:
                    finished = time.time()
                    usage = _usage(response)
                    record_tokens(usage["prompt_tokens"] + usage["completion_tokens"])
                    return response, usage, started, finished, attempt
                finally:
                    self.in_flight -= 1
            server = self._servers.get(key)
            if server is not None and not server.alive():
                raise FatalBackendError(
                    f"model {self._label(key)}: its server exited (code {server.proc.returncode}); see {server.log_path}"
                )
            if attempt == max_retries:
                raise ModelCallError(
                    f"model {self._label(key)}: {self._describe(error, secret)} "
                    f"({attempt + 1} attempts; run.max_retries={max_retries})",
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
        """One line about an error, with the key (should a provider echo it) removed."""
        text = str(exc)
        if not text.startswith("litellm."):
            text = f"{type(exc).__name__}: {text}"
        if secret:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= 500 else text[:497] + "..."

    def _fatal_message(self, key: str, exc: BaseException) -> str:
        cfg = self.models[key]
        var = cfg.get("api_key_env")
        secret = os.environ.get(var) if var else None
        where = f"check the key in {var}" if var else f"{key}.api_key_env is null; name the variable holding the key"
        problem = "authentication failed" if isinstance(exc, litellm.AuthenticationError) else "permission denied"
        return f"model {self._label(key)}: {problem}; {where} ({self._describe(exc, secret)})"
