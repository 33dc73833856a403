"""The exact replay cache: append-only logs, keyed by everything that determines the reply.

The key hashes the LiteLLM model string, the messages, the sampling parameters actually sent and the
call's identity (experiment, game, seat, turn, attempt). Including the call identity means two games
that happen to send the same prompt at temperature > 0 keep their own answers, while re-running a
game (after a crash, or into a fresh store) gets every reply it already paid for back for free.
Offline ``sim/`` players are not cached (see :meth:`bargain.backend.core.Backend.complete`).

Layout: ``<root>/log/<experiment>/<host>-<pid>-<random>.log``, one log per process that wrote entries
of that experiment, one line per entry: ``<key> <crc32 of the JSON> <entry as compact JSON>``. Each log
has a single writer and nothing is locked, so jobs may share a cache on one machine or on a cluster
file system (NFS, Lustre), where SQLite's locks and its WAL's shared memory are not safe. A line cut
short by a kill, or damaged later, fails its checksum and is skipped: never served, the call is made
again. Readers index an experiment's logs on its first lookup and re-read what the logs gained on a
miss, so an entry another job wrote is found once it reached the file.

``put`` appends the entry's line with one ``write`` (into the kernel's page cache, microseconds) and a
thread fsyncs the logs in batches, so no fsync blocks the event loop. An entry whose ``put`` returned
survives a SIGKILL (a kill mid-write leaves a torn last line, skipped); a power cut loses at most the
entries not yet fsynced. The older layout (``<root>/<key[:2]>/<key>.json``, a file per call) is still
read on a miss; ``python -m bargain.migrate`` moves it into the logs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bargain.store import FILE_MODE, StoreError, canonical_json, write_error

LINE = re.compile(rb"^([0-9a-f]{64}) ([0-9a-f]{8}) ([^\n]*)\n", re.MULTILINE)
KEY = re.compile(r"[0-9a-f]{64}")
NO_EXPERIMENT = "_"  # the folder of entries whose call names no experiment


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any], call_key: dict[str, Any]) -> str:
    """The sha256 hex digest that names one call's entry."""
    request = {"model": model, "messages": messages, "params": params, "call": call_key}
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


def valid(entry: Any) -> bool:
    """Whether a parsed entry can be served: a reply text and its usage."""
    return isinstance(entry, dict) and isinstance(entry.get("text"), str) and isinstance(entry.get("usage"), dict)


@dataclass
class _Logs:
    """What this process knows of one experiment's logs: where each entry is, how far each log was read."""

    index: dict[str, tuple[Path, int, int, int]] = field(default_factory=dict)  # key -> (log, offset, length, crc)
    read: dict[Path, int] = field(default_factory=dict)  # log -> bytes indexed (up to its last whole line)


