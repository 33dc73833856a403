"""One record's rows for the analysis tables: a game row, a row per seat and a row per model call, and
the behaviour rows of a complete game (a row per public message, per claim the rules extract, per
gaslighting flag).

Pure Python and numpy (no pandas, no pyarrow), so the store's write hook (:mod:`analysis.index`) can
derive a game's rows in the runner without slowing its start-up. :func:`record_rows` is the one
definition of every column: the index stores its output and the analysis reads it back unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from analysis import metrics
from analysis.behaviour.claims import ledger
from analysis.behaviour.gaslighting import check_game
from analysis.behaviour.messages import public_messages
from bargain import perturb
from bargain.game import cofunding, treaty
from bargain.store import canonical_json

# Game parameters of the treaty and co-funding games (the record's game.parameters).
PARAMETER_COLS = tuple(dict.fromkeys((*treaty.PARAMETERS, *cofunding.PARAMETERS)))
# Descriptive per-game columns from the record (the condition itself comes from the identity).
GAME_COLS = ("n_agents", "n_items", "max_rounds", "gamma", "preference_kind", "cooperation",
             "vote_rule", "speaking_order", "memory", "game", *PARAMETER_COLS, "perturbation", "access_k")
# Identity fields that define no condition: the record format; the root seed (more seeds are more
# draws of the same condition); counterbalancing (it decides which seats are played, not how a game
# is played: a draw's game in a given seat is the same either way).
_NOT_CONDITION = ("schema_version", "seed", "counterbalance")
_RENAMES = {"preferences.kind": "preference_kind", "preferences.cooperation": "cooperation"}
# Per-agent columns a metadata key must not overwrite.
_RESERVED = frozenset({"seat", "name", "role", "model", "litellm_model", "opponent", "status"})
BEHAVIOUR = ("messages", "claims", "gaslighting")
TABLES = ("games", "agents", "calls", *BEHAVIOUR)


def record_rows(record: dict, cache: dict) -> dict[str, list[dict]]:
    """The rows ``record`` (carrying its experiment's ``identity``) adds to each table in :data:`TABLES`,
    with reference-solution metrics and its condition id (see :func:`condition_fields`).

    ``cache`` holds reference solutions per preference draw across records (see :mod:`analysis.metrics`).
    """
    cid = condition_id(condition_fields(record["identity"]))
    game, agents = tidy_record(record)
    game_metrics, agent_metrics = metrics.game_metrics(record, cache)
    game.update(game_metrics, condition=cid)
    for row, extra in zip(agents, agent_metrics):
        row.update(extra, condition=cid)
    game.update({f"focal_{k}": agents[game["focal_seat"]][k]
                 for k in ("share", "exploitation_index", "nbs_share", "discounted_utility")})
    tables = {"games": [game], "agents": agents, "calls": call_rows(record), **behaviour_rows(record)}
    # Plain Python values: the journal stores them as JSON, where a numpy integer would turn into text.
    return {name: [{k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()} for row in table]
            for name, table in tables.items()}


def call_rows(record: dict) -> list[dict]:
    """One row per model call: who, when, tokens, cost and latency (the text stays in the record)."""
    key = {"experiment_id": record["experiment_id"], "game_index": record["game_index"]}
    rows = []
    for c in record.get("calls") or []:
        usage = c.get("usage") or {}
        rows.append({
            **key, "seat": c["seat"], "round": c["round"], "phase": c["phase"], "attempt": c["attempt"],
            "parse_error": c.get("error") is not None, "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"), "cached_tokens": usage.get("cached_tokens"),
            "reasoning_tokens": usage.get("reasoning_tokens"), "cost_usd": c.get("cost_usd"),
            "latency_s": c.get("latency_s"), "retries": c.get("retries"), "cache_hit": c.get("cache_hit"),
        })
    return rows


def behaviour_rows(record: dict) -> dict[str, list[dict]]:
    """The behaviour rows of a complete game (none otherwise): per public message its claims, false
    claims and gaslighting flags; per claim the rules extract, the claim checked against the speaker's
    private values (see :func:`analysis.behaviour.claims.ledger`); per gaslighting flag, the statement
    and its evidence as JSON text (see :func:`analysis.behaviour.gaslighting.check_game`)."""
    if record["status"] != "complete":
        return {name: [] for name in BEHAVIOUR}
    flags = check_game(record)
    hits: dict[tuple[int, int, int], int] = {}
    for f in flags:
        at = (f["seat"], f["round"], f["turn"])
        hits[at] = hits.get(at, 0) + 1
    messages, claims = [], []
    for msg in public_messages(record):
        key = {"experiment_id": msg.experiment_id, "game_index": msg.game_index, "seat": msg.seat,
               "round": msg.round, "turn": msg.turn}
        checked = ledger(msg.text, msg.items, msg.values)
        claims += [{**key, "extractor": "rules", **c} for c in checked]
        messages.append({**key, "n_claims": len(checked), "n_false": sum(c["false"] for c in checked),
                         "n_gaslighting": hits.get((msg.seat, msg.round, msg.turn), 0)})
    gaslighting = [{**{k: f[k] for k in ("experiment_id", "game_index", "seat", "round", "turn", "message", "kind",
                                         "about", "statement", "verdict")}, "evidence": json.dumps(f["evidence"])}
                   for f in flags]
    return {"messages": messages, "claims": claims, "gaslighting": gaslighting}


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
    conditions = {**g, **(g.get("parameters") or {}), "game": g.get("name", "items"),
                  "perturbation": perturb.label(g.get("perturbation")),  # axes: "none" and 1 when not in use
                  "access_k": (agents[focal_seat].get("access") or {}).get("k", 1)}
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
