"""The store's columnar index: the analysis rows of every game of a store, in Parquet beside its records.

Layout: ``<store>/index/<table>.parquet`` for each table of :data:`analysis.rows.TABLES` (games,
agents, calls, and the behaviour rows: messages, claims, gaslighting) plus ``files.parquet`` (which
record file, as it was on disk, each game's rows came from), and ``<store>/index/pending.jsonl``: the
store's write hook (:func:`analysis.journal.on_write`) appends one line per game written, holding the
rows derived from the record just written. The analysis folds those lines into the Parquet files, so
it decodes each game's JSON once, when the game is written, instead of on every run; the fold reads
the lines in blocks with Arrow's JSON reader, with no Python object per value. One index per store
(the folder holding the experiment folders), so a store of many small experiments is still a
handful of files to read.

Staleness is decided per record file, never trusted blindly: a game's indexed rows are used only if
its file still has the inode, size and modification time (ns) it had when its rows were derived and
they were derived by the same code (:data:`analysis.journal.VERSION`, a hash of the modules that
define the rows). Every other file (new, rewritten, migrated, written without the hook, or the whole
store after a code change) is read and validated exactly as without an index
(:func:`analysis.load.read_record`: damaged records quarantined and listed, newer schema versions
refused), and rows of files that are gone (quarantined, deleted) are dropped. So a missing, partial
or stale index only costs time. A store the analysis cannot write is analysed from its records.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from analysis import rows
from analysis.journal import CACHE, FINGERPRINT, INDEX, PENDING, VERSION, entry, fingerprint, pack

log = logging.getLogger(__name__)

FILES = "files"  # the table of record fingerprints
ALL = (*rows.TABLES, FILES)
CHUNK = 5000  # games per batch when turning records into Arrow tables (bounds memory)
BLOCK = 1 << 26  # bytes of pending lines read into Arrow at once (bounds memory)
# Rows by game (agents also by seat); calls keep each game's order (Arrow's sort is stable).
SORT_KEYS = {"agents": ("experiment_id", "game_index", "seat")}
# A table without rows still has its keys (Parquet needs a column; filters need these).
EMPTY = pa.table({"experiment_id": pa.array([], pa.string()), "game_index": pa.array([], pa.int64())})
GAME_FILE = re.compile(r"^\d{5,}\.json$")  # skips the tmp files of in-flight atomic writes


def game_files(experiment: Path) -> dict[str, os.stat_result]:
    """The experiment's record files (``<experiment>/<file>`` -> lstat), sorted; tmp files of in-flight writes skipped."""
    try:
        entries = list(os.scandir(experiment / "games"))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = {}
    for e in entries:
        if GAME_FILE.match(e.name):
            with contextlib.suppress(FileNotFoundError):  # moved while we listed
                found[f"{experiment.name}/{e.name}"] = e.stat(follow_symlinks=False)
    return dict(sorted(found.items()))


def record_path(store: Path, key: str) -> Path:
    """The record file of a ``<experiment>/<file>`` key of :func:`game_files`."""
    experiment, name = key.split("/")
    return store / experiment / "games" / name


def load(path: str | Path, names: Iterable[str], skipped: list[str] | None = None,
         identities: dict[str, dict] | None = None) -> dict[str, pa.Table]:
    """Tables ``names`` (of :data:`analysis.rows.TABLES`) of every experiment below ``path``, each up to date.

    ``identities`` (experiment id -> identity) are the experiments to load (default: every readable
    one). Damaged records are left out and described in ``skipped`` (see :func:`analysis.load.read_record`).
    """
    from analysis.load import experiment_dirs, read_identity

    names = tuple(names)
    dirs = experiment_dirs(path)
    if not dirs:
        log.warning("no experiment.json found below %s", path)
    if identities is None:
        identities = {exp.name: i for exp in dirs if (i := read_identity(exp, skipped)) is not None}
    stores: dict[Path, list[Path]] = {}
    for exp in dirs:
        if exp.name in identities:
            stores.setdefault(exp.parent, []).append(exp)
    parts = [store_tables(store, experiments, names, identities, skipped) for store, experiments in stores.items()]
    if len(parts) == 1:
        return parts[0]
    return {name: _sorted(concat([p[name] for p in parts]), name) for name in names}  # stores of a sweep, interleaved


