"""Spend accounting: the job's running total, a per-job cap, and a spend ledger shared by a sweep.

The ledger is one JSON file, ``<store>/.ledger/<run.ledger>.json`` = ``{"cost_usd", "calls", "updated_at"}``.
Every job that writes into the store adds each paid call to it with a read-modify-write under an
exclusive ``flock`` on ``<name>.json.lock``, so it is the store's (or, with its own ledger name, a
sweep's) running total across processes. ``run.sweep_budget_usd`` caps that total: once a job sees
it reached, that job starts no more calls. Another job's spend becomes visible at this job's next paid
call, so a sweep overspends by at most the calls in flight in all its jobs. Caching hits cost nothing
and are never added. LiteLLM's global ``max_budget`` is not used: it is process-wide and raises
mid-game.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import json
from pathlib import Path

from bargain.store import atomic_write_json


class BudgetExceeded(RuntimeError):
    """A budget cap is reached: the call was not made. The runner records the game with this status."""

    status = "budget_exceeded"


class Ledger:
    """A spend total shared by processes through a locked JSON file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self._lock = self.path.with_name(self.path.name + ".lock")

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"cost_usd": 0.0, "calls": 0}

    def total(self) -> float:
        return float(self._read()["cost_usd"])

    def add(self, cost_usd: float) -> float:
        """Add one call's cost; returns the new total."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                state["cost_usd"] = float(state["cost_usd"]) + cost_usd
                state["calls"] = int(state["calls"]) + 1
                state["updated_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                atomic_write_json(self.path, state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return state["cost_usd"]


class Budget:
    """The job's spend so far and the caps it must stay under."""

    def __init__(self, job_usd: float | None = None, ledger: Ledger | None = None, sweep_usd: float | None = None) -> None:
        self.job_usd = job_usd
        self.sweep_usd = sweep_usd
        self.ledger = ledger
        self.spent_usd = 0.0
        self.paid_calls = 0
        self.ledger_usd = ledger.total() if ledger else 0.0

    @property
    def exceeded(self) -> str | None:
        """Why no new call may start, or None."""
        if self.job_usd is not None and self.spent_usd >= self.job_usd:
            return f"run.budget_usd={self.job_usd:g} reached: this job spent ${self.spent_usd:.4f}"
        if self.sweep_usd is not None and self.ledger_usd >= self.sweep_usd:
            return (
                f"run.sweep_budget_usd={self.sweep_usd:g} reached: the ledger {self.ledger.path} "
                f"holds ${self.ledger_usd:.4f}"
            )
        return None

    def check(self) -> None:
        """Raise BudgetExceeded if no new call may start."""
        reason = self.exceeded
        if reason:
            raise BudgetExceeded(reason)

    async def add(self, cost_usd: float | None) -> None:
        """Count one provider call's cost (None = unknown price, counted as 0)."""
        if not cost_usd:
            return
        self.spent_usd += cost_usd
        self.paid_calls += 1
        if self.ledger:
            self.ledger_usd = await asyncio.to_thread(self.ledger.add, cost_usd)
