"""Robust parsing of model replies: JSON inside prose or code fences, item names or indices,
accept/reject in any case. Every failure is a ParseError with a message the model can act on.

Each parsed move also has its JSON schema (``*_schema``): the exact form the prompts ask for, which a
model with ``structured_output`` set is constrained to (see ``bargain.backend.core.sent_params``)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

from bargain.game import InvalidAllocation, parse_allocation
from bargain.game.cofunding import InvalidPlan, parse_plan
from bargain.game.treaty import InvalidTerms, parse_terms


class ParseError(ValueError):
    """A reply could not be turned into a move; the message says why, for the re-ask."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_ACCEPT = {"accept", "accepted", "yes", "y", "true", "approve", "agree"}
_REJECT = {"reject", "rejected", "no", "n", "false", "decline", "refuse"}


def _balanced_objects(text: str) -> list[str]:
    """Every top-level {...} span in text, honouring strings, in order of appearance."""
    spans, depth, start, in_str, escaped = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def json_objects(text: str) -> list[dict[str, Any]]:
    """All JSON objects found in a reply, fenced ones first, then the last bare ones first."""
    candidates = [m.strip() for m in _FENCE.findall(text)]
    candidates += [s for c in list(candidates) for s in _balanced_objects(c)]
    candidates += list(reversed(_balanced_objects(text)))
    found = []
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            found.append(obj)
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def parse_text(reply: str) -> str:
    """A free-text move (discussion, thinking, reflection): any non-empty reply."""
    text = reply.strip()
    if not text:
        raise ParseError("the reply was empty")
    return text


def parse_proposal(reply: str, agent_names: Sequence[str], item_names: Sequence[str]) -> tuple[int, ...]:
    """The allocation in a reply, as owners per item; raises ParseError naming the problem."""
    objects = json_objects(reply)
    if not objects:
        raise ParseError('no JSON object found; reply with {"allocation": {"<agent name>": ["<item name>", ...]}}')
    canonical_agents = {_canonical(a): a for a in agent_names}
    last_error = ""
    for obj in objects:
        mapping = obj["allocation"] if isinstance(obj.get("allocation"), dict) else obj
        allocation = {canonical_agents.get(_canonical(str(k)), str(k)): v for k, v in mapping.items()}
        if not any(k in agent_names for k in allocation):
            last_error = f"the JSON does not map agents ({', '.join(agent_names)}) to lists of items"
            continue
        try:
            return parse_allocation(allocation, agent_names, item_names)
        except InvalidAllocation as exc:
            last_error = str(exc)
    raise ParseError(last_error)


def parse_treaty(reply: str, issue_names: Sequence[str]) -> tuple[int, ...]:
    """The treaty in a reply, as one setting per issue; raises ParseError naming the problem."""
    return _first_valid(reply, "treaty", lambda obj: parse_terms(obj, issue_names), InvalidTerms,
                        '{"treaty": {"<issue name>": <setting from 0 to 100>, ...}}')


def parse_funding_plan(reply: str, agent_names: Sequence[str], project_names: Sequence[str],
                       budgets: Sequence[float]) -> tuple[tuple[float, ...], ...]:
    """The joint funding plan in a reply, one row of amounts per participant; raises ParseError naming the problem."""
    return _first_valid(reply, "plan", lambda obj: parse_plan(obj, agent_names, project_names, budgets), InvalidPlan,
                        '{"plan": {"<participant name>": {"<project name>": <amount>, ...}, ...}}')


def object_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object schema with exactly ``properties``, every one required."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


ENUMERATED_ALLOCATIONS = 256  # up to this many allocations, the proposal schema lists every one of them


def proposal_schema(agent_names: Sequence[str], item_names: Sequence[str]) -> dict[str, Any]:
    """{"allocation": {agent: [item, ...]}}.

    A schema has no way to say "each item exactly once" except by listing the allocations, so games
    with at most ENUMERATED_ALLOCATIONS of them (the default 5 items and 2 agents: 32) get the list,
    and a constrained reply is always a valid allocation; larger games get lists of item names, and
    the parser checks that each item is given once.
    """
    n, m = len(agent_names), len(item_names)
    if n**m <= ENUMERATED_ALLOCATIONS:
        allocations = [{a: [item for item, o in zip(item_names, owners) if o == i] for i, a in enumerate(agent_names)}
                       for owners in itertools.product(range(n), repeat=m)]
        return object_schema({"allocation": {"enum": allocations}})
    items = {"type": "array", "items": {"type": "string", "enum": list(item_names)}, "maxItems": m}
    return object_schema({"allocation": object_schema({a: items for a in agent_names})})


def treaty_schema(issue_names: Sequence[str]) -> dict[str, Any]:
    """{"treaty": {issue: whole percentage 0..100}}."""
    return object_schema({"treaty": object_schema({i: {"type": "integer", "minimum": 0, "maximum": 100} for i in issue_names})})


def plan_schema(agent_names: Sequence[str], project_names: Sequence[str]) -> dict[str, Any]:
    """{"plan": {participant: {project: amount >= 0}}}; budgets are checked by the parser."""
    amounts = object_schema({p: {"type": "number", "minimum": 0} for p in project_names})
    return object_schema({"plan": object_schema({a: amounts for a in agent_names})})


def votes_schema(n_proposals: int) -> dict[str, Any]:
    """{"votes": {"1": "accept" | "reject", ...}}, one vote per proposal."""
    vote = {"type": "string", "enum": ["accept", "reject"]}
    return object_schema({"votes": object_schema({str(i): vote for i in range(1, n_proposals + 1)})})


def _first_valid(reply: str, key: str, parse, invalid: type[ValueError], form: str) -> Any:
    """The first JSON object in a reply that ``parse`` accepts (under ``key``, or bare)."""
    objects = json_objects(reply)
    if not objects:
        raise ParseError(f"no JSON object found; reply with {form}")
    last_error = ""
    for obj in objects:
        try:
            return parse(obj[key] if key in obj else obj)
        except invalid as exc:
            last_error = str(exc)
    raise ParseError(last_error)


def _vote_value(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().strip(".!").lower()
        if word in _ACCEPT:
            return True
        if word in _REJECT:
            return False
    return None


def _votes_example(n_proposals: int) -> str:
    """A valid votes reply for the re-ask message, e.g. {"votes": {"1": "accept", "2": "reject"}}."""
    return json.dumps({"votes": {str(i): ("accept", "reject")[(i - 1) % 2] for i in range(1, n_proposals + 1)}})


def parse_votes(reply: str, n_proposals: int) -> list[bool]:
    """One accept (True) / reject (False) per proposal; raises ParseError naming the problem."""
    example = f'reply with JSON such as {_votes_example(n_proposals)}, giving "accept" or "reject" for every proposal'
    for obj in json_objects(reply):
        votes = obj.get("votes", obj)
        if isinstance(votes, list):
            votes = {str(i + 1): v for i, v in enumerate(votes)}
        if not isinstance(votes, dict):
            continue
        by_number = {re.sub(r"\D", "", str(k)): v for k, v in votes.items()}
        parsed = [_vote_value(by_number.get(str(i))) for i in range(1, n_proposals + 1)]
        missing = [str(i + 1) for i, v in enumerate(parsed) if v is None]
        if not missing:
            return [bool(v) for v in parsed]
        raise ParseError(f"no valid accept/reject vote for proposal(s) {', '.join(missing)}; {example}")
    if n_proposals == 1:
        word = _vote_value(reply.strip().split()[0] if reply.strip() else "")
        if word is not None:
            return [word]
    raise ParseError(f"no votes found; {example}")
