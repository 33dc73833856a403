"""Play negotiation games and store one record per game.

Usage:
    python -m bargain.run                                     # offline default: sim-strong vs boulware
    python -m bargain.run model=qwen72b env.competition=1.0   # needs OPENROUTER_API_KEY
    python -m bargain.run -m model=qwen3b,qwen14b,qwen32b,qwen72b model@opponent=claude-sonnet-4-6
    python -m bargain.run -m sweep=smoke                      # a preset sweep (conf/sweep/)
    python -m bargain.run -m sweep=elo_roster dry_run=true    # the plan and its estimated cost; plays nothing
    python -m bargain.run game=treaty game.rho=-0.5           # another game (conf/game/: items, treaty, cofunding)
    python -m bargain.run --help                              # what it does, the commands, the config groups

Re-running a command plays only the games its store does not already hold as complete. Every
expected problem ends the command with one line on stderr and an exit code: 2 for a bad config or a
job that cannot start (no key, a dead endpoint, an unwritable path), 1 for games that failed or a
budget that stopped the job, 130/143 when SIGINT/SIGTERM stopped it (interrupted games are recorded
and replayed by the next run).
"""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from bargain.config import ConfigError, register, validate
from bargain.signals import stop_on_signals
from bargain.sweep import Cell, CellFailed, plan, preflight

register()
# Hydra loads sweepers and launchers only from the `hydra_plugins` namespace; bargain's ship in this package.
sys.path.append(str(Path(__file__).with_name("_hydra")))


class ValidateFirst(Callback):
    """Validate the composed config before Hydra writes a file or makes a folder (secrets never land there)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse_invalid(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse_invalid(config)  # then the sweeper checks every cell before any starts (bargain.sweep)


def _refuse_invalid(config: DictConfig) -> None:
    try:
        validate(copy.deepcopy(config))  # a copy: validation fills in model identities, Hydra saves this one
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None  # not an Exception: Hydra turns those raised by callbacks into warnings


def _safe_dirname(text: str) -> str:
    """One folder name from an override string: no separators, never ``.``/``..``, at most 200 characters."""
    name = text.replace("/", "_").replace("\\", "_").replace("\0", "") or "_"
    if name.strip(".") == "":
        name = name.replace(".", "_")
    if len(name.encode()) > 200:
        name = name.encode()[:180].decode(errors="ignore") + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return name


OmegaConf.register_new_resolver("safe_dirname", _safe_dirname, replace=True)


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


def _problems(summary, max_error_fraction: float) -> tuple[str | None, int]:
    """The one error line for what went wrong in a job that ran (None if nothing did), and the exit code."""
    if summary.stopped_by:
        interrupted = sum(r["status"] == "interrupted" for r in summary.records)
        return (f"stopped by {summary.stopped_by}: {interrupted} game(s) recorded as interrupted, {summary.unstarted} "
                "not started; re-run the same command to finish them"), 128 + signal.Signals[summary.stopped_by].value
    stopped = sum(r["status"] == "budget_exceeded" for r in summary.records)
    if summary.budget and (stopped or summary.unstarted):
        return (f"{summary.budget}: {stopped} game(s) stopped mid-way, {summary.unstarted} not played; raise the cap "
                "and re-run the same command to finish them (replies already paid for come from the cache)"), 1
    retryable, deterministic = summary.failed(True), summary.failed(False)
    if len(retryable) + len(deterministic) <= max_error_fraction * max(len(summary.records), 1):
        return None, 0
    kinds: dict[str, int] = {}
    for r in deterministic:
        kinds[r["error"].get("kind", "error")] = kinds.get(r["error"].get("kind", "error"), 0) + 1
    parts = []
    if retryable:
        parts.append(f"{len(retryable)} retryable (transient errors): re-run the same command to retry them")
    if deterministic:
        what = ", ".join(f"{kind} x{n}" for kind, n in sorted(kinds.items()))
        parts.append(f"{len(deterministic)} deterministic ({what}): the same config would fail again, so a re-run "
                     "retries them only once the models' config or the code changed, or with run.retry_deterministic=true")
    return f"{len(retryable) + len(deterministic)} game(s) failed: " + "; ".join(parts), 1


def _log_file() -> Path:
    hc = HydraConfig.get()
    return Path(hc.runtime.output_dir) / f"{hc.job.name}.log"


def fail(code: int, message: str) -> NoReturn:
    """End the job with one line: exit with ``code``, or, as a cell of a sweep, fail only this cell."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        raise CellFailed(message)  # the sweeper lists it and runs the other cells
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    try:
        validate(cfg)  # before LiteLLM is imported: a bad value is reported in well under a second
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
    from bargain.store import StoreError

    try:
        summary = run_experiment(cfg)
    except (ConfigError, FatalBackendError, StoreError) as exc:
        fail(2, str(exc))  # one clear line; the games it cut short are recorded
    print(summarize(summary))
    print(f"log: {_log_file()}")
    problem, code = _problems(summary, cfg.run.max_error_fraction)
    if summary.stopped_by:  # a signal stops the whole sweep, not just this cell
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(code)
    if problem:
        fail(code, problem)
    return {"experiment": summary.experiment_id, "played": len(summary.records), "skipped": summary.skipped}


def _one_line(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line reports (and their causes) as one line."""
    parts: list[str] = []
    while exc is not None:
        text = " ".join(line.strip() for line in str(exc).split("Config search path")[0].splitlines() if line.strip())
        if text and text not in parts:
            parts.append(text)
        exc = exc.__cause__
    return ": ".join(parts)


def cli() -> int:
    """``python -m bargain.run``: Hydra's app, with every expected problem reported in one line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra raises instead of printing its report; we print one line
    try:
        with stop_on_signals():  # a signal while starting up is reported like any other stop
            main()
    except (ConfigError, HydraException, OmegaConfBaseException) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a signal before the first game, or a second one
        name = getattr(exc, "signal_name", "SIGINT")
        print(f"stopped by {name}: records already written are complete; re-run the same command to continue",
              file=sys.stderr)
        return 128 + signal.Signals[name].value
    except BrokenPipeError:  # stdout closed early (`| head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # Hydra writing its own files: disk full, no permission
        print(f"error: cannot write {exc.filename or ''}: {exc.strerror or exc}; free space or set "
              "hydra.run.dir / hydra.sweep.dir to a writable directory", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
