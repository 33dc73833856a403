"""Spend accounting: caps that hold across re-runs and requeues, kept in a journal that survives kills.

The spend ledger ``<store>/.ledger/<run.ledger>.jsonl`` is a journal of JSON lines, appended under an
exclusive ``flock`` by every job that writes into the store:

- ``{"t": "send", "id", "session", "exp", "max_usd", "cache"}``: written *before* a paid call goes out,
  so the money is on record before it is at risk. ``max_usd`` is the most the call can cost (prompt
  characters and ``max_tokens`` at the model's prices); ``cache`` names its replay-cache entry.
- ``{"t": "done", "id", "exp", "usd", "how"}``: the call is over. ``reply``: its cost from the usage the
  provider reported; ``error``: the provider answered with an error, nothing billed; ``cancelled``: a
  clean stop cut it off, counted at ``max_usd`` because the provider may still bill it; ``cache`` and
  ``max``: reconciled after a kill (below).
- ``{"t": "opening", "exp", "usd", "calls"}``: totals carried over from a rebuilt or an older ledger.

``run.budget_usd`` caps a job, that is its experiment over every run and requeue, against that
experiment's spend in the ledger; ``run.sweep_budget_usd`` caps the ledger's total. Both are checked
under the lock when a call is about to be sent, so a re-run continues from what was spent and a call
queued behind a rate limiter never goes out past a cap. What can pass a cap: the calls already in
flight when it was reached.

**Kills.** Each job holds an ``flock`` on its own session file while it runs. A ``send`` without a
``done`` whose session file is no longer locked belongs to a job that died; the next job to open the
ledger reconciles it: at the reply's cost if the replay cache holds the reply (the next run reuses
it: never paid twice), else at ``max_usd`` (the provider may have answered after the kill). So no
paid call is missing from the ledger, and the calls paid twice are at most the calls in flight at
the kill.

A damaged journal (a line that is not a ledger event) is moved to ``.ledger/quarantine/`` and rebuilt
from the records' call costs, with a warning; calls of games that have no record are then not in it.
LiteLLM's global ``max_budget`` is not used: it is process-wide and raises mid-game.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import itertools
import json
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bargain.store import DamagedRecord, append_line, atomic_write_text, canonical_json, load_record, write_error

log = logging.getLogger(__name__)


class BudgetExceeded(RuntimeError):
    """A budget cap is reached: the call was not made. The runner records the game with this status."""

    status = "budget_exceeded"


class LedgerDamaged(ValueError):
    """A journal line that is not a ledger event."""


class Ledger:
    """A spend journal shared by the jobs writing into one store (see the module docstring)."""

    def __init__(
        self, path: str | Path, cached_cost: Callable[[str, str | None], float | None] = lambda key, exp: None
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self.store = self.path.parent.parent  # <store>/.ledger/<name>.jsonl
        self._cached_cost = cached_cost
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._sessions = self.path.with_name(self.path.stem + ".sessions")
        self.session = uuid.uuid4().hex[:12]
        self._ids = itertools.count()
        self._session_file: Any = None
        self._inode: int | None = None
        self._offset = 0
        self.spent: defaultdict[str | None, float] = defaultdict(float)  # per experiment
        self.calls = 0
        self.open_sends: dict[str, dict[str, Any]] = {}
        self.reconciled = 0  # open sends of dead jobs this session settled

    @property
    def total(self) -> float:
        return sum(self.spent.values())

    def open(self) -> None:
        """Take a session, read the journal (rebuilding it if damaged) and reconcile dead jobs' calls."""
        self._sessions.mkdir(parents=True, exist_ok=True)
        self._session_file = open(self._sessions / f"{self.session}.lock", "a")  # noqa: SIM115 - held for the session
        fcntl.flock(self._session_file, fcntl.LOCK_EX)
        with self._locked():
            try:
                self._migrate()
                self._refresh()
            except LedgerDamaged as exc:
                self._rebuild(str(exc))
            self._reconcile()

    def close(self) -> None:
        """End the session: its lock file goes, so nothing it sent is taken for a dead job's call."""
        if self._session_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._session_file.name)
            self._session_file.close()
            self._session_file = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _refresh(self) -> None:
        """Apply the lines other jobs appended since the last read (all of them the first time)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        if stat.st_ino != self._inode:  # first read, or another job rebuilt the journal: start over
            self._inode, self._offset, self.calls = stat.st_ino, 0, 0
            self.spent.clear()
            self.open_sends.clear()
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except (IsADirectoryError, PermissionError) as exc:
            raise LedgerDamaged(f"unreadable: {exc.strerror}") from None
        end = data.rfind(b"\n") + 1
        if end < len(data):
            if not data[end:].startswith(b'{"'):
                raise LedgerDamaged(f"{len(data) - end} byte(s) at the end that are not a ledger event")
            # a line cut short by a failed write (disk full); nobody else writes under the lock, so drop it
            os.truncate(self.path, self._offset + end)
        for number, line in enumerate(data[:end].splitlines()):
            if line.strip():
                self._apply(line, number)
        self._offset += end

    def _apply(self, line: bytes, number: int) -> None:
        try:
            event = json.loads(line)
            kind = event["t"]
            if kind == "send":
                self.open_sends[str(event["id"])] = event
            elif kind in ("done", "opening"):
                usd = float(event["usd"])
                self.spent[event.get("exp")] += usd
                self.calls += int(event.get("calls", 1))
                self.open_sends.pop(str(event.get("id")), None)
            else:
                raise KeyError(kind)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise LedgerDamaged(f"line {number + 1} after byte {self._offset} is not a ledger event ({exc!r})") from None

    def _append(self, event: dict[str, Any]) -> None:
        try:
            append_line(self.path, event)
        except OSError as exc:  # disk full, no permission: no call may go out unrecorded
            raise write_error(self.path, exc) from None
        stat = self.path.stat()
        self._offset, self._inode = stat.st_size, stat.st_ino  # our own line, already applied by the caller

    def _settle(self, send: dict[str, Any], usd: float, how: str) -> None:
        self._append({"t": "done", "id": send["id"], "exp": send.get("exp"), "usd": usd, "how": how})
        self.spent[send.get("exp")] += usd
        self.calls += 1
        self.open_sends.pop(send["id"], None)

    def send(self, exp: str | None, max_usd: float | None, cache: str | None, check: Callable[[], str | None]) -> str:
        """Journal a call about to be sent and return its id; raise BudgetExceeded if ``check`` (run
        under the lock, on current totals) says no call may start."""
        with self._locked():
            self._refresh()
            reason = check()
            if reason:
                raise BudgetExceeded(reason)
            event = {"t": "send", "id": f"{self.session}-{next(self._ids)}", "session": self.session, "exp": exp,
                     "max_usd": max_usd, "cache": cache}
            self._append(event)
            self.open_sends[event["id"]] = event
        return event["id"]

    def done(self, call_id: str, usd: float, how: str) -> None:
        with self._locked():
            self._refresh()
            send = self.open_sends.get(call_id, {"id": call_id, "exp": None})
            self._settle(send, usd, how)

    def _alive(self, session: str) -> bool:
        path = self._sessions / f"{session}.lock"
        try:
            with open(path, "r+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except FileNotFoundError:
            return False
        except BlockingIOError:
            return True
        with contextlib.suppress(OSError):
            os.unlink(path)
        return False

    def _reconcile(self) -> None:
        dead: dict[str, bool] = {}
        for send in list(self.open_sends.values()):
            session = str(send.get("session"))
            if session == self.session or dead.setdefault(session, not self._alive(session)) is False:
                continue
            cached = self._cached_cost(send["cache"], send.get("exp")) if send.get("cache") else None
            how = "cache" if cached is not None else "max"
            self._settle(send, cached if cached is not None else float(send.get("max_usd") or 0.0), how)
            self.reconciled += 1
        if self.reconciled:
            log.warning("spend ledger %s: %d call(s) of stopped jobs had no result; counted them (from the replay "
                        "cache where it held the reply, else at their maximum cost)", self.path, self.reconciled)

    def _migrate(self) -> None:
        """Carry the total of an older ``<name>.json`` ledger (``{"cost_usd", "calls"}``) into a new journal."""
        old = self.path.with_suffix(".json")
        if self.path.exists() or not old.exists():
            return
        try:
            state = json.loads(old.read_text(encoding="utf-8"))
            opening = {"t": "opening", "exp": None, "usd": float(state["cost_usd"]), "calls": int(state["calls"])}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LedgerDamaged(f"the older ledger {old} is unreadable ({exc!r})") from None
        append_line(self.path, opening)

    def _rebuild(self, reason: str) -> None:
        """Move the damaged journal aside and start a new one from the records' call costs."""
        folder = self.path.parent / "quarantine"
        folder.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        moved = folder / f"{self.path.name}.{stamp}"
        if self.path.exists():
            os.rename(self.path, moved)
            (folder / f"{moved.name}.reason").write_text(reason + "\n", encoding="utf-8")
        spent: defaultdict[str, float] = defaultdict(float)
        calls: defaultdict[str, int] = defaultdict(int)
        for path in sorted(self.store.glob("*/games/*.json")):
            with contextlib.suppress(OSError, DamagedRecord):
                record = load_record(path)
                spent[record["experiment_id"]] += float(record["totals"]["cost_usd"])
                calls[record["experiment_id"]] += int(record["totals"]["calls"])
        lines = [canonical_json({"t": "opening", "exp": exp, "usd": usd, "calls": calls[exp]}) for exp, usd in spent.items()]
        atomic_write_text(self.path, "".join(line + "\n" for line in lines))
        self._inode = None
        self._refresh()
        log.warning("spend ledger %s was damaged (%s): moved to %s and rebuilt from the records' call costs "
                    "($%.4f over %d experiment(s)); calls of games that have no record are not in it",
                    self.path, reason, moved, self.total, len(spent))