def rebuild(path: str | Path) -> tuple[int, list[str]]:
    """Drop the index of every store below ``path`` and build it again from the records.

    Returns the number of games indexed and the notes on damaged records left out.
    """
    from analysis.load import experiment_dirs

    for store in {exp.parent for exp in experiment_dirs(path)}:
        for f in (store / INDEX).glob("*.parquet"):
            f.unlink()
    skipped: list[str] = []
    return load(path, (FILES,), skipped)[FILES].num_rows, skipped


def store_tables(store: Path, experiments: list[Path], names: tuple[str, ...], identities: dict[str, dict],
                 skipped: list[str] | None = None) -> dict[str, pa.Table]:
    """Tables ``names`` of ``experiments`` (folders of ``store``), brought up to date with their record
    files; the store's index is saved if it can be (with the other experiments' rows untouched)."""
    files = {k: st for exp in experiments for k, st in game_files(exp).items()}
    scope = pa.array(sorted(exp.name for exp in experiments), pa.string())
    folder = store / INDEX
    whole = {exp.name for exp in experiments} >= {p.parent.name for p in store.glob("*/experiment.json")}
    with _locked(folder) as writable:
        index = _read(folder, (FILES,)).get(FILES)
        kept = _still_valid(index, files)
        # The journal is folded (and emptied) only with the whole store: it has lines of every experiment.
        pending = _take_pending(folder, writable and whole)
        if not pending and index is not None and len(kept) == len(files) == _in(index, scope).num_rows:
            if tables := _read(folder, (*names, FILES)):  # the usual case: nothing changed
                if whole and index.num_rows == len(files):  # every row is in scope
                    return {name: tables[name] for name in names}
                return {name: _in(tables[name], scope) for name in names}
        old = _read(folder, ALL) if index is not None else {}
        kept = kept if old else {}  # a table missing or of another build: every record is read again
        fresh = _fresh(store, files, kept, pending, identities, skipped)
        keep = pa.array(sorted(kept), pa.string())
        tables = {}
        for name in ALL:
            parts = []
            if old:  # rows of other experiments as they are, rows of these only if their file is unchanged
                t = old[name]
                parts = [t.filter(pc.or_(pc.invert(pc.is_in(t["experiment_id"], value_set=scope)),
                                         pc.is_in(_file_key(t), value_set=keep)))]
            tables[name] = _sorted(concat([*parts, *(f[name] for f in fresh)]), name)
        if writable:
            _write(folder, tables)
            for p in pending if whole else []:
                p.unlink()
    return {name: _in(tables[name], scope) for name in names}


def _in(table: pa.Table, scope: pa.Array) -> pa.Table:
    """The rows of the experiments in ``scope``."""
    if not table.num_rows:
        return table
    return table.filter(pc.is_in(table["experiment_id"], value_set=scope))


def _file_key(table: pa.Table) -> pa.Array:
    """``<experiment>/<game_index:05d>.json`` of every row (the record file it came from)."""
    index = pc.utf8_lpad(pc.cast(table["game_index"], pa.string()), 5, "0")
    return pc.binary_join_element_wise(table["experiment_id"], pc.binary_join_element_wise(index, ".json", ""), "/")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    """Hold the index's lock (one refresher at a time); yields False if the store cannot be written."""
    try:
        folder.mkdir(exist_ok=True)
        fh = open(folder / ".lock", "a")  # noqa: SIM115 - closed below
    except OSError:
        yield False
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(folder: Path, names: Iterable[str]) -> dict[str, pa.Table]:
    """The stored tables ``names``, or {} if any is missing, unreadable, of other code, or of another build."""
    out, builds = {}, set()
    for name in names:
        try:
            table = pq.read_table(folder / f"{name}.parquet")
        except (OSError, ValueError) as exc:  # missing, truncated, not Parquet
            if not isinstance(exc, FileNotFoundError):
                log.warning("index table %s unreadable (%s); rebuilding it from the records", folder / name, exc)
            return {}
        meta = table.schema.metadata or {}
        if meta.get(b"bargain_index") != VERSION.encode():
            return {}
        builds.add(meta.get(b"build"))
        out[name] = table.replace_schema_metadata({"first": meta.get(b"first", b"{}")})
    return out if len(builds) <= 1 else {}


