"""The LLM agent: keeps its own append-only conversation, asks its model, parses, re-asks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from bargain.agents.parsing import ParseError
from bargain.backend import Backend
from bargain.prompts import render


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
    ) -> None:
        self.seat = seat
        self.model = model
        self.backend = backend
        self.memory = memory
        self.max_reasks = max_reasks
        self.call_key = call_key
        self.calls = calls
        self.transcript: list[dict[str, str]] = [{"role": "system", "content": system_prompt}]
        self.pending: list[str] = []
        self.invalid_moves = 0
        self._turn = 0

    def observe(self, event: str) -> None:
        """Queue a public event; it is shown with this agent's next instruction."""
        self.pending.append(event)

    async def act(self, phase: str, round_: int, instruction: str, parse: Callable[[str], Any]) -> Move:
        """Ask for a move, re-asking with the parse error up to ``max_reasks`` times."""
        events = self.pending if self.memory == "full" else []
        self.pending = []
        turn_start = len(self.transcript)
        self.transcript.append({"role": "user", "content": "\n\n".join([*events, instruction])})
        for attempt in range(self.max_reasks + 1):
            sent = [[0, len(self.transcript)]] if self.memory == "full" else [[0, 1], [turn_start, len(self.transcript)]]
            messages = [m for start, end in sent for m in self.transcript[start:end]]
            key = {**self.call_key, "seat": self.seat, "turn": self._turn, "attempt": attempt}
            reply = await self.backend.complete(self.model, messages, key)
            self.transcript.append({"role": "assistant", "content": reply.text})
            try:
                parsed, error = parse(reply.text), None
            except ParseError as exc:
                parsed, error = None, str(exc)
            self.calls.append(
                {
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
                    "started": reply.started,
                    "finished": reply.finished,
                }
            )
            if error is None:
                self._turn += 1
                return Move(parsed, reply.text, None)
            if attempt < self.max_reasks:
                self.transcript.append({"role": "user", "content": render("reask", error=error)})
        self._turn += 1
        self.invalid_moves += 1
        return Move(None, reply.text, error)
