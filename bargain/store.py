"""The results store: one folder per experiment identity, one atomically written record per game.

Layout: ``<store>/<experiment_id>/experiment.json``, ``<store>/<experiment_id>/games/<index>.json``,
``<store>/<experiment_id>/runs.jsonl`` (one line per run: how many games it asked for) and
``<store>/<experiment_id>/quarantine/`` (damaged records moved aside, each with a ``.reason`` file).
The experiment id hashes only what changes outcomes, so re-running a command finds its own records
and plays only the games that are missing or did not complete. Files get the mode a plain ``open``
would give (``0o666`` minus the umask), so a group can share a store.

Record format (``schema_version`` 2): gzip-compressed compact JSON (``zcat 00000.json | jq``) in which each
model reply is stored once, in its seat's transcript: a call refers to it by position (the end of its
``sent`` ranges) instead of repeating it, and a reply that parsed to itself (discussion, thinking) is
marked ``parsed_is_reply``. :func:`load_record` reads every version and returns the same dict for
each: version 1 (indented JSON, written before) loads exactly as a migrated copy of it does.
:func:`migrate_records` (``python -m bargain.migrate <store>``) rewrites a store's records in the current
format, game by game under the game's claim, so it may run beside jobs writing the store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import gzip
import hashlib
import json
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bargain import schema

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
IDENTITY_VERSION = 1  # in every experiment identity: a new record encoding must not change experiment ids
COMPLETE = "complete"
GZIP_MAGIC = b"\x1f\x8b"
GAME_FILE = re.compile(r"\d{5,}\.json")  # not the temp files of writes in flight


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # read once at import, while only one thread runs


class StoreError(RuntimeError):
    """A store, cache or ledger path cannot be written: the job stops (one line: the path, the cause, the fix)."""


class DamagedRecord(ValueError):
    """A record file that cannot be trusted; ``str()`` is the reason (one line)."""

    def __init__(self, reason: str, seen: os.stat_result | None = None) -> None:
        super().__init__(reason)
        self.seen = seen  # the file as it was read, so a replaced file is never quarantined by mistake


class ForeignRecord(DamagedRecord):
    """A record to leave alone, neither quarantined nor replayed: a newer schema version, or a file this
    process may not read (another user's, say)."""


class NewerRecord(ForeignRecord):
    """A record of a schema version newer than this code reads."""


def write_error(path: Path, exc: OSError, key: str = "store") -> StoreError:
    """The one-line error for a failed write, with the fix for the usual causes."""
    fixes = {
        errno.ENOSPC: f"the disk is full: free space or point {key} at another disk",
        errno.EDQUOT: f"the disk quota is used up: free space or point {key} elsewhere",
        errno.EACCES: f"no permission: make it writable or point {key} at a writable directory",
        errno.EPERM: f"no permission: make it writable or point {key} at a writable directory",
        errno.EROFS: f"the file system is read-only: point {key} at a writable directory",
        errno.ENOTDIR: f"a part of the path is a file, not a directory: point {key} at a directory",
    }
    fix = fixes.get(exc.errno or 0, f"check {key}")
    return StoreError(f"cannot write {exc.filename or path}: {exc.strerror or exc}; {fix}")


def ensure_writable(directory: Path, key: str) -> None:
    """Create ``directory`` and prove a file can be written in it; raise StoreError naming ``key`` if not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise write_error(directory, exc, key) from None


def append_line(path: Path, obj: Any) -> None:
    """Append one JSON line (a single write, so concurrent appenders never interleave within a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.write(fd, (canonical_json(obj) + "\n").encode())
    finally:
        os.close(fd)


def load_record(path: Path) -> dict[str, Any]:
    """Read and validate one game record, of any format; returns it as readers use it (see :func:`unpack_record`).

    Raises FileNotFoundError (no record), ForeignRecord (a newer version, or no permission to read it)
    or DamagedRecord: unreadable (a directory, a symlink loop or a dangling one), not JSON, or not a
    valid record of the experiment and game its path names.
    """
    seen = os.lstat(path)  # FileNotFoundError: no record
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise ForeignRecord(f"unreadable: {exc.strerror}; fix its permissions", seen) from None
    except OSError as exc:
        raise DamagedRecord(f"unreadable: {exc.strerror or exc}", seen) from None
    try:
        record = decode(data)
    except ValueError as exc:
        raise DamagedRecord(str(exc), seen) from None
    if (version := schema.unsupported(record)) is not None:
        raise NewerRecord(f"schema_version={version} is newer than this code reads", seen)
    reason = schema.problem(record)
    if reason is None and path.name != f"{record['game_index']:05d}.json":
        reason = f"game_index={record['game_index']} does not match the file name"
    if reason is None and path.parent.parent.name != record["experiment_id"]:
        reason = f"experiment_id={record['experiment_id']} does not match its folder {path.parent.parent.name}"
    if reason:
        raise DamagedRecord(reason, seen)
    return unpack_record(record)


def decode(data: bytes) -> Any:
    """The JSON value in a record file's bytes, gzip-compressed (format 2) or not (format 1); ValueError if none."""
    try:
        return json.loads(gzip.decompress(data) if data.startswith(GZIP_MAGIC) else data)
    except (OSError, EOFError) as exc:  # gzip: cut short or corrupt
        raise ValueError(f"not gzip-compressed JSON ({exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None


def pack_record(record: dict[str, Any]) -> bytes:
    """The bytes stored for a record: each reply only in its transcript, compact JSON, gzip-compressed.

    Lossless: :func:`unpack_record` of the result equals the record (after a JSON round trip, as before).
    """
    calls = [_pack_call(call, record["transcripts"]) for call in record["calls"]]
    text = json.dumps({**record, "schema_version": SCHEMA_VERSION, "calls": calls}, separators=(",", ":"), default=str)
    return gzip.compress(text.encode(), mtime=0)


def _pack_call(call: dict[str, Any], transcripts: list[list[dict[str, str]]]) -> dict[str, Any]:
    """The call without its reply where the transcript holds exactly that reply at the call's position."""
    reply = {"role": "assistant", "content": call.get("reply")}
    if "parsed_is_reply" in call or schema.reply_message(call, transcripts) != reply:
        return call
    packed = {k: v for k, v in call.items() if k != "reply"}
    if type(call.get("parsed")) is str and call["parsed"] == call["reply"]:
        del packed["parsed"]
        packed["parsed_is_reply"] = True
    return packed


def unpack_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as readers use it (version-independent), from a valid stored record of any version."""
    if record["schema_version"] == 1:
        return {**record, "schema_version": SCHEMA_VERSION}
    return {**record, "calls": [call if "reply" in call else _unpack_call(call, record["transcripts"])
                                for call in record["calls"]]}


def _unpack_call(packed: dict[str, Any], transcripts: list[list[dict[str, str]]]) -> dict[str, Any]:
    call = {k: v for k, v in packed.items() if k != "parsed_is_reply"}
    call["reply"] = schema.reply_message(packed, transcripts)["content"]
    if packed.get("parsed_is_reply"):
        call["parsed"] = call["reply"]
    return call


def quarantine(path: Path, damage: DamagedRecord) -> Path | None:
    """Move a damaged record into ``<experiment>/quarantine/`` beside a ``.reason`` file.

    Returns the new path, or None if it was not moved: unsupported, replaced by a writer since it was
    read, or the store is read-only.
    """
    if isinstance(damage, ForeignRecord):
        return None
    try:
        now = os.lstat(path)
        if damage.seen is not None and (now.st_ino, now.st_mtime_ns) != (damage.seen.st_ino, damage.seen.st_mtime_ns):
            return None
        folder = path.parent.parent / "quarantine"
        folder.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        dest = folder / f"{path.name}.{stamp}"
        os.rename(path, dest)
        (folder / f"{dest.name}.reason").write_text(f"{damage}\n", encoding="utf-8")
    except OSError:
        return None
    return dest


# user:password@ (or token@) in a URL: never written anywhere
URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    return URL_CREDENTIALS.sub(r"\1***@", text)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def experiment_id(identity: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old file or the whole new one, never a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600 files: readers in the user's group could not read them
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (see :func:`atomic_write_text`)."""
    atomic_write_text(path, json.dumps(obj, indent=1, default=str))


class ExperimentStore:
    """The records of one experiment."""

    def __init__(self, root: str | os.PathLike, experiment: str) -> None:
        self.dir = Path(root).expanduser().resolve() / experiment
        self.games = self.dir / "games"

    def game_path(self, index: int) -> Path:
        return self.games / f"{index:05d}.json"

    def write_experiment(self, identity: dict[str, Any], config: dict[str, Any]) -> None:
        path = self.dir / "experiment.json"
        try:
            atomic_write_json(
                path, {"schema_version": SCHEMA_VERSION, "experiment_id": self.dir.name, "identity": identity, "config": config},
            )
        except OSError as exc:
            raise write_error(path, exc) from None

    def status(self, index: int) -> str | None:
        """The status of a game's valid record, or None (missing or damaged); only reads, never moves a file."""
        try:
            return load_record(self.game_path(index))["status"]
        except (FileNotFoundError, DamagedRecord):
            return None

    def read_game(self, index: int) -> dict[str, Any] | None:
        """The game's record if it is valid, else None: missing, or damaged (then quarantined, to be replayed).

        Raises ForeignRecord for a record of a newer schema version, which must not be replayed.
        """
        path = self.game_path(index)
        try:
            return load_record(path)
        except FileNotFoundError:
            return None
        except ForeignRecord:
            raise
        except DamagedRecord as damage:
            moved = quarantine(path, damage)
            log.warning("damaged record %s (%s): %s; the game will be played again", path, damage,
                        f"moved to {moved}" if moved else "could not move it aside")
            return None

    def write_game(self, record: dict[str, Any]) -> Path:
        """Write a game record in the current format (see :func:`pack_record`)."""
        path = self.write_file(record["game_index"], pack_record(record))
        from analysis.journal import on_write  # the analysis index; imported late: only writers need it

        on_write(path)
        return path

    def write_file(self, index: int, data: bytes) -> Path:
        """Write a game's file atomically: its record, or another per-game document (a judge's judgements)."""
        path = self.game_path(index)
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise write_error(path, exc) from None
        return path

    def log_run(self, n_games: int, total_games: int) -> None:
        """Note what this run asks for, so status never forgets games an earlier, larger run asked for."""
        try:
            append_line(self.dir / "runs.jsonl", {
                "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "n_games": n_games, "total_games": total_games,
            })
        except OSError as exc:
            raise write_error(self.dir / "runs.jsonl", exc) from None

    @contextlib.contextmanager
    def claim(self, index: int) -> Iterator[bool]:
        """Hold an exclusive lock on a game so two jobs never play it at once.

        The lock is an flock, so the operating system releases it when a job dies or is cancelled.
        Yields False if another live job holds it.
        """
        try:
            self.games.mkdir(parents=True, exist_ok=True)
            fh = open(self.games / f".{index:05d}.lock", "a")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise write_error(self.games, exc) from None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def migrate_records(root: str | os.PathLike) -> Counter[str]:
    """Rewrite every record below ``root`` that is not stored in the current format; returns counts by outcome.

    Each game is migrated under its claim, so a job playing it is never overwritten (the game counts as
    ``busy``), and only after the new bytes were read back to the very same record (else ``kept``).
    Damaged and newer records are left where they are (the next run quarantines and replays damaged ones).
    """
    counts: Counter[str] = Counter()
    for games in sorted(p for p in Path(root).rglob("games") if p.is_dir()):
        store = ExperimentStore(games.parent.parent, games.parent.name)
        for path in sorted(games.iterdir()):
            if not GAME_FILE.fullmatch(path.name):
                continue
            with store.claim(int(path.name[:-5])) as mine:
                counts[_migrate(store, path) if mine else "busy"] += 1
    return counts


def _migrate(store: ExperimentStore, path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            if fh.read(2) == GZIP_MAGIC:
                return "current"
        record = load_record(path)
    except FileNotFoundError:
        return "gone"
    except ForeignRecord:
        return "left alone"
    except DamagedRecord:
        return "damaged"
    data = pack_record(record)
    if canonical_json(unpack_record(decode(data))) != canonical_json(record):
        return "kept"
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise write_error(path, exc) from None
    return "migrated"
