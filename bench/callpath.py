"""Benchmark: the call path, concurrency, a game's critical path, and tokens and cost per game.

Every seat is an HTTP model (``openai/<strategy>`` at ``api_base``) served by the loopback server
(:mod:`bench.loopback`, its own process, answering with the offline negotiators), so each call takes
the full path a real model's call takes: prompt, limiter, spend ledger, replay cache, LiteLLM,
HTTP, parsing, record. Measured side by side in one run:

- **per call** (zero latency): the pipeline playing games one at a time vs the same calls (same
  messages and parameters, same calls in flight together) through bare ``litellm.acompletion``,
  and through bare ``httpx`` for reference; median of ``--reps`` interleaved repetitions.
- **concurrency** (200 ms per call, fixed): C games at once. A game's *ideal* time is its
  sequential steps (each discussion call, each re-ask, and each parallel phase once, from its
  record) x the latency. Efficiency = ideal makespan / measured wall time, where the ideal makespan
  is the longest game's ideal time (all C games start together); equivalently the speedup over
  the ideal sequential time (sum of ideal times) divided by the ideal speedup. Beside it, bare
  ``litellm.acompletion`` replays the same games at once in one process (each game's calls in the
  order and groups it sent them): what LiteLLM alone reaches here; the efficiency client CPU alone
  allows (ideal / (ideal + that CPU spread over the cores): games that start together stay nearly
  in step, so every call's CPU adds to the wait); and the server's CPU share, which shows it is not
  the bottleneck.
- **critical path**: games played one at a time with n = 3 and 5 agents; game wall time (record
  start to finish) / its ideal time.
- **tokens and cost** per default game, full memory vs stateless, from the recorded usage, with
  the share of prompt tokens the server's emulation of OpenAI's automatic prompt cache served.

    python bench/callpath.py            # the full run (~5 min on 2 idle cores)
    python bench/callpath.py --smoke    # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/callpath.py` finds bench.*
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

from bargain.backend import core  # noqa: E402  (sets LiteLLM up before anything else imports it)
from bargain.config import register  # noqa: E402
from bargain.runner import PHASES, run_experiment  # noqa: E402
from bench.loopback import Server  # noqa: E402

litellm = core.litellm
CONF = str(Path(__file__).resolve().parent.parent / "conf")
SEATS = ("strong", "boulware", "base", "conceder", "fair")  # the loopback server's player for each seat
PRICE_MODEL = "gpt-4.1-mini"  # prices for the cost figures (LiteLLM's map, incl. its cached-input price)
LATENCY = 0.2


def compose_cfg(base_url: str, store: Path, n_agents: int = 2, *overrides: str):
    """The default config with every seat an HTTP model at ``base_url`` (no key, no price: a self-hosted route)."""
    register()
    keys = ["model", "opponent", *(f"opponents.o{i}" for i in range(3, n_agents + 1))]
    args = [f"store={store}", f"env.n_agents={n_agents}", "run.progress=false", *(
        f"+model@{key}=sim-base" for key in keys[2:])]
    for key, player in zip(keys, SEATS):
        args += [f"{key}.name={player}", f"{key}.litellm_model=openai/{player}", f"{key}.api_base={base_url}",
                 f"{key}.max_concurrency=100000"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=[*args, *overrides])


def play(cfg) -> tuple[float, float, list[dict[str, Any]]]:
    """Run a job: wall seconds, this process's CPU seconds, records."""
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_experiment(cfg)
    return time.perf_counter() - wall, time.process_time() - cpu, summary.records


def steps(record: dict[str, Any]) -> int:
    """A game's sequential steps: every discussion call, and each parallel phase once per attempt wave."""
    waves: dict[tuple, int] = defaultdict(int)
    discussion = 0
    for call in record["calls"]:
        if call["phase"] == "discussion":
            discussion += 1
        else:
            key = (call["round"], call["phase"])
            waves[key] = max(waves[key], call["attempt"] + 1)
    return discussion + sum(waves.values())


def game_seconds(record: dict[str, Any]) -> float:
    start, end = (dt.datetime.fromisoformat(record[k]) for k in ("started_at", "finished_at"))
    return (end - start).total_seconds()


