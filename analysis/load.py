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

import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import metrics
from bargain.game import cofunding, treaty
from bargain.store import DamagedRecord, ForeignRecord, NewerRecord, canonical_json, load_record, quarantine

log = logging.getLogger(__name__)

GAME_FILE = re.compile(r"^\d{5,}\.json$")  # skips the tmp files of in-flight atomic writes
# Game parameters of the treaty and co-funding games (the record's game.parameters).
PARAMETER_COLS = tuple(dict.fromkeys((*treaty.PARAMETERS, *cofunding.PARAMETERS)))
# Descriptive per-game columns from the record (the condition itself comes from the identity).
GAME_COLS = ("n_agents", "n_items", "max_rounds", "gamma", "preference_kind", "cooperation",
             "vote_rule", "speaking_order", "memory", "game", *PARAMETER_COLS)
# Identity fields that define no condition: the record format; the root seed (more seeds are more
# draws of the same condition); counterbalancing (it decides which seats are played, not how a game
# is played: a draw's game in a given seat is the same either way).
_NOT_CONDITION = ("schema_version", "seed", "counterbalance")
_RENAMES = {"preferences.kind": "preference_kind", "preferences.cooperation": "cooperation"}
# Per-agent columns a metadata key must not overwrite.
_RESERVED = frozenset({"seat", "name", "role", "model", "litellm_model", "opponent", "status"})


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
    """Yield every valid game record below ``path``, carrying its experiment's identity as ``identity``.

    Damaged records are skipped: each is quarantined and described in ``skipped`` (when given) and in
    a warning. Raises SchemaError for a record of a schema version newer than this code reads.
    """
    dirs = experiment_dirs(path)
    if not dirs:
        log.warning("no experiment.json found below %s", path)
    for exp in dirs:
        try:
            identity = json.loads((exp / "experiment.json").read_text())["identity"]
        except (OSError, ValueError, KeyError, TypeError) as exc:  # its games cannot be placed in a condition
            note = f"{exp / 'experiment.json'}: unreadable ({exc!r}); the experiment's games skipped"
            log.warning("damaged experiment %s", note)
            if skipped is not None:
                skipped.append(note)
            continue
        games = exp / "games"
        if not games.is_dir():
            continue
        for f in sorted(games.iterdir()):
            if not GAME_FILE.match(f.name):
                continue
            try:
                yield {**load_record(f), "identity": identity}
            except FileNotFoundError:
                continue  # moved while we read
            except NewerRecord as exc:
                raise SchemaError(f"{f}: {exc}; upgrade bargain to analyse this store") from None
            except DamagedRecord as exc:
                moved = None if isinstance(exc, ForeignRecord) else quarantine(f, exc)
                note = f"{f}: {exc}; " + (f"moved to {moved}" if moved else "left in place") + ", skipped"
                log.warning("damaged record %s", note)
                if skipped is not None:
                    skipped.append(note)


