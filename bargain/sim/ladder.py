"""The offline ladder check: each rung against every reference strategy and against each other.

Games are played by the real engine and Backend (the runner's seeding, prompts, parsing, rules,
parameters and budget) with only the LiteLLM hop skipped: the offline provider answers the same
messages with the same seeds and temperatures (a test compares whole records) at a small fraction
of the cost, so the hundreds of games a ladder check needs fit in a test.

Comparisons are paired: two rungs play the same preference draws in the same seats against the
same opponent, and the difference of their results is averaged per draw; the 95% interval is a
t interval over draws (the seats of one draw are not independent).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from bargain.backend.core import SIM_PROVIDER, Backend, Completion, _cost, _usage, reply_text
from bargain.runner import Experiment, lineup_keys, model_config

LADDER = ("sim-weak", "sim-base", "sim-strong")
REFERENCES = ("boulware", "conceder", "greedy", "fair", "random")


class DirectSim(Backend):
    """The Backend with ``sim/`` calls handed straight to the offline provider instead of through
    LiteLLM: the same parameters, seeds, usage and records, without LiteLLM's per-call overhead."""

    def __init__(self, models: dict[str, dict[str, Any]]) -> None:
        super().__init__(models, {})
        self.decisions: list[float] = []  # seconds per reply

    async def _call(
        self, key: str, messages: list[dict[str, str]], params: dict[str, Any], cache: str | None,
        call_key: dict[str, Any],
    ) -> Completion:
        started, clock = time.time(), time.perf_counter()
        response = SIM_PROVIDER.completion(self.models[key]["litellm_model"].removeprefix("sim/"), messages,
                                           optional_params=params)
        self.decisions.append(time.perf_counter() - clock)
        finished = time.time()
        usage = _usage(response)
        return Completion(text=reply_text(response), usage=usage, cost_usd=_cost(self.models[key], response, usage),
                          latency_s=finished - started, started=started, finished=finished, sent_params=params)


def play(cfg: dict[str, Any], backend: DirectSim | None = None) -> list[dict[str, Any]]:
    """Every game record of the experiment ``cfg`` (a resolved config dict), played in-process, nothing stored."""
    backend = backend or DirectSim({key: model_config(cfg, key) for key in set(lineup_keys(cfg))})
    experiment = Experiment(cfg, backend)

    async def games() -> list[dict[str, Any]]:
        return [await experiment.play_game(index) for index in range(experiment.total_games)]

    return asyncio.run(games())


def focal_utility(record: dict[str, Any]) -> float:
    """The focal model's discounted utility (0 without a deal)."""
    return record["outcome"]["discounted_utility"][record["focal_seat"]]


def focal_share(record: dict[str, Any]) -> float:
    """The focal model's share of the total discounted utility (NaN without a deal)."""
    utility = record["outcome"]["discounted_utility"]
    total = sum(utility)
    return utility[record["focal_seat"]] / total if record["outcome"]["agreement"] and total > 0 else float("nan")


def seat_utility(seat_model: str) -> Callable[[dict[str, Any]], float]:
    """A measure: the discounted utility of the seat held by ``seat_model`` (head-to-head games)."""
    def measure(record: dict[str, Any]) -> float:
        seat = next(a["seat"] for a in record["agents"] if a["model"] == seat_model)
        return record["outcome"]["discounted_utility"][seat]
    return measure


@dataclass(frozen=True)
class Difference:
    """Mean paired difference with its 95% t interval over preference draws."""

    mean: float
    low: float
    high: float
    n_games: int
    n_draws: int

    @property
    def positive(self) -> bool:
        return self.low > 0

    def __str__(self) -> str:
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}] ({self.n_games} games)"


def difference(pairs: list[tuple[dict[str, Any], float, float]]) -> Difference:
    """Difference of (record, a, b) pairs, averaged per draw; pairs with a NaN side are left out."""
    by_draw: dict[int, list[float]] = {}
    for record, a, b in pairs:
        if not (np.isnan(a) or np.isnan(b)):
            by_draw.setdefault(record["draw_index"], []).append(a - b)
    means = np.array([np.mean(v) for v in by_draw.values()])
    n = len(means)
    if n < 2:
        return Difference(float(means.mean()) if n else np.nan, np.nan, np.nan, sum(map(len, by_draw.values())), n)
    half = stats.t.ppf(0.975, n - 1) * means.std(ddof=1) / np.sqrt(n)
    return Difference(float(means.mean()), float(means.mean() - half), float(means.mean() + half),
                      sum(map(len, by_draw.values())), n)


def paired(better: list[dict[str, Any]], worse: list[dict[str, Any]], measure: Callable[[dict], float]) -> Difference:
    """``measure`` of the games in ``better`` minus that of the same games (draw, seat) in ``worse``."""
    assert [r["game_index"] for r in better] == [r["game_index"] for r in worse], "not the same games"
    return difference([(a, measure(a), measure(b)) for a, b in zip(better, worse)])


def head_to_head(records: list[dict[str, Any]], better: str, worse: str) -> Difference:
    """Discounted utility of ``better`` minus that of ``worse`` in games they play against each other."""
    return difference([(r, seat_utility(better)(r), seat_utility(worse)(r)) for r in records])
