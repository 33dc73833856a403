"""The index's journal: what the store's write hook appends for every game it writes.

Pure Python and numpy (no pandas, no pyarrow), so indexing a game costs the runner milliseconds
(mostly reading the record back and checking its messages for the behaviour rows) and nothing at
start-up. Each line of ``<store>/index/pending.jsonl`` is one game: its record file
(``<experiment>/<file>``) and the file's fingerprint (inode, size, modification time in ns), the
:data:`VERSION` of the code that derived its rows, and its rows per table
(:func:`analysis.rows.record_rows`, packed by :func:`pack`). :mod:`analysis.index` folds the lines
into the Parquet tables.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from pathlib import Path

from analysis import game_metrics, metrics, rows
from analysis.behaviour import claims, gaslighting, messages
from bargain import game
from bargain.store import append_line, load_record

log = logging.getLogger(__name__)

INDEX = "index"
PENDING = "pending.jsonl"
FINGERPRINT = ("ino", "size", "mtime_ns")
# Code that defines the rows (and this module, the lines): when it changes, rows derived by older code are
# derived again.
_SOURCES = (rows, metrics, game_metrics, claims, gaslighting, messages, game,
            *(m for _, m in inspect.getmembers(game, inspect.ismodule) if m.__name__.startswith("bargain.game.")))
VERSION = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in sorted(
    set(_SOURCES), key=lambda m: m.__name__)) + Path(__file__).read_bytes()).hexdigest()[:16]
CACHE: dict = {}  # reference solutions of the draws this process has indexed


def fingerprint(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def on_write(path: Path) -> None:
    """Index a game record just written at ``path`` (the store's write hook).

    Reads the record back as any reader would (so the rows are exactly what the analysis would derive
    from the file) and appends its rows to the experiment's pending log. Never raises: a game is never
    lost to its index, which the analysis mends from the record.
    """
    try:
        seen = os.lstat(path)  # before reading: a file replaced meanwhile then fails the check and is reread
        experiment = path.parent.parent
        record = {**load_record(path), "identity": json.loads((experiment / "experiment.json").read_text())["identity"]}
        append_line(experiment.parent / INDEX / PENDING, entry(f"{experiment.name}/{path.name}", seen, record, CACHE))
    except Exception:  # noqa: BLE001 - the index is derived data; the record is what must survive
        log.warning("could not index %s; the analysis will read the record itself", path, exc_info=True)
    if len(CACHE) > 100_000:
        CACHE.clear()


def entry(key: str, seen: os.stat_result, record: dict, cache: dict) -> dict:
    """One game's index entry: its file (``<experiment>/<file>``) and the file's fingerprint, and its rows
    per table (see :func:`pack`)."""
    return {"version": VERSION, "file": key, "game_index": record["game_index"],
            **dict(zip(FINGERPRINT, fingerprint(seen))), "rows": pack(rows.record_rows(record, cache))}


def pack(tables: dict[str, list[dict]]) -> dict[str, dict]:
    """Rows per table with their column order as JSON text: lines are written with sorted keys, so the
    order goes apart (as one string per table and game, the fold finds the few distinct orders at once)."""
    return {table: {"columns": json.dumps(list(dict.fromkeys(k for row in table_rows for k in row))),
                    "rows": table_rows} for table, table_rows in tables.items()}
