"""Synthetic game records in the exact contract format, generated from a known law.

Every item goes to the focal model with probability p = law(focal metadata), otherwise to an
opponent. The uniforms that decide this are drawn once per preference draw and shared by every
model and seat that plays the draw (common random numbers), so games on one draw are strongly
correlated, as in a real ladder, while each item's marginal probability stays exactly p. With
identical valuations (competition 1.0) the focal share is the value of its items / 100, whose mean
is exactly p: a fractional logit on such records must recover logit p = a + b * capability.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bargain.game import discounted, generate_preferences, utilities

SIM_LADDER = {"sim-weak": {"skill": 0.2}, "sim-base": {"skill": 0.5}, "sim-strong": {"skill": 0.9}}


def logistic_law(intercept: float, slope: float, key: str = "skill", log10: bool = False) -> Callable[[dict], float]:
    """p = expit(intercept + slope * x) with x the metadata value ``key`` (log10 of it if asked)."""
    def law(metadata: dict) -> float:
        x = metadata[key]
        x = np.log10(x) if log10 else x
        return float(1 / (1 + np.exp(-(intercept + slope * x))))
    return law


def _metadata(extra: dict) -> dict:
    return {"params_b": None, "family": "synthetic", "release_date": None, "arena_elo": None, "skill": None, **extra}


def _experiment_id(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def experiments(models: dict[str, dict], opponent: tuple[str, dict], competitions: list[float], n_draws: int,
                law: Callable[[dict], float], seed: int = 0, n_agents: int = 2, n_items: int = 5,
                kind: str = "vector", cooperation: float = 0.0, gamma: float = 0.9, max_rounds: int = 10,
                counterbalance: bool = True, p_no_deal: float = 0.0, invalid_rate: float = 0.0,
                error_rate: float = 0.0, seat_bonus: float = 0.0, full: bool = True,
                env_extra: dict | None = None, params: dict | None = None,
                valid_law: Callable[[dict], float] | None = None,
                invalid_p: float = 0.1) -> Iterator[tuple[dict, list[dict]]]:
    """Yield ``(experiment_json, game_records)`` for every focal model x competition level.

    ``models`` maps a focal model name to its metadata; ``opponent`` is (name, metadata) for every
    other seat. ``seat_bonus`` adds to p in seat 0 and takes it, split evenly, from the other seats
    (so it averages out over counterbalanced seats). ``full=False`` leaves rounds, calls and
    transcripts empty (fast, for statistics). ``env_extra`` sets further env fields (``discussion``
    ...) and ``params`` the focal model's sampling parameters; both enter the experiment identity,
    as in a real store, but not the outcomes. ``valid_law`` plants format failures: the focal model
    makes one invalid move with probability 1 - valid_law(metadata), and in such a game it gets each
    item with probability ``invalid_p`` instead of the law's p.
    """
    seats = n_agents if counterbalance else 1
    for ci, competition in enumerate(competitions):
        draws = []
        for d in range(n_draws):
            rng = np.random.default_rng([seed, ci, d])
            prefs = generate_preferences(rng, n_agents, n_items, competition, kind=kind, cooperation=cooperation)
            draws.append((prefs, rng.random(n_items), rng.random(n_items)))
        for mi, (model, meta) in enumerate(models.items()):
            focal_params = {"temperature": 0.0, **(params or {})}
            lineup = {"model": {"name": model, "metadata": _metadata(meta), "params": focal_params},
                      "opponent": {"name": opponent[0], "metadata": _metadata(opponent[1]),
                                   "params": {"temperature": 0.0}}}
            env = {"n_items": n_items, "n_agents": n_agents, "max_rounds": max_rounds, "gamma": gamma,
                   "competition": competition, "discussion": True, "discussion_turns": 1, "thinking": True,
                   "reflection": True, "reveal_votes": True, "vote_rule": "unanimity", "vote_threshold": "2/3",
                   "speaking_order": "fixed", "memory": "full", "max_reasks": 2, "item_names": None,
                   **(env_extra or {})}
            identity = {"schema_version": 1, "seed": seed, "counterbalance": counterbalance, "env": env,
                        "preferences": {"kind": kind, "cooperation": cooperation},
                        "lineup": [{"litellm_model": f"sim/{model}", "params": focal_params},
                                   *[{"litellm_model": f"sim/{opponent[0]}", "params": {"temperature": 0.0}}]
                                   * (n_agents - 1)],
                        "prompts": "synthetic"}
            exp_id = _experiment_id(identity)
            config = {"seed": seed, "n_games": n_draws, "counterbalance": counterbalance, **lineup, "env": env}
            records = []
            for d, (prefs, u_focal, u_opp) in enumerate(draws):
                for focal_seat in range(seats):
                    rng = np.random.default_rng([seed, ci, d, focal_seat, mi, 1])
                    p = law(meta) + (seat_bonus if focal_seat == 0 else -seat_bonus / (n_agents - 1))
                    failed = valid_law is not None and rng.random() >= valid_law(meta)
                    record = _record(exp_id, d * seats + focal_seat, d, focal_seat, prefs, u_focal, u_opp,
                                     invalid_p if failed else p, lineup, env, config, seed, rng, p_no_deal,
                                     invalid_rate, error_rate, full)
                    record["invalid_moves"][focal_seat] += failed
                    records.append(record)
            yield {"schema_version": 1, "experiment_id": exp_id, "identity": identity, "config": config}, records


def write_store(root: str | Path, **kwargs) -> Path:
    """Write the records of :func:`experiments` as a contract store under ``root``."""
    root = Path(root)
    for exp, records in experiments(**kwargs):
        games = root / exp["experiment_id"] / "games"
        games.mkdir(parents=True, exist_ok=True)
        (root / exp["experiment_id"] / "experiment.json").write_text(json.dumps(exp))
        for r in records:
            (games / f"{r['game_index']:05d}.json").write_text(json.dumps(r))
    return root


def _record(exp_id, index, draw, focal_seat, prefs, u_focal, u_opp, p, lineup, env, config, seed, rng,
            p_no_deal, invalid_rate, error_rate, full) -> dict:
    n, m = prefs.base.shape
    others = [s for s in range(n) if s != focal_seat]
    owners = [focal_seat if u_focal[k] < p else others[int(u_opp[k] * len(others))] for k in range(m)]
    names = [f"Agent_{s + 1}" for s in range(n)]
    items = [f"item_{k}" for k in range(m)]
    status = "error" if rng.random() < error_rate else "complete"
    agreement = status == "complete" and rng.random() >= p_no_deal
    last = int(rng.integers(1, env["max_rounds"] + 1)) if agreement else env["max_rounds"]
    rounds, calls, invalid = (_rounds(rng, n, m, last, owners if agreement else None, focal_seat, invalid_rate)
                              if full and status == "complete" else ([], [], [0] * n))
    if status != "complete":
        outcome = None
    elif agreement:
        raw = utilities(prefs, tuple(owners))
        outcome = {"agreement": True, "round": last, "proposer_seat": focal_seat, "owners": owners,
                   "raw_utility": [float(u) for u in raw],
                   "discounted_utility": [float(u) for u in discounted(raw, env["gamma"], last)]}
    else:
        outcome = {"agreement": False, "round": None, "proposer_seat": None, "owners": None,
                   "raw_utility": [0.0] * n, "discounted_utility": [0.0] * n}
    seat_models = [lineup["opponent"]] * n
    seat_models[focal_seat] = lineup["model"]
    usage = [c["usage"] for c in calls]
    return {
        "schema_version": 1, "experiment_id": exp_id, "game_index": index, "draw_index": draw,
        "focal_seat": focal_seat, "status": status,
        "error": None if status == "complete" else {"type": "BackendError", "message": "synthetic failure"},
        "started_at": "2026-01-01T00:00:00.000+00:00", "finished_at": "2026-01-01T00:00:01.000+00:00",
        "seeds": {"root": seed, "preferences": [seed, draw], "play": [seed, draw, focal_seat]},
        "config": config,
        "game": {**{k: env[k] for k in ("n_items", "n_agents", "max_rounds", "gamma", "competition",
                                         "vote_rule", "vote_threshold", "speaking_order", "memory")},
                 "items": items, "agent_names": names, "preference_kind": prefs.kind,
                 "cooperation": float(prefs.cooperation)},
        "agents": [{"seat": s, "name": names[s], "role": "focal" if s == focal_seat else "opponent",
                    "model": seat_models[s]["name"], "litellm_model": f"sim/{seat_models[s]['name']}",
                    "params": seat_models[s]["params"], "metadata": seat_models[s]["metadata"]} for s in range(n)],
        "preferences": {"kind": prefs.kind, "values": prefs.values.tolist(), "base": prefs.base.tolist(),
                        "cosine": {}},
        "rounds": rounds, "outcome": outcome, "calls": calls,
        "transcripts": [[{"role": "system", "content": "synthetic"}] for _ in range(n)] if full else [[]] * n,
        "invalid_moves": invalid,
        "totals": {"calls": len(calls), "prompt_tokens": sum(u["prompt_tokens"] for u in usage),
                   "completion_tokens": sum(u["completion_tokens"] for u in usage),
                   "cached_tokens": 0, "cost_usd": 0.0},
        "versions": {"bargain": "0.1.0", "python": "3.11", "litellm": None, "numpy": np.__version__, "git": None},
    }


def _rounds(rng, n, m, last, owners, proposer, invalid_rate) -> tuple[list, list, list]:
    """A plausible round log: every seat proposes and votes; the deal (if any) passes in round ``last``."""
    rounds, calls, invalid = [], [], [0] * n
    for r in range(1, last + 1):
        deal_now = owners is not None and r == last
        proposals = []
        for s in range(n):
            if deal_now and s == proposer:
                proposals.append({"seat": s, "owners": owners, "valid": True, "error": None})
                calls += _calls(s, r, "proposal", False)
            elif rng.random() < invalid_rate:
                proposals.append({"seat": s, "owners": None, "valid": False, "error": "missing item item_0"})
                calls += _calls(s, r, "proposal", True)
                invalid[s] += 1
            else:
                proposals.append({"seat": s, "owners": rng.integers(0, n, m).tolist(), "valid": True, "error": None})
                calls += _calls(s, r, "proposal", False)
        valid = [p["seat"] for p in proposals if p["valid"]]
        chosen = valid.index(proposer) if deal_now else None
        votes = []
        for s in range(n):
            ballot = ["accept" if i == chosen else "reject" for i in range(len(valid))]
            votes.append({"seat": s, "votes": ballot, "valid": True, "error": None})
            calls += _calls(s, r, "vote", False)
        rounds.append({"round": r, "speaking_order": list(range(n)),
                       "discussion": [{"seat": s, "text": "Let us split fairly.", "valid": True} for s in range(n)],
                       "proposals": proposals, "votes": votes if valid else [],
                       "accepted": [] if chosen is None else [chosen], "chosen": chosen})
    return rounds, calls, invalid


def _calls(seat: int, round_: int, phase: str, failed: bool) -> list[dict]:
    attempts = [True, True] if failed else [False]  # a failed move was asked twice and failed twice
    return [{"seat": seat, "round": round_, "phase": phase, "attempt": a, "sent": [[0, 1]],
             "reply": "not json" if bad else "{}", "parsed": None if bad else {},
             "error": "could not parse" if bad else None,
             "usage": {"prompt_tokens": 100, "completion_tokens": 20, "cached_tokens": 0},
             "cost_usd": None, "latency_s": 0.01, "retries": 0, "cache_hit": False,
             "started": 0.0, "finished": 0.01} for a, bad in enumerate(attempts)]
