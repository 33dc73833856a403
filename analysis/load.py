"""Read a results store (or a sweep folder holding many) into tidy pandas frames.

The store layout and record format are fixed by the contract: ``<store>/<experiment_id>/experiment.json``
and ``<store>/<experiment_id>/games/<game_index:05d>.json``. Any folder below ``path`` that holds an
``experiment.json`` is an experiment, so a Hydra sweep directory with one store per job loads as one.

The *condition* of a game is everything in its stored experiment identity except the focal model,
the root seed (more seeds are more draws of the same condition) and counterbalancing (which seats
are played, not how; the seat is per game): the environment and protocol, preferences, every other
seat's model, sampling parameters and reasoning settings, the focal model's sampling parameters
and reasoning settings, and the prompt templates. It is derived from the
identity, never from a hand-kept list, so any new identity field splits conditions by itself.

Every record is checked against the record schema (:mod:`bargain.schema`): a damaged one is skipped,
listed in a warning, and moved to ``<experiment>/quarantine/`` (the next run of the job replays it);
records of a newer schema version stop the analysis, which cannot read them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis import index
from analysis.rows import condition_fields, condition_id
from bargain.store import DamagedRecord, ForeignRecord, NewerRecord, load_record, quarantine

log = logging.getLogger(__name__)

class SchemaError(ValueError):
    """A record's schema_version is newer than this analysis understands."""


class NoRecords(ValueError):
    """Nothing to analyse: no valid game record below the path."""