def load_store(path: str | Path, skipped: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load a store into ``(games, agents)``: one row per game and one row per agent per game.

    Damaged records are left out and described in ``skipped`` (see :func:`iter_records`).
    """
    return frames(iter_records(path, skipped))


def frames(records: Iterable[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the tidy ``(games, agents)`` frames from records (each with its ``identity``), with metrics.

    Both frames get a ``condition`` id and one column per condition field that varies between the
    loaded experiments (see :func:`condition_fields`); ``games.attrs["conditions"]`` holds every
    condition's fields by id.
    """
    game_rows: list[dict] = []
    agent_rows: list[dict] = []
    conditions: dict[str, dict] = {}
    cache: dict = {}
    for record in records:
        if "identity" not in record:
            raise ValueError(f"record {record.get('experiment_id')}/{record.get('game_index')} carries no experiment "
                             "identity; load records with iter_records or load_store")
        fields = condition_fields(record["identity"])
        cid = condition_id(fields)
        conditions[cid] = fields
        game, agents = tidy_record(record)
        game_metrics, agent_metrics = metrics.game_metrics(record, cache)
        game.update(game_metrics, condition=cid)
        for row, extra in zip(agents, agent_metrics):
            row.update(extra, condition=cid)
        game.update({f"focal_{k}": agents[game["focal_seat"]][k]
                     for k in ("share", "exploitation_index", "nbs_share", "discounted_utility")})
        game_rows.append(game)
        agent_rows.extend(agents)
    games = pd.DataFrame(game_rows)
    agents = pd.DataFrame(agent_rows)
    if not games.empty:
        keys = ["experiment_id", "game_index"]
        games = games.sort_values(keys, ignore_index=True)
        agents = agents.sort_values(keys + ["seat"], ignore_index=True)
        table = pd.DataFrame.from_dict(conditions, orient="index")
        varying = [c for c in table.columns if table[c].nunique(dropna=False) > 1]
        for frame in (games, agents):
            for col in varying:
                if col not in frame.columns:
                    frame[col] = frame["condition"].map(table[col])
        games.attrs["conditions"] = conditions
    return games, agents


def condition_fields(identity: dict) -> dict:
    """The condition of an experiment as flat ``{field: value}``: its identity minus the focal model, the
    seed and counterbalancing.

    Environment fields keep their names (``discussion``, ``vote_threshold`` ...), the game is ``game``
    (``items``, ``treaty``, ``cofunding``) and its parameters keep their names (``rho``, ``alpha`` ...), the
    preference fields become ``preference_kind`` and ``cooperation``, the focal model's sampling parameters
    ``focal.<param>`` (its reasoning setting ``focal.reasoning.<key>``), and the model in lineup
    position i >= 1 ``lineup.<i>.model``, ``lineup.<i>.<param>`` and ``lineup.<i>.reasoning.<key>``.
    Lists become JSON text, so every value can key a group.
    """
    identity = {k: v for k, v in identity.items() if k not in _NOT_CONDITION}
    lineup = identity.pop("lineup", [])
    flat = {"game": "items"}  # the item game's identity names no game (its ids predate the others)
    for key, value in _flatten(identity).items():
        key = _RENAMES.get(key, key.removeprefix("env.").removeprefix("game."))
        flat["game" if key == "name" else key] = value
    for i, seat in enumerate(lineup):
        seat = dict(seat)
        model, params = seat.pop("litellm_model"), seat.pop("params", None) or {}
        prefix = "focal" if i == 0 else f"lineup.{i}"
        if i:
            flat[f"{prefix}.model"] = model
        flat.update({f"{prefix}.{k}": v for k, v in _flatten(params).items()})
        flat.update(_flatten(seat, f"{prefix}."))  # e.g. the reasoning setting
    return flat


def condition_id(fields: dict) -> str:
    """A short stable id of a condition (a hash of its fields)."""
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:10]


