"""Call limits: per-endpoint concurrency, requests and tokens per rolling minute, rate-limit pauses, prompt size."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

WINDOW_S = 60.0
CHARS_PER_TOKEN = 2.5  # below every tokenizer measured on our prompts (SmolLM2: 2.5-3.6, GPT/Claude ~3.5-4)


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """An upper estimate of a prompt's tokens without the model's tokenizer (errs toward too many)."""
    return sum(math.ceil(len(str(m["content"])) / CHARS_PER_TOKEN) + 4 for m in messages)


class Limiter:
    """Admits calls to one endpoint (a LiteLLM model string at one api_base).

    At most ``max_concurrency`` calls run at once; with ``rpm``/``tpm`` set, a call starts only when
    the last minute holds fewer than ``rpm`` starts and fewer than ``tpm`` tokens (a call's tokens are
    estimated at admission and corrected to the provider's count afterwards). :meth:`pause` holds every
    new call back, e.g. for a provider's Retry-After, so one 429 does not turn into a burst of them.
    Must be created and used inside one event loop.
    """

    def __init__(
        self,
        max_concurrency: int,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(max_concurrency)
        self._admission = asyncio.Lock()  # one caller computes waits at a time, so waiters keep FIFO order
        self._window: deque[list[float]] = deque()  # [start time, tokens] of calls in the last minute
        self._resume_at = 0.0

    def pause(self, seconds: float) -> None:
        """Start no new call for ``seconds`` (extends, never shortens, a pause already in force)."""
        self._resume_at = max(self._resume_at, self._clock() + seconds)

    @contextlib.asynccontextmanager
    async def slot(self, est_tokens: int = 0) -> AsyncIterator[Callable[[int], None]]:
        """Hold one concurrency slot for a call; yields a function that records the call's real token count."""
        async with self._slots:
            entry = await self._admit(est_tokens)
            yield lambda tokens: entry.__setitem__(1, tokens)

    async def _admit(self, tokens: int) -> list[float]:
        async with self._admission:
            while True:
                now = self._clock()
                while self._window and self._window[0][0] <= now - WINDOW_S:
                    self._window.popleft()
                wait = self._resume_at - now
                oldest_expires = self._window[0][0] + WINDOW_S - now if self._window else 0.0
                if self.rpm and len(self._window) >= self.rpm:
                    wait = max(wait, oldest_expires)
                # an empty window always admits, so a single call larger than tpm cannot wait forever
                if self.tpm and self._window and sum(e[1] for e in self._window) + tokens > self.tpm:
                    wait = max(wait, oldest_expires)
                if wait <= 0:
                    entry = [now, float(tokens)]
                    if self.rpm or self.tpm:
                        self._window.append(entry)
                    return entry
                await self._sleep(wait)
