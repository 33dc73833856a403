"""The results store: one folder per experiment identity, one atomically written JSON record per game.

Layout: ``<store>/<experiment_id>/experiment.json`` and ``<store>/<experiment_id>/games/<index>.json``.
The experiment id hashes only what changes outcomes, so re-running a command finds its own records
and plays only the games that are missing or did not complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
COMPLETE = "complete"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def experiment_id(identity: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write JSON so that readers see the old file or the whole new one, never a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ExperimentStore:
    """The records of one experiment."""

    def __init__(self, root: str | os.PathLike, experiment: str) -> None:
        self.dir = Path(root).expanduser().resolve() / experiment
        self.games = self.dir / "games"

    def game_path(self, index: int) -> Path:
        return self.games / f"{index:05d}.json"

    def write_experiment(self, identity: dict[str, Any], config: dict[str, Any]) -> None:
        atomic_write_json(
            self.dir / "experiment.json",
            {"schema_version": SCHEMA_VERSION, "experiment_id": self.dir.name, "identity": identity, "config": config},
        )

    def status(self, index: int) -> str | None:
        """The recorded status of a game, or None if it has no readable record."""
        try:
            return json.loads(self.game_path(index).read_text(encoding="utf-8")).get("status")
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_game(self, record: dict[str, Any]) -> Path:
        path = self.game_path(record["game_index"])
        atomic_write_json(path, record)
        return path

    @contextlib.contextmanager
    def claim(self, index: int) -> Iterator[bool]:
        """Hold an exclusive lock on a game so two jobs never play it at once.

        The lock is an flock, so the operating system releases it when a job dies or is cancelled.
        Yields False if another live job holds it.
        """
        self.games.mkdir(parents=True, exist_ok=True)
        with open(self.games / f".{index:05d}.lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
