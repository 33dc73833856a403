"""Play negotiation games and store one record per game.

Usage:
    python -m bargain.run                                     # offline default: sim-strong vs boulware
    python -m bargain.run model=qwen72b env.competition=1.0   # needs OPENROUTER_API_KEY
    python -m bargain.run -m model=qwen3b,qwen14b,qwen32b,qwen72b model@opponent=claude-sonnet-4-6
    python -m bargain.run -m sweep=smoke                      # a preset sweep (conf/sweep/)
    python -m bargain.run -m sweep=elo_roster dry_run=true    # the plan and its estimated cost; plays nothing
    python -m bargain.run game=treaty game.rho=-0.5           # another game (conf/game/: items, treaty, cofunding)

Re-running a command plays only the games its store does not already hold as complete.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bargain.config import ConfigError, register, validate
from bargain.sweep import Cell, CellFailed, plan, preflight

register()
# Hydra loads sweepers and launchers only from the `hydra_plugins` namespace; bargain's ship in this package.
sys.path.append(str(Path(__file__).with_name("_hydra")))


def summarize(summary) -> str:
    """A short human summary of a job: lineup, preferences, outcome and utilities per game."""
    from bargain.games import GAMES

    lines = [
        f"experiment {summary.experiment_id}: {len(summary.records)} game(s) played, "
        f"{summary.skipped} already in the store, {summary.errors} not complete",
    ]
    for record in summary.records:
        lineup = " vs ".join(f"{a['name']}={a['model']}" for a in record["agents"])
        lines.append(f"game {record['game_index']} ({lineup}), status {record['status']}")
        if record["error"]:
            lines.append(f"  error: {record['error']['type']}: {record['error']['message']}")
            continue
        lines += GAMES[record["game"]["name"]].summary(record)
        outcome = record["outcome"]
        lines.append(
            "  utility raw " + ", ".join(f"{u:g}" for u in outcome["raw_utility"])
            + " | discounted " + ", ".join(f"{u:.2f}" for u in outcome["discounted_utility"])
        )
    lines.append(f"records: {summary.directory / 'games'}")
    return "\n".join(lines)


def fail(code: int, message: str) -> NoReturn:
    """End the job with one line: exit with ``code``, or, as a cell of a sweep, fail only this cell."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        raise CellFailed(message)  # the sweeper lists it and runs the other cells
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    try:
        validate(cfg)
    except ConfigError as exc:
        fail(2, str(exc))  # one clear line; nothing was played
    if cfg.dry_run:  # a single run's plan (a sweep's is printed by the sweeper before any cell starts)
        overrides = list(HydraConfig.get().overrides.task)
        cell = Cell(0, overrides, cfg, label=" ".join(overrides) or "(defaults)")
        print(plan([cell]))
        for problem in preflight([cell]):
            print(f"problem: {problem}")
        return None

    from bargain.backend import FatalBackendError  # imports litellm: only once the config is known good
    from bargain.runner import run_experiment

    try:
        summary = run_experiment(cfg)
    except FatalBackendError as exc:
        fail(2, str(exc))
    print(summarize(summary))
    stopped = sum(r["status"] == "budget_exceeded" for r in summary.records)
    if stopped:
        fail(1, f"the budget stopped {stopped} game(s); raise run.budget_usd (or run.sweep_budget_usd) "
                "and re-run the same command to finish them")
    if summary.errors > cfg.run.max_error_fraction * max(len(summary.records), 1):
        fail(1, f"{summary.errors} game(s) ended in an error (see the records); re-run the same command to retry them")
    return {"experiment": summary.experiment_id, "played": len(summary.records), "skipped": summary.skipped}


if __name__ == "__main__":
    main()
