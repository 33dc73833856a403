"""Access scaling: a seat drafts k candidate replies to a move and a selector picks one (``access.*``).

Drafts are ordinary calls through the seat's Backend (replay cache, limits, budget), each with its own
call key (``draft: i``), so sampled models give different drafts and a re-run replays the same ones.
Drafts that do not parse are dropped; with one usable draft left (or all alike) it is the move, with several the
selector (the seat's own model, or ``access.selector``) sees the seat's conversation plus the numbered
drafts and answers ``{"choice": j}``. A selector reply that does not parse picks the first usable
draft (the call keeps its error). Every draft and selector call is recorded in the game's calls with
an ``access`` field; the chosen draft is the move's call.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from bargain.agents.parsing import ParseError, json_objects, object_schema
from bargain.prompts import render

SELECT_HEADER = "## Choose a reply · "  # offline selectors recognise the selection prompt by it


@dataclass(frozen=True)
class Access:
    """One seat's drafting: k drafts in these phases, picked by the model under ``selector``."""

    k: int
    phases: tuple[str, ...]
    selector: str  # config key of the selecting model


def parse_choice(reply: str, n: int) -> int:
    """The 0-based draft a selector picked: ``{"choice": j}`` (1-based), or a lone number."""
    for obj in json_objects(reply):
        if isinstance(obj.get("choice"), int) and 1 <= obj["choice"] <= n:
            return obj["choice"] - 1
    numbers = re.findall(r"\b\d+\b", reply)
    if len(numbers) == 1 and 1 <= int(numbers[0]) <= n:
        return int(numbers[0]) - 1
    raise ParseError(f'expected {{"choice": <1-{n}>}}')


def select_prompt(drafts: list[str]) -> str:
    text = "\n\n".join(f"### Draft {j}\n{d}" for j, d in enumerate(drafts, start=1))
    return render("access/select", n=len(drafts), candidates_text=text)


async def draft_and_select(agent: Any, access: Access, messages: list[dict[str, str]], key: dict[str, Any],
                           cap: int | None, parse: Any, record: Any, schema: dict[str, Any] | None = None) -> Any:
    """The chosen completion of a drafting seat's call; every draft and the selection are recorded.

    ``record(completion, parsed, error, access)`` appends one call entry; the chosen draft's entry is
    appended last so the caller's transcript bookkeeping sees it as the move.
    """
    replies = await asyncio.gather(*(agent.backend.complete(agent.model, messages, {**key, "draft": i}, reply_cap=cap,
                                                               schema=schema)
                                     for i in range(access.k)))
    parsed = []
    for reply in replies:
        try:
            parsed.append((parse(reply.text), None))
        except ParseError as exc:
            parsed.append((None, str(exc)))
    usable = [i for i, (_, error) in enumerate(parsed) if error is None]
    chosen = usable[0] if usable else 0
    if len({replies[i].text for i in usable}) > 1:  # identical drafts leave nothing to choose
        prompt = messages + [{"role": "user", "content": select_prompt([replies[i].text for i in usable])}]
        pick = object_schema({"choice": {"type": "integer", "minimum": 1, "maximum": len(usable)}})
        choice = await agent.backend.complete(access.selector, prompt, {**key, "select": True}, schema=pick)
        try:
            chosen, error = usable[parse_choice(choice.text, len(usable))], None
        except ParseError as exc:
            error = str(exc)
        record(choice, chosen, error, {"role": "select", "model": access.selector, "drafts": usable, "prompt": prompt[-1]["content"]})
    for i, reply in enumerate(replies):
        if i != chosen:
            record(reply, *parsed[i], {"role": "draft", "index": i, "chosen": False})
    return replies[chosen], {"role": "draft", "index": chosen, "chosen": True}
