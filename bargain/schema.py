"""The record schema: what a stored game must contain to be trusted, per ``schema_version``.

A record is checked against the JSON Schema of its version (types and required fields), the items
of its long arrays (calls, transcripts, rounds) against ``ITEMS`` (required keys and their types,
checked in a plain loop: JSON Schema's per-item cost made a default game take ~65 ms to check
instead of ~1 ms), and then the rules neither can state (one entry per seat). A record that fails is
*damaged*: readers skip and list it, and the runner quarantines and replays it. A record of a version
this code does not know is *unsupported*, never damaged: a newer writer's records are left alone.
To change the format, add ``SCHEMAS[n]`` and ``ITEMS[n]`` (and rules) and bump
``bargain.store.SCHEMA_VERSION``; extra keys are always allowed. Version 2 is version 1 stored compactly:
a call may leave out its reply, which is then the assistant message at its position in the transcript
(see :mod:`bargain.store`); these schemas check records as stored.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

STATUSES = ("complete", "error", "budget_exceeded", "context_limit", "interrupted")

_INT = {"type": "integer", "minimum": 0}
_NUM = {"type": "number"}
_NUMS = {"type": "array", "items": _NUM}
_OBJ = {"type": "object"}
_STR = {"type": "string"}

_OUTCOME = {
    "type": "object",
    "required": ["agreement", "round", "raw_utility", "discounted_utility"],
    "properties": {
        "agreement": {"type": "boolean"},
        "round": {"type": ["integer", "null"]},
        "proposer_seat": {"type": ["integer", "null"]},
        "owners": {"type": ["array", "null"], "items": _INT},
        "terms": {"type": ["array", "null"], "items": _INT},
        "contributions": {"type": "array", "items": _NUMS},
        "funded": {"type": "array", "items": _INT},
        "raw_utility": _NUMS,
        "discounted_utility": _NUMS,
    },
}


def _game(name: str | None, game: list[str], preferences: list[str], outcome: list[str]) -> dict[str, Any]:
    """What a record of one game (``game.name``; records of the item game may predate the name) must hold."""
    named = {"required": ["name"], "properties": {"name": {"const": name}}} if name else {
        "anyOf": [{"not": {"required": ["name"]}}, {"properties": {"name": {"const": "items"}}}]}
    return {
        "if": {"properties": {"game": named}},
        "then": {"properties": {"game": {"required": game}, "preferences": {"required": preferences},
                                "outcome": {"required": outcome}}},  # (an outcome of null has none)
    }


SCHEMAS: dict[int, dict[str, Any]] = {
    1: {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["schema_version", "experiment_id", "game_index", "draw_index", "focal_seat", "status", "error",
                     "seeds", "config", "game", "agents", "preferences", "rounds", "outcome", "calls", "transcripts",
                     "invalid_moves", "totals"],
        "properties": {
            "schema_version": {"const": 1},
            "experiment_id": _STR,
            "game_index": _INT, "draw_index": _INT, "focal_seat": _INT,
            "status": {"enum": list(STATUSES)},
            "error": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["type", "message"],
                                                   "properties": {"type": _STR, "message": _STR}}]},
            "seeds": _OBJ, "config": _OBJ,
            "game": {"type": "object", "required": ["n_agents", "max_rounds"],
                     "properties": {"name": _STR, "n_items": _INT, "n_agents": _INT, "max_rounds": _INT, "gamma": _NUM,
                                    "competition": _NUM, "issues": {"type": "array", "items": _STR},
                                    "projects": {"type": "array", "items": _STR}}},
            "agents": {"type": "array", "items": {"type": "object", "required": ["seat", "model", "role"],
                                                  "properties": {"seat": _INT, "model": _STR, "role": _STR}}},
            "preferences": {"type": "object", "required": ["kind"],
                            "properties": {"kind": _STR, "values": {"type": "array"}, "positions": {"type": "array"},
                                           "weights": {"type": "array"}, "costs": _NUMS, "budgets": _NUMS}},
            "rounds": {"type": "array"},
            "outcome": {"oneOf": [{"type": "null"}, _OUTCOME]},
            "calls": {"type": "array"},
            "transcripts": {"type": "array", "items": {"type": "array"}},
            "invalid_moves": {"type": "array", "items": _INT},
            "totals": {"type": "object", "required": ["calls", "cost_usd"],
                       "properties": {"calls": _INT, "cost_usd": _NUM}},
        },
        "allOf": [
            # a complete game has an outcome and no error
            {"if": {"properties": {"status": {"const": "complete"}}},
             "then": {"properties": {"outcome": _OUTCOME, "error": {"type": "null"}}}},
            # and each game its own fields (bargain.games)
            _game(None, ["n_items", "gamma", "competition"], ["values"], ["proposer_seat", "owners"]),
            _game("treaty", ["gamma", "issues"], ["positions", "weights"], ["proposer_seat", "terms"]),
            _game("cofunding", ["projects"], ["values", "costs", "budgets"], ["contributions", "funded"]),
        ],
    },
}
SCHEMAS[2] = copy.deepcopy(SCHEMAS[1])
SCHEMAS[2]["properties"]["schema_version"] = {"const": 2}


# Required keys and their types for each item of the long arrays; a nested dict is a nested object.
ITEMS: dict[int, dict[str, dict[str, Any]]] = {
    1: {
        "calls": {"seat": int, "round": int, "phase": str, "attempt": int, "sent": list, "reply": str,
                  "error": (str, type(None)), "usage": {"prompt_tokens": int, "completion_tokens": int},
                  "cost_usd": (int, float, type(None)), "cache_hit": bool},
        "rounds": {"round": int},
    },
}
ITEMS[2] = {**ITEMS[1], "calls": {k: v for k, v in ITEMS[1]["calls"].items() if k != "reply"}}
_MESSAGE = {"role": str, "content": str}


def _shape(value: Any, spec: Any) -> str | None:
    """Where and how ``value`` departs from ``spec`` (a type, a tuple of types, or a dict of required
    keys), or None. Hot: a game has hundreds of items, so nothing is formatted unless something is wrong."""
    if type(spec) is dict:
        if type(value) is not dict:
            return ": not an object"
        for key, sub in spec.items():
            if key not in value:
                return f": {key!r} is a required property"
            if (problem := _shape(value[key], sub)) is not None:
                return f"/{key}{problem}"
        return None
    if isinstance(value, spec):
        return None
    names = "/".join(t.__name__ for t in (spec if isinstance(spec, tuple) else (spec,)))
    return f": {value!r:.40} is not {names}"


def _items(record: dict[str, Any], version: int) -> str | None:
    for array, spec in ITEMS[version].items():
        for i, item in enumerate(record[array]):
            if (problem := _shape(item, spec)) is not None:
                return f"{array}/{i}{problem}"
    for seat, transcript in enumerate(record["transcripts"]):
        for i, message in enumerate(transcript):
            if (problem := _shape(message, _MESSAGE)) is not None:
                return f"transcripts/{seat}/{i}{problem}"
    for i, call in enumerate(record["calls"]):
        if "reply" not in call and reply_message(call, record["transcripts"]) is None:
            return f"calls/{i}: no reply, and no assistant message where its transcript should hold it"
        if not isinstance(call.get("reply", ""), str):
            return f"calls/{i}/reply: {call['reply']!r:.40} is not str"
    return None


def reply_message(call: dict[str, Any], transcripts: list[Any]) -> dict[str, Any] | None:
    """The assistant message that follows a call's prompt in its seat's transcript (at the end of its
    ``sent`` ranges), or None if there is none."""
    try:
        seat, position = call["seat"], call["sent"][-1][1]
        message = transcripts[seat][position] if seat >= 0 and position >= 0 else None
    except (KeyError, IndexError, TypeError):
        return None
    return message if isinstance(message, dict) and message.get("role") == "assistant" else None


@cache
def _validator(version: int) -> Any:
    import jsonschema  # a few ms to import; only readers of records need it

    return jsonschema.Draft202012Validator(SCHEMAS[version])


def _rules(record: dict[str, Any]) -> str | None:
    """The cross-field rules of every version so far; None when they hold."""
    n = record["game"]["n_agents"]
    if sorted(a["seat"] for a in record["agents"]) != list(range(n)):
        return f"agents: expected one entry per seat 0..{n - 1}"
    if record["focal_seat"] >= n:
        return f"focal_seat={record['focal_seat']} but the game has {n} agents"
    outcome = record["outcome"]
    if outcome is not None and not (len(outcome["raw_utility"]) == len(outcome["discounted_utility"]) == n):
        return f"outcome: expected {n} utilities per list"
    if len(record["transcripts"]) != n or len(record["invalid_moves"]) != n:
        return f"transcripts and invalid_moves: expected one entry per seat ({n})"
    return None


def unsupported(record: Any) -> int | None:
    """The record's schema_version if this code cannot judge it (a newer writer's), else None."""
    version = record.get("schema_version") if isinstance(record, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > max(SCHEMAS):
        return version
    return None


def problem(record: Any) -> str | None:
    """Why a parsed record cannot be trusted (one line), or None if it is valid.

    Call :func:`unsupported` first: a record of an unknown newer version is not judged here.
    """
    if not isinstance(record, dict):
        return f"not a JSON object but a JSON {type(record).__name__}"
    version = record.get("schema_version")
    if version not in SCHEMAS:
        return f"schema_version={version!r} is not one of {sorted(SCHEMAS)}"
    from jsonschema.exceptions import best_match

    error = best_match(_validator(version).iter_errors(record))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "record"
        return f"{where}: {error.message[:200]}"
    return _items(record, version) or _rules(record)
