"""The LLM agent: keeps its own append-only conversation, asks its model, parses, re-asks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from bargain.agents.access import Access, draft_and_select
from bargain.agents.parsing import ParseError
from bargain.backend import Backend
from bargain.backend.limits import estimate_tokens
from bargain.prompts import render


_SLACK = 8  # tokens allowed for the chat template around a message, and for a reply tokenized again in context
_MAX_CHARS_PER_TOKEN = 6  # a provider's prompt count implying more characters a token than this is not used


class ContextLimitExceeded(RuntimeError):
    """The next prompt would not fit the model's context window: the game ends before the call."""

    status = "context_limit"  # the game's record status


class Move(NamedTuple):
    """A parsed move (None if still invalid after the re-asks), the last raw reply and its parse error."""

    value: Any
    raw: str
    error: str | None


class LLMAgent:
    """One seat at the table, played by one model.

    In ``full`` memory the conversation only ever grows (system prompt, then each phase's new public
    events and instruction, then the reply), so provider prompt caches can hit. In ``stateless``
    memory (the original code's behaviour) each call sees only the system prompt and the current
    instruction; the transcript still records everything that was sent.

    Before every call the prompt is checked against the model's context window: in full memory, a
    prompt that extends the previous call's is counted as that call's prompt and reply, as the
    provider counted them, plus an upper estimate of what was added since (see :meth:`_tokens`); any
    other prompt by the estimate alone. ``context_overflow`` ``end`` raises ContextLimitExceeded;
    ``compact`` leaves out the oldest turns after the system prompt until it fits (a call's ``sent``
    ranges show exactly what it saw).
    """

    def __init__(
        self,
        seat: int,
        model: str,
        backend: Backend,
        system_prompt: str,
        *,
        memory: str,
        max_reasks: int,
        call_key: dict[str, Any],
        calls: list[dict[str, Any]],
        reply_caps: dict[str, int | None] | None = None,
        context_overflow: str = "end",
        access: Access | None = None,
    ) -> None:
        self.seat = seat
        self.model = model
        self.backend = backend
        self.memory = memory
        self.max_reasks = max_reasks
        self.reply_caps = reply_caps or {}
        self.context_overflow = context_overflow
        self.access = access  # drafts and a selector (access scaling), or None
        self.call_key = call_key
        self.calls = calls
        self.transcript: list[dict[str, str]] = [{"role": "system", "content": system_prompt}]
        self.pending: list[str] = []
        self.invalid_moves = 0
        self._turn = 0
        self._counted: tuple[int, int] | None = None  # (transcript length, provider-counted tokens of that prefix)

    def observe(self, event: str) -> None:
        """Queue a public event; it is shown with this agent's next instruction."""
        self.pending.append(event)

    async def act(self, phase: str, round_: int, instruction: str, parse: Callable[[str], Any],
                  schema: dict[str, Any] | None = None) -> Move:
        """Ask for a move, re-asking with the parse error up to ``max_reasks`` times.

        ``schema`` is the JSON schema of the move (None for free text): a model with
        ``structured_output`` set is constrained to it."""
        events = self.pending if self.memory == "full" else []
        self.pending = []
        turn_start = len(self.transcript)
        self.transcript.append({"role": "user", "content": "\n\n".join([*events, instruction])})
        cap = self.reply_caps.get(phase)
        for attempt in range(self.max_reasks + 1):
            sent = [[0, len(self.transcript)]] if self.memory == "full" else [[0, 1], [turn_start, len(self.transcript)]]
            sent = self._fit(sent, turn_start, self.backend.prompt_room(self.model, cap), f"{phase} in round {round_}")
            messages = [m for start, end in sent for m in self.transcript[start:end]]
            key = {**self.call_key, "seat": self.seat, "turn": self._turn, "attempt": attempt}

            def record(reply: Any, parsed: Any, error: str | None, access: dict | None = None) -> None:
                entry = {
                    "seat": self.seat,
                    "round": round_,
                    "phase": phase,
                    "attempt": attempt,
                    "sent": sent,
                    "reply": reply.text,
                    "parsed": parsed if not isinstance(parsed, tuple) else list(parsed),
                    "error": error,
                    "usage": reply.usage,
                    "cost_usd": reply.cost_usd,
                    "latency_s": reply.latency_s,
                    "retries": reply.retries,
                    "cache_hit": reply.cache_hit,
                    "params": reply.sent_params,
                    "model_id": reply.model_id,
                    "started": reply.started,
                    "finished": reply.finished,
                }
                self.calls.append({**entry, "access": access} if access else entry)

            if self.access and phase in self.access.phases:
                reply, access = await draft_and_select(self, self.access, messages, key, cap, parse, record, schema)
            else:
                reply, access = await self.backend.complete(self.model, messages, key, reply_cap=cap, schema=schema), None
            self.transcript.append({"role": "assistant", "content": reply.text})
            self._count(sent, reply.usage if access is None else None)
            try:
                parsed, error = parse(reply.text), None
            except ParseError as exc:
                parsed, error = None, str(exc)
            record(reply, parsed, error, access)
            if error is None:
                self._turn += 1
                return Move(parsed, reply.text, None)
            if attempt < self.max_reasks:
                self.transcript.append({"role": "user", "content": render("reask", error=error)})
        self._turn += 1
        self.invalid_moves += 1
        return Move(None, reply.text, error)

    def _count(self, sent: list[list[int]], usage: dict[str, int] | None) -> None:
        """Remember the provider's count of the prompt just sent plus its reply (the transcript's newest
        message), when the prompt was the whole conversation and the count is plausible: at most
        ``_MAX_CHARS_PER_TOKEN`` characters a token (a provider that left cached tokens out of its
        count would otherwise make the next prompt look smaller than it is)."""
        self._counted = None
        if usage is None or sent != [[0, len(self.transcript) - 1]]:
            return
        chars = sum(len(str(m["content"])) for m in self.transcript[:-1])
        if usage["prompt_tokens"] * _MAX_CHARS_PER_TOKEN >= chars > 0:
            self._counted = (len(self.transcript), usage["prompt_tokens"] + usage["completion_tokens"] + _SLACK)

    def _tokens(self, ranges: list[list[int]]) -> int:
        """Tokens of the prompt made of ``ranges``: the character estimate, or, for the whole conversation
        extending the last counted call, that count plus the estimate of the messages added since (each
        with ``_SLACK`` tokens for the chat template around it), whichever is smaller."""
        estimate = estimate_tokens([m for start, end in ranges for m in self.transcript[start:end]])
        if self._counted and len(ranges) == 1 and ranges[0][0] == 0 and ranges[0][1] >= self._counted[0]:
            end, counted = self._counted
            added = self.transcript[end:ranges[0][1]]
            return min(estimate, counted + estimate_tokens(added) + _SLACK * len(added))
        return estimate

    def _fit(self, sent: list[list[int]], turn_start: int, room: int | None, where: str) -> list[list[int]]:
        """The transcript ranges to send so the prompt fits ``room`` tokens, or raise ContextLimitExceeded."""
        if room is None or self._tokens(sent) <= room:
            return sent
        end = sent[-1][1]
        if self.context_overflow == "compact" and self.memory == "full":
            # the rules, then the newest whole turns (each starts with a user message) up to this one
            for start in range(1, turn_start + 1):
                if self.transcript[start]["role"] == "user" and self._tokens([[0, 1], [start, end]]) <= room:
                    return [[0, 1], [start, end]]
        raise ContextLimitExceeded(
            f"seat {self.seat} ({self.model}), {where}: the prompt (~{self._tokens(sent)} tokens counted) does not fit the "
            f"{room} tokens its context window leaves beside the reply limit (env.context_overflow={self.context_overflow})"
        )