def _write(folder: Path, tables: dict[str, pa.Table]) -> None:
    """Write every table atomically, all stamped with one build id (readers reject a mixed set)."""
    build = os.urandom(8).hex()
    for name, table in tables.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            meta = {"bargain_index": VERSION, "build": build, "first": json.dumps(_first(table))}
            pq.write_table(table.replace_schema_metadata(meta), tmp)
            os.replace(tmp, folder / f"{name}.parquet")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _still_valid(index: pa.Table | None, files: dict[str, os.stat_result]) -> set[str]:
    """The record files (``<experiment>/<file>``) whose indexed rows still hold: the file is unchanged."""
    if index is None:
        return set()
    kept = set()
    for key, *stamp in zip(*(index[c].to_pylist() for c in ("file", *FINGERPRINT))):
        st = files.get(key)
        if st is not None and fingerprint(st) == tuple(stamp):
            kept.add(key)
    return kept


def _take_pending(folder: Path, writable: bool) -> list[Path]:
    """The pending logs to fold. The live one is renamed first, so lines appended from now on go to a new
    one (a line appended to the old one after it is read is lost to the index, not to the analysis:
    its record is read instead)."""
    live = folder / PENDING
    if writable:
        with contextlib.suppress(FileNotFoundError):
            os.rename(live, folder / f"{PENDING}.{os.getpid()}.{os.urandom(4).hex()}")
        return sorted(folder.glob(f"{PENDING}.*"))
    return [live] if live.exists() else []


def _pending_entries(lines: Iterable[str], wanted: dict[str, os.stat_result]) -> Iterator[dict]:
    """Pending lines of the current code whose file is in ``wanted`` with the same fingerprint (each once)."""
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash: its record is read instead
        if _usable(entry.get("file"), entry.get("version"), tuple(entry.get(k) for k in FINGERPRINT), wanted):
            yield entry


def _usable(key: str | None, version: str | None, stamp: tuple, wanted: dict[str, os.stat_result]) -> bool:
    """Whether a pending line's rows hold (current code, its file wanted and unchanged); taken out of ``wanted``."""
    st = wanted.get(key)
    if version == VERSION and st is not None and fingerprint(st) == stamp:
        del wanted[key]
        return True
    return False


def _fold(path: Path, wanted: dict[str, os.stat_result]) -> Iterator[dict[str, pa.Table]]:
    """Tables of a pending log's usable lines, in blocks of whole lines (bounded memory); see :func:`_fold_lines`."""
    with open(path, "rb") as fh:
        rest = b""
        while block := fh.read(BLOCK):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield _fold_lines(block[:cut], wanted)
    if rest.strip():  # a last line without its newline: whole if it parses, else torn by a crash
        yield _fold_lines(rest, wanted)


