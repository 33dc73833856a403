"""A progress bar for long jobs: games done / total, calls in flight, spend so far, ETA.

Silent unless stderr is a terminal, so batch logs (SLURM, submitit, CI) stay clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any


@contextlib.asynccontextmanager
async def progress_bar(total: int, backend: Any, enabled: bool = True) -> AsyncIterator[Any]:
    """Yield a tqdm bar (call ``.update(1)`` per finished game); its postfix follows the backend's counters."""
    from tqdm import tqdm

    # one process writes this bar: a thread lock will do, where tqdm's default multiprocessing lock
    # leaves a semaphore behind whenever a job is killed
    tqdm.set_lock(threading.RLock())
    bar = tqdm(total=total, unit="game", dynamic_ncols=True, disable=not (enabled and sys.stderr.isatty()))

    def refresh() -> None:
        bar.set_postfix_str(f"{backend.in_flight} calls in flight, ${backend.budget.spent_usd:.4f}", refresh=True)

    async def tick() -> None:
        while True:
            refresh()
            await asyncio.sleep(1.0)

    ticker = asyncio.create_task(tick()) if not bar.disable else None
    try:
        yield bar
    finally:
        if ticker:
            ticker.cancel()
            refresh()
        bar.close()