class ReplayCache:
    """Successful replies, one append-only log per writing process and experiment."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self._lock = threading.Lock()  # the event loop and the fsync thread share what follows
        self._logs: dict[str, _Logs] = {}
        self._own: dict[str, tuple[int, Path, int]] = {}  # experiment folder -> (fd, path, size) of this process's log
        self._unsynced: set[int] = set()  # logs written since their last fsync
        self._syncer: threading.Thread | None = None
        self._error: StoreError | None = None

    def get(self, key: str, experiment: str | None = None) -> dict[str, Any] | None:
        """The entry, or None when there is none or it is damaged (the call is then made again)."""
        with self._lock:
            logs = self._logs.setdefault(_folder(experiment), _Logs())
        where = logs.index.get(key)
        if where is None:  # the first lookup, or an entry another process wrote since the last read
            self._read_new(experiment, logs)
            where = logs.index.get(key)
        entry = self._load(where) if where is not None else self._legacy(key)
        return entry if valid(entry) else None

    def put(self, key: str, entry: dict[str, Any], experiment: str | None = None) -> None:
        """Store a reply under a :func:`cache_key`: one append to this process's log, fsynced later by a thread.

        Raises StoreError (the job stops) if the log cannot be written, or an earlier fsync failed.
        """
        if not KEY.fullmatch(key):
            raise ValueError(f"not a cache key: {key!r}")
        if self._error is not None:
            raise self._error
        payload = json.dumps(entry, separators=(",", ":"), sort_keys=True, default=str).encode()
        line = b"%s %08x %s\n" % (key.encode(), zlib.crc32(payload), payload)
        folder = _folder(experiment)
        with self._lock:
            try:
                fd, path, size = self._own_log(folder)
                view = memoryview(line)
                while view:  # one write but for a signal or a full disk: once in the kernel, a SIGKILL cannot lose it
                    view = view[os.write(fd, view):]
            except OSError as exc:  # the log may end in a torn line now: it takes no more entries
                self._error = write_error(self.root / "log" / folder, exc, "run.cache_dir")
                raise self._error from None
            self._own[folder] = (fd, path, size + len(line))
            logs = self._logs.setdefault(folder, _Logs())
            logs.index.setdefault(key, (path, size + 74, len(payload), zlib.crc32(payload)))  # after "<key> <crc> "
            logs.read[path] = size + len(line)
            self._unsynced.add(fd)
            if self._syncer is None:
                self._syncer = threading.Thread(target=self._sync, name="replay-cache-fsync")
                self._syncer.start()  # not a daemon: the interpreter waits for the last fsync

    def flush(self) -> None:
        """Wait until every entry put so far is fsynced; raises StoreError if one could not be."""
        while (syncer := self._syncer) is not None:
            syncer.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Flush and close this process's logs."""
        try:
            self.flush()
        finally:
            for fd, _, _ in self._own.values():
                os.close(fd)
            self._own.clear()

    def migrate_legacy(self, batch: int = 10_000) -> Counter[str]:
        """Move the entries of the older file-per-call layout into the logs; returns counts by outcome.

        A file is removed only once its entry is fsynced in a log, so a kill loses none; damaged files are
        left where they are (they were never served).
        """
        counts: Counter[str] = Counter()
        moved: list[Path] = []
        for path in sorted(self.root.glob("[0-9a-f][0-9a-f]/*.json")):
            try:
                entry = json.loads(path.read_bytes())
            except (OSError, ValueError):
                entry = None
            if not (valid(entry) and KEY.fullmatch(path.stem)):
                counts["damaged"] += 1
                continue
            call = entry.get("call")
            self.put(path.stem, entry, call.get("experiment") if isinstance(call, dict) else None)
            moved.append(path)
            if len(moved) == batch:
                counts["migrated"] += self._unlink_written(moved)
        counts["migrated"] += self._unlink_written(moved)
        for folder in self.root.glob("[0-9a-f][0-9a-f]"):
            with contextlib.suppress(OSError):  # not empty: damaged files stay
                folder.rmdir()
        return counts

    def _unlink_written(self, paths: list[Path]) -> int:
        self.flush()
        for path in paths:
            path.unlink()
        n = len(paths)
        paths.clear()
        return n

    def _sync(self) -> None:
        """The fsync thread: fsync the logs written since the last round, until none was."""
        while True:
            with self._lock:
                fds, self._unsynced = self._unsynced, set()
                if not fds:
                    self._syncer = None
                    return
            for fd in fds:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    self._error = write_error(self.root, exc, "run.cache_dir")

    def _own_log(self, folder: str) -> tuple[int, Path, int]:
        if folder not in self._own:
            directory = self.root / "log" / folder
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, FILE_MODE)
            self._own[folder] = (fd, path, 0)
        return self._own[folder]

    def _read_new(self, experiment: str | None, logs: _Logs) -> None:
        """Index the whole lines the experiment's logs gained since they were last read."""
        directory = self.root / "log" / _folder(experiment)
        try:
            names = os.listdir(directory)
        except OSError:  # no log yet
            return
        for name in names:
            path = directory / name
            with self._lock:
                start = logs.read.get(path, 0)
            try:
                with open(path, "rb") as fh:
                    fh.seek(start)
                    data = fh.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
            found = []
            for line in LINE.finditer(data, 0, end):
                key, crc, payload = line.groups()
                if zlib.crc32(payload) == int(crc, 16):  # a torn or damaged line is never indexed
                    found.append((key.decode(), (path, start + line.start(3), len(payload), int(crc, 16))))
            with self._lock:
                for key, where in found:
                    logs.index.setdefault(key, where)
                logs.read[path] = max(logs.read.get(path, 0), start + end)

    @staticmethod
    def _load(where: tuple[Path, int, int, int]) -> Any:
        path, offset, length, crc = where
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                payload = os.pread(fd, length, offset)
            finally:
                os.close(fd)
            return json.loads(payload) if zlib.crc32(payload) == crc else None
        except (OSError, ValueError):
            return None

    def _legacy(self, key: str) -> Any:
        """An entry of the older file-per-call layout."""
        try:
            return json.loads((self.root / key[:2] / f"{key}.json").read_bytes())
        except (OSError, ValueError):  # missing, a directory, not JSON ...
            return None


def _folder(experiment: str | None) -> str:
    return experiment or NO_EXPERIMENT