def _fold_lines(data: bytes, wanted: dict[str, os.stat_result]) -> dict[str, pa.Table]:
    """Tables of the usable lines in ``data``, read in bulk by Arrow's JSON reader (no Python object per
    value). Lines it cannot read together (a line torn by a crash, a column mixing numbers and text,
    lines of other code) are read one by one instead, as :func:`_pending_entries` does."""
    options = pj.ReadOptions(block_size=len(data) + 1, use_threads=True)
    try:
        lines = pj.read_json(pa.py_buffer(data), read_options=options)
        dated = _dates_as_text(lines.schema)
        if dated != lines.schema:  # the reader takes date-like text for timestamps: keep it as written
            lines = pj.read_json(pa.py_buffer(data), read_options=options,
                                 parse_options=pj.ParseOptions(explicit_schema=dated))
        lines.validate(full=True)  # the reader can build broken lists (a list starting with nulls, Arrow 26)
        stamps = lines.select(["file", "version", "game_index", *FINGERPRINT])
        packs = [pc.struct_field(lines["rows"], name) for name in rows.TABLES]
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:  # KeyError: a field missing (other code)
        log.info("pending lines read one by one (%s)", exc)
        entries = list(_pending_entries(data.decode(errors="replace").split("\n"), wanted))
        return _to_tables(entries) if entries else {}
    take = pa.array([i for i, (key, version, *stamp) in enumerate(zip(*(stamps[c].to_pylist() for c in (
        "file", "version", *FINGERPRINT)))) if _usable(key, version, tuple(stamp), wanted)], pa.int64())
    files = stamps.take(take)
    out = {name: _unpacked(p.take(take), files["file"]) for name, p in zip(rows.TABLES, packs)}
    out[FILES] = _files_table(files)
    return out