def call_groups(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The recorded calls as requests, grouped as they went out (a parallel phase's calls together)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record in records:
        for i, call in enumerate(record["calls"]):
            transcript = record["transcripts"][call["seat"]]
            request = {"model": record["agents"][call["seat"]]["litellm_model"],
                       "messages": [m for start, end in call["sent"] for m in transcript[start:end]],
                       **call["params"]}
            parallel = call["phase"] != "discussion"
            key = (record["game_index"], call["round"], PHASES.index(call["phase"]), call["attempt"] if parallel else i)
            groups.setdefault(key, []).append(request)
    return [groups[k] for k in sorted(groups)]


async def _litellm(request: dict[str, Any], base_url: str) -> None:
    """One recorded request through bare litellm.acompletion, no retries."""
    await litellm.acompletion(**request, api_base=base_url, api_key="no-key", num_retries=0, max_retries=0)


async def _bare(groups: list[list[dict[str, Any]]], base_url: str, via: str) -> float:
    """Send the requests through bare litellm.acompletion or bare httpx, a group at a time; wall seconds."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=None)) as client:

        async def one(request: dict[str, Any]) -> None:
            if via == "litellm":
                await _litellm(request, base_url)
            else:
                answer = await client.post("/chat/completions", json={**request, "model": request["model"][7:]})
                answer.raise_for_status()
                answer.json()

        start = time.perf_counter()
        for group in groups:  # each group's calls together, as the game sent them
            await asyncio.gather(*(one(r) for r in group))
        return time.perf_counter() - start


def bare(groups: list[list[dict[str, Any]]], base_url: str, via: str) -> float:
    """The calls of games played one at a time, through bare LiteLLM or httpx; wall seconds."""
    return asyncio.run(_bare(groups, base_url, via))


async def _bare_games(games: list[list[list[dict[str, Any]]]], base_url: str) -> float:
    """Every game's calls through bare litellm.acompletion, the games at once, each game's groups in
    order (a parallel phase's calls together); wall seconds."""

    async def game(groups: list[list[dict[str, Any]]]) -> None:
        for group in groups:
            await asyncio.gather(*(_litellm(r, base_url) for r in group))

    start = time.perf_counter()
    await asyncio.gather(*(game(groups) for groups in games))
    return time.perf_counter() - start


def bare_games(records: list[dict[str, Any]], base_url: str) -> tuple[float, float]:
    """The games' calls replayed through bare LiteLLM in one process, all games at once: (wall, CPU) seconds."""
    cpu = time.process_time()
    wall = asyncio.run(_bare_games([call_groups([r]) for r in records], base_url))
    return wall, time.process_time() - cpu


def per_call(tmp: Path, smoke: bool, reps: int) -> list[dict[str, Any]]:
    """Pipeline vs bare LiteLLM vs bare httpx per call, zero latency, one game at a time."""
    games = ["n_games=1", "env.max_rounds=3"] if smoke else ["n_games=2"]
    times: dict[str, list[float]] = defaultdict(list)
    with Server(0.0) as server:
        for rep in range(reps):
            for cache in (True, False):
                cfg = compose_cfg(server.base_url, tmp / f"per-call-{rep}-{cache}", 2, *games,
                                  "run.game_concurrency=1", f"run.cache={str(cache).lower()}")
                wall, cpu, records = play(cfg)
                calls = sum(len(r["calls"]) for r in records)
                times["pipeline" if cache else "pipeline, no replay cache"].append(wall / calls)
                times["pipeline CPU"].append(cpu / calls)
            groups = call_groups(records)
            for via in ("litellm", "httpx"):
                cpu = time.process_time()
                times[via].append(bare(groups, server.base_url, via) / calls)
                times[f"{via} CPU"].append((time.process_time() - cpu) / calls)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    log.info("per call (ms, median of %d; %d calls per rep): %s", reps, calls,
             ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    rows = [
        row(f"Wall time per call, pipeline vs bare litellm.acompletion (zero-latency loopback, {calls} calls)",
            med["pipeline"], med["litellm"], "ms", "<= 1.2x"),
        row("Wall time per call without the replay cache vs bare litellm.acompletion",
            med["pipeline, no replay cache"], med["litellm"], "ms", "<= 1.2x"),
        row("Client CPU per call, pipeline vs bare litellm.acompletion", med["pipeline CPU"], med["litellm CPU"], "ms"),
        row("Wall time per call, bare httpx (reference) vs bare litellm.acompletion", med["httpx"], med["litellm"], "ms"),
    ]
    return rows


def game_span(records: list[dict[str, Any]]) -> float:
    """Seconds from the first game's start to the last game's end (the job's start-up left out)."""
    starts = [dt.datetime.fromisoformat(r["started_at"]) for r in records]
    ends = [dt.datetime.fromisoformat(r["finished_at"]) for r in records]
    return (max(ends) - min(starts)).total_seconds()


def concurrency(tmp: Path, games: int, rounds: int, workers: str) -> list[dict[str, Any]]:
    """``games`` games of at most ``rounds`` rounds at once at 200 ms per call: efficiency, beside bare LiteLLM
    replaying the same games at once in one process, what client CPU alone allows, and the server's load."""
    extra = [f"env.max_rounds={rounds}"]
    with Server(LATENCY) as server:
        cfg = compose_cfg(server.base_url, tmp / f"conc-{games}-{workers}", 2, f"n_games={games // 2}",
                          f"run.game_concurrency={games}", f"run.workers={workers}", *extra)
        before = server.stats()
        job, _cpu, records = play(cfg)
        after = server.stats()
        wall = game_span(records)
        ideal = max(steps(r) for r in records) * LATENCY
        calls = sum(len(r["calls"]) for r in records)
        server_cpu = after["cpu_s"] - before["cpu_s"]
        bare_wall, bare_cpu = bare_games(records, server.base_url)
    efficiency, bare_efficiency = ideal / wall, ideal / bare_wall
    # Games that start together stay nearly in step: every ~200 ms all their replies arrive at once and each
    # costs client CPU before the next requests go out, so the makespan is about the ideal plus the CPU, spread
    # at best over the cores. With bare LiteLLM's CPU for these calls that estimates what any LiteLLM client
    # reaches on this machine (not a strict bound: games drift apart and overlap CPU with waiting).
    cores = len(os.sched_getaffinity(0))
    expected = ideal / (ideal + (bare_cpu + server_cpu) / cores)
    processes = workers if workers != "null" else "auto"
    log.info("%d games at %.0f ms, workers=%s: games took %.2f s (job %.2f s), ideal makespan %.2f s, efficiency "
             "%.2f; %d calls; server CPU %.0f%% of a core; bare LiteLLM replayed the games in %.2f s (efficiency "
             "%.2f, %.2f ms client CPU per call); expected from client CPU on %d cores %.2f", games, LATENCY * 1000,
             processes, wall, job, ideal, efficiency, calls, 100 * server_cpu / wall, bare_wall, bare_efficiency,
             1000 * bare_cpu / calls, cores, expected)
    target = 0.85 if games <= 32 else 0.7
    return [
        {"figure": f"Concurrency efficiency, {games} games at once, 200 ms per call, run.workers={processes} "
                   f"(baseline: bare litellm.acompletion replaying the same games at once, one process)",
         "ours": round(efficiency, 3), "baseline": round(bare_efficiency, 3),
         "ratio": round(efficiency / bare_efficiency, 3), "unit": "", "target": f">= {target}",
         "met": efficiency >= target},
        {"figure": f"Efficiency expected from client CPU alone, {games} games: ideal / (ideal + bare LiteLLM's "
                   f"CPU for these calls spread over {cores} cores)", "ours": round(expected, 3), "baseline": None,
         "ratio": None, "unit": "", "target": "", "met": None},
        {"figure": f"Loopback server's CPU during the {games}-game run (not the bottleneck: mostly idle)",
         "ours": round(server_cpu / wall, 3), "baseline": None, "ratio": None, "unit": "of a core",
         "target": "<= 0.5", "met": server_cpu / wall <= 0.5},
    ]


def critical_path(tmp: Path, n: int, smoke: bool) -> dict[str, Any]:
    """One game at a time with ``n`` agents: wall time vs sequential steps x latency."""
    with Server(LATENCY) as server:
        cfg = compose_cfg(server.base_url, tmp / f"critical-{n}", n, "n_games=2", "counterbalance=false",
                          f"env.max_rounds={1 if smoke else 3}", "run.game_concurrency=1")
        _wall, _cpu, records = play(cfg)
    measured = sum(game_seconds(r) for r in records)
    ideal = sum(steps(r) for r in records) * LATENCY
    return row(f"Critical path of a game, n = {n} (wall vs sequential steps x 200 ms)", measured / len(records),
               ideal / len(records), "s", "<= 1.1x")


def usage(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per-game tokens and cost from recorded usage (cost at PRICE_MODEL's prices, cached input discounted)."""
    info = litellm.get_model_info(PRICE_MODEL)
    prompt = sum(r["totals"]["prompt_tokens"] for r in records) / len(records)
    completion = sum(r["totals"]["completion_tokens"] for r in records) / len(records)
    cached = sum(r["totals"]["cached_tokens"] for r in records) / len(records)
    cost = ((prompt - cached) * info["input_cost_per_token"] + cached * info["cache_read_input_token_cost"]
            + completion * info["output_cost_per_token"])
    return {"prompt": prompt, "completion": completion, "cached": cached, "cost": cost,
            "calls": sum(len(r["calls"]) for r in records) / len(records)}


def tokens_and_cost(tmp: Path, smoke: bool) -> list[dict[str, Any]]:
    """Item 7: the default protocol, full memory vs stateless (env=stateless), from recorded usage."""
    games = ["n_games=1", "env.max_rounds=3"] if smoke else ["n_games=8"]
    with Server(0.0) as server:
        full = usage(play(compose_cfg(server.base_url, tmp / "full", 2, *games))[2])
        stateless = usage(play(compose_cfg(server.base_url, tmp / "stateless", 2, *games, "env=stateless"))[2])
    log.info("per game, full memory: %s; stateless: %s", full, stateless)
    return [
        row("Tokens per default game (prompt + completion), full memory vs stateless",
            full["prompt"] + full["completion"], stateless["prompt"] + stateless["completion"], "tokens"),
        row(f"Cost per default game at {PRICE_MODEL} prices, with prompt caching, full memory vs stateless",
            full["cost"], stateless["cost"], "USD"),
        {"figure": "Prompt tokens served from the provider's prompt cache, full memory (stateless in baseline)",
         "ours": round(100 * full["cached"] / full["prompt"], 1),
         "baseline": round(100 * stateless["cached"] / stateless["prompt"], 1),
         "ratio": None, "unit": "%", "target": "", "met": None},
    ]


def row(figure: str, ours: float, baseline: float | None, unit: str, target: str = "") -> dict[str, Any]:
    """A table row; a target on the ratio (``<= 1.2x``, ``>= 2x``) decides ``met``."""
    ratio = ours / baseline if baseline else None
    met = None
    if target and ratio is not None:
        bound = float(target[2:].strip(" x"))
        met = ratio <= bound if target.startswith("<=") else ratio >= bound
    return {"figure": figure, "ours": round(ours, 4), "baseline": None if baseline is None else round(baseline, 4),
            "ratio": None if ratio is None else round(ratio, 3), "unit": unit, "target": target, "met": met}


def measure(smoke: bool = False, reps: int = 3) -> list[dict[str, Any]]:
    """Every figure of this module (see the module docstring); ``smoke`` shrinks each run to seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        rows = per_call(tmp_path, smoke, 1 if smoke else reps)
        runs = [(4, "2")] if smoke else [(32, "1"), (32, "null"), (128, "null")]  # null: the default (automatic)
        for games, workers in runs:
            rows += concurrency(tmp_path, games, 2 if smoke else 4, workers)
        rows += [critical_path(tmp_path, n, smoke) for n in (3, 5)]
        rows += tokens_and_cost(tmp_path, smoke)
    return rows


log = logging.getLogger("bench.callpath")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny runs (seconds), nothing about time asserted")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the per-call comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("bargain", "LiteLLM"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for r in measure(args.smoke, args.reps):
        print(f"{r['figure']}: {r['ours']} {r['unit']} (baseline {r['baseline']}, ratio {r['ratio']}, "
              f"target {r['target'] or '-'}, met {r['met']})")
