"""Offline negotiators: pure Python players that read the same prompts and answer in the same
natural-language + JSON format real models must. Served to LiteLLM by :mod:`bargain.backend`.

Models: ``sim/weak``, ``sim/base``, ``sim/strong`` (a skill ladder) and the reference strategies
``sim/boulware``, ``sim/conceder``, ``sim/greedy``, ``sim/fair``, ``sim/random``. Other packages may
register further offline models with :func:`register` (the analysis registers its rules judge as
``sim/judge``), so they too take exactly the call path of real models.
"""

from __future__ import annotations

from collections.abc import Callable

from bargain.sim.strategies import STRATEGIES
from bargain.sim.strategies import respond as _negotiate

__all__ = ["STRATEGIES", "register", "respond"]

_REGISTERED: dict[str, Callable[[list[dict]], str]] = {}


def register(name: str, reply: Callable[[list[dict]], str]) -> None:
    """Serve ``sim/<name>`` with ``reply(messages) -> text`` (deterministic offline models only)."""
    if name in STRATEGIES:
        raise ValueError(f"sim/{name} is a negotiation strategy; choose another name")
    _REGISTERED[name] = reply


def respond(model: str, messages: list[dict], seed: int | None = None, temperature: float = 0.0) -> str:
    """The reply of offline model ``sim/<model>`` to a conversation."""
    if model in _REGISTERED:
        return _REGISTERED[model](messages)
    return _negotiate(model, messages, seed=seed, temperature=temperature)
