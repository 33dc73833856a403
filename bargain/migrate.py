"""Rewrite a store in the current format: ``python -m bargain.migrate <store> [--cache-dir DIR ...]``.

Migrates the store's game records to record format 2 (:func:`bargain.store.migrate_records`) and its
replay caches from a file per call to append-only logs (:meth:`ReplayCache.migrate_legacy`): the
store's ``.cache`` and every ``--cache-dir`` (a cache shared between stores). Lossless, and safe while
jobs write the store (a game being played is left for the next run of this command). Nothing needs
migrating to be read: old records and old cache entries are read as they are, and runs write the new
formats; migrating makes a store about fifteen times smaller and its cache a few files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bargain.store import StoreError, migrate_records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bargain.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="the store (run.store) to migrate")
    parser.add_argument("--cache-dir", type=Path, action="append", default=[],
                        help="a replay cache outside the store (run.cache_dir); may be given several times")
    args = parser.parse_args(argv)
    if not args.store.is_dir():
        print(f"error: store={args.store} is not a directory", file=sys.stderr)
        return 2
    from bargain.backend.cache import ReplayCache  # imports LiteLLM via bargain.backend: only when needed

    try:
        counts = migrate_records(args.store)
        print(f"records in {args.store}: {_describe(counts)}")
        for cache_dir in [args.store / ".cache", *args.cache_dir]:
            if cache_dir.is_dir():
                cache = ReplayCache(cache_dir)
                try:
                    counts = cache.migrate_legacy()
                finally:
                    cache.close()
                print(f"replay cache {cache_dir}: {_describe(counts)}")
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()) if n) or "nothing to migrate"


if __name__ == "__main__":
    sys.exit(main())