class Budget:
    """The caps a job must stay under, checked against the ledger when a call is about to be sent.

    Without a ledger (unit tests, a backend outside a store) the totals live in this object only.
    """

    def __init__(self, job_usd: float | None = None, ledger: Ledger | None = None, sweep_usd: float | None = None,
                 experiment: str | None = None) -> None:
        self.job_usd = job_usd
        self.sweep_usd = sweep_usd
        self.ledger = ledger
        self.experiment = experiment
        self.spent_usd = 0.0  # by this job (this process), for its summary
        self.paid_calls = 0
        self._local: defaultdict[str | None, float] = defaultdict(float)

    def _spent(self) -> tuple[float, float]:
        """(this experiment's spend, everything's spend) as the ledger knows it now."""
        spent = self.ledger.spent if self.ledger else self._local
        return spent[self.experiment], sum(spent.values())

    @property
    def exceeded(self) -> str | None:
        """Why no new call may start, or None."""
        job, total = self._spent()
        where = f"in the ledger {self.ledger.path}" if self.ledger else "in this job"
        if self.job_usd is not None and job >= self.job_usd:
            return f"run.budget_usd={self.job_usd:g} reached: this experiment has spent ${job:.4f} {where}"
        if self.sweep_usd is not None and total >= self.sweep_usd:
            return f"run.sweep_budget_usd={self.sweep_usd:g} reached: ${total:.4f} spent {where}"
        return None

    def check(self) -> None:
        """Raise BudgetExceeded if no new call may start."""
        reason = self.exceeded
        if reason:
            raise BudgetExceeded(reason)

    def start(self, max_usd: float | None, cache: str | None) -> str | None:
        """A paid call is about to be sent: check the caps now and put the call on record; returns its id."""
        if self.ledger is None:
            self.check()
            return None
        return self.ledger.send(self.experiment, max_usd, cache, lambda: self.exceeded)

    def finish(self, call: str | None, usd: float | None, how: str) -> None:
        """A call is over: count what it cost (None = unknown price, counted as 0)."""
        usd = usd or 0.0
        if usd:
            self.spent_usd += usd
            self.paid_calls += 1
        if self.ledger is None:
            self._local[self.experiment] += usd
        elif call is not None:
            self.ledger.done(call, usd, how)
