"""Offline negotiators: pure Python players that read the same prompts and answer in the same
natural-language + JSON format real models must. Served to LiteLLM by :mod:`bargain.backend`.

Models: ``sim/weak``, ``sim/base``, ``sim/strong`` (a skill ladder) and the reference strategies
``sim/boulware``, ``sim/conceder``, ``sim/greedy``, ``sim/fair``, ``sim/random``.
"""

from bargain.sim.strategies import STRATEGIES, respond

__all__ = ["STRATEGIES", "respond"]