def _flatten(obj: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = canonical_json(value) if isinstance(value, (list, dict)) else value
    return out


def draw_id(record: dict) -> str:
    """Identify the preference draw a game was played on; the cluster unit for all resampling.

    Every model on a ladder plays the same draws (same root seed), and counterbalanced games replay a
    draw with seats swapped, so the draw, not the experiment, is the independent unit.
    """
    g = record["game"]
    other_game = [g["name"], g["parameters"]] if "parameters" in g else []  # item games keep their old ids
    key = record.get("seeds", {}).get("preferences") or (record["preferences"] if other_game
                                                          else record["preferences"]["values"])
    blob = json.dumps([key, g.get("competition"), g.get("preference_kind"), g.get("cooperation"),
                       g["n_agents"], g.get("n_items"), *other_game], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def tidy_record(record: dict) -> tuple[dict, list[dict]]:
    """The outcome-level fields of one record: a game row and one row per seat (no metrics)."""
    g = record["game"]
    outcome = record.get("outcome") or {}
    n = g["n_agents"]
    focal_seat = record["focal_seat"]
    agents = sorted(record["agents"], key=lambda a: a["seat"])
    focal_model = agents[focal_seat]["model"]
    opponent = "+".join(sorted({a["model"] for a in agents if a["seat"] != focal_seat}))
    agreement = bool(outcome.get("agreement"))
    raw = outcome.get("raw_utility") or [0.0] * n
    disc = outcome.get("discounted_utility") or [0.0] * n
    conditions = {**g, **(g.get("parameters") or {}), "game": g.get("name", "items")}
    moves = _move_counts(record.get("rounds") or [], n)
    calls = _call_counts(record.get("calls") or [], n)
    invalid = record.get("invalid_moves") or [0] * n

    game = {
        "experiment_id": record["experiment_id"], "game_index": record["game_index"],
        "draw_index": record["draw_index"], "draw_id": draw_id(record), "focal_seat": focal_seat,
        "focal_model": focal_model, "opponent": opponent, "status": record["status"],
        "error_type": (record.get("error") or {}).get("type"),
        "competition": float(g.get("competition", math.nan)),  # the item game's level; other games have parameters
        **{c: conditions.get(c) for c in GAME_COLS},
        "agreement": agreement, "agreement_round": outcome.get("round") if agreement else None,
        "proposer_seat": outcome.get("proposer_seat"),
        "owners": json.dumps(outcome.get("owners")) if agreement else None,
        "rounds_played": len(record.get("rounds") or []),
        "welfare_raw": float(sum(raw)), "welfare_discounted": float(sum(disc)),
        "invalid_moves": int(sum(invalid)),
        # every move of every seat valid: the games where payoffs measure strategy, not format-following
        "valid_game": record["status"] == "complete" and sum(invalid) == 0,
        **{k: (record.get("totals") or {}).get(k) for k in
           ("calls", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")},
    }
    game["cooperation"] = float(game["cooperation"] or 0.0)

    # Share of the gains over the disagreement point 0: a co-funding agent can end below it.
    gains = [max(float(u), 0.0) for u in disc]
    total = sum(gains)
    rows = []
    for a in agents:
        s = a["seat"]
        row = {
            "experiment_id": record["experiment_id"], "game_index": record["game_index"],
            "draw_index": record["draw_index"], "draw_id": game["draw_id"], "status": record["status"],
            "seat": s, "name": a.get("name"), "role": a["role"], "is_focal": s == focal_seat,
            "model": a["model"], "litellm_model": a.get("litellm_model"),
            "opponent": opponent if s == focal_seat else focal_model,
            "focal_model": focal_model, "focal_seat": focal_seat,
            "competition": game["competition"], **{c: game[c] for c in GAME_COLS},
            "agreement": agreement, "agreement_round": game["agreement_round"],
            "raw_utility": float(raw[s]), "discounted_utility": float(disc[s]),
            # With disagreement point 0 and no losses the surplus share equals the share of the total.
            # No deal pays everyone 0 in the vote games; a co-funding game pays its final pledges.
            "share": gains[s] / total if total > 0 else math.nan,
            "invalid_moves": int(invalid[s]), "valid_game": game["valid_game"], **moves[s], **calls[s],
        }
        for key, value in (a.get("metadata") or {}).items():
            row[f"meta_{key}" if key in _RESERVED or key in row else key] = value
        rows.append(row)
    return game, rows


def _move_counts(rounds: list[dict], n: int) -> list[dict]:
    """Moves (proposals or pledges, and votes) and invalid moves per seat, from the round log."""
    out = [{"moves": 0, "invalid_proposals": 0, "invalid_votes": 0} for _ in range(n)]
    for r in rounds:
        for p in r.get("proposals", []) + r.get("pledges", []):
            out[p["seat"]]["moves"] += 1
            out[p["seat"]]["invalid_proposals"] += not p.get("valid", True)
        for v in r.get("votes", []):
            out[v["seat"]]["moves"] += 1
            out[v["seat"]]["invalid_votes"] += not v.get("valid", True)
    return out


def _call_counts(calls: list[dict], n: int) -> list[dict]:
    """Model calls, parse failures, re-asks, tokens and cost per seat."""
    out = [{"n_calls": 0, "parse_failures": 0, "reasks": 0, "prompt_tokens": 0,
            "completion_tokens": 0, "cost_usd": 0.0} for _ in range(n)]
    for c in calls:
        row = out[c["seat"]]
        row["n_calls"] += 1
        row["parse_failures"] += c.get("error") is not None
        row["reasks"] += (c.get("attempt") or 0) > 0
        usage = c.get("usage") or {}
        row["prompt_tokens"] += usage.get("prompt_tokens") or 0
        row["completion_tokens"] += usage.get("completion_tokens") or 0
        row["cost_usd"] += c.get("cost_usd") or 0.0
    return out


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
