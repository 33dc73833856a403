"""Estimated tokens and cost of a sweep cell before anything is spent (the dry run).

Two bases, the first that applies:

- **stored**: the mean prompt and completion tokens per agent and game of complete games already in
  the store that were played under the same protocol (the env without the competition level, the
  preference kind, the game and its sizes, and the prompt templates), the model's own games where
  the store has them;
- **prompt sizes**: an upper bound from the prompt templates themselves: every game runs all rounds,
  every reply uses its whole token cap (plus the reasoning room), no re-asks, ~2.5 characters a token,
  no prompt longer than the context window allows.

Prices come from the model config, else from LiteLLM's bundled price map (read as a file, without
importing LiteLLM); a model with neither has an unknown cost.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from bargain.backend.limits import estimate_tokens
from bargain.config import lineup_keys, model_config
from bargain.games import game_type
from bargain.prompts import render
from bargain.runner import identity
from bargain.store import COMPLETE, canonical_json, load_record

log = logging.getLogger(__name__)
SAMPLE_PER_EXPERIMENT = 20  # stored games read per matching experiment: enough for a mean, fast on big stores


@dataclass
class Estimate:
    """Tokens and cost of the games a cell still has to play."""

    prompt_tokens: float
    completion_tokens: float
    cost_usd: float | None  # None: a model in the lineup has no known price
    basis: str


def protocol(ident: dict[str, Any]) -> str:
    """What decides prompt lengths and call counts: the identity's env without competition, the preference
    kind, the game and its sizes (not its levels), the prompts."""
    env = {k: v for k, v in ident["env"].items() if k != "competition"}
    game = {k: v for k, v in (ident.get("game") or {}).items() if k == "name" or k.startswith("n_")}
    kind = (ident.get("preferences") or {}).get("kind")
    return canonical_json({"env": env, "kind": kind, "game": game, "prompts": ident["prompts"]})


@cache
def stored_usage(store: str) -> dict[str, dict[str, list[tuple[int, int]]]]:
    """protocol -> litellm model -> (prompt, completion) tokens per agent and game, from complete records."""
    usage: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for meta_path in sorted(Path(store).glob("*/experiment.json")):
        try:
            key = protocol(json.loads(meta_path.read_text(encoding="utf-8"))["identity"])
            games = sorted((meta_path.parent / "games").glob("*.json"))[:SAMPLE_PER_EXPERIMENT]
            for path in games:
                record = load_record(path)
                if record["status"] != COMPLETE:
                    continue
                for agent in record["agents"]:
                    calls = [c for c in record["calls"] if c["seat"] == agent["seat"]]
                    usage[key][agent["litellm_model"]].append(
                        (sum(c["usage"]["prompt_tokens"] for c in calls), sum(c["usage"]["completion_tokens"] for c in calls))
                    )
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a damaged record (a ValueError) says nothing about cost
            log.debug("estimate: skipping %s: %s", meta_path.parent, exc)
    return usage


@cache
def _litellm_prices() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "model_prices_and_context_window_backup.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def price(model: dict[str, Any]) -> tuple[float, float] | None:
    """USD per million input and output tokens, or None if unknown."""
    if model.get("price_input_per_mtok") is not None or model.get("price_output_per_mtok") is not None:
        return model.get("price_input_per_mtok") or 0.0, model.get("price_output_per_mtok") or 0.0
    if model["litellm_model"].startswith("sim/"):  # free unless priced (as the backend charges them)
        return 0.0, 0.0
    prices = _litellm_prices()
    entry = prices.get(model["litellm_model"]) or prices.get(model["litellm_model"].split("/", 1)[-1]) or {}
    if entry.get("input_cost_per_token") is None:
        return None
    return entry["input_cost_per_token"] * 1e6, (entry.get("output_cost_per_token") or 0.0) * 1e6


def upper_bound(cfg: dict[str, Any], key: str) -> tuple[int, int]:
    """Prompt and completion tokens of one agent in one game, at most, from the prompt templates."""
    from bargain.backend.core import reasoning_room  # the same room the calls get (imports LiteLLM: dry runs only)

    env, model = cfg["env"], model_config(cfg, key)
    n, rounds = env["n_agents"], env["max_rounds"]
    game = game_type(cfg)(cfg)
    prefs = game.draw(np.random.default_rng(0))
    room = reasoning_room(model["reasoning"])
    own_cap = model["params"].get("max_tokens") or 1024
    window = model.get("context_window") or float("inf")

    def cap(phase: str) -> int:
        return min(own_cap, env["max_tokens"][phase] or own_cap)

    def tokens(text: str) -> int:
        return estimate_tokens([{"content": text}]) if text else 0

    system = tokens(game.system_prompt(prefs, 0))
    access = cfg.get("access") or {}
    drafting = {"focal": key == "model", "opponents": key != "model", "all": True}[access.get("seats", "focal")]
    drafts = access.get("k", 1) if drafting else 1  # k drafts, then a selection prompt showing them all
    history = prompt = completion = 0
    for r in range(1, rounds + 1):
        turns = []  # (phase, instruction tokens, tokens of the public events shown with it)
        if env["discussion"]:
            said = render("discussion", spoken=n - 1, round=r, max_rounds=rounds)
            turns += [("discussion", tokens(said), (n - 1) * cap("discussion"))] * env["discussion_turns"]
        turns += [(phase, tokens(text), tokens(events)) for phase, text, events in game.round_prompts(prefs, r)]
        for phase, instruction, events in turns:
            asked = instruction + events
            sent = system + (history + asked if env["memory"] == "full" else asked)
            calls = drafts if drafts > 1 and phase in access["phases"] else 1
            prompt += min(sent, window - cap(phase) - room) * calls  # a longer prompt ends the game (or is compacted)
            completion += (cap(phase) + room) * calls
            if calls > 1:
                prompt += min(sent + calls * cap(phase), window - room)
                completion += room + tokens('{"choice": 1}')
            history += asked + cap(phase)
    return prompt, completion


def estimate_cell(cfg: dict[str, Any], to_play: int) -> Estimate:
    """Tokens and cost of ``to_play`` more games of one cell (seats rotate, so every model plays every seat)."""
    keys = lineup_keys(cfg)
    known = stored_usage(str(Path(cfg["store"]).expanduser().resolve())).get(protocol(identity(cfg)), {})
    everything = [u for per_model in known.values() for u in per_model]
    prompt = completion = 0.0
    cost: float | None = 0.0
    for key in keys:
        model = model_config(cfg, key)
        sample = known.get(model["litellm_model"]) or everything
        if sample:
            p, c = np.mean([u[0] for u in sample]), np.mean([u[1] for u in sample])
        else:
            p, c = upper_bound(cfg, key)
        prompt, completion = prompt + p * to_play, completion + c * to_play
        rates = price(model)
        cost = None if cost is None or rates is None else cost + (p * rates[0] + c * rates[1]) * to_play / 1e6
    basis = f"stored ({len(everything)} agent-games)" if everything else "prompt sizes (upper bound)"
    return Estimate(prompt, completion, cost, basis)
