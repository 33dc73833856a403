"""The exact replay cache: one JSON file per call, keyed by everything that determines the reply.

The key hashes the LiteLLM model string, the messages, the sampling parameters actually sent and the
call's identity (experiment, game, seat, turn, attempt). Including the call identity means two games
that happen to send the same prompt at temperature > 0 keep their own answers, while re-running a
game (after a crash, or into a fresh store) gets every reply it already paid for back for free.
Files are written atomically, so jobs of a sweep can share one cache directory, also on a cluster
file system where sqlite locking is unreliable. Offline ``sim/`` players are not cached (see
:meth:`bargain.backend.core.Backend.complete`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bargain.store import atomic_write_json, canonical_json, write_error


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any], call_key: dict[str, Any]) -> str:
    """The sha256 hex digest that names one call's entry."""
    request = {"model": model, "messages": messages, "params": params, "call": call_key}
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


class ReplayCache:
    """Successful replies under ``<root>/<key[:2]>/<key>.json``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry, or None when there is none or it is damaged (the call is then made again)."""
        try:
            entry = json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):  # missing, a directory, not JSON ...
            return None
        valid = isinstance(entry, dict) and isinstance(entry.get("text"), str) and isinstance(entry.get("usage"), dict)
        return entry if valid else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store a reply; raises StoreError (the job stops) if the cache cannot be written."""
        try:
            atomic_write_json(self._path(key), entry)
        except OSError as exc:
            raise write_error(self._path(key), exc, "run.cache_dir") from None