def experiment_dirs(path: str | Path) -> list[Path]:
    """All experiment folders at or below ``path`` (a store, a sweep dir, or one experiment)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such store or sweep directory: {root}")
    return sorted(p.parent for p in root.rglob("experiment.json"))


def iter_records(path: str | Path, skipped: list[str] | None = None) -> Iterator[dict]:
    """Yield every valid game record below ``path``, carrying its experiment's identity as ``identity``
    (for transcripts; the tables come from the store's index, see :func:`load_store`).

    Damaged records are skipped: each is quarantined and described in ``skipped`` (when given) and in
    a warning. Raises SchemaError for a record of a schema version newer than this code reads.
    """
    dirs = experiment_dirs(path)
    if not dirs:
        log.warning("no experiment.json found below %s", path)
    for exp in dirs:
        identity = read_identity(exp, skipped)
        if identity is None:
            continue
        for key in index.game_files(exp):
            record = read_record(index.record_path(exp.parent, key), skipped)
            if record is not None:
                yield {**record, "identity": identity}


def read_identity(exp: Path, skipped: list[str] | None = None) -> dict | None:
    """An experiment's identity, or None if its experiment.json is unreadable (its games are then skipped)."""
    try:
        return json.loads((exp / "experiment.json").read_text())["identity"]
    except (OSError, ValueError, KeyError, TypeError) as exc:  # its games cannot be placed in a condition
        note = f"{exp / 'experiment.json'}: unreadable ({exc!r}); the experiment's games skipped"
        log.warning("damaged experiment %s", note)
        if skipped is not None:
            skipped.append(note)
        return None


def read_record(f: Path, skipped: list[str] | None = None) -> dict | None:
    """One valid record, or None: gone, or damaged (then quarantined, and described in ``skipped``)."""
    try:
        return load_record(f)
    except FileNotFoundError:
        return None  # moved while we read
    except NewerRecord as exc:
        raise SchemaError(f"{f}: {exc}; upgrade bargain to analyse this store") from None
    except DamagedRecord as exc:
        moved = None if isinstance(exc, ForeignRecord) else quarantine(f, exc)
        note = f"{f}: {exc}; " + (f"moved to {moved}" if moved else "left in place") + ", skipped"
        log.warning("damaged record %s", note)
        if skipped is not None:
            skipped.append(note)
        return None


def load_store(path: str | Path, skipped: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load a store into ``(games, agents)``: one row per game and one row per agent per game.

    Reads the store's index (:mod:`analysis.index`), which reads only the records it has not seen.
    Damaged records are left out and described in ``skipped`` (see :func:`read_record`).
    """
    tables = load_tables(path, ("games", "agents"), skipped)
    return tables["games"], tables["agents"]


def load_tables(path: str | Path, names: Iterable[str], skipped: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Tables ``names`` of :data:`analysis.rows.TABLES` as frames, from one pass over the store's index:
    ``games`` and ``agents`` as :func:`load_store` gives them (both must be asked for together), the
    others with the index's rows in record order (by experiment and game, each game's rows as derived).
    """
    names = tuple(names)
    identities = {exp.name: identity for exp in experiment_dirs(path)
                  if (identity := read_identity(exp, skipped)) is not None}
    tables = index.load(path, names, skipped, identities)
    out = {name: tables[name].to_pandas() for name in names if name not in ("games", "agents")}
    if "games" in names:
        out["games"], out["agents"] = _frames(tables["games"], tables["agents"], identities)
    return out


def frames(records: Iterable[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the tidy ``(games, agents)`` frames from records (each with its ``identity``), with metrics.

    Both frames get a ``condition`` id and one column per condition field that varies between the
    loaded experiments (see :func:`analysis.rows.condition_fields`); ``games.attrs["conditions"]``
    holds every condition's fields by id.
    """
    identities: dict[str, dict] = {}

    def checked(records: Iterable[dict]) -> Iterator[dict]:
        for record in records:
            if "identity" not in record:
                raise ValueError(f"record {record.get('experiment_id')}/{record.get('game_index')} carries no "
                                 "experiment identity; load records with iter_records or load_store")
            identities.setdefault(record["experiment_id"], record["identity"])
            yield record

    tables = index.tables_from_records(checked(records))
    return _frames(tables["games"], tables["agents"], identities)


def _frames(games: pa.Table, agents: pa.Table, identities: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames of the index's tables, sorted, with the condition columns that vary."""
    games, agents = games.to_pandas(), agents.to_pandas()
    if games.empty:
        return games, agents
    keys = ["experiment_id", "game_index"]
    games = games.sort_values(keys, ignore_index=True)
    agents = agents.sort_values(keys + ["seat"], ignore_index=True)
    conditions: dict[str, dict] = {}
    for exp in games["experiment_id"].drop_duplicates():  # in order, as the records come
        fields = condition_fields(identities[exp])
        conditions[condition_id(fields)] = fields
    table = pd.DataFrame.from_dict(conditions, orient="index")
    varying = [c for c in table.columns if table[c].nunique(dropna=False) > 1]
    for frame in (games, agents):
        for col in varying:
            if col not in frame.columns:
                frame[col] = frame["condition"].map(table[col])
    games.attrs["conditions"] = conditions
    return games, agents


def capability(agents: pd.DataFrame, name: str) -> pd.Series:
    """Numeric capability axis from a metadata column.

    ``params_b`` becomes log10(parameters in billions); ``release_date`` becomes a decimal year;
    anything else (``skill``, ``arena_elo``, ...) is used as a number. Missing values stay NaN.
    """
    if name not in agents.columns:
        return pd.Series(np.nan, index=agents.index, dtype=float)
    col = agents[name]
    if name == "release_date":
        dates = pd.to_datetime(col, errors="coerce")
        return dates.dt.year + (dates.dt.day_of_year - 1) / 365.25
    values = pd.to_numeric(col, errors="coerce").astype(float)
    if name == "params_b":
        return np.log10(values.where(values > 0))
    return values


def capability_label(name: str) -> str:
    """Axis label for a capability column."""
    return {"params_b": "log10(parameters, B)", "release_date": "release date (year)",
            "arena_elo": "LMArena score"}.get(name, name)


def condition_cols(games: pd.DataFrame, keys: tuple[str, ...] = ("opponent", "competition")) -> list[str]:
    """Condition fields that, beside ``keys``, split the games into their conditions.

    A varying field is kept only if the keys chosen so far leave it varying within a group (the
    opponent's model name, say, adds nothing beside ``opponent``), so grouping by ``keys`` plus
    these columns separates exactly the stored conditions, without redundant columns.
    """
    fields = {f for condition in games.attrs.get("conditions", {}).values() for f in condition}
    chosen: list[str] = []
    # the game, then environment and preference fields: they name a condition more plainly than model parameters
    for col in sorted((f for f in fields if f in games.columns and f not in keys),
                      key=lambda f: (f != "game", "." in f, f)):
        if games.groupby([*keys, *chosen], dropna=False)[col].nunique(dropna=False).max() > 1:
            chosen.append(col)
    return chosen


def conditions_table(games: pd.DataFrame) -> pd.DataFrame:
    """One row per stored condition: its id, every field, and how many games it holds."""
    conditions = games.attrs.get("conditions", {})
    table = pd.DataFrame.from_dict(conditions, orient="index").rename_axis("condition").reset_index()
    counts = games["condition"].value_counts() if "condition" in games else pd.Series(dtype=int)
    return table.assign(n_games=table["condition"].map(counts).fillna(0).astype(int)) if len(table) else table
