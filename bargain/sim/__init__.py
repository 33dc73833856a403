"""Offline negotiators: pure Python players that read the same prompts and answer in the same
natural-language + JSON format real models must. Served to LiteLLM by :mod:`bargain.backend`.

Models: ``sim/weak``, ``sim/base``, ``sim/strong`` (a skill ladder) and the reference strategies
``sim/boulware``, ``sim/conceder``, ``sim/greedy``, ``sim/fair``, ``sim/random``. Each plays every
game: the system prompt says which one it is in. Other packages may register further offline
models with :func:`register` (the analysis registers its rules judge as ``sim/judge``), so they too
take exactly the call path of real models.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable

import numpy as np

from bargain.agents.access import SELECT_HEADER

from bargain.sim import cofunding, strategies, treaty
from bargain.sim.strategies import STRATEGIES

__all__ = ["STRATEGIES", "register", "respond"]

_REGISTERED: dict[str, Callable[[list[dict]], str]] = {}


def register(name: str, reply: Callable[[list[dict]], str]) -> None:
    """Serve ``sim/<name>`` with ``reply(messages) -> text`` (deterministic offline models only)."""
    if name in STRATEGIES:
        raise ValueError(f"sim/{name} is a negotiation strategy; choose another name")
    _REGISTERED[name] = reply


def respond(model: str, messages: list[dict], seed: int | None = None, temperature: float = 0.0) -> str:
    """The reply of offline model ``sim/<model>`` to a conversation of any game."""
    if model in _REGISTERED:
        return _REGISTERED[model](messages)
    if model not in STRATEGIES:
        raise ValueError(f"unknown offline model sim/{model}; choose one of: {', '.join(f'sim/{s}' for s in STRATEGIES)}")
    if messages[-1]["content"].startswith(SELECT_HEADER):
        return _select(model, messages, seed, temperature)
    system = messages[0]["content"]
    if "delegations negotiating a treaty" in system:
        return treaty.respond(model, messages, np.random.default_rng(seed), temperature)
    if "participants deciding together which of" in system:
        return cofunding.respond(model, messages, np.random.default_rng(seed), temperature)
    return strategies.respond(model, messages, seed=seed, temperature=temperature)


def _select(model: str, messages: list[dict], seed: int | None, temperature: float) -> str:
    """An offline selector (access scaling): the draft closest to what this player would have said itself."""
    own = respond(model, messages[:-1], seed=seed, temperature=temperature)
    drafts = re.split(r"^### Draft \d+\n", messages[-1]["content"].split("\n", 1)[1], flags=re.M)[1:]
    drafts[-1] = drafts[-1].rsplit("\n\nPick the draft", 1)[0]
    scores = [difflib.SequenceMatcher(None, own, d.strip()).ratio() for d in drafts]
    return json.dumps({"choice": int(np.argmax(scores)) + 1})