def _dates_as_text(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every timestamp or date (anywhere in it) as text."""
    def text(t: pa.DataType) -> pa.DataType:
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return pa.string()
        if pa.types.is_struct(t):
            return pa.struct([f.with_type(text(f.type)) for f in t])
        if pa.types.is_list(t):
            return pa.list_(t.value_field.with_type(text(t.value_type)))
        return t

    return pa.schema([f.with_type(text(f.type)) for f in schema])


def _unpacked(packs: pa.ChunkedArray, keys: pa.ChunkedArray) -> pa.Table:
    """One table from packed rows (see :func:`analysis.journal.pack`) read by Arrow, of the games ``keys``."""
    orders = pa.table({"columns": pc.struct_field(packs, "columns"), "key": keys})
    orders = orders.group_by("columns").aggregate([("key", "min")])  # the few distinct column orders
    first = _first_seen(zip(orders["key_min"].to_pylist(), orders["columns"].to_pylist()))
    flat = pc.list_flatten(pc.struct_field(packs, "rows"))
    table = pa.Table.from_struct_array(flat) if pa.types.is_struct(flat.type) else pa.table({})
    return _with_first(table, first)


def _fresh(store: Path, files: dict[str, os.stat_result], kept: set[str], pending: list[Path],
           identities: dict[str, dict], skipped: list[str] | None) -> list[dict[str, pa.Table]]:
    """Tables (in batches) of the games not in the stored index: from pending lines, else from the records."""
    from analysis.load import read_record

    wanted = {name: st for name, st in files.items() if name not in kept}
    batches = [tables for path in pending for tables in _fold(path, wanted) if tables]

    def from_records() -> Iterator[dict]:
        for key in sorted(wanted):
            path = record_path(store, key)
            with contextlib.suppress(FileNotFoundError):
                seen = os.lstat(path)
                record = read_record(path, skipped)
                if record is not None:
                    yield entry(key, seen, {**record, "identity": identities[path.parent.parent.name]}, CACHE)

    if wanted:
        log.info("indexing %d record(s) of %s", len(wanted), store)
    batches += [_to_tables(chunk) for chunk in _chunks(from_records())]
    return batches


def _chunks(entries: Iterable[dict]) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _to_tables(entries: list[dict]) -> dict[str, pa.Table]:
    """Arrow tables of a batch of index entries: every row table, and the files table."""
    keys = [e["file"] for e in entries]
    out = {name: _columns([e["rows"][name] for e in entries], keys) for name in rows.TABLES}
    out[FILES] = _files_table(pa.table({"file": pa.array(keys, pa.string()),
                                        **{k: pa.array([e[k] for e in entries], pa.int64())
                                           for k in ("game_index", *FINGERPRINT)}}))
    return out


def _files_table(files: pa.Table) -> pa.Table:
    """The files table: each game's record file, experiment, game index and file fingerprint."""
    experiment = pc.list_element(pc.split_pattern(files["file"], "/"), 0)
    return pa.table({"file": files["file"], "experiment_id": experiment,
                     **{k: pc.cast(files[k], pa.int64()) for k in ("game_index", *FINGERPRINT)}})


def _columns(packs: list[dict], keys: list[str]) -> pa.Table:
    """One table from packed rows (see :func:`analysis.journal.pack`) of the games ``keys``; absent columns are null.

    Where each column first appears (the first game, in key order, and its place in that game's row)
    goes with the table, so stacked tables order their columns as the records, read in order, would.
    """
    first = _first_seen((key, p["columns"]) for key, p in zip(keys, packs))
    columns = sorted(first, key=first.__getitem__)
    table = pa.table({c: array([row.get(c) for p in packs for row in p["rows"]]) for c in columns})
    return _with_first(table, first)


def _first_seen(orders: Iterable[tuple[str, str]]) -> dict[str, tuple[str, int]]:
    """Where each column first appears, (game key, place in its row), from (game key, column order as JSON) pairs."""
    first: dict[str, tuple[str, int]] = {}
    for key, order in orders:
        for i, c in enumerate(json.loads(order)):
            first[c] = min(first.get(c, (key, i)), (key, i))
    return first


def _first(table: pa.Table) -> dict[str, tuple[str, int]]:
    return {c: tuple(v) for c, v in json.loads((table.schema.metadata or {}).get(b"first", b"{}")).items()}


def _with_first(table: pa.Table, first: dict[str, tuple[str, int]]) -> pa.Table:
    """``table`` with its columns in first-appearance order, which its metadata records."""
    order = sorted(table.column_names, key=lambda c: first.get(c, ("\uffff", 0)))
    return table.select(order).replace_schema_metadata({"first": json.dumps(first)})


def tables_from_records(records: Iterable[dict]) -> dict[str, pa.Table]:
    """The row tables of record dicts, without any index: what :func:`load` gives for their store."""
    cache: dict = {}
    packed = ({"file": f"{r['experiment_id']}/{r['game_index']:05d}.json", "rows": pack(rows.record_rows(r, cache))}
              for r in records)
    batches = [{name: _columns([e["rows"][name] for e in chunk], [e["file"] for e in chunk]) for name in rows.TABLES}
               for chunk in _chunks(packed)]
    return {name: concat([b[name] for b in batches]) for name in rows.TABLES}


def array(values: list) -> pa.Array:
    """An Arrow array of plain Python values; a column mixing kinds (a number here, text there) becomes text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return _text(values)


def _text(values: list) -> pa.Array:
    return pa.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                        for v in values], pa.string())


def concat(tables: list[pa.Table]) -> pa.Table:
    """Stack tables whose columns may differ (missing ones become null; a column typed differently becomes text)."""
    tables = [t for t in tables if t.num_columns] or [EMPTY]
    first: dict[str, tuple[str, int]] = {}
    for t in tables:
        for c, at in _first(t).items():
            first[c] = min(first.get(c, at), at)
    tables = [t.replace_schema_metadata(None) for t in tables]
    return _with_first(_stack(tables), first)


def _stack(tables: list[pa.Table]) -> pa.Table:
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
        kinds: dict[str, set] = {}
        for t in tables:
            for f in t.schema:
                if not pa.types.is_null(f.type):
                    kinds.setdefault(f.name, set()).add(f.type)
        mixed = {c for c, k in kinds.items() if len(k) > 1}

        def as_text(t: pa.Table) -> pa.Table:
            for c in mixed & set(t.column_names):
                t = t.set_column(t.schema.get_field_index(c), c, _text(t[c].to_pylist()))
            return t

        return pa.concat_tables([as_text(t) for t in tables], promote_options="permissive")


def _sorted(table: pa.Table, name: str) -> pa.Table:
    if not table.num_rows:
        return table
    return table.sort_by([(k, "ascending") for k in SORT_KEYS.get(name, ("experiment_id", "game_index"))])
